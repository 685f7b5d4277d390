"""The one-statement PostgreSQL recorders against eventsourcing's own recorder contract suites.

The tailing-reader test (a reader never passes an id that commits later) is in
tests/reliability/test_concurrency.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, ClassVar
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    IntegrityError,
    ProcessRecorder,
    ProgrammingError,
    StoredEvent,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresTrackingRecorder
from eventsourcing.tests import persistence as es
from eventsourcing.utils import Environment

from suuupra_commerce.adapters.postgres import (
    CommercePostgresApplicationRecorder,
    CommercePostgresFactory,
    CommercePostgresProcessRecorder,
)

pytestmark = pytest.mark.postgres

MODULE = "suuupra_commerce.adapters.postgres"


def _env(schema: dict[str, str], **extra: str) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": MODULE, **schema, "POSTGRES_POOL_SIZE": "12", **extra}


class PostgresSchema:
    """Gives each test a schema of its own (dropped afterwards) and a factory on it."""

    factory: CommercePostgresFactory
    #: Settings beside the schema's, for a variant of a suite.
    settings: ClassVar[dict[str, str]] = {}

    @pytest.fixture(autouse=True)
    def _schema(self, postgres_schema: dict[str, str]) -> Iterator[None]:
        env = _env(postgres_schema, **self.settings)
        self.factory = CommercePostgresFactory(Environment("Recorders", env))
        yield
        self.factory.close()


class TestApplicationRecorder(
    PostgresSchema, es.ApplicationRecorderTestCase[CommercePostgresApplicationRecorder]
):
    def create_recorder(self) -> CommercePostgresApplicationRecorder:
        recorder = self.factory.application_recorder()
        assert isinstance(recorder, CommercePostgresApplicationRecorder)
        return recorder

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestApplicationRecorderWithTextIds(TestApplicationRecorder):
    """The insert function takes the id column's type: ``ORIGINATOR_ID_TYPE=text`` too."""

    settings: ClassVar[dict[str, str]] = {"ORIGINATOR_ID_TYPE": "text"}

    def new_originator_id(self) -> str:
        return f"text-{uuid4()}"


class TestProcessRecorder(PostgresSchema, es.ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        recorder = self.factory.process_recorder()
        assert isinstance(recorder, CommercePostgresProcessRecorder)
        return recorder


class TestProcessRecorderWithMultiRowTracking(TestProcessRecorder):
    """Legacy multi-row tracking: tracked saves take eventsourcing's path."""

    settings: ClassVar[dict[str, str]] = {"SINGLE_ROW_TRACKING": "n"}

    def test_raises_when_lower_inserted_later(self) -> None:
        # The suite's test is of single-row tracking. Multi-row tracking keeps a row per
        # position: a lower one after a higher one is another row; the same one is refused.
        recorder = self.create_recorder()
        recorder.insert_events([], tracking=Tracking("upstream", 2))
        recorder.insert_events([], tracking=Tracking("upstream", 1))
        with pytest.raises(IntegrityError):
            recorder.insert_events([], tracking=Tracking("upstream", 2))
        assert recorder.max_tracking_id("upstream") == 2


class TestNonInterleavingNotificationIds(PostgresSchema, es.NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> ApplicationRecorder:
        return self.factory.application_recorder()


class TestInfrastructureFactory(es.InfrastructureFactoryTestCase[CommercePostgresFactory]):
    @pytest.fixture(autouse=True)
    def _schema(self, postgres_schema: dict[str, str]) -> None:
        self.env = Environment("", _env(postgres_schema))

    def expected_factory_class(self) -> type[CommercePostgresFactory]:
        return CommercePostgresFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return PostgresAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return CommercePostgresApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return PostgresTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return CommercePostgresProcessRecorder


class CustomTrackingRecorder(PostgresTrackingRecorder):
    """A subclass the factory suite asks for by class and by topic."""


@pytest.fixture
def factory(postgres_schema: dict[str, str]) -> Iterator[CommercePostgresFactory]:
    made = CommercePostgresFactory(Environment("Recorded", _env(postgres_schema)))
    yield made
    made.close()


@pytest.fixture
def recorder(factory: CommercePostgresFactory) -> CommercePostgresApplicationRecorder:
    built = factory.application_recorder()
    assert isinstance(built, CommercePostgresApplicationRecorder)
    return built


def _event(originator: UUID, version: int = 1) -> StoredEvent:
    return StoredEvent(originator, version, "test:Happened", b"{}")


def test_a_save_with_a_version_taken_is_refused_whole(
    recorder: CommercePostgresApplicationRecorder,
) -> None:
    originator = uuid4()
    recorder.insert_events([_event(originator, 1)])
    other = uuid4()

    with pytest.raises(IntegrityError):
        recorder.insert_events([_event(other, 1), _event(originator, 1)])

    assert recorder.select_events(other) == []
    assert recorder.max_notification_id() == 1


@pytest.fixture
def process_recorder(factory: CommercePostgresFactory) -> CommercePostgresProcessRecorder:
    built = factory.process_recorder()
    assert isinstance(built, CommercePostgresProcessRecorder)
    return built


def test_a_tracked_save_is_one_statement(
    process_recorder: CommercePostgresProcessRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[object] = []
    execute = psycopg.Cursor.execute

    def counted(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(query)
        return execute(cursor, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    ids = process_recorder.insert_events(
        [_event(uuid4()), _event(uuid4())], tracking=Tracking("Leader", 7)
    )
    process_recorder.insert_events([], tracking=Tracking("Leader", 8))
    monkeypatch.undo()

    assert statements == [process_recorder.insert_tracked_call] * 2
    assert ids == [1, 2]
    assert process_recorder.max_tracking_id("Leader") == 8
    assert process_recorder.max_notification_id() == 2


@pytest.mark.parametrize("position", [5, 4])
def test_a_tracked_save_of_a_position_already_passed_is_refused_whole(
    process_recorder: CommercePostgresProcessRecorder, position: int
) -> None:
    process_recorder.insert_events([_event(uuid4())], tracking=Tracking("Leader", 5))
    late = uuid4()

    with pytest.raises(IntegrityError, match="Failed to record tracking for Leader"):
        process_recorder.insert_events([_event(late)], tracking=Tracking("Leader", position))

    assert process_recorder.select_events(late) == []
    assert process_recorder.max_notification_id() == 1
    assert process_recorder.max_tracking_id("Leader") == 5


def test_a_tracked_save_whose_events_conflict_leaves_the_tracking_where_it_was(
    process_recorder: CommercePostgresProcessRecorder,
) -> None:
    taken = uuid4()
    process_recorder.insert_events([_event(taken)], tracking=Tracking("Leader", 1))

    with pytest.raises(IntegrityError):
        process_recorder.insert_events([_event(taken)], tracking=Tracking("Leader", 2))

    assert process_recorder.max_tracking_id("Leader") == 1
    assert process_recorder.max_notification_id() == 1


def test_processes_starting_together_create_the_tables_and_functions_once(
    postgres_schema: dict[str, str],
) -> None:
    starting = 6
    ready = threading.Barrier(starting)
    failures: list[BaseException] = []

    def start() -> None:
        factory = CommercePostgresFactory(Environment("Started", _env(postgres_schema)))
        try:
            ready.wait(10)
            factory.application_recorder()
            factory.process_recorder()
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)
        finally:
            factory.close()

    threads = [threading.Thread(target=start) for _ in range(starting)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not failures, failures
    factory = CommercePostgresFactory(Environment("Started", _env(postgres_schema)))
    recorder = factory.application_recorder()
    assert recorder.insert_events([_event(uuid4())]) == [1]
    factory.close()


def test_eventsourcing_db_functions_are_refused(postgres_schema: dict[str, str]) -> None:
    env = _env(postgres_schema, POSTGRES_ENABLE_DB_FUNCTIONS="y")
    factory = CommercePostgresFactory(Environment("Refused", env))
    try:
        with pytest.raises(ProgrammingError, match="POSTGRES_ENABLE_DB_FUNCTIONS"):
            factory.application_recorder()
        with pytest.raises(ProgrammingError, match="POSTGRES_ENABLE_DB_FUNCTIONS"):
            factory.process_recorder()
    finally:
        factory.close()

"""Concurrency at the store: version races, tailing readers, one idempotency key sent at once."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, RecordConflictError

from suuupra_commerce import (
    Commerce,
    IdempotencyKeyReusedError,
    Money,
    OrderLineRequest,
    PlaceOrder,
    RegisterItem,
    Settings,
)
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.adapters.postgres import CommercePostgresApplicationRecorder

from .conftest import DEEP, figures


class Tally(Aggregate):
    """The smallest aggregate that records something."""

    @event("Created")
    def __init__(self) -> None:
        self.n = 0

    @event("Bumped")
    def bump(self, by: int) -> None:
        self.n += by


def _env(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    if backend == "postgres":
        return {
            "PERSISTENCE_MODULE": "suuupra_commerce.adapters.postgres",
            **request.getfixturevalue("postgres_schema"),
            "POSTGRES_POOL_SIZE": "4",
        }
    return {
        "PERSISTENCE_MODULE": "suuupra_commerce.adapters.redis",
        "REDIS_URL": request.getfixturevalue("redis_available"),
        "REDIS_KEY_PREFIX": f"{request.getfixturevalue('redis_namespace')}:",
    }


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def app(request: pytest.FixtureRequest) -> Iterator[Application[UUID]]:
    built: Application[UUID] = Application(env=_env(request.param, request))
    built.backend = request.param  # type: ignore[attr-defined]
    try:
        yield built
    finally:
        built.close()


def test_exactly_one_of_two_writers_at_one_version_wins_every_race(app: Application[UUID]) -> None:
    races = 1000 * DEEP
    tallies = [Tally() for _ in range(races)]
    for start in range(0, races, 100):
        app.save(*tallies[start : start + 100])
    # Each race: two writers hold the same aggregate at version 1, each records version 2.
    barrier = threading.Barrier(2)
    outcomes: list[list[str]] = [[] for _ in range(races)]

    def writer(by: int) -> None:
        for race, tally in enumerate(tallies):
            mine = copy.deepcopy(tally)
            mine.bump(by)
            barrier.wait()
            try:
                app.save(mine)
                outcomes[race].append("won")
            except (RecordConflictError, IntegrityError):
                outcomes[race].append("lost")

    threads = [threading.Thread(target=writer, args=(by,)) for by in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(sorted(o) == ["lost", "won"] for o in outcomes)
    versions = [[e.originator_version for e in app.events.get(t.id)] for t in tallies]
    duplicates = sum(len(v) - len(set(v)) for v in versions)
    figures(
        f"optimistic locking on {app.backend}",  # type: ignore[attr-defined]
        races=races,
        won=sum(o.count("won") for o in outcomes),
        lost=sum(o.count("lost") for o in outcomes),
        duplicate_versions=duplicates,
    )
    assert all(v == [1, 2] for v in versions)  # one row per version, none twice
    assert all(app.repository.get(t.id).n in (1, 2) for t in tallies[:50])


@pytest.mark.postgres
def test_a_tailing_reader_misses_nothing_behind_a_slow_transaction(
    postgres_schema: dict[str, str],
) -> None:
    """The library's recorder keeps notification ids committing in order (its insert locks).

    Slow transactions call the insert function a save calls, then stay open half a second
    with their ids issued, while 16 writers save; without the table lock in the function
    the reader would pass the held ids and never come back for them.
    """
    writers, each, slow = 16, 25 * DEEP, 3
    app: Application[UUID] = Application(
        env={
            "PERSISTENCE_MODULE": "suuupra_commerce.adapters.postgres",
            **postgres_schema,
            "POSTGRES_POOL_SIZE": "20",
        }
    )
    recorder = app.recorder
    assert isinstance(recorder, CommercePostgresApplicationRecorder)
    done = threading.Event()
    seen: list[int] = []

    def tail() -> None:
        position = 0
        while True:
            finished = done.is_set()
            batch = recorder.select_notifications(
                start=position, limit=50, inclusive_of_start=False
            )
            seen.extend(n.id for n in batch)
            if batch:
                position = batch[-1].id
            elif finished:
                return
            else:
                time.sleep(0.001)

    def write(times: int) -> None:
        for _ in range(times):
            app.save(Tally())

    def write_slowly(times: int) -> None:
        for _ in range(times):
            time.sleep(0.1)  # let the writers get going
            with (
                recorder.datastore.get_connection() as conn,
                conn.transaction(),
                conn.cursor() as cursor,
            ):
                cursor.execute(recorder.insert_call, ([uuid4()], [1], ["test:Slow"], [b"{}"]))
                cursor.execute("SELECT pg_sleep(0.5)")  # ids issued, commit held back

    reader = threading.Thread(target=tail)
    threads = [threading.Thread(target=write, args=(each,)) for _ in range(writers)]
    threads.append(threading.Thread(target=write_slowly, args=(slow,)))
    try:
        reader.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        reader.join(timeout=60)
        everything = [n.id for n in recorder.select_notifications(start=None, limit=100_000)]
    finally:
        app.close()
    figures(
        "tailing reader on PostgreSQL",
        writers=writers,
        slow_transactions=slow,
        events=len(everything),
        read=len(seen),
        missed=len(set(everything) - set(seen)),
        twice=len(seen) - len(set(seen)),
    )
    assert seen == everything  # in order, none missed, none twice
    assert len(everything) == writers * each + slow


@pytest.fixture
def shop(settings: Settings) -> Iterator[Commerce]:
    book = InMemoryPriceBook()
    book.set_price("MUG-1", "Mug", Money("9.50", "USD"))
    with Commerce(settings, price_book=book) as built:
        built.inventory.register(
            RegisterItem(
                sku="MUG-1",
                product_id="mug",
                name="Mug",
                unit_price=Money("9.50", "USD"),
                initial_quantity=1000,
            )
        )
        yield built


def test_one_key_sent_five_times_at_once_places_one_order(shop: Commerce) -> None:
    rounds = 20 * DEEP
    refused = 0
    for r in range(rounds):
        key = f"k-{r}-{uuid4().hex[:6]}"
        command = PlaceOrder(
            idempotency_key=key,
            customer_id="ann",
            currency="USD",
            lines=[OrderLineRequest(sku="MUG-1", quantity=2)],
        )
        barrier = threading.Barrier(5)
        answers: list[UUID] = []
        failures: list[BaseException] = []

        def send(
            barrier: threading.Barrier = barrier,
            command: PlaceOrder = command,
            answers: list[UUID] = answers,
            failures: list[BaseException] = failures,
        ) -> None:
            barrier.wait()
            try:
                answers.append(shop.orders.place(command))
            except BaseException as error:  # noqa: BLE001 - asserted below
                failures.append(error)

        threads = [threading.Thread(target=send) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        assert len(answers) == 5
        assert len(set(answers)) == 1
        other = command.model_copy(update={"customer_id": "bob"})
        with pytest.raises(IdempotencyKeyReusedError):
            shop.orders.place(other)
        refused += 1
    placed = sum(shop.orders.count_by_status().values())
    reserved = shop.inventory.item("MUG-1").reserved
    figures(
        f"idempotency on {shop.settings.persistence}",
        keys=rounds,
        sends_each=5,
        orders=placed,
        units_reserved=reserved,
        other_payload_refused=refused,
    )
    assert placed == rounds
    assert reserved == 2 * rounds

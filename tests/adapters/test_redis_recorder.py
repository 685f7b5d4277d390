"""eventsourcing's own recorder contract suites, run against the Redis recorders."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.tests import persistence as es
from eventsourcing.utils import Environment

from suuupra_commerce.adapters.redis import (
    RedisAggregateRecorder,
    RedisApplicationRecorder,
    RedisFactory,
    RedisProcessRecorder,
    RedisTrackingRecorder,
)

pytestmark = pytest.mark.redis

MODULE = "suuupra_commerce.adapters.redis"


def _settings(redis_url: str, namespace: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": MODULE,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"{namespace}:",
    }


class RedisNamespace:
    """Gives each test a key prefix of its own (deleted afterwards) and a factory on it."""

    factory: RedisFactory

    @pytest.fixture(autouse=True)
    def _redis(self, redis_available: str, redis_namespace: str) -> Iterator[None]:
        self.factory = RedisFactory(
            Environment("Recorders", _settings(redis_available, redis_namespace))
        )
        yield
        self.factory.close()


class TestRedisAggregateRecorder(RedisNamespace, es.AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.factory.aggregate_recorder()


class TestRedisSnapshotRecorder(RedisNamespace, es.AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.factory.aggregate_recorder(purpose="snapshots")


class TestRedisApplicationRecorder(
    RedisNamespace, es.ApplicationRecorderTestCase[RedisApplicationRecorder]
):
    def create_recorder(self) -> RedisApplicationRecorder:
        recorder = self.factory.application_recorder()
        assert isinstance(recorder, RedisApplicationRecorder)
        return recorder

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestRedisApplicationRecorderWithTextIds(TestRedisApplicationRecorder):
    @pytest.fixture(autouse=True)
    def _text_ids(self, _redis: None) -> None:
        self.factory.datastore.originator_id_type = "text"

    def new_originator_id(self) -> str:
        return f"text-{uuid4()}"


class TestRedisTrackingRecorder(RedisNamespace, es.TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return self.factory.tracking_recorder()


class TestRedisProcessRecorder(RedisNamespace, es.ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()


class TestRedisNonInterleavingNotificationIds(
    RedisNamespace, es.NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> ApplicationRecorder:
        return self.factory.application_recorder()


class CustomRedisTrackingRecorder(RedisTrackingRecorder):
    """A subclass the factory suite asks for by class and by topic."""


class TestRedisInfrastructureFactory(es.InfrastructureFactoryTestCase[RedisFactory]):
    @pytest.fixture(autouse=True)
    def _redis(self, redis_available: str, redis_namespace: str) -> None:
        self.env = Environment("", _settings(redis_available, redis_namespace))

    def expected_factory_class(self) -> type[RedisFactory]:
        return RedisFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return RedisAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return RedisApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return RedisTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return CustomRedisTrackingRecorder

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return RedisProcessRecorder

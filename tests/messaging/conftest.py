"""Buses for the contract suite: in memory, Redis Streams and PostgreSQL, with test settings."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from suuupra_commerce.adapters.memory_messaging import InMemoryMessageBus
from suuupra_commerce.messaging import DeliveryPolicy, Envelope, MessageBus

POLICY = DeliveryPolicy(redeliver_after=0.5, max_deliveries=2, max_length=1000)
"""Short idle times keep the suite fast (long enough for a loaded CI machine to
run two lines in between); two deliveries before the dead letters."""

BusFactory = Callable[..., Any]

_ids = itertools.count(1)


def envelope(key: str = "k-1", **payload: Any) -> Envelope:
    """A message with a fresh id."""
    return Envelope(
        id=f"m-{next(_ids)}",
        type="test.happened",
        schema_version=1,
        key=key,
        source="tests",
        payload=payload,
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
        correlation_id="req-1",
    )


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def make_bus(request: pytest.FixtureRequest) -> Iterator[BusFactory]:
    """Builds buses of one adapter (with ``POLICY`` unless told otherwise); closes them after."""
    made: list[MessageBus] = []

    def make(policy: DeliveryPolicy = POLICY) -> Any:
        bus: Any
        if request.param == "memory":
            bus = InMemoryMessageBus(policy)
        elif request.param == "redis":
            from suuupra_commerce.adapters.redis_messaging import RedisStreamBus

            bus = RedisStreamBus.from_url(
                request.getfixturevalue("redis_available"),
                namespace=request.getfixturevalue("redis_namespace"),
                policy=policy,
                approximate_trim=False,
            )
        else:
            from suuupra_commerce.adapters.postgres_messaging import PostgresMessageBus

            bus = PostgresMessageBus(request.getfixturevalue("postgres_schema"), policy=policy)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        bus.close()


def _kill_backends(settings: dict[str, str], application_name: str) -> int:
    """Terminate the server sessions of ``application_name`` (a lost connection, on demand)."""
    import psycopg

    from suuupra_commerce.adapters.postgres_connection import connection_params

    with psycopg.connect(**connection_params(settings, "tests: killer")) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)

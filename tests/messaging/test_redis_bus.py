"""What only the Redis bus has: namespaced keys, JSON on the wire, retries, approximate trimming."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from suuupra_commerce.adapters.redis_messaging import (
    RedisProcessedMessages,
    RedisRelayPositions,
    RedisStreamBus,
    redis_client,
)
from suuupra_commerce.errors import InvalidInputError, MessagingUnavailableError
from suuupra_commerce.messaging import DeliveryPolicy, IdempotentConsumer

from .conftest import envelope

pytestmark = pytest.mark.redis


@pytest.fixture
def client(redis_available: str) -> Iterator[Any]:
    made = redis_client(redis_available)
    yield made
    made.close()


@pytest.fixture
def bus(client: Any, redis_namespace: str) -> RedisStreamBus:
    return RedisStreamBus(
        client, namespace=redis_namespace, policy=DeliveryPolicy(redeliver_after=0.5)
    )


def test_every_key_is_under_the_namespace_and_holds_json(
    bus: RedisStreamBus, client: Any, redis_namespace: str
) -> None:
    consumer = bus.consumer("orders", "billing", "c1")
    sent = envelope(total={"amount": "9.50", "currency": "USD"})
    bus.publish("orders", sent)
    consumer.receive()
    RedisRelayPositions(client, namespace=redis_namespace).save("inventory", 3)
    RedisProcessedMessages(client, namespace=redis_namespace).remember("billing", sent.id)

    keys = sorted(k.decode() for k in client.scan_iter(f"{redis_namespace}:*"))
    assert keys == [
        f"{redis_namespace}:processed:billing:{sent.id}",
        f"{redis_namespace}:relay:inventory",
        f"{redis_namespace}:stream:orders",
    ]
    [(_id, fields)] = client.xrange(f"{redis_namespace}:stream:orders")
    assert json.loads(fields[b"envelope"])["payload"] == {
        "total": {"amount": "9.50", "currency": "USD"}
    }


def test_a_publish_and_a_receive_survive_a_dropped_connection_by_retrying(
    bus: RedisStreamBus, client: Any, redis_available: str
) -> None:
    consumer = bus.consumer("orders", "billing", "c1")
    killer = redis.Redis.from_url(redis_available)
    try:
        own = client.client_id()
        killer.client_kill_filter(_id=own)
        bus.publish("orders", envelope())
        killer.client_kill_filter(_id=client.client_id())
        assert len(consumer.receive()) == 1
    finally:
        killer.close()


def test_an_unreachable_redis_is_a_messaging_unavailable_error_within_a_bound() -> None:
    bus = RedisStreamBus.from_url("redis://127.0.0.1:1/0", namespace="nowhere", retries=2)
    started = time.monotonic()
    with pytest.raises(MessagingUnavailableError, match="publish"):
        bus.publish("orders", envelope())
    with pytest.raises(MessagingUnavailableError):
        bus.consumer("orders", "billing", "c1")
    with pytest.raises(MessagingUnavailableError):
        RedisRelayPositions(bus.client, namespace="nowhere").position("inventory")
    assert time.monotonic() - started < 10
    bus.close()


def test_approximate_trimming_keeps_a_stream_near_its_bound(
    client: Any, redis_namespace: str
) -> None:
    bus = RedisStreamBus(client, namespace=redis_namespace, policy=DeliveryPolicy(max_length=100))
    for start in range(0, 2000, 100):
        bus.publish("orders", *[envelope(n=i) for i in range(start, start + 100)])
    assert 100 <= bus.length("orders") < 300


def test_a_message_without_an_envelope_field_goes_to_the_dead_letters(
    bus: RedisStreamBus,
) -> None:
    consumer = bus.consumer("orders", "billing", "c1")
    bus.publish_raw("orders", envelope().to_json(), field=b"payload")
    assert consumer.receive() == []
    [dead] = bus.dead_letters("orders")
    assert dead.reason.startswith("unreadable")


def test_a_consumer_starts_again_when_its_stream_was_deleted(
    bus: RedisStreamBus, client: Any
) -> None:
    consumer = bus.consumer("orders", "billing", "c1")
    client.delete(bus.stream_key("orders"))
    assert consumer.receive() == []
    bus.publish("orders", sent := envelope())
    assert [d.envelope.id for d in consumer.receive()] == [sent.id]


def test_relay_positions_only_go_forward(client: Any, redis_namespace: str) -> None:
    positions = RedisRelayPositions(client, namespace=redis_namespace)
    positions.save("orders", 7)
    positions.save("orders", 3)
    assert positions.position("orders") == 7
    assert positions.position("carts") == 0


def test_redelivered_duplicates_are_dropped_by_a_redis_dedupe_store(
    bus: RedisStreamBus, client: Any, redis_namespace: str
) -> None:
    handled: list[str] = []
    worker = IdempotentConsumer(
        bus.consumer("orders", "billing", "c1"),
        lambda e: handled.append(e.id),
        RedisProcessedMessages(client, namespace=redis_namespace, ttl=60),
    )
    sent = envelope()
    bus.publish("orders", sent, sent, sent)
    assert worker.poll().duplicates == 2
    assert handled == [sent.id]


def test_a_resp3_client_is_refused(redis_available: str) -> None:
    resp3 = redis.Redis.from_url(redis_available, protocol=3)
    with pytest.raises(InvalidInputError, match="RESP2"):
        RedisStreamBus(resp3, namespace="x")
    resp3.close()

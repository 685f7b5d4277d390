"""Redis killed (SIGKILL) and restarted with its append-only file, and a bus consumer killed
under load: acknowledged orders survive, and every message takes effect exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from suuupra_commerce import (
    Commerce,
    Money,
    RegisterItem,
    Settings,
    StoreUnavailableError,
)
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.adapters.redis_messaging import RedisStreamBus
from suuupra_commerce.messaging import DeliveryPolicy, Envelope

from .conftest import DEEP, OrderClients, ThrowawayRedis, figures

CONSUMER = Path(__file__).with_name("bus_consumer.py")


def _prices() -> InMemoryPriceBook:
    book = InMemoryPriceBook()
    book.set_price("MUG-1", "mug", Money("5.00", "USD"))
    return book


@pytest.mark.redis
def test_no_acknowledged_order_is_lost_when_the_redis_store_is_killed_and_restarted(
    throwaway_redis: ThrowawayRedis,
) -> None:
    env = {
        "COMMERCE_PERSISTENCE": "redis",
        "REDIS_URL": throwaway_redis.url,
        "REDIS_KEY_PREFIX": "shop:",
        "REDIS_RETRIES": "2",
        "REDIS_SOCKET_TIMEOUT": "1",
        "REDIS_SOCKET_CONNECT_TIMEOUT": "1",
    }
    settings = Settings.from_env(env)
    with Commerce(settings, price_book=_prices()) as shop:
        shop.inventory.register(
            RegisterItem(
                sku="MUG-1",
                product_id="mug",
                name="mug",
                unit_price=Money("5.00", "USD"),
                initial_quantity=1_000_000,
            )
        )
        with OrderClients(shop, ["MUG-1"], 3) as clients:
            for _ in range(DEEP):
                time.sleep(1.0)
                throwaway_redis.kill()
                time.sleep(1.0)
                throwaway_redis.start()
                before = len(clients.acknowledged)
                time.sleep(1.0)
                assert len(clients.acknowledged) > before, "no order was placed after the restart"
    with Commerce(settings, price_book=_prices()) as fresh:  # a new process
        found = clients.check(fresh)
    figures(
        "Redis store killed (SIGKILL) and restarted from its append-only file under load",
        restarts=DEEP,
        **found,
    )
    assert set(clients.errors) <= {StoreUnavailableError.__name__}, clients.errors
    assert clients.errors, "the outage was never noticed"


@pytest.mark.redis
def test_a_killed_consumers_messages_are_reclaimed_and_take_effect_once_across_a_restart(
    throwaway_redis: ThrowawayRedis,
) -> None:
    messages = 400 * DEEP
    client = redis.Redis.from_url(throwaway_redis.url)
    bus = RedisStreamBus(
        client, namespace="reliability", policy=DeliveryPolicy(redeliver_after=1.0)
    )
    now = datetime.now(UTC)
    envelopes = [
        Envelope(
            id=f"m-{n}",
            type="commerce.order.placed",
            schema_version=1,
            key=f"order-{n % 7}",
            source="reliability",
            payload={"n": n},
            occurred_at=now,
        )
        for n in range(messages)
    ]
    for start in range(0, messages, 100):
        bus.publish("orders", *envelopes[start : start + 100])

    def consumer(name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(CONSUMER), throwaway_redis.url, name],
            env={**os.environ},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def effects() -> int:
        try:
            return int(redis.Redis.from_url(throwaway_redis.url).hlen("effects"))
        except redis.RedisError:
            return -1

    first = consumer("first")
    second: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 60
        while effects() < messages // 4:
            assert time.monotonic() < deadline, "the first consumer made no progress"
            time.sleep(0.02)
        # Freeze it where it holds messages taken and not yet acknowledged, then kill it.
        for _ in range(200):
            first.send_signal(signal.SIGSTOP)
            pending = _pending(client, "billing")
            if pending:
                break
            first.send_signal(signal.SIGCONT)
            time.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        done_by_first = effects()
        throwaway_redis.kill()
        throwaway_redis.start()
        second = consumer("second")
        deadline = time.monotonic() + 120
        while effects() < messages:
            assert time.monotonic() < deadline, f"stuck at {effects()} of {messages} effects"
            time.sleep(0.05)
        time.sleep(1.5)  # let any late redelivery happen: it must change nothing
        after = redis.Redis.from_url(throwaway_redis.url, decode_responses=True)
        recorded: dict[str, str] = after.hgetall("effects")  # type: ignore[assignment]
        runs = int(after.get("runs") or 0)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
    figures(
        "bus consumer SIGKILLed mid-load, Redis killed and restarted",
        messages=messages,
        effects_by_the_killed_consumer=done_by_first,
        pending_when_killed=pending,
        effects_by_the_second=sum(1 for v in recorded.values() if v == "second"),
        handler_runs=runs,
        effects=len(recorded),
    )
    assert pending > 0, "the consumer was never caught holding messages"
    assert sorted(recorded) == sorted(e.id for e in envelopes)  # every message, once
    assert runs >= messages


def _pending(client: redis.Redis, group: str) -> int:
    """Messages delivered to ``group`` and not acknowledged, over every stream."""
    total = 0
    for key in client.scan_iter():
        if client.type(key) != b"stream":
            continue
        try:
            total += int(client.xpending(key, group)["pending"])
        except redis.ResponseError:
            continue  # a stream the group does not read
    return total

"""Redis killed (SIGKILL) and restarted with its append-only file, and a bus consumer killed
under load: acknowledged orders survive, and every message takes effect exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
import redis

from suuupra_commerce import (
    Commerce,
    Money,
    OrderLineRequest,
    PlaceOrder,
    RegisterItem,
    Settings,
    StoreUnavailableError,
)
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.adapters.redis_messaging import RedisStreamBus
from suuupra_commerce.messaging import DeliveryPolicy, Envelope

from .conftest import DEEP, ThrowawayRedis, figures

CONSUMER = Path(__file__).with_name("bus_consumer.py")


def _prices() -> InMemoryPriceBook:
    book = InMemoryPriceBook()
    book.set_price("MUG-1", "mug", Money("5.00", "USD"))
    return book


def _place(key: str) -> PlaceOrder:
    return PlaceOrder(
        idempotency_key=key,
        customer_id="customer",
        currency="USD",
        lines=[OrderLineRequest(sku="MUG-1", quantity=1)],
    )


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
    acknowledged: dict[str, UUID] = {}
    errors: Counter[str] = Counter()
    stop = threading.Event()
    lock = threading.Lock()
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

        def client(number: int) -> None:
            n = 0
            while not stop.is_set():
                key = f"c{number}-{n}"
                while True:
                    try:
                        order_id = shop.orders.place(_place(key))
                    except Exception as error:  # noqa: BLE001 - counted, asserted below
                        with lock:
                            errors[type(error).__name__] += 1
                        if stop.is_set():
                            return
                        time.sleep(0.05)
                        continue
                    with lock:
                        acknowledged[key] = order_id
                    break
                n += 1

        threads = [threading.Thread(target=client, args=(c,)) for c in range(3)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(DEEP):
                time.sleep(1.0)
                throwaway_redis.kill()
                time.sleep(1.0)
                throwaway_redis.start()
                before = len(acknowledged)
                time.sleep(1.0)
                assert len(acknowledged) > before, "no order was placed after the restart"
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
    with Commerce(settings, price_book=_prices()) as fresh:
        stored = sum(fresh.orders.count_by_status().values())
        lost = []
        for key, order_id in acknowledged.items():
            try:
                fresh.orders.get(order_id)
            except Exception:  # noqa: BLE001 - not found
                lost.append(key)
        reserved = fresh.inventory.summary().reserved
    figures(
        "Redis store killed (SIGKILL) and restarted from its append-only file under load",
        restarts=DEEP,
        acknowledged_orders=len(acknowledged),
        stored_orders=stored,
        refused_while_down=sum(errors.values()),
        lost=len(lost),
    )
    assert set(errors) <= {StoreUnavailableError.__name__}, errors
    assert errors, "the outage was never noticed"
    assert lost == []
    assert len(acknowledged) <= stored <= len(acknowledged) + 3
    assert reserved == stored


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

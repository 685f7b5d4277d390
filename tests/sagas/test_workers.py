"""Workers share the saga partitions: fair shares, exclusive leases, take-over after a death."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import POSTGRES, _postgres_connect
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.adapters.memory_leases import InMemoryLeaseTable, InMemoryPartitionLeases
from suuupra_commerce.adapters.postgres_leases import PostgresPartitionLeases
from suuupra_commerce.sagas import SagaStatus
from suuupra_commerce.sagas.orders import fulfilment_saga_id
from suuupra_commerce.sagas.workers import SagaWorker
from suuupra_commerce.system import Settings
from suuupra_commerce.testing.sagas import SagaTestKit

PARTITIONS = 6


def _kits(env: dict[str, str], n: int) -> list[SagaTestKit]:
    settings = Settings.from_env({**env, "COMMERCE_SAGA_PARTITIONS": str(PARTITIONS)})
    first = SagaTestKit(settings, price_book=InMemoryPriceBook())
    kits = [first]
    for _ in range(n - 1):
        kits.append(
            SagaTestKit(
                settings,
                price_book=first.price_book,
                clock=first.clock,
                payments=first.payments,
                shipping=first.shipping,
                notifier=first.notifier,
            )
        )
    return kits


@pytest.fixture
def three(durable: dict[str, str]) -> Iterator[list[SagaTestKit]]:
    kits = _kits(durable, 3)
    try:
        yield kits
    finally:
        for kit in kits:
            kit.close()


def test_workers_split_the_partitions_fairly_and_exclusively(three: list[SagaTestKit]) -> None:
    table = InMemoryLeaseTable()
    workers = [SagaWorker(k.commerce.engine, InMemoryPartitionLeases(table)) for k in three]
    for _ in range(2):
        owned = [w.balance() for w in workers]
    assert sorted(len(o) for o in owned) == [2, 2, 2]
    assert set().union(*owned) == set(range(PARTITIONS))


def test_survivors_take_over_a_dead_workers_partitions_and_every_saga_completes(
    three: list[SagaTestKit],
) -> None:
    table = InMemoryLeaseTable(ttl=0.3)
    leases = [InMemoryPartitionLeases(table) for _ in three]
    workers = [
        SagaWorker(k.commerce.engine, lease, balance_interval=0.05)
        for k, lease in zip(three, leases, strict=True)
    ]
    first = three[0]
    first.stock("MUG-1", 200)
    stops = [threading.Event() for _ in workers]
    threads = [
        threading.Thread(target=w.run, args=(s,), daemon=True)
        for w, s in zip(workers, stops, strict=True)
    ]
    for thread in threads:
        thread.start()
    orders = [first.place(f"k-{n}", {"MUG-1": 1}, customer=f"c-{n}") for n in range(30)]
    # The third worker dies without a word: its leases lapse after the table's ttl.
    leases[2].renew = lambda: frozenset()  # type: ignore[method-assign]
    leases[2].close = lambda: None  # type: ignore[method-assign]
    stops[2].set()
    threads[2].join(timeout=10)
    with table.lock:
        table.seen[leases[2].member] = 0.0  # last seen long ago
    orders += [first.place(f"k-{n}", {"MUG-1": 1}, customer=f"c-{n}") for n in range(30, 45)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        statuses = [first.commerce.sagas.find(fulfilment_saga_id(o)) for o in orders]
        if all(s is not None and s.status.has_ended for s in statuses):
            break
        time.sleep(0.1)
    for stop in stops[:2]:
        stop.set()
    for thread in threads[:2]:
        thread.join(timeout=10)
    for order_id in orders:
        assert first.fulfilment(order_id) is SagaStatus.COMPLETED
    assert first.violations() == []
    # A command in flight when its worker stopped is sent again by the new owner, under the
    # same key: the gateway may be called twice, but each payment is captured once.
    for order_id in orders:
        captured = [a for a in first.payments.of_order(order_id) if a.captured is not None]
        assert len(captured) == 1
    assert sorted(len(w.engine.owned) for w in workers[:2]) == [0, 0], "stopped workers let go"


@pytest.fixture
def namespace(postgres_available: None) -> str:
    return f"test-leases-{time.monotonic_ns()}"


@pytest.mark.postgres
def test_postgres_leases_are_exclusive_and_count_their_members(namespace: str) -> None:
    one = PostgresPartitionLeases(POSTGRES, namespace)
    two = PostgresPartitionLeases(POSTGRES, namespace)
    try:
        one.join()
        two.join()
        assert one.members() == 2
        assert one.try_acquire(3)
        assert not two.try_acquire(3)
        one.release(3)
        assert two.try_acquire(3)
        assert one.renew() == frozenset()
        assert two.renew() == frozenset({3})
    finally:
        one.close()
        two.close()


@pytest.mark.postgres
def test_postgres_leases_of_a_dead_session_are_free_at_once(namespace: str) -> None:
    dead = PostgresPartitionLeases(POSTGRES, namespace)
    alive = PostgresPartitionLeases(POSTGRES, namespace)
    try:
        dead.join()
        alive.join()
        assert dead.try_acquire(0)
        assert not alive.try_acquire(0)
        conn: Any = _postgres_connect()
        try:
            conn.execute("SELECT pg_terminate_backend(%s)", (dead.pid,))
        finally:
            conn.close()
        deadline = time.monotonic() + 10
        while alive.members() > 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # the server ends the session right after the signal
        assert alive.members() == 1, "the dead worker no longer counts"
        assert alive.try_acquire(0), "the dead session's partition is free at once"
        assert dead.renew() == frozenset(), "the dead worker knows it lost everything"
    finally:
        dead.close()
        alive.close()

"""Workers share the saga partitions: fair shares, exclusive leases, take-over after a death."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import POSTGRES, _postgres_connect
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.adapters.memory_leases import InMemoryLeaseTable, InMemoryPartitionLeases
from suuupra_commerce.adapters.postgres_leases import PostgresPartitionLeases
from suuupra_commerce.adapters.redis_leases import RedisPartitionLeases
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


@pytest.fixture
def redis_leases(redis_namespace: str, redis_available: str) -> Iterator[Any]:
    """Builds Redis leases in this test's namespace; closes them afterwards."""
    built: list[RedisPartitionLeases] = []

    def make(ttl: float = 10.0) -> RedisPartitionLeases:
        leases = RedisPartitionLeases.from_url(
            redis_available, namespace=f"{redis_namespace}.sagas", ttl=ttl
        )
        built.append(leases)
        return leases

    yield make
    for leases in built:
        leases.close()


@pytest.mark.redis
def test_redis_leases_are_exclusive_and_count_their_members(redis_leases: Any) -> None:
    one, two = redis_leases(), redis_leases()
    one.join()
    two.join()
    assert one.members() == 2
    assert one.try_acquire(3)
    assert not two.try_acquire(3)
    one.release(3)
    assert two.try_acquire(3)
    assert one.renew() == frozenset()
    assert two.renew() == frozenset({3})
    two.close()
    assert one.members() == 1, "a worker that leaves stops counting at once"
    assert one.try_acquire(3), "and its partitions are free at once"


@pytest.mark.redis
def test_a_lapsed_redis_lease_is_given_up_and_never_touched_again(redis_leases: Any) -> None:
    slow, quick = redis_leases(ttl=0.2), redis_leases(ttl=0.2)
    assert slow.try_acquire(0)
    time.sleep(0.3)  # slow misses its renewal; the lease lapses
    assert quick.try_acquire(0)
    assert slow.renew() == frozenset(), "taken over: given up, not extended"
    slow.release(0)  # a no-op now: it must not delete quick's lease
    slow.close()
    assert quick.renew() == frozenset({0})
    assert quick.client.get(quick.lease_key(0)) == quick.token.encode()


HOLDER = """
import sys, time
from suuupra_commerce.adapters.redis_leases import RedisPartitionLeases
leases = RedisPartitionLeases.from_url(sys.argv[1], namespace=sys.argv[2], ttl=1.0)
leases.join()
assert leases.try_acquire(0) and leases.try_acquire(1)
print("holding", flush=True)
while True:
    leases.renew()
    time.sleep(0.1)
"""


@pytest.mark.redis
def test_redis_leases_of_a_killed_worker_are_taken_over_after_they_expire(
    redis_namespace: str, redis_available: str, redis_leases: Any
) -> None:
    namespace = f"{redis_namespace}.sagas"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis_available, namespace],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        alive = redis_leases(ttl=1.0)
        alive.join()
        assert alive.members() == 2
        assert not alive.try_acquire(0)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        killed_at = time.monotonic()
        assert not alive.try_acquire(1), "a killed worker's lease lasts until it expires"
        deadline = killed_at + 5
        while not alive.try_acquire(0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive.try_acquire(1)
        assert alive.renew() == frozenset({0, 1})
        assert alive.members() == 1, "the killed worker no longer counts"
        assert time.monotonic() - killed_at < 2.5
    finally:
        holder.kill()
        holder.communicate(timeout=10)


@pytest.mark.redis
@pytest.mark.parametrize(
    ("persistence", "messaging", "expected"),
    [
        ("redis", "none", "RedisPartitionLeases"),
        ("sqlite", "redis", "RedisPartitionLeases"),
        ("sqlite", "none", "SoleLeases"),
        ("memory", "redis", "SoleLeases"),
    ],
)
def test_workers_lease_on_redis_where_it_is_the_shared_server(
    persistence: str,
    messaging: str,
    expected: str,
    redis_namespace: str,
    redis_available: str,
    tmp_path: Any,
) -> None:
    env = {
        "COMMERCE_PERSISTENCE": persistence,
        "COMMERCE_MESSAGING": messaging,
        "COMMERCE_SQLITE_DIR": str(tmp_path),
        "COMMERCE_SAGA_LEASE_SECONDS": "3",
        "REDIS_URL": redis_available,
        "REDIS_KEY_PREFIX": f"{redis_namespace}:",
    }
    with SagaTestKit(Settings.from_env(env), price_book=InMemoryPriceBook()) as kit:
        worker = kit.commerce.worker()
        try:
            assert type(worker.leases).__name__ == expected
            if expected == "RedisPartitionLeases":
                assert getattr(worker.leases, "ttl") == 3.0  # noqa: B009
                assert worker.balance() == frozenset({0})
        finally:
            worker.leases.close()

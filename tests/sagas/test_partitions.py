"""Sagas fall into partitions; an engine works only on the partitions it owns."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.errors import SagaConfigurationError
from suuupra_commerce.sagas import SagaStatus
from suuupra_commerce.sagas.orders import fulfilment_saga_id
from suuupra_commerce.sagas.service import SagaEngine, partition_of
from suuupra_commerce.system import Settings
from suuupra_commerce.testing.sagas import SagaTestKit

PARTITIONS = 4


@pytest.fixture
def workers(durable: dict[str, str]) -> Iterator[tuple[SagaTestKit, SagaTestKit]]:
    """Two kits on one durable store, as two worker processes would be, sharing the fakes."""
    env = {**durable, "COMMERCE_SAGA_PARTITIONS": str(PARTITIONS)}
    first = SagaTestKit(Settings.from_env(env), price_book=InMemoryPriceBook())
    second = SagaTestKit(
        Settings.from_env(env),
        price_book=first.price_book,
        clock=first.clock,
        payments=first.payments,
        shipping=first.shipping,
        notifier=first.notifier,
    )
    try:
        yield first, second
    finally:
        second.close()
        first.close()


def test_engine_works_only_on_the_partitions_it_owns(
    workers: tuple[SagaTestKit, SagaTestKit],
) -> None:
    first, second = workers
    first.stock("MUG-1", 100)
    orders = [first.place(f"k-{n}", {"MUG-1": 1}, customer=f"c-{n}") for n in range(16)]
    mine = {0, 1}
    first.commerce.engine.own(mine)
    second.commerce.engine.own(set())
    first.commerce.engine.run_until_idle()
    for order_id in orders:
        saga = first.commerce.sagas.find(fulfilment_saga_id(order_id))
        if partition_of(fulfilment_saga_id(order_id), PARTITIONS) in mine:
            assert saga is not None
            assert saga.status is SagaStatus.COMPLETED
        else:
            assert saga is None, "another worker's saga was started here"
    second.commerce.engine.own({2, 3})
    second.commerce.engine.run_until_idle()
    for order_id in orders:
        assert first.fulfilment(order_id) is SagaStatus.COMPLETED
    assert first.violations() == []
    assert len({partition_of(fulfilment_saga_id(o), PARTITIONS) for o in orders}) == PARTITIONS


def test_new_owner_resumes_a_partition_where_the_last_one_stopped(
    workers: tuple[SagaTestKit, SagaTestKit],
) -> None:
    first, second = workers
    first.stock("MUG-1", 100)
    orders = [first.place(f"k-{n}", {"MUG-1": 1}, customer=f"c-{n}") for n in range(12)]
    first.commerce.engine.own(range(PARTITIONS))
    second.commerce.engine.own(set())
    first.commerce.engine.run_once()  # part of the way: sagas started, a step or so sent
    first.commerce.engine.own(set())  # the first worker goes away
    second.commerce.engine.own(range(PARTITIONS))
    second.commerce.engine.run_until_idle()
    for order_id in orders:
        assert first.fulfilment(order_id) is SagaStatus.COMPLETED
    assert first.violations() == []
    for order_id in orders:
        captured = [a for a in first.payments.of_order(order_id) if a.captured is not None]
        assert len(captured) == 1, "each payment captured once"


def test_ownership_outside_the_partitions_is_refused(
    workers: tuple[SagaTestKit, SagaTestKit],
) -> None:
    with pytest.raises(SagaConfigurationError):
        workers[0].commerce.engine.own({PARTITIONS})


def test_threads_work_on_several_partitions_at_once(
    durable: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**durable, "COMMERCE_SAGA_PARTITIONS": "8", "COMMERCE_SAGA_THREADS": "4"}
    kit = SagaTestKit(Settings.from_env(env), price_book=InMemoryPriceBook())
    try:
        kit.stock("MUG-1", 60)
        kit.stock("TEE-M", 60)
        orders = [
            kit.place(f"k-{n}", {"MUG-1": 1, "TEE-M": 1}, customer=f"c-{n}") for n in range(40)
        ]
        threads: set[str] = set()
        authorize = kit.payments.authorize

        def noting(request: Any) -> str:
            threads.add(threading.current_thread().name)
            return authorize(request)

        monkeypatch.setattr(kit.payments, "authorize", noting)
        assert kit.commerce.engine.threads == 4
        kit.commerce.engine.run_until_idle()
        assert [kit.fulfilment(o) for o in orders] == [SagaStatus.COMPLETED] * 40
        assert kit.violations() == []  # each authorization, capture, shipment once
        assert len(threads) > 1, threads
        assert all(name.startswith("saga-partition") for name in threads)
        kit.commerce.engine.stop()
        assert kit.commerce.engine._pool is None
    finally:
        kit.close()


def test_thread_count_is_checked() -> None:
    with pytest.raises(ValueError, match="saga_threads"):
        Settings.from_env({"COMMERCE_PERSISTENCE": "memory", "COMMERCE_SAGA_THREADS": "0"})
    memory = Settings.from_env({"COMMERCE_PERSISTENCE": "memory"})
    kit = SagaTestKit(memory, price_book=InMemoryPriceBook())
    try:
        engine = kit.commerce.engine
        for threads in (0, 65):
            with pytest.raises(SagaConfigurationError, match="threads"):
                SagaEngine(engine.sagas, engine.dispatcher, threads=threads)
    finally:
        kit.close()


def test_every_partition_is_tracked_to_the_end_of_each_log_it_read(
    workers: tuple[SagaTestKit, SagaTestKit],
) -> None:
    first, _ = workers
    first.stock("MUG-1", 100)
    for n in range(10):
        first.place(f"k-{n}", {"MUG-1": 1}, customer=f"c-{n}")
    engine = first.commerce.engine
    engine.own(range(PARTITIONS))
    engine.run_until_idle()
    sagas, dispatcher = first.commerce.sagas, engine.dispatcher
    followed = {
        (sagas, "Orders"): first.commerce.orders,
        (dispatcher, "Sagas"): sagas,
        (sagas, "SagaDispatcher"): dispatcher,
    }
    for (follower, name), leader in followed.items():
        read = leader.recorder.select_notifications(start=1, limit=10_000, topics=follower.topics)
        for partition in range(PARTITIONS):
            tracked = f"{name}@{partition}of{PARTITIONS}"
            # Other partitions' messages are passed over once, not read again every pass.
            assert follower.recorder.max_tracking_id(tracked) == read[-1].id, tracked


def test_a_failing_pass_is_raised_only_once_every_other_pass_has_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {"COMMERCE_PERSISTENCE": "memory", "COMMERCE_SAGA_PARTITIONS": "2"}
    kit = SagaTestKit(
        Settings.from_env({**env, "COMMERCE_SAGA_THREADS": "2"}), price_book=InMemoryPriceBook()
    )
    ended: list[int] = []

    def slow_or_failing(partition: int) -> None:
        if partition == 0:
            raise RuntimeError("partition 0 failed")
        time.sleep(0.3)
        ended.append(partition)

    try:
        monkeypatch.setattr(kit.commerce.engine, "_pass", slow_or_failing)
        with pytest.raises(RuntimeError, match="partition 0 failed"):
            kit.commerce.engine.run_once()
        assert ended == [1], "the next pass could have started on a partition still at work"
    finally:
        kit.close()

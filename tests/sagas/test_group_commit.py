"""The saga processors record the messages of a pass in groups: one transaction for many.

A group must never change what processing means: every message still has its effect
once, a message about a saga the group already changed reads it as recorded, each
message's events keep their own correlation, and a message that fails leaves what the
messages before it did recorded and itself to the next pass.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol, event
from eventsourcing.persistence import RecordConflictError
from eventsourcing.utils import get_topic

from suuupra_commerce.context import command_context, metadata_of
from suuupra_commerce.errors import NotFoundError
from suuupra_commerce.orders.domain import Order
from suuupra_commerce.sagas import SagaStatus
from suuupra_commerce.sagas.orders import fulfilment_saga_id
from suuupra_commerce.sagas.service import _Processor
from suuupra_commerce.testing.sagas import SagaTestKit

#: The events of an order its fulfilment took to the end, each change made once.
FULFILLED_ORDER = [
    "Order.Placed",
    "Order.StockReserved",
    "Order.Held",
    "Order.PaymentAuthorized",
    "Order.Confirmed",
    "Order.PaymentCaptured",
    "Order.FulfilmentStarted",
    "Order.Released",
]


def _count_calls(app: Application[UUID], method: str, name: str) -> Tally[str]:
    """Count calls of ``app.recorder.<method>`` from now on, under ``name``."""
    counted: Tally[str] = Tally()
    call = getattr(app.recorder, method)

    def counting(*args: Any, **kwargs: Any) -> Any:
        counted[name] += 1
        return call(*args, **kwargs)

    setattr(app.recorder, method, counting)
    return counted


def _count_selects(app: Application[UUID]) -> Tally[str]:
    """Count the aggregates ``app`` reads one at a time from now on."""
    return _count_calls(app, "select_events", "selects")


def _count_inserts(app: Application[UUID]) -> Tally[str]:
    """Count the transactions ``app`` records from now on."""
    return _count_calls(app, "insert_events", "inserts")


def test_a_pass_records_many_messages_in_one_transaction(kit: SagaTestKit) -> None:
    kit.stock("PEN-1", 100)
    orders = [kit.place(f"k-{n}", {"PEN-1": 1}, customer=f"c-{n}") for n in range(20)]
    sagas, dispatcher = kit.commerce.sagas, kit.commerce.engine.dispatcher
    commits = _count_inserts(sagas), _count_inserts(dispatcher)
    before = sagas.processed + dispatcher.processed
    kit.commerce.engine.run_until_idle()
    messages = sagas.processed + dispatcher.processed - before
    transactions = sum(c["inserts"] for c in commits)
    assert all(kit.fulfilment(order) is SagaStatus.COMPLETED for order in orders)
    assert kit.violations() == []
    # 20 sagas of 7 steps: 20 starts, 140 commands, 140 replies; a transaction per pass each way.
    assert messages == 300
    assert transactions <= messages / 10, (transactions, messages)


def test_each_message_of_a_group_keeps_its_own_correlation(kit: SagaTestKit) -> None:
    placed = {}
    for request in ("req-a", "req-b", "req-c"):
        with command_context(request):
            placed[request] = kit.place(f"key-{request}", {"MUG-1": 1}, customer=request)
    kit.commerce.engine.run_until_idle()
    for request, order_id in placed.items():
        saga_id = fulfilment_saga_id(order_id)
        events = kit.commerce.sagas.events.get(saga_id)
        assert {metadata_of(e)["correlation_id"] for e in events} == {request}


def test_a_failing_message_keeps_what_the_messages_before_it_did(
    kit: SagaTestKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders = [kit.place(f"k-{n}", {"MUG-1": 1}, customer=f"c-{n}") for n in range(3)]
    sagas = kit.commerce.sagas
    policy = sagas.policy
    failing = {fulfilment_saga_id(orders[1])}

    def flaky(domain_event: DomainEventProtocol[UUID], processing: ProcessingEvent[UUID]) -> None:
        if sagas.saga_of(domain_event) in failing:
            failing.clear()
            raise RuntimeError("the store went away mid-pass")
        policy(domain_event, processing)

    monkeypatch.setattr(sagas, "policy", flaky)
    with pytest.raises(RuntimeError, match="went away"):
        kit.commerce.engine.run_once()
    assert sagas.find(fulfilment_saga_id(orders[0])) is not None, "the first start was lost"
    assert sagas.find(fulfilment_saga_id(orders[1])) is None
    assert sagas.find(fulfilment_saga_id(orders[2])) is None, "processed past the failure"
    kit.commerce.engine.run_until_idle()
    assert [kit.fulfilment(o) for o in orders] == [SagaStatus.COMPLETED] * 3
    assert kit.violations() == []


# --- the participants' writes: held for a group, recorded once before it -------------------


def test_a_groups_order_changes_are_one_transaction_before_its_replies(kit: SagaTestKit) -> None:
    kit.stock("PEN-1", 100)
    orders = [kit.place(f"k-{n}", {"PEN-1": 1}, customer=f"c-{n}") for n in range(20)]
    dispatcher = kit.commerce.engine.dispatcher
    writes = _count_inserts(kit.commerce.orders)
    replies = _count_inserts(dispatcher)
    kit.commerce.engine.run_until_idle()
    assert all(kit.fulfilment(order) is SagaStatus.COMPLETED for order in orders)
    assert kit.violations() == []
    # Five order changes per saga (accept, confirm, authorize, capture, ship): 100 changes,
    # at most one transaction for each group of commands the dispatcher recorded.
    assert 0 < writes["inserts"] <= replies["inserts"] < 20, (writes, replies)


def test_the_engine_reads_a_sections_orders_at_once(kit: SagaTestKit) -> None:
    kit.stock("PEN-1", 100)
    orders = [kit.place(f"k-{n}", {"PEN-1": 1}, customer=f"c-{n}") for n in range(20)]
    orders_app = kit.commerce.orders
    singles = _count_selects(orders_app)
    read = orders_app.batch_reads
    batches: list[int] = []

    def counted(recorder: Any, after: Any) -> Any:
        batches.append(len(after))
        before = singles["selects"]
        found = read(recorder, after)
        singles["selects"] = before  # reads inside a batch are the batch's
        return found

    orders_app.batch_reads = counted
    kit.commerce.engine.run_until_idle()
    assert all(kit.fulfilment(order) is SagaStatus.COMPLETED for order in orders)
    # 20 orders, each loaded by the fulfilment trigger (in the saga store) and by 6
    # commands (in the dispatcher): read in batches, one per section, none on its own.
    assert 0 < len(batches) < 20, batches
    assert max(batches) > 1, batches
    assert singles["selects"] == 0, singles


def test_a_trigger_reads_hint_that_fails_only_costs_round_trips(
    kit: SagaTestKit, caplog: pytest.LogCaptureFixture
) -> None:
    sagas = kit.commerce.engine.sagas
    trigger = sagas._triggers[Order.Placed]

    def broken(placed: Any) -> list[tuple[Any, UUID]]:
        raise LookupError("the hint could not say")

    sagas._triggers[Order.Placed] = dataclasses.replace(trigger, reads=broken)
    orders = [kit.place(f"k-{n}", {"MUG-1": 1}, customer=f"c-{n}") for n in range(3)]
    singles = _count_selects(kit.commerce.orders)
    with caplog.at_level(logging.WARNING, logger="suuupra_commerce.sagas"):
        kit.commerce.engine.run_until_idle()
    assert all(kit.fulfilment(order) is SagaStatus.COMPLETED for order in orders)
    assert "reads hint failed for Placed" in caplog.text
    # Each trigger read its order on its own instead.
    assert singles["selects"] >= len(orders), singles


def test_a_group_whose_held_writes_lose_a_race_runs_again_command_by_command(
    kit: SagaTestKit,
) -> None:
    orders_app = kit.commerce.orders
    orders = [kit.place(f"k-{n}", {"MUG-1": 1}, customer=f"c-{n}") for n in range(3)]
    insert = orders_app.recorder.insert_events
    refused: list[int] = []

    def racing(stored_events: Any, **kwargs: Any) -> Any:
        # What a recorder does when another writer got to one of the orders first:
        # refuses the whole transaction, writing nothing.
        if not refused and len({e.originator_id for e in stored_events}) > 1:
            refused.append(len(stored_events))
            raise RecordConflictError("another writer changed an order of the group")
        return insert(stored_events, **kwargs)

    orders_app.recorder.insert_events = racing  # type: ignore[method-assign]
    kit.commerce.engine.run_until_idle()
    assert refused, "no group held changes to several orders"
    assert [kit.fulfilment(o) for o in orders] == [SagaStatus.COMPLETED] * 3
    assert kit.violations() == []
    # Each change made once: the refused group's changes were recorded nowhere.
    for order_id in orders:
        kinds = [type(e).__qualname__ for e in orders_app.events.get(order_id)]
        assert kinds == FULFILLED_ORDER, kinds


# --- the group rule on its own: a message about an aggregate the group changed ---------------


class Tick(Aggregate):
    """A leader's event: count one for ``counter``."""

    def __init__(self, counter: UUID) -> None:
        self.counter = counter


class Count(Aggregate):
    """What the follower keeps: how many ticks a counter got."""

    def __init__(self, counter: UUID) -> None:
        self.ticks = 0

    @staticmethod
    def create_id(counter: UUID) -> UUID:
        return counter

    @event("Counted")
    def count(self) -> None:
        self.ticks += 1


class Ticks(Application[UUID]):
    """The leader: where ticks happen."""

    log_section_size = 1000


class Counting(_Processor):
    """Counts ticks per counter; reads the count it adds to, so order within a pass matters.

    It loads counts as the saga processors load sagas: read for the whole section at once
    (:meth:`reads_for`), then loaded through the service's load path.
    """

    name = "Counting"
    topics = (get_topic(Tick.Created),)

    def saga_of(self, domain_event: DomainEventProtocol[UUID]) -> UUID | None:
        if not isinstance(domain_event, Tick.Created):
            return None
        counter: UUID = getattr(domain_event, "counter")  # noqa: B009 - set by Tick's __init__
        return counter

    def policy(
        self, domain_event: DomainEventProtocol[UUID], processing_event: ProcessingEvent[UUID]
    ) -> None:
        counter = self.saga_of(domain_event)
        if counter is None:
            return
        known = self._exists(counter)
        tally = self._load(Count, counter, NotFoundError(counter)) if known else Count(counter)
        tally.count()
        processing_event.collect_events(tally)

    def reads_for(self, domain_event: DomainEventProtocol[UUID]) -> UUID | None:
        return self.saga_of(domain_event)


#: The aggregate cache as the library configures it (fast-forwarded, copied out).
CACHED = {
    "AGGREGATE_CACHE_MAXSIZE": "100",
    "AGGREGATE_CACHE_FASTFORWARD": "y",
    "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
}


@pytest.fixture(params=["uncached", "cached"])
def counting(request: pytest.FixtureRequest) -> Iterator[tuple[Application[UUID], Counting]]:
    leader = Ticks({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    cache = CACHED if request.param == "cached" else {}
    follower = Counting({"PERSISTENCE_MODULE": "eventsourcing.popo", **cache})
    follower.follow("Ticks", leader.notification_log)
    yield leader, follower
    follower.close()
    leader.close()


def test_a_message_about_an_aggregate_the_group_changed_reads_it_as_recorded(
    counting: tuple[Application[UUID], Counting],
) -> None:
    leader, follower = counting
    a, b = uuid4(), uuid4()
    for counter in (a, b, a, a, b):
        leader.save(Tick(counter))
    commits = _count_inserts(follower)
    follower.pull_and_process("Ticks")
    assert follower.repository.get(a).ticks == 3
    assert follower.repository.get(b).ticks == 2
    assert commits["inserts"] == 3  # [a b] [a] [a b]: a group closes before a repeated counter
    assert follower.recorder.max_tracking_id("Ticks") == 5
    assert follower.processed == 5


def test_groups_are_at_most_group_size_messages(
    counting: tuple[Application[UUID], Counting], monkeypatch: pytest.MonkeyPatch
) -> None:
    leader, follower = counting
    monkeypatch.setattr(follower, "group_size", 4)
    for _ in range(10):
        leader.save(Tick(uuid4()))
    commits = _count_inserts(follower)
    follower.pull_and_process("Ticks")
    assert commits["inserts"] == 3  # 4 + 4 + 2
    assert follower.recorder.max_tracking_id("Ticks") == 10


def test_a_section_reads_what_its_messages_load_in_one_go(
    counting: tuple[Application[UUID], Counting],
) -> None:
    leader, follower = counting
    counters = [uuid4() for _ in range(5)]
    for counter in counters:
        leader.save(Tick(counter))
    follower.pull_and_process("Ticks")
    batches: list[set[UUID]] = []
    singles = _count_selects(follower)
    read = follower.batch_reads

    def counted(recorder: Any, after: Any) -> Any:
        batches.append(set(after))
        before = singles["selects"]
        found = read(recorder, after)
        singles["selects"] = before  # in memory, the batch is read one by one: not a load's
        return found

    follower.batch_reads = counted
    for counter in [*counters, counters[0]]:
        leader.save(Tick(counter))
    follower.pull_and_process("Ticks")
    assert batches == [set(counters)]
    assert singles["selects"] == 0
    assert [follower.repository.get(c).ticks for c in counters] == [3, 2, 2, 2, 2]


def test_a_count_another_writer_changed_after_the_section_was_read_is_not_lost(
    counting: tuple[Application[UUID], Counting],
) -> None:
    leader, follower = counting
    counter = uuid4()
    leader.save(Tick(counter))
    follower.pull_and_process("Ticks")
    read = follower.batch_reads

    def overtaken(recorder: Any, after: Any) -> Any:
        found = read(recorder, after)
        # Another writer (an operator, another worker) changes the count just after.
        theirs: Count = follower.repository.get(counter)
        theirs.count()
        follower.save(theirs)
        return found

    follower.batch_reads = overtaken
    leader.save(Tick(counter))
    with pytest.raises(RecordConflictError):
        follower.pull_and_process("Ticks")
    assert follower.recorder.max_tracking_id("Ticks") == 1  # nothing recorded for it
    follower.batch_reads = read
    follower.pull_and_process("Ticks")
    assert follower.repository.get(counter).ticks == 3

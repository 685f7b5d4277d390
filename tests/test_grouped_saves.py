"""Group commit: concurrent saves of one process recorded in one transaction.

A group must mean exactly what its saves would have meant one by one: every save gets
the notification ids of its own events, a save that lost a race or whose data the store
refuses (and only it) gets its error, a store out of reach is every member's failure, and a
save with a tracking record goes alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import (
    DataError,
    OperationalError,
    RecordConflictError,
    StoredEvent,
    Tracking,
)
from eventsourcing.popo import POPOApplicationRecorder, POPOProcessRecorder

from suuupra_commerce.group_commit import GroupCommit, GroupCommitEventStore
from suuupra_commerce.inventory.commands import RegisterItem, ReservationLine, ReserveStock
from suuupra_commerce.inventory.service import Inventory
from suuupra_commerce.money import Money


class GatedRecorder(POPOApplicationRecorder):
    """Records as in memory, but the first call waits at a gate: saves queue up behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.calls: list[int] = []

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        self.calls.append(len(stored_events))
        if len(self.calls) == 1:
            self.gate.wait(10)
        return super().insert_events(stored_events, **kwargs)


def _events(count: int, version: int = 1, originator: UUID | None = None) -> list[StoredEvent]:
    originator = originator or uuid4()
    return [StoredEvent(originator, version + n, "test:Happened", b"{}") for n in range(count)]


def _concurrently(group: GroupCommit, recorder: GatedRecorder, saves: list[Any]) -> list[Any]:
    """Run the saves on threads: the first holds the gate while the others queue behind it."""
    answers: list[Any] = [None] * len(saves)

    def run(n: int) -> None:
        try:
            answers[n] = group.insert_events(saves[n])
        except Exception as error:  # noqa: BLE001 - the test looks at what each save got
            answers[n] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(saves))]
    threads[0].start()
    _until(lambda: len(recorder.calls) >= 1)
    for thread in threads[1:]:
        thread.start()
    _until(lambda: group.waiting == len(saves) - 1)
    recorder.gate.set()
    for thread in threads:
        thread.join(10)
    return answers


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_saves_waiting_behind_a_call_are_recorded_in_one_call_each_with_its_own_ids() -> None:
    recorder = GatedRecorder()
    group = GroupCommit(recorder)
    saves = [_events(1), _events(2), _events(3), _events(1)]

    answers = _concurrently(group, recorder, saves)

    assert recorder.calls == [1, 6]  # the first alone; the three that queued, together
    assert (group.groups, group.grouped_saves) == (1, 3)
    for save, ids in zip(saves, answers, strict=True):
        assert len(ids) == len(save)
        stored = recorder.select_notifications(start=ids[0], limit=len(ids))
        assert [(n.originator_id, n.originator_version) for n in stored] == [
            (e.originator_id, e.originator_version) for e in save
        ]


def test_in_a_group_only_the_save_that_lost_a_race_gets_the_conflict() -> None:
    recorder = GatedRecorder()
    taken = uuid4()
    # Someone recorded its version 1 (past the gate, which holds the group's first call).
    POPOApplicationRecorder.insert_events(recorder, _events(1, originator=taken))
    group = GroupCommit(recorder)
    saves = [_events(1), _events(1), _events(1, originator=taken), _events(2)]

    answers = _concurrently(group, recorder, saves)

    assert isinstance(answers[2], RecordConflictError)
    for n in (0, 1, 3):
        assert len(answers[n]) == len(saves[n])
    # The group was refused whole, then its saves were recorded one by one.
    assert recorder.calls == [1, 4, 1, 1, 2]
    assert recorder.max_notification_id() == 1 + 1 + 1 + 2  # nothing of the loser
    assert group.groups == 0


def test_in_a_group_only_the_save_whose_data_the_store_refuses_fails() -> None:
    class Picky(GatedRecorder):
        def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
            if any(e.topic == "test:Refused" for e in stored_events):
                self.calls.append(len(stored_events))
                raise DataError("value out of range")
            return super().insert_events(stored_events, **kwargs)

    recorder = Picky()
    group = GroupCommit(recorder)
    refused = [StoredEvent(uuid4(), 1, "test:Refused", b"{}")]
    saves = [_events(1), _events(2), refused, _events(1)]

    answers = _concurrently(group, recorder, saves)

    assert isinstance(answers[2], DataError)
    assert [len(answers[n]) for n in (0, 1, 3)] == [1, 2, 1]
    assert recorder.calls == [1, 4, 2, 1, 1]  # refused whole, then one by one
    assert recorder.max_notification_id() == 1 + 2 + 1


def test_a_failure_of_the_store_is_every_members() -> None:
    class Failing(GatedRecorder):
        def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
            if self.calls:
                self.calls.append(len(stored_events))
                raise OperationalError("connection lost")
            return super().insert_events(stored_events, **kwargs)

    recorder = Failing()
    group = GroupCommit(recorder)

    answers = _concurrently(group, recorder, [_events(1), _events(1), _events(1)])

    assert len(answers[0]) == 1
    assert all(isinstance(a, OperationalError) for a in answers[1:])
    assert recorder.calls == [1, 2]  # one call for the group, not tried again one by one


def test_a_lone_save_records_at_once() -> None:
    recorder = GatedRecorder()
    recorder.gate.set()
    group = GroupCommit(recorder)

    assert group.insert_events(_events(2)) == [1, 2]
    assert recorder.calls == [2]


def test_saves_with_a_tracking_record_are_recorded_alone() -> None:
    recorder = POPOProcessRecorder()
    store = GroupCommitEventStore(mapper=_mapper(), recorder=recorder)
    seen: list[Any] = []
    insert = recorder.insert_events

    def counting(stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        seen.append(kwargs.get("tracking"))
        return insert(stored_events, **kwargs)

    recorder.insert_events = counting  # type: ignore[method-assign]
    tracking = Tracking(application_name="upstream", notification_id=7)
    store.put([], tracking=tracking)

    assert seen == [tracking]
    assert recorder.max_tracking_id("upstream") == 7


def _mapper() -> Any:
    from eventsourcing.application import Application

    return Application[UUID]({"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


@pytest.fixture
def inventory() -> Iterator[Inventory]:
    app = Inventory({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    for n in range(8):
        app.register(
            RegisterItem(
                sku=f"SKU-{n}",
                product_id=f"product-{n}",
                name=f"Item {n}",
                unit_price=Money(Decimal("1.00"), "USD"),
                initial_quantity=5,
            )
        )
    yield app
    app.close()


def test_commands_on_many_threads_are_grouped_and_each_takes_effect_once(
    inventory: Inventory,
) -> None:
    assert isinstance(inventory.events, GroupCommitEventStore)
    insert = inventory.recorder.insert_events
    slow_first = threading.Event()

    def slow(stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        if not slow_first.is_set():
            slow_first.set()
            time.sleep(0.2)  # the store is busy: other commands queue behind this one
        return insert(stored_events, **kwargs)

    inventory.recorder.insert_events = slow  # type: ignore[method-assign]
    before = inventory.recorder.max_notification_id() or 0

    def reserve(n: int) -> None:
        inventory.reserve(
            ReserveStock(
                order_id=f"order-{n}",
                lines=[ReservationLine(sku=f"SKU-{n % 8}", quantity=1)],
                duration_minutes=15,
            )
        )

    threads = [threading.Thread(target=reserve, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert inventory.events.group_commit.groups >= 1
    for n in range(8):
        item = inventory.item(f"SKU-{n}")
        assert (item.on_hand, item.reserved) == (5, 2)
        stored = inventory.recorder.select_events(item.inventory_id)
        assert [e.originator_version for e in stored] == list(range(1, item.version + 1))
    # One event per reservation in the log, none twice, none lost.
    new = inventory.recorder.select_notifications(start=before + 1, limit=1000)
    assert len(new) == 16

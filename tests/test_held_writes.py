"""Held writes: one thread's saves kept, read back by that thread, and recorded together.

The saga dispatcher holds what a group of commands changes in the orders service and
records it in one transaction before the group's replies. Holding must not change what a
command means: this thread reads its own held changes, nobody else sees them before they
are recorded, a command that fails half-way changes nothing held, and whatever is not
recorded is forgotten.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import RecordConflictError

from suuupra_commerce.application import HeldWrites
from suuupra_commerce.inventory.commands import ReceiveStock, RegisterItem
from suuupra_commerce.inventory.service import Inventory
from suuupra_commerce.money import Money


@pytest.fixture
def inventory() -> Iterator[Inventory]:
    app = Inventory({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.register(
        RegisterItem(
            sku="MUG-1",
            product_id="mug",
            name="Mug",
            unit_price=Money(Decimal("9.50"), "USD"),
            initial_quantity=10,
        )
    )
    yield app
    app.close()


def _transactions(app: Inventory) -> list[int]:
    """The number of events of each transaction ``app`` records from now on."""
    recorded: list[int] = []
    insert = app.recorder.insert_events

    def counting(stored_events: Any, **kwargs: Any) -> Any:
        recorded.append(len(stored_events))
        return insert(stored_events, **kwargs)

    app.recorder.insert_events = counting  # type: ignore[method-assign]
    return recorded


def _elsewhere(read: Any) -> Any:
    """What ``read()`` returns on another thread."""
    seen: list[Any] = []
    thread = threading.Thread(target=lambda: seen.append(read()))
    thread.start()
    thread.join()
    return seen[0]


def _on_hand(app: Inventory) -> int:
    return app.aggregate("MUG-1").on_hand


def test_held_saves_are_read_back_here_unseen_elsewhere_and_recorded_in_one_transaction(
    inventory: Inventory,
) -> None:
    recorded = _transactions(inventory)
    with HeldWrites([inventory]) as held:
        inventory.receive(ReceiveStock(sku="MUG-1", quantity=5))
        inventory.receive(ReceiveStock(sku="MUG-1", quantity=7))
        assert _on_hand(inventory) == 22
        assert _elsewhere(lambda: _on_hand(inventory)) == 10
        assert recorded == []
        held.record()
        assert recorded == [2]
        assert _elsewhere(lambda: _on_hand(inventory)) == 22
    assert _on_hand(inventory) == 22


def test_what_is_not_recorded_is_forgotten(inventory: Inventory) -> None:
    recorded = _transactions(inventory)
    with HeldWrites([inventory]):
        inventory.receive(ReceiveStock(sku="MUG-1", quantity=5))
    assert recorded == []
    assert _on_hand(inventory) == 10


def test_a_command_that_fails_half_way_changes_nothing_held(inventory: Inventory) -> None:
    with HeldWrites([inventory]) as held:
        inventory.receive(ReceiveStock(sku="MUG-1", quantity=5))

        def change_then_fail() -> None:
            inventory.aggregate("MUG-1").receive("default", 100, None)
            raise RuntimeError("failed before saving")

        with pytest.raises(RuntimeError, match="before saving"):
            inventory._run(change_then_fail)
        assert _on_hand(inventory) == 15
        held.record()
    item = inventory.aggregate("MUG-1")
    assert item.on_hand == 15
    assert item.version == len(list(inventory.events.get(item.id)))


def test_paused_lets_saves_through_and_forgets_what_was_held(inventory: Inventory) -> None:
    recorded = _transactions(inventory)
    with HeldWrites([inventory]) as held:
        inventory.receive(ReceiveStock(sku="MUG-1", quantity=5))
        with held.paused():
            inventory.receive(ReceiveStock(sku="MUG-1", quantity=1))
            assert recorded == [1]
            assert _elsewhere(lambda: _on_hand(inventory)) == 11
        inventory.receive(ReceiveStock(sku="MUG-1", quantity=2))
        held.record()
    assert recorded == [1, 1]
    assert _on_hand(inventory) == 13


def test_a_thread_holds_an_applications_writes_once(inventory: Inventory) -> None:
    with HeldWrites([inventory]), pytest.raises(RuntimeError, match="holds the writes"):
        HeldWrites([inventory]).__enter__()


def test_a_save_with_nothing_new_records_nothing(inventory: Inventory) -> None:
    recorded = _transactions(inventory)
    inventory.save(inventory.aggregate("MUG-1"))
    assert recorded == []


def test_an_aggregate_is_read_from_the_store_once_while_held(inventory: Inventory) -> None:
    reads: list[object] = []
    select = inventory.recorder.select_events

    def counting(*args: Any, **kwargs: Any) -> Any:
        reads.append(args)
        return select(*args, **kwargs)

    inventory.recorder.select_events = counting  # type: ignore[method-assign]
    with HeldWrites([inventory]):
        assert _on_hand(inventory) == 10
        assert _on_hand(inventory) == 10
        inventory.receive(ReceiveStock(sku="MUG-1", quantity=5))
        assert _on_hand(inventory) == 15
    assert len(reads) == 1


def test_a_held_change_to_what_another_writer_changed_meanwhile_is_refused(
    inventory: Inventory,
) -> None:
    with HeldWrites([inventory]) as held:
        assert _on_hand(inventory) == 10  # read while held
        _elsewhere(lambda: inventory.receive(ReceiveStock(sku="MUG-1", quantity=1)))
        inventory.receive(ReceiveStock(sku="MUG-1", quantity=5))  # from the read: 15
        with pytest.raises(RecordConflictError):
            held.record()
    assert _on_hand(inventory) == 11  # the other writer's change, and not the held one

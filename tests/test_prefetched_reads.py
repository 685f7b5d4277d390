"""Reading many aggregates at once: loads in the block use the read, and no update is lost.

The saga processors read the aggregates a pulled section concerns in one go
(``CommerceApplication.prefetched``) instead of one query per load. Loads then see an
aggregate as read, or as this thread recorded it since; a command whose read another
writer overtook is refused on saving, as after any load, and retried with a fresh read.
A command that changes several aggregates (a reservation of an order's lines) reads them
the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from suuupra_commerce.errors import UnknownSkuError
from suuupra_commerce.inventory.commands import (
    ReceiveStock,
    RegisterItem,
    ReservationLine,
    ReserveStock,
)
from suuupra_commerce.inventory.domain import InventoryItem, inventory_id_for
from suuupra_commerce.inventory.service import Inventory
from suuupra_commerce.money import Money

CACHED = {
    "AGGREGATE_CACHE_MAXSIZE": "100",
    "AGGREGATE_CACHE_FASTFORWARD": "y",
    "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
}


def _stocked(cache: dict[str, str]) -> Inventory:
    """An in-memory inventory with MUG-1 and TEE-M, ten of each."""
    app = Inventory({"PERSISTENCE_MODULE": "eventsourcing.popo", **cache})
    for sku in ("MUG-1", "TEE-M"):
        app.register(
            RegisterItem(
                sku=sku,
                product_id=sku.lower(),
                name=sku,
                unit_price=Money(Decimal("9.50"), "USD"),
                initial_quantity=10,
            )
        )
    return app


@pytest.fixture(params=["uncached", "cached"])
def inventory(request: pytest.FixtureRequest) -> Iterator[Inventory]:
    app = _stocked(CACHED if request.param == "cached" else {})
    yield app
    app.close()


class Reads:
    """Counts ``app``'s reads: in batches, and of one aggregate outside a batch."""

    def __init__(self, app: Inventory) -> None:
        self.batches: list[set[UUID]] = []
        self.singles = 0
        self._in_batch = False
        select, batch = app.recorder.select_events, app.batch_reads

        def counted_select(*args: Any, **kwargs: Any) -> Any:
            self.singles += not self._in_batch
            return select(*args, **kwargs)

        def counted_batch(recorder: Any, after: Any) -> Any:
            self.batches.append(set(after))
            self._in_batch = True
            try:
                return batch(recorder, after)
            finally:
                self._in_batch = False

        app.recorder.select_events = counted_select  # type: ignore[method-assign]
        app.batch_reads = counted_batch


def _item_ids(*skus: str) -> list[UUID]:
    return [inventory_id_for(sku) for sku in skus]


def test_loads_in_the_block_use_the_read_made_for_all(inventory: Inventory) -> None:
    reads = Reads(inventory)
    with inventory.prefetched(_item_ids("MUG-1", "TEE-M")):
        assert inventory.aggregate("MUG-1").on_hand == 10
        assert inventory.aggregate("TEE-M").on_hand == 10
        inventory.receive(ReceiveStock(sku="MUG-1", quantity=5))
        assert inventory.aggregate("MUG-1").on_hand == 15  # as this thread recorded it
    assert reads.batches == [set(_item_ids("MUG-1", "TEE-M"))]
    assert reads.singles == 0
    assert inventory.aggregate("MUG-1").on_hand == 15


def test_an_aggregate_read_as_missing_is_missing_without_another_read(
    inventory: Inventory,
) -> None:
    reads = Reads(inventory)
    nowhere = inventory_id_for("NONE-1")
    with inventory.prefetched([nowhere]):
        assert not inventory._exists(nowhere)
        with pytest.raises(UnknownSkuError):
            inventory.aggregate("NONE-1")
    assert reads.singles == 0


def test_a_command_whose_read_was_overtaken_retries_with_a_fresh_one(
    inventory: Inventory,
) -> None:
    with inventory.prefetched(_item_ids("MUG-1")):
        other = threading.Thread(
            target=lambda: inventory.receive(ReceiveStock(sku="MUG-1", quantity=1))
        )
        other.start()
        other.join()
        inventory.receive(ReceiveStock(sku="MUG-1", quantity=5))  # first try on 10: refused
        assert inventory.aggregate("MUG-1").on_hand == 16
    assert inventory.aggregate("MUG-1").on_hand == 16


def test_other_threads_do_not_use_this_threads_read(inventory: Inventory) -> None:
    seen: list[int] = []
    with inventory.prefetched(_item_ids("MUG-1")):
        inventory.receive(ReceiveStock(sku="MUG-1", quantity=5))
        other = threading.Thread(target=lambda: seen.append(inventory.aggregate("MUG-1").on_hand))
        other.start()
        other.join()
    assert seen == [15]


def test_an_empty_block_reads_nothing(inventory: Inventory) -> None:
    reads = Reads(inventory)
    with inventory.prefetched([]):
        pass
    assert reads.batches == []
    assert inventory._fetched() is None  # nothing kept past the block


def test_a_cached_copy_fast_forwarded_during_the_read_is_not_replayed_twice() -> None:
    app = _stocked(CACHED)
    assert app.aggregate("MUG-1").on_hand == 10  # cached
    read = app.batch_reads

    def racing(recorder: Any, after: Any) -> Any:
        # After the cached copy's version was taken: a write, and a load that fast-forwards
        # the cached copy in place past it.
        app.receive(ReceiveStock(sku="MUG-1", quantity=1))
        assert app.aggregate("MUG-1").on_hand == 11
        return read(recorder, after)

    app.batch_reads = racing
    with app.prefetched(_item_ids("MUG-1")):
        item = app.aggregate("MUG-1")
    assert (item.on_hand, item.version) == (11, app.aggregate("MUG-1").version)
    app.close()


def _reserve_both(inventory: Inventory, order: str) -> None:
    inventory.reserve(
        ReserveStock(
            order_id=order,
            lines=[
                ReservationLine(sku="MUG-1", quantity=1),
                ReservationLine(sku="TEE-M", quantity=2),
            ],
        )
    )


def test_a_command_that_changes_several_aggregates_reads_them_in_one_go(
    inventory: Inventory,
) -> None:
    reads = Reads(inventory)
    _reserve_both(inventory, "order-1")
    assert reads.batches == [set(_item_ids("MUG-1", "TEE-M"))]
    assert reads.singles == 0
    assert inventory._fetched() is None  # nothing kept past the command
    assert (inventory.aggregate("MUG-1").reserved, inventory.aggregate("TEE-M").reserved) == (1, 2)


def test_a_command_of_several_aggregates_whose_read_was_overtaken_reads_afresh(
    inventory: Inventory,
) -> None:
    reads = Reads(inventory)
    read = inventory.batch_reads
    overtaken = threading.Event()

    def racing(recorder: Any, after: Any) -> Any:
        found = read(recorder, after)
        if not overtaken.is_set():  # another process writes between the read and the save
            overtaken.set()
            tee: InventoryItem = inventory.repository.get(inventory_id_for("TEE-M"))
            tee.receive("default", 1, None)
            stored = [inventory.mapper.to_stored_event(e) for e in tee.collect_events()]
            inventory.recorder.insert_events(stored)
        return found

    inventory.batch_reads = racing
    _reserve_both(inventory, "order-1")
    assert len(reads.batches) == 2  # the first save was refused; the retry read again
    tee = inventory.aggregate("TEE-M")
    assert (tee.on_hand, tee.reserved) == (11, 2)


def test_a_command_inside_a_section_read_uses_that_read(inventory: Inventory) -> None:
    reads = Reads(inventory)
    with inventory.prefetched(_item_ids("MUG-1", "TEE-M")):
        _reserve_both(inventory, "order-1")
        assert inventory._fetched() is not None  # the section's read is still there
    assert reads.batches == [set(_item_ids("MUG-1", "TEE-M"))]
    assert reads.singles == 0

"""Acceptance: 8 threads race 400 single-unit orders for 300 units on a durable store.

Exactly 300 orders may be placed; every other placement must be refused with
``InsufficientStockError``; and a new process over the same store must replay exactly
300 reservations, 300 units reserved and 300 orders.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.errors import ConcurrencyConflictError, InsufficientStockError
from suuupra_commerce.inventory.commands import RegisterItem
from suuupra_commerce.inventory.domain import InventoryItem, inventory_id_for
from suuupra_commerce.money import Money
from suuupra_commerce.orders.commands import OrderLineRequest, PlaceOrder
from suuupra_commerce.orders.lifecycle import OrderStatus
from suuupra_commerce.system import Commerce, Settings
from suuupra_commerce.testing import FakeClock

SKU = "MUG-1"
UNITS = 300
ORDERS = 400
THREADS = 8


def _place(commerce: Commerce, number: int) -> UUID | Exception:
    try:
        return commerce.orders.place(
            PlaceOrder(
                idempotency_key=f"race-{number}",
                customer_id=f"cust-{number % 13}",
                currency="USD",
                lines=[OrderLineRequest(sku=SKU, quantity=1)],
            )
        )
    except Exception as error:  # noqa: BLE001 - every outcome is collected and judged below
        return error


@pytest.mark.slow
def test_exactly_300_placed_and_100_refused_when_8_threads_race_400_orders_for_300_units(
    durable: dict[str, str], price_book: InMemoryPriceBook
) -> None:
    settings = Settings.from_env(durable)
    with Commerce(settings, price_book=price_book, clock=FakeClock()) as commerce:
        commerce.inventory.register(
            RegisterItem(
                sku=SKU,
                product_id="mug",
                name="Mug",
                unit_price=Money("9.50", "USD"),
                initial_quantity=UNITS,
            )
        )
        with ThreadPoolExecutor(THREADS) as pool:
            outcomes = list(pool.map(lambda n: _place(commerce, n), range(ORDERS)))

    placed = {o for o in outcomes if isinstance(o, UUID)}
    refused = [o for o in outcomes if isinstance(o, InsufficientStockError)]
    unexpected = [o for o in outcomes if isinstance(o, Exception) and o not in refused]
    assert len(placed) == UNITS
    assert all(error.available == 0 for error in refused)

    # A new process over the same store replays exactly what was promised, no more.
    with Commerce(settings, price_book=price_book, clock=FakeClock()) as reopened:
        item = reopened.inventory.aggregate(SKU)
        assert (item.on_hand, item.reserved, item.available) == (UNITS, UNITS, 0)
        events = list(reopened.inventory.repository.event_store.get(inventory_id_for(SKU)))
        reserved = [e for e in events if isinstance(e, InventoryItem.Reserved)]
        assert len(reserved) == UNITS
        assert {UUID(e.order_id) for e in reserved} == placed
        view = reopened.inventory.item(SKU)
        assert (view.on_hand, view.reserved, view.available) == (UNITS, UNITS, 0)
        assert reopened.orders.count_by_status() == {OrderStatus.PENDING: UNITS}
        assert {s.order_id for s in reopened.orders.listing(limit=1000)} == placed

    # Every placement that did not get a unit must have been refused for want of stock.
    if unexpected:
        unexpected.sort(key=lambda error: isinstance(error, ConcurrencyConflictError))
        kinds = Counter(type(error).__name__ for error in unexpected)
        unexpected[0].add_note(
            f"{len(placed)} placed, {len(refused)} InsufficientStockError, others: {dict(kinds)}"
        )
        raise unexpected[0]
    assert len(refused) == ORDERS - UNITS

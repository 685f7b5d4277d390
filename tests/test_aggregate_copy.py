"""The aggregates' fast deep copy: equal state, nothing mutable shared, every field copied."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from suuupra_commerce import (
    AddItem,
    AdjustmentReason,
    AuthorizePayment,
    Cart,
    Commerce,
    ConfirmOrder,
    CreateCart,
    InventoryItem,
    Money,
    Order,
    OrderLineRequest,
    PlaceOrder,
    ReceiveStock,
    RegisterItem,
    ReserveStock,
    Settings,
    ShipOrder,
    StartFulfilment,
)
from suuupra_commerce.aggregate import CommerceAggregate, copy_state
from suuupra_commerce.inventory.commands import ReservationLine
from suuupra_commerce.inventory.domain import (
    ClosedReservation,
    ClosedReservations,
    LocationStock,
    Reservation,
    ReservationStatus,
)
from suuupra_commerce.testing import FakeClock, InMemoryPriceBook, state_of

NOW = datetime(2030, 1, 1, tzinfo=UTC)
_SHAREABLE = (str, bytes, int, float, bool, type(None), Money, datetime, timedelta)


def _mutables(value: Any, seen: set[int] | None = None) -> Iterator[int]:
    """The ids of every mutable object reachable from ``value``."""
    seen = set() if seen is None else seen
    if isinstance(value, _SHAREABLE) or id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, dict):
        yield id(value)
        for item in value.values():
            yield from _mutables(item, seen)
    elif isinstance(value, list | set):
        yield id(value)
        for item in value:
            yield from _mutables(item, seen)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        params = getattr(value, "__dataclass_params__", None)
        if params is None or not params.frozen:
            yield id(value)
        for spec in dataclasses.fields(value):
            yield from _mutables(getattr(value, spec.name), seen)


def _busy_item() -> InventoryItem:
    item = InventoryItem.register(
        sku="MUG-1",
        product_id="mug",
        name="Mug",
        unit_price=Money("9.50", "USD"),
        location="east",
        initial_quantity=10,
        low_stock_threshold=3,
    )
    item.add_location("west", 1)
    item.receive("west", 5, reference="po-1")
    for n in range(4):
        item.reserve(uuid4(), f"order-{n}", 2, NOW + timedelta(minutes=15))
    first = UUID(next(iter(item.reservations)))
    item.confirm(first)
    item.fulfil(first, 1, "parcel-1")
    item.adjust("east", -1, AdjustmentReason.DAMAGE, "dropped")
    return item


def test_copy_equals_the_original_and_shares_nothing_mutable_when_deep_copied() -> None:
    item = _busy_item()
    item.collect_events()
    clone = copy.deepcopy(item)
    assert state_of(clone) == state_of(item)
    shared = set(_mutables(vars(clone))) & set(_mutables(vars(item)))
    # Open reservations alone are shared, and changed only by replacing them (next tests).
    assert shared == {m for r in item.reservations.values() for m in _mutables(r)}
    assert clone.reservations is not item.reservations


def test_every_change_to_an_open_reservation_in_a_copy_leaves_the_original_alone() -> None:
    item = _busy_item()
    item.collect_events()
    before = copy.deepcopy(state_of(item))
    snapshot = {key: dataclasses.asdict(r) for key, r in item.reservations.items()}
    clone = copy.deepcopy(item)
    first, second, third = (UUID(key) for key in list(clone.reservations)[:3])
    clone.confirm(first)
    clone.fulfil(first, 1, "parcel-9")  # partly: it stays open
    clone.confirm(second)
    clone.release(second)
    clone.expire(third, NOW + timedelta(days=1))
    assert state_of(item) == before
    assert {key: dataclasses.asdict(r) for key, r in item.reservations.items()} == snapshot


def test_a_reservation_handed_out_is_a_copy_changing_it_changes_nothing_held() -> None:
    item = _busy_item()
    key = next(iter(item.reservations))
    handed = item.reservation(UUID(key))
    handed.held["east"] = 99
    handed.status = ReservationStatus.FULFILLED
    assert item.reservations[key].held != {"east": 99}
    assert item.reservations[key].status is not ReservationStatus.FULFILLED
    made = item.reserve(uuid4(), "order-y", 1, NOW + timedelta(minutes=5))
    made.held.clear()
    assert all(r.held for r in item.reservations.values())


def test_changing_the_copy_leaves_the_original_alone_when_a_command_runs_on_it() -> None:
    item = _busy_item()
    item.collect_events()
    before = copy.deepcopy(state_of(item))
    clone = copy.deepcopy(item)
    clone.reserve(uuid4(), "order-x", 3, NOW + timedelta(minutes=5))
    clone.receive("east", 4)
    assert state_of(item) == before


@pytest.mark.parametrize(
    "value",
    [
        LocationStock(priority=2, on_hand=7, reserved=3),
        Reservation(
            order_id="o-1",
            quantity=3,
            expires_at=NOW,
            status=ReservationStatus.CONFIRMED,
            held={"east": 2},
            fulfilled=1,
            shipments=["p-1"],
        ),
    ],
    ids=lambda v: type(v).__name__,
)
def test_hand_written_copy_covers_every_field_when_a_value_copies_itself(value: Any) -> None:
    clone = copy_state(value)
    assert clone == value
    assert clone is not value
    for spec in dataclasses.fields(value):
        field_value = getattr(value, spec.name)
        if isinstance(field_value, dict | list | set):
            assert getattr(clone, spec.name) is not field_value, spec.name


def test_every_aggregate_uses_the_fast_copy_when_declared() -> None:
    for aggregate in (InventoryItem, Order, Cart):
        assert issubclass(aggregate, CommerceAggregate)


def test_services_sharing_a_store_see_each_others_writes_when_aggregates_are_cached(
    durable: dict[str, str],
) -> None:
    """Two Commerce instances (two processes, each with its aggregate cache) over one store."""
    book = InMemoryPriceBook()
    book.set_price("MUG-1", "Mug", Money("9.50", "USD"))
    settings = Settings.from_env(durable)
    assert settings.aggregate_cache_size > 0
    with (
        Commerce(settings, price_book=book, clock=FakeClock()) as one,
        Commerce(settings, price_book=book, clock=FakeClock()) as two,
    ):
        one.inventory.register(
            RegisterItem(sku="MUG-1", product_id="mug", name="Mug", unit_price=Money("9.50", "USD"))
        )
        one.inventory.receive(ReceiveStock(sku="MUG-1", quantity=3))
        two.inventory.receive(ReceiveStock(sku="MUG-1", quantity=2))
        one.inventory.reserve(
            ReserveStock(order_id="a", lines=[ReservationLine(sku="MUG-1", quantity=4)])
        )
        assert two.inventory.aggregate("MUG-1").available == 1
        order = two.orders.place(
            PlaceOrder(
                idempotency_key="k",
                customer_id="c",
                currency="USD",
                lines=[OrderLineRequest(sku="MUG-1", quantity=1)],
            )
        )
        one.orders.authorize_payment(AuthorizePayment(order_id=order, reference="p"))
        two.orders.confirm(ConfirmOrder(order_id=order))
        one.orders.start_fulfilment(StartFulfilment(order_id=order))
        two.orders.ship(ShipOrder(order_id=order, shipment_id="s"))
        assert one.inventory.aggregate("MUG-1").on_hand == 4
        assert one.orders.get(order) == two.orders.get(order)
        cart = one.carts.create(CreateCart(customer_id="c", currency="USD"))
        two.carts.add_item(AddItem(cart_id=cart, sku="MUG-1", quantity=1))
        one.carts.add_item(AddItem(cart_id=cart, sku="MUG-1", quantity=1))
        assert two.carts.get(cart).item_count == 2


def test_ended_reservations_are_shared_not_copied_and_closing_in_a_copy_leaves_the_original() -> (
    None
):
    item = _busy_item()
    open_id = UUID(next(iter(item.reservations)))
    item.collect_events()
    clone = copy.deepcopy(item)
    assert clone.closed is item.closed
    clone.release(open_id)
    assert str(open_id) in clone.closed
    assert str(open_id) not in item.closed
    assert str(open_id) in item.reservations


def test_closing_one_more_reservation_leaves_every_earlier_mapping_as_it_was() -> None:
    def closed(n: int) -> ClosedReservation:
        return ClosedReservation(f"order-{n}", 1, NOW, ReservationStatus.FULFILLED, 1, (f"p{n}",))

    versions = [ClosedReservations()]
    expected: dict[str, ClosedReservation] = {}
    for n in range(3000):
        key = f"r-{n % 2500}"  # the last 500 close again keys already closed
        expected[key] = closed(n)
        versions.append(versions[-1].with_closed(key, closed(n)))
    latest = versions[-1]
    assert len(latest) == len(expected) == 2500
    assert dict(latest) == expected
    assert latest == expected  # a Mapping: equal by content, whatever the order
    assert ClosedReservations(expected) == latest
    assert len(versions[1000]) == 1000
    assert "r-1000" not in versions[1000]
    assert versions[2600]["r-50"] == closed(2550)
    assert versions[2500]["r-50"] == closed(50)
    assert "r-9999" not in latest
    assert latest.get("r-9999") is None

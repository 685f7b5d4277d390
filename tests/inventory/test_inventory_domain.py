"""Unit tests of the InventoryItem aggregate: the events it records, what it refuses, replay."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)

from suuupra_commerce.errors import (
    CommerceError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InsufficientStockError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidQuantityError,
    ReservationNotFoundError,
)
from suuupra_commerce.inventory.domain import (
    MAX_LOCATIONS,
    AdjustmentReason,
    InventoryItem,
    LocationLevel,
    MostStockFirst,
    PriorityOrder,
    ReservationStatus,
    inventory_id_for,
    reservation_id_for,
)
from suuupra_commerce.money import Money
from suuupra_commerce.testing import replay, state_of
from suuupra_commerce.values import MAX_QUANTITY

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
DUE = NOW + timedelta(minutes=15)
SKU = "MUG-1"

E = TypeVar("E", bound=CommerceError)


def new_item(
    *,
    stock: int = 0,
    locations: Sequence[tuple[str, int, int]] = (),
    backorder_limit: int | None = None,
    low_stock: int = 0,
    reorder_point: int = 0,
    reorder_quantity: int = 0,
) -> InventoryItem:
    """An item at "main" with ``stock`` units, plus ``(name, priority, stock)`` locations."""
    item = InventoryItem.register(
        sku=SKU,
        product_id="mug",
        name="Mug",
        unit_price=Money("9.50", "USD"),
        location="main",
        initial_quantity=stock,
        low_stock_threshold=low_stock,
        reorder_point=reorder_point,
        reorder_quantity=reorder_quantity,
        allow_backorder=backorder_limit is not None,
        backorder_limit=backorder_limit or 0,
    )
    for name, priority, units in locations:
        item.add_location(name, priority)
        if units:
            item.receive(name, units)
    item.collect_events()
    return item


def names(events: Sequence[object]) -> list[str]:
    return [type(e).__name__ for e in events]


def reserved_confirmed(item: InventoryItem, quantity: int, order: str = "o-1") -> UUID:
    rid = reservation_id_for(order, item.sku)
    item.reserve(rid, order, quantity, DUE)
    item.confirm(rid)
    item.collect_events()
    return rid


def assert_refused(
    item: InventoryItem, error: type[E], change: Callable[[], object]
) -> pytest.ExceptionInfo[E]:
    """The change raises ``error`` and leaves the item exactly as it was, recording nothing."""
    pending = list(item.pending_events)
    version = item.version
    before = copy.deepcopy(state_of(item))
    with pytest.raises(error) as caught:
        change()
    assert item.pending_events == pending
    assert item.version == version
    assert state_of(item) == before
    return caught


def through_json(events: Sequence[CanMutateAggregate[UUID]]) -> list[Any]:
    """The events as a store gives them back: encoded to JSON and decoded again."""
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    return [mapper.to_domain_event(mapper.to_stored_event(e)) for e in events]


# --- registration ---------------------------------------------------------------------------


def test_registered_and_stock_received_are_recorded_when_registering_with_opening_stock() -> None:
    item = InventoryItem.register(
        sku=SKU, product_id="mug", name="Mug", unit_price=Money("9.50", "USD"), initial_quantity=7
    )
    registered, received = item.collect_events()
    assert isinstance(registered, InventoryItem.Registered)
    assert isinstance(received, InventoryItem.StockReceived)
    assert (registered.sku, registered.location, registered.unit_price) == (
        SKU,
        "default",
        {"amount": "9.50", "currency": "USD"},
    )
    assert (received.location, received.quantity, received.reference) == ("default", 7, None)
    assert item.id == inventory_id_for(SKU)
    assert (item.on_hand, item.reserved, item.available) == (7, 0, 7)


def test_only_registered_is_recorded_when_registering_without_stock() -> None:
    item = InventoryItem.register(
        sku=SKU, product_id="mug", name="Mug", unit_price=Money("0", "USD")
    )
    assert names(item.collect_events()) == ["Registered"]
    assert item.available == 0


def test_sku_is_accepted_when_it_is_exactly_64_characters() -> None:
    sku = "S" * 64
    item = InventoryItem.register(sku=sku, product_id="p", name="n", unit_price=Money("1", "USD"))
    assert item.sku == sku


@pytest.mark.parametrize(
    "sku",
    [
        pytest.param("", id="empty"),
        pytest.param("S" * 65, id="65-chars"),
        pytest.param("MUG\x001", id="nul"),
        pytest.param("MUG-1\u200b", id="zero-width-space"),
        pytest.param("\u041cUG-1", id="cyrillic-em"),
        pytest.param("\uff2dUG-1", id="fullwidth-m"),
        pytest.param("MU\u0307G-1", id="combining-dot"),
        pytest.param(" MUG-1", id="leading-space"),
        pytest.param("-MUG", id="leading-dash"),
        pytest.param(42, id="not-a-string"),
    ],
)
def test_invalid_identifier_error_when_registering_a_bad_sku(sku: Any) -> None:
    with pytest.raises(InvalidIdentifierError):
        InventoryItem.register(sku=sku, product_id="p", name="n", unit_price=Money("1", "USD"))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"initial_quantity": -1}, InvalidQuantityError),
        ({"initial_quantity": MAX_QUANTITY + 1}, InvalidQuantityError),
        ({"initial_quantity": True}, InvalidQuantityError),
        ({"initial_quantity": 2.0}, InvalidQuantityError),
        ({"low_stock_threshold": -1}, InvalidQuantityError),
        ({"reorder_quantity": 1.5}, InvalidQuantityError),
        ({"backorder_limit": 3}, InvalidInputError),
        ({"allow_backorder": 1}, InvalidInputError),
        ({"unit_price": Money("-1", "USD")}, InvalidInputError),
        ({"unit_price": "9.50"}, InvalidInputError),
        ({"location": ""}, InvalidIdentifierError),
        ({"product_id": "p\x00"}, InvalidIdentifierError),
    ],
)
def test_typed_error_when_registering_with_bad_settings(
    change: dict[str, Any], error: type[CommerceError]
) -> None:
    kwargs: dict[str, Any] = {
        "sku": SKU,
        "product_id": "mug",
        "name": "Mug",
        "unit_price": Money("9.50", "USD"),
        **change,
    }
    with pytest.raises(error):
        InventoryItem.register(**kwargs)


# --- locations ------------------------------------------------------------------------------


def test_location_added_is_recorded_when_adding_a_location() -> None:
    item = new_item()
    item.add_location("west", 5)
    (added,) = item.collect_events()
    assert isinstance(added, InventoryItem.LocationAdded)
    assert (added.location, added.priority) == ("west", 5)
    assert [lv.location for lv in item.levels()] == ["main", "west"]


def test_nothing_is_recorded_when_adding_a_location_twice() -> None:
    item = new_item(locations=[("west", 5, 0)])
    item.add_location("west", 9)
    assert item.collect_events() == []
    assert item.locations["west"].priority == 5


@pytest.mark.parametrize(
    ("location", "priority", "error"),
    [
        ("west", -1, InvalidInputError),
        ("west", 1001, InvalidInputError),
        ("west", True, InvalidInputError),
        ("west", 1.0, InvalidInputError),
        ("", 1, InvalidIdentifierError),
        ("we\x00st", 1, InvalidIdentifierError),
    ],
)
def test_typed_error_when_adding_a_bad_location(
    location: str, priority: Any, error: type[CommerceError]
) -> None:
    item = new_item()
    assert_refused(item, error, lambda: item.add_location(location, priority))


def test_invalid_input_error_when_adding_more_locations_than_the_limit() -> None:
    item = new_item(locations=[(f"loc-{i}", 1, 0) for i in range(MAX_LOCATIONS - 1)])
    assert len(item.locations) == MAX_LOCATIONS
    assert_refused(item, InvalidInputError, lambda: item.add_location("one-too-many", 1))


# --- receiving ------------------------------------------------------------------------------


def test_stock_received_is_recorded_when_receiving_units() -> None:
    item = new_item(stock=2)
    item.receive("main", 5, reference="po-1")
    (received,) = item.collect_events()
    assert isinstance(received, InventoryItem.StockReceived)
    assert (received.location, received.quantity, received.reference) == ("main", 5, "po-1")
    assert item.on_hand == 7


def test_nothing_is_recorded_when_receiving_the_same_reference_again() -> None:
    item = new_item()
    item.receive("main", 5, reference="po-1")
    item.collect_events()
    item.receive("main", 5, reference="po-1")
    item.receive("main", 9, reference="po-1")
    assert item.collect_events() == []
    assert item.on_hand == 5


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1, True, False, 1.0, 2.5, "3", None])
def test_invalid_quantity_error_when_receiving_a_bad_quantity(quantity: Any) -> None:
    item = new_item(stock=1)
    assert_refused(item, InvalidQuantityError, lambda: item.receive("main", quantity))


def test_invalid_input_error_when_receiving_at_an_unknown_location() -> None:
    item = new_item()
    assert_refused(item, InvalidInputError, lambda: item.receive("nowhere", 1))


@pytest.mark.parametrize("reference", ["", "po\x00", " po", "x" * 300])
def test_invalid_identifier_error_when_receiving_with_a_bad_reference(reference: str) -> None:
    item = new_item()
    assert_refused(item, InvalidIdentifierError, lambda: item.receive("main", 1, reference))


def test_invalid_quantity_error_when_receiving_beyond_the_stock_limit() -> None:
    item = new_item()
    for _ in range(MAX_LOCATIONS):
        item.receive("main", MAX_QUANTITY)
    assert_refused(item, InvalidQuantityError, lambda: item.receive("main", 1))


# --- adjusting ------------------------------------------------------------------------------


def test_stock_adjusted_is_recorded_with_its_reason_when_removing_damaged_units() -> None:
    item = new_item(stock=10)
    item.adjust("main", -3, AdjustmentReason.DAMAGE, note="dropped", reference="adj-1")
    (adjusted,) = item.collect_events()
    assert isinstance(adjusted, InventoryItem.StockAdjusted)
    assert (adjusted.location, adjusted.delta, adjusted.reason, adjusted.note) == (
        "main",
        -3,
        "damage",
        "dropped",
    )
    assert adjusted.reference == "adj-1"
    assert item.on_hand == 7


def test_stock_adjusted_is_recorded_when_adding_returned_units_by_reason_text() -> None:
    item = new_item(stock=1)
    item.adjust("main", 4, "return_to_stock")  # type: ignore[arg-type]
    (adjusted,) = item.collect_events()
    assert isinstance(adjusted, InventoryItem.StockAdjusted)
    assert (adjusted.delta, adjusted.reason) == (4, "return_to_stock")
    assert item.on_hand == 5


def test_nothing_is_recorded_when_adjusting_with_the_same_reference_again() -> None:
    item = new_item(stock=10)
    item.adjust("main", -2, AdjustmentReason.THEFT, reference="adj-1")
    item.collect_events()
    item.adjust("main", -2, AdjustmentReason.THEFT, reference="adj-1")
    assert item.collect_events() == []
    assert item.on_hand == 8


@pytest.mark.parametrize("delta", [0, True, -1.0, 1.5, MAX_QUANTITY + 1, -MAX_QUANTITY - 1, "2"])
def test_invalid_quantity_error_when_adjusting_by_a_bad_delta(delta: Any) -> None:
    item = new_item(stock=10)
    assert_refused(
        item, InvalidQuantityError, lambda: item.adjust("main", delta, AdjustmentReason.OTHER)
    )


def test_invalid_input_error_when_adjusting_with_an_unknown_reason() -> None:
    item = new_item(stock=10)
    assert_refused(item, InvalidInputError, lambda: item.adjust("main", -1, "lost-in-space"))  # type: ignore[arg-type]


@pytest.mark.parametrize("note", ["bad\x00note", "x" * 501, "line\nbreak"])
def test_invalid_input_error_when_adjusting_with_a_bad_note(note: str) -> None:
    item = new_item(stock=10)
    assert_refused(
        item, InvalidInputError, lambda: item.adjust("main", -1, AdjustmentReason.OTHER, note)
    )


def test_invalid_input_error_when_adjusting_at_an_unknown_location() -> None:
    item = new_item(stock=10)
    assert_refused(
        item, InvalidInputError, lambda: item.adjust("nowhere", 1, AdjustmentReason.FOUND)
    )


def test_insufficient_stock_error_when_removing_more_than_is_on_hand() -> None:
    item = new_item(stock=3)
    caught = assert_refused(
        item, InsufficientStockError, lambda: item.adjust("main", -4, AdjustmentReason.THEFT)
    )
    assert (caught.value.sku, caught.value.requested, caught.value.available) == (SKU, 4, 3)


def test_insufficient_stock_error_when_removing_reserved_units() -> None:
    item = new_item(stock=10)
    item.reserve(uuid4(), "o-1", 8, DUE)
    item.collect_events()
    caught = assert_refused(
        item, InsufficientStockError, lambda: item.adjust("main", -3, AdjustmentReason.DAMAGE)
    )
    assert caught.value.available == 2
    item.adjust("main", -2, AdjustmentReason.DAMAGE)
    assert (item.on_hand, item.reserved, item.available) == (8, 8, 0)


def test_insufficient_stock_error_when_removing_reserved_units_at_that_location() -> None:
    item = new_item(stock=5, locations=[("west", 1, 5)])
    item.reserve(uuid4(), "o-1", 5, DUE)  # main has priority 0: all of it held at main
    item.collect_events()
    assert_refused(
        item, InsufficientStockError, lambda: item.adjust("main", -1, AdjustmentReason.DAMAGE)
    )
    item.adjust("west", -5, AdjustmentReason.DAMAGE)
    assert (item.on_hand, item.available) == (5, 0)


def test_removing_reserved_units_is_allowed_down_to_the_limit_when_backorders_are_allowed() -> None:
    item = new_item(stock=5, backorder_limit=3)
    item.reserve(uuid4(), "o-1", 5, DUE)
    item.adjust("main", -3, AdjustmentReason.DAMAGE)
    assert item.available == -3
    assert_refused(
        item, InsufficientStockError, lambda: item.adjust("main", -1, AdjustmentReason.DAMAGE)
    )


# --- physical count -------------------------------------------------------------------------


@pytest.mark.parametrize(("counted", "discrepancy"), [(7, -3), (10, 0), (14, 4), (0, -10)])
def test_physically_counted_is_recorded_with_the_discrepancy_when_counting(
    counted: int, discrepancy: int
) -> None:
    item = new_item(stock=10)
    assert item.count("main", counted, note="cycle count") == discrepancy
    (event,) = item.collect_events()
    assert isinstance(event, InventoryItem.PhysicallyCounted)
    assert (event.location, event.counted, event.expected, event.discrepancy) == (
        "main",
        counted,
        10,
        discrepancy,
    )
    assert event.note == "cycle count"
    assert item.on_hand == counted


def test_insufficient_stock_error_when_counting_below_the_reserved_units() -> None:
    item = new_item(stock=10)
    item.reserve(uuid4(), "o-1", 6, DUE)
    item.collect_events()
    assert_refused(item, InsufficientStockError, lambda: item.count("main", 5))
    assert item.count("main", 6) == -4
    assert item.available == 0


@pytest.mark.parametrize("counted", [-1, True, 3.0, MAX_QUANTITY + 1, None])
def test_invalid_quantity_error_when_counting_a_bad_number(counted: Any) -> None:
    item = new_item(stock=10)
    assert_refused(item, InvalidQuantityError, lambda: item.count("main", counted))


def test_invalid_input_error_when_counting_at_an_unknown_location() -> None:
    item = new_item(stock=10)
    assert_refused(item, InvalidInputError, lambda: item.count("nowhere", 1))


# --- reserving ------------------------------------------------------------------------------


def test_reserved_is_recorded_with_allocations_when_reserving() -> None:
    item = new_item(stock=10)
    rid = uuid4()
    reservation = item.reserve(rid, "o-1", 4, DUE)
    (event,) = item.collect_events()
    assert isinstance(event, InventoryItem.Reserved)
    assert (event.reservation_id, event.order_id, event.quantity) == (rid, "o-1", 4)
    assert (event.allocations, event.expires_at) == ({"main": 4}, DUE)
    assert reservation.status is ReservationStatus.RESERVED
    assert (item.on_hand, item.reserved, item.available) == (10, 4, 6)


def test_existing_reservation_is_returned_and_nothing_recorded_when_reserving_again() -> None:
    item = new_item(stock=10)
    rid = uuid4()
    first = item.reserve(rid, "o-1", 4, DUE)
    item.collect_events()
    again = item.reserve(rid, "o-1", 4, DUE + timedelta(hours=1))
    assert again == first  # the same reservation (handed out as a copy)
    assert item.collect_events() == []
    assert item.reserved == 4


@pytest.mark.parametrize(("order", "quantity"), [("o-2", 4), ("o-1", 5)])
def test_idempotency_key_reused_error_when_a_reservation_id_is_reused_for_another_line(
    order: str, quantity: int
) -> None:
    item = new_item(stock=10)
    rid = uuid4()
    item.reserve(rid, "o-1", 4, DUE)
    item.collect_events()
    assert_refused(item, IdempotencyKeyReusedError, lambda: item.reserve(rid, order, quantity, DUE))


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1, True, 2.0, "1", None])
def test_invalid_quantity_error_when_reserving_a_bad_quantity(quantity: Any) -> None:
    item = new_item(stock=10)
    assert_refused(item, InvalidQuantityError, lambda: item.reserve(uuid4(), "o-1", quantity, DUE))


@pytest.mark.parametrize(
    "expires_at",
    [datetime(2030, 1, 1, 12, 15), "2030-01-01T12:15:00+00:00", None],  # noqa: DTZ001
)
def test_invalid_input_error_when_reserving_without_an_aware_deadline(expires_at: Any) -> None:
    item = new_item(stock=10)
    assert_refused(item, InvalidInputError, lambda: item.reserve(uuid4(), "o-1", 1, expires_at))


@pytest.mark.parametrize(
    ("reservation_id", "order_id"),
    [("not-a-uuid", "o-1"), (str(uuid4()), "o-1"), (uuid4(), ""), (uuid4(), "o\x00")],
)
def test_invalid_identifier_error_when_reserving_with_bad_ids(
    reservation_id: Any, order_id: str
) -> None:
    item = new_item(stock=10)
    assert_refused(
        item, InvalidIdentifierError, lambda: item.reserve(reservation_id, order_id, 1, DUE)
    )


def test_insufficient_stock_error_when_reserving_more_than_is_available() -> None:
    item = new_item(stock=5)
    item.reserve(uuid4(), "o-1", 3, DUE)
    item.collect_events()
    caught = assert_refused(
        item, InsufficientStockError, lambda: item.reserve(uuid4(), "o-2", 3, DUE)
    )
    assert (caught.value.requested, caught.value.available) == (3, 2)


def test_backorder_is_reserved_down_to_the_limit_when_backorders_are_allowed() -> None:
    item = new_item(stock=2, locations=[("west", 1, 1)], backorder_limit=4)
    item.reserve(uuid4(), "o-1", 7, DUE)
    (event,) = item.collect_events()
    assert isinstance(event, InventoryItem.Reserved)
    # what is on hand is taken first, the backordered rest is promised from main (priority 0)
    assert event.allocations == {"main": 6, "west": 1}
    assert (item.on_hand, item.reserved, item.available) == (3, 7, -4)
    assert item.floor == -4


def test_insufficient_stock_error_when_reserving_beyond_the_backorder_limit() -> None:
    item = new_item(stock=2, backorder_limit=4)
    item.reserve(uuid4(), "o-1", 5, DUE)
    item.collect_events()
    caught = assert_refused(
        item, InsufficientStockError, lambda: item.reserve(uuid4(), "o-2", 2, DUE)
    )
    assert caught.value.available == 1
    item.reserve(uuid4(), "o-3", 1, DUE)
    assert item.available == -4


# --- allocation -----------------------------------------------------------------------------


def reserve_with(item: InventoryItem, quantity: int, strategy: Any) -> dict[str, int]:
    item.reserve(uuid4(), "o-1", quantity, DUE, strategy)
    (event,) = item.collect_events()
    assert isinstance(event, InventoryItem.Reserved)
    return dict(event.allocations)


def test_prefers_the_highest_priority_location_when_allocating_in_priority_order() -> None:
    item = new_item(stock=3, locations=[("east", 1, 10), ("west", 2, 20)])
    assert reserve_with(item, 3, PriorityOrder()) == {"main": 3}


def test_prefers_the_next_priority_location_for_the_rest_when_the_first_is_short() -> None:
    item = new_item(stock=3, locations=[("west", 2, 20), ("east", 1, 10)])
    assert reserve_with(item, 15, PriorityOrder()) == {"main": 3, "east": 10, "west": 2}
    assert item.locations["east"].available == 0


def test_prefers_the_first_name_when_priorities_tie_in_priority_order() -> None:
    item = new_item(locations=[("b-site", 1, 5), ("a-site", 1, 5)])
    assert reserve_with(item, 2, PriorityOrder()) == {"a-site": 2}


def test_prefers_the_location_with_most_stock_when_allocating_most_stock_first() -> None:
    item = new_item(stock=3, locations=[("east", 1, 10), ("west", 2, 20)])
    assert reserve_with(item, 3, MostStockFirst()) == {"west": 3}


def test_prefers_the_next_fullest_location_for_the_rest_when_allocating_most_stock_first() -> None:
    item = new_item(stock=3, locations=[("east", 1, 10), ("west", 2, 20)])
    assert reserve_with(item, 25, MostStockFirst()) == {"west": 20, "east": 5}


def test_prefers_available_over_on_hand_when_allocating_most_stock_first() -> None:
    item = new_item(stock=12, locations=[("west", 1, 10)])
    item.reserve(uuid4(), "o-0", 8, DUE)  # main: 12 on hand but only 4 available
    item.collect_events()
    assert reserve_with(item, 5, MostStockFirst()) == {"west": 5}


class FromLocation:
    """A pluggable strategy: everything from one named location."""

    def __init__(self, location: str) -> None:
        self.location = location

    def allocate(self, quantity: int, levels: Sequence[LocationLevel]) -> dict[str, int]:
        return {self.location: quantity}


def test_prefers_what_a_custom_strategy_chooses_when_one_is_given() -> None:
    item = new_item(stock=10, locations=[("west", 5, 10)])
    assert reserve_with(item, 4, FromLocation("west")) == {"west": 4}


class Fixed:
    """A strategy that answers the same thing whatever it is asked."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def allocate(self, quantity: int, levels: Sequence[LocationLevel]) -> dict[str, int]:
        return self.answer  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"nowhere": 3}, id="unknown-location"),
        pytest.param({"main": 4, "west": -1}, id="negative-units"),
        pytest.param({"main": 6}, id="more-than-available-there"),
        pytest.param({"main": 3, "west": 3}, id="more-than-asked"),
        pytest.param({"main": True, "west": 2}, id="bool-units"),
        pytest.param({"main": 1.5, "west": 1.5}, id="float-units"),
        pytest.param({}, id="nothing-while-stock-is-available"),
        pytest.param({"main": 1}, id="short-while-stock-is-available"),
        pytest.param(None, id="not-a-mapping"),
        pytest.param([("main", 3)], id="pairs-not-a-mapping"),
    ],
)
def test_invalid_input_error_when_the_allocation_strategy_answers_badly(answer: Any) -> None:
    item = new_item(stock=5, locations=[("west", 1, 5)])
    assert_refused(
        item, InvalidInputError, lambda: item.reserve(uuid4(), "o-1", 3, DUE, Fixed(answer))
    )


def test_shortfall_is_backordered_when_the_strategy_takes_all_there_is() -> None:
    item = new_item(stock=1, locations=[("west", 1, 2)], backorder_limit=5)
    assert reserve_with(item, 6, Fixed({"main": 1, "west": 2})) == {"main": 4, "west": 2}


def test_invalid_input_error_when_the_strategy_leaves_available_units_as_backorder() -> None:
    item = new_item(stock=1, locations=[("west", 1, 2)], backorder_limit=5)
    assert_refused(
        item,
        InvalidInputError,
        lambda: item.reserve(uuid4(), "o-1", 6, DUE, Fixed({"main": 1})),
    )


# --- confirming -----------------------------------------------------------------------------


def test_reservation_confirmed_is_recorded_when_confirming() -> None:
    item = new_item(stock=5)
    rid = uuid4()
    item.reserve(rid, "o-1", 2, DUE)
    item.collect_events()
    item.confirm(rid)
    (event,) = item.collect_events()
    assert isinstance(event, InventoryItem.ReservationConfirmed)
    assert event.reservation_id == rid
    assert item.reservation(rid).status is ReservationStatus.CONFIRMED


def test_nothing_is_recorded_when_confirming_again() -> None:
    item = new_item(stock=5)
    rid = reserved_confirmed(item, 2)
    item.confirm(rid)
    assert item.collect_events() == []


def test_nothing_is_recorded_when_confirming_a_fulfilled_reservation_again() -> None:
    item = new_item(stock=5)
    rid = reserved_confirmed(item, 2)
    item.fulfil(rid)
    item.collect_events()
    item.confirm(rid)
    assert item.collect_events() == []
    assert item.reservation(rid).status is ReservationStatus.FULFILLED


def test_illegal_transition_error_when_confirming_an_expired_reservation() -> None:
    item = new_item(stock=5)
    rid = uuid4()
    item.reserve(rid, "o-1", 2, DUE)
    item.expire(rid, DUE)
    item.collect_events()
    caught = assert_refused(item, IllegalTransitionError, lambda: item.confirm(rid))
    assert caught.value.state == "expired"


def test_illegal_transition_error_when_confirming_a_released_reservation() -> None:
    item = new_item(stock=5)
    rid = uuid4()
    item.reserve(rid, "o-1", 2, DUE)
    item.release(rid)
    item.collect_events()
    assert_refused(item, IllegalTransitionError, lambda: item.confirm(rid))


def test_reservation_not_found_error_when_confirming_an_unknown_reservation() -> None:
    item = new_item(stock=5)
    assert_refused(item, ReservationNotFoundError, lambda: item.confirm(uuid4()))


# --- fulfilling -----------------------------------------------------------------------------


def test_reservation_fulfilled_is_recorded_and_both_levels_drop_when_fulfilling() -> None:
    item = new_item(stock=10)
    rid = reserved_confirmed(item, 4)
    assert item.fulfil(rid, shipment="ship-1") == 4
    (event,) = item.collect_events()
    assert isinstance(event, InventoryItem.ReservationFulfilled)
    assert (event.reservation_id, event.shipment, event.taken) == (rid, "ship-1", {"main": 4})
    assert (item.on_hand, item.reserved, item.available) == (6, 0, 6)
    reservation = item.reservation(rid)
    assert (reservation.status, reservation.fulfilled, reservation.outstanding) == (
        ReservationStatus.FULFILLED,
        4,
        0,
    )


def test_reservation_stays_confirmed_when_fulfilled_in_part() -> None:
    item = new_item(stock=10, locations=[("west", 1, 10)])
    rid = reservation_id_for("o-1", SKU)
    item.reserve(rid, "o-1", 14, DUE)  # main 10, west 4
    item.confirm(rid)
    item.collect_events()
    assert item.fulfil(rid, 12, "ship-1") == 12
    (event,) = item.collect_events()
    assert isinstance(event, InventoryItem.ReservationFulfilled)
    assert event.taken == {"main": 10, "west": 2}
    assert item.reservation(rid).status is ReservationStatus.CONFIRMED
    assert item.reservation(rid).outstanding == 2
    assert item.fulfil(rid, shipment="ship-2") == 2
    assert item.reservation(rid).status is ReservationStatus.FULFILLED
    assert item.reservation(rid).shipments == ["ship-1", "ship-2"]
    assert (item.on_hand, item.reserved) == (6, 0)


def test_nothing_is_recorded_when_fulfilling_the_same_shipment_again() -> None:
    item = new_item(stock=10)
    rid = reserved_confirmed(item, 4)
    item.fulfil(rid, 1, "ship-1")
    item.collect_events()
    assert item.fulfil(rid, 1, "ship-1") == 0
    assert item.collect_events() == []
    assert (item.on_hand, item.reserved) == (9, 3)


def test_nothing_is_recorded_when_fulfilling_a_fulfilled_reservation_again() -> None:
    item = new_item(stock=10)
    rid = reserved_confirmed(item, 4)
    item.fulfil(rid)
    item.collect_events()
    assert item.fulfil(rid) == 0
    assert item.fulfil(rid, shipment="another") == 0
    assert item.collect_events() == []
    assert item.on_hand == 6


def test_invalid_quantity_error_when_fulfilling_more_than_is_outstanding() -> None:
    item = new_item(stock=10)
    rid = reserved_confirmed(item, 4)
    item.fulfil(rid, 3, "ship-1")
    item.collect_events()
    assert_refused(item, InvalidQuantityError, lambda: item.fulfil(rid, 2, "ship-2"))


@pytest.mark.parametrize("quantity", [0, -1, True, 1.0, "1"])
def test_invalid_quantity_error_when_fulfilling_a_bad_quantity(quantity: Any) -> None:
    item = new_item(stock=10)
    rid = reserved_confirmed(item, 4)
    assert_refused(item, InvalidQuantityError, lambda: item.fulfil(rid, quantity, "ship-1"))
    item.fulfil(rid, 1, "ship-1")
    item.collect_events()
    # a repeated shipment does not excuse a malformed quantity
    assert_refused(item, InvalidQuantityError, lambda: item.fulfil(rid, quantity, "ship-1"))


def test_illegal_transition_error_when_fulfilling_an_unconfirmed_reservation() -> None:
    item = new_item(stock=10)
    rid = uuid4()
    item.reserve(rid, "o-1", 4, DUE)
    item.collect_events()
    assert_refused(item, IllegalTransitionError, lambda: item.fulfil(rid))
    assert_refused(item, IllegalTransitionError, lambda: item.fulfil(rid, 9, "ship-1"))


def test_illegal_transition_error_when_fulfilling_a_released_reservation() -> None:
    item = new_item(stock=10)
    rid = reserved_confirmed(item, 4)
    item.release(rid)
    item.collect_events()
    assert_refused(item, IllegalTransitionError, lambda: item.fulfil(rid))


def test_invalid_identifier_error_when_fulfilling_with_a_bad_shipment() -> None:
    item = new_item(stock=10)
    rid = reserved_confirmed(item, 4)
    assert_refused(item, InvalidIdentifierError, lambda: item.fulfil(rid, 1, ""))


def test_insufficient_stock_error_when_fulfilling_backordered_units_not_yet_received() -> None:
    item = new_item(stock=2, backorder_limit=5)
    rid = reserved_confirmed(item, 5)
    assert_refused(item, InsufficientStockError, lambda: item.fulfil(rid))
    assert item.fulfil(rid, 2, "ship-1") == 2
    assert item.on_hand == 0
    item.receive("main", 3)
    assert item.fulfil(rid, shipment="ship-2") == 3
    assert (item.on_hand, item.reserved, item.reservation(rid).status) == (
        0,
        0,
        ReservationStatus.FULFILLED,
    )


# --- releasing ------------------------------------------------------------------------------


@pytest.mark.parametrize("confirm", [False, True])
def test_reservation_released_is_recorded_when_releasing(confirm: bool) -> None:
    item = new_item(stock=10)
    rid = uuid4()
    item.reserve(rid, "o-1", 4, DUE)
    if confirm:
        item.confirm(rid)
    item.collect_events()
    assert item.release(rid, "customer cancelled") == 4
    (event,) = item.collect_events()
    assert isinstance(event, InventoryItem.ReservationReleased)
    assert (event.reservation_id, event.freed, event.reason) == (
        rid,
        {"main": 4},
        "customer cancelled",
    )
    assert (item.reserved, item.available) == (0, 10)
    assert item.reservation(rid).status is ReservationStatus.RELEASED


def test_only_the_unshipped_units_are_released_when_releasing_a_part_fulfilled_reservation() -> (
    None
):
    item = new_item(stock=10)
    rid = reserved_confirmed(item, 4)
    item.fulfil(rid, 1, "ship-1")
    assert item.release(rid) == 3
    assert (item.on_hand, item.reserved, item.available) == (9, 0, 9)


def test_nothing_is_recorded_when_releasing_again() -> None:
    item = new_item(stock=10)
    rid = reserved_confirmed(item, 4)
    item.release(rid)
    item.collect_events()
    assert item.release(rid) == 0
    assert item.collect_events() == []
    assert item.available == 10


@pytest.mark.parametrize("ended", ["fulfilled", "expired"])
def test_nothing_is_recorded_when_releasing_an_ended_reservation(ended: str) -> None:
    item = new_item(stock=10)
    rid = uuid4()
    item.reserve(rid, "o-1", 4, DUE)
    if ended == "fulfilled":
        item.confirm(rid)
        item.fulfil(rid)
    else:
        item.expire(rid, DUE)
    item.collect_events()
    levels = (item.on_hand, item.reserved)
    assert item.release(rid) == 0
    assert item.collect_events() == []
    assert (item.on_hand, item.reserved) == levels


def test_typed_errors_when_releasing_with_a_bad_reason_or_an_unknown_id() -> None:
    item = new_item(stock=10)
    rid = reserved_confirmed(item, 4)
    assert_refused(item, InvalidIdentifierError, lambda: item.release(rid, ""))
    assert_refused(item, ReservationNotFoundError, lambda: item.release(uuid4()))


# --- expiring -------------------------------------------------------------------------------


def test_reservation_expired_is_recorded_when_expiring_a_due_reservation() -> None:
    item = new_item(stock=10)
    rid = uuid4()
    item.reserve(rid, "o-1", 4, DUE)
    item.collect_events()
    assert item.expired_reservations(DUE) == [rid]
    assert item.expire(rid, DUE) == 4
    (event,) = item.collect_events()
    assert isinstance(event, InventoryItem.ReservationExpired)
    assert (event.reservation_id, event.freed) == (rid, {"main": 4})
    assert (item.reserved, item.available) == (0, 10)
    assert item.reservation(rid).status is ReservationStatus.EXPIRED
    assert item.expired_reservations(DUE + timedelta(days=1)) == []


def test_nothing_is_recorded_when_expiring_again() -> None:
    item = new_item(stock=10)
    rid = uuid4()
    item.reserve(rid, "o-1", 4, DUE)
    item.expire(rid, DUE)
    item.collect_events()
    assert item.expire(rid, DUE + timedelta(hours=1)) == 0
    assert item.collect_events() == []


def test_nothing_is_recorded_when_expiring_before_the_deadline() -> None:
    item = new_item(stock=10)
    rid = uuid4()
    item.reserve(rid, "o-1", 4, DUE)
    item.collect_events()
    just_before = DUE - timedelta(microseconds=1)
    assert item.expired_reservations(just_before) == []
    assert item.expire(rid, just_before) == 0
    assert item.collect_events() == []
    assert item.reserved == 4


def test_nothing_is_recorded_when_expiring_a_confirmed_reservation() -> None:
    item = new_item(stock=10)
    rid = reserved_confirmed(item, 4)
    assert item.expired_reservations(DUE + timedelta(days=1)) == []
    assert item.expire(rid, DUE + timedelta(days=1)) == 0
    assert item.collect_events() == []
    assert item.reserved == 4


def test_invalid_input_error_when_expiring_with_a_naive_time() -> None:
    item = new_item(stock=10)
    rid = uuid4()
    item.reserve(rid, "o-1", 4, DUE)
    item.collect_events()
    naive = datetime(2031, 1, 1)  # noqa: DTZ001
    assert_refused(item, InvalidInputError, lambda: item.expire(rid, naive))
    assert_refused(item, InvalidInputError, lambda: item.expired_reservations(naive))


# --- thresholds -----------------------------------------------------------------------------


def test_low_stock_is_signalled_once_when_available_crosses_the_threshold() -> None:
    item = new_item(stock=10, low_stock=5)
    item.reserve(uuid4(), "o-1", 4, DUE)  # 6: above
    assert names(item.collect_events()) == ["Reserved"]
    item.reserve(uuid4(), "o-2", 1, DUE)  # 5: at the threshold counts as low
    events = item.collect_events()
    assert names(events) == ["Reserved", "LowStockSignalled"]
    signal = events[1]
    assert isinstance(signal, InventoryItem.LowStockSignalled)
    assert (signal.available, signal.threshold) == (5, 5)
    assert item.low_stock
    item.reserve(uuid4(), "o-3", 2, DUE)  # 3: still below, no second signal
    item.adjust("main", -1, AdjustmentReason.DAMAGE)
    assert names(item.collect_events()) == ["Reserved", "StockAdjusted"]


def test_low_stock_is_cleared_once_when_available_rises_above_the_threshold() -> None:
    item = new_item(stock=4, low_stock=5)
    assert item.low_stock
    item.receive("main", 1)  # 5: still low
    assert names(item.collect_events()) == ["StockReceived"]
    item.receive("main", 1)  # 6: above
    events = item.collect_events()
    assert names(events) == ["StockReceived", "LowStockCleared"]
    assert not item.low_stock
    item.receive("main", 10)
    assert names(item.collect_events()) == ["StockReceived"]


def test_low_stock_is_signalled_when_registering_below_the_threshold() -> None:
    item = InventoryItem.register(
        sku=SKU,
        product_id="mug",
        name="Mug",
        unit_price=Money("1", "USD"),
        initial_quantity=2,
        low_stock_threshold=3,
    )
    assert names(item.collect_events()) == ["Registered", "StockReceived", "LowStockSignalled"]


def test_reorder_is_signalled_once_with_its_quantity_when_crossing_the_reorder_point() -> None:
    item = new_item(stock=10, reorder_point=3, reorder_quantity=50)
    item.adjust("main", -7, AdjustmentReason.THEFT)
    events = item.collect_events()
    assert names(events) == ["StockAdjusted", "ReorderNeeded"]
    needed = events[1]
    assert isinstance(needed, InventoryItem.ReorderNeeded)
    assert (needed.available, needed.reorder_point, needed.reorder_quantity) == (3, 3, 50)
    item.adjust("main", -1, AdjustmentReason.THEFT)
    assert names(item.collect_events()) == ["StockAdjusted"]
    item.receive("main", 50)
    assert names(item.collect_events()) == ["StockReceived", "ReorderCleared"]
    assert not item.reorder_needed


def test_signals_follow_the_new_settings_when_thresholds_change() -> None:
    item = new_item(stock=10)
    item.set_thresholds(10, 10, 20)
    events = item.collect_events()
    assert names(events) == ["ThresholdsChanged", "LowStockSignalled", "ReorderNeeded"]
    changed = events[0]
    assert isinstance(changed, InventoryItem.ThresholdsChanged)
    assert (changed.low_stock_threshold, changed.reorder_point, changed.reorder_quantity) == (
        10,
        10,
        20,
    )
    item.set_thresholds(0, 10, 0)  # zero turns each signal off
    assert names(item.collect_events()) == [
        "ThresholdsChanged",
        "LowStockCleared",
        "ReorderCleared",
    ]
    item.count("main", 0)
    assert names(item.collect_events()) == ["PhysicallyCounted"]


@pytest.mark.parametrize(
    "values", [(-1, 0, 0), (0, True, 0), (0, 0, 1.5), (MAX_QUANTITY + 1, 0, 0)]
)
def test_invalid_quantity_error_when_setting_bad_thresholds(values: tuple[Any, Any, Any]) -> None:
    item = new_item(stock=10)
    assert_refused(item, InvalidQuantityError, lambda: item.set_thresholds(*values))


# --- backorder policy -----------------------------------------------------------------------


def test_backorder_policy_changed_is_recorded_when_allowing_backorders() -> None:
    item = new_item(stock=1)
    item.set_backorder_policy(True, 5)
    (event,) = item.collect_events()
    assert isinstance(event, InventoryItem.BackorderPolicyChanged)
    assert (event.allow_backorder, event.backorder_limit) == (True, 5)
    item.reserve(uuid4(), "o-1", 6, DUE)
    assert item.available == -5


def test_insufficient_stock_error_when_stopping_backorders_that_are_promised() -> None:
    item = new_item(stock=1, backorder_limit=5)
    item.reserve(uuid4(), "o-1", 3, DUE)
    item.collect_events()
    assert_refused(item, InsufficientStockError, lambda: item.set_backorder_policy(True, 1))
    assert_refused(item, InsufficientStockError, lambda: item.set_backorder_policy(False, 0))


def test_insufficient_stock_error_when_stopping_backorders_one_location_still_owes() -> None:
    item = new_item(stock=0, locations=[("west", 1, 0)], backorder_limit=5)
    item.reserve(uuid4(), "o-1", 3, DUE)  # backordered at main
    item.receive("west", 3)  # in total nothing is owed, but main still promises 3 it lacks
    item.collect_events()
    assert item.available == 0
    assert_refused(item, InsufficientStockError, lambda: item.set_backorder_policy(False, 0))


@pytest.mark.parametrize(
    ("allow", "limit", "error"),
    [
        (False, 3, InvalidInputError),
        ("yes", 0, InvalidInputError),
        (True, -1, InvalidQuantityError),
        (True, 1.0, InvalidQuantityError),
    ],
)
def test_typed_error_when_setting_a_bad_backorder_policy(
    allow: Any, limit: Any, error: type[CommerceError]
) -> None:
    item = new_item(stock=1)
    assert_refused(item, error, lambda: item.set_backorder_policy(allow, limit))


# --- replay ---------------------------------------------------------------------------------


def test_replay_gives_the_live_state_when_rebuilt_after_a_long_scenario() -> None:
    events: list[Any] = []
    item = InventoryItem.register(
        sku=SKU,
        product_id="mug",
        name="Mug",
        unit_price=Money("9.50", "USD"),
        location="main",
        initial_quantity=20,
        low_stock_threshold=8,
        reorder_point=5,
        reorder_quantity=40,
    )
    item.add_location("west", 1)
    item.receive("west", 15, reference="po-1")
    item.receive("west", 15, reference="po-1")
    item.adjust("main", -2, AdjustmentReason.DAMAGE, "crushed box", "adj-1")
    assert item.count("west", 14, "cycle") == -1
    events.extend(item.collect_events())
    r1, r2, r3, r4 = (reservation_id_for(f"o-{n}", SKU) for n in range(1, 5))
    item.reserve(r1, "o-1", 10, DUE)
    item.reserve(r2, "o-2", 12, DUE, MostStockFirst())
    item.reserve(r3, "o-3", 5, DUE + timedelta(hours=1))
    item.reserve(r4, "o-4", 3, DUE)
    item.confirm(r1)
    item.confirm(r2)
    events.extend(item.collect_events())
    item.fulfil(r1, 4, "ship-1")
    item.fulfil(r1, 4, "ship-1")
    item.fulfil(r2, shipment="ship-2")
    item.release(r1, "order changed")
    assert item.expire(r3, DUE) == 0
    assert item.expire(r4, DUE) == 3
    item.set_thresholds(3, 2, 10)
    item.set_backorder_policy(True, 4)
    item.reserve(uuid4(), "o-5", 8, DUE)
    events.extend(item.collect_events())
    item.expire(r3, DUE + timedelta(hours=2))
    item.receive("main", 30)
    events.extend(item.collect_events())

    assert "ReservationFulfilled" in names(events)
    assert "LowStockSignalled" in names(events)
    assert "LowStockCleared" in names(events)
    assert "ReorderNeeded" in names(events)
    rebuilt = replay(events)
    assert isinstance(rebuilt, InventoryItem)
    assert state_of(rebuilt) == state_of(item)
    from_store = replay(through_json(events))
    assert state_of(from_store) == state_of(item)
    assert (item.on_hand, item.reserved, item.available) == (46, 8, 38)

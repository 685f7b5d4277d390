"""The Inventory service on every backend: commands, all-or-nothing reservations, expiry,
queries from the read model, rebuilding it from the store, and no oversell under threads."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import pytest

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.application import RetryPolicy
from suuupra_commerce.commands import Command
from suuupra_commerce.errors import (
    AlreadyExistsError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InsufficientStockError,
    InvalidCommandError,
    InventoryItemNotFoundError,
    UnknownSkuError,
)
from suuupra_commerce.inventory.commands import (
    AddLocation,
    AdjustStock,
    ConfirmReservation,
    CountStock,
    FulfilReservation,
    ReceiveStock,
    RegisterItem,
    ReleaseReservation,
    ReservationLine,
    ReserveStock,
    SetThresholds,
)
from suuupra_commerce.inventory.domain import (
    AdjustmentReason,
    InventoryItem,
    ReservationStatus,
    inventory_id_for,
    reservation_id_for,
)
from suuupra_commerce.inventory.service import Inventory
from suuupra_commerce.money import Money
from suuupra_commerce.system import Commerce, Settings
from suuupra_commerce.testing import FakeClock, replay, state_of

T = TypeVar("T")


@pytest.fixture
def inventory(commerce: Commerce) -> Inventory:
    return commerce.inventory


def register(
    inventory: Inventory,
    sku: str,
    quantity: int = 0,
    price: Money | None = None,
    **settings: Any,
) -> UUID:
    return inventory.register(
        RegisterItem(
            sku=sku,
            product_id=f"product-{sku}",
            name=f"Name of {sku}",
            unit_price=price or Money("9.50", "USD"),
            initial_quantity=quantity,
            **settings,
        )
    )


def reserve(inventory: Inventory, order_id: str, minutes: int = 15, **lines: int) -> list[UUID]:
    reserved = inventory.reserve(
        ReserveStock(
            order_id=order_id,
            lines=[
                ReservationLine(sku=sku.replace("_", "-"), quantity=q) for sku, q in lines.items()
            ],
            duration_minutes=minutes,
        )
    )
    return [line.reservation_id for line in reserved]


def levels(inventory: Inventory, sku: str) -> tuple[int, int, int]:
    view = inventory.item(sku)
    return view.on_hand, view.reserved, view.available


def assert_view_matches_aggregate(inventory: Inventory, sku: str) -> None:
    view = inventory.item(sku)
    item = inventory.aggregate(sku)
    assert (view.inventory_id, view.sku, view.version) == (item.id, item.sku, item.version)
    assert (view.on_hand, view.reserved, view.available) == (
        item.on_hand,
        item.reserved,
        item.available,
    )
    assert {n: (lv.on_hand, lv.reserved, lv.priority) for n, lv in view.locations.items()} == {
        n: (s.on_hand, s.reserved, s.priority) for n, s in item.locations.items()
    }
    assert (view.low_stock, view.reorder_needed) == (item.low_stock, item.reorder_needed)


def run_threads(workers: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(n)`` on ``workers`` threads started together; re-raise the first failure."""
    barrier = threading.Barrier(workers)
    results: list[T] = []
    failures: list[BaseException] = []

    def target(n: int) -> None:
        try:
            barrier.wait()
            results.append(work(n))
        except BaseException as error:  # noqa: BLE001 - handed to the test thread below
            failures.append(error)

    threads = [threading.Thread(target=target, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    if failures:
        raise failures[0]
    return results


def stored_events(inventory: Inventory, sku: str) -> list[Any]:
    return list(inventory.events.get(inventory_id_for(sku)))


# --- registration and stock movements -------------------------------------------------------


def test_item_reads_back_by_sku_and_id_when_registered(inventory: Inventory) -> None:
    inventory_id = register(inventory, "MUG-1", 12)
    assert inventory_id == inventory_id_for("MUG-1")
    view = inventory.item("MUG-1")
    assert (view.product_id, view.sku, view.on_hand, view.available) == (
        "product-MUG-1",
        "MUG-1",
        12,
        12,
    )
    assert view.unit_price == Money("9.50", "USD")
    assert inventory.item_by_id(inventory_id) == view
    assert [v.sku for v in inventory.items()] == ["MUG-1"]


def test_already_exists_error_when_registering_a_sku_twice(inventory: Inventory) -> None:
    register(inventory, "MUG-1", 12)
    version = inventory.aggregate("MUG-1").version
    with pytest.raises(AlreadyExistsError):
        register(inventory, "MUG-1", 99)
    assert inventory.aggregate("MUG-1").version == version
    assert inventory.item("MUG-1").on_hand == 12


def test_not_found_errors_when_the_sku_or_id_is_unknown(inventory: Inventory) -> None:
    with pytest.raises(UnknownSkuError):
        inventory.item("NOPE-1")
    with pytest.raises(UnknownSkuError):
        inventory.receive(ReceiveStock(sku="NOPE-1", quantity=1))
    with pytest.raises(InventoryItemNotFoundError):
        inventory.item_by_id(inventory_id_for("NOPE-1"))
    assert inventory.items() == []


def test_levels_follow_the_commands_when_receiving_adjusting_and_counting(
    inventory: Inventory,
) -> None:
    register(inventory, "MUG-1", 10)
    inventory.add_location(AddLocation(sku="MUG-1", location="west", priority=5))
    inventory.receive(ReceiveStock(sku="MUG-1", quantity=6, location="west", reference="po-1"))
    inventory.receive(ReceiveStock(sku="MUG-1", quantity=6, location="west", reference="po-1"))
    assert levels(inventory, "MUG-1") == (16, 0, 16)
    inventory.adjust(AdjustStock(sku="MUG-1", delta=-3, reason=AdjustmentReason.DAMAGE, note="wet"))
    assert levels(inventory, "MUG-1") == (13, 0, 13)
    assert inventory.count(CountStock(sku="MUG-1", counted=4, location="west")) == -2
    assert levels(inventory, "MUG-1") == (11, 0, 11)
    view = inventory.item("MUG-1")
    assert (view.locations["default"].on_hand, view.locations["west"].on_hand) == (7, 4)
    events = stored_events(inventory, "MUG-1")
    adjusted = [e for e in events if isinstance(e, InventoryItem.StockAdjusted)]
    assert [(e.delta, e.reason, e.note) for e in adjusted] == [(-3, "damage", "wet")]
    assert_view_matches_aggregate(inventory, "MUG-1")


def test_insufficient_stock_error_and_nothing_written_when_removing_reserved_units(
    inventory: Inventory,
) -> None:
    register(inventory, "MUG-1", 5)
    reserve(inventory, "o-1", MUG_1=4)
    version = inventory.aggregate("MUG-1").version
    with pytest.raises(InsufficientStockError):
        inventory.adjust(AdjustStock(sku="MUG-1", delta=-2, reason=AdjustmentReason.THEFT))
    with pytest.raises(InsufficientStockError):
        inventory.count(CountStock(sku="MUG-1", counted=3))
    assert inventory.aggregate("MUG-1").version == version
    assert levels(inventory, "MUG-1") == (5, 4, 1)


@pytest.mark.parametrize(
    ("command", "payload"),
    [
        pytest.param(ReceiveStock, {"sku": "MUG-1", "quantity": 0}, id="zero-quantity"),
        pytest.param(ReceiveStock, {"sku": "MUG-1", "quantity": True}, id="bool-quantity"),
        pytest.param(ReceiveStock, {"sku": "MUG-1", "quantity": 1.0}, id="float-quantity"),
        pytest.param(ReceiveStock, {"sku": "MUG\x00", "quantity": 1}, id="nul-sku"),
        pytest.param(ReceiveStock, {"sku": "S" * 65, "quantity": 1}, id="long-sku"),
        pytest.param(
            AdjustStock, {"sku": "MUG-1", "delta": 0, "reason": "damage"}, id="zero-delta"
        ),
        pytest.param(AdjustStock, {"sku": "MUG-1", "delta": 1, "reason": "vibes"}, id="bad-reason"),
        pytest.param(CountStock, {"sku": "MUG-1", "counted": -1}, id="negative-count"),
        pytest.param(ReservationLine, {"sku": "MUG-1", "quantity": True}, id="bool-line"),
        pytest.param(ReservationLine, {"sku": "\u041cUG-1", "quantity": 1}, id="lookalike-sku"),
        pytest.param(
            ReserveStock,
            {
                "order_id": "o-1",
                "lines": [{"sku": "MUG-1", "quantity": 1}, {"sku": "MUG-1", "quantity": 2}],
            },
            id="duplicate-lines",
        ),
        pytest.param(ReserveStock, {"order_id": "o-1", "lines": []}, id="no-lines"),
        pytest.param(
            ReserveStock,
            {"order_id": "o-1", "lines": [{"sku": "MUG-1", "quantity": 1}], "duration_minutes": 0},
            id="no-duration",
        ),
    ],
)
def test_invalid_command_error_when_a_command_is_malformed(
    command: type[Command], payload: dict[str, Any]
) -> None:
    with pytest.raises(InvalidCommandError):
        command(**payload)
    with pytest.raises(InvalidCommandError):
        command.model_validate(payload)


# --- reservations ---------------------------------------------------------------------------


def test_neither_item_changes_when_one_line_of_a_reservation_is_short(
    inventory: Inventory,
) -> None:
    register(inventory, "MUG-1", 10)
    register(inventory, "TEE-M", 2)
    versions = {sku: inventory.aggregate(sku).version for sku in ("MUG-1", "TEE-M")}
    with pytest.raises(InsufficientStockError) as caught:
        reserve(inventory, "o-1", MUG_1=5, TEE_M=3)
    assert (caught.value.sku, caught.value.requested, caught.value.available) == ("TEE-M", 3, 2)
    assert {sku: inventory.aggregate(sku).version for sku in versions} == versions
    assert levels(inventory, "MUG-1") == (10, 0, 10)
    assert levels(inventory, "TEE-M") == (2, 0, 2)
    assert len(reserve(inventory, "o-1", MUG_1=5, TEE_M=2)) == 2
    assert levels(inventory, "MUG-1") == (10, 5, 5)
    assert levels(inventory, "TEE-M") == (2, 2, 0)


def test_unknown_sku_error_and_nothing_reserved_when_one_line_is_not_registered(
    inventory: Inventory,
) -> None:
    register(inventory, "MUG-1", 10)
    with pytest.raises(UnknownSkuError):
        reserve(inventory, "o-1", MUG_1=5, NOPE_1=1)
    assert levels(inventory, "MUG-1") == (10, 0, 10)


def test_same_reservations_are_returned_when_reserving_again_for_the_same_order(
    inventory: Inventory, clock: FakeClock
) -> None:
    register(inventory, "MUG-1", 10)
    register(inventory, "TEE-M", 10)
    first = inventory.reserve(
        ReserveStock(
            order_id="o-1",
            lines=[
                ReservationLine(sku="MUG-1", quantity=2),
                ReservationLine(sku="TEE-M", quantity=3),
            ],
        )
    )
    versions = {sku: inventory.aggregate(sku).version for sku in ("MUG-1", "TEE-M")}
    clock.advance(timedelta(minutes=1))
    again = inventory.reserve(
        ReserveStock(
            order_id="o-1",
            lines=[
                ReservationLine(sku="TEE-M", quantity=3),
                ReservationLine(sku="MUG-1", quantity=2),
            ],
        )
    )
    assert again == first
    assert [line.reservation_id for line in first] == [
        reservation_id_for("o-1", "MUG-1"),
        reservation_id_for("o-1", "TEE-M"),
    ]
    assert {sku: inventory.aggregate(sku).version for sku in versions} == versions
    assert levels(inventory, "MUG-1") == (10, 2, 8)
    assert levels(inventory, "TEE-M") == (10, 3, 7)
    assert {line.status for line in first} == {ReservationStatus.RESERVED}


def test_reserving_again_says_what_became_of_the_reservation(inventory: Inventory) -> None:
    register(inventory, "MUG-1", 10)
    order = ReserveStock(order_id="o-1", lines=[ReservationLine(sku="MUG-1", quantity=2)])
    inventory.reserve(order)
    inventory.confirm_order("o-1", ["MUG-1"])
    assert [line.status for line in inventory.reserve(order)] == [ReservationStatus.CONFIRMED]
    inventory.release_order("o-1", ["MUG-1"])
    assert [line.status for line in inventory.reserve(order)] == [ReservationStatus.RELEASED]
    assert levels(inventory, "MUG-1")[1] == 0  # reserving again held nothing


def test_idempotency_key_reused_error_when_the_same_order_asks_for_another_quantity(
    inventory: Inventory,
) -> None:
    register(inventory, "MUG-1", 10)
    reserve(inventory, "o-1", MUG_1=2)
    with pytest.raises(IdempotencyKeyReusedError):
        reserve(inventory, "o-1", MUG_1=3)
    assert levels(inventory, "MUG-1") == (10, 2, 8)


def test_levels_follow_the_lifecycle_when_confirming_fulfilling_and_releasing(
    inventory: Inventory,
) -> None:
    register(inventory, "MUG-1", 10)
    (rid,) = reserve(inventory, "o-1", MUG_1=6)
    inventory.confirm(ConfirmReservation(sku="MUG-1", reservation_id=rid))
    inventory.confirm(ConfirmReservation(sku="MUG-1", reservation_id=rid))
    assert inventory.reservation("MUG-1", rid).status is ReservationStatus.CONFIRMED
    fulfil = FulfilReservation(sku="MUG-1", reservation_id=rid, quantity=2, shipment="ship-1")
    assert inventory.fulfil(fulfil) == 2
    assert inventory.fulfil(fulfil) == 0
    assert levels(inventory, "MUG-1") == (8, 4, 4)
    release = ReleaseReservation(sku="MUG-1", reservation_id=rid, reason="customer-cancelled")
    assert inventory.release(release) == 4
    assert inventory.release(release) == 0
    assert levels(inventory, "MUG-1") == (8, 0, 8)
    view = inventory.reservation("MUG-1", rid)
    assert (view.order_id, view.status, view.fulfilled, view.outstanding) == (
        "o-1",
        ReservationStatus.RELEASED,
        2,
        0,
    )
    with pytest.raises(IllegalTransitionError):
        inventory.confirm(ConfirmReservation(sku="MUG-1", reservation_id=rid))
    assert_view_matches_aggregate(inventory, "MUG-1")


def test_illegal_transition_error_when_fulfilling_an_unconfirmed_reservation(
    inventory: Inventory,
) -> None:
    register(inventory, "MUG-1", 10)
    (rid,) = reserve(inventory, "o-1", MUG_1=3)
    with pytest.raises(IllegalTransitionError):
        inventory.fulfil(FulfilReservation(sku="MUG-1", reservation_id=rid))
    assert levels(inventory, "MUG-1") == (10, 3, 7)


# --- expiry ---------------------------------------------------------------------------------


def test_only_unconfirmed_due_reservations_expire_when_the_clock_passes_their_deadline(
    inventory: Inventory, clock: FakeClock
) -> None:
    register(inventory, "MUG-1", 20)
    (short,) = reserve(inventory, "o-short", 15, MUG_1=2)
    (long,) = reserve(inventory, "o-long", 60, MUG_1=3)
    (kept,) = reserve(inventory, "o-kept", 15, MUG_1=4)
    inventory.confirm(ConfirmReservation(sku="MUG-1", reservation_id=kept))
    assert inventory.expire_reservations() == 0
    clock.advance(timedelta(minutes=15))
    assert inventory.expire_reservations() == 1
    assert inventory.expire_reservations() == 0
    status = {rid: inventory.reservation("MUG-1", rid).status for rid in (short, long, kept)}
    assert status == {
        short: ReservationStatus.EXPIRED,
        long: ReservationStatus.RESERVED,
        kept: ReservationStatus.CONFIRMED,
    }
    assert levels(inventory, "MUG-1") == (20, 7, 13)
    clock.advance(timedelta(hours=2))
    assert inventory.expire_reservations() == 1
    assert inventory.expire_reservations() == 0
    assert inventory.reservation("MUG-1", long).status is ReservationStatus.EXPIRED
    assert levels(inventory, "MUG-1") == (20, 4, 16)
    expired = [
        e
        for e in stored_events(inventory, "MUG-1")
        if isinstance(e, InventoryItem.ReservationExpired)
    ]
    assert [e.reservation_id for e in expired] == [short, long]


def test_released_reservation_is_not_expired_when_the_sweep_runs_later(
    inventory: Inventory, clock: FakeClock
) -> None:
    register(inventory, "MUG-1", 5)
    (rid,) = reserve(inventory, "o-1", MUG_1=2)
    inventory.release(ReleaseReservation(sku="MUG-1", reservation_id=rid))
    clock.advance(timedelta(days=1))
    assert inventory.expire_reservations() == 0
    assert inventory.reservation("MUG-1", rid).status is ReservationStatus.RELEASED


# --- queries --------------------------------------------------------------------------------


def test_lists_and_summary_come_from_the_read_model_when_levels_cross_thresholds(
    inventory: Inventory,
) -> None:
    register(inventory, "MUG-1", 3, Money("9.50", "USD"), low_stock_threshold=5)
    register(inventory, "TEE-M", 7, Money("19.99", "USD"), reorder_point=10, reorder_quantity=50)
    register(inventory, "CAP-1", 2, Money("1200", "JPY"))
    register(inventory, "PEN-1", 100, Money("0.333", "KWD"), low_stock_threshold=10)
    reserve(inventory, "o-1", TEE_M=2, CAP_1=1)
    assert [v.sku for v in inventory.low_stock()] == ["MUG-1"]
    assert [v.sku for v in inventory.reorder_needed()] == ["TEE-M"]
    summary = inventory.summary()
    assert (summary.items, summary.on_hand, summary.reserved, summary.available) == (
        4,
        112,
        3,
        109,
    )
    assert (summary.low_stock, summary.reorder_needed) == (1, 1)
    assert dict(summary.value) == {
        "JPY": Money("2400", "JPY"),
        "KWD": Money("33.300", "KWD"),
        "USD": Money("168.43", "USD"),
    }
    assert summary.value["USD"].amount == Decimal("168.43")
    inventory.receive(ReceiveStock(sku="MUG-1", quantity=10))
    inventory.set_thresholds(
        SetThresholds(sku="PEN-1", low_stock_threshold=100, reorder_point=0, reorder_quantity=0)
    )
    assert [v.sku for v in inventory.low_stock()] == ["PEN-1"]
    assert inventory.summary().value["USD"] == Money("263.43", "USD")


def test_read_model_equals_the_aggregates_when_a_random_workload_has_run(
    inventory: Inventory, clock: FakeClock
) -> None:
    skus = ["MUG-1", "TEE-M", "CAP-1"]
    register(inventory, "MUG-1", 10, low_stock_threshold=4)
    register(inventory, "TEE-M", 5, reorder_point=3, reorder_quantity=10)
    register(inventory, "CAP-1", 0, allow_backorder=True, backorder_limit=5)
    inventory.add_location(AddLocation(sku="MUG-1", location="west", priority=1))
    rng = random.Random(20300101)
    orders: list[tuple[str, str]] = []
    refused: Counter[str] = Counter()
    for step in range(120):
        sku = rng.choice(skus)
        action = rng.choice(
            ["receive", "adjust", "count", "reserve", "confirm", "fulfil", "release", "expire"]
        )
        try:
            if action == "receive":
                location = rng.choice(list(inventory.item(sku).locations))
                inventory.receive(
                    ReceiveStock(sku=sku, quantity=rng.randint(1, 6), location=location)
                )
            elif action == "adjust":
                delta = rng.choice([-3, -1, 1, 2])
                inventory.adjust(
                    AdjustStock(sku=sku, delta=delta, reason=AdjustmentReason.CORRECTION)
                )
            elif action == "count":
                inventory.count(CountStock(sku=sku, counted=rng.randint(0, 12)))
            elif action == "reserve":
                order = f"order-{step}"
                reserve(
                    inventory,
                    order,
                    rng.choice([5, 30]),
                    **{sku.replace("-", "_"): rng.randint(1, 4)},
                )
                orders.append((order, sku))
            elif orders and action in {"confirm", "fulfil", "release"}:
                order, sku = rng.choice(orders)
                rid = reservation_id_for(order, sku)
                if action == "confirm":
                    inventory.confirm(ConfirmReservation(sku=sku, reservation_id=rid))
                elif action == "fulfil":
                    inventory.fulfil(
                        FulfilReservation(sku=sku, reservation_id=rid, shipment=f"s-{step}")
                    )
                else:
                    inventory.release(ReleaseReservation(sku=sku, reservation_id=rid))
            elif action == "expire":
                clock.advance(timedelta(minutes=rng.randint(1, 20)))
                inventory.expire_reservations()
        except (InsufficientStockError, IllegalTransitionError) as refusal:
            refused[type(refusal).__name__] += 1
    assert sum(refused.values()) > 0
    for sku in skus:
        assert_view_matches_aggregate(inventory, sku)
        item = inventory.aggregate(sku)
        assert state_of(replay(stored_events(inventory, sku))) == state_of(item)
        assert item.available >= item.floor


@pytest.fixture
def durable_settings(durable: dict[str, str]) -> Settings:
    """Settings of a backend that outlives its application objects (conftest's ``durable``)."""
    return Settings.from_env(durable)


@pytest.fixture
def durable_commerce(
    durable_settings: Settings, price_book: InMemoryPriceBook, clock: FakeClock
) -> Iterator[Commerce]:
    with Commerce(durable_settings, price_book=price_book, clock=clock) as built:
        yield built


def test_fresh_service_rebuilds_the_same_read_model_when_opened_on_the_same_store(
    durable_commerce: Commerce,
    durable_settings: Settings,
    price_book: InMemoryPriceBook,
    clock: FakeClock,
) -> None:
    inventory = durable_commerce.inventory
    register(inventory, "MUG-1", 10, low_stock_threshold=5)
    register(inventory, "TEE-M", 4, Money("19.99", "USD"), reorder_point=5, reorder_quantity=20)
    inventory.add_location(AddLocation(sku="MUG-1", location="west", priority=2))
    inventory.receive(ReceiveStock(sku="MUG-1", quantity=3, location="west"))
    (rid, _) = reserve(inventory, "o-1", MUG_1=8, TEE_M=1)
    inventory.confirm(ConfirmReservation(sku="MUG-1", reservation_id=rid))
    inventory.fulfil(FulfilReservation(sku="MUG-1", reservation_id=rid, quantity=5, shipment="s-1"))
    reserve(inventory, "o-2", 5, MUG_1=1)
    clock.advance(timedelta(minutes=10))
    assert inventory.expire_reservations() == 1
    before = (inventory.items(), inventory.low_stock(), inventory.reorder_needed())
    summary = inventory.summary()

    with Commerce(durable_settings, price_book=price_book, clock=clock) as fresh:
        assert (fresh.inventory.items(), fresh.inventory.low_stock()) == before[:2]
        assert fresh.inventory.reorder_needed() == before[2]
        assert fresh.inventory.summary() == summary
        assert [v.sku for v in before[0]] == ["MUG-1", "TEE-M"]
        assert before[0][0].on_hand == 8
        clock.advance(timedelta(hours=1))
        assert fresh.inventory.expire_reservations() == 1  # o-1 / TEE-M, via the rebuilt index
        assert fresh.inventory.expire_reservations() == 0
        assert levels(fresh.inventory, "TEE-M") == (4, 0, 4)


# --- concurrency ----------------------------------------------------------------------------


def test_exactly_the_stock_is_reserved_when_eight_threads_race_for_one_sku(
    inventory: Inventory,
) -> None:
    register(inventory, "MUG-1", 50)

    def work(worker: int) -> Counter[str]:
        outcomes: Counter[str] = Counter()
        for attempt in range(10):
            try:
                reserve(inventory, f"order-{worker}-{attempt}", MUG_1=1)
                outcomes["reserved"] += 1
            except InsufficientStockError:
                outcomes["refused"] += 1
        return outcomes

    totals = sum(run_threads(8, work), Counter())
    assert totals == Counter({"reserved": 50, "refused": 30})
    events = stored_events(inventory, "MUG-1")
    item = replay(events)
    assert isinstance(item, InventoryItem)
    assert (item.on_hand, item.reserved, item.available) == (50, 50, 0)
    assert sum(isinstance(e, InventoryItem.Reserved) for e in events) == 50
    assert levels(inventory, "MUG-1") == (50, 50, 0)


def test_each_reservation_expires_exactly_once_when_four_sweeps_run_together(
    inventory: Inventory, clock: FakeClock
) -> None:
    skus = ["MUG-1", "TEE-M", "CAP-1"]
    for sku in skus:
        register(inventory, sku, 20)
    expected: set[UUID] = set()
    for n in range(8):
        expected.update(reserve(inventory, f"o-{n}", MUG_1=1, TEE_M=2, CAP_1=1))
    clock.advance(timedelta(minutes=16))

    counts = run_threads(4, lambda _: inventory.expire_reservations())

    assert sum(counts) == len(expected) == 24
    expired = [
        e.reservation_id
        for sku in skus
        for e in stored_events(inventory, sku)
        if isinstance(e, InventoryItem.ReservationExpired)
    ]
    assert Counter(expired) == Counter(dict.fromkeys(expected, 1))
    assert inventory.expire_reservations() == 0
    for sku in skus:
        assert levels(inventory, sku) == (20, 0, 20)


def test_stock_is_never_oversold_when_threads_mix_reservations_and_removals(
    inventory: Inventory,
) -> None:
    register(inventory, "MUG-1", 30)

    def work(worker: int) -> int:
        refused = 0
        for attempt in range(6):
            try:
                if worker % 2:
                    reserve(inventory, f"order-{worker}-{attempt}", MUG_1=2)
                else:
                    inventory.adjust(
                        AdjustStock(sku="MUG-1", delta=-2, reason=AdjustmentReason.DAMAGE)
                    )
            except InsufficientStockError:
                refused += 1
        return refused

    refused = sum(run_threads(6, work))
    item = inventory.aggregate("MUG-1")
    assert item.available == 0
    assert item.on_hand >= item.reserved
    assert refused == 36 - 15  # 36 attempts of 2 units each, 30 units: 15 succeed in total
    assert_view_matches_aggregate(inventory, "MUG-1")


def test_exactly_the_stock_is_reserved_when_separate_services_race_on_one_store(
    durable_settings: Settings, clock: FakeClock
) -> None:
    """Four services on one store (as four processes would be): only the store's optimistic
    concurrency check and the retries stand between them and an oversell.

    With 3 rivals an attempt loses about 3 times in 4, so on a loaded machine even the
    default policy (30 attempts) can run out; this test takes a patient policy so that
    the outcome depends on the store's version check alone, never on timing.
    """
    env = durable_settings.application_env(Inventory.name)
    patient = RetryPolicy(max_attempts=100, max_delay=0.05)
    services = [Inventory(env, clock=clock, retry=patient) for _ in range(4)]
    try:
        register(services[0], "MUG-1", 50)

        def work(worker: int) -> Counter[str]:
            inventory = services[worker % len(services)]
            outcomes: Counter[str] = Counter()
            for attempt in range(10):
                try:
                    reserve(inventory, f"order-{worker}-{attempt}", MUG_1=1)
                    outcomes["reserved"] += 1
                except InsufficientStockError:
                    outcomes["refused"] += 1
            return outcomes

        totals = sum(run_threads(8, work), Counter())
        assert totals == Counter({"reserved": 50, "refused": 30})
        for inventory in services:
            assert levels(inventory, "MUG-1") == (50, 50, 0)
        item = replay(stored_events(services[0], "MUG-1"))
        assert isinstance(item, InventoryItem)
        assert (item.reserved, item.available) == (50, 0)
    finally:
        for inventory in services:
            inventory.close()

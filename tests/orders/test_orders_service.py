"""The orders service with inventory, on every backend (memory, SQLite file, PostgreSQL)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

import pytest

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.application import CommerceApplication
from suuupra_commerce.errors import (
    CancellationNotAllowedError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InsufficientStockError,
    InvalidCommandError,
    OrderNotFoundError,
    UnknownSkuError,
)
from suuupra_commerce.inventory.commands import RegisterItem, ReserveStock
from suuupra_commerce.inventory.domain import ReservationStatus, reservation_id_for
from suuupra_commerce.inventory.service import Inventory, ReservedLine
from suuupra_commerce.money import Money
from suuupra_commerce.orders.commands import (
    ApproveCancellation,
    ApproveReturn,
    AuthorizePayment,
    CancelOrder,
    CapturePayment,
    CompleteOrder,
    CompleteRefund,
    ConfirmOrder,
    DeliverOrder,
    OrderLineRequest,
    PlaceOrder,
    ReceiveReturn,
    RejectCancellation,
    RequestReturn,
    ShipOrder,
    StartFulfilment,
    order_id_for_key,
)
from suuupra_commerce.orders.lifecycle import FulfilmentStatus, OrderStatus, PaymentStatus
from suuupra_commerce.orders.service import Orders
from suuupra_commerce.pricing import Pricing
from suuupra_commerce.system import Commerce, Settings
from suuupra_commerce.testing import FakeClock

OS = OrderStatus
PS = PaymentStatus
STOCK = {"MUG-1": 10, "TEE-M": 5, "CAP-1": 3}
LINES = (("MUG-1", 2), ("TEE-M", 1))  # 2 x 9.50 + 19.99 = 38.99 USD


def usd(amount: str) -> Money:
    return Money(amount, "USD")


@pytest.fixture
def shop(commerce: Commerce) -> Commerce:
    """``commerce`` with every priced SKU registered and stocked."""
    for sku, quantity in STOCK.items():
        commerce.inventory.register(
            RegisterItem(
                sku=sku,
                product_id=sku.lower(),
                name=sku,
                unit_price=usd("1.00"),
                initial_quantity=quantity,
            )
        )
    return commerce


def order_cmd(
    key: str = "k-1", lines: Sequence[tuple[str, int]] = LINES, customer: str = "cust-1"
) -> PlaceOrder:
    return PlaceOrder(
        idempotency_key=key,
        customer_id=customer,
        currency="USD",
        lines=[OrderLineRequest(sku=sku, quantity=quantity) for sku, quantity in lines],
    )


def written(*apps: CommerceApplication) -> tuple[int | None, ...]:
    """How far each application's event log reaches (a write moves it on)."""
    return tuple(app.recorder.max_notification_id() for app in apps)


def levels(shop: Commerce, sku: str) -> tuple[int, int]:
    """(on hand, reserved) of ``sku``, from the inventory read model."""
    item = shop.inventory.item(sku)
    return item.on_hand, item.reserved


def reservation_status(shop: Commerce, order_id: UUID, sku: str) -> ReservationStatus:
    return shop.inventory.reservation(sku, reservation_id_for(str(order_id), sku)).status


def paid_and_processing(shop: Commerce, lines: Sequence[tuple[str, int]] = LINES) -> UUID:
    """An order placed, authorized, confirmed, captured and in processing."""
    order_id = shop.orders.place(order_cmd(lines=lines))
    shop.orders.authorize_payment(AuthorizePayment(order_id=order_id, reference="auth-1"))
    shop.orders.confirm(ConfirmOrder(order_id=order_id))
    shop.orders.capture_payment(CapturePayment(order_id=order_id))
    shop.orders.start_fulfilment(StartFulfilment(order_id=order_id))
    return order_id


# --- placement -----------------------------------------------------------------------------------


def test_order_priced_from_the_price_book_and_stock_reserved_when_placed(shop: Commerce) -> None:
    order_id = shop.orders.place(order_cmd())

    view = shop.orders.get(order_id)
    assert order_id == order_id_for_key("k-1")
    assert [(line.sku, line.name, line.unit_price, line.quantity) for line in view.lines] == [
        ("MUG-1", "Mug", usd("9.50"), 2),
        ("TEE-M", "T-shirt, medium", usd("19.99"), 1),
    ]
    assert [line.total for line in view.lines] == [usd("19.00"), usd("19.99")]
    assert view.total == usd("38.99")
    assert (view.status, view.payment_status) == (OS.PENDING, PS.PENDING)
    assert view.fulfilment_status is FulfilmentStatus.UNFULFILLED
    assert (view.customer_id, view.idempotency_key) == ("cust-1", "k-1")
    assert levels(shop, "MUG-1") == (10, 2)
    assert levels(shop, "TEE-M") == (5, 1)
    assert reservation_status(shop, order_id, "MUG-1") is ReservationStatus.RESERVED


def test_invalid_command_error_when_the_caller_sends_a_price() -> None:
    with pytest.raises(InvalidCommandError):
        PlaceOrder.model_validate(
            {
                "idempotency_key": "k-1",
                "customer_id": "cust-1",
                "currency": "USD",
                "lines": [{"sku": "MUG-1", "quantity": 1, "unit_price": "0.01"}],
            }
        )


def test_same_id_and_nothing_written_when_the_same_key_and_payload_come_again(
    shop: Commerce,
) -> None:
    order_id = shop.orders.place(order_cmd())
    before = written(shop.orders, shop.inventory)

    again = shop.orders.place(order_cmd())

    assert again == order_id
    assert written(shop.orders, shop.inventory) == before
    assert levels(shop, "MUG-1") == (10, 2)


def test_idempotency_key_reused_error_when_the_same_key_comes_with_another_payload(
    shop: Commerce,
) -> None:
    shop.orders.place(order_cmd())
    before = written(shop.orders, shop.inventory)

    for other in (
        order_cmd(lines=(("MUG-1", 3), ("TEE-M", 1))),
        order_cmd(lines=(("CAP-1", 1),)),
        order_cmd(customer="cust-2"),
    ):
        with pytest.raises(IdempotencyKeyReusedError):
            shop.orders.place(other)

    assert written(shop.orders, shop.inventory) == before
    assert levels(shop, "CAP-1") == (3, 0)


def test_placed_order_keeps_its_prices_when_the_price_book_changes(
    shop: Commerce, price_book: InMemoryPriceBook
) -> None:
    order_id = shop.orders.place(order_cmd())

    price_book.set_price("MUG-1", "Mug deluxe", usd("99.00"))

    view = shop.orders.get(order_id)
    assert (view.lines[0].name, view.lines[0].unit_price) == ("Mug", usd("9.50"))
    assert view.total == usd("38.99")
    assert shop.orders.place(order_cmd()) == order_id  # a retry is the same payload still
    new = shop.orders.get(shop.orders.place(order_cmd(key="k-2", lines=(("MUG-1", 1),))))
    assert new.total == usd("99.00")


@pytest.mark.parametrize(
    "lines",
    [(("MUG-1", 1), ("HAT-9", 1)), (("MUG-1", 1), ("SCARF-1", 1))],
    ids=["unpriced", "unstocked"],
)
def test_unknown_sku_error_and_nothing_written_when_a_sku_is_unknown(
    shop: Commerce, price_book: InMemoryPriceBook, lines: tuple[tuple[str, int], ...]
) -> None:
    price_book.set_price("SCARF-1", "Scarf", usd("15.00"))  # priced but never registered
    before = written(shop.orders, shop.inventory)

    with pytest.raises(UnknownSkuError):
        shop.orders.place(order_cmd(lines=lines))

    assert written(shop.orders, shop.inventory) == before
    assert levels(shop, "MUG-1") == (10, 0)
    with pytest.raises(OrderNotFoundError):
        shop.orders.get(order_id_for_key("k-1"))


def test_no_order_and_no_reservation_when_one_of_two_lines_lacks_stock(shop: Commerce) -> None:
    before = written(shop.orders, shop.inventory)

    with pytest.raises(InsufficientStockError) as caught:
        shop.orders.place(order_cmd(lines=(("MUG-1", 2), ("CAP-1", 4))))

    assert (caught.value.sku, caught.value.requested, caught.value.available) == ("CAP-1", 4, 3)
    assert written(shop.orders, shop.inventory) == before
    assert levels(shop, "MUG-1") == (10, 0)
    assert levels(shop, "CAP-1") == (3, 0)
    assert shop.inventory.aggregate("MUG-1").reservations == {}
    assert shop.orders.listing() == []


# --- confirmation and expiry ---------------------------------------------------------------------


def test_reservations_stop_expiring_when_the_order_is_confirmed(shop: Commerce) -> None:
    order_id = shop.orders.place(order_cmd())

    shop.orders.confirm(ConfirmOrder(order_id=order_id))
    assert isinstance(shop.clock, FakeClock)
    shop.clock.advance(timedelta(minutes=16))

    assert shop.inventory.expire_reservations() == 0
    assert reservation_status(shop, order_id, "MUG-1") is ReservationStatus.CONFIRMED
    assert reservation_status(shop, order_id, "TEE-M") is ReservationStatus.CONFIRMED
    assert levels(shop, "MUG-1") == (10, 2)
    assert shop.orders.get(order_id).status is OS.CONFIRMED


def test_illegal_transition_error_and_order_still_pending_when_confirmed_after_expiry(
    shop: Commerce,
) -> None:
    order_id = shop.orders.place(order_cmd())
    assert isinstance(shop.clock, FakeClock)
    shop.clock.advance(timedelta(minutes=15, seconds=1))
    assert shop.inventory.expire_reservations() == 2
    assert levels(shop, "MUG-1") == (10, 0)
    before = written(shop.orders, shop.inventory)

    with pytest.raises(IllegalTransitionError) as caught:
        shop.orders.confirm(ConfirmOrder(order_id=order_id))

    assert (caught.value.entity, caught.value.state) == ("reservation", "expired")
    assert written(shop.orders, shop.inventory) == before
    assert shop.orders.get(order_id).status is OS.PENDING


def test_unconfirmed_reservation_survives_the_sweep_when_not_yet_due(shop: Commerce) -> None:
    order_id = shop.orders.place(order_cmd())
    assert isinstance(shop.clock, FakeClock)
    shop.clock.advance(timedelta(minutes=14, seconds=59))

    assert shop.inventory.expire_reservations() == 0
    shop.orders.confirm(ConfirmOrder(order_id=order_id))
    assert reservation_status(shop, order_id, "MUG-1") is ReservationStatus.CONFIRMED


# --- the happy path and shipments ----------------------------------------------------------------


def test_order_completed_when_paid_shipped_delivered_and_closed(shop: Commerce) -> None:
    order_id = paid_and_processing(shop)

    shipped = shop.orders.ship(
        ShipOrder(order_id=order_id, shipment_id="parcel-1", carrier="ups", tracking_number="1Z")
    )
    shop.orders.deliver(DeliverOrder(order_id=order_id))
    shop.orders.complete(CompleteOrder(order_id=order_id))

    assert shipped == {"MUG-1": 2, "TEE-M": 1}
    view = shop.orders.get(order_id)
    assert (view.status, view.payment_status) == (OS.COMPLETED, PS.CAPTURED)
    assert view.fulfilment_status is FulfilmentStatus.FULFILLED
    assert (view.authorized, view.captured) == (usd("38.99"), usd("38.99"))
    assert levels(shop, "MUG-1") == (8, 0)
    assert levels(shop, "TEE-M") == (4, 0)
    assert reservation_status(shop, order_id, "MUG-1") is ReservationStatus.FULFILLED
    assert shop.orders.aggregate(order_id).history == [
        "pending",
        "confirmed",
        "processing",
        "shipped",
        "delivered",
        "completed",
    ]


def test_inventory_exact_after_each_parcel_when_an_order_ships_in_parts(shop: Commerce) -> None:
    order_id = paid_and_processing(shop, (("MUG-1", 3), ("TEE-M", 2)))

    def ship(shipment_id: str, lines: dict[str, int] | None) -> dict[str, int]:
        return shop.orders.ship(ShipOrder(order_id=order_id, shipment_id=shipment_id, lines=lines))

    assert ship("p-1", {"MUG-1": 1}) == {"MUG-1": 1}
    assert (levels(shop, "MUG-1"), levels(shop, "TEE-M")) == ((9, 2), (5, 2))
    assert shop.orders.get(order_id).status is OS.PARTIALLY_SHIPPED

    assert ship("p-2", {"MUG-1": 2, "TEE-M": 1}) == {"MUG-1": 2, "TEE-M": 1}
    assert (levels(shop, "MUG-1"), levels(shop, "TEE-M")) == ((7, 0), (4, 1))
    before = written(shop.orders, shop.inventory)
    assert ship("p-2", {"MUG-1": 2, "TEE-M": 1}) == {}  # a repeat ships nothing more
    assert written(shop.orders, shop.inventory) == before
    assert shop.orders.get(order_id).fulfilment_status is FulfilmentStatus.PARTIALLY_FULFILLED

    assert ship("p-3", None) == {"TEE-M": 1}
    assert (levels(shop, "MUG-1"), levels(shop, "TEE-M")) == ((7, 0), (3, 0))
    view = shop.orders.get(order_id)
    assert (view.status, view.fulfilment_status) == (OS.SHIPPED, FulfilmentStatus.FULFILLED)
    assert [line.shipped for line in view.lines] == [3, 2]


def test_illegal_transition_error_and_nothing_written_when_a_pending_order_ships(
    shop: Commerce,
) -> None:
    order_id = shop.orders.place(order_cmd())
    before = written(shop.orders, shop.inventory)

    with pytest.raises(IllegalTransitionError):
        shop.orders.ship(ShipOrder(order_id=order_id, shipment_id="p-1"))
    with pytest.raises(IllegalTransitionError):
        shop.orders.deliver(DeliverOrder(order_id=order_id))

    assert written(shop.orders, shop.inventory) == before
    assert levels(shop, "MUG-1") == (10, 2)


def test_order_not_found_error_when_the_order_does_not_exist(shop: Commerce) -> None:
    missing = order_id_for_key("never-placed")

    with pytest.raises(OrderNotFoundError):
        shop.orders.get(missing)
    with pytest.raises(OrderNotFoundError):
        shop.orders.confirm(ConfirmOrder(order_id=missing))


# --- cancellation --------------------------------------------------------------------------------


def test_cancelled_with_stock_released_and_authorization_voided_when_pending_order_is_cancelled(
    shop: Commerce,
) -> None:
    order_id = shop.orders.place(order_cmd())
    shop.orders.authorize_payment(AuthorizePayment(order_id=order_id, reference="auth-1"))

    assert shop.orders.cancel(CancelOrder(order_id=order_id)) is True

    view = shop.orders.get(order_id)
    assert (view.status, view.payment_status) == (OS.CANCELLED, PS.VOIDED)
    assert (view.authorized, view.refund_pending) == (usd("0.00"), usd("0.00"))
    assert levels(shop, "MUG-1") == (10, 0)
    assert levels(shop, "TEE-M") == (5, 0)
    assert reservation_status(shop, order_id, "MUG-1") is ReservationStatus.RELEASED
    before = written(shop.orders, shop.inventory)
    assert shop.orders.cancel(CancelOrder(order_id=order_id)) is True  # a repeat: no-op
    assert written(shop.orders, shop.inventory) == before


def test_full_refund_started_and_stock_released_when_confirmed_paid_order_is_cancelled(
    shop: Commerce,
) -> None:
    order_id = shop.orders.place(order_cmd())
    shop.orders.authorize_payment(AuthorizePayment(order_id=order_id, reference="auth-1"))
    shop.orders.confirm(ConfirmOrder(order_id=order_id))
    shop.orders.capture_payment(CapturePayment(order_id=order_id))

    assert shop.orders.cancel(CancelOrder(order_id=order_id)) is True

    view = shop.orders.get(order_id)
    assert view.status is OS.CANCELLED
    assert (view.refund_pending, view.cancellation_fee) == (usd("38.99"), usd("0.00"))
    assert levels(shop, "MUG-1") == (10, 0)
    shop.orders.complete_refund(CompleteRefund(order_id=order_id, refund_id="cancellation"))
    assert shop.orders.get(order_id).payment_status is PS.REFUNDED


def test_refund_less_five_percent_and_stock_released_when_cancellation_is_approved(
    shop: Commerce,
) -> None:
    order_id = paid_and_processing(shop, (("MUG-1", 3),))  # 28.50: fee 1.425 -> 1.42

    assert shop.orders.cancel(CancelOrder(order_id=order_id)) is False
    assert shop.orders.get(order_id).status is OS.CANCELLATION_REQUESTED
    assert levels(shop, "MUG-1") == (10, 3)

    shop.orders.approve_cancellation(
        ApproveCancellation(order_id=order_id, approved_by="operator-1")
    )

    view = shop.orders.get(order_id)
    assert view.status is OS.CANCELLED
    assert (view.cancellation_fee, view.refund_pending) == (usd("1.42"), usd("27.08"))
    assert levels(shop, "MUG-1") == (10, 0)
    assert reservation_status(shop, order_id, "MUG-1") is ReservationStatus.RELEASED
    shop.orders.complete_refund(CompleteRefund(order_id=order_id, refund_id="cancellation"))
    view = shop.orders.get(order_id)
    assert (view.payment_status, view.refunded) == (PS.PARTIALLY_REFUNDED, usd("27.08"))


def test_order_back_to_processing_with_stock_held_when_cancellation_is_rejected(
    shop: Commerce,
) -> None:
    order_id = paid_and_processing(shop)
    shop.orders.cancel(CancelOrder(order_id=order_id))

    shop.orders.reject_cancellation(
        RejectCancellation(order_id=order_id, reason="already packed", rejected_by="operator-1")
    )

    view = shop.orders.get(order_id)
    assert (view.status, view.refund_pending) == (OS.PROCESSING, usd("0.00"))
    assert levels(shop, "MUG-1") == (10, 2)
    assert shop.orders.ship(ShipOrder(order_id=order_id, shipment_id="p-1")) == {
        "MUG-1": 2,
        "TEE-M": 1,
    }


def test_cancellation_not_allowed_error_and_nothing_written_when_the_order_has_shipped(
    shop: Commerce,
) -> None:
    order_id = paid_and_processing(shop)
    shop.orders.ship(ShipOrder(order_id=order_id, shipment_id="p-1"))
    before = written(shop.orders, shop.inventory)

    with pytest.raises(CancellationNotAllowedError):
        shop.orders.cancel(CancelOrder(order_id=order_id))

    assert written(shop.orders, shop.inventory) == before
    assert shop.orders.get(order_id).status is OS.SHIPPED


# --- returns -------------------------------------------------------------------------------------


def test_returned_units_restocked_once_when_the_return_is_received_twice(shop: Commerce) -> None:
    order_id = paid_and_processing(shop, (("MUG-1", 3),))
    shop.orders.ship(ShipOrder(order_id=order_id, shipment_id="p-1"))
    shop.orders.deliver(DeliverOrder(order_id=order_id))
    assert levels(shop, "MUG-1") == (7, 0)
    shop.orders.request_return(
        RequestReturn(order_id=order_id, return_id="ret-1", lines={"MUG-1": 2})
    )
    shop.orders.approve_return(ApproveReturn(order_id=order_id, return_id="ret-1"))

    first = shop.orders.receive_return(ReceiveReturn(order_id=order_id, return_id="ret-1"))
    after_first = written(shop.orders, shop.inventory)
    second = shop.orders.receive_return(ReceiveReturn(order_id=order_id, return_id="ret-1"))

    assert (first, second) == (usd("19.00"), usd("0.00"))
    assert levels(shop, "MUG-1") == (9, 0)
    assert written(shop.orders, shop.inventory) == after_first
    view = shop.orders.get(order_id)
    assert (view.status, view.refund_pending) == (OS.PARTIALLY_RETURNED, usd("19.00"))
    assert [line.returned for line in view.lines] == [2]


# --- queries -------------------------------------------------------------------------------------


def test_read_model_agrees_with_get_when_orders_are_listed(shop: Commerce) -> None:
    first = shop.orders.place(order_cmd("k-1", customer="alice"))
    second = shop.orders.place(order_cmd("k-2", (("CAP-1", 1),), customer="bob"))
    third = shop.orders.place(order_cmd("k-3", (("TEE-M", 2),), customer="alice"))
    shop.orders.confirm(ConfirmOrder(order_id=first))
    shop.orders.cancel(CancelOrder(order_id=second))
    shop.orders.authorize_payment(AuthorizePayment(order_id=third, reference="auth-3"))

    alice = shop.orders.for_customer("alice")
    everyone = shop.orders.listing()

    assert [s.order_id for s in alice] == [third, first]
    assert {s.order_id for s in everyone} == {first, second, third}
    for summary in everyone:
        view = shop.orders.get(summary.order_id)
        assert (summary.customer_id, summary.status, summary.payment_status) == (
            view.customer_id,
            view.status,
            view.payment_status,
        )
        assert summary.total == view.total
        assert summary.items == sum(line.quantity for line in view.lines)
    assert [s.order_id for s in shop.orders.listing(status=OS.CANCELLED)] == [second]
    assert shop.orders.count_by_status() == Counter(
        shop.orders.get(i).status for i in (first, second, third)
    )
    assert shop.orders.count_by_status() == {OS.CONFIRMED: 1, OS.CANCELLED: 1, OS.PENDING: 1}
    assert shop.orders.for_customer("nobody") == []
    assert len(shop.orders.listing(limit=2)) == 2


# --- concurrency ---------------------------------------------------------------------------------

T = TypeVar("T")


def race(tasks: Sequence[Callable[[], T]]) -> list[T | BaseException]:
    """Run ``tasks`` on threads released together; each outcome is a result or an exception."""
    start = threading.Barrier(len(tasks))

    def run(task: Callable[[], T]) -> T | BaseException:
        start.wait(timeout=30)
        try:
            return task()
        except Exception as error:  # noqa: BLE001 - the outcome under test
            return error

    with ThreadPoolExecutor(len(tasks)) as pool:
        return list(pool.map(run, tasks))


def test_one_order_and_one_reservation_when_five_threads_place_with_one_key(
    shop: Commerce,
) -> None:
    outcomes = race([lambda: shop.orders.place(order_cmd())] * 5)

    assert outcomes == [order_id_for_key("k-1")] * 5
    assert len(shop.orders.listing()) == 1
    order_events = list(shop.orders.repository.event_store.get(order_id_for_key("k-1")))
    assert [type(e).__name__ for e in order_events] == ["Placed", "StockReserved"]
    assert len(shop.inventory.aggregate("MUG-1").reservations) == 1
    assert len(shop.inventory.aggregate("TEE-M").reservations) == 1
    assert levels(shop, "MUG-1") == (10, 2)
    assert levels(shop, "TEE-M") == (5, 1)


def test_other_payload_always_refused_when_threads_reuse_a_placed_key(shop: Commerce) -> None:
    order_id = shop.orders.place(order_cmd())
    before = written(shop.orders, shop.inventory)

    outcomes = race(
        [
            lambda: shop.orders.place(order_cmd(lines=(("CAP-1", 1),))),
            lambda: shop.orders.place(order_cmd(lines=(("MUG-1", 5),))),
            lambda: shop.orders.place(order_cmd()),
            lambda: shop.orders.place(order_cmd(customer="cust-9")),
        ]
    )

    assert [type(o).__name__ for o in outcomes] == [
        "IdempotencyKeyReusedError",
        "IdempotencyKeyReusedError",
        "UUID",
        "IdempotencyKeyReusedError",
    ]
    assert outcomes[2] == order_id
    assert written(shop.orders, shop.inventory) == before


class RacingInventory(Inventory):
    """Inventory that holds each reservation until every racer has reserved, then lets them save."""

    def __init__(self, env: Mapping[str, str], *, racers: int, clock: FakeClock) -> None:
        super().__init__(env, clock=clock)
        self.all_reserved = threading.Barrier(racers)

    def reserve(self, cmd: ReserveStock) -> list[ReservedLine]:
        reserved = super().reserve(cmd)
        self.all_reserved.wait(timeout=30)
        return reserved


@pytest.fixture
def racing(
    durable: dict[str, str], price_book: InMemoryPriceBook
) -> Iterator[tuple[Orders, Orders]]:
    """Two orders services over one store (as two processes would be), sharing an inventory
    where two placements reserve before either saves."""
    settings = Settings.from_env(durable)
    clock = FakeClock()
    inventory = RacingInventory(settings.application_env("Inventory"), racers=2, clock=clock)
    pair = tuple(
        Orders(
            settings.application_env("Orders"),
            inventory=inventory,
            pricing=Pricing(price_book=price_book),
            clock=clock,
        )
        for _ in range(2)
    )
    for sku in ("MUG-1", "CAP-1"):
        inventory.register(
            RegisterItem(
                sku=sku, product_id=sku, name=sku, unit_price=usd("1.00"), initial_quantity=5
            )
        )
    try:
        yield pair[0], pair[1]
    finally:
        for orders in pair:
            orders.close()
        inventory.close()


def test_loser_holds_no_stock_when_two_payloads_race_for_one_key(
    racing: tuple[Orders, Orders],
) -> None:
    first, second = racing
    outcomes: list[Any] = race(
        [
            lambda: first.place(order_cmd(lines=(("MUG-1", 1),))),
            lambda: second.place(order_cmd(lines=(("CAP-1", 2),))),
        ]
    )

    winner = [o for o in outcomes if isinstance(o, UUID)]
    assert winner == [order_id_for_key("k-1")]
    assert [type(o) for o in outcomes if not isinstance(o, UUID)] == [IdempotencyKeyReusedError]
    racing_orders = first
    [won] = racing_orders.get(winner[0]).lines
    lost = "CAP-1" if won.sku == "MUG-1" else "MUG-1"
    assert racing_orders.inventory.item(won.sku).reserved == won.quantity
    assert racing_orders.inventory.item(lost).reserved == 0
    assert racing_orders.inventory.item(lost).available == 5

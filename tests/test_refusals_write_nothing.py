"""Through the services, on every backend: a refused command writes no event anywhere."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

import pytest

from suuupra_commerce import (
    AddItem,
    AdjustmentReason,
    AdjustStock,
    CancelOrder,
    CheckoutCart,
    Commerce,
    CommerceError,
    ConfirmOrder,
    CountStock,
    CreateCart,
    DeliverOrder,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InsufficientStockError,
    InvalidInputError,
    Money,
    NotFoundError,
    OrderLineRequest,
    PlaceOrder,
    RefundPayment,
    RegisterItem,
    ReleaseReservation,
    ReserveStock,
    ShipOrder,
    UnknownSkuError,
)
from suuupra_commerce.inventory.commands import ReservationLine


def _positions(commerce: Commerce) -> tuple[int | None, ...]:
    return tuple(
        app.recorder.max_notification_id()
        for app in (commerce.inventory, commerce.orders, commerce.carts)
    )


@pytest.fixture
def shop(commerce: Commerce) -> Commerce:
    """MUG-1 with 5 units, TEE-M with 2, one pending order of 2 mugs and a cart with a tee."""
    for sku, units in (("MUG-1", 5), ("TEE-M", 2)):
        commerce.inventory.register(
            RegisterItem(
                sku=sku,
                product_id=sku.lower(),
                name=sku,
                unit_price=Money("1.00", "USD"),
                initial_quantity=units,
            )
        )
    commerce.orders.place(
        PlaceOrder(
            idempotency_key="first",
            customer_id="alice",
            currency="USD",
            lines=[OrderLineRequest(sku="MUG-1", quantity=2)],
        )
    )
    cart = commerce.carts.create(CreateCart(customer_id="bob", currency="USD"))
    commerce.carts.add_item(AddItem(cart_id=cart, sku="TEE-M", quantity=2))
    return commerce


def _order_id(shop: Commerce) -> UUID:
    [summary] = shop.orders.for_customer("alice")
    return summary.order_id


def _cart_id(shop: Commerce) -> UUID:
    view = shop.carts.active_cart("bob")
    assert view is not None
    return view.id


REFUSALS: dict[str, tuple[type[CommerceError], Callable[[Commerce], object]]] = {
    "reserving more than available": (
        InsufficientStockError,
        lambda s: s.inventory.reserve(
            ReserveStock(
                order_id="big",
                lines=[
                    ReservationLine(sku="MUG-1", quantity=1),
                    ReservationLine(sku="TEE-M", quantity=3),
                ],
            )
        ),
    ),
    "reserving an unknown SKU": (
        UnknownSkuError,
        lambda s: s.inventory.reserve(
            ReserveStock(
                order_id="ghost",
                lines=[
                    ReservationLine(sku="MUG-1", quantity=1),
                    ReservationLine(sku="NOPE-1", quantity=1),
                ],
            )
        ),
    ),
    "removing reserved units": (
        InsufficientStockError,
        lambda s: s.inventory.adjust(
            AdjustStock(sku="MUG-1", delta=-4, reason=AdjustmentReason.DAMAGE)
        ),
    ),
    "counting below what is reserved": (
        InsufficientStockError,
        lambda s: s.inventory.count(CountStock(sku="MUG-1", counted=1)),
    ),
    "releasing an unknown reservation": (
        NotFoundError,
        lambda s: s.inventory.release(ReleaseReservation(sku="MUG-1", reservation_id=uuid4())),
    ),
    "placing an order beyond stock": (
        InsufficientStockError,
        lambda s: s.orders.place(
            PlaceOrder(
                idempotency_key="second",
                customer_id="carol",
                currency="USD",
                lines=[
                    OrderLineRequest(sku="MUG-1", quantity=1),
                    OrderLineRequest(sku="TEE-M", quantity=3),
                ],
            )
        ),
    ),
    "reusing an idempotency key with another payload": (
        IdempotencyKeyReusedError,
        lambda s: s.orders.place(
            PlaceOrder(
                idempotency_key="first",
                customer_id="alice",
                currency="USD",
                lines=[OrderLineRequest(sku="MUG-1", quantity=3)],
            )
        ),
    ),
    "placing an order in a currency the SKU has no price in": (
        UnknownSkuError,
        lambda s: s.orders.place(
            PlaceOrder(
                idempotency_key="eur",
                customer_id="dave",
                currency="EUR",
                lines=[OrderLineRequest(sku="MUG-1", quantity=1)],
            )
        ),
    ),
    "shipping a pending order": (
        IllegalTransitionError,
        lambda s: s.orders.ship(ShipOrder(order_id=_order_id(s), shipment_id="p-1")),
    ),
    "delivering a pending order": (
        IllegalTransitionError,
        lambda s: s.orders.deliver(DeliverOrder(order_id=_order_id(s))),
    ),
    "refunding an order that was never paid": (
        IllegalTransitionError,
        lambda s: s.orders.refund(
            RefundPayment(order_id=_order_id(s), refund_id="r-1", amount=Money("1.00", "USD"))
        ),
    ),
    "refunding in another currency": (
        InvalidInputError,
        lambda s: s.orders.refund(
            RefundPayment(order_id=_order_id(s), refund_id="r-2", amount=Money("1.00", "EUR"))
        ),
    ),
    "confirming an unknown order": (
        NotFoundError,
        lambda s: s.orders.confirm(ConfirmOrder(order_id=uuid4())),
    ),
    "cancelling an unknown order": (
        NotFoundError,
        lambda s: s.orders.cancel(CancelOrder(order_id=uuid4())),
    ),
    "adding an unknown SKU to a cart": (
        UnknownSkuError,
        lambda s: s.carts.add_item(AddItem(cart_id=_cart_id(s), sku="NOPE-1", quantity=1)),
    ),
    "checking out a cart beyond stock": (
        InsufficientStockError,
        lambda s: s.carts.checkout(CheckoutCart(cart_id=_cart_id(s))),
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_nothing_is_written_when_a_service_refuses(shop: Commerce, case: str) -> None:
    expected, command = REFUSALS[case]
    if case == "checking out a cart beyond stock":
        # Put the cart over stock first (a write of its own), then measure the checkout alone.
        shop.carts.add_item(AddItem(cart_id=_cart_id(shop), sku="TEE-M", quantity=1))
    before = _positions(shop)
    mug = shop.inventory.item("MUG-1")
    with pytest.raises(expected):
        command(shop)
    assert _positions(shop) == before
    assert shop.inventory.item("MUG-1") == mug

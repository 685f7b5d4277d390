"""Orders and inventory together, driven by hypothesis through random order lives.

After every step, stock is conserved between the two services: what inventory holds
reserved is exactly what live orders still have to ship, what left the shelves is
exactly what orders shipped less what came back, and nothing is ever oversold.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from uuid import UUID

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from suuupra_commerce import (
    ApproveCancellation,
    ApproveReturn,
    AuthorizePayment,
    BusinessRuleError,
    CancelOrder,
    CapturePayment,
    Commerce,
    ConfirmOrder,
    DeliverOrder,
    FulfilmentStatus,
    InsufficientStockError,
    InvalidQuantityError,
    Money,
    OrderLineRequest,
    OrderStatus,
    PaymentStatus,
    PlaceOrder,
    ReceiveReturn,
    RegisterItem,
    RejectCancellation,
    RequestReturn,
    Settings,
    ShipOrder,
    StartFulfilment,
)
from suuupra_commerce.testing import FakeClock, InMemoryPriceBook

SKUS = {"MUG-1": 6, "TEE-M": 4, "CAP-1": 3}
HOLDING = {
    OrderStatus.PENDING,
    OrderStatus.CONFIRMED,
    OrderStatus.PROCESSING,
    OrderStatus.CANCELLATION_REQUESTED,
    OrderStatus.PARTIALLY_SHIPPED,
}


class OrderLives(RuleBasedStateMachine):
    """Random orders on three SKUs, each pushed along (or refused) at random."""

    def __init__(self) -> None:
        super().__init__()
        book = InMemoryPriceBook()
        for sku in SKUS:
            book.set_price(sku, sku.title(), Money("4.99", "USD"))
        self.commerce = Commerce(self.make_settings(), price_book=book, clock=FakeClock())
        self.orders: list[UUID] = []
        self.keys = 0
        self.restocked: Counter[str] = Counter()

    @initialize()
    def stock(self) -> None:
        for sku, units in SKUS.items():
            self.commerce.inventory.register(
                RegisterItem(
                    sku=sku,
                    product_id=sku.lower(),
                    name=sku.title(),
                    unit_price=Money("4.99", "USD"),
                    initial_quantity=units,
                )
            )

    def make_settings(self) -> Settings:
        """The store each example runs on (a new one per example)."""
        return Settings.from_env({"COMMERCE_PERSISTENCE": "memory"})

    def teardown(self) -> None:
        self.commerce.close()

    # --- rules --------------------------------------------------------------------------------

    @rule(
        lines=st.dictionaries(st.sampled_from(sorted(SKUS)), st.integers(1, 4), min_size=1),
        repeat=st.booleans(),
    )
    def place(self, lines: dict[str, int], repeat: bool) -> None:
        self.keys += 1
        command = PlaceOrder(
            idempotency_key=f"k-{self.keys}",
            customer_id="c",
            currency="USD",
            lines=[OrderLineRequest(sku=s, quantity=q) for s, q in sorted(lines.items())],
        )
        try:
            order_id = self.commerce.orders.place(command)
        except InsufficientStockError:
            return
        if repeat:
            assert self.commerce.orders.place(command) == order_id
        self.orders.append(order_id)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), step=st.sampled_from(["confirm", "start", "deliver", "authorize"]))
    def advance(self, data: st.DataObject, step: str) -> None:
        order_id = data.draw(st.sampled_from(self.orders))
        orders = self.commerce.orders
        try:
            if step == "confirm":
                orders.confirm(ConfirmOrder(order_id=order_id))
            elif step == "start":
                orders.start_fulfilment(StartFulfilment(order_id=order_id))
            elif step == "deliver":
                orders.deliver(DeliverOrder(order_id=order_id))
            else:
                orders.authorize_payment(AuthorizePayment(order_id=order_id, reference="auth"))
                orders.capture_payment(CapturePayment(order_id=order_id))
        except BusinessRuleError:
            pass

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), everything=st.booleans())
    def ship(self, data: st.DataObject, everything: bool) -> None:
        order_id = data.draw(st.sampled_from(self.orders))
        view = self.commerce.orders.get(order_id)
        left = {line.sku: line.quantity - line.shipped for line in view.lines}
        left = {sku: units for sku, units in left.items() if units}
        part = None
        if not everything and left:
            sku = data.draw(st.sampled_from(sorted(left)))
            part = {sku: data.draw(st.integers(1, left[sku]))}
        shipment = f"s-{view.version}"
        with contextlib.suppress(BusinessRuleError, InvalidQuantityError):
            self.commerce.orders.ship(
                ShipOrder(order_id=order_id, shipment_id=shipment, lines=part)
            )

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), decision=st.sampled_from(["ask", "approve", "reject"]))
    def cancel(self, data: st.DataObject, decision: str) -> None:
        order_id = data.draw(st.sampled_from(self.orders))
        orders = self.commerce.orders
        try:
            if decision == "ask":
                orders.cancel(CancelOrder(order_id=order_id))
            elif decision == "approve":
                orders.approve_cancellation(
                    ApproveCancellation(order_id=order_id, approved_by="ops")
                )
            else:
                orders.reject_cancellation(
                    RejectCancellation(order_id=order_id, reason="too late", rejected_by="ops")
                )
        except BusinessRuleError:
            pass

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def give_back(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(self.orders))
        view = self.commerce.orders.get(order_id)
        returnable = {line.sku: line.shipped - line.returned for line in view.lines if line.shipped}
        returnable = {sku: units for sku, units in returnable.items() if units}
        if not returnable:
            return
        sku = data.draw(st.sampled_from(sorted(returnable)))
        units = data.draw(st.integers(1, returnable[sku]))
        return_id = f"r-{view.version}"
        orders = self.commerce.orders
        try:
            orders.request_return(
                RequestReturn(order_id=order_id, return_id=return_id, lines={sku: units})
            )
            orders.approve_return(ApproveReturn(order_id=order_id, return_id=return_id))
            orders.receive_return(ReceiveReturn(order_id=order_id, return_id=return_id))
        except (BusinessRuleError, InvalidQuantityError):
            return
        self.restocked[sku] += units

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def stock_is_conserved_between_orders_and_inventory(self) -> None:
        if not self.orders and not self.commerce.inventory.items():
            return
        views = [self.commerce.orders.get(order_id) for order_id in self.orders]
        to_ship: Counter[str] = Counter()
        shipped: Counter[str] = Counter()
        returned: Counter[str] = Counter()
        for view in views:
            for line in view.lines:
                shipped[line.sku] += line.shipped
                returned[line.sku] += line.returned
                if view.status in HOLDING:
                    to_ship[line.sku] += line.quantity - line.shipped
        for sku, initial in SKUS.items():
            item = self.commerce.inventory.item(sku)
            assert item.reserved == to_ship[sku], sku
            assert item.on_hand == initial - shipped[sku] + returned[sku], sku
            assert returned[sku] == self.restocked[sku], sku
            assert item.available >= 0, sku

    @invariant()
    def money_and_statuses_stay_consistent(self) -> None:
        listing = {s.order_id: s for s in self.commerce.orders.listing(limit=1000)}
        for order_id in self.orders:
            view = self.commerce.orders.get(order_id)
            assert listing[order_id].status is view.status
            assert listing[order_id].payment_status is view.payment_status
            assert view.total == sum((line.total for line in view.lines), view.shipping)
            assert view.refunded + view.refund_pending <= view.captured
            if view.payment_status is PaymentStatus.CAPTURED:
                assert view.status is not OrderStatus.PENDING
            if view.fulfilment_status is FulfilmentStatus.FULFILLED:
                assert view.status in {
                    OrderStatus.SHIPPED,
                    OrderStatus.DELIVERED,
                    OrderStatus.COMPLETED,
                }


OrderLives.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrderLives = OrderLives.TestCase

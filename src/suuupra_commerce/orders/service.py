"""The orders application service: placement (idempotent, stock reserved), and the order's life.

Orders and inventory are separate applications with separate event stores, so a
command that touches both does its inventory part first, by an operation that is
idempotent by order id (reservation ids are derived from the order id and SKU), and
records the order's events second. A failure between the two leaves, at worst,
inventory ahead of the order; repeating the command completes it, and unconfirmed
reservations expire by themselves. Sagas (which drive these commands durably) and
the refund and payment gateways are outside this service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar, Unpack
from uuid import UUID

from suuupra_commerce.application import (
    CommerceApplication,
    ServiceOptions,
)
from suuupra_commerce.context import current_context
from suuupra_commerce.errors import (
    IdempotencyKeyReusedError,
    InvalidInputError,
    OrderNotFoundError,
)
from suuupra_commerce.inventory.commands import ReservationLine, ReserveStock
from suuupra_commerce.inventory.service import Inventory
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
    FailPayment,
    FailRefund,
    HoldOrder,
    PlaceOrder,
    ReceiveReturn,
    RefundPayment,
    RejectCancellation,
    RejectOrder,
    RejectReturn,
    ReleaseOrder,
    RequestReturn,
    ShipOrder,
    StartFulfilment,
    VoidPayment,
    order_id_for_key,
)
from suuupra_commerce.orders.domain import Order
from suuupra_commerce.orders.lifecycle import OrderStatus
from suuupra_commerce.orders.policy import CancellationPolicy, StandardCancellationPolicy
from suuupra_commerce.orders.views import OrderProjection, OrderSummary, OrderView
from suuupra_commerce.pricing import Pricing, Quote
from suuupra_commerce.projections import ViewQuery
from suuupra_commerce.tracing import traced_service
from suuupra_commerce.values import check_identifier

__all__ = ["Orders"]


def _acting_saga() -> str | None:
    """The saga whose step is running, if any (the saga engine says so in the context)."""
    context = current_context()
    return None if context is None else context.saga_id


T = TypeVar("T")


@traced_service
class Orders(CommerceApplication):
    """Places orders (idempotently, reserving stock all-or-nothing) and moves them through life."""

    name = "Orders"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        inventory: Inventory,
        pricing: Pricing,
        cancellation_policy: CancellationPolicy | None = None,
        reservation_minutes: int = 15,
        **options: Unpack[ServiceOptions],
    ) -> None:
        super().__init__(env, **options)
        self.inventory = inventory
        self.pricing = pricing
        self.cancellation_policy: CancellationPolicy = (
            cancellation_policy or StandardCancellationPolicy()
        )
        self.reservation_minutes = reservation_minutes
        self.register_projection(OrderProjection())

    # --- placement ----------------------------------------------------------------------------

    def place(self, cmd: PlaceOrder) -> UUID:
        """Place an order priced from the price book; returns its id.

        The same idempotency key with the same payload returns the same order id and
        writes nothing more; with another payload it raises ``IdempotencyKeyReusedError``.
        ``InsufficientStockError`` (or any refusal) writes nothing.
        """
        order_id = order_id_for_key(cmd.idempotency_key)
        fingerprint = cmd.fingerprint()
        existing = self._existing(order_id, fingerprint)
        if existing is not None:
            return existing
        quote = self.pricing.quote(
            [(line.sku, line.quantity) for line in cmd.lines],
            cmd.currency,
            discount_code=cmd.discount_code,
        )
        return self.place_quote(
            order_id=order_id,
            customer_id=cmd.customer_id,
            quote=quote,
            fingerprint=fingerprint,
            idempotency_key=cmd.idempotency_key,
        )

    def place_quote(
        self,
        *,
        order_id: UUID,
        customer_id: str,
        quote: Quote,
        fingerprint: str,
        idempotency_key: str | None = None,
    ) -> UUID:
        """Place an order from a quote the library computed (a cart checkout, say).

        Idempotent by ``order_id``: an order that exists with the same fingerprint is
        returned as it is; with another fingerprint ``IdempotencyKeyReusedError``.
        """
        check_identifier(customer_id, "customer id")
        reserved_skus: set[str] = set()

        def attempt() -> UUID:
            existing = self._existing(order_id, fingerprint)
            if existing is not None:
                return existing
            order = Order.place(
                order_id=order_id,
                customer_id=customer_id,
                quote=quote,
                fingerprint=fingerprint,
                idempotency_key=idempotency_key,
            )
            reserved = self.inventory.reserve(
                ReserveStock(
                    order_id=str(order_id),
                    lines=[ReservationLine(sku=q.sku, quantity=q.quantity) for q in quote.lines],
                    duration_minutes=self.reservation_minutes,
                )
            )
            reserved_skus.update(r.sku for r in reserved)
            order.record_stock_reserved(
                [
                    {
                        "sku": r.sku,
                        "reservation_id": r.reservation_id,
                        "quantity": r.quantity,
                        "expires_at": r.expires_at,
                    }
                    for r in reserved
                ]
            )
            self.save(order)
            return order.id

        try:
            result: UUID = self._run(attempt, writes=[order_id])
        except IdempotencyKeyReusedError:
            # Another payload won this order id while we held reservations for it.
            self._release_unclaimed(order_id, reserved_skus)
            raise
        return result

    def _release_unclaimed(self, order_id: UUID, skus: set[str]) -> None:
        """Release reservations a refused placement made that the winning order does not hold.

        Reservation ids derive from the order id and SKU, so a line the winner also has
        shares its reservation (same quantity, or the reservation itself was refused);
        any other SKU would otherwise stay reserved for nobody until it expired.
        """
        if not skus or not self._exists(order_id):
            return
        unclaimed = skus - set(self._order(order_id).lines)
        if unclaimed:
            self.inventory.release_order(str(order_id), unclaimed, "placement refused")

    def _existing(self, order_id: UUID, fingerprint: str) -> UUID | None:
        if not self._exists(order_id):
            return None
        order = self._order(order_id)
        order.check_replay(fingerprint)
        return order.id

    # --- one order ----------------------------------------------------------------------------

    def _order(self, order_id: UUID) -> Order:
        return self._load(Order, order_id, OrderNotFoundError(order_id))

    def _change(
        self,
        order_id: UUID,
        decide: Callable[[Order], T],
        *,
        hold: bool = False,
        release: bool = False,
    ) -> T:
        """Load, decide (inventory part included), save; the whole is retried on conflict.

        An order a saga holds takes commands only from that saga's steps. ``hold`` makes
        the acting saga take the order with the change, ``release`` lets it go with it:
        one write either way.
        """
        acting = _acting_saga()

        def attempt() -> T:
            order = self._order(order_id)
            order.check_hold(acting)
            result = decide(order)
            if acting is not None and hold:
                order.hold(acting)
            if acting is not None and release and order.held_by == acting:
                order.release("saga", "its work on the order is done")
            self.save(order)
            return result

        return self._run(attempt, writes=[order_id])

    def confirm(self, cmd: ConfirmOrder) -> None:
        """Pending -> confirmed; confirms the order's stock reservations first."""

        def decide(order: Order) -> None:
            skus = order.skus_holding_stock()
            order.confirm()
            if skus:
                self.inventory.confirm_order(str(order.id), skus)

        self._change(cmd.order_id, decide)

    def start_fulfilment(self, cmd: StartFulfilment, *, release_hold: bool = False) -> None:
        """Confirmed -> processing; ``release_hold``: the acting saga lets the order go."""
        self._change(cmd.order_id, lambda order: order.start_fulfilment(), release=release_hold)

    def ship(self, cmd: ShipOrder) -> dict[str, int]:
        """Ship units (all that is left when no lines are given); stock leaves inventory first.

        Idempotent by shipment id. Returns the units shipped by SKU (empty for a repeat).
        """

        def decide(order: Order) -> dict[str, int]:
            units = order.plan_shipment(cmd.shipment_id, cmd.lines)
            if units:
                shipment = f"{order.id}/{cmd.shipment_id}"
                self.inventory.fulfil_order(str(order.id), units, shipment)
                order.ship(cmd.shipment_id, units, cmd.carrier or "", cmd.tracking_number or "")
            return units

        return self._change(cmd.order_id, decide)

    def deliver(self, cmd: DeliverOrder) -> None:
        """Shipped -> delivered."""
        self._change(cmd.order_id, lambda order: order.deliver())

    def complete(self, cmd: CompleteOrder) -> None:
        """Delivered -> completed."""
        self._change(cmd.order_id, lambda order: order.complete())

    # --- payment ------------------------------------------------------------------------------

    def authorize_payment(self, cmd: AuthorizePayment, *, hold: bool = False) -> None:
        """Record that the gateway authorized the order total.

        ``hold``: the acting saga takes the order with it (see :meth:`Order.hold`).
        """
        self._change(cmd.order_id, lambda order: order.authorize_payment(cmd.reference), hold=hold)

    def capture_payment(self, cmd: CapturePayment) -> None:
        """Record that the gateway captured the authorized amount."""
        self._change(cmd.order_id, lambda order: order.capture_payment())

    def fail_payment(self, cmd: FailPayment) -> None:
        """Record that the gateway refused to authorize or capture."""
        self._change(cmd.order_id, lambda order: order.fail_payment(cmd.reason))

    def void_payment(self, cmd: VoidPayment) -> None:
        """Record that the authorization was released."""
        self._change(cmd.order_id, lambda order: order.void_payment())

    def refund(self, cmd: RefundPayment) -> bool:
        """Start a refund (partial or full); ``False`` for a repeat of the same refund id."""
        return self._change(
            cmd.order_id, lambda order: order.initiate_refund(cmd.refund_id, cmd.amount, cmd.reason)
        )

    def complete_refund(self, cmd: CompleteRefund) -> None:
        """Record that the gateway paid a refund back."""
        self._change(cmd.order_id, lambda order: order.complete_refund(cmd.refund_id))

    def fail_refund(self, cmd: FailRefund) -> None:
        """Record that a refund failed; its amount is refundable again."""
        self._change(cmd.order_id, lambda order: order.fail_refund(cmd.refund_id, cmd.reason))

    # --- cancellation -------------------------------------------------------------------------

    def cancel(self, cmd: CancelOrder) -> bool:
        """Cancel now (``True``) or request approval (``False``), per the cancellation policy.

        Cancelling releases the stock the order still holds and starts the refund the
        policy allows; ``CancellationNotAllowedError`` once the order has shipped.
        """

        def decide(order: Order) -> bool:
            holding = order.skus_holding_stock()
            done = order.cancel(self.cancellation_policy, cmd.reason, cmd.requested_by)
            if done and holding:
                self.inventory.release_order(str(order.id), holding, "order cancelled")
            return done

        return self._change(cmd.order_id, decide)

    def reject(self, cmd: RejectOrder) -> bool:
        """Cancel an order that cannot be fulfilled, releasing its stock; policy not consulted.

        For a saga undoing a placement (payment declined, stock gone). Allowed while the
        order is pending or confirmed and nothing is captured; ``False`` for a repeat.
        """

        def decide(order: Order) -> bool:
            holding = order.skus_holding_stock()
            done = order.reject(cmd.reason)
            if done and holding:
                self.inventory.release_order(str(order.id), holding, "order rejected")
            return done

        return self._change(cmd.order_id, decide, release=True)

    def hold(self, cmd: HoldOrder) -> None:
        """A saga's step takes the order (see :meth:`Order.hold`); only a saga's step may."""
        if _acting_saga() is None:
            raise InvalidInputError("only a saga's step holds an order")
        self._change(cmd.order_id, lambda order: None, hold=True)

    def release(self, cmd: ReleaseOrder) -> None:
        """Operator: free an order a saga holds (after resolving that saga by hand)."""

        def attempt() -> None:
            order = self._order(cmd.order_id)
            order.release(cmd.by, cmd.reason)
            self.save(order)

        self._run(attempt, writes=[cmd.order_id])

    def approve_cancellation(self, cmd: ApproveCancellation) -> None:
        """Approve a requested cancellation: stock is released and the policy's refund started."""

        def decide(order: Order) -> None:
            holding = order.skus_holding_stock()
            order.approve_cancellation(self.cancellation_policy, cmd.approved_by)
            if holding:
                self.inventory.release_order(str(order.id), holding, "order cancelled")

        self._change(cmd.order_id, decide)

    def reject_cancellation(self, cmd: RejectCancellation) -> None:
        """Refuse a requested cancellation; the order goes back to processing."""
        self._change(
            cmd.order_id, lambda order: order.reject_cancellation(cmd.reason, cmd.rejected_by)
        )

    # --- returns ------------------------------------------------------------------------------

    def request_return(self, cmd: RequestReturn) -> None:
        """Record a customer's request to return shipped units."""
        self._change(
            cmd.order_id, lambda order: order.request_return(cmd.return_id, cmd.lines, cmd.reason)
        )

    def approve_return(self, cmd: ApproveReturn) -> None:
        """Accept a return."""
        self._change(cmd.order_id, lambda order: order.approve_return(cmd.return_id))

    def reject_return(self, cmd: RejectReturn) -> None:
        """Refuse a return."""
        self._change(cmd.order_id, lambda order: order.reject_return(cmd.return_id, cmd.reason))

    def receive_return(self, cmd: ReceiveReturn) -> Money:
        """Returned units arrived: restock them (once) and start their refund if paid.

        Returns the value of the returned units (zero for a repeat).
        """

        def decide(order: Order) -> Money:
            request = order.returns.get(cmd.return_id)
            already = request is not None and request.status == "received"
            value = order.receive_return(cmd.return_id)
            if request is not None and not already:
                self.inventory.restock(
                    request.lines,
                    reference=f"return/{order.id}/{cmd.return_id}",
                    note="order return",
                )
            return value

        return self._change(cmd.order_id, decide)

    # --- queries ------------------------------------------------------------------------------

    def get(self, order_id: UUID) -> OrderView:
        """One order in full; ``OrderNotFoundError`` if there is none."""
        return OrderView.of(self._order(order_id))

    def aggregate(self, order_id: UUID) -> Order:
        """The order aggregate itself, rebuilt from its events."""
        return self._order(order_id)

    def for_customer(self, customer_id: str) -> list[OrderSummary]:
        """A customer's orders, newest first (from the read model)."""
        check_identifier(customer_id, "customer id")
        query = ViewQuery(equal={"customer_id": customer_id}, order_by="placed_at", descending=True)
        return self._summaries(query)

    def listing(
        self, status: OrderStatus | None = None, limit: int = 100, offset: int = 0
    ) -> list[OrderSummary]:
        """Orders, newest first, optionally of one status (from the read model)."""
        query = ViewQuery(
            equal=None if status is None else {"status": status.value},
            order_by="placed_at",
            descending=True,
            limit=max(1, min(limit, 1000)),
            offset=max(0, offset),
        )
        return self._summaries(query)

    def count_by_status(self) -> dict[OrderStatus, int]:
        """How many orders are in each status (from the read model)."""
        tallies = self._query(lambda: self.views.tally(OrderProjection.name, ("status",)))
        return {OrderStatus(t.group[0]): t.count for t in tallies if t.group[0] is not None}

    def _summaries(self, query: ViewQuery) -> list[OrderSummary]:
        docs = self._find(OrderProjection.name, query)
        return [OrderProjection.summary(doc) for doc in docs]

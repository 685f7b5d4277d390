"""The order aggregate: priced lines, status, payment, shipments, cancellation, returns.

Prices, names, taxes and discounts of every line are snapshotted when the order is
placed and never looked up again. Status and payment status move only along the
tables in :mod:`suuupra_commerce.orders.lifecycle`; every event that moves one
carries the state it leads to, so the read models need not know the tables.

Every public method validates and decides first (raising a typed error and
recording nothing when it refuses), then records its events through private
``@event`` methods whose bodies are the replay handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from suuupra_commerce.aggregate import CommerceAggregate
from suuupra_commerce.errors import (
    CancellationNotAllowedError,
    CurrencyMismatchError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidQuantityError,
    OrderLockedError,
    RefundExceedsPaymentError,
)
from suuupra_commerce.money import Money, sum_money
from suuupra_commerce.orders.lifecycle import (
    ORDER_LIFECYCLE,
    PAYMENT_LIFECYCLE,
    FulfilmentStatus,
    OrderStatus,
    PaymentStatus,
)
from suuupra_commerce.orders.policy import CancellationDecision, CancellationPolicy
from suuupra_commerce.pricing import Quote
from suuupra_commerce.values import check_identifier, check_quantity

__all__ = [
    "CANCELLATION_REFUND_ID",
    "RETURN_REFUND_PREFIX",
    "Order",
    "OrderLine",
    "Refund",
    "ReturnRequest",
    "Shipment",
]

CANCELLATION_REFUND_ID = "cancellation"
"""The id of the refund a cancellation starts (complete or fail it by this id)."""

RETURN_REFUND_PREFIX = "return/"
"""Refunds of received returns are ``return/<return id>``."""


@dataclass(slots=True)
class OrderLine:
    """One line as placed (snapshotted prices), with what has shipped and come back."""

    sku: str
    name: str
    unit_price: Money
    quantity: int
    subtotal: Money
    discount: Money
    tax: Money
    total: Money
    shipped: int = 0
    returned: int = 0
    return_pending: int = 0

    @property
    def unshipped(self) -> int:
        return self.quantity - self.shipped

    @property
    def returnable(self) -> int:
        return self.shipped - self.returned - self.return_pending

    def value_of(self, units: int, already: int) -> Money:
        """The share of the line total for ``units`` more units after ``already`` units.

        Computed from exact allocations, so that returning every unit, in any number
        of parts, adds up to the line total exactly.
        """
        before = self.total.allocate([already, self.quantity - already])[0]
        after = self.total.allocate([already + units, self.quantity - already - units])[0]
        return after - before

    def to_event(self) -> dict[str, Any]:
        """The line as placed, as JSON-plain event data (what ``from_event`` reads)."""
        return {
            "sku": self.sku,
            "name": self.name,
            "unit_price": self.unit_price.to_dict(),
            "quantity": self.quantity,
            "subtotal": self.subtotal.to_dict(),
            "discount": self.discount.to_dict(),
            "tax": self.tax.to_dict(),
            "total": self.total.to_dict(),
        }

    @classmethod
    def from_event(cls, data: Mapping[str, Any]) -> OrderLine:
        """The inverse of :meth:`to_event`."""
        return cls(
            sku=data["sku"],
            name=data["name"],
            unit_price=Money.from_dict(data["unit_price"]),
            quantity=data["quantity"],
            subtotal=Money.from_dict(data["subtotal"]),
            discount=Money.from_dict(data["discount"]),
            tax=Money.from_dict(data["tax"]),
            total=Money.from_dict(data["total"]),
        )


@dataclass(slots=True)
class Shipment:
    """Units of some lines that left together."""

    lines: dict[str, int]
    carrier: str
    tracking_number: str


@dataclass(slots=True)
class Refund:
    """Money going back to the customer: initiated, then completed or failed."""

    amount: Money
    reason: str
    status: str = "initiated"


@dataclass(slots=True)
class ReturnRequest:
    """Units the customer sends back: requested, approved or rejected, then received."""

    lines: dict[str, int]
    reason: str
    status: str = "requested"


def _status(value: str) -> OrderStatus:
    return OrderStatus(value)


class Order(CommerceAggregate):
    """An order, from placement to completion, cancellation or return."""

    # --- placement ----------------------------------------------------------------------------

    class Placed(Aggregate.Created):
        customer_id: str
        currency: str
        lines: list[dict[str, Any]]
        shipping: dict[str, str]
        tax_inclusive: bool
        discount_code: str | None
        fingerprint: str
        idempotency_key: str | None

    @event(Placed)
    def __init__(
        self,
        id: UUID,
        customer_id: str,
        currency: str,
        lines: list[dict[str, Any]],
        shipping: dict[str, str],
        tax_inclusive: bool,
        discount_code: str | None,
        fingerprint: str,
        idempotency_key: str | None,
    ) -> None:
        self.customer_id = customer_id
        self.currency = currency
        self.lines: dict[str, OrderLine] = {}
        for data in lines:
            line = OrderLine.from_event(data)
            self.lines[line.sku] = line
        self.shipping = Money.from_dict(shipping)
        self.tax_inclusive = tax_inclusive
        self.discount_code = discount_code
        self.fingerprint = fingerprint
        self.idempotency_key = idempotency_key
        self.status = OrderStatus.PENDING
        self.payment_status = PaymentStatus.PENDING
        zero = Money.zero(currency)
        self.authorized = zero
        self.captured = zero
        self.refunded = zero
        self.payment_reference: str | None = None
        self.refunds: dict[str, Refund] = {}
        self.shipments: dict[str, Shipment] = {}
        self.returns: dict[str, ReturnRequest] = {}
        self.stock_reserved = False
        self.stock_released = False
        self.cancellation_reason: str | None = None
        self.held_by: str | None = None
        self.cancellation_fee = zero
        self.history: list[str] = [OrderStatus.PENDING.value]

    @classmethod
    def place(
        cls,
        *,
        order_id: UUID,
        customer_id: str,
        quote: Quote,
        fingerprint: str,
        idempotency_key: str | None = None,
    ) -> Order:
        """A new order from a quote; prices and names of every line are snapshotted."""
        if not isinstance(order_id, UUID):
            raise InvalidInputError("order id must be a UUID")
        check_identifier(customer_id, "customer id")
        check_identifier(fingerprint, "fingerprint")
        if idempotency_key is not None:
            check_identifier(idempotency_key, "idempotency key")
        if not quote.lines:
            raise InvalidInputError("an order needs at least one line")
        return cls(
            id=order_id,
            customer_id=customer_id,
            currency=quote.currency,
            lines=[
                OrderLine(
                    sku=q.sku,
                    name=q.name,
                    unit_price=q.unit_price,
                    quantity=q.quantity,
                    subtotal=q.subtotal,
                    discount=q.discount,
                    tax=q.tax,
                    total=q.total,
                ).to_event()
                for q in quote.lines
            ],
            shipping=quote.shipping.to_dict(),
            tax_inclusive=quote.tax_inclusive,
            discount_code=quote.discount_code,
            fingerprint=fingerprint,
            idempotency_key=idempotency_key,
        )

    def check_replay(self, fingerprint: str) -> None:
        """Refuse a placement that reuses this order's idempotency key with another payload."""
        if fingerprint != self.fingerprint:
            msg = f"order {self.id} was placed with this key and a different payload"
            raise IdempotencyKeyReusedError(msg)

    # --- totals -------------------------------------------------------------------------------

    @property
    def subtotal(self) -> Money:
        return sum_money((line.subtotal for line in self.lines.values()), self.currency)

    @property
    def discount(self) -> Money:
        return sum_money((line.discount for line in self.lines.values()), self.currency)

    @property
    def tax(self) -> Money:
        return sum_money((line.tax for line in self.lines.values()), self.currency)

    @property
    def total(self) -> Money:
        """What the customer pays: line totals plus shipping."""
        return sum_money((line.total for line in self.lines.values()), self.currency) + (
            self.shipping
        )

    @property
    def refund_pending(self) -> Money:
        return sum_money(
            (r.amount for r in self.refunds.values() if r.status == "initiated"), self.currency
        )

    @property
    def refundable(self) -> Money:
        """Captured money not yet refunded nor being refunded."""
        return self.captured - self.refunded - self.refund_pending

    @property
    def fulfilment_status(self) -> FulfilmentStatus:
        lines = self.lines.values()
        shipped = sum(line.shipped for line in lines)
        returned = sum(line.returned for line in lines)
        if returned:
            if returned == sum(line.quantity for line in lines):
                return FulfilmentStatus.RETURNED
            return FulfilmentStatus.PARTIALLY_RETURNED
        if not shipped:
            return FulfilmentStatus.UNFULFILLED
        if all(line.unshipped == 0 for line in lines):
            return FulfilmentStatus.FULFILLED
        return FulfilmentStatus.PARTIALLY_FULFILLED

    # --- stock --------------------------------------------------------------------------------

    class StockReserved(Aggregate.Event):
        reservations: list[dict[str, Any]]

    def record_stock_reserved(self, reservations: list[dict[str, Any]]) -> None:
        """Note the inventory reservations held for the lines (sku, reservation_id, quantity)."""
        if self.stock_reserved:
            return
        self._stock_reserved(reservations)

    @event(StockReserved)
    def _stock_reserved(self, reservations: list[dict[str, Any]]) -> None:
        self.stock_reserved = True

    class StockReleased(Aggregate.Event):
        reason: str

    def _release_stock(self, reason: str) -> None:
        if self.stock_reserved and not self.stock_released:
            self._stock_released(reason)

    @event(StockReleased)
    def _stock_released(self, reason: str) -> None:
        self.stock_released = True

    def skus_holding_stock(self) -> list[str]:
        """SKUs whose reservations still hold units (none once released or fully shipped)."""
        if not self.stock_reserved or self.stock_released:
            return []
        return [sku for sku, line in self.lines.items() if line.unshipped]

    # --- the hold of a saga (a semantic lock) ------------------------------------------------

    class Held(Aggregate.Event):
        saga_id: str

    def hold(self, saga_id: str) -> None:
        """A saga takes the order: commands not made for it are refused until it lets go.

        Holding it again for the same saga is a no-op; for another, ``OrderLockedError``.
        """
        check_identifier(saga_id, "saga id")
        if self.held_by == saga_id:
            return
        self.check_hold(saga_id)
        self._held(saga_id)

    @event(Held)
    def _held(self, saga_id: str) -> None:
        self.held_by = saga_id

    class Released(Aggregate.Event):
        saga_id: str
        by: str
        reason: str

    def release(self, by: str, reason: str) -> None:
        """Let go of the order (the saga holding it, or an operator); a no-op if not held."""
        check_identifier(by, "released by")
        check_identifier(reason, "reason")
        if self.held_by is not None:
            self._released(self.held_by, by, reason)

    @event(Released)
    def _released(self, saga_id: str, by: str, reason: str) -> None:
        self.held_by = None

    def check_hold(self, acting_saga: str | None) -> None:
        """Refuse a command unless the order is free or held by ``acting_saga``."""
        if self.held_by is not None and self.held_by != acting_saga:
            raise OrderLockedError(self.id, self.held_by)

    # --- simple status moves ------------------------------------------------------------------

    class Confirmed(Aggregate.Event):
        status: str

    def confirm(self) -> None:
        """Pending -> confirmed."""
        self._confirmed(ORDER_LIFECYCLE.next_state(self.status, "confirm").value)

    @event(Confirmed)
    def _confirmed(self, status: str) -> None:
        self._move(status)

    class FulfilmentStarted(Aggregate.Event):
        status: str

    def start_fulfilment(self) -> None:
        """Confirmed -> processing."""
        self._fulfilment_started(ORDER_LIFECYCLE.next_state(self.status, "start_fulfilment").value)

    @event(FulfilmentStarted)
    def _fulfilment_started(self, status: str) -> None:
        self._move(status)

    class Delivered(Aggregate.Event):
        status: str

    def deliver(self) -> None:
        """Shipped -> delivered."""
        self._delivered(ORDER_LIFECYCLE.next_state(self.status, "deliver").value)

    @event(Delivered)
    def _delivered(self, status: str) -> None:
        self._move(status)

    class Completed(Aggregate.Event):
        status: str

    def complete(self) -> None:
        """Delivered -> completed."""
        self._completed(ORDER_LIFECYCLE.next_state(self.status, "complete").value)

    @event(Completed)
    def _completed(self, status: str) -> None:
        self._move(status)

    def _move(self, status: str) -> None:
        self.status = _status(status)
        self.history.append(status)

    # --- shipments ----------------------------------------------------------------------------

    class Shipped(Aggregate.Event):
        shipment_id: str
        lines: dict[str, int]
        carrier: str
        tracking_number: str
        status: str

    def plan_shipment(self, shipment_id: str, lines: Mapping[str, int] | None) -> dict[str, int]:
        """Check a shipment (``None`` = everything unshipped) and return units per SKU.

        A repeated shipment id returns ``{}`` (nothing more to ship); the same id with
        other lines raises ``IdempotencyKeyReusedError``. An order that is not being
        fulfilled (pending, shipped, cancelled ...) cannot ship: ``IllegalTransitionError``.
        """
        check_identifier(shipment_id, "shipment id")
        existing = self.shipments.get(shipment_id)
        if existing is not None:
            if lines is not None and dict(lines) != existing.lines:
                msg = f"shipment {shipment_id} exists with other lines"
                raise IdempotencyKeyReusedError(msg)
            return {}
        if not any(ORDER_LIFECYCLE.can(self.status, t) for t in ("ship", "ship_partially")):
            raise IllegalTransitionError("order", self.status.value, "ship")
        if lines is None:
            units = {sku: line.unshipped for sku, line in self.lines.items() if line.unshipped}
        else:
            units = {}
            for sku, quantity in lines.items():
                line = self._line(sku)
                check_quantity(quantity)
                if quantity > line.unshipped:
                    msg = f"cannot ship {quantity} of {sku}: {line.unshipped} left to ship"
                    raise InvalidQuantityError(msg)
                units[sku] = quantity
        if not units:
            raise InvalidQuantityError("a shipment needs at least one unit to ship")
        everything = all(units.get(sku, 0) == line.unshipped for sku, line in self.lines.items())
        ORDER_LIFECYCLE.next_state(self.status, "ship" if everything else "ship_partially")
        return units

    def ship(
        self,
        shipment_id: str,
        units: Mapping[str, int],
        carrier: str = "",
        tracking_number: str = "",
    ) -> None:
        """Record a shipment, checked as :meth:`plan_shipment` checks it. A repeat is a no-op."""
        for text, what in ((carrier, "carrier"), (tracking_number, "tracking number")):
            if text:
                check_identifier(text, what)
        planned = self.plan_shipment(shipment_id, units)
        if not planned:
            return
        everything = all(planned.get(sku, 0) == line.unshipped for sku, line in self.lines.items())
        status = ORDER_LIFECYCLE.next_state(self.status, "ship" if everything else "ship_partially")
        self._shipped(shipment_id, planned, carrier, tracking_number, status.value)

    @event(Shipped)
    def _shipped(
        self,
        shipment_id: str,
        lines: dict[str, int],
        carrier: str,
        tracking_number: str,
        status: str,
    ) -> None:
        for sku, units in lines.items():
            self.lines[sku].shipped += units
        self.shipments[shipment_id] = Shipment(dict(lines), carrier, tracking_number)
        if status != self.status:
            self._move(status)

    def _line(self, sku: str) -> OrderLine:
        try:
            return self.lines[sku]
        except KeyError:
            raise InvalidInputError(f"order {self.id} has no line for {sku!r}") from None

    # --- payment ------------------------------------------------------------------------------

    class PaymentAuthorized(Aggregate.Event):
        amount: dict[str, str]
        reference: str
        payment_status: str

    def authorize_payment(self, reference: str) -> None:
        """The gateway authorized the order total."""
        check_identifier(reference, "payment reference")
        if self.status in (OrderStatus.CANCELLED, OrderStatus.CANCELLATION_REQUESTED):
            raise IllegalTransitionError("order", self.status.value, "authorize payment for")
        to = PAYMENT_LIFECYCLE.next_state(self.payment_status, "authorize")
        self._payment_authorized(self.total.to_dict(), reference, to.value)

    @event(PaymentAuthorized)
    def _payment_authorized(
        self, amount: dict[str, str], reference: str, payment_status: str
    ) -> None:
        self.authorized = Money.from_dict(amount)
        self.payment_reference = reference
        self.payment_status = PaymentStatus(payment_status)

    class PaymentCaptured(Aggregate.Event):
        amount: dict[str, str]
        payment_status: str

    def capture_payment(self) -> None:
        """The gateway captured the authorized amount."""
        if self.status in (OrderStatus.PENDING, OrderStatus.CANCELLED):
            raise IllegalTransitionError("order", self.status.value, "capture payment for")
        to = PAYMENT_LIFECYCLE.next_state(self.payment_status, "capture")
        self._payment_captured(self.authorized.to_dict(), to.value)

    @event(PaymentCaptured)
    def _payment_captured(self, amount: dict[str, str], payment_status: str) -> None:
        self.captured = Money.from_dict(amount)
        self.payment_status = PaymentStatus(payment_status)

    class PaymentFailed(Aggregate.Event):
        reason: str
        payment_status: str

    def fail_payment(self, reason: str) -> None:
        """The gateway refused to authorize or to capture."""
        check_identifier(reason, "reason")
        to = PAYMENT_LIFECYCLE.next_state(self.payment_status, "fail")
        self._payment_failed(reason, to.value)

    @event(PaymentFailed)
    def _payment_failed(self, reason: str, payment_status: str) -> None:
        self.authorized = Money.zero(self.currency)
        self.payment_status = PaymentStatus(payment_status)

    class PaymentVoided(Aggregate.Event):
        payment_status: str

    def void_payment(self) -> None:
        """The authorization was released without capture."""
        to = PAYMENT_LIFECYCLE.next_state(self.payment_status, "void")
        self._payment_voided(to.value)

    @event(PaymentVoided)
    def _payment_voided(self, payment_status: str) -> None:
        self.authorized = Money.zero(self.currency)
        self.payment_status = PaymentStatus(payment_status)

    class RefundInitiated(Aggregate.Event):
        refund_id: str
        amount: dict[str, str]
        reason: str

    def initiate_refund(self, refund_id: str, amount: Money, reason: str) -> bool:
        """Start refunding ``amount`` of what was captured. Idempotent by ``refund_id``.

        Returns ``False`` (and records nothing) for a repeat with the same amount. The
        ids the order gives its own refunds (``cancellation``, ``return/<return id>``)
        are reserved: ``InvalidIdentifierError``.
        """
        check_identifier(refund_id, "refund id")
        check_identifier(reason, "reason")
        if refund_id == CANCELLATION_REFUND_ID or refund_id.startswith(RETURN_REFUND_PREFIX):
            msg = f"refund id {refund_id!r} is reserved for the order's own refunds"
            raise InvalidIdentifierError(msg)
        existing = self.refunds.get(refund_id)
        if existing is not None:
            if existing.amount != amount:
                raise IdempotencyKeyReusedError(f"refund {refund_id} exists with another amount")
            return False
        if not isinstance(amount, Money) or not amount.is_positive():
            raise InvalidInputError("a refund must be a positive amount")
        if amount.currency != self.currency:
            raise CurrencyMismatchError(
                f"refund in {amount.currency} for an order in {self.currency}"
            )
        if self.payment_status not in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED):
            raise IllegalTransitionError("payment", self.payment_status.value, "refund")
        if amount > self.refundable:
            msg = f"refund of {amount} exceeds the {self.refundable} refundable"
            raise RefundExceedsPaymentError(msg)
        self._refund_initiated(refund_id, amount.to_dict(), reason)
        return True

    @event(RefundInitiated)
    def _refund_initiated(self, refund_id: str, amount: dict[str, str], reason: str) -> None:
        self.refunds[refund_id] = Refund(Money.from_dict(amount), reason)

    class RefundCompleted(Aggregate.Event):
        refund_id: str
        payment_status: str

    def complete_refund(self, refund_id: str) -> None:
        """The gateway paid the refund back. Repeating is a no-op."""
        refund = self._refund(refund_id)
        if refund.status == "completed":
            return
        if refund.status != "initiated":
            raise IllegalTransitionError("refund", refund.status, "complete")
        fully = self.refunded + refund.amount == self.captured
        to = PAYMENT_LIFECYCLE.next_state(
            self.payment_status, "refund" if fully else "refund_partially"
        )
        self._refund_completed(refund_id, to.value)

    @event(RefundCompleted)
    def _refund_completed(self, refund_id: str, payment_status: str) -> None:
        refund = self.refunds[refund_id]
        refund.status = "completed"
        self.refunded = self.refunded + refund.amount
        self.payment_status = PaymentStatus(payment_status)

    class RefundFailed(Aggregate.Event):
        refund_id: str
        reason: str

    def fail_refund(self, refund_id: str, reason: str) -> None:
        """The gateway could not pay the refund; the amount becomes refundable again."""
        check_identifier(reason, "reason")
        refund = self._refund(refund_id)
        if refund.status == "failed":
            return
        if refund.status != "initiated":
            raise IllegalTransitionError("refund", refund.status, "fail")
        self._refund_failed(refund_id, reason)

    @event(RefundFailed)
    def _refund_failed(self, refund_id: str, reason: str) -> None:
        self.refunds[refund_id].status = "failed"

    def _refund(self, refund_id: str) -> Refund:
        check_identifier(refund_id, "refund id")
        try:
            return self.refunds[refund_id]
        except KeyError:
            raise InvalidInputError(f"order {self.id} has no refund {refund_id!r}") from None

    # --- cancellation -------------------------------------------------------------------------

    class CancellationRequested(Aggregate.Event):
        reason: str
        requested_by: str
        status: str

    class CancellationApproved(Aggregate.Event):
        approved_by: str

    class CancellationRejected(Aggregate.Event):
        reason: str
        rejected_by: str
        status: str

    class Cancelled(Aggregate.Event):
        reason: str
        fee: dict[str, str]
        refund: dict[str, str]
        status: str

    def cancel(self, policy: CancellationPolicy, reason: str, requested_by: str) -> bool:
        """Cancel at once, or ask for approval, as ``policy`` decides.

        Returns ``True`` when the order is cancelled now and ``False`` when the
        cancellation waits for approval. Refunds and stock release are recorded with
        it (stock: :meth:`skus_holding_stock` tells the service what to release first).
        """
        check_identifier(reason, "reason")
        check_identifier(requested_by, "requested by")
        if self.status is OrderStatus.CANCELLED:
            return True
        decision = self._decide(policy)
        if decision.needs_approval:
            if self.status is OrderStatus.CANCELLATION_REQUESTED:
                return False
            to = ORDER_LIFECYCLE.next_state(self.status, "request_cancellation")
            self._cancellation_requested(reason, requested_by, to.value)
            return False
        self._finish_cancellation(
            ORDER_LIFECYCLE.next_state(self.status, "cancel"), decision, reason
        )
        return True

    def approve_cancellation(self, policy: CancellationPolicy, approved_by: str) -> None:
        """An operator approves a requested cancellation; the order is cancelled."""
        check_identifier(approved_by, "approved by")
        if self.status is OrderStatus.CANCELLED:
            return
        to = ORDER_LIFECYCLE.next_state(self.status, "approve_cancellation")
        decision = self._decide(policy)
        self._cancellation_approved(approved_by)
        self._finish_cancellation(to, decision, "approved")

    def reject_cancellation(self, reason: str, rejected_by: str) -> None:
        """An operator refuses a requested cancellation; the order goes back to processing."""
        check_identifier(reason, "reason")
        check_identifier(rejected_by, "rejected by")
        to = ORDER_LIFECYCLE.next_state(self.status, "reject_cancellation")
        self._cancellation_rejected(reason, rejected_by, to.value)

    def reject(self, reason: str) -> bool:
        """Cancel an order the business cannot fulfil (payment declined, say), whatever the policy.

        Meant for the fulfilment saga undoing its work: allowed while the order is
        pending or confirmed and nothing was captured (an authorization is voided with
        it). Returns ``False``, recording nothing, for an order already cancelled.
        """
        check_identifier(reason, "reason")
        if self.status is OrderStatus.CANCELLED:
            return False
        if not self.captured.is_zero():
            raise IllegalTransitionError("order", f"{self.status.value} and paid", "reject")
        to = ORDER_LIFECYCLE.next_state(self.status, "cancel")
        zero = Money.zero(self.currency)
        self._finish_cancellation(to, CancellationDecision(True, False, zero, zero, reason), reason)
        return True

    def _decide(self, policy: CancellationPolicy) -> CancellationDecision:
        decision = policy.decide(self)
        if not decision.allowed:
            raise CancellationNotAllowedError("order", self.status.value, "cancel")
        for amount in (decision.fee, decision.refund):
            if not isinstance(amount, Money) or amount.currency != self.currency:
                msg = f"the cancellation policy must answer in {self.currency}, not {amount!r}"
                raise CurrencyMismatchError(msg)
        if decision.fee.is_negative():
            msg = f"the cancellation policy answered a negative fee: {decision.fee}"
            raise InvalidInputError(msg)
        if decision.refund.is_negative() or decision.refund > self.refundable:
            msg = f"policy refund {decision.refund} is outside 0..{self.refundable}"
            raise RefundExceedsPaymentError(msg)
        return decision

    def _finish_cancellation(
        self, to: OrderStatus, decision: CancellationDecision, reason: str
    ) -> None:
        self._release_stock("cancelled")
        self._cancelled(reason, decision.fee.to_dict(), decision.refund.to_dict(), to.value)
        if self.payment_status is PaymentStatus.AUTHORIZED:
            self._payment_voided(PAYMENT_LIFECYCLE.next_state(self.payment_status, "void").value)
        if decision.refund.is_positive():
            self._refund_initiated(
                CANCELLATION_REFUND_ID, decision.refund.to_dict(), "cancellation"
            )

    @event(CancellationRequested)
    def _cancellation_requested(self, reason: str, requested_by: str, status: str) -> None:
        self.cancellation_reason = reason
        self._move(status)

    @event(CancellationApproved)
    def _cancellation_approved(self, approved_by: str) -> None:
        pass

    @event(CancellationRejected)
    def _cancellation_rejected(self, reason: str, rejected_by: str, status: str) -> None:
        self.cancellation_reason = None
        self._move(status)

    @event(Cancelled)
    def _cancelled(
        self, reason: str, fee: dict[str, str], refund: dict[str, str], status: str
    ) -> None:
        self.cancellation_reason = self.cancellation_reason or reason
        self.cancellation_fee = Money.from_dict(fee)
        self._move(status)

    # --- returns ------------------------------------------------------------------------------

    class ReturnRequested(Aggregate.Event):
        return_id: str
        lines: dict[str, int]
        reason: str

    def request_return(self, return_id: str, lines: Mapping[str, int], reason: str) -> None:
        """The customer asks to send back shipped units. Idempotent by ``return_id``."""
        check_identifier(return_id, "return id")
        check_identifier(reason, "reason")
        existing = self.returns.get(return_id)
        if existing is not None:
            if existing.lines != dict(lines):
                raise IdempotencyKeyReusedError(f"return {return_id} exists with other lines")
            return
        ORDER_LIFECYCLE.next_state(self.status, "request_return")
        if not lines:
            raise InvalidQuantityError("a return needs at least one unit")
        for sku, units in lines.items():
            line = self._line(sku)
            check_quantity(units)
            if units > line.returnable:
                msg = f"cannot return {units} of {sku}: {line.returnable} returnable"
                raise InvalidQuantityError(msg)
        self._return_requested(return_id, dict(lines), reason)

    @event(ReturnRequested)
    def _return_requested(self, return_id: str, lines: dict[str, int], reason: str) -> None:
        for sku, units in lines.items():
            self.lines[sku].return_pending += units
        self.returns[return_id] = ReturnRequest(dict(lines), reason)

    class ReturnApproved(Aggregate.Event):
        return_id: str

    def approve_return(self, return_id: str) -> None:
        """The merchant accepts the return. Repeating is a no-op."""
        request = self._return(return_id)
        if request.status == "approved":
            return
        if request.status != "requested":
            raise IllegalTransitionError("return", request.status, "approve")
        self._return_approved(return_id)

    @event(ReturnApproved)
    def _return_approved(self, return_id: str) -> None:
        self.returns[return_id].status = "approved"

    class ReturnRejected(Aggregate.Event):
        return_id: str
        reason: str

    def reject_return(self, return_id: str, reason: str) -> None:
        """The merchant refuses the return; its units become returnable again."""
        check_identifier(reason, "reason")
        request = self._return(return_id)
        if request.status == "rejected":
            return
        if request.status != "requested":
            raise IllegalTransitionError("return", request.status, "reject")
        self._return_rejected(return_id, reason)

    @event(ReturnRejected)
    def _return_rejected(self, return_id: str, reason: str) -> None:
        request = self.returns[return_id]
        for sku, units in request.lines.items():
            self.lines[sku].return_pending -= units
        request.status = "rejected"

    class ReturnReceived(Aggregate.Event):
        return_id: str
        refund: dict[str, str]
        status: str

    def receive_return(self, return_id: str) -> Money:
        """The returned units arrived. Returns the value of the returned units.

        The value is the exact share of each line's total; a refund of it (capped at
        what is refundable) is initiated when the payment was captured. Repeating is
        a no-op and returns zero.
        """
        request = self._return(return_id)
        if request.status == "received":
            return Money.zero(self.currency)
        if request.status != "approved":
            raise IllegalTransitionError("return", request.status, "receive")
        value = sum_money(
            (
                self.lines[sku].value_of(units, self.lines[sku].returned)
                for sku, units in request.lines.items()
            ),
            self.currency,
        )
        returned = {
            sku: line.returned + request.lines.get(sku, 0) for sku, line in self.lines.items()
        }
        everything = all(returned[sku] == line.quantity for sku, line in self.lines.items())
        to = ORDER_LIFECYCLE.next_state(
            self.status, "receive_return" if everything else "receive_return_partially"
        )
        refund = min(value, self.refundable) if self.refundable.is_positive() else None
        self._return_received(return_id, value.to_dict(), to.value)
        if refund is not None and refund.is_positive():
            self._refund_initiated(f"{RETURN_REFUND_PREFIX}{return_id}", refund.to_dict(), "return")
        return value

    @event(ReturnReceived)
    def _return_received(self, return_id: str, refund: dict[str, str], status: str) -> None:
        request = self.returns[return_id]
        for sku, units in request.lines.items():
            line = self.lines[sku]
            line.return_pending -= units
            line.returned += units
        request.status = "received"
        if status != self.status:
            self._move(status)

    def _return(self, return_id: str) -> ReturnRequest:
        check_identifier(return_id, "return id")
        try:
            return self.returns[return_id]
        except KeyError:
            raise InvalidInputError(f"order {self.id} has no return {return_id!r}") from None

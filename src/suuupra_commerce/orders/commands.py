"""Commands of the orders service, validated up front."""

from __future__ import annotations

from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field, model_validator

from suuupra_commerce.commands import Command
from suuupra_commerce.money import CurrencyCode, Money
from suuupra_commerce.values import Identifier, Quantity, Sku, derived_id

__all__ = [
    "ApproveCancellation",
    "ApproveReturn",
    "AuthorizePayment",
    "CancelOrder",
    "CapturePayment",
    "CompleteOrder",
    "CompleteRefund",
    "ConfirmOrder",
    "DeliverOrder",
    "FailPayment",
    "FailRefund",
    "HoldOrder",
    "OrderCommand",
    "OrderLineRequest",
    "PlaceOrder",
    "ReceiveReturn",
    "RefundPayment",
    "RejectCancellation",
    "RejectOrder",
    "RejectReturn",
    "ReleaseOrder",
    "RequestReturn",
    "ShipOrder",
    "StartFulfilment",
    "VoidPayment",
    "order_id_for_key",
]

UnitsBySku = Annotated[dict[Sku, Quantity], Field(min_length=1, max_length=100)]


def order_id_for_key(idempotency_key: str) -> UUID:
    """The order id an idempotency key stands for (the same key always finds the same order)."""
    return derived_id("order", idempotency_key)


class OrderLineRequest(Command):
    """A SKU and a quantity; the price comes from the price book, never from the caller.

    A ``Command`` (though only ever part of ``PlaceOrder``) so that building a line from
    bad input raises ``InvalidCommandError`` rather than pydantic's own error.
    """

    sku: Sku
    quantity: Quantity


class PlaceOrder(Command):
    """Place an order, priced server-side; the same ``idempotency_key`` returns the same order.

    >>> PlaceOrder(idempotency_key="k-1", customer_id="c-1", currency="USD",
    ...            lines=[{"sku": "MUG-1", "quantity": 2}]).lines[0].quantity
    2
    """

    fingerprint_exclude: ClassVar[frozenset[str]] = frozenset({"idempotency_key"})

    idempotency_key: Identifier
    customer_id: Identifier
    currency: CurrencyCode
    lines: Annotated[list[OrderLineRequest], Field(min_length=1, max_length=100)]
    discount_code: Identifier | None = None

    @model_validator(mode="after")
    def _unique_skus(self) -> PlaceOrder:
        skus = [line.sku for line in self.lines]
        if len(set(skus)) != len(skus):
            raise ValueError("each SKU may appear on one line only")
        return self


class OrderCommand(Command):
    """A command about one existing order."""

    order_id: UUID


class ConfirmOrder(OrderCommand):
    """Pending -> confirmed; the order's reservations are confirmed (they stop expiring)."""


class StartFulfilment(OrderCommand):
    """Confirmed -> processing."""


class ShipOrder(OrderCommand):
    """Ship some units (``lines``) or everything left (``lines`` omitted). Idempotent by id."""

    shipment_id: Identifier
    lines: UnitsBySku | None = None
    carrier: Identifier | None = None
    tracking_number: Identifier | None = None


class DeliverOrder(OrderCommand):
    """Shipped -> delivered."""


class CompleteOrder(OrderCommand):
    """Delivered -> completed."""


class AuthorizePayment(OrderCommand):
    """The payment gateway authorized the order total under ``reference``."""

    reference: Identifier


class CapturePayment(OrderCommand):
    """The payment gateway captured the authorized amount."""


class FailPayment(OrderCommand):
    """The payment gateway refused to authorize or capture."""

    reason: Identifier


class VoidPayment(OrderCommand):
    """The authorization was released without capture."""


class RefundPayment(OrderCommand):
    """Start refunding part or all of what was captured. Idempotent by ``refund_id``."""

    refund_id: Identifier
    amount: Money
    reason: Identifier = "refund"


class CompleteRefund(OrderCommand):
    """The payment gateway paid a refund back."""

    refund_id: Identifier


class FailRefund(OrderCommand):
    """The payment gateway could not pay a refund."""

    refund_id: Identifier
    reason: Identifier


class CancelOrder(OrderCommand):
    """Cancel at once, or ask for approval, as the cancellation policy decides."""

    reason: Identifier = "customer request"
    requested_by: Identifier = "customer"


class RejectOrder(OrderCommand):
    """Cancel an order that cannot be fulfilled (nothing captured), whatever the policy says."""

    reason: Identifier


class HoldOrder(OrderCommand):
    """A saga's step takes the order: other commands are refused until the saga lets go."""


class ReleaseOrder(OrderCommand):
    """An operator frees an order a saga holds (after resolving that saga by hand)."""

    by: Identifier
    reason: Identifier


class ApproveCancellation(OrderCommand):
    """An operator approves a requested cancellation."""

    approved_by: Identifier


class RejectCancellation(OrderCommand):
    """An operator refuses a requested cancellation."""

    reason: Identifier
    rejected_by: Identifier


class RequestReturn(OrderCommand):
    """The customer asks to send back shipped units, per line."""

    return_id: Identifier
    lines: UnitsBySku
    reason: Identifier = "customer return"


class ApproveReturn(OrderCommand):
    """The merchant accepts a return."""

    return_id: Identifier


class RejectReturn(OrderCommand):
    """The merchant refuses a return."""

    return_id: Identifier
    reason: Identifier


class ReceiveReturn(OrderCommand):
    """Returned units arrived: they are restocked and, if paid, refunded."""

    return_id: Identifier

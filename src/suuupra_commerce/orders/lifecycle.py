"""The order's lifecycles as tables: order status and payment status.

Order status::

    pending -> confirmed -> processing -> (partially_shipped ->) shipped -> delivered -> completed
    pending | confirmed -> cancelled                              (at once, per the policy)
    processing -> cancellation_requested -> cancelled | processing   (needs approval)
    shipped | delivered | completed | partially_returned -> partially_returned | returned

Fulfilment status (unfulfilled, partially_fulfilled, fulfilled, partially_returned,
returned) is not a table: it follows from the shipped and returned quantities of the
lines, see :attr:`Order.fulfilment_status`.
"""

from __future__ import annotations

from enum import StrEnum

from suuupra_commerce.statemachine import StateTable

__all__ = [
    "ORDER_LIFECYCLE",
    "PAYMENT_LIFECYCLE",
    "FulfilmentStatus",
    "OrderStatus",
    "PaymentStatus",
]


class OrderStatus(StrEnum):
    """Where an order is in its lifecycle."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    PROCESSING = "processing"
    CANCELLATION_REQUESTED = "cancellation_requested"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    PARTIALLY_RETURNED = "partially_returned"
    RETURNED = "returned"


class PaymentStatus(StrEnum):
    """Where the order's payment is."""

    PENDING = "pending"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    FAILED = "failed"
    VOIDED = "voided"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class FulfilmentStatus(StrEnum):
    """How much of the order has left, and come back."""

    UNFULFILLED = "unfulfilled"
    PARTIALLY_FULFILLED = "partially_fulfilled"
    FULFILLED = "fulfilled"
    PARTIALLY_RETURNED = "partially_returned"
    RETURNED = "returned"


_O = OrderStatus
_AFTER_SHIPPING = [_O.SHIPPED, _O.DELIVERED, _O.COMPLETED, _O.PARTIALLY_RETURNED]

ORDER_LIFECYCLE = StateTable(
    "order",
    OrderStatus,
    OrderStatus.PENDING,
    [
        ("confirm", [_O.PENDING], _O.CONFIRMED),
        ("start_fulfilment", [_O.CONFIRMED], _O.PROCESSING),
        ("ship_partially", [_O.PROCESSING, _O.PARTIALLY_SHIPPED], _O.PARTIALLY_SHIPPED),
        ("ship", [_O.PROCESSING, _O.PARTIALLY_SHIPPED], _O.SHIPPED),
        ("deliver", [_O.SHIPPED], _O.DELIVERED),
        ("complete", [_O.DELIVERED], _O.COMPLETED),
        ("cancel", [_O.PENDING, _O.CONFIRMED], _O.CANCELLED),
        ("request_cancellation", [_O.PROCESSING], _O.CANCELLATION_REQUESTED),
        ("approve_cancellation", [_O.CANCELLATION_REQUESTED], _O.CANCELLED),
        ("reject_cancellation", [_O.CANCELLATION_REQUESTED], _O.PROCESSING),
        ("request_return", _AFTER_SHIPPING, None),
        ("receive_return_partially", _AFTER_SHIPPING, _O.PARTIALLY_RETURNED),
        ("receive_return", _AFTER_SHIPPING, _O.RETURNED),
    ],
)
"""Every allowed order status change, as one table."""

_P = PaymentStatus

PAYMENT_LIFECYCLE = StateTable(
    "payment",
    PaymentStatus,
    PaymentStatus.PENDING,
    [
        ("authorize", [_P.PENDING, _P.FAILED], _P.AUTHORIZED),
        ("fail", [_P.PENDING, _P.AUTHORIZED], _P.FAILED),
        ("capture", [_P.AUTHORIZED], _P.CAPTURED),
        ("void", [_P.AUTHORIZED], _P.VOIDED),
        ("refund_partially", [_P.CAPTURED, _P.PARTIALLY_REFUNDED], _P.PARTIALLY_REFUNDED),
        ("refund", [_P.CAPTURED, _P.PARTIALLY_REFUNDED], _P.REFUNDED),
    ],
)
"""Every allowed payment status change, as one table."""

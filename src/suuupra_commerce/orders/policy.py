"""Cancellation policies: replaceable objects that decide if, how and at what cost an order cancels.

:class:`StandardCancellationPolicy` is the original service's rule:

* pending or confirmed: cancelled at once, with a full refund of what was captured;
* processing: the customer may ask, an operator must approve, and the refund is the
  captured amount less a 5 % fee (of the order total, rounded once);
* shipped or later: cannot be cancelled, only returned.

A host replaces it by passing any object with a ``decide`` method to ``Orders``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from suuupra_commerce.money import Money
from suuupra_commerce.orders.lifecycle import OrderStatus

if TYPE_CHECKING:
    from suuupra_commerce.orders.domain import Order

__all__ = ["CancellationDecision", "CancellationPolicy", "StandardCancellationPolicy"]


@dataclass(frozen=True, slots=True)
class CancellationDecision:
    """What a policy says about cancelling one order now.

    ``refund`` is what goes back to the customer out of what was captured; ``fee``
    is what the merchant keeps. When nothing was captured both are zero and an
    authorization, if any, is voided instead.
    """

    allowed: bool
    needs_approval: bool
    fee: Money
    refund: Money
    explanation: str


class CancellationPolicy(Protocol):
    """Decides whether, and on what terms, an order may be cancelled."""

    def decide(self, order: Order) -> CancellationDecision: ...


class StandardCancellationPolicy:
    """The original service's policy (see the module docstring).

    >>> StandardCancellationPolicy().fee_percent
    Decimal('5')
    """

    def __init__(self, fee_percent: Decimal = Decimal(5)) -> None:
        if not Decimal(0) <= fee_percent <= Decimal(100):
            msg = "fee_percent must be between 0 and 100"
            raise ValueError(msg)
        self.fee_percent = fee_percent

    def decide(self, order: Order) -> CancellationDecision:
        refundable = order.refundable
        zero = Money.zero(order.currency)
        if order.status in (OrderStatus.PENDING, OrderStatus.CONFIRMED):
            return CancellationDecision(True, False, zero, refundable, "full refund")
        if order.status in (OrderStatus.PROCESSING, OrderStatus.CANCELLATION_REQUESTED):
            fee = min(order.total.percentage(self.fee_percent), refundable)
            if order.captured.is_zero():
                fee = zero
            return CancellationDecision(
                True,
                True,
                fee,
                refundable - fee,
                f"needs approval; refund less a {self.fee_percent}% fee",
            )
        return CancellationDecision(
            False, False, zero, zero, f"an order that is {order.status} can only be returned"
        )

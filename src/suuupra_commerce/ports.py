"""The interfaces a host implements (or takes from the library) to plug in the outside world.

Ports are ``typing.Protocol`` classes: a host passes any object with the right
methods. The library ships simple implementations next to each (``SystemClock``
here, pricing policies in :mod:`suuupra_commerce.pricing`, an in-memory price
book in :mod:`suuupra_commerce.adapters.memory`) and fakes for tests in
:mod:`suuupra_commerce.testing`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from suuupra_commerce.money import Money

__all__ = [
    "AuthorizationRequest",
    "CaptureRequest",
    "Clock",
    "CustomerNotification",
    "DiscountPolicy",
    "Notifier",
    "PaymentGateway",
    "PriceBook",
    "PriceQuote",
    "PricedLine",
    "RefundRequest",
    "ShipmentBooking",
    "ShipmentRequest",
    "ShippingPolicy",
    "ShippingProvider",
    "SystemClock",
    "TaxAssessment",
    "TaxPolicy",
    "VoidRequest",
]


@runtime_checkable
class Clock(Protocol):
    """Tells the time; injected so expiry and timers can be tested without sleeping."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock.

    >>> SystemClock().now().tzinfo is not None
    True
    """

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """The server-side price of one SKU in one currency, with its display name."""

    sku: str
    name: str
    unit_price: Money


class PriceBook(Protocol):
    """Where prices come from: never from the caller."""

    def quote(self, sku: str, currency: str) -> PriceQuote | None:
        """The current price of ``sku`` in ``currency``, or ``None`` if it is not sold."""
        ...


@dataclass(frozen=True, slots=True)
class PricedLine:
    """One line as the pricing policies see it."""

    sku: str
    name: str
    unit_price: Money
    quantity: int

    @property
    def subtotal(self) -> Money:
        """Unit price times quantity (exact)."""
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class TaxAssessment:
    """Tax per line (same order as the lines), and whether prices already include it."""

    per_line: tuple[Money, ...]
    inclusive: bool


class TaxPolicy(Protocol):
    """Computes tax for a set of lines (after their discounts)."""

    def assess(self, lines: Sequence[PricedLine], currency: str) -> TaxAssessment:
        """The tax on each line; amounts are rounded once, per line."""
        ...


class DiscountPolicy(Protocol):
    """Turns a discount code into an amount off the subtotal."""

    def discount(self, code: str, lines: Sequence[PricedLine], subtotal: Money) -> Money | None:
        """The amount off (never more than ``subtotal``), or ``None`` if the code is not valid."""
        ...


class ShippingPolicy(Protocol):
    """Prices delivery of a set of lines."""

    def shipping(self, lines: Sequence[PricedLine], subtotal: Money) -> Money:
        """The shipping charge for these lines."""
        ...


# --- participants of the order sagas ---------------------------------------------------------
#
# Every request carries an ``idempotency_key``: the saga derives it from its own id, the
# step and the attempt, and sends the same key again when it cannot tell whether an
# earlier send took effect (a timeout). An implementation must treat a repeated key as
# the same request and answer as it did the first time, without acting twice.
#
# A participant that answers asynchronously (a webhook, a queue) raises
# ``ReplyPendingError`` and hands the answer to ``Sagas.deliver_reply`` when it comes.


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """Hold ``amount`` on the customer's payment method for an order."""

    idempotency_key: str
    order_id: str
    customer_id: str
    amount: Money


@dataclass(frozen=True, slots=True)
class CaptureRequest:
    """Take the money of an authorization (``authorization_key`` is the key it was made with)."""

    idempotency_key: str
    order_id: str
    authorization_key: str
    amount: Money


@dataclass(frozen=True, slots=True)
class VoidRequest:
    """Release an authorization without taking the money.

    The authorization is named by the key it was requested with, so that one whose
    answer never arrived can still be voided; voiding what does not exist, or was
    voided already, succeeds and does nothing.
    """

    idempotency_key: str
    order_id: str
    authorization_key: str


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """Give ``amount`` of a captured payment back (the capture is named by its key)."""

    idempotency_key: str
    order_id: str
    capture_key: str
    amount: Money


class PaymentGateway(Protocol):
    """Authorizes, captures, voids and refunds payments (a card processor, a wallet ...).

    Methods raise ``PaymentDeclinedError`` when the gateway refuses for good (a saga
    does not retry that), any other exception for a failure worth retrying, and
    ``ReplyPendingError`` when the answer comes later.
    """

    def authorize(self, request: AuthorizationRequest) -> str:
        """Hold the amount; returns the gateway's reference for the authorization."""
        ...

    def capture(self, request: CaptureRequest) -> str:
        """Take the authorized amount; returns the gateway's reference for the capture."""
        ...

    def void(self, request: VoidRequest) -> None:
        """Release the authorization; a no-op when there is none to release."""
        ...

    def refund(self, request: RefundRequest) -> str:
        """Pay ``amount`` back; returns the gateway's reference for the refund."""
        ...


@dataclass(frozen=True, slots=True)
class ShipmentRequest:
    """Book the delivery of an order's units with a carrier."""

    idempotency_key: str
    order_id: str
    customer_id: str
    lines: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class ShipmentBooking:
    """What the carrier booked: its shipment id, its name, and the tracking number."""

    shipment_id: str
    carrier: str
    tracking_number: str


class ShippingProvider(Protocol):
    """Books shipments with a carrier (or a warehouse system)."""

    def create_shipment(self, request: ShipmentRequest) -> ShipmentBooking:
        """Book the shipment; the same key answers with the same booking."""
        ...


@dataclass(frozen=True, slots=True)
class CustomerNotification:
    """A message to a customer about an order (``template`` names what to say)."""

    idempotency_key: str
    customer_id: str
    order_id: str
    template: str
    data: Mapping[str, str]


class Notifier(Protocol):
    """Sends customers e-mails, texts or push messages."""

    def notify(self, notification: CustomerNotification) -> None:
        """Send it once; the same key again sends nothing more."""
        ...

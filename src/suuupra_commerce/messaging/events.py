"""Integration events: the versioned, documented messages other services read.

These are a published contract, kept apart from the aggregates' internal events
(which may change with any refactoring). Each is a frozen pydantic model with a
dotted ``event_type``, a ``schema_version`` and the ``topic`` it goes to; money is
``{"amount": "12.30", "currency": "USD"}`` with the amount as an exact decimal string,
never a float. A change that could break a reader (a field removed, renamed or
retyped) is a new class with the next ``schema_version``; adding an optional field
is not.

>>> event = StockLow(sku="MUG-1", available=2, threshold=5)
>>> decode(envelope_for(event, id="m-1", source="inventory",
...                     occurred_at=datetime(2025, 1, 1, tzinfo=UTC)))
StockLow(sku='MUG-1', available=2, threshold=5)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from suuupra_commerce.errors import InvalidMessageError, MoneyError
from suuupra_commerce.messaging.envelope import Envelope
from suuupra_commerce.money import Money
from suuupra_commerce.values import check_identifier, check_sku

__all__ = [
    "CART_TOPIC",
    "INTEGRATION_EVENTS",
    "INVENTORY_TOPIC",
    "ORDER_TOPIC",
    "CartCheckedOut",
    "IntegrationEvent",
    "MoneyAmount",
    "OrderCancellationRequested",
    "OrderCancelled",
    "OrderCompleted",
    "OrderConfirmed",
    "OrderDelivered",
    "OrderFulfilmentStarted",
    "OrderLine",
    "OrderPaymentAuthorized",
    "OrderPaymentCaptured",
    "OrderPaymentFailed",
    "OrderPlaced",
    "OrderShipped",
    "ReorderNeeded",
    "StockLow",
    "StockReleased",
    "StockReserved",
    "decode",
    "envelope_for",
]

ORDER_TOPIC = "commerce.orders"
INVENTORY_TOPIC = "commerce.inventory"
CART_TOPIC = "commerce.carts"

_AMOUNT = re.compile(r"^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,6})?$")

Id = Annotated[str, AfterValidator(lambda v: check_identifier(v, "identifier"))]
Sku = Annotated[str, AfterValidator(check_sku)]
Units = Annotated[int, Field(ge=0, le=10**9, strict=True)]
Level = Annotated[int, Field(ge=-(10**9), le=10**9, strict=True)]


class MoneyAmount(BaseModel):
    """An exact amount of a currency: the amount is a decimal string, never a float.

    >>> MoneyAmount.of(Money("9.50", "USD")).model_dump()
    {'amount': '9.50', 'currency': 'USD'}
    >>> MoneyAmount(amount="9.505", currency="USD")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for MoneyAmount
    ...
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    amount: str = Field(pattern=_AMOUNT.pattern, max_length=26)
    currency: str = Field(pattern=r"^[A-Z]{3}$")

    @model_validator(mode="after")
    def _exact(self) -> Self:
        try:
            money = Money(Decimal(self.amount), self.currency)
        except MoneyError as error:
            raise ValueError(str(error)) from None
        if format(money.amount, "f") != self.amount:
            msg = f"write {self.amount} as {money.amount:f} (the currency's minor units)"
            raise ValueError(msg)
        return self

    @classmethod
    def of(cls, money: Money) -> MoneyAmount:
        """The integration form of ``money``."""
        return cls.model_validate(money.to_dict())

    def to_money(self) -> Money:
        """Back to ``Money`` (exact)."""
        return Money(Decimal(self.amount), self.currency)


class IntegrationEvent(BaseModel):
    """Base of the integration events: frozen, no unknown fields, JSON-plain.

    Subclasses set ``event_type``, ``schema_version``, ``topic`` and ``key_field`` (the
    field naming the entity the event is about: the message key).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int]
    topic: ClassVar[str]
    key_field: ClassVar[str]

    @property
    def key(self) -> str:
        """The entity this event is about (the message key)."""
        return str(getattr(self, self.key_field))

    def payload(self) -> dict[str, Any]:
        """The event as JSON-plain data."""
        return self.model_dump(mode="json")

    @classmethod
    def from_payload(cls, payload: Any) -> Self:
        """Read a payload back; ``InvalidMessageError`` if it does not fit this schema."""
        try:
            return cls.model_validate(payload)
        except ValidationError as error:
            msg = f"payload does not fit {cls.event_type} v{cls.schema_version}: {error}"
            raise InvalidMessageError(msg) from None


# --- orders ----------------------------------------------------------------------------------


class _OrderEvent(IntegrationEvent):
    topic: ClassVar[str] = ORDER_TOPIC
    key_field: ClassVar[str] = "order_id"
    schema_version: ClassVar[int] = 1

    order_id: Id


class OrderLine(BaseModel):
    """One line of a placed order, at the prices it was placed at."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    name: Id
    quantity: Units
    unit_price: MoneyAmount
    total: MoneyAmount


class OrderPlaced(_OrderEvent):
    """A customer placed an order; its prices are final. ``total`` includes shipping."""

    event_type: ClassVar[str] = "commerce.order.placed"

    customer_id: Id
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    lines: tuple[OrderLine, ...] = Field(min_length=1)
    shipping: MoneyAmount
    total: MoneyAmount
    discount_code: Id | None = None


class OrderConfirmed(_OrderEvent):
    """The order is accepted: its stock is committed and it will be fulfilled."""

    event_type: ClassVar[str] = "commerce.order.confirmed"


class OrderFulfilmentStarted(_OrderEvent):
    """The warehouse started picking the order."""

    event_type: ClassVar[str] = "commerce.order.fulfilment_started"


class OrderShipped(_OrderEvent):
    """Units of the order left in one shipment; ``complete`` once nothing is left to ship."""

    event_type: ClassVar[str] = "commerce.order.shipped"

    shipment_id: Id
    lines: dict[Sku, Units]
    carrier: str = Field(max_length=256)
    tracking_number: str = Field(max_length=256)
    complete: bool


class OrderDelivered(_OrderEvent):
    """The carrier delivered the order."""

    event_type: ClassVar[str] = "commerce.order.delivered"


class OrderCompleted(_OrderEvent):
    """The order is done: delivered and past its return window."""

    event_type: ClassVar[str] = "commerce.order.completed"


class OrderCancellationRequested(_OrderEvent):
    """A cancellation waits for an operator's approval (the order was being fulfilled)."""

    event_type: ClassVar[str] = "commerce.order.cancellation_requested"

    reason: Id


class OrderCancelled(_OrderEvent):
    """The order is cancelled; ``refund`` is what goes back, ``fee`` what is kept."""

    event_type: ClassVar[str] = "commerce.order.cancelled"

    reason: Id
    fee: MoneyAmount
    refund: MoneyAmount


class OrderPaymentAuthorized(_OrderEvent):
    """The payment gateway holds ``amount`` for the order."""

    event_type: ClassVar[str] = "commerce.order.payment_authorized"

    amount: MoneyAmount
    reference: Id


class OrderPaymentCaptured(_OrderEvent):
    """The payment gateway took ``amount``."""

    event_type: ClassVar[str] = "commerce.order.payment_captured"

    amount: MoneyAmount


class OrderPaymentFailed(_OrderEvent):
    """The payment gateway refused to authorize or to capture."""

    event_type: ClassVar[str] = "commerce.order.payment_failed"

    reason: Id


# --- inventory -------------------------------------------------------------------------------


class _StockEvent(IntegrationEvent):
    topic: ClassVar[str] = INVENTORY_TOPIC
    key_field: ClassVar[str] = "sku"
    schema_version: ClassVar[int] = 1

    sku: Sku


class StockReserved(_StockEvent):
    """Units of a SKU are promised to an order line until ``expires_at`` (unless confirmed)."""

    event_type: ClassVar[str] = "commerce.stock.reserved"

    reservation_id: Id
    order_id: Id
    quantity: Units
    expires_at: AwareDatetime


class StockReleased(_StockEvent):
    """A reservation gave its units back (``reason`` is ``expired`` when it ran out of time)."""

    event_type: ClassVar[str] = "commerce.stock.released"

    reservation_id: Id
    quantity: Units
    reason: Id


class StockLow(_StockEvent):
    """What is available of a SKU fell to its low-stock threshold or below."""

    event_type: ClassVar[str] = "commerce.stock.low"

    available: Level
    threshold: Units


class ReorderNeeded(_StockEvent):
    """What is available fell to the reorder point: order ``reorder_quantity`` more."""

    event_type: ClassVar[str] = "commerce.stock.reorder_needed"

    available: Level
    reorder_point: Units
    reorder_quantity: Units


# --- carts -----------------------------------------------------------------------------------


class CartCheckedOut(IntegrationEvent):
    """A cart became the order ``order_id``; ``customer_id`` is ``None`` for a guest's cart."""

    event_type: ClassVar[str] = "commerce.cart.checked_out"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = CART_TOPIC
    key_field: ClassVar[str] = "cart_id"

    cart_id: Id
    order_id: Id
    customer_id: Id | None = None


INTEGRATION_EVENTS: dict[tuple[str, int], type[IntegrationEvent]] = {
    (cls.event_type, cls.schema_version): cls
    for cls in (
        OrderPlaced,
        OrderConfirmed,
        OrderFulfilmentStarted,
        OrderShipped,
        OrderDelivered,
        OrderCompleted,
        OrderCancellationRequested,
        OrderCancelled,
        OrderPaymentAuthorized,
        OrderPaymentCaptured,
        OrderPaymentFailed,
        StockReserved,
        StockReleased,
        StockLow,
        ReorderNeeded,
        CartCheckedOut,
    )
}
"""Every integration event schema, by ``(event_type, schema_version)``."""


def envelope_for(
    event: IntegrationEvent,
    *,
    id: str,
    source: str,
    occurred_at: datetime,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> Envelope:
    """Wrap an integration event in an envelope (the relay does this for domain events)."""
    return Envelope(
        id=id,
        type=event.event_type,
        schema_version=event.schema_version,
        key=event.key,
        source=source,
        payload=event.payload(),
        occurred_at=occurred_at.astimezone(UTC),
        correlation_id=correlation_id,
        causation_id=causation_id,
    )


def decode(
    envelope: Envelope,
    schemas: dict[tuple[str, int], type[IntegrationEvent]] = INTEGRATION_EVENTS,
) -> IntegrationEvent:
    """The integration event an envelope carries; ``InvalidMessageError`` if none fits."""
    cls = schemas.get((envelope.type, envelope.schema_version))
    if cls is None:
        msg = f"no schema for {envelope.type} v{envelope.schema_version}"
        raise InvalidMessageError(msg)
    return cls.from_payload(envelope.payload)

"""Order views: one order in full (from its aggregate) and order lists (from a projection)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from suuupra_commerce.money import Money, sum_money
from suuupra_commerce.orders.domain import Order
from suuupra_commerce.orders.lifecycle import FulfilmentStatus, OrderStatus, PaymentStatus
from suuupra_commerce.projections import Doc, Projection, instant, parse_instant

__all__ = ["OrderLineView", "OrderProjection", "OrderSummary", "OrderView"]


@dataclass(frozen=True, slots=True)
class OrderLineView:
    """One line as placed, with what shipped and came back."""

    sku: str
    name: str
    unit_price: Money
    quantity: int
    subtotal: Money
    discount: Money
    tax: Money
    total: Money
    shipped: int
    returned: int


@dataclass(frozen=True, slots=True)
class OrderView:
    """One order in full."""

    order_id: UUID
    customer_id: str
    status: OrderStatus
    payment_status: PaymentStatus
    fulfilment_status: FulfilmentStatus
    currency: str
    lines: tuple[OrderLineView, ...]
    subtotal: Money
    discount: Money
    tax: Money
    shipping: Money
    total: Money
    tax_inclusive: bool
    authorized: Money
    captured: Money
    refunded: Money
    refund_pending: Money
    cancellation_fee: Money
    idempotency_key: str | None
    placed_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, order: Order) -> OrderView:
        return cls(
            order_id=order.id,
            customer_id=order.customer_id,
            status=order.status,
            payment_status=order.payment_status,
            fulfilment_status=order.fulfilment_status,
            currency=order.currency,
            lines=tuple(
                OrderLineView(
                    sku=line.sku,
                    name=line.name,
                    unit_price=line.unit_price,
                    quantity=line.quantity,
                    subtotal=line.subtotal,
                    discount=line.discount,
                    tax=line.tax,
                    total=line.total,
                    shipped=line.shipped,
                    returned=line.returned,
                )
                for line in order.lines.values()
            ),
            subtotal=order.subtotal,
            discount=order.discount,
            tax=order.tax,
            shipping=order.shipping,
            total=order.total,
            tax_inclusive=order.tax_inclusive,
            authorized=order.authorized,
            captured=order.captured,
            refunded=order.refunded,
            refund_pending=order.refund_pending,
            cancellation_fee=order.cancellation_fee,
            idempotency_key=order.idempotency_key,
            placed_at=order.created_on,
            updated_at=order.modified_on,
            version=order.version,
        )


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """An order as lists show it."""

    order_id: UUID
    customer_id: str
    status: OrderStatus
    payment_status: PaymentStatus
    total: Money
    items: int
    placed_at: datetime
    updated_at: datetime


class OrderProjection(Projection):
    """Order summaries, indexed by customer, status and time placed."""

    name = "orders"
    indexes = ("customer_id", "status", "placed_at")

    def fold(self, doc: Doc | None, event: DomainEventProtocol[UUID]) -> Doc | None:
        timestamp = instant(getattr(event, "timestamp"))  # noqa: B009 - not on the Protocol
        if isinstance(event, Order.Placed):
            totals = [Money.from_dict(line["total"]) for line in event.lines]
            total = sum_money(totals, event.currency) + Money.from_dict(event.shipping)
            return {
                "order_id": str(event.originator_id),
                "customer_id": event.customer_id,
                "status": OrderStatus.PENDING.value,
                "payment_status": PaymentStatus.PENDING.value,
                "total": total.to_dict(),
                "items": sum(int(line["quantity"]) for line in event.lines),
                "placed_at": timestamp,
                "updated_at": timestamp,
            }
        if doc is None:
            return None
        status = getattr(event, "status", None)
        if isinstance(status, str):
            doc["status"] = OrderStatus(status).value
        payment_status = getattr(event, "payment_status", None)
        if isinstance(payment_status, str):
            doc["payment_status"] = PaymentStatus(payment_status).value
        doc["updated_at"] = timestamp
        return doc

    @staticmethod
    def summary(doc: Doc) -> OrderSummary:
        """The :class:`OrderSummary` a document holds."""
        return OrderSummary(
            order_id=UUID(doc["order_id"]),
            customer_id=doc["customer_id"],
            status=OrderStatus(doc["status"]),
            payment_status=PaymentStatus(doc["payment_status"]),
            total=Money.from_dict(doc["total"]),
            items=doc["items"],
            placed_at=parse_instant(doc["placed_at"]),
            updated_at=parse_instant(doc["updated_at"]),
        )

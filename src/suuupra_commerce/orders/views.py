"""Order views: one order in full (from its aggregate) and order lists (from a read model)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from suuupra_commerce.application import ReadModel
from suuupra_commerce.money import Money, sum_money
from suuupra_commerce.orders.domain import Order
from suuupra_commerce.orders.lifecycle import FulfilmentStatus, OrderStatus, PaymentStatus

__all__ = ["OrderLineView", "OrderReadModel", "OrderSummary", "OrderView"]


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


class OrderReadModel(ReadModel):
    """Order summaries, by id, by customer and by status."""

    def __init__(self) -> None:
        super().__init__()
        self._orders: dict[UUID, OrderSummary] = {}
        self._by_customer: dict[str, list[UUID]] = {}

    def apply(self, event: DomainEventProtocol[UUID]) -> None:
        if isinstance(event, Order.Placed):
            currency = event.currency
            totals = [Money.from_dict(line["total"]) for line in event.lines]
            summary = OrderSummary(
                order_id=event.originator_id,
                customer_id=event.customer_id,
                status=OrderStatus.PENDING,
                payment_status=PaymentStatus.PENDING,
                total=sum_money(totals, currency) + Money.from_dict(event.shipping),
                items=sum(int(line["quantity"]) for line in event.lines),
                placed_at=event.timestamp,
                updated_at=event.timestamp,
            )
            self._orders[summary.order_id] = summary
            self._by_customer.setdefault(summary.customer_id, []).append(summary.order_id)
            return
        timestamp: datetime = getattr(event, "timestamp")  # noqa: B009 - not on the Protocol
        old = self._orders[event.originator_id]
        status = getattr(event, "status", None)
        payment_status = getattr(event, "payment_status", None)
        self._orders[old.order_id] = OrderSummary(
            order_id=old.order_id,
            customer_id=old.customer_id,
            status=OrderStatus(status) if isinstance(status, str) else old.status,
            payment_status=(
                PaymentStatus(payment_status)
                if isinstance(payment_status, str)
                else old.payment_status
            ),
            total=old.total,
            items=old.items,
            placed_at=old.placed_at,
            updated_at=timestamp,
        )

    def for_customer(self, customer_id: str) -> list[OrderSummary]:
        """A customer's orders, newest first."""
        ids = self._by_customer.get(customer_id, [])
        return [self._orders[i] for i in reversed(ids)]

    def listing(
        self, status: OrderStatus | None = None, limit: int = 100, offset: int = 0
    ) -> list[OrderSummary]:
        """Orders, newest first, optionally of one status."""
        rows = sorted(self._orders.values(), key=lambda s: s.placed_at, reverse=True)
        if status is not None:
            rows = [r for r in rows if r.status is status]
        return rows[offset : offset + limit]

    def count_by_status(self) -> dict[OrderStatus, int]:
        counts: dict[OrderStatus, int] = {}
        for row in self._orders.values():
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts

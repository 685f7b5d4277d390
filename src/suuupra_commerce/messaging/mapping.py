"""From the aggregates' internal events to the integration events other services read.

A mapping names, per internal event class, a rule that builds the integration event
(or ``None`` to publish nothing for that one occurrence). Internal events with no
rule are not published: :data:`INTERNAL_EVENTS` lists the ones left out on purpose,
and a test checks that every event of every aggregate is in one list or the other.

>>> from suuupra_commerce.orders.domain import Order
>>> Order.Confirmed in DEFAULT_MAPPING
True
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol

from suuupra_commerce.carts.domain import Cart
from suuupra_commerce.inventory.domain import InventoryItem
from suuupra_commerce.messaging.events import (
    CartCheckedOut,
    IntegrationEvent,
    MoneyAmount,
    OrderCancellationRequested,
    OrderCancelled,
    OrderCompleted,
    OrderConfirmed,
    OrderDelivered,
    OrderFulfilmentStarted,
    OrderLine,
    OrderPaymentAuthorized,
    OrderPaymentCaptured,
    OrderPaymentFailed,
    OrderPlaced,
    OrderShipped,
    ReorderNeeded,
    StockLow,
    StockReleased,
    StockReserved,
)
from suuupra_commerce.money import Money, sum_money
from suuupra_commerce.orders.domain import Order

__all__ = [
    "DEFAULT_MAPPING",
    "INTERNAL_EVENTS",
    "EventMapping",
    "MappingContext",
    "Rule",
]


class MappingContext:
    """What a rule may look up besides the event: the first event of its aggregate.

    Some internal events do not repeat what every reader needs (an inventory event
    carries the item's id, not its SKU); the aggregate's creation event has it, and it
    never changes, so it is read once and kept.
    """

    def __init__(self, application: Application[UUID], cache_size: int = 10_000) -> None:
        self._application = application
        self._cache: OrderedDict[UUID, DomainEventProtocol[UUID]] = OrderedDict()
        self._cache_size = cache_size

    def created(self, aggregate_id: UUID) -> Any:
        """The creation event of the aggregate ``aggregate_id``."""
        found = self._cache.get(aggregate_id)
        if found is None:
            stored = self._application.recorder.select_events(aggregate_id, lte=1, limit=1)
            if not stored:
                msg = f"aggregate {aggregate_id} has no creation event"
                raise LookupError(msg)
            found = self._application.mapper.to_domain_event(stored[0])
            self._cache[aggregate_id] = found
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(aggregate_id)
        return found


Rule = Callable[[Any, MappingContext], IntegrationEvent | None]
"""Builds the integration event for one internal event (or ``None`` to publish nothing)."""


class EventMapping(Mapping[type, Rule]):
    """Rules by internal event class; combine mappings with ``|``.

    >>> from suuupra_commerce.carts.domain import Cart
    >>> carts_only = EventMapping({Cart.CheckedOut: DEFAULT_MAPPING[Cart.CheckedOut]})
    >>> len(carts_only | EventMapping({})), Order.Placed in carts_only
    (1, False)
    """

    def __init__(self, rules: Mapping[type, Rule]) -> None:
        self._rules = dict(rules)

    def __getitem__(self, key: type) -> Rule:
        return self._rules[key]

    def __iter__(self) -> Any:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __or__(self, other: Mapping[type, Rule]) -> EventMapping:
        return EventMapping({**self._rules, **other})

    def map(self, event: object, context: MappingContext) -> IntegrationEvent | None:
        """The integration event for ``event``, or ``None`` if it is not published."""
        rule = self._rules.get(type(event))
        return None if rule is None else rule(event, context)


def _money(data: Mapping[str, str]) -> MoneyAmount:
    return MoneyAmount.of(Money.from_dict(data))


# --- orders ----------------------------------------------------------------------------------


def _order_placed(event: Order.Placed, _: MappingContext) -> OrderPlaced:
    lines = tuple(
        OrderLine(
            sku=line["sku"],
            name=line["name"],
            quantity=line["quantity"],
            unit_price=_money(line["unit_price"]),
            total=_money(line["total"]),
        )
        for line in event.lines
    )
    shipping = Money.from_dict(event.shipping)
    total = sum_money((line.total.to_money() for line in lines), event.currency) + shipping
    return OrderPlaced(
        order_id=str(event.originator_id),
        customer_id=event.customer_id,
        currency=event.currency,
        lines=lines,
        shipping=MoneyAmount.of(shipping),
        total=MoneyAmount.of(total),
        discount_code=event.discount_code,
    )


def _order_shipped(event: Order.Shipped, _: MappingContext) -> OrderShipped:
    return OrderShipped(
        order_id=str(event.originator_id),
        shipment_id=event.shipment_id,
        lines=dict(event.lines),
        carrier=event.carrier,
        tracking_number=event.tracking_number,
        complete=event.status == "shipped",
    )


def _order_cancelled(event: Order.Cancelled, _: MappingContext) -> OrderCancelled:
    return OrderCancelled(
        order_id=str(event.originator_id),
        reason=event.reason,
        fee=_money(event.fee),
        refund=_money(event.refund),
    )


def _order_cancellation_requested(
    event: Order.CancellationRequested, _: MappingContext
) -> OrderCancellationRequested:
    return OrderCancellationRequested(order_id=str(event.originator_id), reason=event.reason)


def _payment_authorized(
    event: Order.PaymentAuthorized, _: MappingContext
) -> OrderPaymentAuthorized:
    return OrderPaymentAuthorized(
        order_id=str(event.originator_id), amount=_money(event.amount), reference=event.reference
    )


def _payment_captured(event: Order.PaymentCaptured, _: MappingContext) -> OrderPaymentCaptured:
    return OrderPaymentCaptured(order_id=str(event.originator_id), amount=_money(event.amount))


def _payment_failed(event: Order.PaymentFailed, _: MappingContext) -> OrderPaymentFailed:
    return OrderPaymentFailed(order_id=str(event.originator_id), reason=event.reason)


def _just_the_order(
    cls: type[OrderConfirmed | OrderFulfilmentStarted | OrderDelivered | OrderCompleted],
) -> Rule:
    def rule(event: Any, _: MappingContext) -> IntegrationEvent:
        return cls(order_id=str(event.originator_id))

    return rule


# --- inventory -------------------------------------------------------------------------------


def _sku(event: Any, context: MappingContext) -> str:
    registered = context.created(event.originator_id)
    return str(registered.sku)


def _stock_reserved(event: InventoryItem.Reserved, context: MappingContext) -> StockReserved:
    return StockReserved(
        sku=_sku(event, context),
        reservation_id=str(event.reservation_id),
        order_id=event.order_id,
        quantity=event.quantity,
        expires_at=event.expires_at,
    )


def _stock_released(event: InventoryItem.ReservationReleased, context: MappingContext) -> Any:
    return StockReleased(
        sku=_sku(event, context),
        reservation_id=str(event.reservation_id),
        quantity=sum(event.freed.values()),
        reason=event.reason,
    )


def _stock_expired(event: InventoryItem.ReservationExpired, context: MappingContext) -> Any:
    return StockReleased(
        sku=_sku(event, context),
        reservation_id=str(event.reservation_id),
        quantity=sum(event.freed.values()),
        reason="expired",
    )


def _stock_low(event: InventoryItem.LowStockSignalled, context: MappingContext) -> StockLow:
    return StockLow(sku=_sku(event, context), available=event.available, threshold=event.threshold)


def _reorder_needed(event: InventoryItem.ReorderNeeded, context: MappingContext) -> ReorderNeeded:
    return ReorderNeeded(
        sku=_sku(event, context),
        available=event.available,
        reorder_point=event.reorder_point,
        reorder_quantity=event.reorder_quantity,
    )


# --- carts -----------------------------------------------------------------------------------


def _cart_checked_out(event: Cart.CheckedOut, context: MappingContext) -> CartCheckedOut:
    created = context.created(event.originator_id)
    return CartCheckedOut(
        cart_id=str(event.originator_id),
        order_id=str(event.order_id),
        customer_id=created.customer_id,
    )


DEFAULT_MAPPING = EventMapping(
    {
        Order.Placed: _order_placed,
        Order.Confirmed: _just_the_order(OrderConfirmed),
        Order.FulfilmentStarted: _just_the_order(OrderFulfilmentStarted),
        Order.Shipped: _order_shipped,
        Order.Delivered: _just_the_order(OrderDelivered),
        Order.Completed: _just_the_order(OrderCompleted),
        Order.CancellationRequested: _order_cancellation_requested,
        Order.Cancelled: _order_cancelled,
        Order.PaymentAuthorized: _payment_authorized,
        Order.PaymentCaptured: _payment_captured,
        Order.PaymentFailed: _payment_failed,
        InventoryItem.Reserved: _stock_reserved,
        InventoryItem.ReservationReleased: _stock_released,
        InventoryItem.ReservationExpired: _stock_expired,
        InventoryItem.LowStockSignalled: _stock_low,
        InventoryItem.ReorderNeeded: _reorder_needed,
        Cart.CheckedOut: _cart_checked_out,
    }
)
"""The published events of the inventory, orders and carts services."""


def _events(*classes: Iterable[type]) -> frozenset[type]:
    return frozenset(cls for group in classes for cls in group)


INTERNAL_EVENTS: frozenset[type] = _events(
    (
        # Bookkeeping another service has no use for, or that the published events cover.
        Order.StockReserved,
        Order.StockReleased,
        Order.CancellationApproved,
        Order.CancellationRejected,
        Order.PaymentVoided,
        Order.RefundInitiated,
        Order.RefundCompleted,
        Order.RefundFailed,
        Order.ReturnRequested,
        Order.ReturnApproved,
        Order.ReturnRejected,
        Order.ReturnReceived,
        # A saga's hold on the order: the engine's bookkeeping, not news for other services.
        Order.Held,
        Order.Released,
    ),
    (
        InventoryItem.Registered,
        InventoryItem.LocationAdded,
        InventoryItem.ThresholdsChanged,
        InventoryItem.BackorderPolicyChanged,
        InventoryItem.StockReceived,
        InventoryItem.StockAdjusted,
        InventoryItem.PhysicallyCounted,
        InventoryItem.ReservationConfirmed,
        InventoryItem.ReservationFulfilled,
        InventoryItem.LowStockCleared,
        InventoryItem.ReorderCleared,
    ),
    (
        Cart.Created,
        Cart.ItemAdded,
        Cart.QuantityChanged,
        Cart.ItemRemoved,
        Cart.Cleared,
        Cart.PricesRefreshed,
        Cart.DiscountCodeApplied,
        Cart.DiscountCodeRemoved,
        Cart.LinesMerged,
        Cart.Merged,
        Cart.Expired,
        Cart.Deleted,
    ),
)
"""Internal events left out of :data:`DEFAULT_MAPPING` on purpose (none is published)."""

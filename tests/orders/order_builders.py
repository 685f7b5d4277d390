"""Builders for the order tests: quotes, orders driven into any status, and event journals."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.errors import CommerceError
from suuupra_commerce.money import Money
from suuupra_commerce.orders.domain import Order
from suuupra_commerce.orders.lifecycle import OrderStatus, PaymentStatus
from suuupra_commerce.orders.policy import CancellationDecision
from suuupra_commerce.pricing import Pricing, Quote
from suuupra_commerce.testing import replay, state_of

__all__ = [
    "APPROVAL",
    "DEFAULT_LINES",
    "IMMEDIATE",
    "Journal",
    "assert_refused",
    "names",
    "new_price_book",
    "order_in",
    "payment_in",
    "place",
    "quote",
    "replayed",
    "steps",
    "through_json",
    "usd",
]

DEFAULT_LINES: tuple[tuple[str, int], ...] = (("MUG-1", 2), ("TEE-M", 1))
"""Two lines, 2 x 9.50 + 1 x 19.99 = 38.99 USD, so that one unit is never the whole order."""

EXPIRES = datetime(2030, 1, 1, 12, 15, tzinfo=UTC)


def usd(amount: str) -> Money:
    return Money(amount, "USD")


def new_price_book() -> InMemoryPriceBook:
    """The same prices as the suite's ``price_book`` fixture."""
    book = InMemoryPriceBook()
    book.set_price("MUG-1", "Mug", usd("9.50"))
    book.set_price("TEE-M", "T-shirt, medium", usd("19.99"))
    book.set_price("CAP-1", "Cap", usd("12.00"))
    return book


def quote(
    lines: Sequence[tuple[str, int]] = DEFAULT_LINES, pricing: Pricing | None = None
) -> Quote:
    return (pricing or Pricing(price_book=new_price_book())).quote(list(lines), "USD")


def names(events: Sequence[object]) -> list[str]:
    return [type(e).__name__ for e in events]


@dataclass
class Journal:
    """An order with every event it ever recorded (``collect_events`` drains, so keep them)."""

    order: Order
    events: list[Any] = field(default_factory=list)

    def take(self) -> list[Any]:
        """The events recorded since the last call (also kept in ``events``)."""
        new = list(self.order.collect_events())
        self.events.extend(new)
        return new

    def run(self, *changes: Callable[[Order], object]) -> list[Any]:
        """Apply ``changes`` in turn and return the events they recorded."""
        for change in changes:
            change(self.order)
        return self.take()


def place(
    lines: Sequence[tuple[str, int]] = DEFAULT_LINES,
    *,
    pricing: Pricing | None = None,
    order_id: UUID | None = None,
) -> Journal:
    """A pending order with its stock reserved, its events taken into the journal."""
    placed = quote(lines, pricing)
    order = Order.place(
        order_id=order_id or uuid4(),
        customer_id="cust-1",
        quote=placed,
        fingerprint="fp-1",
        idempotency_key="key-1",
    )
    journal = Journal(order)
    journal.take()
    order.record_stock_reserved(
        [
            {
                "sku": line.sku,
                "reservation_id": uuid4(),
                "quantity": line.quantity,
                "expires_at": EXPIRES,
            }
            for line in placed.lines
        ]
    )
    journal.take()
    return journal


@dataclass(frozen=True)
class _Policy:
    """A cancellation policy that always allows, at once or with approval, refunding everything."""

    needs_approval: bool

    def decide(self, order: Order) -> CancellationDecision:
        return CancellationDecision(
            True, self.needs_approval, Money.zero(order.currency), order.refundable, "test"
        )


IMMEDIATE = _Policy(needs_approval=False)
"""Allows cancelling in any status at once: lets the table alone decide ``cancel``."""

APPROVAL = _Policy(needs_approval=True)
"""Allows cancelling in any status after approval: the table decides ``request_cancellation``."""


def _ship_all(order: Order, shipment_id: str) -> None:
    order.ship(shipment_id, order.plan_shipment(shipment_id, None))


def _return(order: Order, return_id: str, lines: dict[str, int]) -> None:
    order.request_return(return_id, lines, "does not fit")
    order.approve_return(return_id)
    order.receive_return(return_id)


def steps(*changes: Callable[[Order], object]) -> Callable[[Order], None]:
    """One change made of several, applied in turn."""

    def change(order: Order) -> None:
        for each in changes:
            each(order)

    return change


_ORDER_PATHS: dict[OrderStatus, tuple[OrderStatus | None, Callable[[Order], object]]] = {
    OrderStatus.PENDING: (None, lambda o: None),
    OrderStatus.CONFIRMED: (OrderStatus.PENDING, lambda o: o.confirm()),
    OrderStatus.PROCESSING: (OrderStatus.CONFIRMED, lambda o: o.start_fulfilment()),
    OrderStatus.CANCELLATION_REQUESTED: (
        OrderStatus.PROCESSING,
        lambda o: o.cancel(APPROVAL, "changed mind", "customer"),
    ),
    OrderStatus.PARTIALLY_SHIPPED: (
        OrderStatus.PROCESSING,
        lambda o: o.ship("parcel-1", {"MUG-1": 1}),
    ),
    OrderStatus.SHIPPED: (OrderStatus.PROCESSING, lambda o: _ship_all(o, "parcel-1")),
    OrderStatus.DELIVERED: (OrderStatus.SHIPPED, lambda o: o.deliver()),
    OrderStatus.COMPLETED: (OrderStatus.DELIVERED, lambda o: o.complete()),
    OrderStatus.CANCELLED: (
        OrderStatus.PENDING,
        lambda o: o.cancel(IMMEDIATE, "changed mind", "customer"),
    ),
    OrderStatus.PARTIALLY_RETURNED: (
        OrderStatus.SHIPPED,
        lambda o: _return(o, "ret-1", {"MUG-1": 1}),
    ),
    OrderStatus.RETURNED: (
        OrderStatus.SHIPPED,
        lambda o: _return(o, "ret-1", {"MUG-1": 2, "TEE-M": 1}),
    ),
}


def order_in(status: OrderStatus, lines: Sequence[tuple[str, int]] = DEFAULT_LINES) -> Journal:
    """An order (of ``lines``) driven through the aggregate's own commands into ``status``."""
    before, step = _ORDER_PATHS[status]
    journal = place(lines) if before is None else order_in(before, lines)
    journal.run(step)
    assert journal.order.status is status
    return journal


_PAYMENT_PATHS: dict[PaymentStatus, tuple[PaymentStatus | None, Callable[[Order], object]]] = {
    PaymentStatus.PENDING: (None, lambda o: None),
    PaymentStatus.AUTHORIZED: (PaymentStatus.PENDING, lambda o: o.authorize_payment("auth-1")),
    PaymentStatus.CAPTURED: (PaymentStatus.AUTHORIZED, lambda o: o.capture_payment()),
    PaymentStatus.FAILED: (PaymentStatus.PENDING, lambda o: o.fail_payment("card declined")),
    PaymentStatus.VOIDED: (PaymentStatus.AUTHORIZED, lambda o: o.void_payment()),
    PaymentStatus.PARTIALLY_REFUNDED: (
        PaymentStatus.CAPTURED,
        steps(
            lambda o: o.initiate_refund("rf-1", usd("5.00"), "goodwill"),
            lambda o: o.complete_refund("rf-1"),
        ),
    ),
    PaymentStatus.REFUNDED: (
        PaymentStatus.CAPTURED,
        steps(
            lambda o: o.initiate_refund("rf-1", o.captured, "goodwill"),
            lambda o: o.complete_refund("rf-1"),
        ),
    ),
}


def payment_in(status: PaymentStatus) -> Journal:
    """A confirmed order whose payment was driven into ``status``."""
    before, step = _PAYMENT_PATHS[status]
    journal = order_in(OrderStatus.CONFIRMED) if before is None else payment_in(before)
    journal.run(step)
    assert journal.order.payment_status is status
    return journal


def replayed(events: Sequence[Any]) -> Order:
    """The order rebuilt from ``events`` by their replay handlers alone."""
    order = replay(events)
    assert isinstance(order, Order)
    return order


def through_json(events: Sequence[Any]) -> list[Any]:
    """``events`` as they come back from a store: mapped to JSON records and back."""
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    return [mapper.to_domain_event(mapper.to_stored_event(e)) for e in events]


E = TypeVar("E", bound=CommerceError)


def assert_refused(
    order: Order, error: type[E], change: Callable[[], object]
) -> pytest.ExceptionInfo[E]:
    """``change`` raises ``error`` and leaves the order exactly as it was, recording nothing."""
    assert order.pending_events == [], "take the journal's events before asserting a refusal"
    before = copy.deepcopy(state_of(order))
    with pytest.raises(error) as caught:
        change()
    assert order.pending_events == []
    assert state_of(order) == before
    return caught

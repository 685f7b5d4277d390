"""Cart views: the ``CartView`` a query returns, and the read model behind the cart lists."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from suuupra_commerce.application import ReadModel
from suuupra_commerce.carts.domain import Cart, CartStatus
from suuupra_commerce.money import Money
from suuupra_commerce.pricing import Quote, QuotedLine

__all__ = ["CartListModel", "CartSummary", "CartView"]


@dataclass(frozen=True, slots=True)
class CartView:
    """A cart as a query returns it: its lines priced at their snapshots, and exact totals.

    ``quote`` prices the lines at the prices snapshotted on the cart (not today's
    prices) through the host's tax, discount and shipping policies. When the cart's
    discount code is no longer known to the discount policy, the totals leave it out
    (``quote.discount_code`` is then ``None`` while ``discount_code`` still shows it).
    """

    id: UUID
    version: int
    status: CartStatus
    customer_id: str | None
    session_id: str | None
    currency: str
    discount_code: str | None
    created_at: datetime
    touched_at: datetime
    merged_into: UUID | None
    order_id: UUID | None
    quote: Quote

    @property
    def lines(self) -> tuple[QuotedLine, ...]:
        """The priced lines, in the order they were first added."""
        return self.quote.lines

    @property
    def item_count(self) -> int:
        """Units in the cart, over all lines."""
        return sum(line.quantity for line in self.quote.lines)

    @property
    def subtotal(self) -> Money:
        """Sum of the line subtotals."""
        return self.quote.subtotal

    @property
    def discount(self) -> Money:
        """The order discount."""
        return self.quote.discount

    @property
    def tax(self) -> Money:
        """Tax over all lines."""
        return self.quote.tax

    @property
    def shipping(self) -> Money:
        """The shipping charge."""
        return self.quote.shipping

    @property
    def total(self) -> Money:
        """The grand total."""
        return self.quote.total


@dataclass(slots=True)
class CartSummary:
    """What the read model keeps of one cart: owner, status, last touch and the SKUs it holds."""

    cart_id: UUID
    customer_id: str | None
    session_id: str | None
    status: CartStatus
    touched_at: datetime
    skus: set[str] = field(default_factory=set)


class CartListModel(ReadModel):
    """Carts by owner and by last touch, folded from the cart events.

    Answers "the customer's active cart", "carts to expire" and "abandoned carts"
    without loading aggregates; the service loads only the carts it returns.
    """

    def __init__(self) -> None:
        super().__init__()
        self._carts: dict[UUID, CartSummary] = {}
        self._lock = threading.Lock()

    def apply(self, event: DomainEventProtocol[UUID]) -> None:
        """Fold one cart event (events of other aggregates are ignored)."""
        with self._lock:
            self._apply(event)

    def _apply(self, event: DomainEventProtocol[UUID]) -> None:
        if isinstance(event, Cart.Created):
            self._carts[event.originator_id] = CartSummary(
                cart_id=event.originator_id,
                customer_id=event.customer_id,
                session_id=event.session_id,
                status=CartStatus.ACTIVE,
                touched_at=event.at,
            )
            return
        summary = self._carts.get(event.originator_id)
        if summary is None:
            return
        at = getattr(event, "at", None)
        if isinstance(at, datetime):
            summary.touched_at = at
        if isinstance(event, Cart.ItemAdded):
            summary.skus.add(event.sku)
        elif isinstance(event, Cart.ItemRemoved):
            summary.skus.discard(event.sku)
        elif isinstance(event, Cart.Cleared):
            summary.skus.clear()
        elif isinstance(event, Cart.LinesMerged):
            summary.skus.update(line["sku"] for line in event.lines)
        elif isinstance(event, Cart.CheckedOut):
            summary.status = CartStatus.CHECKED_OUT
        elif isinstance(event, Cart.Merged):
            summary.status = CartStatus.MERGED
        elif isinstance(event, Cart.Expired):
            summary.status = CartStatus.EXPIRED
        elif isinstance(event, Cart.Deleted):
            summary.status = CartStatus.DELETED

    def active_cart_id(self, customer_id: str) -> UUID | None:
        """The customer's most recently touched active cart, if any."""
        with self._lock:
            found = [
                s
                for s in self._carts.values()
                if s.customer_id == customer_id and s.status is CartStatus.ACTIVE
            ]
        if not found:
            return None
        return max(found, key=lambda s: s.touched_at).cart_id

    def for_customer(self, customer_id: str) -> list[UUID]:
        """The customer's carts in any status but deleted, most recently touched first."""
        with self._lock:
            found = [
                s
                for s in self._carts.values()
                if s.customer_id == customer_id and s.status is not CartStatus.DELETED
            ]
        return [s.cart_id for s in sorted(found, key=lambda s: s.touched_at, reverse=True)]

    def count_by_status(self) -> dict[CartStatus, int]:
        """How many carts are in each status."""
        counts: dict[CartStatus, int] = {}
        with self._lock:
            for summary in self._carts.values():
                counts[summary.status] = counts.get(summary.status, 0) + 1
        return counts

    def untouched_since(self, cutoff: datetime, *, with_lines: bool = False) -> list[UUID]:
        """Active carts last touched at or before ``cutoff``, oldest first."""
        with self._lock:
            found = [
                s
                for s in self._carts.values()
                if s.status is CartStatus.ACTIVE
                and s.touched_at <= cutoff
                and (bool(s.skus) or not with_lines)
            ]
        return [s.cart_id for s in sorted(found, key=lambda s: s.touched_at)]

    def stale(self, now: datetime, ttl: timedelta) -> list[UUID]:
        """Active carts untouched for at least ``ttl`` at ``now``."""
        return self.untouched_since(now - ttl)

"""Cart views: the ``CartView`` a query returns, and the projection behind the cart lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from suuupra_commerce.carts.domain import Cart, CartStatus
from suuupra_commerce.money import Money
from suuupra_commerce.pricing import Quote, QuotedLine
from suuupra_commerce.projections import Doc, Projection, instant

__all__ = ["CartProjection", "CartView"]


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


class CartProjection(Projection):
    """Carts by owner, status and last touch, with the SKUs they hold.

    Answers "the customer's active cart", "carts to expire" and "abandoned carts"
    without loading aggregates; the service loads only the carts it returns.
    """

    name = "carts"
    indexes = ("customer_id", "status", "touched_at")

    _ENDINGS: ClassVar[dict[type[Any], CartStatus]] = {
        Cart.CheckedOut: CartStatus.CHECKED_OUT,
        Cart.Merged: CartStatus.MERGED,
        Cart.Expired: CartStatus.EXPIRED,
        Cart.Deleted: CartStatus.DELETED,
    }

    def fold(self, doc: Doc | None, event: DomainEventProtocol[UUID]) -> Doc | None:
        if isinstance(event, Cart.Created):
            return {
                "cart_id": str(event.originator_id),
                "customer_id": event.customer_id,
                "session_id": event.session_id,
                "status": CartStatus.ACTIVE.value,
                "touched_at": instant(event.at),
                "skus": [],
            }
        if doc is None:
            return None
        at = getattr(event, "at", None)
        if isinstance(at, datetime):
            doc["touched_at"] = instant(at)
        skus: set[str] = set(doc["skus"])
        if isinstance(event, Cart.ItemAdded):
            skus.add(event.sku)
        elif isinstance(event, Cart.ItemRemoved):
            skus.discard(event.sku)
        elif isinstance(event, Cart.Cleared):
            skus.clear()
        elif isinstance(event, Cart.LinesMerged):
            skus.update(line["sku"] for line in event.lines)
        elif type(event) in self._ENDINGS:
            doc["status"] = self._ENDINGS[type(event)].value
        doc["skus"] = sorted(skus)
        return doc

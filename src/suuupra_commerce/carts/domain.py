"""The cart aggregate: lines priced by the server, snapshotted, merged on login, checked out once.

A cart belongs to a customer or to an anonymous session (exactly one), holds lines
keyed by SKU in one currency, and moves through one lifecycle::

    active --check_out--> checked_out
    active --merge------> merged        (a guest cart, folded into a customer cart)
    active --expire-----> expired       (untouched for its time to live)
    active|expired --delete--> deleted

Only an active cart takes changes; any change to another raises ``CartClosedError``,
and a lifecycle move the table does not allow raises ``IllegalTransitionError``.

Every line keeps a snapshot of the name and unit price it was added at. Adding more
of a SKU already in the cart merges the quantities and keeps the line's snapshot: a
price that has moved since is reported (by :meth:`Cart.refresh_prices` or at
checkout), never silently taken. Time comes in as ``now``; the cart never reads a clock.

Every method that changes state validates and decides first (raising a typed error
and recording nothing when it refuses), then records its event through a private
``@event`` method whose body is the replay handler. Event attributes are JSON-plain
(money as ``Money.to_dict()``), so a cart replayed from storage equals the live one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from suuupra_commerce.aggregate import CommerceAggregate
from suuupra_commerce.errors import (
    BusinessRuleError,
    CartClosedError,
    CartLineNotFoundError,
    CurrencyMismatchError,
    EmptyCartError,
    InvalidAmountError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidQuantityError,
)
from suuupra_commerce.money import Currency, Money
from suuupra_commerce.statemachine import StateTable
from suuupra_commerce.values import (
    check_identifier,
    check_moment,
    check_quantity,
    check_sku,
    derived_id,
)

__all__ = [
    "CART_LIFECYCLE",
    "MAX_LINES",
    "MAX_LINE_QUANTITY",
    "Cart",
    "CartLine",
    "CartStatus",
    "checkout_order_id",
    "merge_carts",
]

MAX_LINE_QUANTITY: Final = 999
"""Most units of one SKU a cart line may hold."""

MAX_LINES: Final = 100
"""Most distinct SKUs one cart may hold."""


class CartStatus(StrEnum):
    """Where a cart is in its lifecycle."""

    ACTIVE = "active"
    CHECKED_OUT = "checked_out"
    MERGED = "merged"
    EXPIRED = "expired"
    DELETED = "deleted"


CART_LIFECYCLE: Final = StateTable(
    "cart",
    CartStatus,
    CartStatus.ACTIVE,
    [
        ("check_out", [CartStatus.ACTIVE], CartStatus.CHECKED_OUT),
        ("merge", [CartStatus.ACTIVE], CartStatus.MERGED),
        ("expire", [CartStatus.ACTIVE], CartStatus.EXPIRED),
        ("delete", [CartStatus.ACTIVE, CartStatus.EXPIRED], CartStatus.DELETED),
    ],
)
"""The cart lifecycle, as one table."""


def checkout_order_id(cart_id: UUID, version: int) -> UUID:
    """The id of the order that checking out ``cart_id`` at ``version`` places.

    Derived, so a retried checkout of the same cart version finds the same order.
    """
    return derived_id("checkout", cart_id, version)


@dataclass(frozen=True, slots=True)
class CartLine:
    """One SKU in a cart: the name and unit price snapshotted when it was added, and a quantity."""

    sku: str
    name: str
    unit_price: Money
    quantity: int

    @property
    def subtotal(self) -> Money:
        """Unit price times quantity (exact)."""
        return self.unit_price * self.quantity

    def to_event(self) -> dict[str, Any]:
        """The line as JSON-plain event data."""
        return {
            "sku": self.sku,
            "name": self.name,
            "unit_price": self.unit_price.to_dict(),
            "quantity": self.quantity,
        }

    @classmethod
    def from_event(cls, data: Mapping[str, Any]) -> CartLine:
        """The inverse of :meth:`to_event`."""
        return cls(
            sku=data["sku"],
            name=data["name"],
            unit_price=Money.from_dict(data["unit_price"]),
            quantity=data["quantity"],
        )


class Cart(CommerceAggregate):
    """A shopping cart: lines keyed by SKU, a currency, an owner, and a lifecycle.

    >>> from datetime import UTC, datetime
    >>> from uuid import uuid4
    >>> now = datetime(2025, 1, 1, tzinfo=UTC)
    >>> cart = Cart.create(cart_id=uuid4(), currency="USD", now=now, session_id="s-1")
    >>> cart.add_item("TEE", "T-shirt", Money("10.00", "USD"), 2, now)
    >>> cart.add_item("TEE", "T-shirt", Money("10.00", "USD"), 1, now)
    >>> cart.lines["TEE"].quantity, str(cart.subtotal)
    (3, '30.00 USD')
    """

    # --- creation ----------------------------------------------------------------------------

    class Created(Aggregate.Created):
        customer_id: str | None
        session_id: str | None
        currency: str
        at: datetime

    @event(Created)
    def __init__(
        self, customer_id: str | None, session_id: str | None, currency: str, at: datetime
    ) -> None:
        self.customer_id = customer_id
        self.session_id = session_id
        self.currency = currency
        self.created_at = at
        self.touched_at = at
        self.status = CartStatus.ACTIVE
        self.lines: dict[str, CartLine] = {}
        self.discount_code: str | None = None
        self.merged_into: UUID | None = None
        self.order_id: UUID | None = None

    @classmethod
    def create(
        cls,
        *,
        cart_id: UUID,
        currency: str,
        now: datetime,
        customer_id: str | None = None,
        session_id: str | None = None,
    ) -> Cart:
        """A new, empty, active cart for a customer or for an anonymous session (exactly one)."""
        if not isinstance(cart_id, UUID):
            raise InvalidIdentifierError("cart id must be a UUID")
        if (customer_id is None) == (session_id is None):
            raise InvalidIdentifierError("a cart needs exactly one of customer_id and session_id")
        if customer_id is not None:
            check_identifier(customer_id, "customer id")
        if session_id is not None:
            check_identifier(session_id, "session id")
        code = Currency.of(currency).code
        return cls._create(
            cls.Created,
            id=cart_id,
            customer_id=customer_id,
            session_id=session_id,
            currency=code,
            at=check_moment(now),
        )

    # --- reading -----------------------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        """Whether the cart still takes changes."""
        return self.status is CartStatus.ACTIVE

    @property
    def owner(self) -> str:
        """Who the cart belongs to: the customer id, or ``session:<session id>``."""
        return self.customer_id if self.customer_id is not None else f"session:{self.session_id}"

    @property
    def item_count(self) -> int:
        """Units in the cart, over all lines."""
        return sum(line.quantity for line in self.lines.values())

    @property
    def subtotal(self) -> Money:
        """The sum of the line subtotals at their snapshotted prices."""
        total = Money.zero(self.currency)
        for line in self.lines.values():
            total = total + line.subtotal
        return total

    def is_stale(self, now: datetime, ttl: timedelta) -> bool:
        """Whether the cart has gone untouched for at least ``ttl`` at ``now``."""
        return check_moment(now) >= self.touched_at + ttl

    def ensure_active(self) -> None:
        """Raise ``CartClosedError`` unless the cart is active."""
        if not self.is_active:
            raise CartClosedError(f"cart {self.id} is {self.status.value}; it takes no changes")

    def _line(self, sku: str) -> CartLine:
        check_sku(sku)
        try:
            return self.lines[sku]
        except KeyError:
            raise CartLineNotFoundError(sku) from None

    # --- lines -------------------------------------------------------------------------------

    class ItemAdded(Aggregate.Event):
        sku: str
        name: str
        unit_price: dict[str, str]
        quantity: int
        at: datetime

    def add_item(
        self, sku: str, name: str, unit_price: Money, quantity: int, now: datetime
    ) -> None:
        """Add ``quantity`` units of ``sku`` at the server's ``unit_price``.

        A SKU already in the cart merges: the quantities add up (to at most
        ``MAX_LINE_QUANTITY``, else ``InvalidQuantityError``) and the line keeps its snapshot.
        """
        self.ensure_active()
        check_sku(sku)
        check_identifier(name, "product name")
        if not isinstance(unit_price, Money) or unit_price.is_negative():
            raise InvalidAmountError("unit price must be a Money amount of zero or more")
        if unit_price.currency != self.currency:
            raise CurrencyMismatchError(
                f"{sku} is priced in {unit_price.currency}, the cart is in {self.currency}"
            )
        check_quantity(quantity, maximum=MAX_LINE_QUANTITY)
        check_moment(now)
        existing = self.lines.get(sku)
        if existing is not None:
            if existing.quantity + quantity > MAX_LINE_QUANTITY:
                raise InvalidQuantityError(
                    f"{sku}: {existing.quantity} + {quantity} is over {MAX_LINE_QUANTITY} per line"
                )
            name, unit_price = existing.name, existing.unit_price
        elif len(self.lines) >= MAX_LINES:
            raise BusinessRuleError(f"a cart holds at most {MAX_LINES} different SKUs")
        self._item_added(sku, name, unit_price.to_dict(), quantity, now)

    @event(ItemAdded)
    def _item_added(
        self, sku: str, name: str, unit_price: dict[str, str], quantity: int, at: datetime
    ) -> None:
        existing = self.lines.get(sku)
        held = existing.quantity if existing is not None else 0
        self.lines[sku] = CartLine(sku, name, Money.from_dict(unit_price), held + quantity)
        self.touched_at = at

    class QuantityChanged(Aggregate.Event):
        sku: str
        quantity: int
        at: datetime

    def change_quantity(self, sku: str, quantity: int, now: datetime) -> None:
        """Set the quantity of a line (0 removes it); the same quantity records nothing."""
        self.ensure_active()
        line = self._line(sku)
        check_quantity(quantity, allow_zero=True, maximum=MAX_LINE_QUANTITY)
        check_moment(now)
        if quantity == 0:
            self._item_removed(sku, now)
        elif quantity != line.quantity:
            self._quantity_changed(sku, quantity, now)

    @event(QuantityChanged)
    def _quantity_changed(self, sku: str, quantity: int, at: datetime) -> None:
        line = self.lines[sku]
        self.lines[sku] = CartLine(line.sku, line.name, line.unit_price, quantity)
        self.touched_at = at

    class ItemRemoved(Aggregate.Event):
        sku: str
        at: datetime

    def remove_item(self, sku: str, now: datetime) -> None:
        """Take a line out of the cart; ``CartLineNotFoundError`` if it is not there."""
        self.ensure_active()
        self._line(sku)
        self._item_removed(sku, check_moment(now))

    @event(ItemRemoved)
    def _item_removed(self, sku: str, at: datetime) -> None:
        del self.lines[sku]
        self.touched_at = at

    class Cleared(Aggregate.Event):
        at: datetime

    def clear(self, now: datetime) -> None:
        """Remove every line (the discount code stays); an empty cart records nothing."""
        self.ensure_active()
        check_moment(now)
        if self.lines:
            self._cleared(now)

    @event(Cleared)
    def _cleared(self, at: datetime) -> None:
        self.lines = {}
        self.touched_at = at

    class PricesRefreshed(Aggregate.Event):
        lines: list[dict[str, Any]]
        at: datetime

    def refresh_prices(
        self, current: Mapping[str, tuple[str, Money]], now: datetime
    ) -> dict[str, tuple[Money, Money]]:
        """Take the server's current ``(name, unit price)`` for the lines whose snapshot differs.

        ``current`` must hold every SKU in the cart. Records one event for the changed
        lines only (none if nothing changed); returns ``{sku: (old price, new price)}``
        for the lines whose price moved.
        """
        self.ensure_active()
        check_moment(now)
        refreshed: list[CartLine] = []
        changes: dict[str, tuple[Money, Money]] = {}
        for sku, line in self.lines.items():
            if sku not in current:
                raise InvalidInputError(f"no current price given for {sku}")
            name, price = current[sku]
            check_identifier(name, "product name")
            if not isinstance(price, Money) or price.is_negative():
                raise InvalidAmountError("unit price must be a Money amount of zero or more")
            if price.currency != self.currency:
                raise CurrencyMismatchError(
                    f"{sku} is priced in {price.currency}, the cart is in {self.currency}"
                )
            if price != line.unit_price or name != line.name:
                refreshed.append(CartLine(sku, name, price, line.quantity))
            if price != line.unit_price:
                changes[sku] = (line.unit_price, price)
        if refreshed:
            self._prices_refreshed([line.to_event() for line in refreshed], now)
        return changes

    @event(PricesRefreshed)
    def _prices_refreshed(self, lines: list[dict[str, Any]], at: datetime) -> None:
        for data in lines:
            line = CartLine.from_event(data)
            self.lines[line.sku] = line
        self.touched_at = at

    # --- discount code -----------------------------------------------------------------------

    class DiscountCodeApplied(Aggregate.Event):
        code: str
        at: datetime

    def apply_discount_code(self, code: str, now: datetime) -> None:
        """Hold ``code`` (already checked against the discount policy); the same code is a no-op.

        One code per cart: applying another replaces it.
        """
        self.ensure_active()
        check_identifier(code, "discount code")
        check_moment(now)
        if code != self.discount_code:
            self._discount_code_applied(code, now)

    @event(DiscountCodeApplied)
    def _discount_code_applied(self, code: str, at: datetime) -> None:
        self.discount_code = code
        self.touched_at = at

    class DiscountCodeRemoved(Aggregate.Event):
        at: datetime

    def remove_discount_code(self, now: datetime) -> None:
        """Drop the discount code; a cart without one records nothing."""
        self.ensure_active()
        check_moment(now)
        if self.discount_code is not None:
            self._discount_code_removed(now)

    @event(DiscountCodeRemoved)
    def _discount_code_removed(self, at: datetime) -> None:
        self.discount_code = None
        self.touched_at = at

    # --- merging -----------------------------------------------------------------------------

    class LinesMerged(Aggregate.Event):
        from_cart_id: UUID
        lines: list[dict[str, Any]]
        discount_code: str | None
        at: datetime

    @event(LinesMerged)
    def _lines_merged(
        self,
        from_cart_id: UUID,
        lines: list[dict[str, Any]],
        discount_code: str | None,
        at: datetime,
    ) -> None:
        for data in lines:
            line = CartLine.from_event(data)
            self.lines[line.sku] = line
        self.discount_code = discount_code
        self.touched_at = at

    class Merged(Aggregate.Event):
        into_cart_id: UUID
        at: datetime

    @event(Merged)
    def _merged(self, into_cart_id: UUID, at: datetime) -> None:
        self.status = CartStatus.MERGED
        self.merged_into = into_cart_id
        self.touched_at = at

    # --- lifecycle ---------------------------------------------------------------------------

    class Expired(Aggregate.Event):
        at: datetime

    def expire(self, now: datetime, ttl: timedelta) -> None:
        """Close a cart untouched for ``ttl``; ``BusinessRuleError`` if it was touched since."""
        CART_LIFECYCLE.next_state(self.status, "expire")
        if not self.is_stale(now, ttl):
            raise BusinessRuleError(
                f"cart {self.id} was touched at {self.touched_at.isoformat()}; "
                f"it expires at {(self.touched_at + ttl).isoformat()}"
            )
        self._expired(now)

    @event(Expired)
    def _expired(self, at: datetime) -> None:
        self.status = CartStatus.EXPIRED
        self.touched_at = at

    class Deleted(Aggregate.Event):
        at: datetime

    def delete(self, now: datetime) -> None:
        """Delete the cart (an active or expired one)."""
        CART_LIFECYCLE.next_state(self.status, "delete")
        self._deleted(check_moment(now))

    @event(Deleted)
    def _deleted(self, at: datetime) -> None:
        self.status = CartStatus.DELETED
        self.touched_at = at

    class CheckedOut(Aggregate.Event):
        order_id: UUID
        at: datetime

    def checkout_order_id(self) -> UUID:
        """The order id a checkout of the cart at its current version places."""
        return checkout_order_id(self.id, self.version)

    def ensure_can_check_out(self) -> None:
        """Raise what :meth:`check_out` would raise for the cart as it stands, and nothing else."""
        CART_LIFECYCLE.next_state(self.status, "check_out")
        if not self.lines:
            raise EmptyCartError(f"cart {self.id} has no lines")

    def check_out(self, order_id: UUID, now: datetime) -> None:
        """Record that the order ``order_id`` was placed from this cart; happens once."""
        self.ensure_can_check_out()
        if not isinstance(order_id, UUID):
            raise InvalidIdentifierError("order id must be a UUID")
        self._checked_out(order_id, check_moment(now))

    @event(CheckedOut)
    def _checked_out(self, order_id: UUID, at: datetime) -> None:
        self.status = CartStatus.CHECKED_OUT
        self.order_id = order_id
        self.touched_at = at


def merge_carts(guest: Cart, customer: Cart, now: datetime) -> None:
    """Fold an anonymous ``guest`` cart into a ``customer`` cart, as on login.

    The customer cart gains the guest's lines: a SKU in both keeps the customer's
    snapshot with the quantities summed (capped at ``MAX_LINE_QUANTITY``); a SKU only
    in the guest cart keeps the guest's snapshot. The customer cart takes the guest's
    discount code if it has none. The guest cart becomes ``merged``. Checks everything
    before recording anything on either cart; save both together.
    """
    if guest.id == customer.id:
        raise BusinessRuleError("a cart cannot be merged into itself")
    guest.ensure_active()
    customer.ensure_active()
    CART_LIFECYCLE.next_state(guest.status, "merge")
    if guest.session_id is None:
        raise BusinessRuleError(f"cart {guest.id} belongs to a customer, not a guest session")
    if customer.customer_id is None:
        raise BusinessRuleError(f"cart {customer.id} belongs to a guest session, not a customer")
    if guest.currency != customer.currency:
        raise CurrencyMismatchError(
            f"cannot merge a {guest.currency} cart into a {customer.currency} cart"
        )
    check_moment(now)
    merged: list[CartLine] = []
    new_skus = 0
    for sku, line in guest.lines.items():
        held = customer.lines.get(sku)
        if held is None:
            merged.append(line)
            new_skus += 1
        else:
            quantity = min(held.quantity + line.quantity, MAX_LINE_QUANTITY)
            merged.append(CartLine(sku, held.name, held.unit_price, quantity))
    if len(customer.lines) + new_skus > MAX_LINES:
        raise BusinessRuleError(f"the merged cart would hold more than {MAX_LINES} SKUs")
    code = customer.discount_code if customer.discount_code is not None else guest.discount_code
    customer._lines_merged(guest.id, [line.to_event() for line in merged], code, now)
    guest._merged(customer.id, now)

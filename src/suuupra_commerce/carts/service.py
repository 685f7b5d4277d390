"""The carts application service: cart commands, checkout into an order, expiry and cart queries.

Each command loads one cart (two for a merge), decides, and saves once; a lost
optimistic-concurrency race is retried from a fresh load, so concurrent writers to
one cart never lose an update. Prices come from the host's price book, never from
the caller. Queries that list carts read a read model folded from the cart events.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol, TypeVar, Unpack
from uuid import UUID, uuid4

from eventsourcing.persistence import RecordConflictError

from suuupra_commerce.application import (
    CommerceApplication,
    ServiceOptions,
)
from suuupra_commerce.carts.commands import (
    AddItem,
    ApplyDiscountCode,
    ChangeQuantity,
    CheckoutCart,
    ClearCart,
    CreateCart,
    DeleteCart,
    MergeCarts,
    RefreshPrices,
    RemoveDiscountCode,
    RemoveItem,
)
from suuupra_commerce.carts.domain import (
    Cart,
    CartLine,
    CartStatus,
    checkout_order_id,
    merge_carts,
)
from suuupra_commerce.carts.views import CartProjection, CartView
from suuupra_commerce.errors import (
    CartNotFoundError,
    ConcurrencyConflictError,
    InvalidInputError,
    PriceChangedError,
    UnknownDiscountCodeError,
)
from suuupra_commerce.money import Money
from suuupra_commerce.ports import PricedLine, PriceQuote
from suuupra_commerce.pricing import Pricing, Quote
from suuupra_commerce.projections import ViewQuery, instant
from suuupra_commerce.tracing import traced_service
from suuupra_commerce.values import check_identifier

__all__ = ["Carts", "OrderPlacement", "SnapshotPriceBook"]

T = TypeVar("T")


class OrderPlacement(Protocol):
    """What checkout needs of the orders service (``suuupra_commerce.orders.Orders`` has it).

    ``place_quote`` must be idempotent by ``order_id``: the same id with the same
    fingerprint returns the same order id; with another fingerprint it raises
    ``IdempotencyKeyReusedError``. It reserves stock or raises (having written nothing).
    """

    def place_quote(
        self, *, order_id: UUID, customer_id: str, quote: Quote, fingerprint: str
    ) -> UUID:
        """Place the order for ``quote`` under ``order_id``; return the order id."""
        ...


class SnapshotPriceBook:
    """A price book that answers with a cart's snapshotted line prices.

    Used to total a cart at the prices it holds, through the host's tax, discount
    and shipping policies, without consulting today's prices.
    """

    def __init__(self, lines: Mapping[str, CartLine]) -> None:
        self._lines = dict(lines)

    def quote(self, sku: str, currency: str) -> PriceQuote | None:
        """The snapshot of ``sku`` if the cart holds it in ``currency``."""
        line = self._lines.get(sku)
        if line is None or line.unit_price.currency != currency:
            return None
        return PriceQuote(line.sku, line.name, line.unit_price)


def _positive(value: timedelta, what: str) -> timedelta:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise InvalidInputError(f"{what} must be a positive timedelta")
    return value


@traced_service
class Carts(CommerceApplication):
    """Shopping carts: create, change, merge on login, expire, and check out into an order.

    >>> from suuupra_commerce.adapters.memory import InMemoryPriceBook
    >>> book = InMemoryPriceBook()
    >>> book.set_price("TEE", "T-shirt", Money("10.00", "USD"))
    >>> class NoOrders:
    ...     def place_quote(self, **kwargs): raise NotImplementedError
    >>> carts = Carts({"PERSISTENCE_MODULE": "eventsourcing.popo"},
    ...               orders=NoOrders(), pricing=Pricing(book))
    >>> cart_id = carts.create(CreateCart(customer_id="c-1", currency="USD"))
    >>> carts.add_item(AddItem(cart_id=cart_id, sku="TEE", quantity=2))
    >>> str(carts.get(cart_id).total)
    '20.00 USD'
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        orders: OrderPlacement,
        pricing: Pricing,
        ttl: timedelta = timedelta(days=7),
        abandoned_after: timedelta = timedelta(hours=1),
        **options: Unpack[ServiceOptions],
    ) -> None:
        super().__init__(env, **options)
        self.orders = orders
        self.pricing = pricing
        self.ttl = _positive(ttl, "ttl")
        self.abandoned_after = _positive(abandoned_after, "abandoned_after")
        self.register_projection(CartProjection())

    # --- helpers -----------------------------------------------------------------------------

    def _cart(self, cart_id: UUID) -> Cart:
        return self._load(Cart, cart_id, CartNotFoundError(cart_id))

    def _change(self, cart_id: UUID, decide: Callable[[Cart, datetime], T]) -> T:
        """Load the cart, decide, save once; retried from a fresh load on a conflict."""

        def attempt() -> T:
            cart = self._cart(cart_id)
            result = decide(cart, self.clock.now())
            if cart.pending_events:
                self.save(cart)
            return result

        return self._run(attempt, writes=[cart_id])

    def totals(self, cart: Cart) -> Quote:
        """The cart's totals at its snapshotted prices, through the host's pricing policies.

        A discount code the policy no longer knows is left out of the totals.
        """
        pricing = dataclasses.replace(self.pricing, price_book=SnapshotPriceBook(cart.lines))
        lines = [(sku, line.quantity) for sku, line in cart.lines.items()]
        try:
            return pricing.quote(lines, cart.currency, discount_code=cart.discount_code)
        except UnknownDiscountCodeError:
            return pricing.quote(lines, cart.currency)

    def _view(self, cart: Cart) -> CartView:
        return CartView(
            id=cart.id,
            version=cart.version,
            status=cart.status,
            customer_id=cart.customer_id,
            session_id=cart.session_id,
            currency=cart.currency,
            discount_code=cart.discount_code,
            created_at=cart.created_at,
            touched_at=cart.touched_at,
            merged_into=cart.merged_into,
            order_id=cart.order_id,
            quote=self.totals(cart),
        )

    # --- commands ----------------------------------------------------------------------------

    def create(self, cmd: CreateCart) -> UUID:
        """Open a new, empty cart; returns its id."""
        cart = Cart.create(
            cart_id=uuid4(),
            currency=cmd.currency,
            now=self.clock.now(),
            customer_id=cmd.customer_id,
            session_id=cmd.session_id,
        )
        self._run(lambda: self.save(cart))
        return cart.id

    def add_item(self, cmd: AddItem) -> None:
        """Add units of a SKU at the price book's current price (same SKU merges)."""

        def decide(cart: Cart, now: datetime) -> None:
            price = self.pricing.price_of(cmd.sku, cart.currency)
            cart.add_item(cmd.sku, price.name, price.unit_price, cmd.quantity, now)

        self._change(cmd.cart_id, decide)

    def change_quantity(self, cmd: ChangeQuantity) -> None:
        """Set a line's quantity; 0 removes the line."""
        self._change(
            cmd.cart_id, lambda cart, now: cart.change_quantity(cmd.sku, cmd.quantity, now)
        )

    def remove_item(self, cmd: RemoveItem) -> None:
        """Take a line out of the cart."""
        self._change(cmd.cart_id, lambda cart, now: cart.remove_item(cmd.sku, now))

    def clear(self, cmd: ClearCart) -> None:
        """Remove every line."""
        self._change(cmd.cart_id, lambda cart, now: cart.clear(now))

    def delete(self, cmd: DeleteCart) -> None:
        """Delete the cart; it reads as not found from then on."""
        self._change(cmd.cart_id, lambda cart, now: cart.delete(now))

    def apply_discount_code(self, cmd: ApplyDiscountCode) -> None:
        """Hold a discount code the discount policy knows; ``UnknownDiscountCodeError`` if not."""

        def decide(cart: Cart, now: datetime) -> None:
            cart.ensure_active()
            lines = [
                PricedLine(line.sku, line.name, line.unit_price, line.quantity)
                for line in cart.lines.values()
            ]
            if self.pricing.discounts.discount(cmd.code, lines, cart.subtotal) is None:
                raise UnknownDiscountCodeError(cmd.code)
            cart.apply_discount_code(cmd.code, now)

        self._change(cmd.cart_id, decide)

    def remove_discount_code(self, cmd: RemoveDiscountCode) -> None:
        """Drop the cart's discount code."""
        self._change(cmd.cart_id, lambda cart, now: cart.remove_discount_code(now))

    def refresh_prices(self, cmd: RefreshPrices) -> dict[str, tuple[Money, Money]]:
        """Take the price book's current prices; returns ``{sku: (old, new)}`` for moved prices."""

        def decide(cart: Cart, now: datetime) -> dict[str, tuple[Money, Money]]:
            current: dict[str, tuple[str, Money]] = {}
            for sku in cart.lines:
                price = self.pricing.price_of(sku, cart.currency)
                current[sku] = (price.name, price.unit_price)
            return cart.refresh_prices(current, now)

        return self._change(cmd.cart_id, decide)

    def merge(self, cmd: MergeCarts) -> None:
        """Fold a guest cart into a customer cart; both are saved together, atomically."""

        def attempt() -> None:
            guest = self._cart(cmd.guest_cart_id)
            customer = self._cart(cmd.customer_cart_id)
            merge_carts(guest, customer, self.clock.now())
            self.save(guest, customer)

        self._run(attempt, writes=[cmd.guest_cart_id, cmd.customer_cart_id])

    def checkout(self, cmd: CheckoutCart) -> UUID:
        """Turn the cart into an order, exactly once per cart version; returns the order id.

        Re-quotes the lines at today's prices (with the cart's discount code) and raises
        ``PriceChangedError`` -- writing nothing -- if any unit price moved since it was
        snapshotted. The order id is derived from the cart id and version, and the
        orders service places it idempotently, so a checkout retried after a crash
        between placing the order and recording the checkout finishes with the same
        order. A checked-out cart answers with its order id again.
        """
        return self._run(lambda: self._checkout(cmd), writes=[cmd.cart_id])

    def _checkout(self, cmd: CheckoutCart) -> UUID:
        cart = self._cart(cmd.cart_id)
        if cart.status is CartStatus.CHECKED_OUT and cart.order_id is not None:
            expected = cmd.expected_version
            if expected is not None and checkout_order_id(cart.id, expected) != cart.order_id:
                msg = f"cart {cart.id} was checked out at another version than {expected}"
                raise ConcurrencyConflictError(msg)
            return cart.order_id
        if cmd.expected_version is not None and cmd.expected_version != cart.version:
            msg = f"cart {cart.id} is at version {cart.version}, not {cmd.expected_version}"
            raise ConcurrencyConflictError(msg)
        cart.ensure_can_check_out()
        quote = self.pricing.quote(
            [(sku, line.quantity) for sku, line in cart.lines.items()],
            cart.currency,
            discount_code=cart.discount_code,
        )
        changes = {
            line.sku: (cart.lines[line.sku].unit_price, line.unit_price)
            for line in quote.lines
            if line.unit_price != cart.lines[line.sku].unit_price
        }
        if changes:
            raise PriceChangedError(changes)
        order_id = self.orders.place_quote(
            order_id=cart.checkout_order_id(),
            customer_id=cart.owner,
            quote=quote,
            fingerprint=_fingerprint(cart),
        )
        cart.check_out(order_id, self.clock.now())
        try:
            self.save(cart)
        except RecordConflictError:
            # The order is placed; only a concurrent checkout of this same version may win.
            current = self._cart(cart.id)
            if current.order_id == order_id:
                return order_id
            msg = (
                f"cart {cart.id} changed while order {order_id} was being placed from "
                f"version {cart.version - 1}; check the cart and check out again"
            )
            raise ConcurrencyConflictError(msg) from None
        return order_id

    def expire_stale(self, now: datetime | None = None) -> int:
        """Expire every active cart untouched for ``ttl``; returns how many this call expired.

        Safe to run concurrently and repeatedly: each cart is re-checked on a fresh
        load, and a cart expired (or touched) by someone else is skipped.
        """
        at = now if now is not None else self.clock.now()
        expired = 0
        for cart_id in self._untouched_since(at - self.ttl, with_lines=False, fresh=True):
            if self._run(functools.partial(self._expire_one, cart_id, at), writes=[cart_id]):
                expired += 1
        return expired

    def _expire_one(self, cart_id: UUID, now: datetime) -> bool:
        cart = self._cart(cart_id)
        if not cart.is_active or not cart.is_stale(now, self.ttl):
            return False
        cart.expire(now, self.ttl)
        self.save(cart)
        return True

    # --- queries -----------------------------------------------------------------------------

    def get(self, cart_id: UUID) -> CartView:
        """The cart with its lines and totals (at its snapshotted prices)."""
        if not isinstance(cart_id, UUID):
            raise CartNotFoundError(cart_id)
        cart = self._cart(cart_id)
        if cart.status is CartStatus.DELETED:
            raise CartNotFoundError(cart_id)
        return self._view(cart)

    def active_cart(self, customer_id: str) -> CartView | None:
        """The customer's most recently touched active cart, or ``None``."""
        check_identifier(customer_id, "customer id")
        query = ViewQuery(
            equal={"customer_id": customer_id, "status": CartStatus.ACTIVE.value},
            order_by="touched_at",
            descending=True,
            limit=1,
        )
        found = self._find(CartProjection.name, query)
        return None if not found else self.get(UUID(found[0]["cart_id"]))

    def for_customer(self, customer_id: str) -> list[CartView]:
        """The customer's carts (deleted ones left out), most recently touched first."""
        check_identifier(customer_id, "customer id")
        query = ViewQuery(
            equal={"customer_id": customer_id}, order_by="touched_at", descending=True
        )
        return [
            self.get(UUID(doc["cart_id"]))
            for doc in self._find(CartProjection.name, query)
            if doc["status"] != CartStatus.DELETED.value
        ]

    def count_by_status(self) -> dict[CartStatus, int]:
        """How many carts are in each status (from the read model)."""
        tallies = self._query(lambda: self.views.tally(CartProjection.name, ("status",)))
        return {CartStatus(t.group[0]): t.count for t in tallies if t.group[0] is not None}

    def abandoned(self, now: datetime | None = None) -> list[CartView]:
        """Active carts with lines, untouched for ``abandoned_after``; oldest first."""
        at = now if now is not None else self.clock.now()
        cutoff = at - self.abandoned_after
        return [self.get(cart_id) for cart_id in self._untouched_since(cutoff, with_lines=True)]

    def _untouched_since(
        self, cutoff: datetime, *, with_lines: bool, fresh: bool = False
    ) -> list[UUID]:
        """Active carts last touched at or before ``cutoff``, oldest first."""
        query = ViewQuery(
            equal={"status": CartStatus.ACTIVE.value},
            at_most={"touched_at": instant(cutoff)},
            order_by="touched_at",
        )
        docs = self._find(CartProjection.name, query, fresh=fresh)
        return [UUID(d["cart_id"]) for d in docs if d["skus"] or not with_lines]


def _fingerprint(cart: Cart) -> str:
    """The checkout's fingerprint: SHA-256 of the cart id and the version checked out."""
    return hashlib.sha256(f"checkout:{cart.id}:{cart.version}".encode("ascii")).hexdigest()

"""The interfaces a host implements (or takes from the library) to plug in the outside world.

Ports are ``typing.Protocol`` classes: a host passes any object with the right
methods. The library ships simple implementations next to each (``SystemClock``
here, pricing policies in :mod:`suuupra_commerce.pricing`, an in-memory price
book in :mod:`suuupra_commerce.adapters.memory`) and fakes for tests in
:mod:`suuupra_commerce.testing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from suuupra_commerce.money import Money

__all__ = [
    "Clock",
    "DiscountPolicy",
    "PriceBook",
    "PriceQuote",
    "PricedLine",
    "ShippingPolicy",
    "SystemClock",
    "TaxAssessment",
    "TaxPolicy",
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

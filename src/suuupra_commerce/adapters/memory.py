"""In-memory adapters: ports held in process memory, for tests, demos and single-process hosts."""

from __future__ import annotations

import threading

from suuupra_commerce.errors import InvalidAmountError
from suuupra_commerce.money import Money
from suuupra_commerce.ports import PriceQuote
from suuupra_commerce.values import check_identifier, check_sku

__all__ = ["InMemoryPriceBook"]


class InMemoryPriceBook:
    """A :class:`~suuupra_commerce.ports.PriceBook` held in a dict; safe to share between threads.

    One price per SKU and currency: ``set_price`` in EUR does not touch the USD price.

    >>> book = InMemoryPriceBook()
    >>> book.set_price("TEE", "T-shirt", Money("12.50", "USD"))
    >>> book.quote("TEE", "USD")
    PriceQuote(sku='TEE', name='T-shirt', unit_price=Money('12.50', 'USD'))
    >>> book.quote("TEE", "EUR") is None
    True
    """

    def __init__(self) -> None:
        self._prices: dict[tuple[str, str], PriceQuote] = {}
        self._lock = threading.Lock()

    def set_price(self, sku: str, name: str, unit_price: Money) -> None:
        """Sell ``sku`` as ``name`` at ``unit_price`` (in that price's currency) from now on."""
        check_sku(sku)
        check_identifier(name, "product name")
        if not isinstance(unit_price, Money):
            raise InvalidAmountError(f"a price must be Money, not {type(unit_price).__name__}")
        if unit_price.is_negative():
            raise InvalidAmountError(f"a price must not be negative: {unit_price}")
        with self._lock:
            self._prices[(sku, unit_price.currency)] = PriceQuote(sku, name, unit_price)

    def remove(self, sku: str) -> None:
        """Stop selling ``sku`` in every currency (a no-op if it is not sold)."""
        with self._lock:
            for key in [key for key in self._prices if key[0] == sku]:
                del self._prices[key]

    def quote(self, sku: str, currency: str) -> PriceQuote | None:
        """The current price of ``sku`` in ``currency``, or ``None``."""
        with self._lock:
            return self._prices.get((sku, currency))

"""Hypothesis strategies for host tests: valid and hostile identifiers, quantities, money, commands.

Needs ``hypothesis`` (``pip install suuupra-commerce[testing]``)::

    from hypothesis import given
    from suuupra_commerce.testing import strategies as cst

    @given(cst.money("USD"))
    def test_my_fee_rule_never_exceeds_the_total(total): ...

Valid strategies only draw what the library accepts; ``invalid_*`` and ``hostile_text``
draw what it must refuse with a typed error (a subclass of ``InvalidInputError``).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from suuupra_commerce.commands import Command
from suuupra_commerce.money import MAX_AMOUNT, Currency, Money
from suuupra_commerce.orders.commands import OrderLineRequest, PlaceOrder
from suuupra_commerce.values import MAX_ID_BYTES, MAX_QUANTITY, MAX_SKU_LENGTH

__all__ = [
    "CURRENCIES",
    "command_payloads",
    "currencies",
    "hostile_text",
    "identifiers",
    "invalid_amounts",
    "invalid_quantities",
    "money",
    "place_order_commands",
    "quantities",
    "skus",
]

CURRENCIES = ("USD", "EUR", "GBP", "JPY", "KWD", "INR", "CHF")
"""Currencies the strategies draw from: 0, 2 and 3 minor-unit digits among them."""

_SKU_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_SKU_REST = _SKU_FIRST + "._-/"


def currencies() -> st.SearchStrategy[str]:
    """ISO 4217 codes the library knows."""
    return st.sampled_from(CURRENCIES)


def money(
    currency: str | None = None, min_value: int = 0, max_value: int = 10**9
) -> st.SearchStrategy[Money]:
    """Exact amounts, drawn in minor units between ``min_value`` and ``max_value``.

    >>> from hypothesis import find
    >>> find(money("JPY", min_value=5), lambda m: True)
    Money('5', 'JPY')
    """
    codes = st.just(currency) if currency is not None else currencies()
    return st.builds(
        Money.from_minor_units, st.integers(min_value=min_value, max_value=max_value), codes
    )


def invalid_amounts() -> st.SearchStrategy[Any]:
    """Amounts ``Money(amount, "USD")`` must refuse: NaN, infinities, floats, excess
    precision, absurd magnitudes, text that is not a number, bools."""
    too_precise = st.integers(1, 9).map(lambda n: f"0.{'0' * 2}{n}")  # three decimals
    return st.one_of(
        st.sampled_from(["NaN", "sNaN", "-NaN", "Infinity", "-Infinity", "1e999999", ""]),
        st.floats(allow_nan=True, allow_infinity=True),
        too_precise,
        st.integers(min_value=int(MAX_AMOUNT) + 1, max_value=10**30).map(str),
        st.text(alphabet="abc$,€ ", min_size=1, max_size=8),
        st.booleans(),
        st.none(),
    )


def skus() -> st.SearchStrategy[str]:
    """SKUs the library accepts: ASCII letters, digits and ``. _ - /``, a letter or digit first."""
    return st.builds(
        lambda first, rest: first + rest,
        st.sampled_from(_SKU_FIRST),
        st.text(alphabet=_SKU_REST, max_size=MAX_SKU_LENGTH - 1),
    )


def identifiers(max_size: int = 64) -> st.SearchStrategy[str]:
    """Identifiers the library accepts: printable, trimmed, at most ``MAX_ID_BYTES`` bytes."""
    text = st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Co", "Cn")),
        min_size=1,
        max_size=max_size,
    )
    return text.filter(
        lambda s: s == s.strip() and s.isprintable() and len(s.encode("utf-8")) <= MAX_ID_BYTES
    )


def quantities(max_value: int = MAX_QUANTITY) -> st.SearchStrategy[int]:
    """Unit counts the library accepts: whole numbers from 1."""
    return st.integers(min_value=1, max_value=max_value)


def invalid_quantities() -> st.SearchStrategy[Any]:
    """Quantities the library must refuse: zero, negative, absurd, fractional, not numbers."""
    return st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=MAX_QUANTITY + 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.text(max_size=5),
        st.none(),
    )


def hostile_text() -> st.SearchStrategy[str]:
    """Text an attacker sends: NUL bytes, oversized, look-alikes, injection, path tricks."""
    return st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            [
                "",
                " ",
                "\x00",
                "MUG\x00-1",
                "x" * 257,
                "é" * 200,
                "\uff2d\uff35\uff27-\uff11",  # fullwidth look-alikes of MUG-1
                "MUG-1'; DROP TABLE inventory_events; --",
                "../../etc/passwd",
                "NaN",
                "Infinity",
                "-0",
                "1e999999",
                "9" * 5000,
                "usd",
                "0.001",
            ]
        ),
    )


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([0, -1, 2**63, -(2**63), 10**30, MAX_QUANTITY + 1]),
        st.floats(allow_nan=True, allow_infinity=True),
        hostile_text(),
        st.uuids().map(str),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=12,
    )


def command_payloads(command: type[Command]) -> st.SearchStrategy[dict[str, Any]]:
    """Arbitrary payloads for ``command``: its field names (and others) with hostile values."""
    fields = sorted(command.model_fields)
    keys = st.one_of(st.sampled_from(fields), st.text(max_size=12)) if fields else st.text()
    return st.dictionaries(keys, _json_values(), max_size=len(fields) + 2)


def place_order_commands(
    sku: st.SearchStrategy[str] | None = None, currency: str = "USD"
) -> st.SearchStrategy[PlaceOrder]:
    """Valid ``PlaceOrder`` commands: one line per SKU, 1 to 5 lines."""
    lines = st.dictionaries(sku or skus(), quantities(100), min_size=1, max_size=5)
    return st.builds(
        lambda key, customer, chosen: PlaceOrder(
            idempotency_key=key,
            customer_id=customer,
            currency=Currency.of(currency).code,
            lines=[OrderLineRequest(sku=s, quantity=q) for s, q in chosen.items()],
        ),
        identifiers(),
        identifiers(),
        lines,
    )

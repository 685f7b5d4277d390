"""Exact money: a :class:`Money` value is a fixed-point amount in one ISO 4217 currency.

Rounding rule: amounts a caller *states* (prices, payments, refunds) must already fit the
currency's minor unit, and :class:`Money` refuses one that does not (``PrecisionError``) rather
than guess. Amounts the library *computes* -- tax, discounts, fees, percentages, products with a
decimal factor, :meth:`Money.rounded` -- are rounded exactly once, to the currency's minor unit,
with :data:`ROUNDING` (``ROUND_HALF_EVEN``, banker's rounding), from the exact intermediate value.
Sums, differences, integer multiples and allocations are exact and are never rounded; an
allocation hands the indivisible minor units out by the largest-remainder method, so its parts
always add up to the whole. All decimal arithmetic here runs in a private context, so a host
that changes the thread's global :mod:`decimal` context cannot change a result.
"""

from __future__ import annotations

import decimal
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Final, final

from babel.numbers import get_currency_precision, list_currencies
from pydantic import AfterValidator, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from suuupra_commerce.errors import (
    AmountOutOfRangeError,
    CurrencyMismatchError,
    InvalidAmountError,
    PrecisionError,
    UnknownCurrencyError,
)

__all__ = [
    "MAX_AMOUNT",
    "ROUNDING",
    "Currency",
    "CurrencyCode",
    "Money",
    "Price",
    "sum_money",
]

ROUNDING: Final = decimal.ROUND_HALF_EVEN
"""How computed amounts are rounded, once, to the currency's minor unit (banker's rounding)."""

MAX_AMOUNT: Final = Decimal("1e15")
"""The largest magnitude, in major units, of any amount; beyond it ``AmountOutOfRangeError``."""

_CONTEXT: Final = decimal.Context(
    prec=50,
    rounding=ROUNDING,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
# Parsing accepts any exponent Decimal can represent; the range check then refuses absurd ones.
_PARSE_CONTEXT: Final = decimal.Context(
    prec=50,
    rounding=ROUNDING,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
_MAX_STRING_LENGTH: Final = 64
_MAX_INT_BITS: Final = 512  # an int input wider than this is an absurd magnitude, not a number
_DECIMAL_STRING: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_CURRENCY_CODE: Final = re.compile(r"[A-Z]{3}", re.ASCII)
_FLOAT_MESSAGE: Final = "floats are not exact; pass a Decimal, int or str"
_MAX_RATIO_EXPONENT: Final = 100
# Computed amounts are first checked against this loose bound, which keeps the final rounding
# within the private context's precision, then the rounded result against MAX_AMOUNT itself.
_ROUNDING_LIMIT: Final = Decimal("2e15")


# --- currencies ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _known_currencies() -> frozenset[str]:
    return frozenset(str(code) for code in list_currencies())


@functools.lru_cache(maxsize=512)
def _minor_units_of(code: str) -> int:
    if not _CURRENCY_CODE.fullmatch(code) or code not in _known_currencies():
        raise UnknownCurrencyError(f"not a known ISO 4217 currency code: {code!r}")
    return int(get_currency_precision(code))


def _checked_code(code: object) -> str:
    if not isinstance(code, str):
        raise UnknownCurrencyError(
            f"a currency code must be a str, not {type(code).__name__}: {code!r}"
        )
    _minor_units_of(code)
    return code


@functools.lru_cache(maxsize=512)
def _currency_of(code: str) -> Currency:
    return Currency(code, _minor_units_of(code))


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency and the number of decimal places of its minor unit (CLDR data).

    >>> Currency.of("JPY")
    Currency(code='JPY', minor_units=0)
    """

    code: str
    minor_units: int

    def __post_init__(self) -> None:
        expected = _minor_units_of(_checked_code(self.code))
        if self.minor_units != expected:
            raise UnknownCurrencyError(
                f"{self.code} has {expected} minor-unit digits, not {self.minor_units!r}"
            )

    @classmethod
    def of(cls, code: str) -> Currency:
        """The currency with this code: exactly three upper-case ASCII letters known to CLDR."""
        return _currency_of(_checked_code(code))


def _quantum(minor_units: int) -> Decimal:
    return Decimal((0, (1,), -minor_units))


def _zero(minor_units: int) -> Decimal:
    return Decimal((0, (0,), -minor_units))


# --- parsing and range checks ----------------------------------------------------------------


def _to_decimal(value: object, what: str) -> Decimal:
    """``value`` as a finite Decimal, exactly; refuses floats, bools, NaN, Infinity, junk."""
    if isinstance(value, bool):
        raise InvalidAmountError(f"{what} must be a Decimal, int or str, not a bool")
    if isinstance(value, float):
        raise InvalidAmountError(_FLOAT_MESSAGE)
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            raise AmountOutOfRangeError(f"{what} is out of range")
        return Decimal(value)
    if isinstance(value, str):
        return _parse(value, what)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidAmountError(f"{what} must be finite, not {value}")
        return value
    raise InvalidAmountError(f"{what} must be a Decimal, int or str, not {type(value).__name__}")


def _parse(text: str, what: str) -> Decimal:
    if len(text) > _MAX_STRING_LENGTH:
        raise InvalidAmountError(f"{what} string is longer than {_MAX_STRING_LENGTH} characters")
    if not _DECIMAL_STRING.fullmatch(text):
        if text.strip().lstrip("+-").lower() in {"nan", "snan", "inf", "infinity"}:
            raise InvalidAmountError(f"{what} must be finite, not {text!r}")
        raise InvalidAmountError(f"{what} is not a decimal number: {text!r}")
    try:
        with decimal.localcontext(_PARSE_CONTEXT):
            return Decimal(text)
    except decimal.DecimalException:  # an exponent too large even for Decimal
        raise AmountOutOfRangeError(f"{what} is out of range: {text!r}") from None


def _check_range(amount: Decimal, limit: Decimal = MAX_AMOUNT) -> None:
    if amount.copy_abs() > limit:
        raise AmountOutOfRangeError(f"amount {amount} is beyond +/-{MAX_AMOUNT:f}")


def _round_to(amount: Decimal, minor_units: int) -> Decimal:
    """``amount`` rounded once, with ROUNDING, to ``minor_units`` decimal places; range-checked."""
    _check_range(amount, _ROUNDING_LIMIT)
    with decimal.localcontext(_CONTEXT):
        result = amount.quantize(_quantum(minor_units))
    _check_range(result)
    return result


def _multiply_rounded(amount: Decimal, factor: Decimal, minor_units: int) -> Decimal:
    """The exact product ``amount * factor``, rounded once to ``minor_units`` places."""
    if amount.is_zero() or factor.is_zero():
        return _zero(minor_units)
    if factor.adjusted() > 40:  # |amount| >= 1e-9 for any real currency, so far beyond range
        raise AmountOutOfRangeError(f"product of {amount} and {factor} is out of range")
    if factor.adjusted() < -60:  # |amount| < 1e16, so far below half a minor unit
        return _zero(minor_units)
    exact = decimal.Context(
        prec=len(amount.as_tuple().digits) + len(factor.as_tuple().digits) + 1,
        rounding=ROUNDING,
        Emax=decimal.MAX_EMAX,
        Emin=decimal.MIN_EMIN,
        traps=[decimal.InvalidOperation, decimal.Overflow, decimal.Inexact],
    )
    return _round_to(exact.multiply(amount, factor), minor_units)


# --- money -----------------------------------------------------------------------------------


@final
class Money:
    """An exact amount of one currency, held at exactly the currency's minor-unit exponent.

    Build it from a ``Decimal``, an ``int`` or a ``str`` -- never a ``float``. An amount with
    more decimal places than the currency has is refused (use :meth:`rounded` for computed
    amounts). Money is immutable and hashable; arithmetic across currencies raises
    ``CurrencyMismatchError``.

    >>> price = Money("19.9", "USD")
    >>> price
    Money('19.90', 'USD')
    >>> str(price * 3)
    '59.70 USD'
    >>> print(*Money("10", "USD").split(3), sep=", ")
    3.34 USD, 3.33 USD, 3.33 USD
    """

    __slots__ = ("amount", "currency")

    if TYPE_CHECKING:  # read-only to type checkers; the slots hold the values at run time

        @property
        def amount(self) -> Decimal:
            """The amount in major units, at exactly the currency's exponent."""

        @property
        def currency(self) -> str:
            """The ISO 4217 currency code."""

    def __init__(self, amount: Decimal | int | str, currency: str) -> None:
        code = _checked_code(currency)
        minor_units = _minor_units_of(code)
        value = _to_decimal(amount, "amount")
        _check_range(value)
        with decimal.localcontext(_CONTEXT):
            normalised = value.quantize(_quantum(minor_units))
        if normalised != value:
            raise PrecisionError(
                f"{amount} has more decimal places than {code} allows ({minor_units})"
            )
        self._set(normalised, code)

    def _set(self, amount: Decimal, code: str) -> None:
        if amount.is_zero():
            amount = amount.copy_abs()  # no negative zero
        object.__setattr__(self, "amount", amount)
        object.__setattr__(self, "currency", code)

    @classmethod
    def _of(cls, amount: Decimal, code: str) -> Money:
        """A Money from an amount already at the currency's exponent; range-checked."""
        _check_range(amount)
        money = cls.__new__(cls)
        money._set(amount, code)
        return money

    # --- other constructors --------------------------------------------------------------

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Nothing, in ``currency``: ``Money.zero("USD") == Money("0.00", "USD")``."""
        code = _checked_code(currency)
        return cls._of(_zero(_minor_units_of(code)), code)

    @classmethod
    def from_minor_units(cls, units: int, currency: str) -> Money:
        """The amount of ``units`` minor units (cents, fils, ...): ``(1999, "USD")`` is 19.99."""
        code = _checked_code(currency)
        minor_units = _minor_units_of(code)
        if isinstance(units, bool) or not isinstance(units, int):
            raise InvalidAmountError(f"minor units must be an int, not {type(units).__name__}")
        if abs(units) > int(MAX_AMOUNT) * 10**minor_units:
            raise AmountOutOfRangeError(f"{units} minor units of {code} is out of range")
        return cls._of(Decimal((0 if units >= 0 else 1, _digits(abs(units)), -minor_units)), code)

    @classmethod
    def rounded(cls, amount: Decimal | int | str, currency: str) -> Money:
        """A computed amount, rounded once with :data:`ROUNDING` to the currency's minor unit."""
        code = _checked_code(currency)
        value = _to_decimal(amount, "amount")
        return cls._of(_round_to(value, _minor_units_of(code)), code)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Money:
        """The inverse of :meth:`to_dict`: exactly the keys ``amount`` and ``currency``."""
        if not isinstance(data, Mapping):
            raise InvalidAmountError(
                f"money must be a mapping with amount and currency, not {type(data).__name__}"
            )
        keys = set(data)
        if keys != {"amount", "currency"}:
            missing = sorted({"amount", "currency"} - keys)
            extra = sorted(repr(k) for k in keys - {"amount", "currency"})
            raise InvalidAmountError(
                "money must have exactly the keys 'amount' and 'currency'"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unexpected {', '.join(extra)}" if extra else "")
            )
        return cls(data["amount"], data["currency"])

    # --- views ---------------------------------------------------------------------------

    @property
    def minor_units(self) -> int:
        """The amount as a whole number of minor units: ``Money("19.99", "USD")`` is 1999."""
        sign, digits, _ = self.amount.as_tuple()
        units = int("".join(map(str, digits)))
        return -units if sign else units

    def is_zero(self) -> bool:
        """Whether the amount is zero."""
        return self.amount.is_zero()

    def is_positive(self) -> bool:
        """Whether the amount is greater than zero."""
        return not self.amount.is_zero() and not self.amount.is_signed()

    def is_negative(self) -> bool:
        """Whether the amount is less than zero."""
        return not self.amount.is_zero() and self.amount.is_signed()

    def to_dict(self) -> dict[str, str]:
        """``{"amount": "12.30", "currency": "USD"}``: the amount as an exact string."""
        return {"amount": format(self.amount, "f"), "currency": self.currency}

    def __str__(self) -> str:
        return f"{self.amount:f} {self.currency}"

    def __repr__(self) -> str:
        return f"Money('{self.amount:f}', '{self.currency}')"

    # --- arithmetic ----------------------------------------------------------------------

    def _same_currency(self, other: Money, operation: str) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(
                f"cannot {operation} {other.currency} and {self.currency}: {other} vs {self}"
            )

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "add")
        with decimal.localcontext(_CONTEXT):
            return Money._of(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "subtract")
        with decimal.localcontext(_CONTEXT):
            return Money._of(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money._of(self.amount.copy_negate(), self.currency)

    def __abs__(self) -> Money:
        return Money._of(self.amount.copy_abs(), self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        """Multiply by an int (exact) or a Decimal (rounded once with :data:`ROUNDING`)."""
        if isinstance(factor, bool | float):
            raise InvalidAmountError(
                _FLOAT_MESSAGE if isinstance(factor, float) else "cannot multiply money by a bool"
            )
        if not isinstance(factor, int | Decimal):
            return NotImplemented
        value = _to_decimal(factor, "factor")
        minor_units = _minor_units_of(self.currency)
        return Money._of(_multiply_rounded(self.amount, value, minor_units), self.currency)

    __rmul__ = __mul__

    def percentage(self, percent: Decimal | int | str) -> Money:
        """``percent`` per cent of this amount, rounded once: ``Money("10", "USD")`` * 7.5%."""
        sign, digits, exponent = _to_decimal(percent, "percent").as_tuple()
        fraction = Decimal((sign, digits, int(exponent) - 2))  # percent / 100, exactly
        minor_units = _minor_units_of(self.currency)
        return Money._of(_multiply_rounded(self.amount, fraction, minor_units), self.currency)

    def allocate(self, ratios: Sequence[int | Decimal]) -> list[Money]:
        """Split into parts proportional to ``ratios``; the parts always sum to exactly ``self``.

        Works in whole minor units: each part gets the floor of its exact share, and the units
        left over go one each to the parts with the largest remainders (earliest first on a
        tie), so every part is within one minor unit of its exact share. A negative amount is
        allocated as its absolute value, then negated.

        >>> print(*Money("0.05", "USD").allocate([3, 7]), sep=", ")
        0.02 USD, 0.03 USD
        """
        weights = _integer_weights(ratios)
        total_weight = sum(weights)
        units = self.minor_units
        whole = abs(units)
        shares = [divmod(whole * weight, total_weight) for weight in weights]
        parts = [quotient for quotient, _ in shares]
        left_over = whole - sum(parts)
        by_remainder = sorted(range(len(parts)), key=lambda i: (-shares[i][1], i))
        for index in by_remainder[:left_over]:
            parts[index] += 1
        sign = -1 if units < 0 else 1
        return [Money.from_minor_units(sign * part, self.currency) for part in parts]

    def split(self, n: int) -> list[Money]:
        """Split into ``n`` near-equal parts (earlier parts take the spare minor units)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidAmountError(f"can only split into a positive int of parts, not {n!r}")
        return self.allocate([1] * n)

    # --- comparison ----------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.currency == other.currency and self.amount == other.amount

    def __hash__(self) -> int:
        return hash((self.amount, self.currency))

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.amount >= other.amount

    # --- immutability and copying --------------------------------------------------------

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Money is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Money is immutable; cannot delete {name!r}")

    def __copy__(self) -> Money:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Money:
        return self

    def __reduce__(self) -> tuple[type[Money], tuple[str, str]]:
        return (Money, (format(self.amount, "f"), self.currency))

    # --- pydantic ------------------------------------------------------------------------

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate_money,
            serialization=core_schema.plain_serializer_function_ser_schema(
                Money.to_dict,
                return_schema=core_schema.dict_schema(
                    core_schema.str_schema(), core_schema.str_schema()
                ),
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        amount: dict[str, Any] = {
            "type": "string",
            "pattern": r"^-?\d+(\.\d+)?$",
            "description": "exact decimal amount in major units, e.g. '12.30'",
        }
        if handler.mode == "validation":
            amount = {"anyOf": [amount, {"type": "integer"}]}
        return {
            "type": "object",
            "title": "Money",
            "properties": {
                "amount": amount,
                "currency": {
                    "type": "string",
                    "pattern": "^[A-Z]{3}$",
                    "description": "ISO 4217 currency code",
                },
            },
            "required": ["amount", "currency"],
            "additionalProperties": False,
        }


def _validate_money(value: Any) -> Money:
    if isinstance(value, Money):
        return value
    return Money.from_dict(value)


def _digits(n: int) -> tuple[int, ...]:
    return tuple(int(c) for c in str(n))


def _integer_weights(ratios: Sequence[int | Decimal]) -> list[int]:
    """Allocation ratios as non-negative ints with the same proportions."""
    values = list(ratios)
    if not values:
        raise InvalidAmountError("cannot allocate among no ratios")
    decimals: list[Decimal] = []
    for ratio in values:
        if isinstance(ratio, bool | float) or not isinstance(ratio, int | Decimal):
            raise InvalidAmountError(f"a ratio must be an int or a Decimal, not {ratio!r}")
        value = _to_decimal(ratio, "ratio")
        if value.is_signed() and not value.is_zero():
            raise InvalidAmountError(f"ratios must not be negative: {ratio!r}")
        if value.is_zero():
            value = Decimal(0)
        elif abs(value.adjusted()) > _MAX_RATIO_EXPONENT or (
            -int(value.as_tuple().exponent) > _MAX_RATIO_EXPONENT
        ):
            raise InvalidAmountError(f"ratio out of range: {ratio!r}")
        decimals.append(value)
    scale = max(0, *(-int(value.as_tuple().exponent) for value in decimals))
    weights = []
    for value in decimals:
        _, digits, exponent = value.as_tuple()
        coefficient = int("".join(map(str, digits)))
        weights.append(coefficient * 10 ** (int(exponent) + scale))
    if not any(weights):
        raise InvalidAmountError("at least one ratio must be positive")
    return weights


def sum_money(items: Iterable[Money], currency: str) -> Money:
    """The exact total of ``items``, all in ``currency``; zero of ``currency`` when empty."""
    total = Money.zero(currency)
    for item in items:
        total = total + item
    return total


def _non_negative(money: Money) -> Money:
    if money.is_negative():
        raise InvalidAmountError("must not be negative")
    return money


Price = Annotated[Money, AfterValidator(_non_negative)]
"""A pydantic field type: a :class:`Money` that is zero or more."""


def _known_code(code: str) -> str:
    return Currency.of(code).code


CurrencyCode = Annotated[
    str, Field(strict=True, min_length=3, max_length=3), AfterValidator(_known_code)
]
"""A pydantic field type for an ISO 4217 currency code known to CLDR (``"USD"``, not ``"usd"``)."""

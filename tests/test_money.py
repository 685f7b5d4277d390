"""Specifications of exact money: suuupra_commerce.money."""

from __future__ import annotations

import copy
import decimal
import pickle
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from suuupra_commerce.errors import (
    AmountOutOfRangeError,
    CurrencyMismatchError,
    InvalidAmountError,
    MoneyError,
    PrecisionError,
    UnknownCurrencyError,
)
from suuupra_commerce.money import MAX_AMOUNT, ROUNDING, Currency, Money, Price, sum_money

# No example database: the tests must not write files into the working tree.
PROPERTY = settings(max_examples=100, deadline=None, database=None)
THOROUGH = settings(max_examples=200, deadline=None, database=None)

CURRENCIES = ["USD", "JPY", "KWD", "EUR", "INR"]
MINOR = {"USD": 2, "JPY": 0, "KWD": 3, "EUR": 2, "INR": 2}
UNIT_LIMIT = 10**14  # minor units; sums and small multiples stay well inside MAX_AMOUNT

currencies = st.sampled_from(CURRENCIES)
units = st.integers(min_value=-UNIT_LIMIT, max_value=UNIT_LIMIT)


@st.composite
def moneys(draw: st.DrawFn, currency: str | None = None) -> Money:
    code = currency if currency is not None else draw(currencies)
    return Money.from_minor_units(draw(units), code)


@st.composite
def money_pairs(draw: st.DrawFn) -> tuple[Money, Money]:
    code = draw(currencies)
    return draw(moneys(code)), draw(moneys(code))


def half_even(value: Fraction) -> int:
    """Reference rounding of an exact rational to the nearest int, ties to even."""
    floor = value.numerator // value.denominator
    rest = value - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        return floor + 1
    return floor


# --- the rounding rule -----------------------------------------------------------------------


def test_rounding_is_half_even() -> None:
    assert ROUNDING == decimal.ROUND_HALF_EVEN
    assert Decimal("1e15") == MAX_AMOUNT


# --- currencies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "minor_units"), [("USD", 2), ("JPY", 0), ("KWD", 3), ("INR", 2), ("EUR", 2)]
)
def test_currency_has_cldr_minor_units_when_code_is_known(code: str, minor_units: int) -> None:
    currency = Currency.of(code)
    assert currency.code == code
    assert currency.minor_units == minor_units


def test_currency_is_cached_when_looked_up_twice() -> None:
    assert Currency.of("USD") is Currency.of("USD")


@pytest.mark.parametrize(
    "code", ["usd", "Usd", "ABC", "US", "USDD", "", " USD", "U$D", "\uff35\uff33\uff24"]
)
def test_unknown_currency_error_when_code_is_not_exactly_a_known_iso_code(code: str) -> None:
    with pytest.raises(UnknownCurrencyError):
        Currency.of(code)
    with pytest.raises(UnknownCurrencyError):
        Money("1", code)


@pytest.mark.parametrize("code", [None, 840, b"USD", ["USD"]])
def test_unknown_currency_error_when_code_is_not_a_str(code: Any) -> None:
    with pytest.raises(UnknownCurrencyError):
        Currency.of(code)
    with pytest.raises(UnknownCurrencyError):
        Money("1", code)


def test_unknown_currency_error_when_currency_is_built_with_wrong_minor_units() -> None:
    with pytest.raises(UnknownCurrencyError):
        Currency("USD", 3)
    assert Currency("USD", 2) == Currency.of("USD")


def test_currency_is_immutable() -> None:
    with pytest.raises(AttributeError):
        Currency.of("USD").minor_units = 3  # type: ignore[misc]


# --- construction errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [
        Decimal("NaN"),
        Decimal("-NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        "NaN",
        "sNaN",
        "inf",
        "-inf",
        "Infinity",
    ],
)
def test_invalid_amount_error_when_amount_is_not_finite(amount: Decimal | str) -> None:
    with pytest.raises(InvalidAmountError, match="finite"):
        Money(amount, "USD")
    with pytest.raises(InvalidAmountError):
        Money.rounded(amount, "USD")


@pytest.mark.parametrize("amount", [1.5, 0.1, 1.0, float("nan"), float("inf")])
def test_invalid_amount_error_when_amount_is_a_float(amount: float) -> None:
    with pytest.raises(InvalidAmountError, match="floats are not exact"):
        Money(amount, "USD")  # type: ignore[arg-type]
    with pytest.raises(InvalidAmountError, match="floats are not exact"):
        Money.rounded(amount, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [True, False])
def test_invalid_amount_error_when_amount_is_a_bool(amount: bool) -> None:
    with pytest.raises(InvalidAmountError):
        Money(amount, "USD")


@pytest.mark.parametrize(
    "amount", ["", "abc", "1,00", "1_000", " 1", "1 ", "1.2.3", "--1", "0x10", "١٢", "$1", "1e"]
)
def test_invalid_amount_error_when_string_is_not_a_plain_decimal(amount: str) -> None:
    with pytest.raises(InvalidAmountError):
        Money(amount, "USD")


@pytest.mark.parametrize("amount", [None, [1], {"amount": "1"}, b"1", Fraction(1, 2)])
def test_invalid_amount_error_when_amount_has_another_type(amount: Any) -> None:
    with pytest.raises(InvalidAmountError):
        Money(amount, "USD")


def test_invalid_amount_error_when_string_is_longer_than_64_characters() -> None:
    assert Money("0." + "0" * 62, "USD").is_zero()  # exactly 64 characters: parsed
    with pytest.raises(InvalidAmountError, match="64"):
        Money("1" * 65, "USD")
    with pytest.raises(InvalidAmountError, match="64"):
        Money("0." + "0" * 63, "USD")


@pytest.mark.parametrize(
    "amount",
    [
        "1e999999999",
        Decimal("1e999999999"),
        "-1e999999999",
        "1e99999999999999999999",
        "1e-99999999999999999999",
        Decimal("1000000000000000.01"),
        "-1000000000000000.01",
        10**15 + 1,
        -(10**15) - 1,
        10**1000,
    ],
)
def test_amount_out_of_range_error_when_magnitude_is_beyond_max(
    amount: Decimal | int | str,
) -> None:
    with pytest.raises(AmountOutOfRangeError):
        Money(amount, "USD")
    with pytest.raises(AmountOutOfRangeError):
        Money.rounded(amount, "USD")


def test_amount_is_accepted_when_magnitude_is_exactly_max() -> None:
    assert Money(MAX_AMOUNT, "USD").amount == Decimal("1000000000000000.00")
    assert Money(-MAX_AMOUNT, "JPY").minor_units == -(10**15)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("1.001", "USD"),
        ("1.0010", "USD"),  # 1.001 after stripping the trailing zero
        (Decimal("0.005"), "EUR"),
        ("1.5", "JPY"),
        ("0.1", "JPY"),
        ("1.0001", "KWD"),
        ("1e-2", "JPY"),
        (Decimal("1e-999999999"), "USD"),
    ],
)
def test_precision_error_when_amount_has_more_decimals_than_the_currency(
    amount: Decimal | str, currency: str
) -> None:
    with pytest.raises(PrecisionError):
        Money(amount, currency)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("1.0100", "USD", "1.01"),
        ("1.500", "JPY", None),
        ("1.000", "JPY", "1"),
        ("1.2340", "KWD", "1.234"),
        ("1e2", "USD", "100.00"),
        ("12.3E-1", "USD", "1.23"),
        (".5", "USD", "0.50"),
        ("+7", "USD", "7.00"),
    ],
)
def test_amount_is_accepted_when_extra_decimals_are_trailing_zeros(
    amount: str, currency: str, expected: str | None
) -> None:
    if expected is None:
        with pytest.raises(PrecisionError):
            Money(amount, currency)
    else:
        assert str(Money(amount, currency).amount) == expected


def test_huge_exponent_is_refused_quickly_when_amount_is_1e999999999() -> None:
    # Would hang or exhaust memory if the amount were ever expanded to its digits.
    for amount in ("1e999999999", Decimal("1e999999999"), Decimal("1e-999999999")):
        with pytest.raises(MoneyError):
            Money(amount, "USD")
    assert Money.rounded(Decimal("1e-999999999"), "USD") == Money.zero("USD")
    with pytest.raises(AmountOutOfRangeError):
        Money("1", "USD") * Decimal("1e999999999")
    assert Money("1", "USD") * Decimal("1e-999999999") == Money.zero("USD")


# --- normalisation ---------------------------------------------------------------------------


def test_amount_has_exactly_the_currency_exponent_when_constructed() -> None:
    assert Money("1.5", "USD").amount == Decimal("1.50")
    assert str(Money("1.5", "USD").amount) == "1.50"
    assert str(Money(7, "KWD").amount) == "7.000"
    assert str(Money("7", "JPY").amount) == "7"
    assert Money(Decimal("2.5000"), "USD").amount.as_tuple().exponent == -2


@pytest.mark.parametrize("amount", ["-0", "-0.00", Decimal("-0"), Decimal("-0E+5"), "-0e-3"])
def test_negative_zero_is_normalised_when_amount_is_zero(amount: Decimal | str) -> None:
    money = Money(amount, "USD")
    assert not money.amount.is_signed()
    assert str(money) == "0.00 USD"
    assert str(-Money.zero("USD")) == "0.00 USD"
    assert not Money.rounded("-0.001", "USD").amount.is_signed()


def test_zero_has_the_currency_exponent() -> None:
    assert repr(Money.zero("KWD")) == "Money('0.000', 'KWD')"
    assert Money.zero("JPY").is_zero()


def test_minor_units_round_trip_when_built_from_minor_units() -> None:
    assert Money.from_minor_units(1999, "USD") == Money("19.99", "USD")
    assert Money.from_minor_units(-5, "KWD") == Money("-0.005", "KWD")
    assert Money.from_minor_units(42, "JPY").amount == Decimal(42)
    assert Money("19.99", "USD").minor_units == 1999
    assert Money("-0.005", "KWD").minor_units == -5


@pytest.mark.parametrize("units", [1.0, True, "100", Decimal(100)])
def test_invalid_amount_error_when_minor_units_are_not_an_int(units: Any) -> None:
    with pytest.raises(InvalidAmountError):
        Money.from_minor_units(units, "USD")


def test_amount_out_of_range_error_when_minor_units_are_beyond_max() -> None:
    assert Money.from_minor_units(10**17, "USD").amount == MAX_AMOUNT
    with pytest.raises(AmountOutOfRangeError):
        Money.from_minor_units(10**17 + 1, "USD")


@PROPERTY
@given(units, currencies)
def test_minor_units_are_exact_when_round_tripped(count: int, currency: str) -> None:
    money = Money.from_minor_units(count, currency)
    assert money.minor_units == count
    assert money.amount == Decimal(count).scaleb(-MINOR[currency])
    assert Money(str(money.amount), currency) == money


# --- rounding of computed amounts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("2.345", "USD", "2.34"),
        ("2.355", "USD", "2.36"),
        ("-2.345", "USD", "-2.34"),
        ("2.3451", "USD", "2.35"),
        ("0.5", "JPY", "0"),
        ("1.5", "JPY", "2"),
        ("2.5", "JPY", "2"),
        ("1.0005", "KWD", "1.000"),
        ("1.0015", "KWD", "1.002"),
        ("2.34", "USD", "2.34"),
        (7, "USD", "7.00"),
    ],
)
def test_rounded_rounds_half_even_once_when_amount_is_computed(
    amount: str | int, currency: str, expected: str
) -> None:
    assert Money.rounded(amount, currency) == Money(expected, currency)


def test_rounded_rounds_from_the_exact_value_when_amount_has_many_digits() -> None:
    # 60 significant digits: rounding to a 50-digit precision first would land on the tie.
    amount = Decimal("0.005" + "0" * 56 + "1")
    assert Money.rounded(amount, "USD") == Money("0.01", "USD")


# --- arithmetic ------------------------------------------------------------------------------


@PROPERTY
@given(money_pairs())
def test_adding_then_subtracting_gives_back_the_original_when_currencies_match(
    pair: tuple[Money, Money],
) -> None:
    a, b = pair
    assert a + b - b == a


@PROPERTY
@given(money_pairs())
def test_addition_commutes_when_currencies_match(pair: tuple[Money, Money]) -> None:
    a, b = pair
    assert a + b == b + a


@PROPERTY
@given(money_pairs(), st.integers(min_value=-9, max_value=9))
def test_arithmetic_agrees_with_integer_minor_units_when_exact(
    pair: tuple[Money, Money], k: int
) -> None:
    a, b = pair
    assert (a + b).minor_units == a.minor_units + b.minor_units
    assert (a - b).minor_units == a.minor_units - b.minor_units
    assert (a * k).minor_units == a.minor_units * k
    assert (k * a) == a * k
    assert (-a).minor_units == -a.minor_units
    assert abs(a).minor_units == abs(a.minor_units)


@PROPERTY
@given(money_pairs())
def test_ordering_agrees_with_minor_units_when_currencies_match(pair: tuple[Money, Money]) -> None:
    a, b = pair
    assert (a < b) == (a.minor_units < b.minor_units)
    assert (a <= b) == (a.minor_units <= b.minor_units)
    assert (a > b) == (a.minor_units > b.minor_units)
    assert (a >= b) == (a.minor_units >= b.minor_units)
    assert (a == b) == (a.minor_units == b.minor_units)
    assert a.is_positive() == (a.minor_units > 0)
    assert a.is_negative() == (a.minor_units < 0)
    assert a.is_zero() == (a.minor_units == 0)


@THOROUGH
@given(
    moneys(),
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-1000, max_value=1000, places=12),
)
def test_multiplying_by_a_decimal_rounds_once_half_even_when_product_is_inexact(
    money: Money, factor: Decimal
) -> None:
    exact = Fraction(money.minor_units) * Fraction(factor)
    try:
        product = money * factor
    except AmountOutOfRangeError:
        assert abs(exact) > Fraction(MAX_AMOUNT) * 10 ** MINOR[money.currency] - 1
        return
    assert product.currency == money.currency
    assert product.minor_units == half_even(exact)


@pytest.mark.parametrize(
    ("amount", "factor", "expected"),
    [
        ("0.25", "0.5", "0.12"),
        ("0.35", "0.5", "0.18"),
        ("0.45", "0.5", "0.22"),
        ("-0.25", "0.5", "-0.12"),
        ("10.00", "0.333", "3.33"),
        ("1.00", "1.005", "1.00"),
        ("1.00", "1.015", "1.02"),
    ],
)
def test_multiplication_rounds_half_even_at_the_minor_unit_when_factor_is_decimal(
    amount: str, factor: str, expected: str
) -> None:
    assert Money(amount, "USD") * Decimal(factor) == Money(expected, "USD")
    assert Decimal(factor) * Money(amount, "USD") == Money(expected, "USD")


def test_multiplication_rounds_from_the_exact_product_when_factor_has_many_digits() -> None:
    factor = Decimal("0.5" + "0" * 60 + "1")  # 0.01 * factor is just above the 0.005 tie
    assert Money("0.01", "USD") * factor == Money("0.01", "USD")
    assert Money("0.01", "USD") * Decimal("0.5") == Money("0.00", "USD")


def test_invalid_amount_error_when_multiplying_by_a_float_or_bool() -> None:
    with pytest.raises(InvalidAmountError, match="floats are not exact"):
        Money("1", "USD") * 1.5  # type: ignore[operator]
    with pytest.raises(InvalidAmountError, match="floats are not exact"):
        1.5 * Money("1", "USD")  # type: ignore[operator]
    with pytest.raises(InvalidAmountError):
        Money("1", "USD") * True
    with pytest.raises(InvalidAmountError):
        Money("1", "USD") * Decimal("NaN")


def test_type_error_when_multiplying_money_by_money_or_str() -> None:
    with pytest.raises(TypeError):
        Money("1", "USD") * Money("2", "USD")  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money("1", "USD") * "2"  # type: ignore[operator]


def test_type_error_when_adding_a_number_to_money() -> None:
    with pytest.raises(TypeError):
        Money("1", "USD") + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        Decimal(1) + Money("1", "USD")  # type: ignore[operator]


def test_amount_out_of_range_error_when_a_result_exceeds_max() -> None:
    big = Money(MAX_AMOUNT, "USD")
    with pytest.raises(AmountOutOfRangeError):
        big + Money("0.01", "USD")
    with pytest.raises(AmountOutOfRangeError):
        -big - Money("0.01", "USD")
    with pytest.raises(AmountOutOfRangeError):
        big * 2
    with pytest.raises(AmountOutOfRangeError):
        big * Decimal("1.00000001")
    with pytest.raises(AmountOutOfRangeError):
        Money("1", "USD") * 10**200
    with pytest.raises(AmountOutOfRangeError):
        big.percentage(101)


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
)
def test_currency_mismatch_error_when_currencies_differ(operation: Any) -> None:
    with pytest.raises(CurrencyMismatchError):
        operation(Money("1", "USD"), Money("1", "EUR"))


def test_money_is_unequal_not_an_error_when_currencies_differ() -> None:
    assert Money("1", "USD") != Money("1", "EUR")
    assert Money.zero("USD") != Money.zero("EUR")
    assert Money("1", "USD") != Decimal(1)
    assert Money("1", "USD") != "1.00 USD"


# --- percentage ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        ("10.00", "7.5", "0.75"),
        ("19.99", 10, "2.00"),
        ("0.05", 50, "0.02"),
        ("0.15", 50, "0.08"),
        ("100", "0", "0.00"),
        ("100", Decimal("-15"), "-15.00"),
        ("100", "12.345", "12.34"),
    ],
)
def test_percentage_is_rounded_once_half_even(
    amount: str, percent: Decimal | int | str, expected: str
) -> None:
    assert Money(amount, "USD").percentage(percent) == Money(expected, "USD")


def test_percentage_respects_a_zero_decimal_currency() -> None:
    assert Money(1050, "JPY").percentage(10) == Money(105, "JPY")
    assert Money(1005, "JPY").percentage(10) == Money(100, "JPY")  # 100.5 -> 100


@pytest.mark.parametrize("percent", [1.5, "NaN", "abc", True])
def test_invalid_amount_error_when_percent_is_not_exact(percent: Any) -> None:
    with pytest.raises(InvalidAmountError):
        Money("10", "USD").percentage(percent)


# --- allocation ------------------------------------------------------------------------------

ratio_lists = st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12).filter(
    any
)


@PROPERTY
@given(moneys(), ratio_lists)
def test_allocation_sums_to_the_whole_within_one_minor_unit_when_ratios_are_ints(
    money: Money, ratios: list[int]
) -> None:
    parts = money.allocate(ratios)
    assert len(parts) == len(ratios)
    assert sum_money(parts, money.currency) == money
    assert all(part.currency == money.currency for part in parts)
    total = sum(ratios)
    for part, ratio in zip(parts, ratios, strict=True):
        share = Fraction(money.minor_units * ratio, total)
        assert abs(part.minor_units - share) < 1
        if ratio == 0:
            assert part.is_zero()


@PROPERTY
@given(moneys(), ratio_lists)
def test_equal_ratios_get_parts_within_one_minor_unit_when_allocated(
    money: Money, ratios: list[int]
) -> None:
    parts = money.allocate(ratios)
    for i, (part_i, ratio_i) in enumerate(zip(parts, ratios, strict=True)):
        for part_j, ratio_j in zip(parts[i + 1 :], ratios[i + 1 :], strict=True):
            if ratio_i == ratio_j:
                assert abs(part_i.minor_units - part_j.minor_units) <= 1
                # ties go to the earliest position
                assert abs(part_i) >= abs(part_j)


@PROPERTY
@given(
    moneys(),
    st.lists(
        st.decimals(min_value=0, max_value=100, places=3, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=8,
    ).filter(any),
)
def test_allocation_is_deterministic_and_exact_when_ratios_are_decimals(
    money: Money, ratios: list[Decimal]
) -> None:
    parts = money.allocate(ratios)
    assert parts == money.allocate(list(ratios))
    assert sum_money(parts, money.currency) == money
    total = sum(Fraction(r) for r in ratios)
    for part, ratio in zip(parts, ratios, strict=True):
        assert abs(part.minor_units - Fraction(money.minor_units) * Fraction(ratio) / total) < 1


def test_allocation_gives_spare_units_to_the_largest_remainders_first() -> None:
    assert Money("0.05", "USD").allocate([3, 7]) == [Money("0.02", "USD"), Money("0.03", "USD")]
    assert Money("100", "JPY").allocate([1, 1, 1]) == [
        Money(34, "JPY"),
        Money(33, "JPY"),
        Money(33, "JPY"),
    ]
    assert Money("0.03", "USD").allocate([0, 1, 1]) == [
        Money("0.00", "USD"),
        Money("0.02", "USD"),
        Money("0.01", "USD"),
    ]


def test_allocation_of_a_negative_amount_mirrors_the_positive_one() -> None:
    assert Money("-0.05", "USD").allocate([1, 1, 1]) == [
        -part for part in Money("0.05", "USD").allocate([1, 1, 1])
    ]


@pytest.mark.parametrize(
    "ratios",
    [
        [],
        [0],
        [0, 0],
        [-1, 2],
        [Decimal("-0.5"), 1],
        [1.5, 1],
        [True, 1],
        ["1", 1],
        [Decimal("NaN"), 1],
        [Decimal("Infinity"), 1],
        [Decimal("1e999999999"), 1],
        [Decimal("1e-999999999"), 1],
    ],
)
def test_invalid_amount_error_when_ratios_are_bad(ratios: list[Any]) -> None:
    with pytest.raises(InvalidAmountError):
        Money("1", "USD").allocate(ratios)


def test_split_gives_near_equal_parts_that_sum_to_the_whole() -> None:
    assert Money("10", "USD").split(3) == [
        Money("3.34", "USD"),
        Money("3.33", "USD"),
        Money("3.33", "USD"),
    ]
    assert Money("10", "USD").split(1) == [Money("10", "USD")]
    assert sum_money(Money("-1", "KWD").split(7), "KWD") == Money("-1", "KWD")


@pytest.mark.parametrize("n", [0, -1, True, 2.0])
def test_invalid_amount_error_when_split_count_is_not_a_positive_int(n: Any) -> None:
    with pytest.raises(InvalidAmountError):
        Money("10", "USD").split(n)


# --- sum_money -------------------------------------------------------------------------------


def test_sum_money_is_zero_of_the_currency_when_empty() -> None:
    assert sum_money([], "KWD") == Money.zero("KWD")
    assert sum_money(iter([Money("1", "USD"), Money("2.5", "USD")]), "USD") == Money("3.5", "USD")


def test_currency_mismatch_error_when_summing_another_currency() -> None:
    with pytest.raises(CurrencyMismatchError):
        sum_money([Money("1", "USD"), Money("1", "EUR")], "USD")
    with pytest.raises(CurrencyMismatchError):
        sum_money([Money("1", "EUR")], "USD")


# --- text and dict forms ---------------------------------------------------------------------


def test_text_forms_show_the_exact_amount() -> None:
    money = Money("12.3", "USD")
    assert str(money) == "12.30 USD"
    assert repr(money) == "Money('12.30', 'USD')"
    assert money.to_dict() == {"amount": "12.30", "currency": "USD"}
    assert str(Money(MAX_AMOUNT, "JPY")) == "1000000000000000 JPY"
    assert str(Money("0.001", "KWD")) == "0.001 KWD"


@PROPERTY
@given(moneys())
def test_dict_and_repr_round_trip(money: Money) -> None:
    assert Money.from_dict(money.to_dict()) == money
    assert eval(repr(money), {"Money": Money}) == money


@pytest.mark.parametrize(
    "data",
    [
        {"amount": "1"},
        {"currency": "USD"},
        {"amount": "1", "currency": "USD", "note": "x"},
        {"amount": 1.0, "currency": "USD"},
        "1.00 USD",
        None,
    ],
)
def test_money_error_when_dict_is_malformed(data: Any) -> None:
    with pytest.raises(InvalidAmountError):
        Money.from_dict(data)


# --- immutability, identity, hashing ---------------------------------------------------------


def test_attribute_error_when_mutating_money() -> None:
    money = Money("1", "USD")
    with pytest.raises(AttributeError):
        money.amount = Decimal(2)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        money.currency = "EUR"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        money.other = 1
    with pytest.raises(AttributeError):
        del money.amount
    assert money == Money("1.00", "USD")


def test_copies_are_the_same_object_when_money_is_copied() -> None:
    money = Money("1", "USD")
    assert copy.copy(money) is money
    assert copy.deepcopy(money) is money
    assert copy.deepcopy({"m": money})["m"] is money


def test_pickle_round_trips() -> None:
    money = Money("-12.345", "KWD")
    assert pickle.loads(pickle.dumps(money)) == money


def test_equal_money_hashes_equal_whatever_the_input_spelling() -> None:
    spellings = [Money("1.5", "USD"), Money("1.50", "USD"), Money(Decimal("1.500"), "USD")]
    assert len({*spellings}) == 1
    assert hash(Money("1", "USD")) == hash(Money(1, "USD"))
    assert len({Money("1", "USD"), Money("1", "EUR")}) == 2


# --- independence from the host's decimal context --------------------------------------------


def test_results_are_exact_when_the_global_decimal_context_is_changed() -> None:
    with decimal.localcontext() as host:
        host.prec = 3
        host.rounding = decimal.ROUND_DOWN
        host.traps[decimal.Inexact] = True
        host.traps[decimal.Rounded] = True
        host.Emax = 5
        big = Money("123456789.99", "USD")
        assert big + Money("0.01", "USD") == Money.from_minor_units(12345679000, "USD")
        assert big - Money("0.01", "USD") == Money.from_minor_units(12345678998, "USD")
        assert big * 3 == Money.from_minor_units(37037036997, "USD")
        assert Money("0.35", "USD") * Decimal("0.5") == Money.from_minor_units(18, "USD")
        assert Money("123456.78", "USD").percentage("12.5").minor_units == 1543210
        assert Money.rounded("2.345", "USD").minor_units == 234
        assert Money(MAX_AMOUNT, "USD").minor_units == 10**17
        assert sum_money(big.split(7), "USD") == big
        assert Money.zero("KWD").minor_units == 0
        with pytest.raises(AmountOutOfRangeError):
            Money("1e999999999", "USD")
    assert decimal.getcontext().prec != 3


# --- pydantic --------------------------------------------------------------------------------


class Order(BaseModel):
    total: Money
    price: Price


def test_pydantic_model_round_trips_in_python_mode() -> None:
    order = Order.model_validate(
        {"total": {"amount": "12.3", "currency": "USD"}, "price": Money("0", "JPY")}
    )
    assert order.total == Money("12.30", "USD")
    assert order.price == Money.zero("JPY")
    dumped = order.model_dump()
    assert dumped == {
        "total": {"amount": "12.30", "currency": "USD"},
        "price": {"amount": "0", "currency": "JPY"},
    }
    assert Order.model_validate(dumped) == order


def test_pydantic_model_round_trips_in_json_mode() -> None:
    order = Order(total=Money("-1.5", "KWD"), price=Money(7, "USD"))
    text = order.model_dump_json()
    assert '"total":{"amount":"-1.500","currency":"KWD"}' in text
    assert Order.model_validate_json(text) == order
    assert order.model_dump(mode="json")["price"] == {"amount": "7.00", "currency": "USD"}
    parsed = Order.model_validate_json(
        '{"total": {"amount": 12, "currency": "USD"}, "price": {"amount": "1", "currency": "JPY"}}'
    )
    assert parsed.total == Money("12", "USD")


def test_validation_error_when_amount_is_a_float_through_pydantic() -> None:
    with pytest.raises(ValidationError, match="floats are not exact"):
        Order.model_validate_json(
            '{"total": {"amount": 12.30, "currency": "USD"},'
            ' "price": {"amount": "1", "currency": "USD"}}'
        )
    with pytest.raises(ValidationError, match="floats are not exact"):
        Order.model_validate(
            {"total": {"amount": 0.1, "currency": "USD"}, "price": Money("1", "USD")}
        )


@pytest.mark.parametrize(
    "total",
    [
        {"amount": "1.001", "currency": "USD"},
        {"amount": "1", "currency": "usd"},
        {"amount": "NaN", "currency": "USD"},
        {"amount": "1"},
        {"amount": "1", "currency": "USD", "extra": 1},
        "1.00 USD",
        12,
    ],
)
def test_validation_error_when_money_input_is_invalid_through_pydantic(total: Any) -> None:
    with pytest.raises(ValidationError):
        Order.model_validate({"total": total, "price": Money("1", "USD")})


def test_validation_error_when_price_is_negative() -> None:
    with pytest.raises(ValidationError, match="must not be negative"):
        Order(total=Money("1", "USD"), price=Money("-0.01", "USD"))
    assert Order(total=Money("1", "USD"), price=Money.zero("USD")).price.is_zero()


def test_json_schema_describes_money_as_an_object_with_string_amount() -> None:
    schema = Order.model_json_schema()
    total = schema["properties"]["total"]
    assert total["type"] == "object"
    assert total["required"] == ["amount", "currency"]
    assert total["properties"]["currency"]["pattern"] == "^[A-Z]{3}$"
    assert schema["properties"]["price"]["type"] == "object"
    serialised = Order.model_json_schema(mode="serialization")["properties"]["total"]
    assert serialised["properties"]["amount"]["type"] == "string"
    assert serialised["properties"]["amount"]["pattern"] == r"^-?\d+(\.\d+)?$"

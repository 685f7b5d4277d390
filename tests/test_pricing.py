"""Tests of quotes: line and order totals, tax, discounts, shipping and the in-memory price book."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidIdentifierError,
    InvalidQuantityError,
    UnknownCurrencyError,
    UnknownDiscountCodeError,
    UnknownSkuError,
)
from suuupra_commerce.money import Money, sum_money
from suuupra_commerce.ports import PricedLine, PriceQuote
from suuupra_commerce.pricing import (
    FlatRateShipping,
    FlatRateTax,
    FreeShipping,
    NoDiscounts,
    NoTax,
    PercentageDiscounts,
    Pricing,
)


def book_of(currency: str = "USD", **prices: str) -> InMemoryPriceBook:
    book = InMemoryPriceBook()
    for sku, amount in prices.items():
        book.set_price(sku, f"name of {sku}", Money(amount, currency))
    return book


class FakeEuroPriceBook:
    """Answers every question in EUR, whatever currency was asked for."""

    def quote(self, sku: str, currency: str) -> PriceQuote | None:
        return PriceQuote(sku, sku, Money("1.00", "EUR"))


class FakeGenerousDiscounts:
    """Offers a fixed amount off, whatever the subtotal."""

    def __init__(self, amount: Money) -> None:
        self.amount = amount

    def discount(self, code: str, lines: Sequence[PricedLine], subtotal: Money) -> Money | None:
        return self.amount


# --- totals ---------------------------------------------------------------------------------


def test_exclusive_tax_is_added_on_top_when_tax_is_exclusive() -> None:
    pricing = Pricing(book_of(TEE="10.00"), tax=FlatRateTax(Decimal("0.2")))
    quote = pricing.quote([("TEE", 3)], "USD")
    (line,) = quote.lines
    assert (line.subtotal, line.tax, line.total) == (
        Money("30.00", "USD"),
        Money("6.00", "USD"),
        Money("36.00", "USD"),
    )
    assert (quote.subtotal, quote.tax, quote.total) == (
        Money("30.00", "USD"),
        Money("6.00", "USD"),
        Money("36.00", "USD"),
    )
    assert quote.tax_inclusive is False


def test_inclusive_tax_is_inside_the_price_when_tax_is_inclusive() -> None:
    pricing = Pricing(book_of("EUR", TEE="12.00"), tax=FlatRateTax(Decimal("0.2"), inclusive=True))
    quote = pricing.quote([("TEE", 1)], "EUR")
    assert quote.tax == Money("2.00", "EUR")
    assert quote.total == Money("12.00", "EUR")
    assert quote.lines[0].total == Money("12.00", "EUR")
    assert quote.tax_inclusive is True


def test_tax_is_rounded_once_per_line_when_lines_have_fractional_tax() -> None:
    # 0.15 * 10% = 0.015 per line, rounded half-even to 0.02: 0.04 in all, where rounding the
    # order's 0.030 once would give 0.03.
    pricing = Pricing(book_of(A="0.15", B="0.15"), tax=FlatRateTax(Decimal("0.1")))
    quote = pricing.quote([("A", 1), ("B", 1)], "USD")
    assert [line.tax for line in quote.lines] == [Money("0.02", "USD")] * 2
    assert quote.tax == Money("0.04", "USD")


def test_tax_is_rounded_on_the_line_not_per_unit_when_quantity_is_above_one() -> None:
    # 3 x 0.33 = 0.99; 7% of 0.99 = 0.0693 -> 0.07 (per unit it would be 3 x 0.02 = 0.06).
    pricing = Pricing(book_of(A="0.33"), tax=FlatRateTax(Decimal("0.07")))
    assert pricing.quote([("A", 3)], "USD").tax == Money("0.07", "USD")


def test_tax_uses_bankers_rounding_when_exactly_half_a_minor_unit() -> None:
    # 0.25 * 10% = 0.025 -> 0.02 (half to even); 0.35 * 10% = 0.035 -> 0.04.
    pricing = Pricing(book_of(A="0.25", B="0.35"), tax=FlatRateTax(Decimal("0.1")))
    quote = pricing.quote([("A", 1), ("B", 1)], "USD")
    assert [line.tax for line in quote.lines] == [Money("0.02", "USD"), Money("0.04", "USD")]


def test_duplicate_skus_merge_when_quoted_twice() -> None:
    quote = Pricing(book_of(A="1.00", B="2.00")).quote([("A", 1), ("B", 1), ("A", 2)], "USD")
    assert [(line.sku, line.quantity) for line in quote.lines] == [("A", 3), ("B", 1)]
    assert quote.total == Money("5.00", "USD")


def test_quote_is_zero_when_there_are_no_lines() -> None:
    pricing = Pricing(book_of(), shipping=FlatRateShipping(Money("4.99", "USD")))
    quote = pricing.quote([], "USD")
    assert quote.lines == ()
    assert quote.total == Money.zero("USD")


def test_jpy_quotes_have_no_minor_units_when_taxed() -> None:
    pricing = Pricing(book_of("JPY", A="999"), tax=FlatRateTax(Decimal("0.1")))
    assert pricing.quote([("A", 1)], "JPY").tax == Money("100", "JPY")


# --- discounts ------------------------------------------------------------------------------


def test_discount_is_split_over_lines_by_subtotal_when_a_code_applies() -> None:
    pricing = Pricing(
        book_of(A="10.00", B="20.00", C="0.01"),
        discounts=PercentageDiscounts({"SAVE10": Decimal(10)}),
    )
    quote = pricing.quote([("A", 1), ("B", 1), ("C", 1)], "USD", discount_code="SAVE10")
    assert quote.discount == Money("3.00", "USD")
    assert [line.discount for line in quote.lines] == [
        Money("1.00", "USD"),
        Money("2.00", "USD"),
        Money("0.00", "USD"),
    ]
    assert quote.discount_code == "SAVE10"
    assert quote.total == Money("27.01", "USD")


def test_tax_is_charged_after_the_discount_when_both_apply() -> None:
    pricing = Pricing(
        book_of(A="100.00"),
        tax=FlatRateTax(Decimal("0.2")),
        discounts=PercentageDiscounts({"HALF": Decimal(50)}),
    )
    quote = pricing.quote([("A", 1)], "USD", discount_code="HALF")
    assert (quote.discount, quote.tax, quote.total) == (
        Money("50.00", "USD"),
        Money("10.00", "USD"),
        Money("60.00", "USD"),
    )


def test_discount_is_capped_at_the_subtotal_when_the_policy_offers_more() -> None:
    pricing = Pricing(book_of(A="5.00"), discounts=FakeGenerousDiscounts(Money("50.00", "USD")))
    quote = pricing.quote([("A", 1)], "USD", discount_code="ANY")
    assert quote.discount == Money("5.00", "USD")
    assert quote.total == Money.zero("USD")


def test_unknown_discount_code_error_when_the_policy_does_not_know_the_code() -> None:
    with pytest.raises(UnknownDiscountCodeError):
        Pricing(book_of(A="5.00")).quote([("A", 1)], "USD", discount_code="NOPE")


def test_currency_mismatch_error_when_a_discount_is_in_another_currency() -> None:
    pricing = Pricing(book_of(A="5.00"), discounts=FakeGenerousDiscounts(Money("1.00", "EUR")))
    with pytest.raises(CurrencyMismatchError):
        pricing.quote([("A", 1)], "USD", discount_code="ANY")


def test_invalid_amount_error_when_a_percentage_discount_is_out_of_range() -> None:
    with pytest.raises(InvalidAmountError):
        PercentageDiscounts({"TOO_MUCH": Decimal(101)})
    with pytest.raises(InvalidAmountError):
        PercentageDiscounts({"FLOAT": 10.0})  # type: ignore[dict-item]


def test_no_discounts_knows_no_code_when_asked() -> None:
    assert NoDiscounts().discount("X", [], Money("1", "USD")) is None


# --- shipping -------------------------------------------------------------------------------


def test_flat_shipping_is_charged_below_the_free_threshold_when_configured() -> None:
    shipping = FlatRateShipping(Money("4.99", "USD"), free_from=Money("50.00", "USD"))
    pricing = Pricing(book_of(A="49.99", B="50.00"), shipping=shipping)
    assert pricing.quote([("A", 1)], "USD").shipping == Money("4.99", "USD")
    assert pricing.quote([("A", 1)], "USD").total == Money("54.98", "USD")
    assert pricing.quote([("B", 1)], "USD").shipping == Money.zero("USD")


def test_free_shipping_threshold_uses_the_discounted_subtotal_when_a_code_applies() -> None:
    pricing = Pricing(
        book_of(A="50.00"),
        discounts=PercentageDiscounts({"SAVE10": Decimal(10)}),
        shipping=FlatRateShipping(Money("4.99", "USD"), free_from=Money("50.00", "USD")),
    )
    assert pricing.quote([("A", 1)], "USD", discount_code="SAVE10").shipping == Money("4.99", "USD")


def test_currency_mismatch_error_when_shipping_is_priced_in_another_currency() -> None:
    pricing = Pricing(book_of(A="1.00"), shipping=FlatRateShipping(Money("4.99", "EUR")))
    with pytest.raises(CurrencyMismatchError):
        pricing.quote([("A", 1)], "USD")


def test_free_shipping_is_zero_when_used() -> None:
    assert FreeShipping().shipping([], Money("1.00", "GBP")) == Money.zero("GBP")


# --- bad input ------------------------------------------------------------------------------


def test_unknown_sku_error_when_the_price_book_has_no_price() -> None:
    with pytest.raises(UnknownSkuError) as caught:
        Pricing(book_of(A="1.00")).quote([("A", 1), ("B", 1)], "USD")
    assert caught.value.id == "B"


def test_unknown_sku_error_when_the_sku_is_priced_only_in_another_currency() -> None:
    with pytest.raises(UnknownSkuError):
        Pricing(book_of("EUR", A="1.00")).quote([("A", 1)], "USD")


def test_currency_mismatch_error_when_the_price_book_answers_in_another_currency() -> None:
    with pytest.raises(CurrencyMismatchError):
        Pricing(FakeEuroPriceBook()).quote([("A", 1)], "USD")


@pytest.mark.parametrize("currency", ["usd", "XXY", "", "US"])
def test_unknown_currency_error_when_the_currency_is_not_iso_4217(currency: str) -> None:
    with pytest.raises(UnknownCurrencyError):
        Pricing(book_of(A="1.00")).quote([("A", 1)], currency)


@pytest.mark.parametrize("quantity", [0, -1, 1_000_001, True])
def test_invalid_quantity_error_when_a_quantity_is_out_of_range(quantity: int) -> None:
    with pytest.raises(InvalidQuantityError):
        Pricing(book_of(A="1.00")).quote([("A", quantity)], "USD")


@pytest.mark.parametrize("sku", ["", " A", "A\x00", "ä"])
def test_invalid_identifier_error_when_a_sku_is_malformed(sku: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        Pricing(book_of(A="1.00")).quote([(sku, 1)], "USD")


def test_invalid_amount_error_when_a_tax_rate_is_a_float_or_negative() -> None:
    with pytest.raises(InvalidAmountError):
        FlatRateTax(0.2)  # type: ignore[arg-type]
    with pytest.raises(InvalidAmountError):
        FlatRateTax(Decimal("-0.1"))
    with pytest.raises(InvalidAmountError):
        FlatRateTax(Decimal("NaN"))


def test_no_tax_charges_nothing_when_used() -> None:
    line = PricedLine("A", "A", Money("1.00", "USD"), 2)
    assessment = NoTax().assess([line], "USD")
    assert assessment.per_line == (Money.zero("USD"),)
    assert assessment.inclusive is False


# --- the in-memory price book ----------------------------------------------------------------


def test_price_book_keeps_one_price_per_currency_when_prices_are_set() -> None:
    book = InMemoryPriceBook()
    book.set_price("A", "Apple", Money("1.00", "USD"))
    book.set_price("A", "Apple", Money("0.90", "EUR"))
    book.set_price("A", "Green apple", Money("1.10", "USD"))
    assert book.quote("A", "USD") == PriceQuote("A", "Green apple", Money("1.10", "USD"))
    assert book.quote("A", "EUR") == PriceQuote("A", "Apple", Money("0.90", "EUR"))
    book.remove("A")
    assert book.quote("A", "USD") is None
    assert book.quote("A", "EUR") is None


def test_price_book_refuses_the_price_when_it_is_negative_or_not_money() -> None:
    book = InMemoryPriceBook()
    with pytest.raises(InvalidAmountError):
        book.set_price("A", "Apple", Money("-1.00", "USD"))
    with pytest.raises(InvalidAmountError):
        book.set_price("A", "Apple", Decimal("1.00"))  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentifierError):
        book.set_price("A", "", Money("1.00", "USD"))


# --- properties -----------------------------------------------------------------------------

CURRENCIES = ["USD", "JPY", "KWD"]


@st.composite
def priced_orders(draw: st.DrawFn) -> tuple[Pricing, list[tuple[str, int]], str, str | None]:
    currency = draw(st.sampled_from(CURRENCIES))
    skus = draw(st.lists(st.sampled_from([f"SKU-{i}" for i in range(8)]), max_size=8))
    book = InMemoryPriceBook()
    for sku in set(skus):
        units = draw(st.integers(min_value=0, max_value=10**7))
        book.set_price(sku, sku, Money.from_minor_units(units, currency))
    lines = [(sku, draw(st.integers(min_value=1, max_value=999))) for sku in skus]
    rate = Decimal(draw(st.integers(min_value=0, max_value=30_000))).scaleb(-5)
    tax = FlatRateTax(rate, inclusive=draw(st.booleans()))
    percent = Decimal(draw(st.integers(min_value=1, max_value=10_000))).scaleb(-2)
    fee = Money.from_minor_units(draw(st.integers(min_value=0, max_value=10**4)), currency)
    free_from = draw(st.none() | st.integers(min_value=0, max_value=10**8))
    shipping = FlatRateShipping(
        fee, None if free_from is None else Money.from_minor_units(free_from, currency)
    )
    code = draw(st.sampled_from([None, "CODE"]))
    pricing = Pricing(book, tax, PercentageDiscounts({"CODE": percent}), shipping)
    return pricing, lines, currency, code


@given(priced_orders())
def test_total_is_the_sum_of_line_totals_plus_shipping_when_lines_are_random(
    order: tuple[Pricing, list[tuple[str, int]], str, str | None],
) -> None:
    pricing, lines, currency, code = order
    quote = pricing.quote(lines, currency, discount_code=code)
    assert quote.total == sum_money((line.total for line in quote.lines), currency) + (
        quote.shipping
    )
    assert sum_money((line.discount for line in quote.lines), currency) == quote.discount
    assert sum_money((line.tax for line in quote.lines), currency) == quote.tax
    assert sum_money((line.subtotal for line in quote.lines), currency) == quote.subtotal
    assert Money.zero(currency) <= quote.discount <= quote.subtotal
    for line in quote.lines:
        assert line.subtotal == line.unit_price * line.quantity
        assert Money.zero(currency) <= line.discount <= line.subtotal
        base = line.subtotal - line.discount
        assert line.total == (base if quote.tax_inclusive else base + line.tax)
        assert line.tax <= base or not quote.tax_inclusive
    assert sorted(line.sku for line in quote.lines) == sorted({sku for sku, _ in lines})

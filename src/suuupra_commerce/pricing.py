"""Quotes: turns SKUs and quantities into exact line and order totals from the pricing ports.

A :class:`Pricing` bundles the four ports a quote needs (see :mod:`suuupra_commerce.ports`): a
``PriceBook`` (where prices come from), a ``TaxPolicy``, a ``DiscountPolicy`` and a
``ShippingPolicy``; :meth:`Pricing.quote` combines them in one fixed order:

1. each line's ``subtotal`` is ``unit_price * quantity`` (exact);
2. the order discount (capped at the subtotal) is split over the lines in proportion to their
   subtotals with :meth:`Money.allocate`, so the line discounts add up to it exactly;
3. tax is assessed per line on ``subtotal - discount`` and rounded once per line;
4. a line's ``total`` is ``subtotal - discount``, plus its tax when tax is exclusive;
5. shipping is priced on the discounted subtotal;
6. the quote's ``total`` is the sum of the line totals plus shipping, exactly.

The simple policies a host can use as they are live here too: :class:`NoTax`,
:class:`FlatRateTax`, :class:`NoDiscounts`, :class:`PercentageDiscounts`, :class:`FreeShipping`
and :class:`FlatRateShipping`.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from suuupra_commerce.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    UnknownDiscountCodeError,
    UnknownSkuError,
)
from suuupra_commerce.money import Currency, Money, sum_money
from suuupra_commerce.ports import (
    DiscountPolicy,
    PriceBook,
    PricedLine,
    PriceQuote,
    ShippingPolicy,
    TaxAssessment,
    TaxPolicy,
)
from suuupra_commerce.values import check_identifier, check_quantity, check_sku

__all__ = [
    "FlatRateShipping",
    "FlatRateTax",
    "FreeShipping",
    "NoDiscounts",
    "NoTax",
    "PercentageDiscounts",
    "Pricing",
    "Quote",
    "QuotedLine",
]

MAX_TAX_RATE = Decimal(10)
"""The largest tax rate :class:`FlatRateTax` accepts (1000 %); anything above is a typo."""

_CONTEXT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class QuotedLine:
    """One priced line of a :class:`Quote`.

    ``subtotal`` is ``unit_price * quantity``; ``discount`` is the line's share of the order
    discount; ``tax`` is the tax on ``subtotal - discount``; ``total`` is ``subtotal - discount``
    plus ``tax`` when tax is exclusive (inclusive tax is already inside the price).
    """

    sku: str
    name: str
    unit_price: Money
    quantity: int
    subtotal: Money
    discount: Money
    tax: Money
    total: Money


@dataclass(frozen=True, slots=True)
class Quote:
    """Exact totals of a set of lines in one currency; ``total == sum(line totals) + shipping``.

    >>> from suuupra_commerce.adapters.memory import InMemoryPriceBook
    >>> book = InMemoryPriceBook()
    >>> book.set_price("TEE", "T-shirt", Money("10.00", "USD"))
    >>> quote = Pricing(book, tax=FlatRateTax(Decimal("0.2"))).quote([("TEE", 3)], "USD")
    >>> str(quote.subtotal), str(quote.tax), str(quote.total)
    ('30.00 USD', '6.00 USD', '36.00 USD')
    """

    currency: str
    lines: tuple[QuotedLine, ...]
    subtotal: Money
    discount: Money
    tax: Money
    shipping: Money
    total: Money
    tax_inclusive: bool
    discount_code: str | None


# --- default policies -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoTax:
    """A tax policy that charges no tax."""

    def assess(self, lines: Sequence[PricedLine], currency: str) -> TaxAssessment:
        """Zero tax on every line."""
        zero = Money.zero(currency)
        return TaxAssessment(per_line=tuple(zero for _ in lines), inclusive=False)


@dataclass(frozen=True, slots=True)
class FlatRateTax:
    """One tax rate for every line (``Decimal("0.2")`` is 20 %), rounded once per line.

    Exclusive (the default): the tax is added on top, ``base * rate``. Inclusive: the price
    already holds the tax, which is ``base - base / (1 + rate)``.

    >>> line = PricedLine("TEE", "T-shirt", Money("12.00", "EUR"), 1)
    >>> FlatRateTax(Decimal("0.2"), inclusive=True).assess([line], "EUR").per_line
    (Money('2.00', 'EUR'),)
    """

    rate: Decimal
    inclusive: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.rate, Decimal) or isinstance(self.rate, bool):
            what = type(self.rate).__name__
            raise InvalidAmountError(f"a tax rate must be a Decimal, not {what}")
        if not self.rate.is_finite() or not Decimal(0) <= self.rate <= MAX_TAX_RATE:
            msg = f"a tax rate must be between 0 and {MAX_TAX_RATE}: {self.rate}"
            raise InvalidAmountError(msg)

    def assess(self, lines: Sequence[PricedLine], currency: str) -> TaxAssessment:
        """The tax on each line's amount (``unit_price * quantity``), rounded once per line."""
        taxes = []
        for line in lines:
            base = line.subtotal.amount
            with decimal.localcontext(_CONTEXT):
                exact = base - base / (1 + self.rate) if self.inclusive else base * self.rate
            taxes.append(Money.rounded(exact, currency))
        return TaxAssessment(per_line=tuple(taxes), inclusive=self.inclusive)


@dataclass(frozen=True, slots=True)
class NoDiscounts:
    """A discount policy that knows no codes: every code is unknown."""

    def discount(self, code: str, lines: Sequence[PricedLine], subtotal: Money) -> Money | None:
        """Always ``None``."""
        return None


@dataclass(frozen=True)
class PercentageDiscounts:
    """Codes worth a percentage off the subtotal (``{"SAVE10": Decimal(10)}``), rounded once.

    >>> policy = PercentageDiscounts({"SAVE10": Decimal(10)})
    >>> policy.discount("SAVE10", [], Money("19.99", "USD"))
    Money('2.00', 'USD')
    """

    codes: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checked: dict[str, Decimal] = {}
        for code, percent in dict(self.codes).items():
            check_identifier(code, "discount code")
            if not isinstance(percent, Decimal) or not percent.is_finite():
                raise InvalidAmountError(f"discount {code!r} must be a finite Decimal percentage")
            if not Decimal(0) < percent <= Decimal(100):
                raise InvalidAmountError(f"discount {code!r} must be above 0 and at most 100 %")
            checked[code] = percent
        object.__setattr__(self, "codes", MappingProxyType(checked))

    def discount(self, code: str, lines: Sequence[PricedLine], subtotal: Money) -> Money | None:
        """``percent`` per cent of ``subtotal``, or ``None`` for an unknown code."""
        percent = self.codes.get(code)
        return None if percent is None else subtotal.percentage(percent)


@dataclass(frozen=True, slots=True)
class FreeShipping:
    """A shipping policy that never charges."""

    def shipping(self, lines: Sequence[PricedLine], subtotal: Money) -> Money:
        """Zero."""
        return Money.zero(subtotal.currency)


@dataclass(frozen=True, slots=True)
class FlatRateShipping:
    """One fee per order, waived when the (discounted) subtotal reaches ``free_from``.

    An order with no lines ships nothing and pays nothing.

    >>> policy = FlatRateShipping(Money("4.99", "USD"), free_from=Money("50.00", "USD"))
    >>> line = PricedLine("TEE", "T-shirt", Money("10.00", "USD"), 1)
    >>> policy.shipping([line], Money("10.00", "USD")), policy.shipping([line], Money("50", "USD"))
    (Money('4.99', 'USD'), Money('0.00', 'USD'))
    """

    fee: Money
    free_from: Money | None = None

    def __post_init__(self) -> None:
        if self.fee.is_negative():
            raise InvalidAmountError(f"a shipping fee must not be negative: {self.fee}")
        if self.free_from is not None and self.free_from.currency != self.fee.currency:
            raise CurrencyMismatchError(
                f"free_from is in {self.free_from.currency}, the fee in {self.fee.currency}"
            )

    def shipping(self, lines: Sequence[PricedLine], subtotal: Money) -> Money:
        """The fee, or zero for an empty order or one at or above ``free_from``."""
        if not lines:
            return Money.zero(subtotal.currency)
        if subtotal.currency != self.fee.currency:
            raise CurrencyMismatchError(
                f"shipping is priced in {self.fee.currency}, the order in {subtotal.currency}"
            )
        if self.free_from is not None and subtotal >= self.free_from:
            return Money.zero(subtotal.currency)
        return self.fee


# --- the quote ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pricing:
    """The pricing ports together, and the one way to turn lines into a :class:`Quote`."""

    price_book: PriceBook
    tax: TaxPolicy = NoTax()
    discounts: DiscountPolicy = NoDiscounts()
    shipping: ShippingPolicy = FreeShipping()

    def quote(
        self,
        lines: Sequence[tuple[str, int]],
        currency: str,
        *,
        discount_code: str | None = None,
    ) -> Quote:
        """Price ``(sku, quantity)`` lines in ``currency`` at the price book's current prices.

        Duplicate SKUs are merged (first position kept). Raises ``UnknownCurrencyError``,
        ``InvalidIdentifierError`` (bad SKU or code), ``InvalidQuantityError``,
        ``UnknownSkuError`` (not in the price book), ``CurrencyMismatchError`` (the price book
        or a policy answered in another currency) or ``UnknownDiscountCodeError``.
        """
        code = Currency.of(currency).code
        merged: dict[str, int] = {}
        for sku, quantity in lines:
            check_sku(sku)
            check_quantity(quantity)
            merged[sku] = check_quantity(merged.get(sku, 0) + quantity)
        priced = [self._priced_line(sku, quantity, code) for sku, quantity in merged.items()]
        subtotals = [line.subtotal for line in priced]
        subtotal = sum_money(subtotals, code)

        discount = Money.zero(code)
        if discount_code is not None:
            check_identifier(discount_code, "discount code")
            offered = self.discounts.discount(discount_code, priced, subtotal)
            if offered is None:
                raise UnknownDiscountCodeError(discount_code)
            _same_currency(offered, code, "the discount")
            if offered.is_negative():
                raise InvalidAmountError(f"discount {discount_code!r} is negative: {offered}")
            discount = min(offered, subtotal)
        if discount.is_zero():
            line_discounts = [Money.zero(code) for _ in priced]
        else:
            line_discounts = discount.allocate([s.minor_units for s in subtotals])

        bases = [s - d for s, d in zip(subtotals, line_discounts, strict=True)]
        # The tax policy sees each line's taxable base as one unit of (subtotal - discount).
        taxable = [
            PricedLine(line.sku, line.name, base, 1)
            for line, base in zip(priced, bases, strict=True)
        ]
        assessment = self.tax.assess(taxable, code)
        if len(assessment.per_line) != len(priced):
            msg = f"tax policy assessed {len(assessment.per_line)} lines, not {len(priced)}"
            raise ValueError(msg)
        for tax in assessment.per_line:
            _same_currency(tax, code, "the tax")
            if tax.is_negative():
                raise InvalidAmountError(f"the tax policy returned a negative tax: {tax}")

        quoted = tuple(
            QuotedLine(
                sku=line.sku,
                name=line.name,
                unit_price=line.unit_price,
                quantity=line.quantity,
                subtotal=sub,
                discount=disc,
                tax=tax,
                total=base if assessment.inclusive else base + tax,
            )
            for line, sub, disc, base, tax in zip(
                priced, subtotals, line_discounts, bases, assessment.per_line, strict=True
            )
        )
        shipping = self.shipping.shipping(priced, subtotal - discount)
        _same_currency(shipping, code, "shipping")
        if shipping.is_negative():
            raise InvalidAmountError(f"the shipping policy returned a negative charge: {shipping}")
        return Quote(
            currency=code,
            lines=quoted,
            subtotal=subtotal,
            discount=discount,
            tax=sum_money(assessment.per_line, code),
            shipping=shipping,
            total=sum_money((line.total for line in quoted), code) + shipping,
            tax_inclusive=assessment.inclusive,
            discount_code=discount_code,
        )

    def price_of(self, sku: str, currency: str) -> PriceQuote:
        """The price book's current price of ``sku`` in ``currency``, checked.

        ``UnknownSkuError`` if it is not sold, ``CurrencyMismatchError`` if the price book
        answers in another currency, ``InvalidAmountError`` for a negative price.
        """
        found = self.price_book.quote(sku, currency)
        if found is None:
            raise UnknownSkuError(sku)
        _same_currency(found.unit_price, currency, f"the price of {sku}")
        if found.unit_price.is_negative():
            raise InvalidAmountError(f"the price book holds a negative price for {sku}")
        return found

    def _priced_line(self, sku: str, quantity: int, currency: str) -> PricedLine:
        found = self.price_of(sku, currency)
        return PricedLine(sku, found.name, found.unit_price, quantity)


def _same_currency(money: Money, currency: str, what: str) -> None:
    if money.currency != currency:
        raise CurrencyMismatchError(f"{what} is in {money.currency}, the quote in {currency}")

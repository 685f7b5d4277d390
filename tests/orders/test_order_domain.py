"""The Order aggregate alone: the events each command records, what it refuses, and replay."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from order_builders import (
    Journal,
    assert_refused,
    names,
    new_price_book,
    order_in,
    payment_in,
    place,
    replayed,
    steps,
    through_json,
    usd,
)

from suuupra_commerce.errors import (
    CommerceError,
    CurrencyMismatchError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidQuantityError,
    RefundExceedsPaymentError,
)
from suuupra_commerce.money import Money
from suuupra_commerce.orders.domain import Order
from suuupra_commerce.orders.lifecycle import FulfilmentStatus, OrderStatus, PaymentStatus
from suuupra_commerce.orders.policy import StandardCancellationPolicy
from suuupra_commerce.pricing import FlatRateShipping, FlatRateTax, PercentageDiscounts, Pricing
from suuupra_commerce.testing import InMemoryPriceBook, state_of

OS = OrderStatus
PS = PaymentStatus
FS = FulfilmentStatus


def _captured(status: OrderStatus = OS.PROCESSING) -> Journal:
    """An order (2 x MUG-1, 1 x TEE-M: 38.99 USD) paid in full, then moved on to ``status``."""
    journal = payment_in(PS.CAPTURED)
    moves: dict[OrderStatus, Callable[[Order], object]] = {
        OS.CONFIRMED: lambda o: None,
        OS.PROCESSING: lambda o: o.start_fulfilment(),
        OS.SHIPPED: steps(
            lambda o: o.start_fulfilment(),
            lambda o: o.ship("parcel-1", {"MUG-1": 2, "TEE-M": 1}),
        ),
    }
    journal.run(moves[status])
    return journal


# --- placement -----------------------------------------------------------------------------------


def test_placed_event_snapshots_every_line_when_an_order_is_placed() -> None:
    pricing = Pricing(
        price_book=new_price_book(),
        tax=FlatRateTax(Decimal("0.0825")),
        discounts=PercentageDiscounts({"SAVE15": Decimal(15)}),
        shipping=FlatRateShipping(usd("4.99")),
    )
    quote = pricing.quote([("MUG-1", 3), ("TEE-M", 2)], "USD", discount_code="SAVE15")
    order_id = uuid4()

    order = Order.place(
        order_id=order_id,
        customer_id="cust-1",
        quote=quote,
        fingerprint="fp-1",
        idempotency_key="key-1",
    )

    [placed] = order.collect_events()
    assert isinstance(placed, Order.Placed)
    assert placed.originator_id == order_id
    assert (placed.customer_id, placed.currency, placed.discount_code) == (
        "cust-1",
        "USD",
        "SAVE15",
    )
    assert placed.lines == [
        {
            "sku": "MUG-1",
            "name": "Mug",
            "unit_price": {"amount": "9.50", "currency": "USD"},
            "quantity": 3,
            "subtotal": {"amount": "28.50", "currency": "USD"},
            "discount": {"amount": "4.27", "currency": "USD"},
            "tax": {"amount": "2.00", "currency": "USD"},
            "total": {"amount": "26.23", "currency": "USD"},
        },
        {
            "sku": "TEE-M",
            "name": "T-shirt, medium",
            "unit_price": {"amount": "19.99", "currency": "USD"},
            "quantity": 2,
            "subtotal": {"amount": "39.98", "currency": "USD"},
            "discount": {"amount": "6.00", "currency": "USD"},
            "tax": {"amount": "2.80", "currency": "USD"},
            "total": {"amount": "36.78", "currency": "USD"},
        },
    ]
    assert placed.shipping == {"amount": "4.99", "currency": "USD"}
    assert (order.subtotal, order.discount, order.tax) == (usd("68.48"), usd("10.27"), usd("4.80"))
    assert order.total == quote.total == usd("68.00")
    assert (order.status, order.payment_status, order.fulfilment_status) == (
        OS.PENDING,
        PS.PENDING,
        FS.UNFULFILLED,
    )


def test_order_keeps_its_prices_when_the_price_book_changes_after_placement() -> None:
    book = new_price_book()
    pricing = Pricing(price_book=book)
    journal = place(pricing=pricing)
    before = state_of(journal.order)

    book.set_price("MUG-1", "Mug, new and improved", usd("99.00"))
    book.remove("TEE-M")

    assert pricing.quote([("MUG-1", 2)], "USD").total == usd("198.00")  # the book did change
    assert state_of(journal.order) == before
    line = journal.order.lines["MUG-1"]
    assert (line.name, line.unit_price, line.total) == ("Mug", usd("9.50"), usd("19.00"))
    assert journal.order.total == usd("38.99")
    assert state_of(replayed(through_json(journal.events))) == before


def test_stock_reserved_recorded_once_when_noted_twice() -> None:
    journal = place()

    journal.order.record_stock_reserved([])

    assert journal.take() == []
    assert names(journal.events) == ["Placed", "StockReserved"]
    assert journal.order.skus_holding_stock() == ["MUG-1", "TEE-M"]


# --- events recorded per command -----------------------------------------------------------------

COMMANDS: list[Any] = [
    pytest.param(lambda: order_in(OS.PENDING), lambda o: o.confirm(), ["Confirmed"], id="confirm"),
    pytest.param(
        lambda: order_in(OS.CONFIRMED),
        lambda o: o.start_fulfilment(),
        ["FulfilmentStarted"],
        id="start_fulfilment",
    ),
    pytest.param(
        lambda: order_in(OS.PROCESSING),
        lambda o: o.ship("p-9", {"MUG-1": 2, "TEE-M": 1}, "ups", "1Z999"),
        ["Shipped"],
        id="ship",
    ),
    pytest.param(lambda: order_in(OS.SHIPPED), lambda o: o.deliver(), ["Delivered"], id="deliver"),
    pytest.param(
        lambda: order_in(OS.DELIVERED), lambda o: o.complete(), ["Completed"], id="complete"
    ),
    pytest.param(
        lambda: payment_in(PS.PENDING),
        lambda o: o.authorize_payment("auth-9"),
        ["PaymentAuthorized"],
        id="authorize",
    ),
    pytest.param(
        lambda: payment_in(PS.AUTHORIZED),
        lambda o: o.capture_payment(),
        ["PaymentCaptured"],
        id="capture",
    ),
    pytest.param(
        lambda: payment_in(PS.PENDING),
        lambda o: o.fail_payment("card declined"),
        ["PaymentFailed"],
        id="fail_payment",
    ),
    pytest.param(
        lambda: payment_in(PS.AUTHORIZED),
        lambda o: o.void_payment(),
        ["PaymentVoided"],
        id="void",
    ),
    pytest.param(
        lambda: payment_in(PS.CAPTURED),
        lambda o: o.initiate_refund("rf-9", usd("1.00"), "goodwill"),
        ["RefundInitiated"],
        id="initiate_refund",
    ),
    pytest.param(
        lambda: order_in(OS.PENDING),
        lambda o: o.cancel(StandardCancellationPolicy(), "changed mind", "customer"),
        ["StockReleased", "Cancelled"],
        id="cancel",
    ),
    pytest.param(
        lambda: order_in(OS.PROCESSING),
        lambda o: o.cancel(StandardCancellationPolicy(), "changed mind", "customer"),
        ["CancellationRequested"],
        id="request_cancellation",
    ),
    pytest.param(
        lambda: order_in(OS.CANCELLATION_REQUESTED),
        lambda o: o.approve_cancellation(StandardCancellationPolicy(), "operator-1"),
        ["CancellationApproved", "StockReleased", "Cancelled"],
        id="approve_cancellation",
    ),
    pytest.param(
        lambda: order_in(OS.CANCELLATION_REQUESTED),
        lambda o: o.reject_cancellation("already packed", "operator-1"),
        ["CancellationRejected"],
        id="reject_cancellation",
    ),
    pytest.param(
        lambda: order_in(OS.SHIPPED),
        lambda o: o.request_return("ret-9", {"MUG-1": 1}, "too small"),
        ["ReturnRequested"],
        id="request_return",
    ),
]


@pytest.mark.parametrize(("build", "change", "expected"), COMMANDS)
def test_command_records_its_events_when_it_is_allowed(
    build: Callable[[], Journal], change: Callable[[Order], object], expected: list[str]
) -> None:
    journal = build()
    version = journal.order.version

    events = journal.run(change)

    assert names(events) == expected
    assert [e.originator_version for e in events] == list(
        range(version + 1, version + 1 + len(events))
    )
    assert state_of(replayed(through_json(journal.events))) == state_of(journal.order)


def test_events_carry_the_status_they_lead_to_when_status_moves() -> None:
    journal = order_in(OS.PROCESSING)

    [shipped] = journal.run(lambda o: o.ship("p-1", {"MUG-1": 1}, "ups", "1Z1"))
    [authorized] = journal.run(lambda o: o.authorize_payment("auth-1"))

    assert isinstance(shipped, Order.Shipped)
    assert (shipped.shipment_id, shipped.lines, shipped.status) == (
        "p-1",
        {"MUG-1": 1},
        "partially_shipped",
    )
    assert (shipped.carrier, shipped.tracking_number) == ("ups", "1Z1")
    assert isinstance(authorized, Order.PaymentAuthorized)
    assert authorized.amount == {"amount": "38.99", "currency": "USD"}
    assert (authorized.reference, authorized.payment_status) == ("auth-1", "authorized")


# --- shipments -----------------------------------------------------------------------------------


def test_partially_shipped_then_shipped_when_units_leave_in_several_parcels() -> None:
    journal = order_in(OS.PROCESSING)
    order = journal.order

    journal.run(lambda o: o.ship("p-1", {"MUG-1": 1}))
    assert (order.status, order.fulfilment_status) == (OS.PARTIALLY_SHIPPED, FS.PARTIALLY_FULFILLED)
    assert order.skus_holding_stock() == ["MUG-1", "TEE-M"]

    journal.run(lambda o: o.ship("p-2", {"MUG-1": 1}))
    assert (order.status, order.fulfilment_status) == (OS.PARTIALLY_SHIPPED, FS.PARTIALLY_FULFILLED)
    assert order.skus_holding_stock() == ["TEE-M"]

    assert order.plan_shipment("p-3", None) == {"TEE-M": 1}
    journal.run(lambda o: o.ship("p-3", {"TEE-M": 1}))
    assert (order.status, order.fulfilment_status) == (OS.SHIPPED, FS.FULFILLED)
    assert order.skus_holding_stock() == []
    assert {sku: line.shipped for sku, line in order.lines.items()} == {"MUG-1": 2, "TEE-M": 1}
    assert sorted(order.shipments) == ["p-1", "p-2", "p-3"]
    assert order.history == ["pending", "confirmed", "processing", "partially_shipped", "shipped"]


def test_nothing_more_shipped_when_a_shipment_is_repeated() -> None:
    journal = order_in(OS.PROCESSING)
    journal.run(lambda o: o.ship("p-1", {"MUG-1": 1}))

    assert journal.order.plan_shipment("p-1", {"MUG-1": 1}) == {}
    assert journal.order.plan_shipment("p-1", None) == {}
    journal.order.ship("p-1", {"MUG-1": 1})

    assert journal.take() == []
    assert journal.order.lines["MUG-1"].shipped == 1


# --- refunds -------------------------------------------------------------------------------------


def test_refund_initiated_then_completed_when_part_of_the_capture_is_refunded() -> None:
    journal = _captured()
    order = journal.order

    assert order.initiate_refund("rf-1", usd("10.00"), "scratched") is True
    [initiated] = journal.take()
    assert isinstance(initiated, Order.RefundInitiated)
    assert (initiated.refund_id, initiated.amount) == (
        "rf-1",
        {"amount": "10.00", "currency": "USD"},
    )
    assert (order.refund_pending, order.refundable) == (usd("10.00"), usd("28.99"))
    assert order.payment_status == "captured"

    order.complete_refund("rf-1")

    assert names(journal.take()) == ["RefundCompleted"]
    assert (order.refunded, order.refund_pending, order.refundable) == (
        usd("10.00"),
        usd("0.00"),
        usd("28.99"),
    )
    assert order.payment_status is PS.PARTIALLY_REFUNDED


def test_refunded_when_partial_refunds_add_up_to_the_capture() -> None:
    journal = _captured()

    journal.run(
        lambda o: o.initiate_refund("rf-1", usd("10.00"), "scratched"),
        lambda o: o.initiate_refund("rf-2", usd("28.99"), "returned"),
        lambda o: o.complete_refund("rf-2"),
    )
    assert journal.order.payment_status == "partially_refunded"
    journal.run(lambda o: o.complete_refund("rf-1"))

    assert journal.order.payment_status is PS.REFUNDED
    assert journal.order.refunded == journal.order.captured == usd("38.99")
    assert journal.order.refundable == usd("0.00")


def test_amount_refundable_again_when_a_refund_fails() -> None:
    journal = _captured()
    journal.run(lambda o: o.initiate_refund("rf-1", usd("38.99"), "returned"))
    assert journal.order.refundable == usd("0.00")

    journal.run(lambda o: o.fail_refund("rf-1", "gateway down"))

    assert names(journal.events[-1:]) == ["RefundFailed"]
    assert journal.order.refunds["rf-1"].status == "failed"
    assert (journal.order.refundable, journal.order.refunded) == (usd("38.99"), usd("0.00"))
    assert journal.order.payment_status is PS.CAPTURED
    journal.run(lambda o: o.fail_refund("rf-1", "gateway down"))
    assert names(journal.events[-1:]) == ["RefundFailed"]  # the repeat recorded nothing
    journal.run(lambda o: o.initiate_refund("rf-2", usd("38.99"), "returned"))
    assert journal.order.refund_pending == usd("38.99")


@pytest.mark.parametrize("amount", [usd("10.00"), usd("10"), Money("10.000", "USD")])
def test_nothing_recorded_when_a_refund_is_repeated_with_the_same_amount(amount: Money) -> None:
    journal = _captured()
    journal.run(lambda o: o.initiate_refund("rf-1", usd("10.00"), "scratched"))

    assert journal.order.initiate_refund("rf-1", amount, "scratched") is False

    assert journal.take() == []
    assert journal.order.refund_pending == usd("10.00")


def test_nothing_recorded_when_a_completed_refund_completes_again() -> None:
    journal = _captured()
    journal.run(
        lambda o: o.initiate_refund("rf-1", usd("10.00"), "scratched"),
        lambda o: o.complete_refund("rf-1"),
    )

    journal.order.complete_refund("rf-1")

    assert journal.take() == []
    assert journal.order.refunded == usd("10.00")


def test_refund_in_flight_kept_and_fee_withheld_when_the_order_is_cancelled() -> None:
    journal = _captured()  # 38.99 captured; 5 % fee = 1.9495 -> 1.95
    journal.run(lambda o: o.initiate_refund("rf-1", usd("5.00"), "scratched"))

    journal.run(
        lambda o: o.cancel(StandardCancellationPolicy(), "changed mind", "customer"),
        lambda o: o.approve_cancellation(StandardCancellationPolicy(), "operator-1"),
    )

    refunds = journal.order.refunds
    assert (refunds["rf-1"].amount, refunds["rf-1"].status) == (usd("5.00"), "initiated")
    assert refunds["cancellation"].amount == usd("32.04")  # 38.99 - 5.00 - 1.95
    assert journal.order.refundable == journal.order.cancellation_fee == usd("1.95")


# --- returns -------------------------------------------------------------------------------------


def test_return_requested_approved_and_received_when_customer_sends_units_back() -> None:
    journal = _captured(OS.SHIPPED)
    order = journal.order

    journal.run(lambda o: o.request_return("ret-1", {"MUG-1": 1}, "too small"))
    assert order.lines["MUG-1"].returnable == 1
    assert order.returns["ret-1"].status == "requested"
    journal.run(lambda o: o.approve_return("ret-1"))
    assert order.returns["ret-1"].status == "approved"

    value = order.receive_return("ret-1")

    received, refund = journal.take()
    assert value == usd("9.50")
    assert isinstance(received, Order.ReturnReceived)
    assert (received.refund, received.status) == (value.to_dict(), "partially_returned")
    assert isinstance(refund, Order.RefundInitiated)
    assert (refund.refund_id, refund.amount) == ("return/ret-1", value.to_dict())
    assert (order.status, order.fulfilment_status) == (OS.PARTIALLY_RETURNED, FS.PARTIALLY_RETURNED)
    assert (order.lines["MUG-1"].returned, order.lines["MUG-1"].returnable) == (1, 1)


def test_returned_when_every_unit_has_come_back() -> None:
    journal = _captured(OS.SHIPPED)

    journal.run(
        lambda o: o.request_return("ret-1", {"MUG-1": 1}, "too small"),
        lambda o: o.request_return("ret-2", {"MUG-1": 1, "TEE-M": 1}, "too small"),
        lambda o: o.approve_return("ret-2"),
        lambda o: o.approve_return("ret-1"),
        lambda o: o.receive_return("ret-2"),
    )
    assert journal.order.status is OS.PARTIALLY_RETURNED
    journal.run(lambda o: o.receive_return("ret-1"))

    assert (journal.order.status, journal.order.fulfilment_status) == (OS.RETURNED, FS.RETURNED)
    assert journal.order.refund_pending == usd("38.99")
    assert journal.order.refundable == usd("0.00")


def test_units_returnable_again_when_a_return_is_rejected() -> None:
    journal = order_in(OS.SHIPPED)
    journal.run(lambda o: o.request_return("ret-1", {"MUG-1": 2}, "too small"))
    assert journal.order.lines["MUG-1"].returnable == 0

    events = journal.run(lambda o: o.reject_return("ret-1", "worn"))

    assert names(events) == ["ReturnRejected"]
    assert journal.order.returns["ret-1"].status == "rejected"
    assert journal.order.lines["MUG-1"].returnable == 2
    assert journal.order.status is OS.SHIPPED
    journal.run(lambda o: o.reject_return("ret-1", "worn"))
    assert names(journal.events[-1:]) == ["ReturnRejected"]  # the repeat recorded nothing


def test_nothing_recorded_and_zero_value_when_a_return_is_received_twice() -> None:
    journal = order_in(OS.SHIPPED)
    journal.run(
        lambda o: o.request_return("ret-1", {"MUG-1": 1}, "too small"),
        lambda o: o.approve_return("ret-1"),
        lambda o: o.receive_return("ret-1"),
    )

    assert journal.order.receive_return("ret-1") == usd("0.00")
    journal.order.request_return("ret-1", {"MUG-1": 1}, "too small")

    assert journal.take() == []
    assert journal.order.lines["MUG-1"].returned == 1


def test_no_refund_when_a_return_of_an_unpaid_order_is_received() -> None:
    journal = order_in(OS.SHIPPED)

    journal.run(
        lambda o: o.request_return("ret-1", {"TEE-M": 1}, "too small"),
        lambda o: o.approve_return("ret-1"),
    )
    events = journal.run(lambda o: o.receive_return("ret-1"))

    assert names(events) == ["ReturnReceived"]
    assert journal.order.refunds == {}


@st.composite
def _return_parts(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    quantity = draw(st.integers(1, 40))
    cents = draw(st.integers(1, 250_000))
    cuts = draw(st.sets(st.integers(1, quantity - 1))) if quantity > 1 else set()
    bounds = [0, *sorted(cuts), quantity]
    return quantity, cents, [b - a for a, b in itertools.pairwise(bounds)]


@hypothesis_settings(max_examples=60, deadline=None)
@given(case=_return_parts(), tax=st.sampled_from(["0", "0.0825", "0.2"]), coded=st.booleans())
def test_returned_parts_add_up_to_the_line_total_when_a_line_comes_back_in_any_parts(
    case: tuple[int, int, list[int]], tax: str, coded: bool
) -> None:
    quantity, cents, parts = case
    book = InMemoryPriceBook()
    book.set_price("ODD-1", "Odd item", Money.from_minor_units(cents, "USD"))
    book.set_price("CAP-1", "Cap", usd("12.00"))
    pricing = Pricing(
        price_book=book,
        tax=FlatRateTax(Decimal(tax)),
        discounts=PercentageDiscounts({"SAVE7": Decimal("7.5")}),
    )
    quote = pricing.quote(
        [("ODD-1", quantity), ("CAP-1", 1)], "USD", discount_code="SAVE7" if coded else None
    )
    order = Order.place(order_id=uuid4(), customer_id="c-1", quote=quote, fingerprint="fp")
    order.confirm()
    order.authorize_payment("auth-1")
    order.capture_payment()
    order.start_fulfilment()
    order.ship("p-1", order.plan_shipment("p-1", None))

    values = []
    for number, units in enumerate(parts):
        order.request_return(f"ret-{number}", {"ODD-1": units}, "bulk return")
        order.approve_return(f"ret-{number}")
        values.append(order.receive_return(f"ret-{number}"))

    line_total = order.lines["ODD-1"].total
    assert sum(values, Money.zero("USD")) == line_total
    assert all(not value.is_negative() for value in values)
    refunds = [r.amount for rid, r in order.refunds.items() if rid.startswith("return/")]
    assert sum(refunds, Money.zero("USD")) == line_total
    assert order.lines["ODD-1"].returned == quantity
    assert order.status is OS.PARTIALLY_RETURNED  # the cap is still out there


# --- replay --------------------------------------------------------------------------------------


def test_replay_equals_live_when_an_order_has_lived_a_long_life() -> None:
    journal = place((("MUG-1", 3), ("TEE-M", 2), ("CAP-1", 1)))
    journal.run(
        lambda o: o.fail_payment("card declined"),
        lambda o: o.authorize_payment("auth-2"),
        lambda o: o.confirm(),
        lambda o: o.capture_payment(),
        lambda o: o.start_fulfilment(),
        lambda o: o.cancel(StandardCancellationPolicy(), "changed mind", "customer"),
        lambda o: o.reject_cancellation("already packed", "operator-1"),
        lambda o: o.ship("p-1", {"MUG-1": 1}, "ups", "1Z1"),
        lambda o: o.ship("p-2", {"MUG-1": 2, "TEE-M": 1}, "dhl", "JD2"),
        lambda o: o.ship("p-3", o.plan_shipment("p-3", None)),
        lambda o: o.deliver(),
        lambda o: o.initiate_refund("rf-1", usd("5.00"), "late delivery"),
        lambda o: o.fail_refund("rf-1", "gateway down"),
        lambda o: o.initiate_refund("rf-2", usd("5.00"), "late delivery"),
        lambda o: o.complete_refund("rf-2"),
        lambda o: o.request_return("ret-1", {"TEE-M": 2}, "too small"),
        lambda o: o.reject_return("ret-1", "worn"),
        lambda o: o.request_return("ret-2", {"TEE-M": 1, "MUG-1": 2}, "too small"),
        lambda o: o.approve_return("ret-2"),
        lambda o: o.receive_return("ret-2"),
        lambda o: o.complete_refund("return/ret-2"),
        lambda o: o.request_return("ret-3", {"CAP-1": 1}, "wrong colour"),
        lambda o: o.approve_return("ret-3"),
    )
    live = journal.order
    assert len(journal.events) == 26
    assert len({type(e) for e in journal.events}) == 18

    assert state_of(replayed(journal.events)) == state_of(live)
    rebuilt = replayed(through_json(journal.events))
    assert state_of(rebuilt) == state_of(live)
    assert rebuilt.version == live.version == 26
    assert (rebuilt.status, rebuilt.payment_status, rebuilt.fulfilment_status) == (
        OS.PARTIALLY_RETURNED,
        PS.PARTIALLY_REFUNDED,
        FS.PARTIALLY_RETURNED,
    )
    # 80.48 captured; refunded 5.00 (rf-2) + 19.99 + 2 x 9.50 (ret-2)
    assert (rebuilt.refunded, rebuilt.refundable) == (usd("43.99"), usd("36.49"))


# --- refusals ------------------------------------------------------------------------------------


def _after(
    build: Callable[[], Journal], *changes: Callable[[Order], object]
) -> Callable[[], Journal]:
    def built() -> Journal:
        journal = build()
        journal.run(*changes)
        return journal

    return built


_requested = _after(
    lambda: order_in(OS.SHIPPED), lambda o: o.request_return("ret-1", {"MUG-1": 1}, "x")
)
_rejected = _after(_requested, lambda o: o.reject_return("ret-1", "worn"))
_refund_failed = _after(
    _captured,
    lambda o: o.initiate_refund("rf-1", usd("1.00"), "x"),
    lambda o: o.fail_refund("rf-1", "gateway down"),
)
_refund_completed = _after(
    _captured,
    lambda o: o.initiate_refund("rf-1", usd("1.00"), "x"),
    lambda o: o.complete_refund("rf-1"),
)

REFUSALS: list[Any] = [
    # placement and shipping
    pytest.param(
        lambda: order_in(OS.PENDING),
        lambda o: o.ship("p-1", {"MUG-1": 1}),
        IllegalTransitionError,
        id="ship-before-processing",
    ),
    pytest.param(
        lambda: order_in(OS.PROCESSING),
        lambda o: o.ship("p-1", {"MUG-1": 3}),
        InvalidQuantityError,
        id="ship-more-than-ordered",
    ),
    pytest.param(
        lambda: order_in(OS.PROCESSING),
        lambda o: o.ship("p-1", {"CAP-1": 1}),
        InvalidInputError,
        id="ship-a-sku-not-ordered",
    ),
    pytest.param(
        lambda: order_in(OS.PROCESSING),
        lambda o: o.ship("p-1", {"MUG-1": 0}),
        InvalidQuantityError,
        id="ship-zero-units",
    ),
    pytest.param(
        lambda: order_in(OS.PROCESSING),
        lambda o: o.ship("p-1", {}),
        InvalidQuantityError,
        id="ship-nothing",
    ),
    pytest.param(
        lambda: order_in(OS.PARTIALLY_SHIPPED),
        lambda o: o.ship("parcel-1", {"TEE-M": 1}),
        IdempotencyKeyReusedError,
        id="shipment-id-reused-for-other-lines",
    ),
    pytest.param(
        lambda: order_in(OS.SHIPPED),
        lambda o: o.plan_shipment("p-2", None),
        IllegalTransitionError,
        id="ship-a-shipped-order",
    ),
    pytest.param(
        lambda: order_in(OS.PROCESSING),
        lambda o: o.ship("p-1", {"MUG-1": 1}, carrier=" ups"),
        InvalidIdentifierError,
        id="carrier-with-whitespace",
    ),
    # payment and refunds
    pytest.param(
        lambda: payment_in(PS.AUTHORIZED),
        lambda o: o.authorize_payment("auth-2"),
        IllegalTransitionError,
        id="authorize-twice",
    ),
    pytest.param(
        lambda: payment_in(PS.AUTHORIZED),
        lambda o: o.initiate_refund("rf-1", usd("1.00"), "goodwill"),
        IllegalTransitionError,
        id="refund-before-capture",
    ),
    pytest.param(
        lambda: _captured(),
        lambda o: o.initiate_refund("rf-1", usd("39.00"), "goodwill"),
        RefundExceedsPaymentError,
        id="refund-more-than-captured",
    ),
    pytest.param(
        _after(_captured, lambda o: o.initiate_refund("rf-1", usd("30.00"), "x")),
        lambda o: o.initiate_refund("rf-2", usd("9.00"), "goodwill"),
        RefundExceedsPaymentError,
        id="refund-more-than-left-after-pending",
    ),
    pytest.param(
        lambda: _captured(),
        lambda o: o.initiate_refund("rf-1", Money("1.00", "EUR"), "goodwill"),
        CurrencyMismatchError,
        id="refund-in-another-currency",
    ),
    pytest.param(
        lambda: _captured(),
        lambda o: o.initiate_refund("rf-1", usd("0.00"), "goodwill"),
        InvalidInputError,
        id="refund-of-nothing",
    ),
    pytest.param(
        lambda: _captured(),
        lambda o: o.initiate_refund("rf-1", usd("-1.00"), "goodwill"),
        InvalidInputError,
        id="negative-refund",
    ),
    pytest.param(
        lambda: _captured(),
        lambda o: o.complete_refund("rf-unknown"),
        InvalidInputError,
        id="complete-an-unknown-refund",
    ),
    pytest.param(
        _after(_captured, lambda o: o.initiate_refund("rf-1", usd("10.00"), "x")),
        lambda o: o.initiate_refund("rf-1", usd("10.01"), "x"),
        IdempotencyKeyReusedError,
        id="refund-id-reused-with-another-amount",
    ),
    pytest.param(
        _captured,
        lambda o: o.initiate_refund("cancellation", usd("1.00"), "x"),
        InvalidIdentifierError,
        id="refund-id-reserved-for-cancellation",
    ),
    pytest.param(
        _captured,
        lambda o: o.initiate_refund("return/ret-1", usd("1.00"), "x"),
        InvalidIdentifierError,
        id="refund-id-reserved-for-returns",
    ),
    pytest.param(
        _refund_failed,
        lambda o: o.complete_refund("rf-1"),
        IllegalTransitionError,
        id="complete-a-failed-refund",
    ),
    pytest.param(
        _refund_completed,
        lambda o: o.fail_refund("rf-1", "gateway down"),
        IllegalTransitionError,
        id="fail-a-completed-refund",
    ),
    # returns
    pytest.param(
        lambda: order_in(OS.SHIPPED),
        lambda o: o.request_return("ret-1", {"MUG-1": 3}, "too small"),
        InvalidQuantityError,
        id="return-more-than-shipped",
    ),
    pytest.param(
        lambda: order_in(OS.PARTIALLY_RETURNED),
        lambda o: o.request_return("ret-2", {"MUG-1": 2}, "too small"),
        InvalidQuantityError,
        id="return-more-than-left-after-a-return",
    ),
    pytest.param(
        lambda: order_in(OS.SHIPPED),
        lambda o: o.request_return("ret-1", {"CAP-1": 1}, "too small"),
        InvalidInputError,
        id="return-a-sku-not-ordered",
    ),
    pytest.param(
        lambda: order_in(OS.SHIPPED),
        lambda o: o.request_return("ret-1", {}, "too small"),
        InvalidQuantityError,
        id="return-nothing",
    ),
    pytest.param(
        lambda: order_in(OS.PARTIALLY_SHIPPED),
        lambda o: o.request_return("ret-1", {"MUG-1": 1}, "too small"),
        IllegalTransitionError,
        id="return-before-everything-shipped",
    ),
    pytest.param(
        lambda: order_in(OS.PARTIALLY_RETURNED),
        lambda o: o.request_return("ret-1", {"TEE-M": 1}, "too small"),
        IdempotencyKeyReusedError,
        id="return-id-reused-for-other-lines",
    ),
    pytest.param(
        _requested,
        lambda o: o.receive_return("ret-1"),
        IllegalTransitionError,
        id="receive-unapproved",
    ),
    pytest.param(
        _rejected,
        lambda o: o.approve_return("ret-1"),
        IllegalTransitionError,
        id="approve-rejected",
    ),
    pytest.param(
        _rejected,
        lambda o: o.receive_return("ret-1"),
        IllegalTransitionError,
        id="receive-rejected",
    ),
    pytest.param(
        _after(_requested, lambda o: o.approve_return("ret-1")),
        lambda o: o.reject_return("ret-1", "worn"),
        IllegalTransitionError,
        id="reject-approved",
    ),
    pytest.param(
        lambda: order_in(OS.SHIPPED),
        lambda o: o.approve_return("ret-unknown"),
        InvalidInputError,
        id="approve-an-unknown-return",
    ),
    pytest.param(
        _after(lambda: order_in(OS.SHIPPED), lambda o: o.request_return("r", {"MUG-1": 1}, "x")),
        lambda o: o.request_return("r-2", {"MUG-1": 2}, "too small"),
        InvalidQuantityError,
        id="return-more-than-left-after-a-pending-return",
    ),
]


@pytest.mark.parametrize(("build", "change", "error"), REFUSALS)
def test_nothing_recorded_when_a_command_is_refused(
    build: Callable[[], Journal],
    change: Callable[[Order], object],
    error: type[CommerceError],
) -> None:
    journal = build()
    assert_refused(journal.order, error, lambda: change(journal.order))


def test_invalid_input_error_when_a_quote_has_no_lines() -> None:
    empty = Pricing(price_book=new_price_book()).quote([], "USD")

    with pytest.raises(InvalidInputError, match="at least one line"):
        Order.place(order_id=uuid4(), customer_id="c-1", quote=empty, fingerprint="fp")


@pytest.mark.parametrize(
    ("customer_id", "fingerprint", "key"),
    [("", "fp", None), ("c-1", "", None), ("c-1", "fp", "key\x00"), ("c-1", "fp", " key")],
)
def test_invalid_identifier_error_when_an_order_is_placed_with_a_bad_identifier(
    customer_id: str, fingerprint: str, key: str | None
) -> None:
    with pytest.raises(InvalidIdentifierError):
        Order.place(
            order_id=uuid4(),
            customer_id=customer_id,
            quote=Pricing(price_book=new_price_book()).quote([("MUG-1", 1)], "USD"),
            fingerprint=fingerprint,
            idempotency_key=key,
        )

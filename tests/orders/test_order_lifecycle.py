"""The order and payment lifecycles, pair by pair, and the cancellation policy.

The expected tables below are written out from the documented lifecycle (DOMAIN.md and
the ``lifecycle`` module's docstring), not read back from ``ORDER_LIFECYCLE``, so that a
change to the implemented table shows up here as a failing pair.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from order_builders import (
    APPROVAL,
    IMMEDIATE,
    Journal,
    assert_refused,
    names,
    new_price_book,
    order_in,
    payment_in,
    replayed,
    steps,
    usd,
)

from suuupra_commerce.errors import (
    CancellationNotAllowedError,
    CommerceError,
    CurrencyMismatchError,
    IllegalTransitionError,
    InvalidInputError,
    RefundExceedsPaymentError,
)
from suuupra_commerce.inventory.commands import RegisterItem
from suuupra_commerce.inventory.service import Inventory
from suuupra_commerce.money import Money
from suuupra_commerce.orders.commands import (
    ApproveCancellation,
    AuthorizePayment,
    CancelOrder,
    CapturePayment,
    ConfirmOrder,
    OrderLineRequest,
    PlaceOrder,
    StartFulfilment,
)
from suuupra_commerce.orders.domain import Order
from suuupra_commerce.orders.lifecycle import (
    ORDER_LIFECYCLE,
    PAYMENT_LIFECYCLE,
    OrderStatus,
    PaymentStatus,
)
from suuupra_commerce.orders.policy import (
    CancellationDecision,
    CancellationPolicy,
    StandardCancellationPolicy,
)
from suuupra_commerce.orders.service import Orders
from suuupra_commerce.pricing import Pricing
from suuupra_commerce.testing import FakeClock, state_of

OS = OrderStatus
PS = PaymentStatus

AFTER_SHIPPING = (OS.SHIPPED, OS.DELIVERED, OS.COMPLETED, OS.PARTIALLY_RETURNED)

DOCUMENTED_ORDER_MOVES: dict[tuple[OrderStatus, str], OrderStatus] = {
    (OS.PENDING, "confirm"): OS.CONFIRMED,
    (OS.CONFIRMED, "start_fulfilment"): OS.PROCESSING,
    (OS.PROCESSING, "ship_partially"): OS.PARTIALLY_SHIPPED,
    (OS.PARTIALLY_SHIPPED, "ship_partially"): OS.PARTIALLY_SHIPPED,
    (OS.PROCESSING, "ship"): OS.SHIPPED,
    (OS.PARTIALLY_SHIPPED, "ship"): OS.SHIPPED,
    (OS.SHIPPED, "deliver"): OS.DELIVERED,
    (OS.DELIVERED, "complete"): OS.COMPLETED,
    (OS.PENDING, "cancel"): OS.CANCELLED,
    (OS.CONFIRMED, "cancel"): OS.CANCELLED,
    (OS.PROCESSING, "request_cancellation"): OS.CANCELLATION_REQUESTED,
    (OS.CANCELLATION_REQUESTED, "approve_cancellation"): OS.CANCELLED,
    (OS.CANCELLATION_REQUESTED, "reject_cancellation"): OS.PROCESSING,
    **{(s, "request_return"): s for s in AFTER_SHIPPING},
    **{(s, "receive_return_partially"): OS.PARTIALLY_RETURNED for s in AFTER_SHIPPING},
    **{(s, "receive_return"): OS.RETURNED for s in AFTER_SHIPPING},
}

DOCUMENTED_PAYMENT_MOVES: dict[tuple[PaymentStatus, str], PaymentStatus] = {
    (PS.PENDING, "authorize"): PS.AUTHORIZED,
    (PS.FAILED, "authorize"): PS.AUTHORIZED,
    (PS.PENDING, "fail"): PS.FAILED,
    (PS.AUTHORIZED, "fail"): PS.FAILED,
    (PS.AUTHORIZED, "capture"): PS.CAPTURED,
    (PS.AUTHORIZED, "void"): PS.VOIDED,
    (PS.CAPTURED, "refund_partially"): PS.PARTIALLY_REFUNDED,
    (PS.PARTIALLY_REFUNDED, "refund_partially"): PS.PARTIALLY_REFUNDED,
    (PS.CAPTURED, "refund"): PS.REFUNDED,
    (PS.PARTIALLY_REFUNDED, "refund"): PS.REFUNDED,
}

ORDER_TRIGGERS = sorted({trigger for _, trigger in DOCUMENTED_ORDER_MOVES})
PAYMENT_TRIGGERS = sorted({trigger for _, trigger in DOCUMENTED_PAYMENT_MOVES})


def _pairs(
    statuses: type[OrderStatus] | type[PaymentStatus],
    triggers: list[str],
    moves: Mapping[tuple[Any, str], Any],
    *,
    allowed: bool,
    exclude: Collection[tuple[Any, str]] = (),
) -> list[Any]:
    """Every (status, trigger) pair that the documented table allows (or refuses)."""
    return [
        pytest.param(status, trigger, id=f"{status.value}-{trigger}")
        for status, trigger in itertools.product(statuses, triggers)
        if ((status, trigger) in moves) is allowed and (status, trigger) not in exclude
    ]


# --- the tables themselves -----------------------------------------------------------------------


def test_tables_name_exactly_the_documented_triggers_when_listed() -> None:
    assert sorted({t for t, _, _ in ORDER_LIFECYCLE.moves}) == ORDER_TRIGGERS
    assert sorted({t for t, _, _ in PAYMENT_LIFECYCLE.moves}) == PAYMENT_TRIGGERS
    assert ORDER_LIFECYCLE.initial is OS.PENDING
    assert PAYMENT_LIFECYCLE.initial is PS.PENDING


@pytest.mark.parametrize(
    ("status", "trigger"), _pairs(OS, ORDER_TRIGGERS, DOCUMENTED_ORDER_MOVES, allowed=True)
)
def test_order_moves_to_documented_status_when_trigger_is_allowed(
    status: OrderStatus, trigger: str
) -> None:
    assert ORDER_LIFECYCLE.can(status, trigger)
    assert ORDER_LIFECYCLE.next_state(status, trigger) is DOCUMENTED_ORDER_MOVES[status, trigger]
    assert trigger in ORDER_LIFECYCLE.triggers(status)


@pytest.mark.parametrize(
    ("status", "trigger"), _pairs(OS, ORDER_TRIGGERS, DOCUMENTED_ORDER_MOVES, allowed=False)
)
def test_illegal_transition_error_when_order_trigger_is_not_in_the_table(
    status: OrderStatus, trigger: str
) -> None:
    assert not ORDER_LIFECYCLE.can(status, trigger)
    assert trigger not in ORDER_LIFECYCLE.triggers(status)
    with pytest.raises(IllegalTransitionError) as caught:
        ORDER_LIFECYCLE.next_state(status, trigger)
    assert (caught.value.entity, caught.value.state) == ("order", status.value)
    assert caught.value.trigger == trigger.replace("_", " ")


@pytest.mark.parametrize(
    ("status", "trigger"), _pairs(PS, PAYMENT_TRIGGERS, DOCUMENTED_PAYMENT_MOVES, allowed=True)
)
def test_payment_moves_to_documented_status_when_trigger_is_allowed(
    status: PaymentStatus, trigger: str
) -> None:
    assert (
        PAYMENT_LIFECYCLE.next_state(status, trigger) is DOCUMENTED_PAYMENT_MOVES[status, trigger]
    )


@pytest.mark.parametrize(
    ("status", "trigger"), _pairs(PS, PAYMENT_TRIGGERS, DOCUMENTED_PAYMENT_MOVES, allowed=False)
)
def test_illegal_transition_error_when_payment_trigger_is_not_in_the_table(
    status: PaymentStatus, trigger: str
) -> None:
    with pytest.raises(IllegalTransitionError) as caught:
        PAYMENT_LIFECYCLE.next_state(status, trigger)
    assert (caught.value.entity, caught.value.state) == ("payment", status.value)


# --- the same pairs through the aggregate --------------------------------------------------------


def _receive_return(order: Order, return_id: str, lines: dict[str, int]) -> None:
    # A return is received only after it was requested and approved; in a status that
    # refuses ``request_return`` the refusal comes first, and nothing is recorded.
    order.request_return(return_id, lines, "does not fit")
    order.approve_return(return_id)
    order.receive_return(return_id)


def _everything_returnable(order: Order) -> dict[str, int]:
    units = {sku: line.returnable for sku, line in order.lines.items() if line.returnable}
    return units or {"MUG-1": 1}


ORDER_ACTIONS: dict[str, Callable[[Order], object]] = {
    "confirm": lambda o: o.confirm(),
    "start_fulfilment": lambda o: o.start_fulfilment(),
    "ship_partially": lambda o: o.ship("parcel-next", {"MUG-1": 1}),
    "ship": lambda o: o.ship("parcel-next", o.plan_shipment("parcel-next", None)),
    "deliver": lambda o: o.deliver(),
    "complete": lambda o: o.complete(),
    "cancel": lambda o: o.cancel(IMMEDIATE, "changed mind", "customer"),
    "request_cancellation": lambda o: o.cancel(APPROVAL, "changed mind", "customer"),
    "approve_cancellation": lambda o: o.approve_cancellation(APPROVAL, "operator-1"),
    "reject_cancellation": lambda o: o.reject_cancellation("already packed", "operator-1"),
    "request_return": lambda o: o.request_return("ret-next", {"MUG-1": 1}, "too small"),
    "receive_return_partially": lambda o: _receive_return(o, "ret-next", {"MUG-1": 1}),
    "receive_return": lambda o: _receive_return(o, "ret-next", _everything_returnable(o)),
}

# Asking again for what already happened is a no-op rather than an error (idempotent repeats).
IDEMPOTENT_REPEATS = {
    (OS.CANCELLED, "cancel"),
    (OS.CANCELLED, "request_cancellation"),
    (OS.CANCELLED, "approve_cancellation"),
    (OS.CANCELLATION_REQUESTED, "request_cancellation"),
}


def test_actions_cover_every_order_trigger_when_listed() -> None:
    assert sorted(ORDER_ACTIONS) == ORDER_TRIGGERS


@pytest.mark.parametrize(
    ("status", "trigger"), _pairs(OS, ORDER_TRIGGERS, DOCUMENTED_ORDER_MOVES, allowed=True)
)
def test_aggregate_reaches_documented_status_when_trigger_is_allowed(
    status: OrderStatus, trigger: str
) -> None:
    journal = order_in(status)
    events = journal.run(ORDER_ACTIONS[trigger])
    assert events
    assert journal.order.status is DOCUMENTED_ORDER_MOVES[status, trigger]
    assert state_of(replayed(journal.events)) == state_of(journal.order)


@pytest.mark.parametrize(
    ("status", "trigger"),
    _pairs(OS, ORDER_TRIGGERS, DOCUMENTED_ORDER_MOVES, allowed=False, exclude=IDEMPOTENT_REPEATS),
)
def test_aggregate_records_nothing_when_order_trigger_is_illegal(
    status: OrderStatus, trigger: str
) -> None:
    journal = order_in(status)
    caught = assert_refused(
        journal.order, IllegalTransitionError, lambda: ORDER_ACTIONS[trigger](journal.order)
    )
    assert caught.value.state == status.value


@pytest.mark.parametrize(("status", "trigger"), sorted(IDEMPOTENT_REPEATS))
def test_aggregate_records_nothing_when_a_cancellation_step_is_repeated(
    status: OrderStatus, trigger: str
) -> None:
    journal = order_in(status)
    ORDER_ACTIONS[trigger](journal.order)
    assert journal.take() == []
    assert journal.order.status is status


def _all_refundable(order: Order) -> Money:
    """Everything refundable; the total where nothing is, so the amount is never the refusal."""
    return order.refundable if order.refundable.is_positive() else order.total


PAYMENT_ACTIONS: dict[str, Callable[[Order], object]] = {
    "authorize": lambda o: o.authorize_payment("auth-next"),
    "fail": lambda o: o.fail_payment("card declined"),
    "capture": lambda o: o.capture_payment(),
    "void": lambda o: o.void_payment(),
    "refund_partially": steps(
        lambda o: o.initiate_refund("rf-next", usd("1.00"), "goodwill"),
        lambda o: o.complete_refund("rf-next"),
    ),
    "refund": steps(
        lambda o: o.initiate_refund("rf-next", _all_refundable(o), "x"),
        lambda o: o.complete_refund("rf-next"),
    ),
}


def test_actions_cover_every_payment_trigger_when_listed() -> None:
    assert sorted(PAYMENT_ACTIONS) == PAYMENT_TRIGGERS


@pytest.mark.parametrize(
    ("status", "trigger"), _pairs(PS, PAYMENT_TRIGGERS, DOCUMENTED_PAYMENT_MOVES, allowed=True)
)
def test_payment_reaches_documented_status_when_trigger_is_allowed(
    status: PaymentStatus, trigger: str
) -> None:
    journal = payment_in(status)
    assert journal.run(PAYMENT_ACTIONS[trigger])
    assert journal.order.payment_status is DOCUMENTED_PAYMENT_MOVES[status, trigger]
    assert state_of(replayed(journal.events)) == state_of(journal.order)


@pytest.mark.parametrize(
    ("status", "trigger"), _pairs(PS, PAYMENT_TRIGGERS, DOCUMENTED_PAYMENT_MOVES, allowed=False)
)
def test_payment_records_nothing_when_trigger_is_illegal(
    status: PaymentStatus, trigger: str
) -> None:
    journal = payment_in(status)
    caught = assert_refused(
        journal.order, IllegalTransitionError, lambda: PAYMENT_ACTIONS[trigger](journal.order)
    )
    assert (caught.value.entity, caught.value.state) == ("payment", status.value)


@pytest.mark.parametrize("status", [OS.PENDING, OS.CANCELLED])
def test_capture_refused_when_order_is_not_confirmed_or_is_cancelled(status: OrderStatus) -> None:
    journal = order_in(status)
    if status is OS.PENDING:
        journal.run(lambda o: o.authorize_payment("auth-1"))
    assert_refused(journal.order, IllegalTransitionError, journal.order.capture_payment)


@pytest.mark.parametrize("status", [OS.CANCELLED, OS.CANCELLATION_REQUESTED])
def test_authorization_refused_when_order_is_being_cancelled(status: OrderStatus) -> None:
    journal = order_in(status)
    assert_refused(
        journal.order, IllegalTransitionError, lambda: journal.order.authorize_payment("auth-9")
    )


# --- the standard cancellation policy ------------------------------------------------------------

STANDARD = StandardCancellationPolicy()
MUGS = (("MUG-1", 3),)
"""3 x 9.50 = 28.50 USD: 5 % is 1.425, which rounds once, half-even, to 1.42 (half-up: 1.43)."""


def _paid(status: OrderStatus, lines: tuple[tuple[str, int], ...] = MUGS) -> Journal:
    """An order in ``status`` whose total was authorized and captured on confirmation."""
    journal = order_in(OS.CONFIRMED, lines)
    journal.run(lambda o: o.authorize_payment("auth-1"), lambda o: o.capture_payment())
    if status is OS.PROCESSING:
        journal.run(lambda o: o.start_fulfilment())
    return journal


def test_authorization_voided_at_once_when_pending_order_is_cancelled() -> None:
    journal = order_in(OS.PENDING, MUGS)
    journal.run(lambda o: o.authorize_payment("auth-1"))
    order = journal.order

    decision = STANDARD.decide(order)

    assert (decision.allowed, decision.needs_approval) == (True, False)
    assert (decision.fee, decision.refund) == (usd("0.00"), usd("0.00"))
    assert order.cancel(STANDARD, "changed mind", "customer") is True
    assert names(journal.take()) == ["StockReleased", "Cancelled", "PaymentVoided"]
    assert (order.status, order.payment_status) == (OS.CANCELLED, PS.VOIDED)
    assert order.refund_pending == usd("0.00")
    assert order.skus_holding_stock() == []


def test_captured_total_refunded_in_full_at_once_when_confirmed_order_is_cancelled() -> None:
    journal = _paid(OS.CONFIRMED)
    order = journal.order

    decision = STANDARD.decide(order)

    assert (decision.allowed, decision.needs_approval) == (True, False)
    assert (decision.fee, decision.refund) == (usd("0.00"), usd("28.50"))
    assert order.cancel(STANDARD, "changed mind", "customer") is True
    assert names(journal.take()) == ["StockReleased", "Cancelled", "RefundInitiated"]
    assert order.status is OS.CANCELLED
    assert order.cancellation_fee == usd("0.00")
    assert order.refunds["cancellation"].amount == usd("28.50")
    assert order.refundable == usd("0.00")


def test_approval_needed_and_fee_rounded_once_when_processing() -> None:
    journal = _paid(OS.PROCESSING)
    order = journal.order

    decision = STANDARD.decide(order)

    assert (decision.allowed, decision.needs_approval) == (True, True)
    assert decision.fee == usd("1.42")
    assert decision.refund == usd("27.08")
    assert order.cancel(STANDARD, "changed mind", "customer") is False
    assert names(journal.take()) == ["CancellationRequested"]
    assert (order.status, order.skus_holding_stock()) == (OS.CANCELLATION_REQUESTED, ["MUG-1"])

    order.approve_cancellation(STANDARD, "operator-1")

    assert names(journal.take()) == [
        "CancellationApproved",
        "StockReleased",
        "Cancelled",
        "RefundInitiated",
    ]
    assert order.status is OS.CANCELLED
    assert order.cancellation_fee == usd("1.42")
    assert order.refund_pending == usd("27.08")
    assert order.refunds["cancellation"].amount == usd("27.08")
    assert order.skus_holding_stock() == []


def test_fee_is_five_percent_of_the_total_when_part_was_refunded_already() -> None:
    journal = _paid(OS.PROCESSING, (("MUG-1", 2), ("TEE-M", 1)))  # 38.99: 5 % = 1.9495 -> 1.95
    journal.run(
        lambda o: o.initiate_refund("rf-1", usd("10.00"), "late"),
        lambda o: o.complete_refund("rf-1"),
    )

    decision = STANDARD.decide(journal.order)

    assert decision.fee == usd("1.95")
    assert decision.refund == usd("27.04")  # 38.99 - 10.00 - 1.95


def test_no_fee_and_no_refund_when_processing_order_was_never_captured() -> None:
    journal = order_in(OS.PROCESSING, MUGS)

    decision = STANDARD.decide(journal.order)

    assert (decision.allowed, decision.needs_approval) == (True, True)
    assert (decision.fee, decision.refund) == (usd("0.00"), usd("0.00"))


@pytest.mark.parametrize(
    "status",
    [
        OS.PARTIALLY_SHIPPED,
        OS.SHIPPED,
        OS.DELIVERED,
        OS.COMPLETED,
        OS.PARTIALLY_RETURNED,
        OS.RETURNED,
    ],
)
def test_cancellation_not_allowed_error_when_shipped_or_later(status: OrderStatus) -> None:
    journal = order_in(status)

    assert STANDARD.decide(journal.order).allowed is False
    caught = assert_refused(
        journal.order,
        CancellationNotAllowedError,
        lambda: journal.order.cancel(STANDARD, "changed mind", "customer"),
    )
    assert caught.value.state == status.value


@pytest.mark.parametrize("fee_percent", [Decimal(-1), Decimal("100.01")])
def test_value_error_when_fee_percent_is_outside_0_to_100(fee_percent: Decimal) -> None:
    with pytest.raises(ValueError, match="fee_percent"):
        StandardCancellationPolicy(fee_percent)


@dataclass(frozen=True)
class _Answer:
    fee: Money
    refund: Money

    def decide(self, order: Order) -> CancellationDecision:
        return CancellationDecision(True, False, self.fee, self.refund, "as told")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (_Answer(usd("0.00"), usd("28.51")), RefundExceedsPaymentError),
        (_Answer(usd("0.00"), usd("-1.00")), RefundExceedsPaymentError),
        (_Answer(usd("-1.00"), usd("1.00")), InvalidInputError),
        (_Answer(Money("1.00", "EUR"), usd("1.00")), CurrencyMismatchError),
        (_Answer(usd("0.00"), Money("1.00", "EUR")), CurrencyMismatchError),
    ],
)
def test_policy_answer_refused_when_it_is_outside_what_was_captured(
    answer: _Answer, error: type[CommerceError]
) -> None:
    journal = _paid(OS.CONFIRMED)
    assert_refused(journal.order, error, lambda: journal.order.cancel(answer, "x", "customer"))


# --- a replaced policy, through the service ------------------------------------------------------


class NeverCancel:
    """A host's policy: orders are never cancelled."""

    def decide(self, order: Order) -> CancellationDecision:
        zero = Money.zero(order.currency)
        return CancellationDecision(False, False, zero, zero, "we never cancel")


def _orders(policy: CancellationPolicy) -> Orders:
    memory = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    clock = FakeClock()
    inventory = Inventory(memory, clock=clock)
    inventory.register(
        RegisterItem(
            sku="MUG-1", product_id="mug", name="Mug", unit_price=usd("9.50"), initial_quantity=10
        )
    )
    return Orders(
        memory,
        inventory=inventory,
        pricing=Pricing(price_book=new_price_book()),
        clock=clock,
        cancellation_policy=policy,
    )


def _paid_order(orders: Orders) -> UUID:
    order_id = orders.place(
        PlaceOrder(
            idempotency_key="k-1",
            customer_id="cust-1",
            currency="USD",
            lines=[OrderLineRequest(sku="MUG-1", quantity=3)],
        )
    )
    orders.authorize_payment(AuthorizePayment(order_id=order_id, reference="auth-1"))
    orders.confirm(ConfirmOrder(order_id=order_id))
    orders.capture_payment(CapturePayment(order_id=order_id))
    return order_id


def test_cancellation_not_allowed_error_when_the_host_policy_never_cancels() -> None:
    orders = _orders(NeverCancel())
    order_id = _paid_order(orders)
    written = orders.recorder.max_notification_id()

    with pytest.raises(CancellationNotAllowedError):
        orders.cancel(CancelOrder(order_id=order_id))

    assert orders.recorder.max_notification_id() == written
    assert orders.get(order_id).status is OS.CONFIRMED
    assert orders.inventory.item("MUG-1").reserved == 3


def test_full_refund_after_approval_when_the_host_policy_charges_no_fee() -> None:
    orders = _orders(StandardCancellationPolicy(fee_percent=Decimal(0)))
    order_id = _paid_order(orders)
    orders.start_fulfilment(StartFulfilment(order_id=order_id))

    assert orders.cancel(CancelOrder(order_id=order_id)) is False
    orders.approve_cancellation(ApproveCancellation(order_id=order_id, approved_by="operator-1"))

    view = orders.get(order_id)
    assert view.status is OS.CANCELLED
    assert view.cancellation_fee == usd("0.00")
    assert view.refund_pending == usd("28.50")
    assert orders.inventory.item("MUG-1").reserved == 0

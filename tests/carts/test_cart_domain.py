"""Unit tests of the Cart aggregate: the events it records, what it refuses, and replay."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from suuupra_commerce.carts.domain import (
    CART_LIFECYCLE,
    MAX_LINE_QUANTITY,
    MAX_LINES,
    Cart,
    CartLine,
    CartStatus,
    checkout_order_id,
    merge_carts,
)
from suuupra_commerce.errors import (
    BusinessRuleError,
    CartClosedError,
    CartLineNotFoundError,
    CommerceError,
    CurrencyMismatchError,
    EmptyCartError,
    IllegalTransitionError,
    InvalidAmountError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidQuantityError,
    UnknownCurrencyError,
)
from suuupra_commerce.money import Money

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(days=7)


def usd(amount: str) -> Money:
    return Money(amount, "USD")


def later(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def new_cart(*, customer_id: str | None = "c-1", session_id: str | None = None) -> Cart:
    cart = Cart.create(
        cart_id=uuid4(), currency="USD", now=NOW, customer_id=customer_id, session_id=session_id
    )
    cart.collect_events()
    return cart


def guest_cart() -> Cart:
    return new_cart(customer_id=None, session_id="s-1")


def state(cart: Cart) -> dict[str, Any]:
    return {k: v for k, v in vars(cart).items() if k != "_pending_events"}


def replay(events: Sequence[CanMutateAggregate[UUID]]) -> Cart:
    cart = functools.reduce(lambda agg, e: e.mutate(agg), events, None)
    assert isinstance(cart, Cart)
    return cart


def through_json(events: Sequence[CanMutateAggregate[UUID]]) -> list[Any]:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    return [mapper.to_domain_event(mapper.to_stored_event(e)) for e in events]


def names(events: Sequence[object]) -> list[str]:
    return [type(e).__name__ for e in events]


E = TypeVar("E", bound=CommerceError)


def assert_refused(
    cart: Cart, error: type[E], change: Callable[[], object]
) -> pytest.ExceptionInfo[E]:
    """The change raises ``error`` and leaves the cart exactly as it was, recording nothing."""
    before = state(cart)
    version = cart.version
    with pytest.raises(error) as caught:
        change()
    assert cart.pending_events == []
    assert cart.version == version
    assert state(cart) == before
    return caught


# --- creation -------------------------------------------------------------------------------


def test_created_is_recorded_when_a_customer_cart_is_created() -> None:
    cart_id = uuid4()
    cart = Cart.create(cart_id=cart_id, currency="USD", now=NOW, customer_id="c-1")
    (created,) = cart.collect_events()
    assert isinstance(created, Cart.Created)
    assert (created.customer_id, created.session_id, created.currency, created.at) == (
        "c-1",
        None,
        "USD",
        NOW,
    )
    assert cart.id == cart_id
    assert cart.status is CartStatus.ACTIVE
    assert cart.owner == "c-1"
    assert cart.lines == {}
    assert cart.touched_at == NOW


def test_owner_names_the_session_when_the_cart_is_a_guest_cart() -> None:
    assert guest_cart().owner == "session:s-1"


@pytest.mark.parametrize(
    ("customer_id", "session_id"), [(None, None), ("c-1", "s-1"), ("", None), (None, " s")]
)
def test_invalid_identifier_error_when_the_owner_is_not_exactly_one_valid_id(
    customer_id: str | None, session_id: str | None
) -> None:
    with pytest.raises(InvalidIdentifierError):
        Cart.create(
            cart_id=uuid4(),
            currency="USD",
            now=NOW,
            customer_id=customer_id,
            session_id=session_id,
        )


def test_unknown_currency_error_when_the_currency_is_not_iso_4217() -> None:
    with pytest.raises(UnknownCurrencyError):
        Cart.create(cart_id=uuid4(), currency="usd", now=NOW, customer_id="c-1")


def test_invalid_input_error_when_now_is_naive() -> None:
    with pytest.raises(InvalidInputError):
        Cart.create(cart_id=uuid4(), currency="USD", now=datetime(2025, 1, 1), customer_id="c")  # noqa: DTZ001


# --- lines ----------------------------------------------------------------------------------


def test_item_added_records_the_price_snapshot_when_an_item_is_added() -> None:
    cart = new_cart()
    cart.add_item("TEE", "T-shirt", usd("12.50"), 2, later(1))
    (added,) = cart.collect_events()
    assert isinstance(added, Cart.ItemAdded)
    assert (added.sku, added.name, added.unit_price, added.quantity, added.at) == (
        "TEE",
        "T-shirt",
        {"amount": "12.50", "currency": "USD"},
        2,
        later(1),
    )
    assert cart.lines["TEE"] == CartLine("TEE", "T-shirt", usd("12.50"), 2)
    assert cart.subtotal == usd("25.00")
    assert cart.touched_at == later(1)


def test_quantities_merge_and_the_snapshot_stays_when_the_same_sku_is_added_again() -> None:
    cart = new_cart()
    cart.add_item("TEE", "T-shirt", usd("12.50"), 2, NOW)
    cart.add_item("TEE", "T-shirt (new)", usd("14.00"), 3, later(1))
    events = cart.collect_events()
    assert names(events) == ["ItemAdded", "ItemAdded"]
    assert cart.lines == {"TEE": CartLine("TEE", "T-shirt", usd("12.50"), 5)}
    assert cart.item_count == 5


def test_invalid_quantity_error_when_merging_would_pass_the_line_maximum() -> None:
    cart = new_cart()
    cart.add_item("TEE", "T-shirt", usd("1.00"), MAX_LINE_QUANTITY - 1, NOW)
    cart.collect_events()
    assert_refused(
        cart, InvalidQuantityError, lambda: cart.add_item("TEE", "T-shirt", usd("1.00"), 2, NOW)
    )
    cart.add_item("TEE", "T-shirt", usd("1.00"), 1, NOW)
    assert cart.lines["TEE"].quantity == MAX_LINE_QUANTITY


@pytest.mark.parametrize("quantity", [0, -1, MAX_LINE_QUANTITY + 1, True])
def test_invalid_quantity_error_when_an_added_quantity_is_out_of_range(quantity: int) -> None:
    cart = new_cart()
    assert_refused(
        cart,
        InvalidQuantityError,
        lambda: cart.add_item("TEE", "T-shirt", usd("1.00"), quantity, NOW),
    )


def test_business_rule_error_when_a_line_past_the_maximum_is_added() -> None:
    cart = new_cart()
    for i in range(MAX_LINES):
        cart.add_item(f"SKU-{i}", "thing", usd("1.00"), 1, NOW)
    cart.collect_events()
    assert_refused(
        cart, BusinessRuleError, lambda: cart.add_item("ONE-MORE", "thing", usd("1.00"), 1, NOW)
    )
    cart.add_item("SKU-0", "thing", usd("1.00"), 1, NOW)  # an existing line still takes more


def test_currency_mismatch_error_when_the_price_is_in_another_currency() -> None:
    cart = new_cart()
    assert_refused(
        cart,
        CurrencyMismatchError,
        lambda: cart.add_item("TEE", "T-shirt", Money("1.00", "EUR"), 1, NOW),
    )


def test_invalid_amount_error_when_the_price_is_negative() -> None:
    cart = new_cart()
    assert_refused(
        cart, InvalidAmountError, lambda: cart.add_item("TEE", "T-shirt", usd("-1.00"), 1, NOW)
    )


@pytest.mark.parametrize("sku", ["", "bad sku", "ä", "x" * 65])
def test_invalid_identifier_error_when_the_sku_is_malformed(sku: str) -> None:
    cart = new_cart()
    assert_refused(
        cart, InvalidIdentifierError, lambda: cart.add_item(sku, "thing", usd("1.00"), 1, NOW)
    )


def test_quantity_changed_is_recorded_when_a_line_quantity_changes() -> None:
    cart = new_cart()
    cart.add_item("TEE", "T-shirt", usd("2.00"), 1, NOW)
    cart.collect_events()
    cart.change_quantity("TEE", 4, later(5))
    (changed,) = cart.collect_events()
    assert isinstance(changed, Cart.QuantityChanged)
    assert (changed.sku, changed.quantity) == ("TEE", 4)
    assert cart.lines["TEE"].quantity == 4
    assert cart.touched_at == later(5)


def test_nothing_is_recorded_when_the_quantity_is_unchanged() -> None:
    cart = new_cart()
    cart.add_item("TEE", "T-shirt", usd("2.00"), 3, NOW)
    cart.collect_events()
    cart.change_quantity("TEE", 3, later(1))
    assert cart.collect_events() == []


def test_item_removed_is_recorded_when_the_quantity_changes_to_zero() -> None:
    cart = new_cart()
    cart.add_item("TEE", "T-shirt", usd("2.00"), 3, NOW)
    cart.collect_events()
    cart.change_quantity("TEE", 0, later(1))
    assert names(cart.collect_events()) == ["ItemRemoved"]
    assert cart.lines == {}


def test_cart_line_not_found_error_when_changing_or_removing_a_sku_not_in_the_cart() -> None:
    cart = new_cart()
    caught = assert_refused(cart, CartLineNotFoundError, lambda: cart.change_quantity("X", 1, NOW))
    assert caught.value.id == "X"
    assert_refused(cart, CartLineNotFoundError, lambda: cart.remove_item("X", NOW))


def test_invalid_quantity_error_when_a_changed_quantity_is_out_of_range() -> None:
    cart = new_cart()
    cart.add_item("TEE", "T-shirt", usd("2.00"), 3, NOW)
    cart.collect_events()
    assert_refused(
        cart, InvalidQuantityError, lambda: cart.change_quantity("TEE", MAX_LINE_QUANTITY + 1, NOW)
    )
    assert_refused(cart, InvalidQuantityError, lambda: cart.change_quantity("TEE", -1, NOW))


def test_item_removed_is_recorded_when_a_line_is_removed() -> None:
    cart = new_cart()
    cart.add_item("A", "A", usd("2.00"), 1, NOW)
    cart.add_item("B", "B", usd("3.00"), 1, NOW)
    cart.collect_events()
    cart.remove_item("A", later(1))
    (removed,) = cart.collect_events()
    assert isinstance(removed, Cart.ItemRemoved)
    assert removed.sku == "A"
    assert list(cart.lines) == ["B"]


def test_cleared_is_recorded_only_when_the_cart_has_lines() -> None:
    cart = new_cart()
    cart.clear(NOW)
    assert cart.collect_events() == []
    cart.add_item("A", "A", usd("2.00"), 1, NOW)
    cart.apply_discount_code("SAVE", NOW)
    cart.collect_events()
    cart.clear(later(1))
    assert names(cart.collect_events()) == ["Cleared"]
    assert cart.lines == {}
    assert cart.discount_code == "SAVE"


# --- discount code --------------------------------------------------------------------------


def test_discount_code_events_are_recorded_when_a_code_is_applied_and_removed() -> None:
    cart = new_cart()
    cart.apply_discount_code("SAVE10", later(1))
    cart.apply_discount_code("SAVE10", later(2))  # the same code again: nothing
    cart.apply_discount_code("SAVE20", later(3))
    cart.remove_discount_code(later(4))
    cart.remove_discount_code(later(5))  # none held: nothing
    events = cart.collect_events()
    assert names(events) == ["DiscountCodeApplied", "DiscountCodeApplied", "DiscountCodeRemoved"]
    assert cart.discount_code is None
    assert cart.touched_at == later(4)


def test_invalid_identifier_error_when_the_discount_code_is_malformed() -> None:
    cart = new_cart()
    assert_refused(cart, InvalidIdentifierError, lambda: cart.apply_discount_code("", NOW))


# --- prices ---------------------------------------------------------------------------------


def test_prices_refreshed_records_only_changed_lines_when_prices_moved() -> None:
    cart = new_cart()
    cart.add_item("A", "Apple", usd("1.00"), 2, NOW)
    cart.add_item("B", "Banana", usd("2.00"), 1, NOW)
    cart.add_item("C", "Cherry", usd("3.00"), 1, NOW)
    cart.collect_events()
    changes = cart.refresh_prices(
        {
            "A": ("Apple", usd("1.20")),
            "B": ("Banana", usd("2.00")),
            "C": ("Cherries", usd("3.00")),
        },
        later(1),
    )
    assert changes == {"A": (usd("1.00"), usd("1.20"))}
    (refreshed,) = cart.collect_events()
    assert isinstance(refreshed, Cart.PricesRefreshed)
    assert [line["sku"] for line in refreshed.lines] == ["A", "C"]
    assert cart.lines["A"] == CartLine("A", "Apple", usd("1.20"), 2)
    assert cart.lines["C"].name == "Cherries"
    assert list(cart.lines) == ["A", "B", "C"]


def test_nothing_is_recorded_when_no_price_changed() -> None:
    cart = new_cart()
    cart.add_item("A", "Apple", usd("1.00"), 2, NOW)
    cart.collect_events()
    assert cart.refresh_prices({"A": ("Apple", usd("1.00"))}, later(1)) == {}
    assert cart.collect_events() == []


def test_invalid_input_error_when_a_current_price_is_missing() -> None:
    cart = new_cart()
    cart.add_item("A", "Apple", usd("1.00"), 2, NOW)
    cart.add_item("B", "Banana", usd("1.00"), 2, NOW)
    cart.collect_events()
    assert_refused(
        cart, InvalidInputError, lambda: cart.refresh_prices({"A": ("Apple", usd("9.00"))}, NOW)
    )


# --- merging --------------------------------------------------------------------------------


def test_customer_cart_gains_the_guest_lines_when_a_guest_cart_is_merged() -> None:
    guest, customer = guest_cart(), new_cart()
    guest.add_item("A", "Apple (guest)", usd("1.10"), 2, NOW)
    guest.add_item("B", "Banana", usd("2.00"), 990, NOW)
    guest.add_item("C", "Cherry", usd("3.00"), 1, NOW)
    guest.apply_discount_code("WELCOME", NOW)
    customer.add_item("A", "Apple", usd("1.00"), 1, NOW)
    customer.add_item("B", "Banana", usd("2.00"), 20, NOW)
    guest.collect_events()
    customer.collect_events()

    merge_carts(guest, customer, later(10))

    (merged_in,) = customer.collect_events()
    assert isinstance(merged_in, Cart.LinesMerged)
    assert merged_in.from_cart_id == guest.id
    assert customer.lines == {
        "A": CartLine("A", "Apple", usd("1.00"), 3),
        "B": CartLine("B", "Banana", usd("2.00"), MAX_LINE_QUANTITY),
        "C": CartLine("C", "Cherry", usd("3.00"), 1),
    }
    assert customer.discount_code == "WELCOME"
    assert customer.touched_at == later(10)
    (merged,) = guest.collect_events()
    assert isinstance(merged, Cart.Merged)
    assert guest.status is CartStatus.MERGED
    assert guest.merged_into == customer.id
    assert_refused(guest, CartClosedError, lambda: guest.add_item("A", "A", usd("1.00"), 1, NOW))


def test_customer_keeps_its_own_discount_code_when_both_carts_have_one() -> None:
    guest, customer = guest_cart(), new_cart()
    guest.apply_discount_code("GUEST", NOW)
    customer.apply_discount_code("MINE", NOW)
    merge_carts(guest, customer, NOW)
    assert customer.discount_code == "MINE"


@pytest.mark.parametrize("problem", ["customer_as_guest", "guest_as_customer", "same", "currency"])
def test_nothing_is_recorded_on_either_cart_when_a_merge_is_refused(problem: str) -> None:
    guest, customer = guest_cart(), new_cart()
    if problem == "customer_as_guest":
        guest = new_cart(customer_id="c-2")
    elif problem == "guest_as_customer":
        customer = new_cart(customer_id=None, session_id="s-2")
    elif problem == "same":
        customer = guest
    else:
        guest = Cart.create(cart_id=uuid4(), currency="EUR", now=NOW, session_id="s-9")
        guest.collect_events()
    before = (state(guest), state(customer))
    with pytest.raises(BusinessRuleError if problem != "currency" else CurrencyMismatchError):
        merge_carts(guest, customer, NOW)
    assert (state(guest), state(customer)) == before
    assert guest.pending_events == customer.pending_events == []


def test_cart_closed_error_when_merging_a_closed_cart() -> None:
    guest, customer = guest_cart(), new_cart()
    customer.delete(NOW)
    customer.collect_events()
    before = (state(guest), state(customer))
    with pytest.raises(CartClosedError):
        merge_carts(guest, customer, NOW)
    assert (state(guest), state(customer)) == before


def test_business_rule_error_when_the_merged_cart_would_hold_too_many_lines() -> None:
    guest, customer = guest_cart(), new_cart()
    for i in range(MAX_LINES):
        customer.add_item(f"C-{i}", "thing", usd("1.00"), 1, NOW)
    guest.add_item("G-1", "thing", usd("1.00"), 1, NOW)
    guest.collect_events()
    customer.collect_events()
    with pytest.raises(BusinessRuleError):
        merge_carts(guest, customer, NOW)
    assert guest.pending_events == customer.pending_events == []


# --- lifecycle ------------------------------------------------------------------------------


def test_business_rule_error_when_expiring_a_cart_touched_within_the_ttl() -> None:
    cart = new_cart()
    cart.add_item("A", "A", usd("1.00"), 1, later(60))
    cart.collect_events()
    assert_refused(cart, BusinessRuleError, lambda: cart.expire(later(60) + TTL / 2, TTL))
    assert not cart.is_stale(later(60) + TTL - timedelta(microseconds=1), TTL)


def test_expired_is_recorded_when_the_ttl_has_passed_since_the_last_touch() -> None:
    cart = new_cart()
    cart.add_item("A", "A", usd("1.00"), 1, later(60))
    cart.collect_events()
    cart.expire(later(60) + TTL, TTL)
    assert names(cart.collect_events()) == ["Expired"]
    assert cart.status is CartStatus.EXPIRED
    assert_refused(cart, IllegalTransitionError, lambda: cart.expire(later(60) + 2 * TTL, TTL))
    assert_refused(cart, CartClosedError, lambda: cart.change_quantity("A", 2, NOW))
    cart.delete(later(60) + 2 * TTL)
    assert state(cart)["status"] is CartStatus.DELETED


def test_deleted_is_recorded_when_an_active_cart_is_deleted() -> None:
    cart = new_cart()
    cart.delete(later(1))
    assert names(cart.collect_events()) == ["Deleted"]
    assert_refused(cart, IllegalTransitionError, lambda: cart.delete(later(2)))
    assert_refused(cart, CartClosedError, lambda: cart.clear(later(2)))
    assert_refused(cart, CartClosedError, lambda: cart.remove_discount_code(later(2)))


def test_checked_out_is_recorded_once_when_a_cart_is_checked_out() -> None:
    cart = new_cart()
    cart.add_item("A", "A", usd("1.00"), 1, NOW)
    cart.collect_events()
    order_id = cart.checkout_order_id()
    assert order_id == checkout_order_id(cart.id, cart.version)
    cart.check_out(order_id, later(1))
    (checked_out,) = cart.collect_events()
    assert isinstance(checked_out, Cart.CheckedOut)
    assert checked_out.order_id == order_id
    assert (cart.status, cart.order_id) == (CartStatus.CHECKED_OUT, order_id)
    assert_refused(cart, IllegalTransitionError, lambda: cart.check_out(order_id, later(2)))
    assert_refused(cart, CartClosedError, lambda: cart.add_item("B", "B", usd("1.00"), 1, NOW))


def test_empty_cart_error_when_checking_out_an_empty_cart() -> None:
    cart = new_cart()
    assert_refused(cart, EmptyCartError, lambda: cart.check_out(uuid4(), NOW))


def test_checkout_order_id_changes_when_the_cart_changes() -> None:
    cart = new_cart()
    cart.add_item("A", "A", usd("1.00"), 1, NOW)
    first = cart.checkout_order_id()
    assert cart.checkout_order_id() == first
    cart.change_quantity("A", 2, NOW)
    assert cart.checkout_order_id() != first


def test_lifecycle_allows_only_moves_from_active_except_deleting_an_expired_cart() -> None:
    for status in CartStatus:
        allowed = CART_LIFECYCLE.triggers(status)
        if status is CartStatus.ACTIVE:
            assert allowed == ["check_out", "merge", "expire", "delete"]
        elif status is CartStatus.EXPIRED:
            assert allowed == ["delete"]
        else:
            assert allowed == []


# --- replay ---------------------------------------------------------------------------------


def test_replayed_cart_equals_the_live_cart_when_every_event_kind_is_recorded() -> None:
    guest = Cart.create(cart_id=uuid4(), currency="USD", now=NOW, session_id="s-1")
    customer = Cart.create(cart_id=uuid4(), currency="USD", now=NOW, customer_id="c-1")
    guest.add_item("A", "Apple", usd("1.00"), 2, later(1))
    guest.add_item("A", "Apple", usd("1.00"), 1, later(2))
    guest.add_item("B", "Banana", usd("0.50"), 1, later(3))
    guest.change_quantity("B", 5, later(4))
    guest.apply_discount_code("WELCOME", later(5))
    customer.add_item("A", "Apple", usd("1.00"), 1, later(6))
    customer.add_item("Z", "Zucchini", usd("0.99"), 1, later(6))
    customer.remove_item("Z", later(7))
    customer.refresh_prices({"A": ("Apple", usd("1.05"))}, later(8))
    merge_carts(guest, customer, later(9))
    customer.remove_discount_code(later(10))
    customer.check_out(customer.checkout_order_id(), later(11))
    other = Cart.create(cart_id=uuid4(), currency="USD", now=NOW, customer_id="c-2")
    other.add_item("A", "Apple", usd("1.00"), 1, NOW)
    other.clear(later(1))
    other.expire(later(1) + TTL, TTL)
    other.delete(later(2) + TTL)

    for cart in (guest, customer, other):
        events = cart.collect_events()
        assert state(replay(events)) == state(cart)
        assert state(replay(through_json(events))) == state(cart)


def operate(cart: Cart, kind: str, sku: str, quantity: int, price: Money, now: datetime) -> None:
    if kind == "add":
        cart.add_item(sku, sku, price, quantity, now)
    elif kind == "change":
        cart.change_quantity(sku, quantity, now)
    elif kind == "remove":
        cart.remove_item(sku, now)
    elif kind == "clear":
        cart.clear(now)
    elif kind == "apply":
        cart.apply_discount_code(f"CODE-{sku}", now)
    elif kind == "unapply":
        cart.remove_discount_code(now)
    elif kind == "refresh":
        cart.refresh_prices({s: (s, price) for s in cart.lines}, now)
    elif kind == "expire":
        cart.expire(now, TTL)
    else:
        cart.check_out(cart.checkout_order_id(), now)


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(
            ["add", "change", "remove", "clear", "apply", "unapply", "refresh", "expire", "check"]
        ),
        st.sampled_from(["A", "B", "C"]),
        st.integers(min_value=-1, max_value=1001),
        st.integers(min_value=0, max_value=10_000),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(OPERATIONS)
def test_replayed_cart_equals_the_live_cart_when_operations_are_random(
    operations: list[tuple[str, str, int, int]],
) -> None:
    cart = Cart.create(cart_id=uuid4(), currency="USD", now=NOW, session_id="s-1")
    events = list(cart.collect_events())
    clock = NOW
    for kind, sku, quantity, cents in operations:
        clock += timedelta(days=1)
        price = Money.from_minor_units(cents, "USD")
        before = state(cart)
        try:
            operate(cart, kind, sku, quantity, price, clock)
        except CommerceError:
            assert cart.pending_events == []
            assert state(cart) == before
        events.extend(cart.collect_events())
    assert state(replay(through_json(events))) == state(cart)

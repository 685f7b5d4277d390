"""Scenarios of the Carts service on the in-memory and SQLite backends, and its checkout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.application import RetryPolicy
from suuupra_commerce.carts.commands import (
    AddItem,
    ApplyDiscountCode,
    ChangeQuantity,
    CheckoutCart,
    ClearCart,
    CreateCart,
    DeleteCart,
    MergeCarts,
    RefreshPrices,
    RemoveDiscountCode,
    RemoveItem,
)
from suuupra_commerce.carts.domain import Cart, CartStatus, checkout_order_id
from suuupra_commerce.carts.service import Carts
from suuupra_commerce.commands import Command
from suuupra_commerce.errors import (
    CartClosedError,
    CartLineNotFoundError,
    CartNotFoundError,
    ConcurrencyConflictError,
    EmptyCartError,
    InsufficientStockError,
    InvalidCommandError,
    InvalidQuantityError,
    PriceChangedError,
    UnknownDiscountCodeError,
    UnknownSkuError,
)
from suuupra_commerce.inventory.commands import RegisterItem
from suuupra_commerce.inventory.service import Inventory
from suuupra_commerce.money import Money
from suuupra_commerce.orders.service import Orders
from suuupra_commerce.pricing import FlatRateTax, PercentageDiscounts, Pricing, Quote
from suuupra_commerce.testing import FakeClock


def usd(amount: str) -> Money:
    return Money(amount, "USD")


class SimulatedCrashError(Exception):
    """Stands for the process dying at a chosen point."""


class FakeOrders:
    """An orders service double: places quotes idempotently by order id, and can crash once."""

    def __init__(self) -> None:
        self.placed: dict[UUID, tuple[str, str, Quote]] = {}
        self.calls = 0
        self.crash_after_placing = False
        self._lock = threading.Lock()

    def place_quote(
        self, *, order_id: UUID, customer_id: str, quote: Quote, fingerprint: str
    ) -> UUID:
        with self._lock:
            self.calls += 1
            existing = self.placed.get(order_id)
            if existing is not None:
                assert existing[0] == fingerprint
                return order_id
            self.placed[order_id] = (fingerprint, customer_id, quote)
            if self.crash_after_placing:
                self.crash_after_placing = False
                raise SimulatedCrashError("crashed after the order was placed")
            return order_id


@pytest.fixture(params=["popo", "sqlite"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "popo":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "carts.sqlite"),
    }


@pytest.fixture
def book() -> InMemoryPriceBook:
    book = InMemoryPriceBook()
    book.set_price("MUG", "Mug", usd("9.50"))
    book.set_price("TEE", "T-shirt", usd("19.99"))
    book.set_price("CAP", "Cap", usd("12.00"))
    return book


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def orders() -> FakeOrders:
    return FakeOrders()


@pytest.fixture
def carts(
    env: dict[str, str], book: InMemoryPriceBook, fake_clock: FakeClock, orders: FakeOrders
) -> Iterator[Carts]:
    pricing = Pricing(book, discounts=PercentageDiscounts({"SAVE10": Decimal(10)}))
    with Carts(
        env,
        orders=orders,
        pricing=pricing,
        clock=fake_clock,
        retry=RetryPolicy(max_attempts=200),
        ttl=timedelta(days=7),
        abandoned_after=timedelta(hours=1),
    ) as app:
        yield app


def new_cart(carts: Carts, customer_id: str = "c-1") -> UUID:
    return carts.create(CreateCart(customer_id=customer_id, currency="USD"))


def guest(carts: Carts, session_id: str = "s-1") -> UUID:
    return carts.create(CreateCart(session_id=session_id, currency="USD"))


def lines_of(carts: Carts, cart_id: UUID) -> dict[str, tuple[int, Money]]:
    return {line.sku: (line.quantity, line.unit_price) for line in carts.get(cart_id).lines}


# --- lines ----------------------------------------------------------------------------------


def test_quantities_merge_when_the_same_sku_is_added_twice(carts: Carts) -> None:
    cart_id = new_cart(carts)
    carts.add_item(AddItem(cart_id=cart_id, sku="MUG", quantity=2))
    carts.add_item(AddItem(cart_id=cart_id, sku="MUG", quantity=3))
    view = carts.get(cart_id)
    assert [(line.sku, line.quantity) for line in view.lines] == [("MUG", 5)]
    assert view.total == usd("47.50")
    assert view.version == 3


def test_price_comes_from_the_price_book_when_an_item_is_added(carts: Carts) -> None:
    cart_id = new_cart(carts)
    with pytest.raises(InvalidCommandError):
        AddItem.model_validate(
            {"cart_id": str(cart_id), "sku": "MUG", "quantity": 1, "unit_price": "0.01"}
        )
    carts.add_item(AddItem.model_validate({"cart_id": str(cart_id), "sku": "MUG", "quantity": 1}))
    assert lines_of(carts, cart_id) == {"MUG": (1, usd("9.50"))}
    (line,) = carts.get(cart_id).lines
    assert line.name == "Mug"


def test_unknown_sku_error_writes_nothing_when_the_sku_has_no_price(carts: Carts) -> None:
    cart_id = new_cart(carts)
    with pytest.raises(UnknownSkuError):
        carts.add_item(AddItem(cart_id=cart_id, sku="NOPE", quantity=1))
    assert carts.get(cart_id).version == 1


def test_invalid_quantity_error_when_a_line_would_pass_999(carts: Carts) -> None:
    cart_id = new_cart(carts)
    carts.add_item(AddItem(cart_id=cart_id, sku="MUG", quantity=999))
    with pytest.raises(InvalidQuantityError):
        carts.add_item(AddItem(cart_id=cart_id, sku="MUG", quantity=1))
    assert carts.get(cart_id).version == 2


def test_lines_change_when_quantities_are_changed_removed_and_cleared(carts: Carts) -> None:
    cart_id = new_cart(carts)
    for sku in ("MUG", "TEE", "CAP"):
        carts.add_item(AddItem(cart_id=cart_id, sku=sku, quantity=1))
    carts.change_quantity(ChangeQuantity(cart_id=cart_id, sku="MUG", quantity=4))
    carts.change_quantity(ChangeQuantity(cart_id=cart_id, sku="TEE", quantity=0))
    assert lines_of(carts, cart_id) == {"MUG": (4, usd("9.50")), "CAP": (1, usd("12.00"))}
    carts.remove_item(RemoveItem(cart_id=cart_id, sku="CAP"))
    with pytest.raises(CartLineNotFoundError):
        carts.remove_item(RemoveItem(cart_id=cart_id, sku="CAP"))
    carts.clear(ClearCart(cart_id=cart_id))
    assert carts.get(cart_id).lines == ()


def test_cart_not_found_error_when_the_cart_does_not_exist_or_was_deleted(carts: Carts) -> None:
    with pytest.raises(CartNotFoundError):
        carts.get(uuid4())
    with pytest.raises(CartNotFoundError):
        carts.add_item(AddItem(cart_id=uuid4(), sku="MUG", quantity=1))
    cart_id = new_cart(carts)
    carts.delete(DeleteCart(cart_id=cart_id))
    with pytest.raises(CartNotFoundError):
        carts.get(cart_id)
    with pytest.raises(CartClosedError):
        carts.add_item(AddItem(cart_id=cart_id, sku="MUG", quantity=1))
    assert carts.active_cart("c-1") is None


# --- prices and discounts -------------------------------------------------------------------


def test_totals_use_the_snapshotted_prices_when_the_price_book_changes(
    carts: Carts, book: InMemoryPriceBook
) -> None:
    cart_id = new_cart(carts)
    carts.add_item(AddItem(cart_id=cart_id, sku="TEE", quantity=2))
    book.set_price("TEE", "T-shirt", usd("25.00"))
    assert carts.get(cart_id).total == usd("39.98")


def test_price_change_is_reported_at_checkout_and_accepted_after_a_refresh(
    carts: Carts, book: InMemoryPriceBook, orders: FakeOrders
) -> None:
    cart_id = new_cart(carts)
    carts.add_item(AddItem(cart_id=cart_id, sku="TEE", quantity=2))
    carts.add_item(AddItem(cart_id=cart_id, sku="MUG", quantity=1))
    book.set_price("TEE", "T-shirt", usd("17.50"))

    with pytest.raises(PriceChangedError) as caught:
        carts.checkout(CheckoutCart(cart_id=cart_id))
    assert caught.value.changes == {"TEE": (usd("19.99"), usd("17.50"))}
    assert orders.placed == {}
    assert carts.get(cart_id).status is CartStatus.ACTIVE
    assert carts.get(cart_id).version == 3

    changes = carts.refresh_prices(RefreshPrices(cart_id=cart_id))
    assert changes == {"TEE": (usd("19.99"), usd("17.50"))}
    assert carts.refresh_prices(RefreshPrices(cart_id=cart_id)) == {}
    assert carts.get(cart_id).total == usd("44.50")

    order_id = carts.checkout(CheckoutCart(cart_id=cart_id))
    (_, _, quote) = orders.placed[order_id]
    assert quote.total == usd("44.50")


def test_unknown_sku_error_when_refreshing_a_line_no_longer_sold(
    carts: Carts, book: InMemoryPriceBook
) -> None:
    cart_id = new_cart(carts)
    carts.add_item(AddItem(cart_id=cart_id, sku="CAP", quantity=1))
    book.remove("CAP")
    with pytest.raises(UnknownSkuError):
        carts.refresh_prices(RefreshPrices(cart_id=cart_id))


def test_discount_applies_to_the_totals_when_the_code_is_known(carts: Carts) -> None:
    cart_id = new_cart(carts)
    carts.add_item(AddItem(cart_id=cart_id, sku="CAP", quantity=2))
    with pytest.raises(UnknownDiscountCodeError):
        carts.apply_discount_code(ApplyDiscountCode(cart_id=cart_id, code="BOGUS"))
    carts.apply_discount_code(ApplyDiscountCode(cart_id=cart_id, code="SAVE10"))
    view = carts.get(cart_id)
    assert (view.discount_code, view.discount, view.total) == ("SAVE10", usd("2.40"), usd("21.60"))
    carts.remove_discount_code(RemoveDiscountCode(cart_id=cart_id))
    assert carts.get(cart_id).total == usd("24.00")


def test_view_totals_include_tax_when_the_pricing_has_a_tax_policy(
    env: dict[str, str], book: InMemoryPriceBook
) -> None:
    pricing = Pricing(book, tax=FlatRateTax(Decimal("0.2")))
    with Carts(env, orders=FakeOrders(), pricing=pricing) as app:
        cart_id = new_cart(app)
        app.add_item(AddItem(cart_id=cart_id, sku="CAP", quantity=1))
        view = app.get(cart_id)
        assert (view.subtotal, view.tax, view.total) == (usd("12.00"), usd("2.40"), usd("14.40"))


# --- merging, expiry, abandoned carts --------------------------------------------------------


def test_guest_lines_join_the_customer_cart_when_carts_are_merged(carts: Carts) -> None:
    guest_id, customer_id = guest(carts), new_cart(carts)
    carts.add_item(AddItem(cart_id=guest_id, sku="MUG", quantity=2))
    carts.add_item(AddItem(cart_id=guest_id, sku="TEE", quantity=1))
    carts.add_item(AddItem(cart_id=customer_id, sku="MUG", quantity=1))

    carts.merge(MergeCarts(guest_cart_id=guest_id, customer_cart_id=customer_id))

    assert lines_of(carts, customer_id) == {"MUG": (3, usd("9.50")), "TEE": (1, usd("19.99"))}
    merged = carts.get(guest_id)
    assert (merged.status, merged.merged_into) == (CartStatus.MERGED, customer_id)
    active = carts.active_cart("c-1")
    assert active is not None
    assert active.id == customer_id
    with pytest.raises(CartClosedError):
        carts.merge(MergeCarts(guest_cart_id=guest_id, customer_cart_id=customer_id))


def test_active_cart_is_the_most_recently_touched_when_a_customer_has_several(
    carts: Carts, fake_clock: FakeClock
) -> None:
    first = new_cart(carts)
    fake_clock.advance(timedelta(minutes=1))
    second = new_cart(carts)
    fake_clock.advance(timedelta(minutes=1))
    carts.add_item(AddItem(cart_id=first, sku="MUG", quantity=1))
    view = carts.active_cart("c-1")
    assert view is not None
    assert view.id == first
    carts.checkout(CheckoutCart(cart_id=first))
    view = carts.active_cart("c-1")
    assert view is not None
    assert view.id == second
    assert carts.active_cart("someone-else") is None


def test_for_customer_lists_the_customers_carts_newest_first_when_some_are_closed(
    carts: Carts, fake_clock: FakeClock
) -> None:
    first = new_cart(carts)
    fake_clock.advance(timedelta(minutes=1))
    second = new_cart(carts)
    fake_clock.advance(timedelta(minutes=1))
    deleted = new_cart(carts)
    new_cart(carts, "someone-else")
    guest(carts)
    carts.add_item(AddItem(cart_id=first, sku="MUG", quantity=1))
    carts.delete(DeleteCart(cart_id=deleted))
    assert [view.id for view in carts.for_customer("c-1")] == [first, second]
    carts.checkout(CheckoutCart(cart_id=first))
    listed = carts.for_customer("c-1")
    assert [(view.id, view.status) for view in listed] == [
        (first, CartStatus.CHECKED_OUT),
        (second, CartStatus.ACTIVE),
    ]
    assert carts.for_customer("nobody") == []


def test_count_by_status_counts_every_cart_when_carts_move_on(carts: Carts) -> None:
    assert carts.count_by_status() == {}
    kept = new_cart(carts)
    gone = new_cart(carts)
    guest(carts)
    carts.delete(DeleteCart(cart_id=gone))
    carts.add_item(AddItem(cart_id=kept, sku="MUG", quantity=1))
    carts.checkout(CheckoutCart(cart_id=kept))
    assert carts.count_by_status() == {
        CartStatus.ACTIVE: 1,
        CartStatus.DELETED: 1,
        CartStatus.CHECKED_OUT: 1,
    }


def test_carts_expire_only_when_untouched_for_the_ttl(carts: Carts, fake_clock: FakeClock) -> None:
    stale, fresh = new_cart(carts), new_cart(carts, "c-2")
    carts.add_item(AddItem(cart_id=stale, sku="MUG", quantity=1))
    fake_clock.advance(timedelta(days=6))
    carts.add_item(AddItem(cart_id=fresh, sku="MUG", quantity=1))
    assert carts.expire_stale() == 0
    fake_clock.advance(timedelta(days=1))
    assert carts.expire_stale() == 1
    assert carts.expire_stale() == 0
    assert carts.get(stale).status is CartStatus.EXPIRED
    assert carts.get(fresh).status is CartStatus.ACTIVE
    with pytest.raises(CartClosedError):
        carts.add_item(AddItem(cart_id=stale, sku="MUG", quantity=1))


def test_each_stale_cart_expires_once_when_sweeps_run_concurrently(
    carts: Carts, fake_clock: FakeClock
) -> None:
    ids = [new_cart(carts, f"c-{i}") for i in range(6)]
    fake_clock.advance(timedelta(days=8))
    with ThreadPoolExecutor(max_workers=4) as pool:
        counts = list(pool.map(lambda _: carts.expire_stale(), range(4)))
    assert sum(counts) == len(ids)
    assert {carts.get(cart_id).status for cart_id in ids} == {CartStatus.EXPIRED}


def test_abandoned_lists_active_carts_with_lines_untouched_for_an_hour(
    carts: Carts, fake_clock: FakeClock
) -> None:
    abandoned = new_cart(carts, "c-1")
    carts.add_item(AddItem(cart_id=abandoned, sku="MUG", quantity=1))
    new_cart(carts, "c-empty")
    checked_out = new_cart(carts, "c-done")
    carts.add_item(AddItem(cart_id=checked_out, sku="MUG", quantity=1))
    carts.checkout(CheckoutCart(cart_id=checked_out))
    fake_clock.advance(timedelta(minutes=59))
    recent = new_cart(carts, "c-recent")
    carts.add_item(AddItem(cart_id=recent, sku="MUG", quantity=1))
    assert carts.abandoned() == []
    fake_clock.advance(timedelta(minutes=1))
    assert [view.id for view in carts.abandoned()] == [abandoned]
    fake_clock.advance(timedelta(hours=1))
    assert [view.id for view in carts.abandoned()] == [abandoned, recent]
    carts.clear(ClearCart(cart_id=abandoned))
    assert [view.id for view in carts.abandoned(fake_clock.now() + timedelta(hours=2))] == [recent]


# --- concurrency ----------------------------------------------------------------------------


def test_no_update_is_lost_when_eight_threads_add_different_skus_to_one_cart(
    carts: Carts, book: InMemoryPriceBook
) -> None:
    skus = [f"SKU-{t}-{i}" for t in range(8) for i in range(4)]
    for sku in skus:
        book.set_price(sku, sku, usd("1.00"))
    cart_id = new_cart(carts)
    barrier = threading.Barrier(8)

    def add_four(thread: int) -> None:
        barrier.wait()
        for i in range(4):
            carts.add_item(AddItem(cart_id=cart_id, sku=f"SKU-{thread}-{i}", quantity=1))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(add_four, range(8)))
    view = carts.get(cart_id)
    assert sorted(line.sku for line in view.lines) == sorted(skus)
    assert view.version == 1 + len(skus)
    assert view.total == usd("32.00")


# --- checkout -------------------------------------------------------------------------------


def test_checkout_places_one_order_when_repeated(carts: Carts, orders: FakeOrders) -> None:
    cart_id = guest(carts)
    carts.add_item(AddItem(cart_id=cart_id, sku="MUG", quantity=2))
    order_id = carts.checkout(CheckoutCart(cart_id=cart_id, expected_version=2))
    assert order_id == checkout_order_id(cart_id, 2)
    assert carts.checkout(CheckoutCart(cart_id=cart_id)) == order_id
    assert carts.checkout(CheckoutCart(cart_id=cart_id, expected_version=2)) == order_id
    with pytest.raises(ConcurrencyConflictError):
        carts.checkout(CheckoutCart(cart_id=cart_id, expected_version=1))
    assert list(orders.placed) == [order_id]
    fingerprint, customer_id, quote = orders.placed[order_id]
    assert len(fingerprint) == 64
    assert customer_id == "session:s-1"
    assert [(line.sku, line.name, line.unit_price, line.quantity) for line in quote.lines] == [
        ("MUG", "Mug", usd("9.50"), 2)
    ]
    view = carts.get(cart_id)
    assert (view.status, view.order_id, view.version) == (CartStatus.CHECKED_OUT, order_id, 3)
    events = list(carts.events.get(cart_id))
    assert sum(isinstance(e, Cart.CheckedOut) for e in events) == 1


def test_checkout_is_refused_when_the_cart_is_empty_or_stale(
    carts: Carts, orders: FakeOrders
) -> None:
    cart_id = new_cart(carts)
    with pytest.raises(EmptyCartError):
        carts.checkout(CheckoutCart(cart_id=cart_id))
    carts.add_item(AddItem(cart_id=cart_id, sku="MUG", quantity=1))
    with pytest.raises(ConcurrencyConflictError):
        carts.checkout(CheckoutCart(cart_id=cart_id, expected_version=1))
    assert orders.calls == 0
    assert carts.get(cart_id).status is CartStatus.ACTIVE


def test_retried_checkout_finishes_with_the_same_order_when_it_crashed_after_placing(
    carts: Carts, orders: FakeOrders
) -> None:
    cart_id = new_cart(carts)
    carts.add_item(AddItem(cart_id=cart_id, sku="TEE", quantity=1))
    orders.crash_after_placing = True
    with pytest.raises(SimulatedCrashError):
        carts.checkout(CheckoutCart(cart_id=cart_id))
    (placed,) = orders.placed
    view = carts.get(cart_id)
    assert (view.status, view.version) == (CartStatus.ACTIVE, 2)

    assert carts.checkout(CheckoutCart(cart_id=cart_id)) == placed
    assert list(orders.placed) == [placed]
    assert carts.get(cart_id).order_id == placed


def test_one_order_is_placed_when_threads_check_out_one_cart_concurrently(
    carts: Carts, orders: FakeOrders
) -> None:
    cart_id = new_cart(carts)
    carts.add_item(AddItem(cart_id=cart_id, sku="CAP", quantity=1))
    barrier = threading.Barrier(6)

    def check_out(_: int) -> UUID:
        barrier.wait()
        return carts.checkout(CheckoutCart(cart_id=cart_id))

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = set(pool.map(check_out, range(6)))
    assert ids == set(orders.placed) == {checkout_order_id(cart_id, 2)}


# --- checkout against the real Orders and Inventory -----------------------------------------


@pytest.fixture
def shop(
    env: dict[str, str], book: InMemoryPriceBook, fake_clock: FakeClock, tmp_path: Path
) -> Iterator[tuple[Carts, Orders, Inventory]]:
    def env_for(name: str) -> dict[str, str]:
        if env["PERSISTENCE_MODULE"] == "eventsourcing.popo":
            return dict(env)
        return {**env, "SQLITE_DBNAME": str(tmp_path / f"{name}.sqlite")}

    pricing = Pricing(book)
    inventory = Inventory(env_for("inventory"), clock=fake_clock)
    orders = Orders(env_for("orders"), inventory=inventory, pricing=pricing, clock=fake_clock)
    carts = Carts(env_for("carts"), orders=orders, pricing=pricing, clock=fake_clock)
    for sku, price in (("MUG", "9.50"), ("TEE", "19.99")):
        inventory.register(
            RegisterItem(
                sku=sku,
                product_id=sku.lower(),
                name=sku,
                unit_price=usd(price),
                initial_quantity=5,
            )
        )
    try:
        yield carts, orders, inventory
    finally:
        carts.close()
        orders.close()
        inventory.close()


def test_checkout_places_a_real_order_and_reserves_stock_once(
    shop: tuple[Carts, Orders, Inventory],
) -> None:
    carts, orders, inventory = shop
    cart_id = new_cart(carts)
    carts.add_item(AddItem(cart_id=cart_id, sku="MUG", quantity=2))
    carts.add_item(AddItem(cart_id=cart_id, sku="TEE", quantity=1))
    order_id = carts.checkout(CheckoutCart(cart_id=cart_id))
    assert carts.checkout(CheckoutCart(cart_id=cart_id)) == order_id
    order = orders.get(order_id)
    assert order.customer_id == "c-1"
    assert [(line.sku, line.name, line.unit_price, line.quantity) for line in order.lines] == [
        ("MUG", "Mug", usd("9.50"), 2),
        ("TEE", "T-shirt", usd("19.99"), 1),
    ]
    assert order.total == usd("38.99")
    assert inventory.item("MUG").reserved == 2
    assert inventory.item("TEE").reserved == 1


def test_insufficient_stock_leaves_the_cart_active_when_checking_out(
    shop: tuple[Carts, Orders, Inventory],
) -> None:
    carts, _, inventory = shop
    cart_id = new_cart(carts)
    carts.add_item(AddItem(cart_id=cart_id, sku="MUG", quantity=6))
    with pytest.raises(InsufficientStockError):
        carts.checkout(CheckoutCart(cart_id=cart_id))
    view = carts.get(cart_id)
    assert (view.status, view.version) == (CartStatus.ACTIVE, 2)
    assert inventory.item("MUG").reserved == 0


def test_retried_checkout_completes_the_real_order_when_the_cart_save_was_lost(
    shop: tuple[Carts, Orders, Inventory], monkeypatch: pytest.MonkeyPatch
) -> None:
    carts, orders, inventory = shop
    cart_id = new_cart(carts)
    carts.add_item(AddItem(cart_id=cart_id, sku="TEE", quantity=2))
    real_save = carts.save

    def crash(*aggregates: Any, **kwargs: Any) -> Any:
        raise SimulatedCrashError("crashed before the checkout was recorded")

    monkeypatch.setattr(carts, "save", crash)
    with pytest.raises(SimulatedCrashError):
        carts.checkout(CheckoutCart(cart_id=cart_id))
    monkeypatch.setattr(carts, "save", real_save)
    assert carts.get(cart_id).status is CartStatus.ACTIVE

    order_id = carts.checkout(CheckoutCart(cart_id=cart_id))
    assert order_id == checkout_order_id(cart_id, 2)
    assert orders.get(order_id).total == usd("39.98")
    assert inventory.item("TEE").reserved == 2


# --- bad input ------------------------------------------------------------------------------

COMMANDS: list[type[Command]] = [
    CreateCart,
    AddItem,
    ChangeQuantity,
    RemoveItem,
    ClearCart,
    DeleteCart,
    ApplyDiscountCode,
    RemoveDiscountCode,
    RefreshPrices,
    MergeCarts,
    CheckoutCart,
]
FIELD_NAMES = sorted({name for cmd in COMMANDS for name in cmd.model_fields})
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=300)
    | st.sampled_from(["USD", "usd", "XXX", str(uuid4()), "MUG", "", " ", "\x00", "999"])
    | st.uuids(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=6,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(COMMANDS),
    st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=10), JSON_VALUES, max_size=5),
)
def test_payload_validates_or_raises_invalid_command_error_when_arbitrary(
    command: type[Command], payload: dict[str, Any]
) -> None:
    problems: tuple[Any, ...] = ()
    try:
        validated = command.model_validate(payload)
    except InvalidCommandError as error:
        problems = error.errors
    else:
        assert isinstance(validated, command)
        return
    assert problems


@pytest.mark.parametrize(
    ("command", "payload"),
    [
        (CreateCart, {"currency": "USD"}),
        (CreateCart, {"customer_id": "c", "session_id": "s", "currency": "USD"}),
        (CreateCart, {"customer_id": "c", "currency": "usd"}),
        (AddItem, {"cart_id": "not-a-uuid", "sku": "MUG", "quantity": 1}),
        (AddItem, {"cart_id": str(uuid4()), "sku": "MUG", "quantity": 1.0}),
        (AddItem, {"cart_id": str(uuid4()), "sku": "MUG", "quantity": True}),
        (ChangeQuantity, {"cart_id": str(uuid4()), "sku": "MUG", "quantity": 1000}),
        (ChangeQuantity, {"cart_id": str(uuid4()), "sku": "MUG", "quantity": -1}),
        (MergeCarts, {"guest_cart_id": str(UUID(int=1)), "customer_cart_id": str(UUID(int=1))}),
        (CheckoutCart, {"cart_id": str(uuid4()), "expected_version": 0}),
        (ApplyDiscountCode, {"cart_id": str(uuid4()), "code": ""}),
    ],
)
def test_invalid_command_error_when_a_payload_breaks_a_rule(
    command: type[Command], payload: dict[str, Any]
) -> None:
    with pytest.raises(InvalidCommandError):
        command.model_validate(payload)


def test_commands_accept_json_when_the_payload_is_valid() -> None:
    cart_id = uuid4()
    assert ChangeQuantity.model_validate_json(
        f'{{"cart_id": "{cart_id}", "sku": "MUG", "quantity": 0}}'
    ) == ChangeQuantity(cart_id=cart_id, sku="MUG", quantity=0)
    assert CreateCart(session_id="s", currency="JPY").customer_id is None

"""The end-to-end demo: stock, carts, sagas that fulfil or compensate, cancellation, returns.

Runs on the embedded default (SQLite files in a fresh temporary folder, or in
``--data-dir``) and checks every step as it goes; it exits with status 1 if any
step does not behave as described. Run it with ``python -m suuupra_commerce.demo``.
The store is the environment's, as for ``Commerce.from_env``: with
``COMMERCE_PERSISTENCE=postgres`` (and the ``POSTGRES_*`` keys), ``redis`` or ``memory``
it runs there instead. It needs an empty store: the SKUs it registers must be new.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.carts.commands import AddItem, CheckoutCart, CreateCart
from suuupra_commerce.errors import CommerceError, InsufficientStockError
from suuupra_commerce.inventory.commands import AddLocation, ReceiveStock, RegisterItem
from suuupra_commerce.messaging import decode
from suuupra_commerce.money import Money
from suuupra_commerce.orders.commands import (
    ApproveReturn,
    CancelOrder,
    DeliverOrder,
    OrderLineRequest,
    PlaceOrder,
    ReceiveReturn,
    RequestReturn,
    ShipOrder,
)
from suuupra_commerce.orders.lifecycle import OrderStatus, PaymentStatus
from suuupra_commerce.pricing import FlatRateShipping, FlatRateTax
from suuupra_commerce.sagas.domain import SagaStatus
from suuupra_commerce.sagas.orders import CancellationOutcome, fulfilment_saga_id
from suuupra_commerce.system import Commerce
from suuupra_commerce.testing.replay import replay, state_of
from suuupra_commerce.testing.sagas import (
    FakeNotifier,
    FakePaymentGateway,
    FakeShippingProvider,
)

__all__ = ["main", "run"]

T = TypeVar("T")


class Account:
    """Prints the story and keeps score of the checks."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.failures: list[str] = []

    def step(self, title: str) -> None:
        self.out(f"\n== {title}")

    def say(self, text: str) -> None:
        self.out(f"   {text}")

    def check(self, ok: bool, claim: str) -> None:
        self.out(f"   [{'ok' if ok else 'FAILED'}] {claim}")
        if not ok:
            self.failures.append(claim)


def _levels(commerce: Commerce, sku: str) -> str:
    item = commerce.inventory.item(sku)
    where = ", ".join(
        f"{name} {loc.on_hand}/{loc.reserved}" for name, loc in item.locations.items()
    )
    return (
        f"{sku}: on hand {item.on_hand}, reserved {item.reserved}, available {item.available}"
        f"  (on hand/reserved by location: {where})"
    )


def run(data_dir: Path, out: Callable[[str], None] = print) -> int:
    """Run the demo; returns the number of failed checks.

    The store is the one the environment names (SQLite files in ``data_dir`` by default).
    """
    account = Account(out)
    prices = InMemoryPriceBook()
    prices.set_price("MUG-1", "Stoneware mug", Money("9.50", "USD"))
    prices.set_price("TEE-M", "T-shirt, medium", Money("19.99", "USD"))
    # COMMERCE_PERSISTENCE and the stores' own keys come from the environment.
    env = {"COMMERCE_SQLITE_DIR": str(data_dir)}
    payments, carrier, notifier = FakePaymentGateway(), FakeShippingProvider(), FakeNotifier()
    with Commerce.from_env(
        env,
        price_book=prices,
        tax=FlatRateTax(Decimal("0.08")),
        shipping=FlatRateShipping(Money("4.99", "USD"), free_from=Money("50.00", "USD")),
        payments=payments,
        shipping_provider=carrier,
        notifier=notifier,
    ) as shop:
        inventory, orders, carts = shop.inventory, shop.orders, shop.carts
        account.say(f"store: {_store(shop, data_dir)}")
        account.say("payments, carrier and notifications: the library's in-memory fakes")

        account.step("1. Stock registered at two locations")
        inventory.register(
            RegisterItem(
                sku="MUG-1",
                product_id="mug",
                name="Stoneware mug",
                unit_price=Money("9.50", "USD"),
                location="east",
                initial_quantity=3,
                low_stock_threshold=2,
            )
        )
        inventory.add_location(AddLocation(sku="MUG-1", location="west", priority=1))
        inventory.receive(ReceiveStock(sku="MUG-1", location="west", quantity=5, reference="po-1"))
        inventory.register(
            RegisterItem(
                sku="TEE-M",
                product_id="tee",
                name="T-shirt, medium",
                unit_price=Money("19.99", "USD"),
                location="east",
                initial_quantity=4,
            )
        )
        account.say(_levels(shop, "MUG-1"))
        account.say(_levels(shop, "TEE-M"))
        account.check(inventory.item("MUG-1").on_hand == 8, "MUG-1 has 8 units over 2 locations")

        account.step("2. A cart with two lines, checked out into an order")
        cart_id = carts.create(CreateCart(customer_id="alice", currency="USD"))
        carts.add_item(AddItem(cart_id=cart_id, sku="MUG-1", quantity=4))
        carts.add_item(AddItem(cart_id=cart_id, sku="TEE-M", quantity=2))
        cart = carts.get(cart_id)
        for line in cart.lines:
            account.say(f"{line.quantity} x {line.name} at {line.unit_price} = {line.total}")
        account.say(
            f"subtotal {cart.subtotal}, tax {cart.tax}, "
            f"shipping {cart.shipping}, total {cart.total}"
        )
        account.check(
            cart.total == Money("84.22", "USD"),
            "77.98 + 8% tax rounded per line (3.04 + 3.20), free shipping over 50: 84.22 USD",
        )
        order_id = carts.checkout(CheckoutCart(cart_id=cart_id))
        again = carts.checkout(CheckoutCart(cart_id=cart_id))
        account.say(f"order {order_id}")
        account.check(again == order_id, "checking out again returns the same order")
        order = orders.get(order_id)
        account.check(order.total == cart.total, "the order snapshots the cart's prices and total")

        account.step("3. The fulfilment saga: reserve, authorize, confirm, capture, book, notify")
        account.say(_levels(shop, "MUG-1"))
        mug = inventory.item("MUG-1")
        account.check(
            mug.locations["east"].reserved == 3 and mug.locations["west"].reserved == 1,
            "4 mugs reserved: 3 from east (first priority), 1 from west",
        )
        moved = shop.engine.run_until_idle()
        saga = shop.sagas.get(fulfilment_saga_id(order_id))
        account.say(f"the saga engine moved {moved} messages; the saga is {saga.status.value}")
        order = orders.get(order_id)
        account.say(
            f"order is {order.status}, payment {order.payment_status} ({order.captured}), "
            f"shipment {saga.results['create_shipment']['tracking_number']}"
        )
        account.check(saga.status is SagaStatus.COMPLETED, "the fulfilment saga completed")
        account.check(
            order.status is OrderStatus.PROCESSING and order.captured == order.total,
            "the order is being fulfilled and its total captured",
        )
        account.check(notifier.to(order_id) == ["order_confirmed"], "alice was told, once")
        orders.ship(ShipOrder(order_id=order_id, shipment_id="parcel-1", carrier="ups"))
        orders.deliver(DeliverOrder(order_id=order_id))
        order = orders.get(order_id)
        account.say(
            f"shipped and delivered: order is {order.status}, fulfilment {order.fulfilment_status}"
        )
        account.say(_levels(shop, "MUG-1"))
        account.say(_levels(shop, "TEE-M"))
        account.check(order.status is OrderStatus.DELIVERED, "the order is delivered")
        account.check(
            inventory.item("MUG-1").on_hand == 4 and inventory.item("MUG-1").reserved == 0,
            "shipping took 4 mugs off hand and out of reserved",
        )
        account.check(inventory.item("MUG-1").low_stock is False, "4 mugs left: not yet low")

        account.step("4. A second order refused for insufficient stock, with nothing written")
        before = (inventory.recorder.max_notification_id(), orders.recorder.max_notification_id())
        tee_before = inventory.item("TEE-M")
        try:
            orders.place(
                PlaceOrder(
                    idempotency_key="bob-1",
                    customer_id="bob",
                    currency="USD",
                    lines=[
                        OrderLineRequest(sku="MUG-1", quantity=1),
                        OrderLineRequest(sku="TEE-M", quantity=3),
                    ],
                )
            )
            account.check(False, "ordering 3 T-shirts when 2 are left is refused")
        except InsufficientStockError as refused:
            account.say(f"refused: {refused}")
            account.check(refused.sku == "TEE-M", "ordering 3 T-shirts when 2 are left is refused")
        after = (inventory.recorder.max_notification_id(), orders.recorder.max_notification_id())
        account.check(before == after, "no event was written to inventory or orders")
        account.check(
            inventory.item("TEE-M") == tee_before and inventory.item("MUG-1").reserved == 0,
            "neither SKU's stock changed (the mug line was not reserved either)",
        )

        account.step("5. A cancellation, before fulfilment starts, that releases stock")
        carol = orders.place(
            PlaceOrder(
                idempotency_key="carol-1",
                customer_id="carol",
                currency="USD",
                lines=[OrderLineRequest(sku="MUG-1", quantity=3)],
            )
        )
        account.say(_levels(shop, "MUG-1"))
        account.check(
            inventory.item("MUG-1").low_stock, "3 of 4 mugs reserved: low stock signalled"
        )
        outcome = shop.order_sagas.cancel(CancelOrder(order_id=carol, reason="changed mind"))
        shop.engine.run_until_idle()
        account.say(f"carol's order is {orders.get(carol).status}")
        account.say(_levels(shop, "MUG-1"))
        account.check(
            outcome is CancellationOutcome.CANCELLED, "a pending order is cancelled at once"
        )
        account.check(
            shop.sagas.find(fulfilment_saga_id(carol)) is None, "and its fulfilment never starts"
        )
        account.check(inventory.item("MUG-1").reserved == 0, "its 3 mugs are released")
        account.check(not inventory.item("MUG-1").low_stock, "and the low-stock signal clears")

        account.step("6. A declined payment: the saga compensates")
        payments.decline("insufficient funds", order_id=None)
        dave = orders.place(
            PlaceOrder(
                idempotency_key="dave-1",
                customer_id="dave",
                currency="USD",
                lines=[OrderLineRequest(sku="TEE-M", quantity=2)],
            )
        )
        account.say(_levels(shop, "TEE-M"))
        shop.engine.run_until_idle()
        declined = shop.sagas.get(fulfilment_saga_id(dave))
        for entry in declined.format_timeline().splitlines():
            account.say(entry)
        account.say(_levels(shop, "TEE-M"))
        account.check(declined.status is SagaStatus.COMPENSATED, "the saga compensated")
        account.check(
            orders.get(dave).status is OrderStatus.CANCELLED
            and orders.get(dave).payment_status is PaymentStatus.FAILED,
            "dave's order is cancelled, its payment failed",
        )
        account.check(inventory.item("TEE-M").available == 2, "the 2 T-shirts are released")
        account.check(payments.of_order(dave) == [], "no authorization was left open")

        account.step("7. A partial return that restocks")
        orders.request_return(
            RequestReturn(
                order_id=order_id, return_id="rma-1", lines={"MUG-1": 1}, reason="chipped"
            )
        )
        orders.approve_return(ApproveReturn(order_id=order_id, return_id="rma-1"))
        value = orders.receive_return(ReceiveReturn(order_id=order_id, return_id="rma-1"))
        orders.receive_return(ReceiveReturn(order_id=order_id, return_id="rma-1"))
        order = orders.get(order_id)
        account.say(f"returned 1 mug worth {value}; order is {order.status}")
        account.say(f"refund pending {order.refund_pending}, payment {order.payment_status}")
        account.say(_levels(shop, "MUG-1"))
        account.check(value == Money("10.26", "USD"), "one mug's share of its line is 10.26 USD")
        account.check(
            order.status is OrderStatus.PARTIALLY_RETURNED, "the order is partly returned"
        )
        account.check(
            order.payment_status is PaymentStatus.CAPTURED, "refund is initiated, not paid"
        )
        account.check(
            inventory.item("MUG-1").on_hand == 5, "the mug is back on hand, once (received twice)"
        )

        if shop.settings.messaging != "none":
            _integration_events(shop, account, str(order_id))

        account.step("8. Replay equals live state")
        if shop.settings.persistence == "memory":
            account.say("in memory nothing outlives the process: replaying this store's events")
            for sku in ("MUG-1", "TEE-M"):
                item_id = inventory.item(sku).inventory_id
                account.check(
                    _replays(inventory.events.get(item_id), inventory.aggregate(sku)),
                    f"{sku}: its events replay to the live item",
                )
            account.check(
                _replays(orders.events.get(order_id), orders.aggregate(order_id)),
                "alice's order: its events replay to the live order",
            )
            account.check(
                _replays(
                    shop.sagas.events.get(declined.saga_id), shop.sagas.aggregate(declined.saga_id)
                ),
                "dave's saga: its events replay to the live saga",
            )
            return _verdict(account, out)
        fresh = Commerce.from_env(env, price_book=prices)
        try:
            for sku in ("MUG-1", "TEE-M"):
                account.check(
                    fresh.inventory.item(sku) == inventory.item(sku),
                    f"{sku}: a new process rebuilds the same levels from the stored events",
                )
            account.check(
                fresh.orders.get(order_id) == orders.get(order_id),
                "alice's order rebuilds to the same state",
            )
            account.check(
                fresh.sagas.get(declined.saga_id).timeline == declined.timeline,
                "dave's saga rebuilds to the same timeline",
            )
        finally:
            fresh.close()
    return _verdict(account, out)


def _integration_events(shop: Commerce, account: Account, order_id: str) -> None:
    """The outbox relays publish what happened as integration events on the configured bus."""
    account.step(f"Integration events on the {shop.settings.messaging} bus (COMMERCE_MESSAGING)")
    published = sum(relay.run_until_caught_up() for relay in shop.relays)
    account.say(f"the relays read {published} recorded events and published what others need")
    bus = shop.bus
    if bus is None:
        return
    consumer = bus.consumer("commerce.orders", f"demo-{uuid4().hex[:8]}", "reader")
    try:
        seen: list[str] = []
        while batch := consumer.receive(max_messages=100):
            events = [decode(delivery.envelope) for delivery in batch]
            seen += [e.event_type for e in events if getattr(e, "order_id", None) == order_id]
            consumer.ack(*batch)
    finally:
        consumer.close()
    account.say(f"alice's order on commerce.orders: {', '.join(seen)}")
    account.check(
        seen[:1] == ["commerce.order.placed"] and "commerce.order.payment_captured" in seen,
        "alice's order was published placed first, then paid",
    )


def _store(shop: Commerce, data_dir: Path) -> str:
    settings = shop.settings
    if settings.persistence == "sqlite":
        return f"SQLite files in {data_dir}"
    if settings.persistence == "postgres":
        where = settings.postgres
        return (
            f"PostgreSQL database {where.get('POSTGRES_DBNAME', '?')} on "
            f"{where.get('POSTGRES_HOST', '?')}:{where.get('POSTGRES_PORT', '5432')}, "
            f"schema {where.get('POSTGRES_SCHEMA') or 'public'}"
        )
    if settings.persistence == "redis":
        return f"Redis, keys under {settings.redis.get('REDIS_KEY_PREFIX', 'eventsourcing:')}"
    return "in memory (gone when the demo ends)"


def _replays(events: Iterable[Any], live: Any) -> bool:
    return bool(state_of(replay(events)) == state_of(live))


def _verdict(account: Account, out: Callable[[str], None]) -> int:
    out("")
    if account.failures:
        out(f"demo FAILED: {len(account.failures)} check(s) did not hold")
    else:
        out("demo passed: every step behaved as described")
    return len(account.failures)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="folder for the SQLite files (default: a new temporary folder)",
    )
    args = parser.parse_args(argv)
    try:
        if args.data_dir is not None:
            return 1 if run(args.data_dir) else 0
        with tempfile.TemporaryDirectory(prefix="suuupra-commerce-demo-") as tmp:
            return 1 if run(Path(tmp)) else 0
    except CommerceError as error:
        print(f"demo FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

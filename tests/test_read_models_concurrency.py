"""Queries read the read models safely while other threads write and fold events in."""

from __future__ import annotations

import threading

from suuupra_commerce import (
    AddItem,
    Commerce,
    CreateCart,
    Money,
    OrderLineRequest,
    PlaceOrder,
    RegisterItem,
)

WRITERS = 4
ORDERS_EACH = 40


def test_queries_never_fail_when_writers_run_alongside(commerce: Commerce) -> None:
    commerce.inventory.register(
        RegisterItem(
            sku="MUG-1",
            product_id="mug",
            name="Mug",
            unit_price=Money("9.50", "USD"),
            initial_quantity=WRITERS * ORDERS_EACH,
        )
    )
    done = threading.Event()
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(ORDERS_EACH):
                commerce.orders.place(
                    PlaceOrder(
                        idempotency_key=f"w{worker}-{n}",
                        customer_id=f"c{n % 3}",
                        currency="USD",
                        lines=[OrderLineRequest(sku="MUG-1", quantity=1)],
                    )
                )
                cart = commerce.carts.create(CreateCart(customer_id=f"c{n % 3}", currency="USD"))
                commerce.carts.add_item(AddItem(cart_id=cart, sku="MUG-1", quantity=1))
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            failures.append(error)

    def read() -> None:
        try:
            while not done.is_set():
                commerce.orders.listing(limit=1000)
                commerce.orders.for_customer("c1")
                commerce.orders.count_by_status()
                commerce.inventory.summary()
                commerce.inventory.low_stock()
                commerce.carts.active_cart("c2")
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            failures.append(error)

    writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in writers + readers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in readers:
        thread.join()

    assert failures == []
    assert len(commerce.orders.listing(limit=1000)) == WRITERS * ORDERS_EACH
    assert commerce.inventory.summary().reserved == WRITERS * ORDERS_EACH

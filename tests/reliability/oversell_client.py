"""One client process of the no-oversell test: places single-unit orders from several threads.

``python oversell_client.py NAME ATTEMPTS THREADS SKU [SKU ...]``, with the store's settings
in the environment; the order of SKUs tried is fixed by NAME. Prints one JSON line:
``{"placed": {order_id: sku}, "refused": n, "other": {error: n}, "resent": n}``.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from collections import Counter
from uuid import UUID

from suuupra_commerce import (
    Commerce,
    ConcurrencyConflictError,
    InsufficientStockError,
    Money,
    OrderLineRequest,
    PlaceOrder,
)
from suuupra_commerce.adapters.memory import InMemoryPriceBook

#: How often a command that lost every race is sent again before it counts as an error.
RESENDS = 3


def main(name: str, attempts: int, threads: int, skus: list[str]) -> None:
    book = InMemoryPriceBook()
    for sku in skus:
        book.set_price(sku, sku.lower(), Money("3.00", "USD"))
    picks = random.Random(name).choices(skus, k=attempts)
    placed: dict[str, str] = {}
    refused = 0
    other: Counter[str] = Counter()
    resent = [0]
    lock = threading.Lock()
    with Commerce.from_env(None, price_book=book) as shop:

        def place(command: PlaceOrder) -> UUID:
            # As a host does: a command that kept losing races wrote nothing, so it is sent
            # again under its idempotency key (a few times), and counted.
            for _ in range(RESENDS):
                try:
                    return shop.orders.place(command)
                except ConcurrencyConflictError:
                    with lock:
                        resent[0] += 1
            return shop.orders.place(command)

        def run(part: int) -> None:
            nonlocal refused
            for n in range(part, attempts, threads):
                command = PlaceOrder(
                    idempotency_key=f"{name}-{n}",
                    customer_id=name,
                    currency="USD",
                    lines=[OrderLineRequest(sku=picks[n], quantity=1)],
                )
                try:
                    order_id = place(command)
                except InsufficientStockError:
                    with lock:
                        refused += 1
                except Exception as error:  # noqa: BLE001 - reported to the test
                    with lock:
                        other[type(error).__name__] += 1
                else:
                    with lock:
                        placed[str(order_id)] = picks[n]

        workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    result = {"placed": placed, "refused": refused, "other": other, "resent": resent[0]}
    print(json.dumps(result))  # noqa: T201


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])

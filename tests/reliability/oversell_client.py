"""One client process of the no-oversell test: places single-unit orders from several threads.

``python oversell_client.py NAME ATTEMPTS THREADS SKU [SKU ...]``, with the store's settings
in the environment; the order of SKUs tried is fixed by NAME. Prints one JSON line:
``{"placed": {order_id: sku}, "refused": n, "other": {error: n}}``.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from collections import Counter

from suuupra_commerce import (
    Commerce,
    InsufficientStockError,
    Money,
    OrderLineRequest,
    PlaceOrder,
)
from suuupra_commerce.adapters.memory import InMemoryPriceBook


def main(name: str, attempts: int, threads: int, skus: list[str]) -> None:
    book = InMemoryPriceBook()
    for sku in skus:
        book.set_price(sku, sku.lower(), Money("3.00", "USD"))
    picks = random.Random(name).choices(skus, k=attempts)
    placed: dict[str, str] = {}
    refused = 0
    other: Counter[str] = Counter()
    lock = threading.Lock()
    with Commerce.from_env(None, price_book=book) as shop:

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
                    order_id = shop.orders.place(command)
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
    print(json.dumps({"placed": placed, "refused": refused, "other": other}))  # noqa: T201


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])

"""Commands per second on one hot SKU with a long history, against eventsourcing's own save rate.

Usage: ``.venv/bin/python benchmarks/hot_sku.py [--history 500] [--orders 100] [--threads 4]``
(about 30 seconds with the defaults).

Everything runs on SQLite files in a fresh temporary folder, in one run, so the ratios
compare like with like on a noisy machine:

* reference: eventsourcing's plain ``save`` of a one-event aggregate change, one thread;
* the library: ``reserve``, ``confirm`` and ``fulfil`` of one unit, per order, on one SKU
  that already has ``--history`` orders behind it, from ``--threads`` threads, with the
  aggregate cache on (the default), then off (``COMMERCE_AGGREGATE_CACHE_SIZE=0``, where
  every command replays the whole history; ``--uncached-orders`` of them).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from suuupra_commerce import (
    ConfirmReservation,
    FulfilReservation,
    Inventory,
    Money,
    RegisterItem,
    ReservationLine,
    ReserveStock,
    Settings,
)
from suuupra_commerce.inventory.domain import reservation_id_for


class Counter(Aggregate):
    """The reference aggregate: one small event per save."""

    @event("Created")
    def __init__(self) -> None:
        self.count = 0

    @event("Incremented")
    def increment(self) -> None:
        self.count += 1


def reference_saves_per_second(folder: Path, saves: int) -> float:
    app: Application[UUID] = Application(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(folder / "reference.sqlite"),
        }
    )
    counter = Counter()
    app.save(counter)
    started = time.perf_counter()
    for _ in range(saves):
        counter.increment()
        app.save(counter)
    elapsed = time.perf_counter() - started
    app.close()
    return saves / elapsed


def order_cycles(inventory: Inventory, prefix: str, orders: int, threads: int) -> float:
    """Commands per second for ``orders`` reserve/confirm/fulfil cycles over ``threads``."""

    def work(worker: int) -> None:
        for n in range(worker, orders, threads):
            order_id = f"{prefix}-{n}"
            inventory.reserve(
                ReserveStock(order_id=order_id, lines=[ReservationLine(sku="HOT-1", quantity=1)])
            )
            reservation = reservation_id_for(order_id, "HOT-1")
            inventory.confirm(ConfirmReservation(sku="HOT-1", reservation_id=reservation))
            inventory.fulfil(FulfilReservation(sku="HOT-1", reservation_id=reservation))

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return 3 * orders / (time.perf_counter() - started)


def library_commands_per_second(
    folder: Path, history: int, orders: int, uncached_orders: int, threads: int
) -> tuple[float, float]:
    """Commands per second with the aggregate cache on, then off, on one store."""

    def inventory(cache_size: int) -> Inventory:
        settings = Settings.from_env(
            {
                "COMMERCE_PERSISTENCE": "sqlite",
                "COMMERCE_SQLITE_DIR": str(folder / "library"),
                "COMMERCE_AGGREGATE_CACHE_SIZE": str(cache_size),
            }
        )
        return Inventory(settings.application_env(Inventory.name))

    cached = inventory(1000)
    cached.register(
        RegisterItem(
            sku="HOT-1",
            product_id="hot",
            name="Hot item",
            unit_price=Money("1.00", "USD"),
            initial_quantity=history + orders + uncached_orders,
        )
    )
    order_cycles(cached, "history", history, threads)
    with_cache = order_cycles(cached, "cached", orders, threads)
    uncached = inventory(0)
    without_cache = order_cycles(uncached, "uncached", uncached_orders, threads)
    for service in (cached, uncached):
        item = service.item("HOT-1")
        if (item.on_hand, item.reserved) != (0, 0):
            msg = f"stock does not balance: on hand {item.on_hand}, reserved {item.reserved}"
            raise SystemExit(msg)
        service.close()
    return with_cache, without_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--history", type=int, default=500)
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--uncached-orders", type=int, default=20)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hot-sku-") as tmp:
        folder = Path(tmp)
        reference = reference_saves_per_second(folder, 1000)
        cached, uncached = library_commands_per_second(
            folder, args.history, args.orders, args.uncached_orders, args.threads
        )
    rows = [
        ("eventsourcing save, 1 thread (reference)", reference),
        (f"hot SKU, {args.history} orders behind, cache on", cached),
        (f"hot SKU, {args.history} orders behind, cache off", uncached),
    ]
    print(f"{'what':<48} {'per second':>10} {'/ reference':>12}")  # noqa: T201
    for what, rate in rows:
        print(f"{what:<48} {rate:>10.0f} {rate / reference:>12.3f}")  # noqa: T201


if __name__ == "__main__":
    main()

"""Saves per second on the Redis store against eventsourcing's POPO and SQLite stores, one run.

Usage: ``.venv/bin/python benchmarks/redis_saves.py [--saves 3000] [--threads 4]
[--url redis://127.0.0.1:6379/0]`` (about 15 seconds with the defaults).

Each store gets eventsourcing's plain ``save`` of a one-event aggregate change, from one
thread and then from ``--threads`` threads (each on its own aggregate), and the library's
``Inventory.register`` of a new SKU (look up, decide, save) from one thread. The keys live under a
prefix of their own, deleted afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from uuid import UUID

import redis
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from suuupra_commerce import Inventory, Money, RegisterItem


class Counter(Aggregate):
    """The reference aggregate: one small event per save."""

    @event("Created")
    def __init__(self) -> None:
        self.count = 0

    @event("Incremented")
    def increment(self) -> None:
        self.count += 1


def saves_per_second(env: Mapping[str, str], saves: int, threads: int) -> float:
    app: Application[UUID] = Application(env=dict(env))
    each = saves // threads

    def run() -> None:
        counter = Counter()
        app.save(counter)
        for _ in range(each):
            counter.increment()
            app.save(counter)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    app.close()
    return each * threads / elapsed


def registers_per_second(env: Mapping[str, str], commands: int) -> float:
    with Inventory(dict(env)) as inventory:
        started = time.perf_counter()
        for i in range(commands):
            inventory.register(
                RegisterItem(
                    sku=f"SKU-{i}",
                    product_id=f"p-{i}",
                    name="Mug",
                    unit_price=Money("9.50", "USD"),
                    initial_quantity=5,
                )
            )
        return commands / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    prefix = f"bench-{uuid.uuid4().hex[:12]}:"
    folder = tempfile.TemporaryDirectory()
    stores: dict[str, dict[str, str]] = {
        "popo": {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        "sqlite": {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(Path(folder.name) / "bench.sqlite"),
        },
        "redis": {
            "PERSISTENCE_MODULE": "suuupra_commerce.adapters.redis",
            "REDIS_URL": args.url,
            "REDIS_KEY_PREFIX": prefix,
        },
    }
    measures: dict[str, Callable[[Mapping[str, str]], float]] = {
        "save, 1 thread": lambda env: saves_per_second(env, args.saves, 1),
        f"save, {args.threads} threads": lambda env: saves_per_second(
            env, args.saves, args.threads
        ),
        "Inventory.register, 1 thread": lambda env: registers_per_second(env, args.saves // 3),
    }
    try:
        print(f"{'per second':32}" + "".join(f"{name:>10}" for name in stores) + "   redis/popo")  # noqa: T201
        for label, measure in measures.items():
            rates = {name: measure(env) for name, env in stores.items()}
            cells = "".join(f"{rate:>10.0f}" for rate in rates.values())
            print(f"{label:32}{cells}{rates['redis'] / rates['popo']:>13.2f}")  # noqa: T201
    finally:
        folder.cleanup()
        client = redis.Redis.from_url(args.url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


if __name__ == "__main__":
    main()

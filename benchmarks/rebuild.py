"""Read-model rebuild rate (events/s), against reading and decoding the same log, per backend.

Usage: ``.venv/bin/python benchmarks/rebuild.py [--events 100000] [--backends memory,postgres]``
(backends: memory, sqlite, postgres; all three by default).

For each backend: the inventory's log is filled with ``--events`` real inventory events
(items registered, then stock received, saved in batches straight through the
application, since the commands' speed is not what is measured), then:

* reference: reading the whole notification log and decoding every event
  (``select_notifications`` + ``mapper.to_domain_event``), the floor under any fold;
* rebuild: ``Commerce.rebuild_views()``: the view store emptied, every event folded and
  committed with its position in batches.

PostgreSQL runs in a schema of its own (``POSTGRES_*`` from the environment, database
``test`` on 127.0.0.1 by default), dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from suuupra_commerce import Commerce, Money, Settings
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.inventory.domain import InventoryItem

EVENTS_PER_ITEM = 50


def fill(commerce: Commerce, events: int) -> int:
    """Record about ``events`` inventory events; returns how many were recorded."""
    inventory = commerce.inventory
    recorded = 0
    n = 0
    while recorded < events:
        batch = []
        for _ in range(20):
            item = InventoryItem.register(
                sku=f"SKU-{n:07d}",
                product_id=f"p{n}",
                name=f"item {n}",
                unit_price=Money("9.99", "USD"),
                location="east",
                low_stock_threshold=0,
                reorder_point=0,
                reorder_quantity=0,
                allow_backorder=False,
                backorder_limit=0,
                initial_quantity=0,
            )
            for r in range(EVENTS_PER_ITEM - 1):
                item.receive("east", 1, reference=f"po-{r}")
            recorded += len(item.pending_events)
            batch.append(item)
            n += 1
        inventory.save(*batch)
    return recorded


@contextmanager
def store(backend: str) -> Iterator[dict[str, str]]:
    if backend == "memory":
        yield {"COMMERCE_PERSISTENCE": "memory"}
    elif backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield {"COMMERCE_PERSISTENCE": "sqlite", "COMMERCE_SQLITE_DIR": folder}
    else:
        import psycopg

        where = {
            "POSTGRES_DBNAME": os.environ.get("POSTGRES_DBNAME", "test"),
            "POSTGRES_HOST": os.environ.get("POSTGRES_HOST", "127.0.0.1"),
            "POSTGRES_PORT": os.environ.get("POSTGRES_PORT", "5432"),
            "POSTGRES_USER": os.environ.get("POSTGRES_USER", "postgres"),
            "POSTGRES_PASSWORD": os.environ.get("POSTGRES_PASSWORD", ""),
        }
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        conninfo = (
            f"dbname={where['POSTGRES_DBNAME']} host={where['POSTGRES_HOST']} "
            f"port={where['POSTGRES_PORT']} user={where['POSTGRES_USER']}"
        )
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
            try:
                yield {
                    "COMMERCE_PERSISTENCE": "postgres",
                    **where,
                    "POSTGRES_SCHEMA": schema,
                    "POSTGRES_POOL_SIZE": "2",
                }
            finally:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def measure(backend: str, events: int) -> tuple[int, float, float]:
    """(events, reference events/s, rebuild events/s)."""
    with (
        store(backend) as env,
        Commerce(Settings.from_env(env), price_book=InMemoryPriceBook()) as commerce,
    ):
        recorded = fill(commerce, events)
        inventory = commerce.inventory
        started = time.perf_counter()
        read, position = 0, 0
        while True:
            batch = inventory.recorder.select_notifications(
                start=position, limit=500, inclusive_of_start=False
            )
            for notification in batch:
                inventory.mapper.to_domain_event(notification)
            read += len(batch)
            if len(batch) < 500:
                break
            position = batch[-1].id
        reference = read / (time.perf_counter() - started)
        started = time.perf_counter()
        folded = inventory.rebuild()
        rate = folded / (time.perf_counter() - started)
        assert folded == recorded == read, (folded, recorded, read)
        assert len(inventory.items()) == recorded // EVENTS_PER_ITEM
        return recorded, reference, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--backends", default="memory,sqlite,postgres")
    args = parser.parse_args()
    header = f"{'backend':<10} {'events':>8} {'read+decode/s':>14} {'rebuild/s':>10} {'ratio':>6}"
    print(header)  # noqa: T201
    for backend in args.backends.split(","):
        events, reference, rate = measure(backend, args.events)
        ratio = rate / reference
        print(f"{backend:<10} {events:>8} {reference:>14,.0f} {rate:>10,.0f} {ratio:>6.2f}")  # noqa: T201


if __name__ == "__main__":
    main()

"""No oversell across processes: several client processes race for one hot SKU, and for 100
SKUs, on PostgreSQL and on Redis. Reserved equals min(stock, demand) exactly, no replayed
state of any item goes below zero, and each placed order has exactly one reservation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest

from suuupra_commerce import Commerce, Money, RegisterItem, Settings
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.inventory.domain import InventoryItem

from .conftest import DEEP, figures

CLIENT = Path(__file__).with_name("oversell_client.py")
PROCESSES, THREADS = 3, 4


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "postgres":
        return {
            "COMMERCE_PERSISTENCE": "postgres",
            **request.getfixturevalue("postgres_schema"),
            "POSTGRES_MAX_OVERFLOW": str(THREADS + 2),
        }
    return {
        "COMMERCE_PERSISTENCE": "redis",
        "REDIS_URL": request.getfixturevalue("redis_available"),
        "REDIS_KEY_PREFIX": f"{request.getfixturevalue('redis_namespace')}:",
    }


SCENARIOS = {
    # name: (SKUs, units of each, attempts per process)
    "one hot SKU": (["HOT-1"], 1000, 700),
    "100 SKUs": ([f"SKU-{n:03d}" for n in range(100)], 15, 700),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_reserved_is_exactly_min_of_stock_and_demand_when_processes_race(
    store_env: dict[str, str], scenario: str
) -> None:
    skus, units, attempts = SCENARIOS[scenario]
    attempts *= DEEP
    settings = Settings.from_env(store_env)
    with Commerce(settings, price_book=InMemoryPriceBook()) as shop:
        for sku in skus:
            shop.inventory.register(
                RegisterItem(
                    sku=sku,
                    product_id=sku.lower(),
                    name=sku.lower(),
                    unit_price=Money("3.00", "USD"),
                    initial_quantity=units,
                )
            )
    clients = [
        subprocess.Popen(
            [sys.executable, str(CLIENT), f"p{n}", str(attempts), str(THREADS), *skus],
            env={**os.environ, **store_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    results: list[dict[str, Any]] = []
    for client in clients:
        out, err = client.communicate(timeout=600)
        assert client.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    placed: dict[str, str] = {}
    for result in results:
        placed.update(result["placed"])
    refused = sum(r["refused"] for r in results)
    other = sum((Counter(r["other"]) for r in results), Counter())
    demand = Counter(_demand(skus, attempts))
    with Commerce(settings, price_book=InMemoryPriceBook()) as fresh:
        reserved = {sku: fresh.inventory.item(sku).reserved for sku in skus}
        lowest, reservations = _replayed(fresh, skus)
    expected = {sku: min(units, demand[sku]) for sku in skus}
    figures(
        f"no oversell, {scenario}, on {settings.persistence}",
        processes=PROCESSES,
        threads_each=THREADS,
        attempts=PROCESSES * attempts,
        stock=units * len(skus),
        placed=len(placed),
        refused=refused,
        resent_after_losing_every_race=sum(r["resent"] for r in results),
        reserved=sum(reserved.values()),
        lowest_available_in_any_replayed_state=lowest,
    )
    assert other == Counter(), other
    assert reserved == expected
    assert len(placed) == sum(expected.values())
    assert len(placed) + refused == PROCESSES * attempts
    assert lowest >= 0
    assert sorted(reservations.values()) == [1] * len(placed)  # one reservation per order
    assert set(reservations) == set(placed)


def _demand(skus: list[str], attempts: int) -> list[str]:
    import random

    picks: list[str] = []
    for n in range(PROCESSES):
        picks += random.Random(f"p{n}").choices(skus, k=attempts)
    return picks


def _replayed(commerce: Commerce, skus: list[str]) -> tuple[int, Counter[str]]:
    """The lowest ``available`` of any item after any of its events, and reservations per order."""
    lowest = 10**9
    reservations: Counter[str] = Counter()
    for sku in skus:
        item_id = commerce.inventory.item(sku).inventory_id
        aggregate: Any = None
        for domain_event in commerce.inventory.events.get(item_id):
            aggregate = cast("Any", domain_event).mutate(aggregate)
            lowest = min(lowest, aggregate.available)
            if isinstance(domain_event, InventoryItem.Reserved):
                reservations[domain_event.order_id] += 1
    return lowest, reservations

"""Replay at scale: many random aggregates of every kind, each rebuilt three ways.

For every inventory item, order, cart and saga a random workload made: its full replay
from the stored events, a snapshot taken half-way plus the events after it, and the live
aggregate are equal, and the read model says what the aggregate says. On PostgreSQL every
event, money included, has gone through the JSON transcoder and back.

Snapshots are taken in memory: the library does not store snapshots (its aggregates hold
enums and value objects the JSON transcoder would return as plain strings and lists); the
aggregate cache is what keeps long histories cheap."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import suppress
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Snapshot

from suuupra_commerce import AddItem, CheckoutCart, CreateCart, InsufficientStockError, Settings
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.application import CommerceApplication
from suuupra_commerce.projections import ViewQuery
from suuupra_commerce.testing import replay, state_of
from suuupra_commerce.testing.sagas import SagaTestKit

from .conftest import DEEP, figures

SIZES = {"memory": 1150, "postgres": 120}


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def kit(request: pytest.FixtureRequest) -> Iterator[SagaTestKit]:
    env = {"COMMERCE_PERSISTENCE": request.param}
    if request.param == "postgres":
        env.update(request.getfixturevalue("postgres_schema"))
    built = SagaTestKit(Settings.from_env(env), price_book=InMemoryPriceBook())
    try:
        yield built
    finally:
        built.close()


def _workload(kit: SagaTestKit, size: int, rng: random.Random) -> None:
    """``size`` items, carts and orders (some through their cart), some payments declined."""
    skus = [f"SKU-{n:04d}" for n in range(size)]
    for sku in skus:
        price = f"{rng.randint(1, 99_999) / 100:.2f}"
        kit.stock(sku, rng.randint(0, 40), price)
    carts = kit.commerce.carts
    for n in range(size):
        lines = {sku: rng.randint(1, 3) for sku in rng.sample(skus, rng.randint(1, 3))}
        cart = carts.create(CreateCart(customer_id=f"c{n % 17}", currency="USD"))
        for sku, quantity in lines.items():
            carts.add_item(AddItem(cart_id=cart, sku=sku, quantity=quantity))
        if rng.random() < 0.15:
            kit.payments.decline(order_id=None)
        with suppress(InsufficientStockError):  # a refusal, not a fault
            if n % 2:
                carts.checkout(CheckoutCart(cart_id=cart))
            else:
                kit.place(f"k-{n}", lines, customer=f"c{n % 17}")
        kit.payments._declined.clear()  # the fake's switch, back off
        if n % 50 == 49:
            kit.settle(timedelta(hours=6))
    kit.settle()


def _check(app: CommerceApplication, ids: list[UUID]) -> int:
    """Full replay == snapshot half-way + tail == live, for each id; returns events replayed."""
    replayed = 0
    for aggregate_id in ids:
        events: list[Any] = list(app.events.get(aggregate_id))
        replayed += len(events)
        live: Any = app.repository.get(aggregate_id)
        assert state_of(replay(events)) == state_of(live), aggregate_id
        half = max(1, len(events) // 2)
        restored: Any = Snapshot.take(replay(events[:half])).mutate(None)
        for domain_event in events[half:]:
            restored = domain_event.mutate(restored)
        assert state_of(restored) == state_of(live), aggregate_id
    return replayed


def _ids(app: CommerceApplication) -> list[UUID]:
    notifications = app.recorder.select_notifications(None, 10**7)
    return list(dict.fromkeys(UUID(str(n.originator_id)) for n in notifications))


def test_replay_snapshot_live_and_read_model_agree_for_many_random_aggregates(
    kit: SagaTestKit,
) -> None:
    size = SIZES[kit.settings.persistence] * DEEP
    _workload(kit, size, random.Random(size))
    commerce = kit.commerce
    counts: dict[str, int] = {}
    events = 0
    for app in (commerce.inventory, commerce.orders, commerce.carts, commerce.sagas):
        ids = _ids(app)
        counts[app.name] = len(ids)
        events += _check(app, ids)
    # The read models agree with the aggregates.
    for view in commerce.inventory.items():
        item = commerce.inventory.aggregate(view.sku)
        assert (view.on_hand, view.reserved, view.unit_price) == (
            item.on_hand,
            item.reserved,
            item.unit_price,
        )
    for summary in commerce.orders.listing(limit=1000):
        order = commerce.orders.aggregate(summary.order_id)
        assert (summary.status, summary.payment_status) == (order.status, order.payment_status)
    docs = commerce.sagas.views.find("sagas", ViewQuery())
    for doc in docs:
        saga = commerce.sagas.aggregate(UUID(doc["saga_id"]))
        assert doc["status"] == saga.status.value
    assert kit.violations() == []
    figures(
        f"replay at scale on {kit.settings.persistence}",
        **{name.lower(): n for name, n in counts.items()},
        events_replayed=events,
        mismatches=0,
    )
    assert min(counts.values()) >= 0.8 * size

"""The example service on each durable store, across a restart, by environment variables alone.

SQLite files (no bus); PostgreSQL with the Redis Streams bus; Redis for the events and the bus.
Where a bus is configured, the service's relays publish what it recorded.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_runner import REDIS_STORE, STORES, running_service, store_env

from suuupra_commerce.adapters.redis_messaging import RedisStreamBus
from suuupra_commerce.messaging import decode
from suuupra_commerce.system import Settings


@pytest.fixture(params=[*STORES, REDIS_STORE])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    with store_env(request.param, tmp_path, request) as env:
        yield env


def _published_orders(env: dict[str, str]) -> set[str]:
    """The ids of the orders whose placement reached the bus."""
    settings = Settings.from_env(env)
    bus = RedisStreamBus.from_url(settings.redis_url, namespace=settings.redis_namespace("bus"))
    try:
        consumer = bus.consumer("commerce.orders", "test-reader", "r1")
        events = [decode(d.envelope) for d in consumer.receive(max_messages=100, wait=1.0)]
    finally:
        bus.close()
    return {getattr(e, "order_id", "") for e in events if e.event_type == "commerce.order.placed"}


def test_orders_are_fulfilled_and_keys_replayed_after_a_restart_when_the_store_is_durable(
    durable: dict[str, str], tmp_path: Path
) -> None:
    sku = f"DUR-{uuid.uuid4().hex[:6]}"
    item = {"product_id": "dur", "sku": sku, "total_quantity": 5, "unit_price": 12.34}
    item_key = f"item-{sku}"
    with running_service(durable, tmp_path / "first.log") as server, server.client() as http:
        created = http.post(
            "/api/v1/inventory/items", json=item, headers={"Idempotency-Key": item_key}
        )
        assert created.status_code == 201, created.text
        cart = http.post("/api/v1/cart", headers={"X-Customer-ID": "lee"}).json()
        http.post(f"/api/v1/cart/{cart['cart_id']}/items", json={"sku": sku, "quantity": 2})
        placed = http.post(
            "/api/v1/orders",
            json={"cart_id": cart["cart_id"]},
            headers={"Idempotency-Key": f"order-{sku}"},
        )
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order_id"]
        deadline = time.monotonic() + 60
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            view = http.get(f"/api/v1/orders/{order_id}").json()
            if view["saga_status"] == "completed":
                break
            time.sleep(0.1)
        assert (view["saga_status"], view["status"], view["total_amount"]) == (
            "completed",
            "processing",
            "24.68",
        )
        persistence = durable["COMMERCE_PERSISTENCE"]
        assert f"serving on {persistence} persistence" in server.log_text()

    with running_service(durable, tmp_path / "second.log") as server, server.client() as http:
        again = http.post(
            "/api/v1/inventory/items", json=item, headers={"Idempotency-Key": item_key}
        )
        assert (again.status_code, again.content) == (201, created.content)
        assert again.headers["idempotent-replayed"] == "true"
        replayed = http.post(
            "/api/v1/orders",
            json={"cart_id": cart["cart_id"]},
            headers={"Idempotency-Key": f"order-{sku}"},
        )
        assert replayed.content == placed.content
        after = http.get(f"/api/v1/orders/{order_id}").json()
        assert (after["status"], after["tracking_number"]) == (
            "processing",
            view["tracking_number"],
        )
        stock = http.get(f"/api/v1/inventory/items/sku/{sku}").json()
        assert (stock["total_quantity"], stock["reserved_quantity"]) == (5, 2)
        assert http.get("/api/v1/cart", headers={"X-Customer-ID": "lee"}).json()[0]["status"] == (
            "checked_out"
        )
    if durable.get("COMMERCE_MESSAGING") == "redis":
        assert _published_orders(durable) == {order_id}, "the relays published the order"

"""The example host service, over HTTP: every endpoint, exact money, errors, idempotency.

One real server per store (uvicorn in a subprocess; SQLite files in a temporary folder, then
PostgreSQL with the Redis Streams bus, by environment variables alone) serves the module;
each test works on SKUs, customers and keys of its own.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from service_runner import STORES, Server, running_service, store_env

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module", params=STORES)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per store (SQLite files; PostgreSQL with the Redis bus), shared by the tests."""
    where = tmp_path_factory.mktemp("service")
    with (
        store_env(request.param, where, request) as env,
        running_service(env, where / "service.log") as server,
    ):
        yield server


@pytest.fixture
def http(service: Server) -> Iterator[httpx.Client]:
    """An HTTP client of the module's server."""
    with service.client() as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """Assert ``response`` is an RFC 9457 problem of this status and type; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{kind}", body
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def create_item(
    http: httpx.Client,
    sku: str,
    *,
    product: str | None = None,
    quantity: int = 20,
    price: Any = "10.00",
    **extra: Any,
) -> str:
    body = {
        "product_id": product or sku.lower(),
        "sku": sku,
        "total_quantity": quantity,
        "unit_price": price,
        **extra,
    }
    response = http.post("/api/v1/inventory/items", json=body)
    assert response.status_code == 201, response.text
    inventory_id: str = response.json()["inventory_id"]
    return inventory_id


def post_raw(http: httpx.Client, path: str, text: str, **headers: str) -> httpx.Response:
    """POST a JSON document as written (JSON numbers stay as typed, never via a float)."""
    return http.post(
        path, content=text.encode(), headers={"content-type": "application/json", **headers}
    )


def eventually(check: Callable[[], Any], timeout: float = 30) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.05)


# --- inventory ---------------------------------------------------------------------------------


def test_item_reads_back_by_id_and_sku_when_created_with_the_original_fields(
    http: httpx.Client,
) -> None:
    sku = unique("TEE-RED-M")
    inventory_id = create_item(
        http,
        sku,
        product="tee",
        variant_id=f"v-{sku}",
        quantity=12,
        price=19.99,
        cost_price="7.5",
        metadata={"name": "T-shirt, red, M", "colour": "red"},
    )
    by_id = http.get(f"/api/v1/inventory/items/{inventory_id}").json()
    by_sku = http.get(f"/api/v1/inventory/items/sku/{sku}").json()
    assert by_id == by_sku
    assert by_id["product_id"] == "tee"
    assert by_id["variant_id"] == f"v-{sku}"
    assert by_id["sku"] == sku
    assert by_id["name"] == "T-shirt, red, M"
    assert (by_id["total_quantity"], by_id["available_quantity"]) == (12, 12)
    assert (by_id["unit_price"], by_id["cost_price"], by_id["currency"]) == ("19.99", "7.50", "USD")
    assert by_id["metadata"] == {"name": "T-shirt, red, M", "colour": "red"}
    assert (by_id["low_stock_threshold"], by_id["reorder_point"]) == (10, 5)


def test_creating_a_sku_twice_is_a_conflict_when_no_idempotency_key_is_sent(
    http: httpx.Client,
) -> None:
    sku = unique("MUG")
    create_item(http, sku)
    again = http.post(
        "/api/v1/inventory/items",
        json={"product_id": "x", "sku": sku, "total_quantity": 1, "unit_price": "1.00"},
    )
    problem(again, 409, "conflict")


def test_put_reprices_the_catalogue_and_sets_thresholds_when_the_version_matches(
    http: httpx.Client,
) -> None:
    sku = unique("LAMP")
    inventory_id = create_item(http, sku, quantity=8, price="30.00")
    version = http.get(f"/api/v1/inventory/items/{inventory_id}").json()["version"]
    stale = http.put(
        f"/api/v1/inventory/items/{inventory_id}",
        json={"unit_price": 25, "expected_version": version + 5},
    )
    problem(stale, 409, "conflict")
    updated = http.put(
        f"/api/v1/inventory/items/{inventory_id}",
        json={"unit_price": 25.5, "low_stock_threshold": 9, "expected_version": version},
    )
    assert updated.status_code == 200, updated.text
    item = http.get(f"/api/v1/inventory/items/{inventory_id}").json()
    assert item["unit_price"] == "25.50"
    assert item["low_stock_threshold"] == 9
    assert item["is_low_stock"] is True
    low = http.get("/api/v1/inventory/low-stock", params={"limit": 1000}).json()
    assert sku in {row["sku"] for row in low}
    problem(
        http.put(f"/api/v1/inventory/items/{inventory_id}", json={"status": "gone"}),
        422,
        "invalid-input",
    )


def test_adjustments_receive_and_remove_stock_once_per_reference(http: httpx.Client) -> None:
    inventory_id = create_item(http, unique("BOWL"), quantity=5)
    path = f"/api/v1/inventory/items/{inventory_id}/adjustments"
    restock = {
        "quantity_change": 10,
        "adjustment_type": "restock",
        "reason": "PO-1",
        "reference_id": "po-1",
    }
    first = http.post(path, json=restock)
    assert first.status_code == 201, first.text
    assert first.json()["recorded_as"] == "received"
    assert first.json()["total_quantity"] == 15
    assert http.post(path, json=restock).json()["total_quantity"] == 15
    damaged = http.post(
        path, json={"quantity_change": -2, "adjustment_type": "damage", "reason": "dropped"}
    )
    assert (damaged.json()["recorded_as"], damaged.json()["total_quantity"]) == ("damage", 13)
    odd = http.post(
        path, json={"quantity_change": -1, "adjustment_type": "shrinkage", "reason": "audit"}
    )
    assert (odd.json()["recorded_as"], odd.json()["total_quantity"]) == ("other", 12)
    too_many = http.post(path, json={"quantity_change": -100, "adjustment_type": "damage"})
    problem(too_many, 409, "insufficient-stock")


def test_physical_count_sets_on_hand_and_reports_the_discrepancy(http: httpx.Client) -> None:
    inventory_id = create_item(http, unique("JAR"), quantity=10)
    path = f"/api/v1/inventory/items/{inventory_id}/physical-count"
    counted = http.post(path, json={"physical_quantity": 7, "notes": "shelf 3"})
    assert counted.status_code == 201, counted.text
    assert (counted.json()["discrepancy"], counted.json()["total_quantity"]) == (-3, 7)
    problem(
        http.post(path, json={"physical_quantity": 7, "auto_adjust": False}), 422, "invalid-input"
    )


def test_reorder_needed_and_summary_count_the_items_below_their_points(
    http: httpx.Client,
) -> None:
    sku = unique("NAIL")
    create_item(http, sku, quantity=3, price="0.05", reorder_point=5, reorder_quantity=50)
    reorder = http.get("/api/v1/inventory/reorder-needed").json()
    row = next(r for r in reorder if r["sku"] == sku)
    assert (row["available_quantity"], row["reorder_point"], row["reorder_quantity"]) == (3, 5, 50)
    summary = http.get("/api/v1/inventory/summary").json()
    assert summary["total_items"] >= 1
    assert summary["reorder_needed_items"] >= 1
    assert summary["total_quantity"] == summary["reserved_quantity"] + summary["available_quantity"]
    assert re.fullmatch(r"\d+\.\d{2}", summary["total_value"]["USD"])


def test_reservation_lifecycle_by_product_variant_then_by_sku(http: httpx.Client) -> None:
    red, blue = unique("CAP-RED"), unique("CAP-BLUE")
    product = unique("cap")
    red_id = create_item(http, red, product=product, variant_id="red", quantity=5)
    create_item(http, blue, product=product, variant_id="blue", quantity=5)
    order = str(uuid.uuid4())
    ambiguous = http.post(
        "/api/v1/inventory/reservations",
        json={"product_id": product, "order_id": order, "customer_id": "c", "quantity": 1},
    )
    problem(ambiguous, 422, "invalid-input")
    reserved = http.post(
        "/api/v1/inventory/reservations",
        json={
            "product_id": product,
            "variant_id": "red",
            "order_id": order,
            "customer_id": "c-1",
            "quantity": 2,
            "reservation_duration_minutes": 5,
        },
    )
    assert reserved.status_code == 201, reserved.text
    body = reserved.json()
    assert (body["sku"], body["inventory_id"], body["status"]) == (red, red_id, "reserved")
    base = f"/api/v1/inventory/reservations/{red_id}/{body['reservation_id']}"
    assert http.get(f"/api/v1/inventory/items/{red_id}").json()["available_quantity"] == 3
    problem(http.put(f"{base}/fulfill"), 409, "illegal-transition")
    assert http.put(f"{base}/confirm").json()["status"] == "confirmed"
    assert http.put(f"{base}/confirm").json()["status"] == "confirmed"
    shipped = http.put(f"{base}/fulfill").json()
    assert (shipped["status"], shipped["fulfilled_quantity"]) == ("fulfilled", 2)
    item = http.get(f"/api/v1/inventory/items/{red_id}").json()
    assert (item["total_quantity"], item["reserved_quantity"]) == (3, 0)

    by_sku = http.post(
        "/api/v1/inventory/reservations/by-sku",
        json={"sku": blue, "order_id": str(uuid.uuid4()), "customer_id": "c-2", "quantity": 4},
    )
    assert by_sku.status_code == 201, by_sku.text
    blue_base = f"/api/v1/inventory/reservations/{by_sku.json()['inventory_id']}/" + str(
        by_sku.json()["reservation_id"]
    )
    released = http.delete(blue_base, params={"reason": "changed mind"})
    assert released.json()["status"] == "released"
    after = http.get(blue_base).json()
    assert (after["quantity"], after["outstanding_quantity"], after["status"]) == (4, 0, "released")
    problem(http.put(f"{blue_base}/confirm"), 409, "illegal-transition")
    problem(http.get(f"{blue_base[:-36]}{uuid.uuid4()}"), 404, "not-found")


def test_reserving_more_than_available_is_a_409_with_the_numbers(http: httpx.Client) -> None:
    sku = unique("RARE")
    create_item(http, sku, quantity=2)
    refused = http.post(
        "/api/v1/inventory/reservations/by-sku",
        json={"sku": sku, "order_id": "o-1", "customer_id": "c", "quantity": 3},
    )
    body = problem(refused, 409, "insufficient-stock")
    assert (body["sku"], body["requested"], body["available"]) == (sku, 3, 2)
    metrics = http.get("/metrics").text
    assert re.search(
        r'commerce_reservation_conflicts_total\{reason="insufficient_stock"\} [1-9]', metrics
    )


def test_expire_reservations_sweeps_and_reports_a_count(http: httpx.Client) -> None:
    swept = http.post("/api/v1/inventory/maintenance/expire-reservations", params={"limit": 10})
    assert swept.status_code == 200, swept.text
    assert swept.json()["expired_count"] >= 0
    assert swept.json()["message"].startswith("Expired ")


# --- money --------------------------------------------------------------------------------------


def test_json_numbers_are_taken_from_their_text_when_prices_are_sent_as_numbers(
    http: httpx.Client,
) -> None:
    dime, fifth, tee = unique("DIME"), unique("FIFTH"), unique("TEE")
    for sku, price in ((dime, "0.1"), (fifth, "0.2"), (tee, "19.99")):
        sent = post_raw(
            http,
            "/api/v1/inventory/items",
            f'{{"product_id": "{sku}", "sku": "{sku}", "total_quantity": 9, '
            f'"unit_price": {price}}}',
        )
        assert sent.status_code == 201, sent.text
    cart = http.post("/api/v1/cart", json={}, headers={"X-Customer-ID": unique("cust")}).json()
    path = f"/api/v1/cart/{cart['cart_id']}/items"
    http.post(path, json={"sku": dime, "quantity": 1})
    total = http.post(path, json={"sku": fifth, "quantity": 1}).json()
    assert total["subtotal"] == "0.30"  # 0.1 + 0.2, exactly
    assert total["total_amount"] == "0.30"
    tees = http.post(path, json={"sku": tee, "quantity": 3}).json()
    assert [line["total_price"] for line in tees["items"]] == ["0.10", "0.20", "59.97"]
    assert tees["total_amount"] == "60.27"


def test_amounts_that_do_not_fit_the_currency_are_refused_not_rounded(http: httpx.Client) -> None:
    for price in ("0.30000000000000004", "19.999", "1e400", "-1"):
        sku = unique("BAD")
        sent = post_raw(
            http,
            "/api/v1/inventory/items",
            f'{{"product_id": "p", "sku": "{sku}", "total_quantity": 1, "unit_price": {price}}}',
        )
        problem(sent, 422, "invalid-input" if price != "-1" else "invalid-command")
        problem(http.get(f"/api/v1/inventory/items/sku/{sku}"), 404, "not-found")
    for literal in ("NaN", "Infinity", "-Infinity"):
        sent = post_raw(
            http,
            "/api/v1/inventory/items",
            f'{{"product_id": "p", "sku": "X", "total_quantity": 1, "unit_price": {literal}}}',
        )
        problem(sent, 422, "validation")


# --- carts --------------------------------------------------------------------------------------


def test_cart_lines_are_named_by_product_or_sku_and_priced_by_the_catalogue(
    http: httpx.Client,
) -> None:
    customer = unique("dana")
    product = unique("sock")
    small, large = unique("SOCK-S"), unique("SOCK-L")
    create_item(http, small, product=product, variant_id="s", price="4.00")
    create_item(http, large, product=product, variant_id="l", price="4.50")
    headers = {"X-Customer-ID": customer}
    created = http.post("/api/v1/cart", json={"currency": "USD"}, headers=headers)
    assert created.status_code == 201, created.text
    cart = created.json()
    assert (cart["customer_id"], cart["status"], cart["items"]) == (customer, "active", [])
    items = f"/api/v1/cart/{cart['cart_id']}/items"
    added = http.post(
        items,
        json={
            "product_id": product,
            "variant_id": "s",
            "quantity": 2,
            "unit_price": 0.01,
            "product_name": "cheap socks",
        },
    )
    assert added.status_code == 200, added.text
    line = added.json()["items"][0]
    assert (line["sku"], line["product_id"], line["variant_id"]) == (small, product, "s")
    assert (line["unit_price"], line["total_price"]) == ("4.00", "8.00")
    http.post(items, json={"sku": large, "quantity": 1})
    problem(http.put(f"{items}/{product}", json={"quantity": 3}), 422, "invalid-input")
    changed = http.put(f"{items}/{product}", params={"variant_id": "s"}, json={"quantity": 3})
    assert [(i["sku"], i["quantity"]) for i in changed.json()["items"]] == [(small, 3), (large, 1)]
    by_sku = http.put(f"{items}/{large}", json={"quantity": 2}).json()
    assert by_sku["total_amount"] == "21.00"
    removed = http.delete(f"{items}/{product}", params={"variant_id": "l"}).json()
    assert [i["sku"] for i in removed["items"]] == [small]
    zero = http.put(f"{items}/{small}", json={"quantity": 0}).json()
    assert zero["items"] == []
    problem(http.delete(f"{items}/{small}"), 404, "not-found")
    http.post(items, json={"sku": small, "quantity": 1})
    cleared = http.post(f"/api/v1/cart/{cart['cart_id']}/clear").json()
    assert (cleared["items"], cleared["item_count"], cleared["total_amount"]) == ([], 0, "0.00")
    assert http.get(f"/api/v1/cart/{cart['cart_id']}").json()["cart_id"] == cart["cart_id"]


def test_customer_carts_list_the_active_one_and_deleted_carts_are_gone(http: httpx.Client) -> None:
    customer = unique("erin")
    headers = {"X-Customer-ID": customer}
    problem(http.get("/api/v1/cart/active"), 422, "invalid-input")
    assert http.get("/api/v1/cart/active", headers=headers).json() is None
    first = http.post("/api/v1/cart", headers=headers).json()["cart_id"]
    second = http.post("/api/v1/cart/", json={"customer_id": customer}).json()["cart_id"]
    listed = http.get("/api/v1/cart", headers=headers).json()
    assert {row["cart_id"] for row in listed} == {first, second}
    assert http.get("/api/v1/cart/active", params={"customer_id": customer}).json()["cart_id"] in {
        first,
        second,
    }
    assert http.delete(f"/api/v1/cart/{first}").status_code == 204
    problem(http.get(f"/api/v1/cart/{first}"), 404, "not-found")
    assert [row["cart_id"] for row in http.get("/api/v1/cart/", headers=headers).json()] == [second]
    guest = http.post("/api/v1/cart", headers={"X-Session-ID": unique("sess")}).json()
    assert (guest["customer_id"], guest["session_id"] is not None) == (None, True)
    problem(http.post("/api/v1/cart", json={}), 422, "invalid-command")


# --- orders and their sagas ---------------------------------------------------------------------


def test_checkout_places_an_order_that_the_fulfilment_saga_takes_to_shipment(
    http: httpx.Client, service: Server
) -> None:
    customer = unique("fay")
    sku = unique("BOOK")
    inventory_id = create_item(http, sku, quantity=4, price="12.25")
    headers = {"X-Customer-ID": customer, "X-Request-ID": unique("req-checkout")}
    cart = http.post("/api/v1/cart", headers=headers).json()
    http.post(f"/api/v1/cart/{cart['cart_id']}/items", json={"sku": sku, "quantity": 2})
    placed = http.post(
        "/api/v1/orders",
        json={
            "cart_id": cart["cart_id"],
            "payment_method": "credit_card",
            "shipping_address": {"city": "Lisbon"},
        },
        headers=headers,
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert (order["total_amount"], order["currency"]) == ("24.50", "USD")

    def shipped() -> dict[str, Any] | None:
        view: dict[str, Any] = http.get(f"/api/v1/orders/{order['order_id']}").json()
        return view if view["saga_status"] == "completed" else None

    view = eventually(shipped)
    assert (view["status"], view["payment_status"]) == ("processing", "captured")
    assert view["tracking_number"].startswith("TRK")
    assert view["items"][0]["sku"] == sku
    assert http.get(f"/api/v1/cart/{cart['cart_id']}").json()["status"] == "checked_out"
    item = http.get(f"/api/v1/inventory/items/{inventory_id}").json()
    assert (item["reserved_quantity"], item["available_quantity"]) == (2, 2)
    mine = http.get("/api/v1/orders", headers={"X-Customer-ID": customer}).json()
    assert [o["order_id"] for o in mine] == [order["order_id"]]
    # The saga's log lines carry the request's id as their correlation id.
    request_id = headers["X-Request-ID"]
    lines = [line for line in service.log_text().splitlines() if request_id in line]
    assert any(
        f"request_id={request_id}" in line and "POST /api/v1/orders" in line for line in lines
    )
    assert any("saga started" in line for line in lines)


def test_orders_from_items_are_idempotent_by_key_and_cancellation_follows_the_policy(
    http: httpx.Client,
) -> None:
    customer = unique("gus")
    sku = unique("PEN")
    create_item(http, sku, quantity=10, price=1.5)
    key = unique("key")
    body = {"customer_id": customer, "items": [{"product_id": sku.lower(), "quantity": 4}]}
    first = http.post("/api/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    again = http.post("/api/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    other = {**body, "items": [{"sku": sku, "quantity": 5}]}
    problem(
        http.post("/api/v1/orders", json=other, headers={"Idempotency-Key": key}),
        422,
        "idempotency-key-reused",
    )
    in_body = http.post("/api/v1/orders", json={**body, "idempotency_key": key})
    assert in_body.json()["order_id"] == first.json()["order_id"]
    order_id = first.json()["order_id"]
    eventually(lambda: http.get(f"/api/v1/orders/{order_id}").json()["saga_status"] == "completed")
    cancelled = http.post(f"/api/v1/orders/{order_id}/cancel", json={"reason": "too slow"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["outcome"] == "awaiting_approval"
    assert cancelled.json()["status"] == "cancellation_requested"
    problem(http.post(f"/api/v1/orders/{uuid.uuid4()}/cancel"), 404, "not-found")
    problem(http.get(f"/api/v1/orders/{uuid.uuid4()}"), 404, "not-found")
    listed = http.get("/api/v1/orders", params={"status": "cancellation_requested"}).json()
    assert order_id in {o["order_id"] for o in listed}


def test_an_order_for_more_than_is_in_stock_is_refused_and_writes_nothing(
    http: httpx.Client,
) -> None:
    sku = unique("LAST")
    create_item(http, sku, quantity=1)
    refused = http.post(
        "/api/v1/orders",
        json={"customer_id": "hal", "items": [{"sku": sku, "quantity": 2}]},
        headers={"Idempotency-Key": unique("k")},
    )
    problem(refused, 409, "insufficient-stock")
    assert http.get(f"/api/v1/inventory/items/sku/{sku}").json()["reserved_quantity"] == 0
    problem(http.post("/api/v1/orders", json={"customer_id": "hal"}), 422, "invalid-input")
    for bad_sku in ("no spaces", "\U000cb58f\u00bc"):  # the second once answered 500
        bad_line = http.post(
            "/api/v1/orders",
            json={"customer_id": "hal", "items": [{"sku": bad_sku, "quantity": 1}]},
            headers={"Idempotency-Key": unique("k")},
        )
        problem(bad_line, 422, "invalid-command")


# --- idempotency of other creations -------------------------------------------------------------


def test_a_repeated_creation_with_its_key_is_replayed_not_refused(http: httpx.Client) -> None:
    sku = unique("KEYED")
    body = {"product_id": "k", "sku": sku, "total_quantity": 3, "unit_price": "2.00"}
    key = unique("create")
    first = http.post("/api/v1/inventory/items", json=body, headers={"Idempotency-Key": key})
    second = http.post("/api/v1/inventory/items", json=body, headers={"Idempotency-Key": key})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.content == second.content
    inventory_id = first.json()["inventory_id"]
    adjust = f"/api/v1/inventory/items/{inventory_id}/adjustments"
    change = {"quantity_change": 5, "adjustment_type": "found", "reason": "back room"}
    adjust_key = unique("adjust")
    for _ in range(3):
        done = http.post(adjust, json=change, headers={"Idempotency-Key": adjust_key})
        assert done.json()["total_quantity"] == 8
    assert http.get(f"/api/v1/inventory/items/{inventory_id}").json()["total_quantity"] == 8
    problem(
        http.post(
            adjust, json={**change, "quantity_change": 6}, headers={"Idempotency-Key": adjust_key}
        ),
        422,
        "idempotency-key-reused",
    )
    problem(
        http.post(adjust, json=change, headers={"Idempotency-Key": "bad key"}), 422, "invalid-input"
    )


def test_a_refused_request_frees_its_key_for_a_retry(http: httpx.Client) -> None:
    sku = unique("LATER")
    key = unique("retry")
    reserve = {"sku": sku, "order_id": unique("o"), "customer_id": "c", "quantity": 1}
    path = "/api/v1/inventory/reservations/by-sku"
    problem(http.post(path, json=reserve, headers={"Idempotency-Key": key}), 404, "not-found")
    create_item(http, sku, quantity=1)
    later = http.post(path, json=reserve, headers={"Idempotency-Key": key})
    assert later.status_code == 201, later.text


# --- errors -------------------------------------------------------------------------------------


def test_bad_requests_are_problem_details_never_server_errors(http: httpx.Client) -> None:
    problem(http.get(f"/api/v1/inventory/items/{uuid.uuid4()}"), 404, "not-found")
    problem(http.get("/api/v1/inventory/items/not-a-uuid"), 422, "validation")
    problem(http.get("/api/v1/nowhere"), 404, "not-found")
    malformed = post_raw(http, "/api/v1/inventory/items", '{"sku": ')
    assert problem(malformed, 422, "validation")["errors"][0]["type"] == "json_invalid"
    wrong = http.post("/api/v1/inventory/items", json={"sku": 5, "total_quantity": "many"})
    errors = problem(wrong, 422, "validation")["errors"]
    assert {tuple(e["loc"]) for e in errors} >= {("body", "product_id"), ("body", "unit_price")}
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)
    invalid_sku = http.post(
        "/api/v1/inventory/items",
        json={"product_id": "p", "sku": "no spaces", "total_quantity": 1, "unit_price": 1},
    )
    problem(invalid_sku, 422, "invalid-command")
    huge = "x" * (64 * 1024 + 1)
    oversized = post_raw(http, "/api/v1/inventory/items", json.dumps({"product_id": huge}))
    problem(oversized, 422, "payload-too-large")

    def chunks() -> Any:
        for _ in range(70):
            yield b" " * 1024

    streamed = http.post(
        "/api/v1/cart", content=chunks(), headers={"content-type": "application/json"}
    )
    problem(streamed, 422, "payload-too-large")
    wrong_method = http.patch("/api/v1/inventory/summary")
    problem(wrong_method, 405, "method-not-allowed")


# --- admin, health, metrics ---------------------------------------------------------------------


def test_saga_admin_lists_shows_counts_and_refuses_to_retry_a_finished_saga(
    http: httpx.Client,
) -> None:
    sku = unique("SAGA")
    create_item(http, sku, quantity=3)
    placed = http.post(
        "/api/v1/orders", json={"customer_id": "ivy", "items": [{"sku": sku, "quantity": 1}]}
    ).json()
    saga_id = placed["saga_id"]
    eventually(lambda: http.get(f"/api/v1/admin/sagas/{saga_id}").status_code == 200)
    saga = eventually(
        lambda: (
            (s := http.get(f"/api/v1/admin/sagas/{saga_id}").json())["status"] == "completed" and s
        )
    )
    assert saga["saga_type"] == "order_fulfilment"
    assert saga["subject"] == placed["order_id"]
    names = [step["step_name"] for step in saga["steps"]]
    assert {"reserve_stock", "capture_payment", "create_shipment"} <= set(names)
    assert [step["status"] for step in saga["steps"]] == ["completed"] * len(names)
    assert saga["current_step_index"] == len(names) - 1
    events = [entry["event"] for entry in saga["timeline"]]
    assert events[0] == "Started"
    assert events[-1] == "Completed"
    listed = http.get("/api/v1/admin/sagas", params={"saga_type": "order_fulfilment"}).json()
    assert saga_id in {row["saga_id"] for row in listed}
    assert all(row["timeline"] is None for row in listed)
    assert http.get("/api/v1/admin/sagas", params={"status_filter": "failed"}).status_code == 200
    problem(
        http.get("/api/v1/admin/sagas", params={"status_filter": "bogus"}), 422, "invalid-input"
    )
    stats = http.get("/api/v1/admin/sagas/statistics").json()
    assert stats["by_type"]["order_fulfilment"] >= 1
    assert stats["total"] == sum(stats["by_status"].values())
    problem(http.post(f"/api/v1/admin/sagas/{saga_id}/retry"), 409, "illegal-transition")
    problem(http.post(f"/api/v1/admin/sagas/{uuid.uuid4()}/retry"), 404, "not-found")


def test_cart_analytics_count_carts_and_abandoned_ones(http: httpx.Client) -> None:
    sku = unique("LEFT")
    create_item(http, sku, quantity=3)
    cart = http.post("/api/v1/cart", headers={"X-Customer-ID": unique("jo")}).json()
    http.post(f"/api/v1/cart/{cart['cart_id']}/items", json={"sku": sku, "quantity": 1})
    now = http.get("/api/v1/admin/analytics/abandoned-carts", params={"hours_ago": 0}).json()
    assert cart["cart_id"] in {row["cart_id"] for row in now}
    default = http.get("/api/v1/admin/analytics/abandoned-carts").json()
    assert cart["cart_id"] not in {row["cart_id"] for row in default}  # touched within the hour
    analytics = http.get("/api/v1/admin/analytics/carts").json()
    assert analytics["total_carts"] == sum(analytics["by_status"].values())
    assert analytics["active_carts"] >= 1
    assert 0 <= analytics["abandonment_rate"] <= 1


def test_health_readiness_and_metrics_report_on_the_running_service(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    ready = http.get("/health/ready").json()
    assert ready["status"] == "ready"
    assert set(ready["checks"]) == {
        "inventory",
        "orders",
        "carts",
        "sagas",
        "saga_dispatcher",
        "host_records",
    }
    sku = unique("METRIC")
    create_item(http, sku, quantity=2)
    http.post("/api/v1/orders", json={"customer_id": "kim", "items": [{"sku": sku, "quantity": 1}]})
    scraped = http.get("/metrics")
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert re.search(r'commerce_orders_placed_total\{source="items"\} [1-9]', text)
    assert (
        'commerce_command_duration_seconds_bucket{command="orders.place",le="+Inf",outcome="ok"}'
        in text
    )
    assert re.search(r'commerce_sagas\{definition="order_fulfilment",state="\w+"\} [1-9]', text)
    assert 'http_requests_total{method="GET",route="/health",status="200"}' in text


def test_request_id_is_echoed_and_on_every_log_line_of_the_request(
    http: httpx.Client, service: Server
) -> None:
    request_id = unique("trace")
    answered = http.get(
        f"/api/v1/inventory/items/{uuid.uuid4()}", headers={"X-Request-ID": request_id}
    )
    assert answered.headers["x-request-id"] == request_id
    assert answered.json()["request_id"] == request_id
    made_up = http.get("/health", headers={"X-Request-ID": "not ok!"}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made_up)
    lines = [line for line in service.log_text().splitlines() if request_id in line]
    assert len(lines) >= 2  # the refusal, and the access line
    assert all(f"request_id={request_id}" in line for line in lines)

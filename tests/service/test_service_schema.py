"""The example service against its own OpenAPI document, with schemathesis, over HTTP.

Every operation gets generated requests (a bounded number each, derandomized in CI); no
answer may be a server error, use an undocumented status or content type, or break its
documented response schema. The server is seeded with stock, a cart and an order first,
so that generated requests also meet existing things.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from service_runner import STORES, Server, running_service, store_env

#: Generated requests per operation and mode (valid, invalid): 33 operations x 2 x 15.
EXAMPLES = 15


@pytest.fixture(scope="module", params=STORES)
def schema_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    where: Path = tmp_path_factory.mktemp("schema-service")
    with (
        store_env(request.param, where, request) as env,
        running_service(env, where / "service.log") as server,
    ):
        with server.client() as http:
            for sku, price in (("SEED-1", "9.99"), ("SEED-2", 0.5)):
                http.post(
                    "/api/v1/inventory/items",
                    json={
                        "product_id": sku.lower(),
                        "sku": sku,
                        "total_quantity": 50,
                        "unit_price": price,
                    },
                )
            cart = http.post("/api/v1/cart", headers={"X-Customer-ID": "seed"}).json()
            http.post(
                f"/api/v1/cart/{cart['cart_id']}/items", json={"sku": "SEED-1", "quantity": 1}
            )
            http.post("/api/v1/orders", json={"cart_id": cart["cart_id"]})
        yield server


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_no_server_errors_and_responses_match_the_openapi_document(
    schema_service: Server,
) -> None:
    """Valid and invalid requests for every operation, a bounded number of each."""
    schema = schemathesis.openapi.from_url(f"{schema_service.base_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"invalid operation in the document: {result.err()}")
            continue
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            def call(case: schemathesis.Case[Any]) -> None:
                case.call_and_validate(base_url=schema_service.base_url, checks=CHECKS)

            try:
                call()
            except Unsatisfiable:
                # No input of this operation can be made invalid (no parameters, or only
                # strings without constraints): nothing to send in this mode.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as error:  # noqa: BLE001 - every operation runs; all are reported
                failures.append(f"{operation.label} ({mode.value}): {error}")
    assert operations >= 30
    assert not failures, "\n\n".join(failures)
    with httpx.Client(base_url=schema_service.base_url) as http:
        scraped = http.get("/metrics").text
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in scraped.splitlines()
        if line.startswith("http_requests_total{")
    )
    assert served >= operations * EXAMPLES  # the requests really reached the server


def test_the_openapi_document_lists_the_original_rest_surface(schema_service: Server) -> None:
    with httpx.Client(base_url=schema_service.base_url) as http:
        paths = set(http.get("/openapi.json").json()["paths"])
    expected = {
        "/api/v1/inventory/items",
        "/api/v1/inventory/items/{inventory_id}",
        "/api/v1/inventory/items/sku/{sku}",
        "/api/v1/inventory/reservations",
        "/api/v1/inventory/reservations/by-sku",
        "/api/v1/inventory/reservations/{inventory_id}/{reservation_id}",
        "/api/v1/inventory/reservations/{inventory_id}/{reservation_id}/confirm",
        "/api/v1/inventory/reservations/{inventory_id}/{reservation_id}/fulfill",
        "/api/v1/inventory/items/{inventory_id}/adjustments",
        "/api/v1/inventory/items/{inventory_id}/physical-count",
        "/api/v1/inventory/low-stock",
        "/api/v1/inventory/reorder-needed",
        "/api/v1/inventory/summary",
        "/api/v1/inventory/maintenance/expire-reservations",
        "/api/v1/cart",
        "/api/v1/cart/active",
        "/api/v1/cart/{cart_id}",
        "/api/v1/cart/{cart_id}/items",
        "/api/v1/cart/{cart_id}/items/{product_id}",
        "/api/v1/cart/{cart_id}/clear",
        "/api/v1/orders",
        "/api/v1/orders/{order_id}",
        "/api/v1/orders/{order_id}/cancel",
        "/api/v1/admin/sagas",
        "/api/v1/admin/sagas/{saga_id}",
        "/api/v1/admin/sagas/{saga_id}/retry",
        "/api/v1/admin/sagas/statistics",
        "/api/v1/admin/analytics/carts",
        "/api/v1/admin/analytics/abandoned-carts",
        "/health",
        "/health/ready",
        "/metrics",
    }
    assert expected <= paths, sorted(expected - paths)

"""The FastAPI application: routes under ``/api/v1``, health, metrics, and its lifespan.

Build it with :func:`create_app` (``uvicorn --factory examples.service.app:create_app``,
or ``python -m examples.service``). Nothing is opened at import time: the stores, the saga
engine, the outbox relays (when ``COMMERCE_MESSAGING`` names a bus) and the worker pool
start in the app's lifespan and stop with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from examples.service import schemas as s
from examples.service.config import ServiceConfig
from examples.service.host import Host
from examples.service.http import (
    PROBLEM_JSON,
    BodyLimitMiddleware,
    DecimalJSONRoute,
    Problem,
    RequestContextMiddleware,
    decode_json,
    install_problem_handlers,
    problem_response,
)
from examples.service.observability import Metrics
from examples.service.store import ServiceRecords
from suuupra_commerce import AsyncCommerce, Commerce, InvalidInputError, Settings
from suuupra_commerce.testing.sagas import (
    FakeNotifier,
    FakePaymentGateway,
    FakeShippingProvider,
)

__all__ = ["create_app"]

log = logging.getLogger("examples.service")

CustomerHeader = Annotated[
    str | None,
    Header(
        alias="X-Customer-ID",
        max_length=256,
        description="The customer (the original service took it from its bearer token)",
    ),
]
SessionHeader = Annotated[
    str | None, Header(alias="X-Session-ID", max_length=256, description="An anonymous session")
]
KeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Same key and body: the first response again; another body: 422",
    ),
]

Limit = Annotated[int, Query(ge=1, le=1000)]
CustomerQuery = Annotated[str | None, Query(min_length=1, max_length=256)]
VariantQuery = Annotated[str | None, Query(min_length=1, max_length=256)]


def _problem_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: _problem_doc("Not found"),
    409: _problem_doc("Conflict, illegal transition or refused by a business rule"),
    422: _problem_doc("Invalid request (validation, malformed JSON, body over 64 KiB)"),
    503: _problem_doc("A store is unavailable"),
}


# --- idempotency -------------------------------------------------------------------------------

_KEY_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))


def _fingerprint(request: Request, body: bytes, customer: str | None) -> str:
    """What makes two requests "the same": method, path, query, customer and JSON body."""
    try:
        document = decode_json(body) if body else None
    except json.JSONDecodeError:
        document = body.decode("latin-1")
    if isinstance(document, dict):
        document.pop("idempotency_key", None)  # the key itself, when sent in the body
    canonical = json.dumps(
        {
            "method": request.method,
            "path": request.url.path,
            "query": sorted(request.query_params.multi_items()),
            "customer": customer,
            "body": document,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def respond(
    host: Host,
    request: Request,
    key: str | None,
    status_code: int,
    produce: Callable[[], Awaitable[BaseModel]],
    customer: str | None = None,
) -> Response:
    """Run ``produce`` and answer with its model, honouring an ``Idempotency-Key``.

    The first request with a key runs and, if it succeeds (2xx), its response is stored
    and replayed for every later request with the same key and the same fingerprint
    (``Idempotent-Replayed: true``). Another request under a used key gets 422; one
    while the first still runs gets 409. A refused request frees its key again.
    """
    if key is None:
        model = await produce()
        return JSONResponse(model.model_dump(mode="json"), status_code=status_code)
    if not key or not set(key) <= _KEY_CHARS:
        raise InvalidInputError("Idempotency-Key must be 1-255 printable ASCII characters")
    fingerprint = _fingerprint(request, await request.body(), customer)
    claim = await host.run("idempotency.claim", host.records.claim, key, fingerprint)
    if claim.outcome == "replay":
        return Response(
            claim.body,
            status_code=claim.status_code,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    if claim.outcome == "mismatch":
        detail = "this Idempotency-Key was used for another request"
        return problem_response(
            422,
            "idempotency-key-reused",
            "Idempotency key reused",
            detail,
            instance=request.url.path,
            errors=[{"loc": ["header", "Idempotency-Key"], "msg": detail, "type": "key_reused"}],
        )
    if claim.outcome == "in_progress":
        return problem_response(
            409,
            "request-in-progress",
            "Request in progress",
            "a request with this Idempotency-Key is still running; retry shortly",
            instance=request.url.path,
            headers={"Retry-After": "1"},
        )
    try:
        model = await produce()
    except BaseException:
        await asyncio.shield(
            host.run("idempotency.abandon", host.records.abandon, key, fingerprint, 0)
        )
        raise
    body = model.model_dump_json()
    await host.run("idempotency.finish", host.records.finish, key, fingerprint, status_code, body)
    return Response(body, status_code=status_code, media_type="application/json")


# --- the app -----------------------------------------------------------------------------------


def _host(request: Request) -> Host:
    host: Host = request.app.state.host
    return host


HostDep = Annotated[Host, Depends(_host)]


def _router() -> APIRouter:
    api = APIRouter(prefix="/api/v1", route_class=DecimalJSONRoute, responses=PROBLEMS)

    # --- inventory ------------------------------------------------------------------------

    @api.post(
        "/inventory/items",
        status_code=201,
        tags=["inventory"],
        response_model=s.CreatedItemResponse,
    )
    async def create_inventory_item(
        req: s.CreateInventoryItemRequest, request: Request, host: HostDep, key: KeyHeader = None
    ) -> Response:
        """Create an item: ``RegisterItem`` in the library, the price in the catalogue."""
        return await respond(
            host, request, key, 201, lambda: host.run("inventory.register", host.create_item, req)
        )

    @api.get("/inventory/items/sku/{sku:path}", tags=["inventory"])
    async def get_inventory_item_by_sku(sku: str, host: HostDep) -> s.InventoryItemResponse:
        """One item by SKU (``Inventory.item``)."""
        return await host.run("inventory.item", host.item_by_sku, sku)

    @api.get("/inventory/items/{inventory_id}", tags=["inventory"])
    async def get_inventory_item(inventory_id: UUID, host: HostDep) -> s.InventoryItemResponse:
        """One item by inventory id (``Inventory.item_by_id``)."""
        return await host.run("inventory.item", host.item, inventory_id)

    @api.put("/inventory/items/{inventory_id}", tags=["inventory"])
    async def update_inventory_item(
        inventory_id: UUID, req: s.UpdateInventoryItemRequest, host: HostDep
    ) -> s.UpdatedItemResponse:
        """Reprice (catalogue) and set thresholds (``SetThresholds``)."""
        return await host.run("inventory.update", host.update_item, inventory_id, req)

    @api.post(
        "/inventory/reservations",
        status_code=201,
        tags=["inventory"],
        response_model=s.ReservedResponse,
    )
    async def reserve_stock(
        req: s.ReserveRequest, request: Request, host: HostDep, key: KeyHeader = None
    ) -> Response:
        """Reserve a product's variant for an order (``ReserveStock``)."""
        return await respond(
            host,
            request,
            key,
            201,
            lambda: host.run("inventory.reserve", host.reserve_product, req),
        )

    @api.post(
        "/inventory/reservations/by-sku",
        status_code=201,
        tags=["inventory"],
        response_model=s.ReservedResponse,
    )
    async def reserve_stock_by_sku(
        req: s.ReserveBySkuRequest, request: Request, host: HostDep, key: KeyHeader = None
    ) -> Response:
        """Reserve a SKU for an order (``ReserveStock``)."""
        return await respond(
            host, request, key, 201, lambda: host.run("inventory.reserve", host.reserve_sku, req)
        )

    @api.get("/inventory/reservations/{inventory_id}/{reservation_id}", tags=["inventory"])
    async def get_reservation(
        inventory_id: UUID, reservation_id: UUID, host: HostDep
    ) -> s.ReservationResponse:
        """One reservation as it stands (``Inventory.reservation``)."""
        return await host.run(
            "inventory.reservation", host.reservation, inventory_id, reservation_id
        )

    @api.put("/inventory/reservations/{inventory_id}/{reservation_id}/confirm", tags=["inventory"])
    async def confirm_reservation(
        inventory_id: UUID, reservation_id: UUID, host: HostDep
    ) -> s.ReservationResponse:
        """Confirm (``ConfirmReservation``; a repeat is a no-op)."""
        return await host.run("inventory.confirm", host.confirm, inventory_id, reservation_id)

    @api.put("/inventory/reservations/{inventory_id}/{reservation_id}/fulfill", tags=["inventory"])
    async def fulfill_reservation(
        inventory_id: UUID, reservation_id: UUID, host: HostDep
    ) -> s.ReservationResponse:
        """Ship what a confirmed reservation holds (``FulfilReservation``)."""
        return await host.run("inventory.fulfil", host.fulfil, inventory_id, reservation_id)

    @api.delete("/inventory/reservations/{inventory_id}/{reservation_id}", tags=["inventory"])
    async def cancel_reservation(
        inventory_id: UUID,
        reservation_id: UUID,
        host: HostDep,
        reason: Annotated[str, Query(min_length=1, max_length=256)] = "Cancelled by user",
    ) -> s.ReservationResponse:
        """Release (``ReleaseReservation``; a repeat is a no-op)."""
        return await host.run(
            "inventory.release", host.release, inventory_id, reservation_id, reason
        )

    @api.post(
        "/inventory/items/{inventory_id}/adjustments",
        status_code=201,
        tags=["inventory"],
        response_model=s.AdjustmentResponse,
    )
    async def adjust_stock(
        inventory_id: UUID,
        req: s.StockAdjustmentRequest,
        request: Request,
        host: HostDep,
        key: KeyHeader = None,
    ) -> Response:
        """``ReceiveStock`` for a restock, else ``AdjustStock`` with the mapped reason."""
        return await respond(
            host,
            request,
            key,
            201,
            lambda: host.run("inventory.adjust", host.adjust, inventory_id, req, key),
        )

    @api.post(
        "/inventory/items/{inventory_id}/physical-count",
        status_code=201,
        tags=["inventory"],
        response_model=s.PhysicalCountResponse,
    )
    async def record_physical_count(
        inventory_id: UUID,
        req: s.PhysicalCountRequest,
        request: Request,
        host: HostDep,
        key: KeyHeader = None,
    ) -> Response:
        """Record a count (``CountStock``): on-hand becomes the count, the gap is recorded."""
        return await respond(
            host,
            request,
            key,
            201,
            lambda: host.run("inventory.count", host.count, inventory_id, req),
        )

    @api.get("/inventory/low-stock", tags=["inventory"])
    async def get_low_stock_items(
        host: HostDep, limit: Limit = 100
    ) -> list[s.LowStockItemResponse]:
        """Items at or below their low-stock threshold (``Inventory.low_stock``)."""
        return await host.run("inventory.low_stock", host.low_stock, limit)

    @api.get("/inventory/reorder-needed", tags=["inventory"])
    async def get_items_needing_reorder(
        host: HostDep, limit: Limit = 100
    ) -> list[s.LowStockItemResponse]:
        """Items at or below their reorder point (``Inventory.reorder_needed``)."""
        return await host.run("inventory.reorder_needed", host.reorder_needed, limit)

    @api.get("/inventory/summary", tags=["inventory"])
    async def get_inventory_summary(host: HostDep) -> s.InventorySummaryResponse:
        """Totals over every item (``Inventory.summary``)."""
        return await host.run("inventory.summary", host.summary)

    @api.post("/inventory/maintenance/expire-reservations", tags=["inventory"])
    async def expire_reservations(
        host: HostDep,
        limit: Annotated[int, Query(ge=1, le=10_000, description="Accepted; all are swept")] = 1000,
    ) -> s.ExpiredResponse:
        """Release unconfirmed reservations past their deadline (``expire_reservations``)."""
        return await host.run("inventory.expire", host.expire_reservations)

    # --- carts ----------------------------------------------------------------------------

    def customer_of(header: str | None, query: str | None) -> str:
        customer = query or header
        if customer is None:
            raise InvalidInputError("name the customer: X-Customer-ID header or ?customer_id=")
        return customer

    for path in ("/cart", "/cart/"):

        @api.post(
            path,
            status_code=201,
            tags=["cart"],
            include_in_schema=path == "/cart",
            response_model=s.CartResponse,
        )
        async def create_cart(
            request: Request,
            host: HostDep,
            customer: CustomerHeader = None,
            session: SessionHeader = None,
            key: KeyHeader = None,
            req: s.CreateCartRequest | None = None,
        ) -> Response:
            """Open a cart (``CreateCart``) for the customer or the session."""
            body = req or s.CreateCartRequest()
            return await respond(
                host,
                request,
                key,
                201,
                lambda: host.run("carts.create", host.create_cart, body, customer, session),
                customer=customer or session,
            )

        @api.get(path, tags=["cart"], include_in_schema=path == "/cart")
        async def get_customer_carts(
            host: HostDep, customer: CustomerHeader = None, customer_id: CustomerQuery = None
        ) -> list[s.CartSummaryResponse]:
            """The customer's carts, newest first (``Carts.for_customer``)."""
            return await host.run("carts.list", host.carts_of, customer_of(customer, customer_id))

    @api.get("/cart/active", tags=["cart"])
    async def get_active_cart(
        host: HostDep, customer: CustomerHeader = None, customer_id: CustomerQuery = None
    ) -> s.CartResponse | None:
        """The customer's active cart, or null (``Carts.active_cart``)."""
        return await host.run("carts.active", host.active_cart, customer_of(customer, customer_id))

    @api.get("/cart/{cart_id}", tags=["cart"])
    async def get_cart(cart_id: UUID, host: HostDep) -> s.CartResponse:
        """One cart (``Carts.get``)."""
        return await host.run("carts.get", host.cart, cart_id)

    @api.delete("/cart/{cart_id}", status_code=204, tags=["cart"])
    async def delete_cart(cart_id: UUID, host: HostDep) -> Response:
        """Delete a cart (``DeleteCart``)."""
        await host.run("carts.delete", host.delete_cart, cart_id)
        return Response(status_code=204)

    @api.post("/cart/{cart_id}/items", tags=["cart"], response_model=s.CartResponse)
    async def add_item_to_cart(
        cart_id: UUID, req: s.AddItemRequest, request: Request, host: HostDep, key: KeyHeader = None
    ) -> Response:
        """Add units (``AddItem``), priced by the catalogue; the product maps to its SKU."""
        return await respond(
            host, request, key, 200, lambda: host.run("carts.add_item", host.add_item, cart_id, req)
        )

    @api.put("/cart/{cart_id}/items/{product_id:path}", tags=["cart"])
    async def update_cart_item(
        cart_id: UUID,
        product_id: str,
        req: s.UpdateItemRequest,
        host: HostDep,
        variant_id: VariantQuery = None,
    ) -> s.CartResponse:
        """Set a line's quantity, 0 removes it (``ChangeQuantity``)."""
        return await host.run(
            "carts.change_quantity",
            host.change_quantity,
            cart_id,
            product_id,
            variant_id,
            req.quantity,
        )

    @api.delete("/cart/{cart_id}/items/{product_id:path}", tags=["cart"])
    async def remove_cart_item(
        cart_id: UUID, product_id: str, host: HostDep, variant_id: VariantQuery = None
    ) -> s.CartResponse:
        """Take a line out (``RemoveItem``)."""
        return await host.run(
            "carts.remove_item", host.remove_item, cart_id, product_id, variant_id
        )

    @api.post("/cart/{cart_id}/clear", tags=["cart"])
    async def clear_cart(cart_id: UUID, host: HostDep) -> s.CartResponse:
        """Remove every line (``ClearCart``)."""
        return await host.run("carts.clear", host.clear_cart, cart_id)

    # --- orders ---------------------------------------------------------------------------

    for path in ("/orders", "/orders/"):

        @api.post(
            path,
            status_code=201,
            tags=["orders"],
            include_in_schema=path == "/orders",
            response_model=s.OrderCreationResponse,
        )
        async def create_order(
            req: s.CreateOrderRequest,
            request: Request,
            host: HostDep,
            customer: CustomerHeader = None,
            key: KeyHeader = None,
        ) -> Response:
            """Check out ``cart_id`` (``CheckoutCart``) or place ``items`` (``PlaceOrder``)."""
            if key is not None and req.idempotency_key is not None and key != req.idempotency_key:
                raise InvalidInputError("the Idempotency-Key header and idempotency_key differ")
            chosen = key or req.idempotency_key
            return await respond(
                host,
                request,
                chosen,
                201,
                lambda: host.run("orders.place", host.place_order, req, customer, chosen),
                customer=customer,
            )

        @api.get(path, tags=["orders"], include_in_schema=path == "/orders")
        async def get_orders(
            host: HostDep,
            customer: CustomerHeader = None,
            customer_id: CustomerQuery = None,
            status: Annotated[str | None, Query(max_length=64)] = None,
            limit: Annotated[int, Query(ge=1, le=200)] = 50,
            offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        ) -> list[s.OrderResponse]:
            """The customer's orders (``Orders.for_customer``), or all (``Orders.listing``)."""
            return await host.run(
                "orders.list", host.orders, customer_id or customer, status, limit, offset
            )

    @api.get("/orders/{order_id}", tags=["orders"])
    async def get_order(order_id: UUID, host: HostDep) -> s.OrderResponse:
        """One order, with its fulfilment saga's status and tracking (``Orders.get``)."""
        return await host.run("orders.get", host.order, order_id)

    @api.post("/orders/{order_id}/cancel", tags=["orders"])
    async def cancel_order(
        order_id: UUID, host: HostDep, req: s.CancelOrderRequest | None = None
    ) -> s.CancelOrderResponse:
        """Cancel through the sagas (``OrderSagas.cancel``)."""
        reason = (req or s.CancelOrderRequest()).reason
        return await host.run("orders.cancel", host.cancel_order, order_id, reason)

    # --- admin ----------------------------------------------------------------------------

    @api.get("/admin/sagas", tags=["admin"])
    async def list_sagas(
        host: HostDep,
        status_filter: Annotated[str | None, Query(max_length=32)] = None,
        saga_type: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> list[s.SagaResponse]:
        """Sagas, newest first (``Sagas.list``); ``status_filter=failed`` means STUCK."""
        return await host.run("sagas.list", host.sagas, status_filter, saga_type, limit)

    @api.get("/admin/sagas/statistics", tags=["admin"])
    async def get_saga_statistics(host: HostDep) -> s.SagaStatisticsResponse:
        """Saga counts (``Sagas.statistics``)."""
        return await host.run("sagas.statistics", host.saga_statistics)

    @api.get("/admin/sagas/{saga_id}", tags=["admin"])
    async def get_saga(saga_id: UUID, host: HostDep) -> s.SagaResponse:
        """One saga with its timeline (``Sagas.get``)."""
        return await host.run("sagas.get", host.saga, saga_id)

    @api.post("/admin/sagas/{saga_id}/retry", tags=["admin"])
    async def retry_saga(
        saga_id: UUID,
        host: HostDep,
        by: Annotated[str, Query(min_length=1, max_length=256)] = "operator",
        reason: Annotated[str, Query(min_length=1, max_length=256)] = "retried via admin API",
    ) -> s.SagaRetryResponse:
        """Retry the step a STUCK saga is at (``RetrySagaStep``)."""
        return await host.run("sagas.retry", host.retry_saga, saga_id, by, reason)

    @api.get("/admin/analytics/carts", tags=["admin"])
    async def get_cart_analytics(host: HostDep) -> s.CartsAnalyticsResponse:
        """Cart counts and abandonment (``Carts.count_by_status``, ``Carts.abandoned``)."""
        return await host.run("carts.analytics", host.cart_analytics)

    @api.get("/admin/analytics/abandoned-carts", tags=["admin"])
    async def get_abandoned_carts(
        host: HostDep,
        hours_ago: Annotated[int | None, Query(ge=0, le=24 * 365)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[s.CartSummaryResponse]:
        """Carts with lines untouched for ``hours_ago`` (default: the configured window)."""
        return await host.run("carts.abandoned", host.abandoned_carts, hours_ago, limit)

    return api


def _ops_router() -> APIRouter:
    ops = APIRouter(tags=["operations"])

    @ops.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @ops.get("/health/ready", responses={503: _problem_doc("A store cannot be reached")})
    async def ready(host: HostDep) -> Response:
        """Readiness: every store answers (within 5 s)."""
        try:
            checks = await asyncio.wait_for(host.run("health.ready", host.ready), timeout=5)
        except Exception as error:  # noqa: BLE001 - any failure means "not ready"
            log.warning("not ready: %s", error)
            return problem_response(
                503, "not-ready", "Not ready", f"a store cannot be reached: {error}"
            )
        return JSONResponse({"status": "ready", "checks": checks})

    @ops.get("/metrics", response_class=PlainTextResponse)
    async def metrics(host: HostDep) -> Response:
        """Prometheus text exposition of the service's metrics."""
        stats = await host.run("sagas.statistics", host.commerce.sagas.statistics)
        host.metrics.sagas.clear()
        for definition, counts in stats.by_definition.items():
            for state, n in counts.items():
                host.metrics.sagas.labels(definition, state.value).set(n)
        return Response(generate_latest(host.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return ops


def _build(env: Mapping[str, str] | None, config: ServiceConfig, metrics: Metrics) -> Host:
    settings = Settings.from_env(env)
    records = ServiceRecords(
        settings.application_env(ServiceRecords.name),
        claim_lease=timedelta(seconds=config.idempotency_lease_seconds),
    )
    # DEMO PORTS: the library's in-memory fakes stand in for a payment gateway, a carrier
    # and a notifier, so that an order placed here is fulfilled end to end. A real host
    # passes its own adapters of the PaymentGateway, ShippingProvider and Notifier ports.
    commerce = Commerce(
        settings,
        price_book=records,
        payments=FakePaymentGateway(),
        shipping_provider=FakeShippingProvider(),
        notifier=FakeNotifier(),
    )
    commerce.engine.start()  # the sagas run in a background thread until commerce.close()
    return Host(AsyncCommerce(commerce, max_workers=config.workers), records, config, metrics)


def create_app(env: Mapping[str, str] | None = None) -> FastAPI:
    """The service, configured from ``env`` then ``os.environ`` (read when it starts).

    ``COMMERCE_*``, ``POSTGRES_*``, ``REDIS_*`` and ``CIPHER_*`` configure the library (see
    docs/index.md and docs/example-service.md),
    ``SERVICE_*`` the service (:class:`~examples.service.config.ServiceConfig`).
    """
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = ServiceConfig.from_env(env)
        host = await asyncio.to_thread(_build, env, config, metrics)
        app.state.host = host
        sweeper = asyncio.create_task(_sweep(host, config.sweep_seconds))
        # The relays publish the integration events to the bus, in a thread of their own.
        relays_stop = threading.Event()
        relays = threading.Thread(
            target=host.commerce.run_relays, args=(relays_stop,), name="relays", daemon=True
        )
        relays.start()
        settings = host.commerce.settings
        log.info(
            "serving on %s persistence, %s messaging", settings.persistence, settings.messaging
        )
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            relays_stop.set()
            await asyncio.to_thread(relays.join)
            await host.shop.close()
            await asyncio.to_thread(host.records.close)
            log.info("stopped")

    app = _App(
        title="suuupra_commerce example host service",
        version="0.1.0",
        description=(__doc__ or "").strip(),
        lifespan=lifespan,
    )
    app.include_router(_router())
    app.include_router(_ops_router())
    install_problem_handlers(app, metrics)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


class _App(FastAPI):
    """FastAPI, with the problem details schema its error responses refer to."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = super().openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(problem.pop("$defs", {}))
            components["Problem"] = problem
            self.openapi_schema = schema
        return self.openapi_schema


async def _sweep(host: Host, every: float) -> None:
    """Release overdue reservations and expire stale carts, every ``every`` seconds."""
    if every <= 0:
        return
    while True:
        await asyncio.sleep(every)
        try:
            expired, stale = await host.run("housekeeping.sweep", host.sweep)
        except Exception:
            log.exception("housekeeping sweep failed; trying again later")
        else:
            if expired or stale:
                log.info("swept %d reservations and %d carts", expired, stale)

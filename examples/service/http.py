"""HTTP plumbing: exact JSON decoding, body limit, request ids, and RFC 9457 problem details.

Request bodies are decoded with ``json.loads(..., parse_float=Decimal)``: a JSON number
such as ``19.99`` becomes ``Decimal("19.99")`` from its text, never a float, and
``NaN``/``Infinity`` (which Python's decoder would otherwise accept) are refused.

Every error leaves as ``application/problem+json``::

    {"type": "/problems/insufficient-stock", "title": "Insufficient stock",
     "status": 409, "detail": "insufficient stock for MUG-1: requested 5, available 2",
     "instance": "/api/v1/inventory/reservations/by-sku", "request_id": "..."}

with ``errors`` (pydantic-style ``loc``/``msg``/``type``) on a 422.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from examples.service.config import MAX_BODY_BYTES
from examples.service.observability import Metrics, request_id_var, usable_request_id
from suuupra_commerce import (
    AdapterError,
    BusinessRuleError,
    CommerceError,
    ConcurrencyConflictError,
    ConflictError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InsufficientStockError,
    InvalidCommandError,
    InvalidInputError,
    NotFoundError,
    OrderLockedError,
    PriceChangedError,
    command_context,
)

__all__ = [
    "PROBLEM_JSON",
    "BodyLimitMiddleware",
    "BodyTooLargeError",
    "DecimalJSONRoute",
    "Problem",
    "ProblemError",
    "RequestContextMiddleware",
    "decode_json",
    "install_problem_handlers",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger("examples.service")


# --- decoding ----------------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(body: bytes | str) -> Any:
    """Decode a JSON document with every number exact: floats become ``Decimal``.

    >>> decode_json(b'{"unit_price": 19.99, "quantity": 3}')
    {'unit_price': Decimal('19.99'), 'quantity': 3}

    Anything that is not strict JSON (``NaN``, ``Infinity``, bad UTF-8, nesting too deep)
    raises ``json.JSONDecodeError``, which the framework answers with a 422.
    """
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as error:
        raise json.JSONDecodeError(str(error) or type(error).__name__, "", 0) from None


class DecimalJSONRequest(Request):
    """A request whose ``json()`` decodes numbers exactly (see :func:`decode_json`)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class DecimalJSONRoute(APIRoute):
    """A route whose body is decoded by :class:`DecimalJSONRequest` before validation."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(DecimalJSONRequest(request.scope, request.receive))

        return exact


# --- problem details -------------------------------------------------------------------------


class ProblemError(BaseModel):
    """One validation problem, as pydantic reports it."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem details object (``application/problem+json``)."""

    type: str = Field(description="URI reference naming the kind of problem")
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemError] | None = None


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem details response (``errors`` are cut to ``loc``, ``msg`` and ``type``)."""
    body: dict[str, Any] = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id_var.get(),
    }
    if errors is not None:
        body["errors"] = [
            {
                "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "value_error")),
            }
            for e in errors
        ]
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


class BodyTooLargeError(StarletteHTTPException):
    """The request body is over the limit (raised while it is being read)."""

    def __init__(self) -> None:
        super().__init__(422, f"request body over {MAX_BODY_BYTES} bytes")


def _problem_of(error: CommerceError, instance: str) -> JSONResponse:
    detail = str(error)
    if isinstance(error, NotFoundError):
        return problem_response(404, "not-found", "Not found", detail, instance=instance)
    if isinstance(error, InvalidCommandError):
        return problem_response(
            422,
            "invalid-command",
            "Invalid request",
            detail,
            instance=instance,
            errors=error.errors,
        )
    if isinstance(error, InvalidInputError):
        errors = [{"loc": [], "msg": detail, "type": type(error).__name__}]
        return problem_response(
            422, "invalid-input", "Invalid request", detail, instance=instance, errors=errors
        )
    if isinstance(error, IdempotencyKeyReusedError):
        errors = [{"loc": ["header", "Idempotency-Key"], "msg": detail, "type": "key_reused"}]
        return problem_response(
            422,
            "idempotency-key-reused",
            "Idempotency key reused",
            detail,
            instance=instance,
            errors=errors,
        )
    if isinstance(error, InsufficientStockError):
        extra = {"sku": error.sku, "requested": error.requested, "available": error.available}
        return problem_response(
            409,
            "insufficient-stock",
            "Insufficient stock",
            detail,
            instance=instance,
            extra=extra,
        )
    if isinstance(error, OrderLockedError):
        extra = {"saga_id": str(error.saga_id), "step": error.step}
        return problem_response(
            409, "order-locked", "Order held by a saga", detail, instance=instance, extra=extra
        )
    if isinstance(error, IllegalTransitionError):
        extra = {"state": error.state}
        return problem_response(
            409,
            "illegal-transition",
            "Not allowed in this state",
            detail,
            instance=instance,
            extra=extra,
        )
    if isinstance(error, PriceChangedError):
        changes = {
            sku: {"old": format(old.amount, "f"), "new": format(new.amount, "f")}
            for sku, (old, new) in error.changes.items()
        }
        return problem_response(
            409,
            "price-changed",
            "Prices changed",
            detail,
            instance=instance,
            extra={"changes": changes},
        )
    if isinstance(error, ConcurrencyConflictError):
        return problem_response(
            409,
            "concurrency-conflict",
            "Concurrent update",
            detail,
            instance=instance,
            headers={"Retry-After": "1"},
        )
    if isinstance(error, ConflictError):
        return problem_response(409, "conflict", "Conflict", detail, instance=instance)
    if isinstance(error, BusinessRuleError):
        return problem_response(
            409, "business-rule", "Refused by a business rule", detail, instance=instance
        )
    if isinstance(error, AdapterError):
        return problem_response(
            503,
            "store-unavailable",
            "Store unavailable",
            detail,
            instance=instance,
            headers={"Retry-After": "5"},
        )
    log.error("unexpected library error: %s", detail)
    return problem_response(
        500, "internal", "Internal error", "the service failed", instance=instance
    )


def install_problem_handlers(app: Any, metrics: Metrics) -> None:
    """Answer every error with problem details (see the module docstring)."""

    async def on_commerce_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, CommerceError)
        if isinstance(error, InsufficientStockError):
            metrics.reservation_conflicts.labels("insufficient_stock").inc()
        elif isinstance(error, ConcurrencyConflictError):
            metrics.reservation_conflicts.labels("concurrency").inc()
        log.info("refused: %s: %s", type(error).__name__, error)
        return _problem_of(error, request.url.path)

    async def on_validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        errors = list(error.errors())
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors[:5]
        )
        return problem_response(
            422,
            "validation",
            "Invalid request",
            detail or "invalid request",
            instance=request.url.path,
            errors=errors,
        )

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if isinstance(error, BodyTooLargeError):
            return problem_response(
                422,
                "payload-too-large",
                "Request body too large",
                str(error.detail),
                instance=request.url.path,
                errors=[{"loc": ["body"], "msg": str(error.detail), "type": "too_long"}],
            )
        slug = {404: "not-found", 405: "method-not-allowed"}.get(error.status_code, "http-error")
        title = {404: "Not found", 405: "Method not allowed"}.get(error.status_code, "Error")
        return problem_response(
            error.status_code,
            slug,
            title,
            str(error.detail),
            instance=request.url.path,
            headers=error.headers,
        )

    async def on_unexpected(request: Request, error: Exception) -> Response:
        log.exception("unhandled error", exc_info=error)
        return problem_response(
            500, "internal", "Internal error", "the service failed", instance=request.url.path
        )

    app.add_exception_handler(CommerceError, on_commerce_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


# --- middleware --------------------------------------------------------------------------------


class BodyLimitMiddleware:
    """Refuse bodies over ``MAX_BODY_BYTES`` with a 422, by their length or as they stream in."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit or declared < 0:
                    response = problem_response(
                        422,
                        "payload-too-large",
                        "Request body too large",
                        f"request body over {self.limit} bytes",
                        instance=scope.get("path"),
                        errors=[{"loc": ["body"], "msg": "too long", "type": "too_long"}],
                    )
                    await response(scope, receive, send)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLargeError
            return message

        await self.app(scope, counted, send)


class RequestContextMiddleware:
    """Give each request an id (``X-Request-ID``, made up if absent), log it, count it.

    The id is the library's correlation id for the request: the events it writes, the
    saga it starts and that saga's log lines all carry it.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                offered = value.decode("latin-1")
        request_id = usable_request_id(offered)
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            with command_context(correlation_id=request_id):
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            log.info(
                "%s %s -> %d in %.1f ms",
                scope["method"],
                scope.get("path", ""),
                status,
                elapsed * 1000,
            )
            request_id_var.reset(token)

"""Logs with the request id on every line, and the service's Prometheus metrics."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import TextIO

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from suuupra_commerce import ContextLogFilter

__all__ = [
    "LOG_FORMAT",
    "Metrics",
    "RequestIdLogFilter",
    "configure_logging",
    "current_request_id",
    "request_id_var",
    "usable_request_id",
]

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the HTTP request being served (copied into the library's worker threads)."""

LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s "
    "correlation_id=%(correlation_id)s %(message)s"
)

_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")


def usable_request_id(offered: str | None) -> str:
    """The client's ``X-Request-ID`` if it is a sane token, else a fresh one.

    >>> usable_request_id("abc-1")
    'abc-1'
    >>> len(usable_request_id("two words"))
    32
    """
    if offered is not None and _REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def current_request_id() -> str:
    """The id of the request being served, or ``-`` outside one."""
    return request_id_var.get() or "-"


class RequestIdLogFilter(logging.Filter):
    """Puts ``request_id`` on every record (``-`` outside a request, e.g. the saga engine)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's records to ``stream`` (stderr), each with its request id.

    The library's :class:`~suuupra_commerce.ContextLogFilter` adds the correlation id,
    which the saga engine's lines carry for the request that placed the order.
    """
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdLogFilter())
    handler.addFilter(ContextLogFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # The service writes its own access line (with the request id); uvicorn's would lack it.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return handler


class Metrics:
    """The service's metrics, in a registry of its own (one per app, so tests may build many)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.orders_placed = Counter(
            "commerce_orders_placed",
            "Orders placed through the API (replays of an idempotent request not counted).",
            ["source"],
            registry=self.registry,
        )
        self.sagas = Gauge(
            "commerce_sagas",
            "Sagas by definition and state, as the saga store reports them at scrape time.",
            ["definition", "state"],
            registry=self.registry,
        )
        self.reservation_conflicts = Counter(
            "commerce_reservation_conflicts",
            "Commands refused for want of stock, or that lost every optimistic-concurrency retry.",
            ["reason"],
            registry=self.registry,
        )
        self.command_latency = Histogram(
            "commerce_command_duration_seconds",
            "Time a library call took in its worker thread, queueing included.",
            ["command", "outcome"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.requests = Counter(
            "http_requests",
            "HTTP requests served, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )

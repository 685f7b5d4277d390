"""Optional OpenTelemetry spans for commands and saga steps (the ``otel`` extra).

With ``opentelemetry-api`` installed (``pip install suuupra-commerce[otel]``), every public
method of a service (``Orders.place``, ``Inventory.reserve`` ...) runs in a span named
``commerce.<Service>.<method>``, and every saga step a participant performs in a span
``saga.<action>`` with the saga id, step, phase, attempt and outcome as attributes. The
host chooses the tracer provider and exporter, as OpenTelemetry intends; without the
package, or until a provider is set, no span is made at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

try:
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - exercised only where the extra is missing
    _trace = None  # type: ignore[assignment]

__all__ = ["span", "traced_service", "use_tracer_provider"]

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type[Any])

_SCOPE = "suuupra_commerce"
_provider: Any = None


def use_tracer_provider(provider: Any) -> None:
    """Trace with ``provider`` instead of OpenTelemetry's global one (``None``: the global).

    For tests and hosts that keep several providers; most hosts set the global provider.
    """
    global _provider
    _provider = provider


def _tracing() -> bool:
    """Whether a span would go anywhere: a provider was given, or a global one was set.

    Until then OpenTelemetry's proxy provider makes spans that record nothing, at a cost
    that was a tenth of a saga step; so none is made.
    """
    if _trace is None:
        return False
    return _provider is not None or not isinstance(
        _trace.get_tracer_provider(), _trace.ProxyTracerProvider
    )


@contextmanager
def span(name: str, attributes: Mapping[str, str | int | bool] | None = None) -> Iterator[Any]:
    """Run the block in a span called ``name`` (a no-op until a tracer provider is set).

    Exceptions are recorded on the span, which is marked as an error, and re-raised.
    """
    if _trace is None or not _tracing():
        yield None
        return
    tracer = _trace.get_tracer(_SCOPE, tracer_provider=_provider)
    with tracer.start_as_current_span(name, attributes=dict(attributes or {})) as current:
        yield current


def _traced(name: str, method: F) -> F:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _tracing():
            return method(*args, **kwargs)
        with span(name):
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def traced_service(cls: C) -> C:
    """Class decorator: wrap the public methods ``cls`` defines in ``commerce.<cls>.<method>``."""
    if _trace is None:
        return cls
    for attribute, value in list(vars(cls).items()):
        if attribute.startswith("_") or not callable(value) or isinstance(value, type):
            continue
        if isinstance(value, staticmethod | classmethod):
            continue
        setattr(cls, attribute, _traced(f"commerce.{cls.__name__}.{attribute}", value))
    return cls

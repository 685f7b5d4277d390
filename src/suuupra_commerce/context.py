"""Correlation and causation: which request every event, command and log line belongs to.

A host opens a context per request; every event recorded inside it carries the request's
**correlation id** (the same through the whole chain of work it starts: the order, its
saga, the commands the saga sends, the participants' own events) and a **causation
id** (what caused this write directly: the request, a message's position in a log, a
saga step's key)::

    with command_context(correlation_id=request_id):
        commerce.orders.place(command)

Events carry them as ``event.metadata`` (``{"correlation_id": ..., "causation_id": ...}``);
a write outside any context starts a correlation of its own. Log records get them
through :class:`ContextLogFilter`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from suuupra_commerce.values import check_identifier

__all__ = [
    "CommandContext",
    "ContextLogFilter",
    "command_context",
    "current_context",
    "metadata_of",
]


@dataclass(frozen=True, slots=True)
class CommandContext:
    """The correlation id of the work under way, the cause of the write at hand, and the
    saga it is done for (``None`` outside a saga's step)."""

    correlation_id: str
    causation_id: str
    saga_id: str | None = None

    def metadata(self) -> dict[str, str]:
        """The context as it is stored on events."""
        return {"correlation_id": self.correlation_id, "causation_id": self.causation_id}

    @classmethod
    def new(cls) -> CommandContext:
        """A context of its own, for a write no request asked for."""
        fresh = uuid.uuid4().hex
        return cls(fresh, fresh)


_current: ContextVar[CommandContext | None] = ContextVar("commerce_context", default=None)


def current_context() -> CommandContext | None:
    """The context of the work under way, if one was opened.

    >>> with command_context("req-1"):
    ...     current_context()
    CommandContext(correlation_id='req-1', causation_id='req-1', saga_id=None)
    >>> current_context() is None
    True
    """
    return _current.get()


@contextmanager
def command_context(
    correlation_id: str | None = None,
    causation_id: str | None = None,
    saga_id: str | None = None,
) -> Iterator[CommandContext]:
    """Record everything written inside the block as part of ``correlation_id``.

    Without a correlation id, the block continues the context around it (or starts a new
    one); without a causation id, the correlation id is the cause. ``saga_id`` says the
    writes are a saga's step (the saga engine sets it; inner blocks keep it).
    """
    outer = _current.get()
    if correlation_id is not None:
        correlation = correlation_id
    else:
        correlation = outer.correlation_id if outer else uuid.uuid4().hex
    check_identifier(correlation, "correlation id")
    cause = correlation if causation_id is None else causation_id
    check_identifier(cause, "causation id")
    saga = saga_id if saga_id is not None else (outer.saga_id if outer else None)
    context = CommandContext(correlation, cause, saga)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def metadata_of(event: Any) -> Mapping[str, str]:
    """The correlation and causation ids an event was recorded with (empty if none)."""
    found = vars(event).get("metadata")
    return found if isinstance(found, Mapping) else {}


class ContextLogFilter(logging.Filter):
    """Adds ``correlation_id`` and ``causation_id`` to log records (``-`` outside a context).

    Attach it to a handler, then use them in its format::

        handler.addFilter(ContextLogFilter())
        handler.setFormatter(logging.Formatter("%(correlation_id)s %(message)s"))
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        record.correlation_id = context.correlation_id if context else "-"
        record.causation_id = context.causation_id if context else "-"
        return True

"""Read models as projections: documents folded from the event log into a view store.

A :class:`Projection` says which document an event touches (:meth:`Projection.key`) and
how the event changes it (:meth:`Projection.fold`). Documents are plain JSON values
(money as exact strings, times as UTC ISO strings), so any store can keep them: in
memory (:class:`InMemoryViewStore`, the default), in a SQLite file or in PostgreSQL
tables (``suuupra_commerce.adapters``, chosen by ``COMMERCE_VIEWS``).

The store records, per projection, the position in the application's notification log
up to which it has folded, in the same transaction as the documents that position
produced; a batch commits only if the position it started from is still the stored
one. So each event changes a view exactly once, whichever of several processes folds it,
and a crash never leaves a view half-way through a batch.

Queries filter, order and group by *indexed* fields only: each projection names them
in :attr:`Projection.indexes`, their values are strings (or ``None``) compared as
text, and stores index them (ISO times of one fixed width sort as text does).
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from suuupra_commerce.aggregate import copy_state

__all__ = [
    "Doc",
    "InMemoryViewStore",
    "Projection",
    "Tally",
    "ViewQuery",
    "ViewStore",
    "check_view_name",
    "instant",
    "parse_instant",
]

Doc = dict[str, Any]
"""A read-model document: a JSON object (str keys; str, int, bool, None, list, dict values)."""

_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def check_view_name(name: str) -> str:
    """``name`` if it may name a projection or an indexed field (lower snake case, <= 40)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        msg = f"view names are lower snake case, at most 40 characters: {name!r}"
        raise ValueError(msg)
    return name


def instant(moment: datetime) -> str:
    """A time as a fixed-width UTC ISO string, so that text order is time order.

    >>> from datetime import timedelta, timezone
    >>> instant(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1))))
    '2026-01-02T02:04:05.000000+00:00'
    """
    if moment.tzinfo is None:
        msg = "read-model times must be timezone-aware"
        raise ValueError(msg)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def parse_instant(text: str) -> datetime:
    """The inverse of :func:`instant`."""
    return datetime.fromisoformat(text)


class Projection(ABC):
    """How one read model folds events into documents.

    Subclasses set :attr:`name` (unique in a store), :attr:`version` (raise it when
    documents change shape: a store that holds another version starts the projection
    again from the first event) and :attr:`indexes`, and implement :meth:`fold` (and
    :meth:`key`, unless a document per aggregate is what is wanted). Folding must be
    deterministic and use only the event and the document, so that a rebuilt view equals
    the live one.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    indexes: ClassVar[tuple[str, ...]] = ()

    def key(self, event: DomainEventProtocol[UUID]) -> str | None:
        """The document ``event`` changes, or ``None`` if it changes none.

        By default one document per aggregate: the event's originator id.
        """
        return str(event.originator_id)

    @abstractmethod
    def fold(self, doc: Doc | None, event: DomainEventProtocol[UUID]) -> Doc | None:
        """The document after ``event`` (``None`` deletes it). ``doc`` may be changed in place."""

    def index_values(self, doc: Doc) -> dict[str, str | None]:
        """The indexed fields of ``doc``; each must be a string or ``None``."""
        values: dict[str, str | None] = {}
        for field in self.indexes:
            value = doc.get(field)
            if value is not None and not isinstance(value, str):
                msg = f"indexed field {self.name}.{field} must be a string, not {value!r}"
                raise TypeError(msg)
            values[field] = value
        return values


@dataclass(frozen=True, slots=True)
class ViewQuery:
    """A filter, an order and a page over one projection's documents (indexed fields only).

    ``equal`` keeps documents whose field equals the value; ``at_most`` keeps those whose
    field is set and at most the value (as text); ``order_by`` sorts, ``None`` values last.
    """

    equal: Mapping[str, str] | None = None
    at_most: Mapping[str, str] | None = None
    order_by: str | None = None
    descending: bool = False
    limit: int | None = None
    offset: int = 0

    def fields(self) -> set[str]:
        named = set(self.equal or {}) | set(self.at_most or {})
        if self.order_by is not None:
            named.add(self.order_by)
        return named


@dataclass(frozen=True, slots=True)
class Tally:
    """One group of :meth:`ViewStore.tally`: its indexed values, how many, and integer sums."""

    group: tuple[str | None, ...]
    count: int
    sums: tuple[int, ...]


class ViewStore(Protocol):
    """Where projections keep their documents and positions.

    Implementations: :class:`InMemoryViewStore`; ``adapters.sqlite_views.SQLiteViewStore``;
    ``adapters.postgres_views.PostgresViewStore``. Each must be safe to share between
    threads, and :meth:`commit` must be atomic and refuse a stale ``expected`` position.
    """

    def prepare(self, projection: Projection) -> None:
        """Make room for ``projection``; forget it if the store holds another version of it."""

    def position(self, name: str) -> int:
        """The last notification id folded into projection ``name`` (0 if none)."""

    def get_many(self, name: str, keys: Collection[str]) -> dict[str, Doc]:
        """The documents of ``keys`` that exist."""

    def find(self, name: str, query: ViewQuery) -> list[Doc]:
        """The documents ``query`` selects, in its order."""

    def tally(self, name: str, by: Sequence[str], sums: Sequence[str] = ()) -> list[Tally]:
        """Documents counted per distinct value of the indexed fields ``by``, with ``sums``."""

    def commit(
        self, name: str, changes: Mapping[str, Doc | None], *, expected: int, position: int
    ) -> bool:
        """Write ``changes`` and move the position from ``expected`` to ``position``.

        Returns ``False`` and writes nothing if the stored position is not ``expected``
        (another process folded those events first).
        """

    def reset(self, name: str) -> None:
        """Delete every document of ``name`` and set its position to 0."""

    def close(self) -> None:
        """Release connections."""


def check_query(projection: Projection, query: ViewQuery) -> None:
    """Refuse a query on fields the projection does not index (every store checks alike)."""
    unknown = query.fields() - set(projection.indexes)
    if unknown:
        msg = f"{projection.name} does not index {sorted(unknown)}"
        raise ValueError(msg)
    if (query.limit is not None and query.limit < 0) or query.offset < 0:
        msg = "limit and offset must not be negative"
        raise ValueError(msg)


class InMemoryViewStore:
    """A :class:`ViewStore` in process memory: the default, rebuilt from the log at start.

    Documents handed out are copies, so callers can't change the stored ones.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._projections: dict[str, Projection] = {}
        # name -> key -> (document, its indexed values)
        self._rows: dict[str, dict[str, tuple[Doc, dict[str, str | None]]]] = {}
        self._positions: dict[str, int] = {}

    def prepare(self, projection: Projection) -> None:
        name = check_view_name(projection.name)
        for field in projection.indexes:
            check_view_name(field)
        with self._lock:
            known = self._projections.get(name)
            if known is not None and known.version == projection.version:
                self._projections[name] = projection
                return
            self._projections[name] = projection
            self._rows[name] = {}
            self._positions[name] = 0

    def position(self, name: str) -> int:
        with self._lock:
            return self._positions[name]

    def get_many(self, name: str, keys: Collection[str]) -> dict[str, Doc]:
        with self._lock:
            rows = self._rows[name]
            return {k: copy_state(rows[k][0]) for k in keys if k in rows}

    def find(self, name: str, query: ViewQuery) -> list[Doc]:
        with self._lock:
            check_query(self._projections[name], query)
            rows = [(k, r) for k, r in self._rows[name].items() if _matches(r[1], query)]
            field = query.order_by
            if field is not None:
                present = sorted(
                    ((k, r) for k, r in rows if r[1][field] is not None),
                    key=lambda kr: (kr[1][1][field], kr[0]),
                    reverse=query.descending,
                )
                rows = present + sorted((k, r) for k, r in rows if r[1][field] is None)
            else:
                rows.sort(key=lambda kr: kr[0])
            end = None if query.limit is None else query.offset + query.limit
            return [copy_state(r[0]) for _, r in rows[query.offset : end]]

    def tally(self, name: str, by: Sequence[str], sums: Sequence[str] = ()) -> list[Tally]:
        with self._lock:
            check_query(self._projections[name], ViewQuery(equal=dict.fromkeys(by, "")))
            groups: dict[tuple[str | None, ...], list[int]] = {}
            for doc, values in self._rows[name].values():
                totals = groups.setdefault(tuple(values[f] for f in by), [0] * (1 + len(sums)))
                totals[0] += 1
                for i, field in enumerate(sums, start=1):
                    totals[i] += int(doc.get(field) or 0)
        return [Tally(g, t[0], tuple(t[1:])) for g, t in sorted(groups.items(), key=_group_key)]

    def commit(
        self, name: str, changes: Mapping[str, Doc | None], *, expected: int, position: int
    ) -> bool:
        with self._lock:
            if self._positions[name] != expected:
                return False
            projection = self._projections[name]
            rows = self._rows[name]
            for key, doc in changes.items():
                if doc is None:
                    rows.pop(key, None)
                else:
                    rows[key] = (copy_state(doc), projection.index_values(doc))
            self._positions[name] = position
            return True

    def reset(self, name: str) -> None:
        with self._lock:
            self._rows[name] = {}
            self._positions[name] = 0

    def close(self) -> None:
        """Nothing to release."""


def _matches(values: Mapping[str, str | None], query: ViewQuery) -> bool:
    for field, wanted in (query.equal or {}).items():
        if values[field] != wanted:
            return False
    for field, bound in (query.at_most or {}).items():
        value = values[field]
        if value is None or value > bound:
            return False
    return True


def _group_key(item: tuple[tuple[str | None, ...], list[int]]) -> tuple[tuple[bool, str], ...]:
    return tuple((v is None, v or "") for v in item[0])

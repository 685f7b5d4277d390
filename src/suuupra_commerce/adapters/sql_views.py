"""What the SQL view stores share: one table per projection and one table of positions.

Each projection ``p`` gets a table ``<prefix>p`` with a ``key`` primary key, the
document as JSON and one text column per indexed field (indexed), and a row in
``<prefix>positions`` with its version and the last notification id folded. A commit
moves the position with a compare-and-set in the same transaction as the documents;
a store that finds another version of a projection drops its table and starts it
again. Names come from :func:`~suuupra_commerce.projections.check_view_name` and are
quoted as identifiers by each dialect.
"""

# The SQL below is assembled from fixed text, placeholders and identifiers that
# check_view_name validated and each dialect quotes; values always go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from suuupra_commerce.projections import (
    Doc,
    Projection,
    Tally,
    ViewQuery,
    check_query,
    check_view_name,
)

__all__ = ["Cursor", "SqlViewStore", "check_prefix", "dumps"]

_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,19}")


def check_prefix(prefix: str) -> str:
    """A table-name prefix: lower snake case, at most 20 characters."""
    if not _PREFIX.fullmatch(prefix):
        msg = f"view table prefix must be lower snake case, at most 20 characters: {prefix!r}"
        raise ValueError(msg)
    return prefix


class Cursor(Protocol):
    """The slice of a DB-API cursor the stores use."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: Any, params: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: Any, params_seq: Any, /) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class SqlViewStore(ABC):
    """A :class:`~suuupra_commerce.projections.ViewStore` on SQL; dialects fill in the SQL."""

    #: The parameter placeholder of the driver.
    mark = "?"
    #: The LIMIT parameter that means "no limit".
    no_limit: int | None = -1

    def __init__(self, prefix: str = "commerce_view_") -> None:
        self.prefix = check_prefix(prefix)
        self._projections: dict[str, Projection] = {}
        self._lock = threading.Lock()

    # --- dialect ------------------------------------------------------------------------------

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Cursor]:
        """A cursor in a transaction that commits on exit (rolls back on an error)."""

    @abstractmethod
    def _ident(self, name: str) -> Any:
        """A table name quoted (schema-qualified where the dialect has schemas)."""

    @abstractmethod
    def _column(self, name: str) -> Any:
        """A column name quoted."""

    @abstractmethod
    def _sql(self, template: str, **idents: Any) -> Any:
        """``template`` with ``{name}`` placeholders filled by quoted identifiers."""

    @abstractmethod
    def _int_field(self, field: str) -> str:
        """An SQL expression: the integer field ``field`` of the ``doc`` column, 0 if absent."""

    @abstractmethod
    def _doc_param(self, doc: Doc) -> Any:
        """The parameter that stores ``doc`` in the doc column."""

    @abstractmethod
    def _doc_value(self, value: Any) -> Doc:
        """A doc column value read back as a document."""

    @abstractmethod
    def _create_table(self, cursor: Cursor, projection: Projection) -> None:
        """Create the projection's table and its indexes if they are missing."""

    @abstractmethod
    def _exists(self, cursor: Cursor, table: str) -> bool:
        """Whether the table ``table`` (unqualified) exists."""

    @abstractmethod
    def _lock_schema(self, cursor: Cursor) -> None:
        """Serialise schema changes between processes (inside the transaction)."""

    # --- the ViewStore protocol ---------------------------------------------------------------

    def prepare(self, projection: Projection) -> None:
        name = check_view_name(projection.name)
        for field in projection.indexes:
            check_view_name(field)
        if not self._ready(projection):
            self._make_room(projection)
        with self._lock:
            self._projections[name] = projection

    def _ready(self, projection: Projection) -> bool:
        """Whether the tables exist with this version (then nothing is written: a read-only
        connection, as to a replica, can serve the projection)."""
        with self._transaction() as cursor:
            positions = self.prefix + "positions"
            if not self._exists(cursor, positions):
                return False
            if not self._exists(cursor, self.prefix + projection.name):
                return False
            cursor.execute(
                self._sql(
                    f"SELECT version FROM {{positions}} WHERE projection = {self.mark}",
                    positions=self._positions_table(),
                ),
                (projection.name,),
            )
            found = cursor.fetchall()
        return bool(found) and found[0][0] == projection.version

    def _make_room(self, projection: Projection) -> None:
        name = projection.name
        with self._transaction() as cursor:
            self._lock_schema(cursor)
            cursor.execute(
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {positions} (projection TEXT PRIMARY KEY,"
                    " version INTEGER NOT NULL, position BIGINT NOT NULL)",
                    positions=self._positions_table(),
                )
            )
            cursor.execute(
                self._sql(
                    f"SELECT version FROM {{positions}} WHERE projection = {self.mark}",
                    positions=self._positions_table(),
                ),
                (name,),
            )
            found = cursor.fetchall()
            if found and found[0][0] != projection.version:
                cursor.execute(self._sql("DROP TABLE IF EXISTS {table}", table=self._table(name)))
                cursor.execute(
                    self._sql(
                        f"UPDATE {{positions}} SET version = {self.mark}, position = 0"
                        f" WHERE projection = {self.mark}",
                        positions=self._positions_table(),
                    ),
                    (projection.version, name),
                )
            elif not found:
                cursor.execute(
                    self._sql(
                        "INSERT INTO {positions} (projection, version, position)"
                        f" VALUES ({self.mark}, {self.mark}, 0)",
                        positions=self._positions_table(),
                    ),
                    (name, projection.version),
                )
            self._create_table(cursor, projection)

    def position(self, name: str) -> int:
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    f"SELECT position FROM {{positions}} WHERE projection = {self.mark}",
                    positions=self._positions_table(),
                ),
                (name,),
            )
            rows = cursor.fetchall()
        return int(rows[0][0]) if rows else 0

    def get_many(self, name: str, keys: Collection[str]) -> dict[str, Doc]:
        if not keys:
            return {}
        self._projection(name)
        marks = ", ".join([self.mark] * len(keys))
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    f"SELECT key, doc FROM {{table}} WHERE key IN ({marks})",
                    table=self._table(name),
                ),
                list(keys),
            )
            return {key: self._doc_value(doc) for key, doc in cursor.fetchall()}

    def find(self, name: str, query: ViewQuery) -> list[Doc]:
        check_query(self._projection(name), query)
        where: list[str] = []
        params: list[Any] = []
        idents: dict[str, Any] = {"table": self._table(name)}
        for n, (field, value) in enumerate((query.equal or {}).items()):
            idents[f"e{n}"] = self._column(field)
            where.append(f"{{e{n}}} = {self.mark}")
            params.append(value)
        for n, (field, bound) in enumerate((query.at_most or {}).items()):
            idents[f"m{n}"] = self._column(field)
            where.append(f"{{m{n}}} <= {self.mark}")
            params.append(bound)
        sql = "SELECT doc FROM {table}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        direction = "DESC" if query.descending else "ASC"
        if query.order_by is not None:
            idents["order"] = self._column(query.order_by)
            sql += f" ORDER BY {{order}} {direction} NULLS LAST, key {direction}"
        else:
            sql += " ORDER BY key"
        if query.limit is not None or query.offset:
            sql += f" LIMIT {self.mark} OFFSET {self.mark}"
            params += [self.no_limit if query.limit is None else query.limit, query.offset]
        with self._transaction() as cursor:
            cursor.execute(self._sql(sql, **idents), params)
            return [self._doc_value(row[0]) for row in cursor.fetchall()]

    def tally(self, name: str, by: Sequence[str], sums: Sequence[str] = ()) -> list[Tally]:
        check_query(self._projection(name), ViewQuery(equal=dict.fromkeys(by, "")))
        idents: dict[str, Any] = {"table": self._table(name)}
        groups = []
        for n, field in enumerate(by):
            idents[f"g{n}"] = self._column(field)
            groups.append(f"{{g{n}}}")
        totals = [f"SUM({self._int_field(check_view_name(f))})" for f in sums]
        columns = ", ".join([*groups, "COUNT(*)", *totals])
        sql = f"SELECT {columns} FROM {{table}}"
        if groups:
            sql += " GROUP BY " + ", ".join(groups)
        with self._transaction() as cursor:
            cursor.execute(self._sql(sql, **idents))
            rows = cursor.fetchall()
        width = len(by)
        found = [
            Tally(tuple(row[:width]), int(row[width]), tuple(int(v or 0) for v in row[width + 1 :]))
            for row in rows
            if int(row[width])
        ]
        return sorted(found, key=lambda t: tuple((v is None, v or "") for v in t.group))

    def commit(
        self, name: str, changes: Mapping[str, Doc | None], *, expected: int, position: int
    ) -> bool:
        projection = self._projection(name)
        upserts = [
            (key, self._doc_param(doc), *projection.index_values(doc).values())
            for key, doc in changes.items()
            if doc is not None
        ]
        deletes = [(key,) for key, doc in changes.items() if doc is None]
        fields = list(projection.indexes)
        idents: dict[str, Any] = {"table": self._table(name), "positions": self._positions_table()}
        for n, field in enumerate(fields):
            idents[f"f{n}"] = self._column(field)
        columns = ", ".join(["key", "doc", *(f"{{f{n}}}" for n in range(len(fields)))])
        marks = ", ".join([self.mark] * (2 + len(fields)))
        updates = ", ".join(
            ["doc = excluded.doc", *(f"{{f{n}}} = excluded.{{f{n}}}" for n in range(len(fields)))]
        )
        insert = self._sql(
            f"INSERT INTO {{table}} ({columns}) VALUES ({marks})"
            f" ON CONFLICT (key) DO UPDATE SET {updates}",
            **idents,
        )
        delete = self._sql(f"DELETE FROM {{table}} WHERE key = {self.mark}", **idents)
        move = self._sql(
            f"UPDATE {{positions}} SET position = {self.mark}"
            f" WHERE projection = {self.mark} AND position = {self.mark}",
            **idents,
        )
        try:
            with self._transaction() as cursor:
                # The compare-and-set first: it locks the position row, so a rival commit
                # of the same batch waits here, then finds the position moved.
                cursor.execute(move, (position, name, expected))
                if cursor.rowcount != 1:
                    raise _StaleError
                if upserts:
                    cursor.executemany(insert, upserts)
                if deletes:
                    cursor.executemany(delete, deletes)
        except _StaleError:
            return False
        return True

    def reset(self, name: str) -> None:
        with self._transaction() as cursor:
            cursor.execute(self._sql("DELETE FROM {table}", table=self._table(name)))
            cursor.execute(
                self._sql(
                    f"UPDATE {{positions}} SET position = 0 WHERE projection = {self.mark}",
                    positions=self._positions_table(),
                ),
                (name,),
            )

    # --- helpers ------------------------------------------------------------------------------

    def _projection(self, name: str) -> Projection:
        with self._lock:
            try:
                return self._projections[name]
            except KeyError:
                msg = f"projection {name!r} was not prepared in this store"
                raise ValueError(msg) from None

    def _table(self, name: str) -> Any:
        return self._ident(self.prefix + check_view_name(name))

    def _positions_table(self) -> Any:
        return self._ident(self.prefix + "positions")


class _StaleError(Exception):
    """The stored position moved: the commit's transaction must roll back."""


def dumps(doc: Doc) -> str:
    """A document as compact JSON text."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)

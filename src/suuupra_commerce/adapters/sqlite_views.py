"""Read-model documents in a SQLite file: the embedded default's view store.

One file (``views.sqlite`` next to the event stores) holds every projection's table
and the positions. Transactions take SQLite's write lock up front (``BEGIN
IMMEDIATE``), so processes sharing the file commit one batch at a time and a
rival's stale batch is refused by the position check.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from suuupra_commerce.adapters.sql_views import Cursor, SqlViewStore, dumps
from suuupra_commerce.errors import StoreUnavailableError
from suuupra_commerce.projections import Doc, Projection

__all__ = ["SQLiteViewStore"]


class SQLiteViewStore(SqlViewStore):
    """A :class:`~suuupra_commerce.projections.ViewStore` in one SQLite file.

    >>> import tempfile, pathlib
    >>> from suuupra_commerce.orders.views import OrderProjection
    >>> store = SQLiteViewStore(pathlib.Path(tempfile.mkdtemp()) / "views.sqlite")
    >>> store.prepare(OrderProjection())
    >>> store.position("orders")
    0
    >>> store.close()
    """

    def __init__(
        self, path: Path | str, *, lock_timeout_seconds: float = 30, prefix: str = "view_"
    ) -> None:
        super().__init__(prefix)
        self.path = Path(path)
        try:
            self._conn = sqlite3.connect(
                self.path,
                timeout=lock_timeout_seconds,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as error:
            raise StoreUnavailableError(f"cannot open view store {self.path}: {error}") from None
        self._conn_lock = threading.Lock()

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with self._conn_lock:
            cursor = self._conn.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise StoreUnavailableError(f"view store {self.path} is busy: {error}") from None
            try:
                yield cursor
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            else:
                cursor.execute("COMMIT")
            finally:
                cursor.close()

    def _ident(self, name: str) -> str:
        return f'"{name}"'

    def _column(self, name: str) -> str:
        return f'"{name}"'

    def _sql(self, template: str, **idents: Any) -> str:
        return template.format(**idents)

    def _int_field(self, field: str) -> str:
        return f"COALESCE(json_extract(doc, '$.{field}'), 0)"

    def _doc_param(self, doc: Doc) -> str:
        return dumps(doc)

    def _doc_value(self, value: Any) -> Doc:
        doc: Doc = json.loads(value)
        return doc

    def _exists(self, cursor: Cursor, table: str) -> bool:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        return bool(cursor.fetchall())

    def _lock_schema(self, cursor: Cursor) -> None:
        """``BEGIN IMMEDIATE`` already holds the file's write lock."""

    def _create_table(self, cursor: Cursor, projection: Projection) -> None:
        table = self.prefix + projection.name
        columns = "".join(f", {self._ident(f)} TEXT" for f in projection.indexes)
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {self._ident(table)}"
            f" (key TEXT PRIMARY KEY, doc TEXT NOT NULL{columns})"
        )
        for n, field in enumerate(projection.indexes):
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {self._ident(f'{table}_{n}')}"
                f" ON {self._ident(table)} ({self._ident(field)})"
            )

    def close(self) -> None:
        with self._conn_lock:
            self._conn.close()

"""Read-model documents in PostgreSQL tables, next to the event store.

Each projection has a table ``commerce_view_<name>`` (documents as ``jsonb``, one
indexed text column per indexed field) in the store's schema (``POSTGRES_SCHEMA``),
and ``commerce_view_positions`` holds how far each has folded. A batch commits with
a compare-and-set on its position row, so several processes catching the same view
up fold each event into it once; schema changes take a transaction-scoped advisory
lock, so processes starting together don't race to create tables. Readers may query
a replica (``docs/deployment.md``): the documents and positions replicate together.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from suuupra_commerce.adapters.postgres_connection import connection_params
from suuupra_commerce.adapters.sql_views import Cursor, SqlViewStore
from suuupra_commerce.errors import InvalidInputError, StoreUnavailableError
from suuupra_commerce.projections import Doc, Projection, check_view_name

__all__ = ["PostgresViewStore"]

_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class PostgresViewStore(SqlViewStore):
    """A :class:`~suuupra_commerce.projections.ViewStore` in PostgreSQL.

    ``settings`` are eventsourcing's ``POSTGRES_*`` keys (``Settings.postgres``); the
    tables go in ``POSTGRES_SCHEMA`` when it is set. ``pool_size`` connections at most.
    """

    mark = "%s"
    no_limit = None

    def __init__(
        self,
        settings: Mapping[str, str],
        *,
        pool_size: int = 4,
        prefix: str = "commerce_view_",
    ) -> None:
        super().__init__(prefix)
        schema = settings.get("POSTGRES_SCHEMA") or None
        if schema is not None and not _SCHEMA.fullmatch(schema):
            msg = f"POSTGRES_SCHEMA is not a plain identifier: {schema!r}"
            raise InvalidInputError(msg)
        self.schema = schema
        self._schema_lock = zlib.crc32(f"{self.schema}/{prefix}".encode()) & 0x7FFF_FFFF
        params = connection_params(settings, "suuupra-commerce views")
        timeout = float(params.pop("connect_timeout"))
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            kwargs={**params, "connect_timeout": int(timeout)},
            min_size=1,
            max_size=pool_size,
            timeout=timeout,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout as error:
            self._pool.close()
            raise StoreUnavailableError(f"PostgreSQL unreachable for views: {error}") from None

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
                yield cursor
        except (psycopg.OperationalError, PoolTimeout) as error:
            raise StoreUnavailableError(f"PostgreSQL view store: {error}") from None

    def _ident(self, name: str) -> sql.Identifier:
        return sql.Identifier(name) if self.schema is None else sql.Identifier(self.schema, name)

    def _column(self, name: str) -> sql.Identifier:
        return sql.Identifier(name)

    def _sql(self, template: str, **idents: Any) -> sql.Composed:
        return sql.SQL(template).format(**idents)

    def _int_field(self, field: str) -> str:
        return f"COALESCE((doc->>'{check_view_name(field)}')::bigint, 0)"

    def _doc_param(self, doc: Doc) -> Jsonb:
        return Jsonb(doc)

    def _doc_value(self, value: Any) -> Doc:
        doc: Doc = value
        return doc

    def _exists(self, cursor: Cursor, table: str) -> bool:
        if self.schema is None:
            cursor.execute("SELECT to_regclass(quote_ident(%s)) IS NOT NULL", (table,))
        else:
            cursor.execute(
                "SELECT to_regclass(quote_ident(%s) || '.' || quote_ident(%s)) IS NOT NULL",
                (self.schema, table),
            )
        return bool(cursor.fetchall()[0][0])

    def _lock_schema(self, cursor: Cursor) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._schema_lock,))
        if self.schema is not None:
            cursor.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )

    def _create_table(self, cursor: Cursor, projection: Projection) -> None:
        table = self.prefix + projection.name
        columns = sql.SQL("").join(
            sql.SQL(", {} TEXT").format(sql.Identifier(f)) for f in projection.indexes
        )
        cursor.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY, doc JSONB NOT NULL{})"
            ).format(self._ident(table), columns)
        )
        for n, field in enumerate(projection.indexes):
            cursor.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                    sql.Identifier(f"{table}_{n}"), self._ident(table), sql.Identifier(field)
                )
            )

    def close(self) -> None:
        self._pool.close()

"""Saga partition leases as PostgreSQL session advisory locks.

A worker holds one connection of its own; a partition is claimed with
``pg_try_advisory_lock(namespace, partition)`` and is held exactly as long as that
session lives. A worker that dies (even by SIGKILL) loses its connection, and the
server frees its partitions at once. Live workers are counted by the membership lock
each one holds, ``(namespace + 1, its backend pid)``.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from typing import Any

import psycopg

from suuupra_commerce.adapters.postgres_connection import connection_params
from suuupra_commerce.errors import StoreUnavailableError

__all__ = ["PostgresPartitionLeases"]

log = logging.getLogger("suuupra_commerce.adapters.postgres_leases")


def _key(text: str) -> int:
    """A stable, non-negative 31-bit advisory lock key for ``text``."""
    return zlib.crc32(text.encode("utf-8")) & 0x7FFF_FFFE


class PostgresPartitionLeases:
    """:class:`~suuupra_commerce.sagas.workers.PartitionLeases` on advisory locks.

    ``settings`` are eventsourcing's ``POSTGRES_*`` keys (as ``Settings.postgres`` holds
    them); ``namespace`` keeps deployments (schemas) on one server apart.
    """

    def __init__(self, settings: Mapping[str, str], namespace: str) -> None:
        self._params = connection_params(settings, f"suuupra-commerce worker {namespace}")
        self._partitions = _key(f"{namespace}/partitions")
        self._members = self._partitions + 1
        self._conn: psycopg.Connection[Any] | None = None
        self._held: set[int] = set()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._held.clear()  # a new session holds nothing
            try:
                self._conn = psycopg.connect(**self._params)
            except psycopg.OperationalError as error:
                raise StoreUnavailableError(f"PostgreSQL unreachable for leases: {error}") from None
            self._conn.execute("SELECT pg_advisory_lock(%s, pg_backend_pid())", (self._members,))
        return self._conn

    def _scalar(self, sql: str, params: tuple[Any, ...]) -> Any:
        try:
            row = self._connection().execute(sql, params).fetchone()
        except psycopg.OperationalError as error:
            self._drop()
            raise StoreUnavailableError(f"PostgreSQL lease query failed: {error}") from None
        assert row is not None
        return row[0]

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
                self._held.clear()

    def join(self) -> None:
        self._connection()

    def members(self) -> int:
        count = self._scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND objsubid = 2 AND classid = %s",
            (self._members,),
        )
        return int(count)

    def try_acquire(self, partition: int) -> bool:
        if partition in self._held:
            return True
        if self._scalar("SELECT pg_try_advisory_lock(%s, %s)", (self._partitions, partition)):
            self._held.add(partition)
            return True
        return False

    def release(self, partition: int) -> None:
        if partition in self._held:
            self._scalar("SELECT pg_advisory_unlock(%s, %s)", (self._partitions, partition))
            self._held.discard(partition)

    def renew(self) -> frozenset[int]:
        try:
            self._scalar("SELECT 1", ())
        except StoreUnavailableError:
            log.warning("lease connection lost: every partition is given up")
            return frozenset()
        return frozenset(self._held)

    @property
    def pid(self) -> int:
        """The server process of this worker's session (what ``pg_locks`` shows holding)."""
        return int(self._scalar("SELECT pg_backend_pid()", ()))

    def held(self) -> frozenset[int]:
        """The partitions this worker holds, as far as it knows."""
        return frozenset(self._held)

    def close(self) -> None:
        self._drop()

"""psycopg connection arguments from the ``POSTGRES_*`` settings, and a start-up lock."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg

from suuupra_commerce.errors import StoreUnavailableError

__all__ = ["connection_params", "startup_lock"]


def connection_params(settings: Mapping[str, str], application_name: str) -> dict[str, Any]:
    """psycopg connection arguments (autocommit) for a connection named ``application_name``.

    >>> connection_params({"POSTGRES_PORT": "6543"}, "worker")["port"]
    6543
    """
    return {
        "dbname": settings.get("POSTGRES_DBNAME", "postgres"),
        "host": settings.get("POSTGRES_HOST", "127.0.0.1"),
        "port": int(settings.get("POSTGRES_PORT", "5432")),
        "user": settings.get("POSTGRES_USER", "postgres"),
        "password": settings.get("POSTGRES_PASSWORD") or None,
        "connect_timeout": int(settings.get("POSTGRES_CONNECT_TIMEOUT", "5")),
        "autocommit": True,
        "application_name": application_name[:63],
    }


@contextmanager
def startup_lock(settings: Mapping[str, str]) -> Iterator[None]:
    """Hold a database-wide advisory lock while a process creates its tables.

    eventsourcing's recorders create their tables, types and functions when they start;
    two processes doing so at once can fail with "tuple concurrently updated". Taken
    around the start-up of a whole ``Commerce``, this lets processes start together.
    """
    params = connection_params(settings, "suuupra-commerce start-up")
    key = zlib.crc32(f"{params['dbname']}/suuupra-commerce/start-up".encode()) & 0x7FFF_FFFF
    try:
        conn = psycopg.connect(**params)
    except psycopg.OperationalError as error:
        raise StoreUnavailableError(f"PostgreSQL unreachable at start-up: {error}") from None
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        yield
    finally:
        conn.close()  # ends the session, and with it the lock

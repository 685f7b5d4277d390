"""psycopg connection arguments from eventsourcing's ``POSTGRES_*`` settings, for our adapters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["connection_params"]


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

"""The service's own settings, read from ``SERVICE_*`` keys."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from suuupra_commerce import InvalidInputError, Money

__all__ = ["ServiceConfig"]

MAX_BODY_BYTES = 64 * 1024
"""Largest request body accepted (the library's own limit for a command)."""


class ServiceConfig(BaseModel):
    """How the HTTP service runs; read with :meth:`from_env`.

    >>> ServiceConfig.from_env({"SERVICE_PORT": "9000"}).port
    9000
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    #: Currency of prices stated without one (the original service had a single currency).
    currency: str = "USD"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: Threads running library calls at once (each may hold a database connection).
    workers: int = Field(default=8, ge=1, le=64)
    #: How often reservations past their deadline and stale carts are swept (0: never).
    sweep_seconds: float = Field(default=60.0, ge=0, le=86_400, allow_inf_nan=False)
    #: How long an Idempotency-Key stays held by a request that never finished.
    idempotency_lease_seconds: float = Field(default=60.0, gt=0, le=86_400, allow_inf_nan=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Read ``SERVICE_<FIELD>`` keys from ``env``, then from ``os.environ``."""
        merged: dict[str, str] = dict(os.environ)
        if env is not None:
            merged.update(env)
        values: dict[str, Any] = {}
        for field in cls.model_fields:
            key = f"SERVICE_{field.upper()}"
            if key in merged:
                values[field] = merged[key]
        try:
            config = cls.model_validate(values)
            Money.zero(config.currency)
        except ValueError as error:
            raise InvalidInputError(f"invalid service settings: {error}") from None
        return config

"""Validated identifiers and quantities shared by every command and aggregate.

Identifiers arrive from outside (HTTP paths, message payloads) and end up in events
that live for ever, so they are checked once, strictly: at most ``MAX_ID_BYTES``
UTF-8 bytes, printable characters only (no NUL or other control characters), no
leading or trailing whitespace. SKUs are stricter still: ASCII letters, digits and
``. _ - /``, so that confusable look-alikes cannot register a second "same" SKU.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Final

from pydantic import AfterValidator, Field

from suuupra_commerce.errors import (
    InvalidIdentifierError,
    InvalidInputError,
    InvalidQuantityError,
)

__all__ = [
    "MAX_ID_BYTES",
    "MAX_QUANTITY",
    "MAX_SKU_LENGTH",
    "NAMESPACE",
    "Identifier",
    "Quantity",
    "Sku",
    "check_identifier",
    "check_moment",
    "check_quantity",
    "check_sku",
    "derived_id",
]

MAX_ID_BYTES: Final = 256
"""Longest identifier accepted, in UTF-8 bytes."""

MAX_SKU_LENGTH: Final = 64
"""Longest SKU accepted, in characters (ASCII only)."""

MAX_QUANTITY: Final = 1_000_000
"""Largest quantity one command may move; larger numbers are refused as absurd."""

NAMESPACE: Final = uuid.UUID("5b0f6c3e-8a8e-5d2a-9d6e-4f7c1b2a9e10")
"""Root namespace of every identifier this library derives with ``uuid5``."""

_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/]*")


def check_identifier(value: object, what: str = "identifier") -> str:
    """Return ``value`` if it is an acceptable identifier, else raise ``InvalidIdentifierError``.

    >>> check_identifier("customer-42")
    'customer-42'
    """
    if not isinstance(value, str):
        raise InvalidIdentifierError(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidIdentifierError(f"{what} must not be empty")
    if len(value) > MAX_ID_BYTES or len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        raise InvalidIdentifierError(f"{what} is longer than {MAX_ID_BYTES} bytes")
    if not value.isprintable():
        raise InvalidIdentifierError(f"{what} holds control or non-printable characters")
    if value != value.strip():
        raise InvalidIdentifierError(f"{what} has leading or trailing whitespace")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidIdentifierError(f"{what} is not valid UTF-8 text") from None
    return value


def check_sku(value: object) -> str:
    """Return ``value`` if it is an acceptable SKU, else raise ``InvalidIdentifierError``.

    >>> check_sku("TSHIRT-RED-M")
    'TSHIRT-RED-M'
    """
    if not isinstance(value, str):
        raise InvalidIdentifierError(f"SKU must be a string, not {type(value).__name__}")
    if not 1 <= len(value) <= MAX_SKU_LENGTH or not _SKU.fullmatch(value):
        raise InvalidIdentifierError(
            f"SKU must be 1-{MAX_SKU_LENGTH} ASCII letters, digits or . _ - /, "
            "starting with a letter or digit"
        )
    return value


def check_quantity(
    value: object,
    what: str = "quantity",
    *,
    allow_zero: bool = False,
    maximum: int = MAX_QUANTITY,
) -> int:
    """Return ``value`` if it is a whole number from 1 (or 0) to ``maximum``.

    Raises ``InvalidQuantityError`` otherwise, bools and floats included.

    >>> check_quantity(3)
    3
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidQuantityError(f"{what} must be an integer, not {type(value).__name__}")
    low = 0 if allow_zero else 1
    if not low <= value <= maximum:
        raise InvalidQuantityError(f"{what} must be between {low} and {maximum}, not {value}")
    return value


def check_moment(value: object, what: str = "now") -> datetime:
    """Return ``value`` if it is a timezone-aware datetime, else raise ``InvalidInputError``.

    >>> from datetime import UTC
    >>> check_moment(datetime(2030, 1, 1, tzinfo=UTC)).year
    2030
    """
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{what} must be a timezone-aware datetime")
    return value


def derived_id(*parts: object) -> uuid.UUID:
    """A deterministic id from its parts, so that a retry or a replay finds the same thing.

    >>> derived_id("order", "key-1") == derived_id("order", "key-1")
    True
    """
    return uuid.uuid5(NAMESPACE, "\x1f".join(str(p) for p in parts))


Identifier = Annotated[str, Field(strict=True), AfterValidator(check_identifier)]
"""A pydantic field type for external identifiers (customer, product, location ...)."""

Sku = Annotated[str, Field(strict=True), AfterValidator(check_sku)]
"""A pydantic field type for SKUs."""

Quantity = Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)]
"""A pydantic field type for a positive unit count (never a bool or a float)."""

"""What travels on the bus: the message envelope, a delivery of it, and a dead letter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
)

from suuupra_commerce.errors import InvalidInputError, InvalidMessageError
from suuupra_commerce.values import check_identifier

__all__ = ["DeadLetter", "Delivery", "Envelope", "check_name"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


def check_name(value: str, what: str = "topic") -> str:
    """A topic, group, consumer or event type name: lowercase ASCII, digits, ``. _ -``.

    Names end up in Redis keys and SQL values, so they are kept to a small alphabet.

    >>> check_name("commerce.orders")
    'commerce.orders'
    >>> check_name("Orders!")
    Traceback (most recent call last):
    ...
    suuupra_commerce.errors.InvalidInputError: invalid topic 'Orders!': ...
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        msg = f"invalid {what} {value!r}: use 1-100 of a-z 0-9 . _ - (starting a-z or 0-9)"
        raise InvalidInputError(msg)
    return value


def _identifier(value: str) -> str:
    return check_identifier(value, "message identifier")


def _type_name(value: str) -> str:
    return check_name(value, "message type")


Identifier = Annotated[str, AfterValidator(_identifier)]


class Envelope(BaseModel):
    """One message: who it is, what it is, where it came from, and its JSON-plain payload.

    ``id`` is what consumers deduplicate by: the relay derives it from the domain event,
    so publishing the same event again sends the same id. ``key`` is the entity the
    message is about (an order id, a SKU): messages with one key are published in the
    order their events were recorded. ``correlation_id`` and ``causation_id`` carry the
    request the message belongs to and what caused it.

    >>> from datetime import UTC, datetime
    >>> envelope = Envelope(id="m-1", type="commerce.order.confirmed", schema_version=1,
    ...                     key="o-1", source="orders", payload={"order_id": "o-1"},
    ...                     occurred_at=datetime(2025, 1, 1, tzinfo=UTC))
    >>> Envelope.from_json(envelope.to_json()) == envelope
    True
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Identifier
    type: Annotated[str, AfterValidator(_type_name)]
    schema_version: int = Field(ge=1, le=1000, strict=True)
    key: Identifier
    source: Identifier
    payload: dict[str, JsonValue]
    occurred_at: AwareDatetime
    published_at: AwareDatetime | None = None
    correlation_id: Identifier | None = None
    causation_id: Identifier | None = None

    def to_json(self) -> str:
        """The envelope as JSON text (what the adapters store)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> Envelope:
        """Read an envelope back; ``InvalidMessageError`` if it is not one."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as error:
            raise InvalidMessageError(f"not a message envelope: {error}") from None

    def published(self, at: datetime) -> Envelope:
        """A copy stamped with the moment it was handed to the bus."""
        return self.model_copy(update={"published_at": at})


@dataclass(frozen=True, slots=True)
class Delivery:
    """One handing-out of a message to a consumer; acknowledge it once handled.

    ``receipt`` is the adapter's handle on this message in its stream (what
    ``Consumer.ack`` needs); ``attempt`` counts deliveries to the group, from 1.
    """

    envelope: Envelope
    topic: str
    group: str
    receipt: str
    attempt: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message a group gave up on: delivered too often unacknowledged, or unreadable.

    ``body`` is the message as it was stored (it may not parse); ``envelope`` is it read,
    when it could be.
    """

    topic: str
    group: str
    receipt: str
    attempts: int
    reason: str
    body: str
    dead_at: datetime

    @property
    def envelope(self) -> Envelope | None:
        """The message, if it is a readable envelope."""
        try:
            return Envelope.from_json(self.body)
        except InvalidMessageError:
            return None

    def as_dict(self) -> dict[str, Any]:
        """JSON-plain fields, for storing the dead letter."""
        return {
            "topic": self.topic,
            "group": self.group,
            "receipt": self.receipt,
            "attempts": self.attempts,
            "reason": self.reason,
            "body": self.body,
            "dead_at": self.dead_at.isoformat(),
        }

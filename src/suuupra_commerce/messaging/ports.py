"""The messaging ports: a bus with consumer groups, and the stores the relay and consumers keep.

Every adapter (in memory, Redis Streams, PostgreSQL) gives the same guarantees, which
one contract test suite checks against each:

- **At least once.** A message published is handed to every consumer group at least
  once, until it is acknowledged or dead-lettered (or trimmed away, see ``max_length``).
- **Redelivery.** A delivery not acknowledged within ``redeliver_after`` seconds is handed
  out again, to whichever consumer of the group asks next: a consumer that died (or
  stopped without acknowledging) loses nothing.
- **Dead letters.** After ``max_deliveries`` deliveries without an acknowledgement, a
  message moves to the topic's dead letters instead of being handed out again; so does
  a message that is not a readable envelope, at once.
- **Order.** A group is handed a topic's messages in the order they were published; a
  redelivery comes after the messages published behind it.
- **Bounded.** A topic keeps about its newest ``max_length`` messages; older ones are
  dropped even if a group has not read them (size ``max_length`` for the slowest reader).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from suuupra_commerce.errors import InvalidInputError
from suuupra_commerce.messaging.envelope import DeadLetter, Delivery, Envelope

__all__ = [
    "Consumer",
    "DeliveryPolicy",
    "LogWaiter",
    "MessageBus",
    "ProcessedMessages",
    "RelayPositions",
    "check_batch",
    "envelopes_of",
]


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How patient a bus is with consumers, and how much it keeps.

    >>> DeliveryPolicy(redeliver_after=0.5, max_deliveries=3).max_length
    100000
    """

    redeliver_after: float = 30.0
    """Seconds a delivery may stay unacknowledged before it is handed out again."""
    max_deliveries: int = 5
    """Deliveries of one message to a group before it goes to the dead letters."""
    max_length: int | None = 100_000
    """Messages kept per topic (and dead letters per topic); ``None`` keeps everything."""

    def __post_init__(self) -> None:
        if not 0 < self.redeliver_after <= 86_400:
            raise InvalidInputError("redeliver_after must be between 0 and 86400 seconds")
        if not 1 <= self.max_deliveries <= 1000:
            raise InvalidInputError("max_deliveries must be between 1 and 1000")
        if self.max_length is not None and not 1 <= self.max_length <= 10**9:
            raise InvalidInputError("max_length must be between 1 and 10**9, or None")


@runtime_checkable
class Consumer(Protocol):
    """One member of a consumer group reading one topic.

    Members of a group share the topic's messages; each group sees all of them.
    """

    topic: str
    group: str
    name: str

    def receive(self, max_messages: int = 10, wait: float = 0.0) -> list[Delivery]:
        """Up to ``max_messages`` deliveries: overdue unacknowledged ones first, then new ones.

        Waits up to ``wait`` seconds for a new message when there is nothing to hand out.
        """
        ...

    def ack(self, *deliveries: Delivery) -> None:
        """Acknowledge handled deliveries: they are not handed out again. Repeating is a no-op."""
        ...

    def close(self) -> None:
        """Let go of the connection; unacknowledged deliveries come back to the group."""
        ...


@runtime_checkable
class MessageBus(Protocol):
    """Topics of messages, read by consumer groups with explicit acknowledgement."""

    def publish(self, topic: str, *envelopes: Envelope) -> None:
        """Append ``envelopes`` to ``topic``, in this order.

        Raises ``MessagingUnavailableError`` if the bus cannot be reached; publishing the
        same envelopes again is then safe (consumers deduplicate by ``Envelope.id``).
        """
        ...

    def consumer(self, topic: str, group: str, name: str) -> Consumer:
        """A member ``name`` of ``group`` on ``topic``; the group is created if need be.

        A new group starts at the oldest message the topic still holds.
        """
        ...

    def dead_letters(self, topic: str, limit: int = 100) -> list[DeadLetter]:
        """The topic's dead letters, oldest first."""
        ...

    def length(self, topic: str) -> int:
        """How many messages the topic holds now."""
        ...

    def close(self) -> None:
        """Let go of connections."""
        ...


@runtime_checkable
class ProcessedMessages(Protocol):
    """The message ids a consumer group has handled: what makes redelivery harmless."""

    def seen(self, group: str, message_id: str) -> bool:
        """Whether ``group`` has handled ``message_id``."""
        ...

    def remember(self, group: str, message_id: str) -> None:
        """Record that ``group`` has handled ``message_id``. Repeating is a no-op."""
        ...


@runtime_checkable
class RelayPositions(Protocol):
    """Where each relay is in its application's notification log."""

    def position(self, relay: str) -> int:
        """The last notification id ``relay`` published (0 before it has published any)."""
        ...

    def save(self, relay: str, position: int) -> None:
        """Record that ``relay`` has published everything up to ``position``."""
        ...


@runtime_checkable
class LogWaiter(Protocol):
    """Lets a reader of a notification log sleep until something new may have been recorded."""

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; ``True`` if woken by news (which may be spurious)."""
        ...

    def close(self) -> None:
        """Stop listening."""
        ...


def check_batch(max_messages: int, wait: float) -> None:
    """Refuse a batch size or wait that no adapter should be asked for."""
    if isinstance(max_messages, bool) or not isinstance(max_messages, int):
        raise InvalidInputError("max_messages must be an integer")
    if not 1 <= max_messages <= 10_000:
        raise InvalidInputError("max_messages must be between 1 and 10000")
    if not 0 <= wait <= 300:
        raise InvalidInputError("wait must be between 0 and 300 seconds")


def envelopes_of(values: Sequence[object]) -> list[Envelope]:
    """Check that everything to publish is an ``Envelope``."""
    found: list[Envelope] = []
    for value in values:
        if not isinstance(value, Envelope):
            raise InvalidInputError(f"only Envelope objects can be published, not {value!r}")
        found.append(value)
    return found

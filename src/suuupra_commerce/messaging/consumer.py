"""The idempotent consumer: handles each message id once per group, however often it arrives."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from suuupra_commerce.context import command_context
from suuupra_commerce.errors import AdapterError
from suuupra_commerce.messaging.envelope import Envelope
from suuupra_commerce.messaging.ports import Consumer, ProcessedMessages, check_batch

__all__ = ["IdempotentConsumer", "PollResult"]

log = logging.getLogger("suuupra_commerce.messaging.consumer")

Handler = Callable[[Envelope], None]


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll did: messages handled, duplicates dropped, handlers that raised."""

    handled: int = 0
    duplicates: int = 0
    failed: int = 0

    @property
    def received(self) -> int:
        return self.handled + self.duplicates + self.failed


class IdempotentConsumer:
    """Runs ``handler`` once per message id for a consumer group, then acknowledges.

    For each delivery: a message id the group has handled before is acknowledged and
    dropped; otherwise the handler runs (inside a ``command_context`` carrying the
    message's correlation id, with the message id as the cause), the id is remembered,
    and the delivery is acknowledged. A handler that raises is logged and its delivery
    left unacknowledged: it comes back after the bus's ``redeliver_after``, until the
    bus dead-letters it.

    Two windows are left: a crash after the handler's effects and before ``remember``
    (the message is handled again), and two members of a group handed two copies of one
    message at the same moment (a relay that published it twice, or a redelivery while
    the first delivery is still being handled): both may find it unseen and handle it.
    Where that matters, make the handler itself idempotent (the library's commands are,
    by their idempotency keys and derived ids) or remember the id in the same
    transaction as the handler's writes, under a unique constraint.

    >>> from suuupra_commerce.adapters.memory_messaging import (
    ...     InMemoryMessageBus, InMemoryProcessedMessages)
    >>> from datetime import UTC, datetime
    >>> bus = InMemoryMessageBus()
    >>> seen = []
    >>> worker = IdempotentConsumer(bus.consumer("t", "g", "c1"), seen.append,
    ...                             InMemoryProcessedMessages())
    >>> message = Envelope(id="m-1", type="x", schema_version=1, key="k", source="s",
    ...                    payload={}, occurred_at=datetime(2025, 1, 1, tzinfo=UTC))
    >>> bus.publish("t", message, message)
    >>> worker.poll()
    PollResult(handled=1, duplicates=1, failed=0)
    """

    def __init__(self, consumer: Consumer, handler: Handler, processed: ProcessedMessages) -> None:
        self.consumer = consumer
        self.handler = handler
        self.processed = processed

    def poll(self, max_messages: int = 10, wait: float = 0.0) -> PollResult:
        """Receive one batch and handle it; waits up to ``wait`` seconds for one."""
        check_batch(max_messages, wait)
        handled = duplicates = failed = 0
        group = self.consumer.group
        for delivery in self.consumer.receive(max_messages, wait):
            envelope = delivery.envelope
            if self.processed.seen(group, envelope.id):
                duplicates += 1
                self.consumer.ack(delivery)
                continue
            try:
                with command_context(
                    correlation_id=envelope.correlation_id or envelope.id,
                    causation_id=envelope.id,
                ):
                    self.handler(envelope)
            except Exception:
                failed += 1
                log.exception(
                    "handler of %s failed on %s %s (attempt %d); it will be redelivered",
                    group,
                    envelope.type,
                    envelope.id,
                    delivery.attempt,
                )
                continue
            self.processed.remember(group, envelope.id)
            self.consumer.ack(delivery)
            handled += 1
        return PollResult(handled, duplicates, failed)

    def run(self, stop: threading.Event, *, wait: float = 1.0, retry_delay: float = 1.0) -> None:
        """Poll until ``stop`` is set; an unreachable bus is logged and retried."""
        while not stop.is_set():
            try:
                self.poll(wait=wait)
            except AdapterError as error:
                log.warning(
                    "consumer %s: %s; retrying in %.1fs", self.consumer.group, error, retry_delay
                )
                stop.wait(retry_delay)

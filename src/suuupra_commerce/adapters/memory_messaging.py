"""The message bus in process memory: a faithful fake of the Redis and PostgreSQL buses.

Messages are stored as JSON text, as the real buses store them, and handed out with
the same consumer groups, acknowledgements, redelivery, dead letters and trimming;
the bus contract suite runs against it and the real adapters alike. For tests and
single-process hosts: nothing survives the process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from suuupra_commerce.errors import InvalidMessageError
from suuupra_commerce.messaging.envelope import DeadLetter, Delivery, Envelope, check_name
from suuupra_commerce.messaging.ports import DeliveryPolicy, check_batch, envelopes_of

__all__ = [
    "InMemoryConsumer",
    "InMemoryMessageBus",
    "InMemoryProcessedMessages",
    "InMemoryRelayPositions",
]


@dataclass(slots=True)
class _Pending:
    consumer: str
    deliveries: int
    delivered_at: float


@dataclass(slots=True)
class _Group:
    position: int
    pending: dict[int, _Pending] = field(default_factory=dict)


@dataclass(slots=True)
class _Topic:
    entries: OrderedDict[int, str] = field(default_factory=OrderedDict)
    next_seq: int = 1
    groups: dict[str, _Group] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)


class InMemoryMessageBus:
    """A :class:`~suuupra_commerce.messaging.MessageBus` in a dict; safe to share between threads.

    >>> from datetime import UTC, datetime
    >>> bus = InMemoryMessageBus()
    >>> consumer = bus.consumer("orders", "billing", "worker-1")
    >>> bus.publish("orders", Envelope(id="m-1", type="order.placed", schema_version=1,
    ...     key="o-1", source="shop", payload={"total": "9.50"},
    ...     occurred_at=datetime(2025, 1, 1, tzinfo=UTC)))
    >>> [delivery] = consumer.receive()
    >>> delivery.envelope.payload, delivery.attempt
    ({'total': '9.50'}, 1)
    >>> consumer.ack(delivery)
    >>> consumer.receive()
    []
    """

    def __init__(self, policy: DeliveryPolicy | None = None) -> None:
        self.policy = policy or DeliveryPolicy()
        self._topics: dict[str, _Topic] = {}
        self._changed = threading.Condition()

    def _topic(self, topic: str) -> _Topic:
        found = self._topics.get(topic)
        if found is None:
            found = self._topics[topic] = _Topic()
        return found

    def publish(self, topic: str, *envelopes: Envelope) -> None:
        check_name(topic)
        bodies = [e.to_json() for e in envelopes_of(envelopes)]
        with self._changed:
            self._append(topic, bodies)

    def publish_raw(self, topic: str, body: str) -> None:
        """Append a message as some other producer might: any text, even a broken one."""
        check_name(topic)
        with self._changed:
            self._append(topic, [body])

    def _append(self, topic: str, bodies: list[str]) -> None:
        stream = self._topic(topic)
        for body in bodies:
            stream.entries[stream.next_seq] = body
            stream.next_seq += 1
        limit = self.policy.max_length
        if limit is not None:
            while len(stream.entries) > limit:
                stream.entries.popitem(last=False)
        self._changed.notify_all()

    def consumer(self, topic: str, group: str, name: str) -> InMemoryConsumer:
        check_name(topic)
        check_name(group, "group")
        check_name(name, "consumer")
        with self._changed:
            stream = self._topic(topic)
            if group not in stream.groups:
                first = next(iter(stream.entries), stream.next_seq)
                stream.groups[group] = _Group(position=first - 1)
        return InMemoryConsumer(self, topic, group, name)

    def dead_letters(self, topic: str, limit: int = 100) -> list[DeadLetter]:
        check_name(topic)
        with self._changed:
            return list(self._topic(topic).dead[:limit])

    def length(self, topic: str) -> int:
        check_name(topic)
        with self._changed:
            return len(self._topic(topic).entries)

    def close(self) -> None:
        """Nothing to let go of."""

    # --- what consumers call, holding the condition's lock -------------------------------------

    def _claim(self, topic: str, group: str, name: str, limit: int) -> list[Delivery]:
        stream = self._topic(topic)
        state = stream.groups[group]
        now = time.monotonic()
        out: list[Delivery] = []
        for seq, pending in sorted(state.pending.items()):
            if len(out) >= limit:
                break
            if now - pending.delivered_at < self.policy.redeliver_after:
                continue
            body = stream.entries.get(seq)
            if body is None:  # trimmed away
                del state.pending[seq]
            elif pending.deliveries >= self.policy.max_deliveries:
                self._bury(stream, topic, group, seq, body, pending.deliveries, "max deliveries")
                del state.pending[seq]
            else:
                pending.consumer = name
                pending.deliveries += 1
                pending.delivered_at = now
                delivery = self._delivery(stream, topic, group, seq, body, pending.deliveries)
                if delivery is not None:
                    out.append(delivery)
        for seq, body in stream.entries.items():
            if len(out) >= limit:
                break
            if seq <= state.position:
                continue
            state.position = seq
            state.pending[seq] = _Pending(name, 1, now)
            delivery = self._delivery(stream, topic, group, seq, body, 1)
            if delivery is not None:
                out.append(delivery)
        return out

    def _delivery(
        self, stream: _Topic, topic: str, group: str, seq: int, body: str, attempt: int
    ) -> Delivery | None:
        try:
            envelope = Envelope.from_json(body)
        except InvalidMessageError as error:
            self._bury(stream, topic, group, seq, body, attempt, f"unreadable: {error}")
            stream.groups[group].pending.pop(seq, None)
            return None
        return Delivery(envelope, topic, group, str(seq), attempt)

    def _bury(
        self, stream: _Topic, topic: str, group: str, seq: int, body: str, attempts: int, why: str
    ) -> None:
        stream.dead.append(
            DeadLetter(topic, group, str(seq), attempts, why, body, datetime.now(UTC))
        )
        limit = self.policy.max_length
        if limit is not None and len(stream.dead) > limit:
            del stream.dead[: len(stream.dead) - limit]


class InMemoryConsumer:
    """One member of a consumer group of an :class:`InMemoryMessageBus`."""

    def __init__(self, bus: InMemoryMessageBus, topic: str, group: str, name: str) -> None:
        self.bus = bus
        self.topic = topic
        self.group = group
        self.name = name

    def receive(self, max_messages: int = 10, wait: float = 0.0) -> list[Delivery]:
        check_batch(max_messages, wait)
        deadline = time.monotonic() + wait
        with self.bus._changed:
            while True:
                out = self.bus._claim(self.topic, self.group, self.name, max_messages)
                remaining = deadline - time.monotonic()
                if out or remaining <= 0:
                    return out
                self.bus._changed.wait(remaining)

    def ack(self, *deliveries: Delivery) -> None:
        with self.bus._changed:
            for delivery in deliveries:
                stream = self.bus._topic(delivery.topic)
                group = stream.groups.get(delivery.group)
                if group is not None:
                    group.pending.pop(int(delivery.receipt), None)

    def close(self) -> None:
        """Nothing to let go of: unacknowledged deliveries stay pending for the group."""


class InMemoryProcessedMessages:
    """:class:`~suuupra_commerce.messaging.ProcessedMessages` in a set; thread-safe.

    Keeps the newest ``capacity`` ids per group (a deduplication window).

    >>> seen = InMemoryProcessedMessages()
    >>> seen.remember("billing", "m-1")
    >>> seen.seen("billing", "m-1"), seen.seen("shipping", "m-1")
    (True, False)
    """

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self._ids: dict[str, OrderedDict[str, None]] = {}
        self._lock = threading.Lock()

    def seen(self, group: str, message_id: str) -> bool:
        with self._lock:
            return message_id in self._ids.get(group, ())

    def remember(self, group: str, message_id: str) -> None:
        with self._lock:
            ids = self._ids.setdefault(group, OrderedDict())
            ids[message_id] = None
            if len(ids) > self.capacity:
                ids.popitem(last=False)


class InMemoryRelayPositions:
    """:class:`~suuupra_commerce.messaging.RelayPositions` in a dict; positions only go forward.

    >>> positions = InMemoryRelayPositions()
    >>> positions.save("orders", 7); positions.save("orders", 5)
    >>> positions.position("orders"), positions.position("carts")
    (7, 0)
    """

    def __init__(self) -> None:
        self._positions: dict[str, int] = {}
        self._lock = threading.Lock()

    def position(self, relay: str) -> int:
        with self._lock:
            return self._positions.get(relay, 0)

    def save(self, relay: str, position: int) -> None:
        with self._lock:
            self._positions[relay] = max(position, self._positions.get(relay, 0))

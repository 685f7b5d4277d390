"""The message bus on Redis Streams: consumer groups, XACK, XCLAIM of idle deliveries, dead letters.

Keys, all under the application's namespace::

    {namespace}:stream:{topic}              the topic's messages (XADD ... MAXLEN ~ max_length)
    {namespace}:dead:{topic}                its dead letters (bounded the same way)
    {namespace}:processed:{group}:{id}      a message a group handled (RedisProcessedMessages)
    {namespace}:relay:{name}                a relay's position (RedisRelayPositions)

A consumer's ``receive`` first takes over deliveries idle for ``redeliver_after`` seconds
(its own, or those of a consumer that died: XPENDING ... IDLE, then XCLAIM), moving
those delivered ``max_deliveries`` times to the dead letters instead; then it reads new
messages (XREADGROUP ... >, blocking up to ``wait``). Messages are JSON text in one
field, ``envelope``; nothing is pickled.

Connection errors are retried by redis-py's ``Retry`` (every command here is safe to
repeat: a publish repeated is a duplicate that consumers drop; a read repeated leaves
what the lost answer held pending, to be reclaimed); when retries run out they
surface as ``MessagingUnavailableError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from suuupra_commerce.errors import (
    InvalidInputError,
    InvalidMessageError,
    MessagingUnavailableError,
)
from suuupra_commerce.messaging.envelope import DeadLetter, Delivery, Envelope, check_name
from suuupra_commerce.messaging.ports import DeliveryPolicy, check_batch, envelopes_of

__all__ = [
    "RedisProcessedMessages",
    "RedisRelayPositions",
    "RedisStreamBus",
    "RedisStreamConsumer",
    "redis_client",
]

_FIELD = b"envelope"
_DEAD_FIELD = b"dead_letter"


def redis_client(
    url: str,
    *,
    retries: int = 3,
    socket_timeout: float = 5.0,
    connect_timeout: float = 2.0,
) -> redis.Redis:
    """A Redis client that retries connection errors ``retries`` times, with jittered backoff."""
    if not 0 <= retries <= 20:
        raise InvalidInputError("retries must be between 0 and 20")
    return redis.Redis.from_url(
        url,
        retry=Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), retries),
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        health_check_interval=30,
    )


@contextmanager
def _unavailable(what: str) -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise MessagingUnavailableError(f"Redis unreachable ({what}): {error}") from error


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class RedisStreamBus:
    """A :class:`~suuupra_commerce.messaging.MessageBus` on Redis Streams.

    ``namespace`` prefixes every key (one per application or deployment).
    ``approximate_trim`` trims with ``MAXLEN ~`` (cheap, whole macro nodes: a topic may
    hold somewhat more than ``max_length``); ``False`` trims exactly.

    Build it with a client of your own, or from a URL::

        bus = RedisStreamBus.from_url("redis://127.0.0.1:6379/0", namespace="shop")
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str,
        policy: DeliveryPolicy | None = None,
        approximate_trim: bool = True,
        owns_client: bool = False,
    ) -> None:
        self.client = client
        # redis-py's annotations describe replies loosely (every command may answer an
        # awaitable, bytes or str); the calls go through an untyped alias and the
        # replies are parsed here, for the one reply shape a RESP2 client gives.
        self.redis: Any = client
        self.namespace = check_name(namespace, "namespace")
        self.policy = policy or DeliveryPolicy()
        self.approximate_trim = approximate_trim
        self._owns_client = owns_client
        options = client.connection_pool.connection_kwargs
        if str(options.get("protocol") or 2) != "2":
            raise InvalidInputError("the Redis client must speak RESP2 (protocol=2, the default)")
        timeout = options.get("socket_timeout")
        self._longest_block = max(float(timeout) - 0.5, 0.05) if timeout else 300.0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str,
        policy: DeliveryPolicy | None = None,
        approximate_trim: bool = True,
        retries: int = 3,
        socket_timeout: float = 5.0,
        connect_timeout: float = 2.0,
    ) -> RedisStreamBus:
        """A bus with a client of its own (closed with the bus); see :func:`redis_client`."""
        client = redis_client(
            url, retries=retries, socket_timeout=socket_timeout, connect_timeout=connect_timeout
        )
        return cls(
            client,
            namespace=namespace,
            policy=policy,
            approximate_trim=approximate_trim,
            owns_client=True,
        )

    def stream_key(self, topic: str) -> str:
        """The key of a topic's stream."""
        return f"{self.namespace}:stream:{check_name(topic)}"

    def dead_key(self, topic: str) -> str:
        """The key of a topic's dead letters."""
        return f"{self.namespace}:dead:{check_name(topic)}"

    def _trim(self) -> dict[str, Any]:
        if self.policy.max_length is None:
            return {}
        return {"maxlen": self.policy.max_length, "approximate": self.approximate_trim}

    def publish(self, topic: str, *envelopes: Envelope) -> None:
        key = self.stream_key(topic)
        bodies = [e.to_json() for e in envelopes_of(envelopes)]
        if not bodies:
            return
        with _unavailable("publish"):
            pipe = self.redis.pipeline(transaction=False)
            for body in bodies:
                pipe.xadd(key, {_FIELD: body}, **self._trim())
            pipe.execute()

    def publish_raw(self, topic: str, body: str, field: bytes = _FIELD) -> None:
        """Append an entry as some other producer might: any text, under any field."""
        with _unavailable("publish"):
            self.redis.xadd(self.stream_key(topic), {field: body})

    def consumer(self, topic: str, group: str, name: str) -> RedisStreamConsumer:
        check_name(group, "group")
        check_name(name, "consumer")
        consumer = RedisStreamConsumer(self, topic, group, name)
        with _unavailable("create group"):
            consumer.ensure_group()
        return consumer

    def dead_letters(self, topic: str, limit: int = 100) -> list[DeadLetter]:
        with _unavailable("read dead letters"):
            entries = self.redis.xrange(self.dead_key(topic), count=limit)
        found = []
        for _id, fields in entries:
            data = json.loads(fields[_DEAD_FIELD])
            data["dead_at"] = datetime.fromisoformat(data["dead_at"])
            found.append(DeadLetter(**data))
        return found

    def length(self, topic: str) -> int:
        with _unavailable("length"):
            return int(self.redis.xlen(self.stream_key(topic)))

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # --- used by consumers ------------------------------------------------------------------

    def bury(self, topic: str, group: str, receipt: str, attempts: int, reason: str) -> None:
        """Move one pending entry to the dead letters and acknowledge it, in one transaction."""
        key = self.stream_key(topic)
        entries = self.redis.xrange(key, min=receipt, max=receipt, count=1)
        pipe = self.redis.pipeline(transaction=True)
        if entries:
            fields = entries[0][1] or {}
            body = _text(fields.get(_FIELD, b""))
            letter = DeadLetter(topic, group, receipt, attempts, reason, body, datetime.now(UTC))
            pipe.xadd(
                self.dead_key(topic),
                {_DEAD_FIELD: json.dumps(letter.as_dict())},
                **self._trim(),
            )
        pipe.xack(key, group, receipt)
        pipe.execute()


class RedisStreamConsumer:
    """One member of a consumer group of a :class:`RedisStreamBus` topic."""

    def __init__(self, bus: RedisStreamBus, topic: str, group: str, name: str) -> None:
        self.bus = bus
        self.topic = topic
        self.group = group
        self.name = name
        self._key = bus.stream_key(topic)

    def ensure_group(self) -> None:
        """Create the group (from the oldest message kept) unless it exists."""
        try:
            self.bus.redis.xgroup_create(self._key, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def receive(self, max_messages: int = 10, wait: float = 0.0) -> list[Delivery]:
        check_batch(max_messages, wait)
        with _unavailable("receive"):
            try:
                return self._receive(max_messages, wait)
            except redis.ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                self.ensure_group()  # the stream was deleted under us: start again
                return self._receive(max_messages, wait)

    def _receive(self, max_messages: int, wait: float) -> list[Delivery]:
        out = self._reclaim(max_messages)
        room = max_messages - len(out)
        if room:
            block = None
            if wait > 0 and not out:
                block = max(int(min(wait, self.bus._longest_block) * 1000), 1)
            reply = self.bus.redis.xreadgroup(
                self.group, self.name, {self._key: ">"}, count=room, block=block
            )
            for entry_id, fields in self._entries(reply):
                delivery = self._delivery(_text(entry_id), fields, 1)
                if delivery is not None:
                    out.append(delivery)
        return out

    @staticmethod
    def _entries(reply: Any) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
        found: list[tuple[bytes, dict[bytes, bytes] | None]] = []
        for _stream, entries in reply or []:
            found.extend((entry[0], entry[1]) for entry in entries)
        return found

    def _reclaim(self, max_messages: int) -> list[Delivery]:
        policy = self.bus.policy
        idle = int(policy.redeliver_after * 1000)
        client = self.bus.redis
        pending = client.xpending_range(
            self._key, self.group, min="-", max="+", count=max_messages, idle=idle
        )
        if not pending:
            return []
        counts = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        over = [i for i, n in counts.items() if n >= policy.max_deliveries]
        again = [i for i, n in counts.items() if n < policy.max_deliveries]
        if over:
            # Claim first: of consumers racing to bury one entry, only one gets it.
            for entry_id in client.xclaim(
                self._key, self.group, self.name, idle, over, justid=True
            ):
                receipt = _text(entry_id)
                self.bus.bury(self.topic, self.group, receipt, counts[receipt], "max deliveries")
        out: list[Delivery] = []
        if again:
            for entry_id, fields in client.xclaim(self._key, self.group, self.name, idle, again):
                receipt = _text(entry_id)
                delivery = self._delivery(receipt, fields, counts[receipt] + 1)
                if delivery is not None:
                    out.append(delivery)
        return out

    def _delivery(
        self, receipt: str, fields: Mapping[bytes, bytes] | None, attempt: int
    ) -> Delivery | None:
        if fields is None:  # trimmed away while pending
            self.bus.redis.xack(self._key, self.group, receipt)
            return None
        try:
            envelope = Envelope.from_json(fields[_FIELD])
        except (KeyError, InvalidMessageError) as error:
            self.bus.bury(self.topic, self.group, receipt, attempt, f"unreadable: {error}")
            return None
        return Delivery(envelope, self.topic, self.group, receipt, attempt)

    def ack(self, *deliveries: Delivery) -> None:
        if not deliveries:
            return
        by_group: dict[tuple[str, str], list[str]] = {}
        for delivery in deliveries:
            by_group.setdefault((delivery.topic, delivery.group), []).append(delivery.receipt)
        with _unavailable("ack"):
            pipe = self.bus.redis.pipeline(transaction=False)
            for (topic, group), receipts in by_group.items():
                pipe.xack(self.bus.stream_key(topic), group, *receipts)
            pipe.execute()

    def close(self) -> None:
        """Nothing of its own to let go of (the bus holds the client)."""


class RedisProcessedMessages:
    """:class:`~suuupra_commerce.messaging.ProcessedMessages` as Redis keys with a time to live.

    ``ttl`` is the deduplication window: a message redelivered after it is handled again.
    """

    def __init__(self, client: redis.Redis, *, namespace: str, ttl: float = 7 * 86_400) -> None:
        self.client: Any = client
        self.namespace = check_name(namespace, "namespace")
        if not 1 <= ttl <= 365 * 86_400:
            raise InvalidInputError("ttl must be between 1 second and a year")
        self.ttl = int(ttl)

    def _key(self, group: str, message_id: str) -> str:
        return f"{self.namespace}:processed:{check_name(group, 'group')}:{message_id}"

    def seen(self, group: str, message_id: str) -> bool:
        with _unavailable("dedupe lookup"):
            return bool(self.client.exists(self._key(group, message_id)))

    def remember(self, group: str, message_id: str) -> None:
        with _unavailable("dedupe record"):
            self.client.set(self._key(group, message_id), b"1", ex=self.ttl)


class RedisRelayPositions:
    """:class:`~suuupra_commerce.messaging.RelayPositions` in Redis; positions only go forward."""

    def __init__(self, client: redis.Redis, *, namespace: str) -> None:
        self.client: Any = client
        self.namespace = check_name(namespace, "namespace")

    def _key(self, relay: str) -> str:
        return f"{self.namespace}:relay:{check_name(relay, 'relay name')}"

    def position(self, relay: str) -> int:
        with _unavailable("relay position"):
            value = self.client.get(self._key(relay))
        return int(value) if value is not None else 0

    def save(self, relay: str, position: int) -> None:
        key = self._key(relay)
        with _unavailable("relay position"), self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    current = pipe.get(key)
                    if current is not None and int(current) >= position:
                        pipe.unwatch()
                        return
                    pipe.multi()
                    pipe.set(key, position)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

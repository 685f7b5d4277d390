"""PostgreSQL messaging: LISTEN/NOTIFY waiters, a table-backed bus, dedupe and relay positions.

The bus keeps messages in one table and, per consumer group, a cursor (the last
message id handed to the group) and the deliveries not yet acknowledged. A cursor
must never pass a message that commits later with a smaller id, so publishers of a
topic take turns: each publish takes a transaction-scoped advisory lock on its topic
before inserting, and the lock is let go only once its commit is visible; ids of one
topic therefore become visible in order. (Publishers of different topics do not wait
for each other; the relay, the usual publisher, publishes one batch at a time anyway.)
Overdue deliveries are taken over with ``SELECT ... FOR UPDATE SKIP LOCKED``, so
consumers of one group never block each other on them. Publishing notifies a
channel; a consumer that finds nothing waits on it (LISTEN) instead of polling.

Identifiers (schema, table prefix) are checked against a small alphabet and quoted
with ``psycopg.sql``; values always travel as parameters.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from suuupra_commerce.adapters.postgres_connection import connection_params
from suuupra_commerce.errors import (
    InvalidInputError,
    InvalidMessageError,
    MessagingUnavailableError,
)
from suuupra_commerce.messaging.envelope import DeadLetter, Delivery, Envelope, check_name
from suuupra_commerce.messaging.ports import DeliveryPolicy, check_batch, envelopes_of

__all__ = [
    "PostgresMessageBus",
    "PostgresNotificationWaiter",
    "PostgresProcessedMessages",
    "PostgresRelayPositions",
]

log = logging.getLogger("suuupra_commerce.adapters.postgres_messaging")

T = TypeVar("T")

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,40}")


def _identifier(value: str, what: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise InvalidInputError(f"invalid {what} {value!r}: use 1-41 of a-z 0-9 _")
    return value


class _Session:
    """One connection, reopened when it breaks; operations retried a few times."""

    def __init__(self, params: Mapping[str, Any], retries: int, on_connect: Callable[..., None]):
        self._params = dict(params)
        self._retries = retries
        self._on_connect = on_connect
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.RLock()

    def connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(**self._params)
            self._on_connect(self._conn)
        return self._conn

    def run(self, what: str, operation: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``operation`` on the connection; on a lost connection reconnect and run again.

        Only for operations that are safe to repeat (all of this module's are).
        """
        with self._lock:
            for attempt in range(self._retries + 1):
                try:
                    return operation(self.connection())
                except psycopg.OperationalError as error:
                    self.drop()
                    if attempt == self._retries:
                        msg = f"PostgreSQL unreachable ({what}): {error}"
                        raise MessagingUnavailableError(msg) from error
                    log.info("PostgreSQL %s failed (%s); reconnecting", what, error)
                    time.sleep(min(0.05 * 2**attempt, 1.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def drop(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    def close(self) -> None:
        self.drop()


class PostgresNotificationWaiter:
    """A :class:`~suuupra_commerce.messaging.LogWaiter` on PostgreSQL LISTEN/NOTIFY.

    Listens on ``channel`` from construction on, so a notification sent after it was
    built and before ``wait`` is called is not missed. eventsourcing's PostgreSQL
    recorder notifies the channel named like its events table (``inventory_events``:
    see :meth:`for_application`) in every transaction that records events.

    After a lost connection it reconnects and reports a wake-up: notifications may have
    been missed meanwhile, and a spurious wake-up only costs the reader one read.
    """

    def __init__(self, settings: Mapping[str, str], channel: str, *, retries: int = 3) -> None:
        self.channel = _identifier(channel, "channel")
        self._session = _Session(
            connection_params(settings, f"suuupra-commerce listen {channel}"),
            retries,
            self._listen,
        )
        self._session.run("listen", lambda conn: None)
        self._reconnected = False

    @classmethod
    def for_application(
        cls, settings: Mapping[str, str], application: Any
    ) -> PostgresNotificationWaiter:
        """A waiter on the channel an eventsourcing application's PostgreSQL recorder notifies."""
        channel = getattr(application.recorder, "channel_name", None)
        if not isinstance(channel, str):
            msg = f"{application.name} does not store its events in PostgreSQL"
            raise InvalidInputError(msg)
        return cls(settings, channel)

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        self._reconnected = True

    def wait(self, timeout: float) -> bool:
        def listen(conn: psycopg.Connection[Any]) -> bool:
            if self._reconnected:  # the connection was lost: what happened meanwhile is unknown
                return True
            woken = any(True for _ in conn.notifies(timeout=timeout, stop_after=1))
            if woken:
                for _ in conn.notifies(timeout=0):  # drain the rest: one wake-up is enough
                    pass
            return woken

        self._reconnected = False
        return self._session.run("wait for notifications", listen)

    def close(self) -> None:
        self._session.close()


def _tables(schema: str, prefix: str) -> dict[str, sql.Identifier]:
    return {
        name: sql.Identifier(schema, f"{prefix}_{name}")
        for name in ("messages", "groups", "pending", "dead", "processed", "relay_positions")
    }


class _Schema:
    """Where the tables are, and their creation (once, under an advisory lock)."""

    def __init__(self, settings: Mapping[str, str], prefix: str) -> None:
        self.schema = _identifier(settings.get("POSTGRES_SCHEMA") or "public", "schema")
        self.prefix = _identifier(prefix, "table prefix")
        self.t = _tables(self.schema, self.prefix)
        self.channel = f"{self.schema}_{self.prefix}"[:63]

    def create(self, conn: psycopg.Connection[Any], statements: list[sql.Composed]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.channel,))
            for statement in statements:
                conn.execute(statement)


class PostgresMessageBus:
    """A :class:`~suuupra_commerce.messaging.MessageBus` on PostgreSQL tables.

    Build it from eventsourcing's settings::

        bus = PostgresMessageBus({"POSTGRES_DBNAME": "shop", "POSTGRES_SCHEMA": "bus"})


    ``settings`` are eventsourcing's ``POSTGRES_*`` keys (``POSTGRES_SCHEMA`` picks the
    schema); ``prefix`` names the tables (``{prefix}_messages``, ``_groups``,
    ``_pending``, ``_dead``). Publishing is one transaction per call.

    Publishers of one topic are serialised (an advisory lock per topic, held to commit):
    batch messages into few ``publish`` calls for throughput.
    """

    def __init__(
        self,
        settings: Mapping[str, str],
        *,
        prefix: str = "commerce_bus",
        policy: DeliveryPolicy | None = None,
        retries: int = 3,
    ) -> None:
        self.settings = dict(settings)
        self.where = _Schema(settings, prefix)
        self.policy = policy or DeliveryPolicy()
        self.retries = retries
        self._consumers: list[PostgresConsumer] = []
        self._session = _Session(
            connection_params(settings, f"suuupra-commerce bus {prefix}"), retries, _nothing
        )
        t = self.where.t
        self._session.run(
            "create tables",
            lambda conn: self.where.create(
                conn,
                [
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} ("
                        " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                        " topic text NOT NULL, body text NOT NULL,"
                        " published_at timestamptz NOT NULL DEFAULT clock_timestamp())"
                    ).format(t["messages"]),
                    sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (topic, id)").format(
                        sql.Identifier(f"{self.where.prefix}_messages_topic"), t["messages"]
                    ),
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} ("
                        " topic text NOT NULL, grp text NOT NULL,"
                        " position bigint NOT NULL, PRIMARY KEY (topic, grp))"
                    ).format(t["groups"]),
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} ("
                        " topic text NOT NULL, grp text NOT NULL,"
                        " message bigint NOT NULL REFERENCES {} (id) ON DELETE CASCADE,"
                        " consumer text NOT NULL, deliveries int NOT NULL,"
                        " delivered_at timestamptz NOT NULL,"
                        " PRIMARY KEY (topic, grp, message))"
                    ).format(t["pending"], t["messages"]),
                    sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (message)").format(
                        sql.Identifier(f"{self.where.prefix}_pending_message"), t["pending"]
                    ),
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} ("
                        " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                        " topic text NOT NULL, grp text NOT NULL, receipt text NOT NULL,"
                        " attempts int NOT NULL, reason text NOT NULL, body text NOT NULL,"
                        " dead_at timestamptz NOT NULL DEFAULT clock_timestamp())"
                    ).format(t["dead"]),
                ],
            ),
        )

    @property
    def channel(self) -> str:
        """The channel publishers notify and idle consumers listen on."""
        return self.where.channel

    def publish(self, topic: str, *envelopes: Envelope) -> None:
        check_name(topic)
        bodies = [e.to_json() for e in envelopes_of(envelopes)]
        if bodies:
            self._session.run("publish", lambda conn: self._append(conn, topic, bodies))

    def publish_raw(self, topic: str, body: str) -> None:
        """Append a message as some other producer might: any text, even a broken one."""
        check_name(topic)
        self._session.run("publish", lambda conn: self._append(conn, topic, [body]))

    def _append(self, conn: psycopg.Connection[Any], topic: str, bodies: list[str]) -> None:
        t = self.where.t
        with conn.transaction(), conn.cursor() as cur:
            # Publishers of one topic take turns, so its ids become visible in order.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.channel}/{topic}",))
            cur.executemany(
                sql.SQL("INSERT INTO {} (topic, body) VALUES (%s, %s)").format(t["messages"]),
                [(topic, body) for body in bodies],
            )
            limit = self.policy.max_length
            if limit is not None:
                cur.execute(
                    sql.SQL(
                        "DELETE FROM {m} WHERE topic = %s AND id <= ("
                        " SELECT id FROM {m} WHERE topic = %s"
                        " ORDER BY id DESC OFFSET %s LIMIT 1)"
                    ).format(m=t["messages"]),
                    (topic, topic, limit),
                )
            cur.execute("SELECT pg_notify(%s, %s)", (self.channel, topic))

    def consumer(self, topic: str, group: str, name: str) -> PostgresConsumer:
        check_name(topic)
        check_name(group, "group")
        check_name(name, "consumer")
        self._session.run("create group", lambda conn: self.create_group(conn, topic, group))
        consumer = PostgresConsumer(self, topic, group, name)
        self._consumers.append(consumer)
        return consumer

    def create_group(self, conn: psycopg.Connection[Any], topic: str, group: str) -> None:
        """Create ``group`` at the oldest message ``topic`` still holds, unless it exists."""
        t = self.where.t
        conn.execute(
            sql.SQL(
                "INSERT INTO {g} (topic, grp, position)"
                " SELECT %s, %s, coalesce(min(id) - 1, (SELECT coalesce(max(id), 0) FROM {m}))"
                " FROM {m} WHERE topic = %s ON CONFLICT DO NOTHING"
            ).format(g=t["groups"], m=t["messages"]),
            (topic, group, topic),
        )

    def dead_letters(self, topic: str, limit: int = 100) -> list[DeadLetter]:
        check_name(topic)

        def read(conn: psycopg.Connection[Any]) -> list[DeadLetter]:
            rows = conn.execute(
                sql.SQL(
                    "SELECT topic, grp, receipt, attempts, reason, body, dead_at FROM {}"
                    " WHERE topic = %s ORDER BY id LIMIT %s"
                ).format(self.where.t["dead"]),
                (topic, limit),
            ).fetchall()
            return [DeadLetter(*row) for row in rows]

        return self._session.run("read dead letters", read)

    def length(self, topic: str) -> int:
        check_name(topic)
        row = self._session.run(
            "length",
            lambda conn: conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE topic = %s").format(
                    self.where.t["messages"]
                ),
                (topic,),
            ).fetchone(),
        )
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the bus's connection and those of the consumers it made."""
        for consumer in self._consumers:
            consumer.close()
        self._consumers.clear()
        self._session.close()


def _nothing(_: psycopg.Connection[Any]) -> None:
    return None


def _nap(conn: psycopg.Connection[Any], seconds: float) -> bool:
    """Wait up to ``seconds`` for a notification on the channels ``conn`` listens on."""
    return any(True for _ in conn.notifies(timeout=seconds, stop_after=1))


class PostgresConsumer:
    """One member of a consumer group of a :class:`PostgresMessageBus` topic.

    Holds a connection of its own, which also LISTENs for new messages.
    """

    def __init__(self, bus: PostgresMessageBus, topic: str, group: str, name: str) -> None:
        self.bus = bus
        self.topic = topic
        self.group = group
        self.name = name
        self._session = _Session(
            connection_params(bus.settings, f"suuupra-commerce consumer {group}/{name}"),
            bus.retries,
            self._listen,
        )

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.bus.channel)))

    def receive(self, max_messages: int = 10, wait: float = 0.0) -> list[Delivery]:
        check_batch(max_messages, wait)
        deadline = time.monotonic() + wait
        while True:
            out = self._session.run("receive", lambda conn: self._claim(conn, max_messages))
            remaining = deadline - time.monotonic()
            if out or remaining <= 0:
                return out
            # Woken by a publish (or after a short nap, in case a notification was lost
            # with a connection), then look again.
            self._session.run("wait", functools.partial(_nap, seconds=min(remaining, 0.5)))

    def _claim(self, conn: psycopg.Connection[Any], limit: int) -> list[Delivery]:
        t = self.bus.where.t
        policy = self.bus.policy
        out: list[Delivery] = []
        with conn.transaction(), conn.cursor() as cur:
            overdue = cur.execute(
                sql.SQL(
                    "SELECT p.message, p.deliveries, m.body"
                    " FROM {p} p JOIN {m} m ON m.id = p.message WHERE p.topic = %s AND p.grp = %s"
                    " AND p.delivered_at <= clock_timestamp() - make_interval(secs => %s)"
                    " ORDER BY p.message LIMIT %s FOR UPDATE OF p SKIP LOCKED"
                ).format(p=t["pending"], m=t["messages"]),
                (self.topic, self.group, policy.redeliver_after, limit),
            ).fetchall()
            for message, deliveries, body in overdue:
                if deliveries >= policy.max_deliveries:
                    self._bury(cur, message, deliveries, body, "max deliveries")
                    continue
                cur.execute(
                    sql.SQL(
                        "UPDATE {} SET consumer = %s, deliveries = deliveries + 1,"
                        " delivered_at = clock_timestamp()"
                        " WHERE topic = %s AND grp = %s AND message = %s"
                    ).format(t["pending"]),
                    (self.name, self.topic, self.group, message),
                )
                delivery = self._delivery(cur, message, body, deliveries + 1)
                if delivery is not None:
                    out.append(delivery)
            room = limit - len(out)
            if room <= 0:
                return out
            # The group's cursor, locked: members of the group take new messages in turn.
            cursor = cur.execute(
                sql.SQL("SELECT position FROM {} WHERE topic = %s AND grp = %s FOR UPDATE").format(
                    t["groups"]
                ),
                (self.topic, self.group),
            ).fetchone()
            if cursor is None:  # the group row went missing (dropped by hand): start it again
                self.bus.create_group(conn, self.topic, self.group)
                return out
            fresh = cur.execute(
                sql.SQL(
                    "SELECT id, body FROM {} WHERE topic = %s AND id > %s ORDER BY id LIMIT %s"
                ).format(t["messages"]),
                (self.topic, cursor[0], room),
            ).fetchall()
            if not fresh:
                return out
            cur.executemany(
                sql.SQL(
                    "INSERT INTO {} (topic, grp, message, consumer, deliveries, delivered_at)"
                    " VALUES (%s, %s, %s, %s, 1, clock_timestamp())"
                ).format(t["pending"]),
                [(self.topic, self.group, row[0], self.name) for row in fresh],
            )
            cur.execute(
                sql.SQL("UPDATE {} SET position = %s WHERE topic = %s AND grp = %s").format(
                    t["groups"]
                ),
                (fresh[-1][0], self.topic, self.group),
            )
            for message, body in fresh:
                delivery = self._delivery(cur, message, body, 1)
                if delivery is not None:
                    out.append(delivery)
        return out

    def _delivery(
        self, cur: psycopg.Cursor[Any], message: int, body: str, attempt: int
    ) -> Delivery | None:
        try:
            envelope = Envelope.from_json(body)
        except InvalidMessageError as error:
            self._bury(cur, message, attempt, body, f"unreadable: {error}")
            return None
        return Delivery(envelope, self.topic, self.group, str(message), attempt)

    def _bury(
        self, cur: psycopg.Cursor[Any], message: int, attempts: int, body: str, reason: str
    ) -> None:
        t = self.bus.where.t
        cur.execute(
            sql.SQL(
                "INSERT INTO {} (topic, grp, receipt, attempts, reason, body)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
            ).format(t["dead"]),
            (self.topic, self.group, str(message), attempts, reason, body),
        )
        cur.execute(
            sql.SQL("DELETE FROM {} WHERE topic = %s AND grp = %s AND message = %s").format(
                t["pending"]
            ),
            (self.topic, self.group, message),
        )
        limit = self.bus.policy.max_length
        if limit is not None:
            cur.execute(
                sql.SQL(
                    "DELETE FROM {d} WHERE topic = %s AND id <= ("
                    " SELECT id FROM {d} WHERE topic = %s ORDER BY id DESC OFFSET %s LIMIT 1)"
                ).format(d=t["dead"]),
                (self.topic, self.topic, limit),
            )

    def ack(self, *deliveries: Delivery) -> None:
        if not deliveries:
            return
        t = self.bus.where.t
        rows = [(d.topic, d.group, int(d.receipt)) for d in deliveries]

        def delete(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    sql.SQL("DELETE FROM {} WHERE topic = %s AND grp = %s AND message = %s").format(
                        t["pending"]
                    ),
                    rows,
                )

        self._session.run("ack", delete)

    def close(self) -> None:
        self._session.close()


class PostgresProcessedMessages:
    """:class:`~suuupra_commerce.messaging.ProcessedMessages` in a table (``{prefix}_processed``).

    A host whose handler writes to the same database can record the id in its own
    transaction instead: ``INSERT INTO {prefix}_processed (grp, message_id) VALUES (...)
    ON CONFLICT DO NOTHING``, then nothing is ever handled twice.
    """

    def __init__(
        self, settings: Mapping[str, str], *, prefix: str = "commerce_bus", retries: int = 3
    ) -> None:
        self.where = _Schema(settings, prefix)
        self._session = _Session(
            connection_params(settings, f"suuupra-commerce dedupe {prefix}"), retries, _nothing
        )
        self._session.run(
            "create tables",
            lambda conn: self.where.create(
                conn,
                [
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} ("
                        " grp text NOT NULL, message_id text NOT NULL,"
                        " processed_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
                        " PRIMARY KEY (grp, message_id))"
                    ).format(self.where.t["processed"])
                ],
            ),
        )

    def seen(self, group: str, message_id: str) -> bool:
        query = sql.SQL("SELECT 1 FROM {} WHERE grp = %s AND message_id = %s").format(
            self.where.t["processed"]
        )
        row = self._session.run(
            "dedupe lookup", lambda conn: conn.execute(query, (group, message_id)).fetchone()
        )
        return row is not None

    def remember(self, group: str, message_id: str) -> None:
        query = sql.SQL(
            "INSERT INTO {} (grp, message_id) VALUES (%s, %s) ON CONFLICT DO NOTHING"
        ).format(self.where.t["processed"])
        self._session.run("dedupe record", lambda conn: conn.execute(query, (group, message_id)))

    def close(self) -> None:
        self._session.close()


class PostgresRelayPositions:
    """:class:`~suuupra_commerce.messaging.RelayPositions` in a table; positions only go forward."""

    def __init__(
        self, settings: Mapping[str, str], *, prefix: str = "commerce_bus", retries: int = 3
    ) -> None:
        self.where = _Schema(settings, prefix)
        self._session = _Session(
            connection_params(settings, f"suuupra-commerce relay {prefix}"), retries, _nothing
        )
        self._session.run(
            "create tables",
            lambda conn: self.where.create(
                conn,
                [
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} ("
                        " relay text PRIMARY KEY, position bigint NOT NULL)"
                    ).format(self.where.t["relay_positions"])
                ],
            ),
        )

    def position(self, relay: str) -> int:
        query = sql.SQL("SELECT position FROM {} WHERE relay = %s").format(
            self.where.t["relay_positions"]
        )
        row = self._session.run(
            "relay position", lambda conn: conn.execute(query, (relay,)).fetchone()
        )
        return int(row[0]) if row else 0

    def save(self, relay: str, position: int) -> None:
        query = sql.SQL(
            "INSERT INTO {t} (relay, position) VALUES (%s, %s) ON CONFLICT (relay)"
            " DO UPDATE SET position = GREATEST({t}.position, EXCLUDED.position)"
        ).format(t=self.where.t["relay_positions"])
        self._session.run("relay position", lambda conn: conn.execute(query, (relay, position)))

    def close(self) -> None:
        self._session.close()

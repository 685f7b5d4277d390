"""PostgreSQL persistence: eventsourcing's recorders, with each save one statement.

``COMMERCE_PERSISTENCE=postgres`` selects this module
(``PERSISTENCE_MODULE=suuupra_commerce.adapters.postgres``); every ``POSTGRES_*`` setting
means what it means to eventsourcing, and the tables are eventsourcing's, unchanged.

eventsourcing records a save as a pipelined transaction: ``BEGIN``, ``SET LOCAL
lock_timeout``, ``LOCK TABLE ... IN EXCLUSIVE MODE`` (so that notification ids commit in
the order they were issued, and a reader tailing the log never passes a gap that is
filled later), ``NOTIFY``, the ``INSERT``, ``COMMIT``. The statements cost little on the
server, but each costs the client a trip through the driver, about as much Python work as
deciding the command. Here a PL/pgSQL function made beside each events table does the
same steps, in the same order, under the same lock, and a save is one call of it in
autocommit: one statement, its own transaction. A processor's save carries a tracking record
(how far it has processed its upstream log); a second function, beside the processors'
tables, records the tracking record and the events in one call, refusing the save whole
where eventsourcing refuses it. With legacy multi-row tracking such saves are recorded as
eventsourcing records them. Every path takes the same table lock.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any, LiteralString

import psycopg
from eventsourcing import postgres as es_postgres
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
    Tracking,
)
from eventsourcing.utils import retry
from psycopg.sql import SQL, Composable, Composed, Identifier, Literal

__all__ = [
    "CommercePostgresApplicationRecorder",
    "CommercePostgresFactory",
    "CommercePostgresProcessRecorder",
]


class CommercePostgresApplicationRecorder(es_postgres.PostgresApplicationRecorder):
    """eventsourcing's application recorder; a save without tracking is one function call."""

    def __init__(self, datastore: es_postgres.PostgresDatastore, **kwargs: Any) -> None:
        if datastore.enable_db_functions:
            # eventsourcing's function path drops tracking records (exactly-once processing)
            # and takes no table lock (a tailing reader can pass events committed late).
            msg = (
                "POSTGRES_ENABLE_DB_FUNCTIONS is not supported: it drops tracking records "
                "and lets readers of the notification log skip events; unset it"
            )
            raise ProgrammingError(msg)
        super().__init__(datastore, **kwargs)
        self.insert_function_name = f"{self.events_table_name}_insert"
        #: The statement a save runs: the function called with the events' four columns as arrays.
        self.insert_call = self._create_insert_function(self.insert_function_name)

    def _create_insert_function(
        self, name: str, parameters: LiteralString = "", before_insert: Composable | None = None
    ) -> Composed:
        """Have :meth:`create_table` create the function ``name``; return the call of it.

        The function takes ``parameters`` (a leading ``"name type, "`` list, for
        ``before_insert`` to use) and then the events' four columns as arrays. It sets the
        lock timeout, runs ``before_insert``, and if there are events: takes the table
        lock, notifies the channel and inserts them, returning their notification ids.
        """
        self.check_identifier_length(name)
        schema = Identifier(self.datastore.schema)
        function = Identifier(name)
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}({parameters}"
                "ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
                "BEGIN "
                "SET LOCAL lock_timeout = {lock_timeout}; "
                "{before_insert}"
                "IF cardinality(ids) > 0 THEN "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ids, versions, topics, states) "
                "RETURNING notification_id; "
                "END IF; "
                "END; $BODY$"
            ).format(
                schema=schema,
                function=function,
                parameters=SQL(parameters),
                id_type=SQL(self.datastore.originator_id_type),
                lock_timeout=Literal(f"{self.datastore.lock_timeout}s"),
                before_insert=before_insert or SQL(""),
                table=Identifier(self.events_table_name),
                channel=Identifier(self.channel_name),
            )
        )
        placeholders = SQL(", ").join([SQL("%s")] * (parameters.count(",") + 4))
        return SQL("SELECT notification_id FROM {0}.{1}({2}) AS inserted(notification_id)").format(
            schema, function, placeholders
        )

    #: How many times :meth:`create_table` is tried when processes start together.
    create_attempts = 10

    def create_table(self) -> None:
        """Create the tables, types and functions if missing; a lost race is tried again.

        Processes that start together on a new schema create the same objects at once, and
        PostgreSQL refuses all but one of two concurrent ``CREATE TYPE``, ``CREATE ... IF NOT
        EXISTS`` or ``CREATE OR REPLACE FUNCTION`` (a unique violation, "tuple concurrently
        updated", "already exists"). Every statement is safe to run again, so the loser
        runs them again.
        """
        attempt = 1
        while True:
            try:
                super().create_table()
            except (IntegrityError, InternalError, ProgrammingError) as error:
                if not _lost_creation_race(error) or attempt >= self.create_attempts:
                    raise
                time.sleep(random.uniform(0, 0.02 * attempt))  # noqa: S311 - jitter
                attempt += 1
            else:
                return

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids: Sequence[int] | None
        if not stored_events or any(value is not None for value in kwargs.values()):
            ids = super().insert_events(stored_events, **kwargs)
        else:
            ids = self._insert_by_function(stored_events, self.insert_call)
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_by_function(
        self,
        stored_events: Sequence[StoredEvent],
        call: Composed,
        leading: Sequence[object] = (),
    ) -> Sequence[int]:
        """Call the insert function (``call``, with ``leading`` arguments first) once.

        Retried on a lost connection exactly as eventsourcing retries its own insert.
        """
        params = (
            *leading,
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(call, params, prepare=True)
            ids = [row["notification_id"] for row in cursor.fetchall()]
        if len(ids) != len(stored_events):  # pragma: no cover - the insert is all or nothing
            msg = f"recorded {len(ids)} of {len(stored_events)} events"
            raise ProgrammingError(msg)
        return ids


#: What PostgreSQL answers the loser of two concurrent creations of one object, beside a
#: unique violation: "already exists" (a table, a type), "tuple concurrently updated".
_CREATION_RACE_STATES = frozenset({"42P07", "42710", "XX000"})


def _lost_creation_race(error: BaseException) -> bool:
    if isinstance(error, IntegrityError):
        # A unique violation in the catalog, or eventsourcing's tracking table finding its
        # first row recorded by another process: both settle on the next attempt.
        return True
    cause = error.__cause__
    return isinstance(cause, psycopg.Error) and cause.sqlstate in _CREATION_RACE_STATES


class CommercePostgresProcessRecorder(
    CommercePostgresApplicationRecorder, es_postgres.PostgresProcessRecorder
):
    """eventsourcing's process recorder; a save, with its tracking record or without, is one call.

    A processor's save records the position it processed up to (its tracking record) with
    the events it led to. With eventsourcing's single-row tracking (the default), a second
    function records both: it moves the tracking row forward, refusing the save whole if the
    row is already there or further on (as eventsourcing refuses it, with an
    ``IntegrityError``), then inserts the events as the first function does. With legacy
    multi-row tracking, tracked saves are recorded as eventsourcing records them.
    """

    def __init__(self, datastore: es_postgres.PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.insert_tracked_function_name = f"{self.events_table_name}_insert_tracked"
        tracking = SQL(
            "INSERT INTO {schema}.{tracking} AS t VALUES (tracked_name, tracked_id) "
            "ON CONFLICT (application_name) DO UPDATE SET notification_id = tracked_id "
            "WHERE t.notification_id < tracked_id; "
            "IF NOT FOUND THEN RAISE EXCEPTION USING ERRCODE = 'unique_violation', "
            "MESSAGE = format('Failed to record tracking for %s %s', tracked_name, tracked_id); "
            "END IF; "
        ).format(
            schema=Identifier(self.datastore.schema),
            tracking=Identifier(self.tracking_table_name),
        )
        #: The statement a tracked save runs (single-row tracking).
        self.insert_tracked_call = self._create_insert_function(
            self.insert_tracked_function_name, "tracked_name text, tracked_id bigint, ", tracking
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        tracking = kwargs.get("tracking")
        others = any(value is not None for name, value in kwargs.items() if name != "tracking")
        if not isinstance(tracking, Tracking) or others or not self.datastore.single_row_tracking:
            return super().insert_events(stored_events, **kwargs)
        ids: Sequence[int] = self._insert_by_function(
            stored_events,
            self.insert_tracked_call,
            (tracking.application_name, tracking.notification_id),
        )
        return ids


class CommercePostgresFactory(es_postgres.PostgresFactory):
    """eventsourcing's PostgreSQL factory, making the recorders above."""

    application_recorder_class = CommercePostgresApplicationRecorder
    process_recorder_class = CommercePostgresProcessRecorder

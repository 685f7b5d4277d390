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
autocommit: one statement, its own transaction. Saves that carry a tracking record (a
processor's, which group their own messages) are recorded as eventsourcing records them:
both take the same table lock, so the two kinds exclude each other as before.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing import postgres as es_postgres
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier, Literal

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
        self.check_identifier_length(self.insert_function_name)
        schema = Identifier(self.datastore.schema)
        function = Identifier(self.insert_function_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}("
                "ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
                "BEGIN "
                "SET LOCAL lock_timeout = {lock_timeout}; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ids, versions, topics, states) "
                "RETURNING notification_id; "
                "END; $BODY$"
            ).format(
                schema=schema,
                function=function,
                id_type=SQL(self.datastore.originator_id_type),
                lock_timeout=Literal(f"{self.datastore.lock_timeout}s"),
                table=Identifier(self.events_table_name),
                channel=Identifier(self.channel_name),
            )
        )
        #: The statement a save runs: the function called with the events' four columns as arrays.
        self.insert_call = SQL("SELECT * FROM {0}.{1}(%s, %s, %s, %s)").format(schema, function)

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
            ids = self._insert_by_function(stored_events)
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_by_function(self, stored_events: Sequence[StoredEvent]) -> Sequence[int]:
        # Retried on a lost connection exactly as eventsourcing retries its own insert.
        params = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(self.insert_call, params, prepare=True)
            ids = [row[self.insert_function_name] for row in cursor.fetchall()]
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
    """eventsourcing's process recorder; a save without tracking is one function call."""


class CommercePostgresFactory(es_postgres.PostgresFactory):
    """eventsourcing's PostgreSQL factory, making the recorders above."""

    application_recorder_class = CommercePostgresApplicationRecorder
    process_recorder_class = CommercePostgresProcessRecorder

"""Reading many aggregates' new events from PostgreSQL in one round trip.

The saga processors read, for each message of a section they pulled, the saga (or the
command's exchange) it concerns. eventsourcing reads one aggregate per query; this reads
the events of every aggregate a section concerns after the version each is known at,
with one query on the primary key ``(originator_id, originator_version)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from suuupra_commerce.application import read_one_by_one

__all__ = ["read_postgres_events_after"]

_QUERY = SQL(
    "SELECT e.originator_id, e.originator_version, e.topic, e.state"
    " FROM {schema}.{table} AS e"
    " JOIN unnest(%s::uuid[], %s::bigint[]) AS w(id, after)"
    " ON e.originator_id = w.id AND e.originator_version > w.after"
    " ORDER BY e.originator_id, e.originator_version"
)


def read_postgres_events_after(
    recorder: ApplicationRecorder, after: Mapping[UUID, int]
) -> dict[UUID, Sequence[StoredEvent]]:
    """The stored events of each aggregate in ``after`` with versions above its value.

    One query for all of them on eventsourcing's PostgreSQL recorders; any other
    recorder is read one aggregate at a time.
    """
    if not isinstance(recorder, PostgresApplicationRecorder):
        return read_one_by_one(recorder, after)
    if not after:
        return {}
    ids = list(after)
    query = _QUERY.format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    found: dict[UUID, list[StoredEvent]] = {}
    with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(query, (ids, [after[i] for i in ids]), prepare=True)
        for row in cursor.fetchall():
            found.setdefault(row["originator_id"], []).append(
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
            )
    return dict(found)

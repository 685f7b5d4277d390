"""Reading many aggregates' new events in one PostgreSQL query answers as reading each alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from suuupra_commerce.adapters.postgres_reads import read_postgres_events_after
from suuupra_commerce.application import read_one_by_one

pytestmark = pytest.mark.postgres


class Counter(Aggregate):
    def __init__(self) -> None:
        self.count = 0

    @event("Counted")
    def add(self, by: int) -> None:
        self.count += by


@pytest.fixture
def app(postgres_schema: dict[str, str]) -> Iterator[Application[UUID]]:
    built = Application[UUID]({"PERSISTENCE_MODULE": "eventsourcing.postgres", **postgres_schema})
    yield built
    built.close()


def _plain(found: Any) -> dict[UUID, list[tuple[int, str, bytes]]]:
    return {
        i: [(e.originator_version, e.topic, e.state) for e in events]
        for i, events in found.items()
        if events
    }


def test_one_query_reads_what_reading_each_alone_reads(app: Application[UUID]) -> None:
    counters = []
    for n in range(6):
        counter = Counter()
        for by in range(n):
            counter.add(by)
        app.save(counter)
        counters.append(counter.id)
    unknown = uuid4()
    after = {
        counters[0]: 0,  # only its creation
        counters[3]: 2,  # two of its four events
        counters[4]: 5,  # all of them: nothing newer
        counters[5]: 0,
        unknown: 0,
    }
    together = read_postgres_events_after(app.recorder, after)
    assert _plain(together) == _plain(read_one_by_one(app.recorder, after))
    assert [e.originator_version for e in together[counters[3]]] == [3, 4]
    assert counters[4] not in together
    assert unknown not in together
    assert read_postgres_events_after(app.recorder, {}) == {}


def test_the_events_read_decode_to_the_aggregate(app: Application[UUID]) -> None:
    counter = Counter()
    counter.add(5)
    counter.add(7)
    app.save(counter)
    stored = read_postgres_events_after(app.recorder, {counter.id: 0})[counter.id]
    rebuilt = None
    for domain_event in map(app.mapper.to_domain_event, stored):
        assert isinstance(domain_event, Aggregate.Event)
        rebuilt = domain_event.mutate(rebuilt)
    assert isinstance(rebuilt, Counter)
    assert (rebuilt.count, rebuilt.version) == (12, 3)

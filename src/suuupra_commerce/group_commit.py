"""Group commit: concurrent commands of one process recorded in one transaction.

Each command saves its events in a transaction of its own, and on a durable store a
transaction costs a round trip, a table lock and a flush to disk whatever it holds. When
several threads save on one application at once, the first to arrive records everyone's
events that are waiting in one ``insert_events`` call, while the others wait for its
answer; whoever arrives meanwhile is recorded by the next call. Nobody waits on purpose:
a group is whatever queued up while the previous call was in flight, so a single writer
records alone, as without grouping.

A group is atomic like any save. If one of its saves loses an optimistic-concurrency race
(another writer recorded that aggregate version first), or has data the store refuses, the
store refuses the whole call and writes nothing; each save of the group is then recorded
alone, so the loser, and only it, gets its ``RecordConflictError`` (or its error). A store
out of reach (``OperationalError``, ``InterfaceError``, after the recorder's own retries) is
every member's failure: a save whose group failed so may or may not have been recorded,
exactly as if it had failed alone.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    EventStore,
    InterfaceError,
    Mapper,
    OperationalError,
    StoredEvent,
)

__all__ = ["GroupCommit", "GroupCommitEventStore"]


class _Save:
    """One save waiting in a group: its stored events, then its answer."""

    __slots__ = ("done", "error", "events", "ids")

    def __init__(self, events: Sequence[StoredEvent]) -> None:
        self.events = events
        self.done = False
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None

    def answer(self) -> Sequence[int] | None:
        if self.error is not None:
            raise self.error
        return self.ids


class GroupCommit(AggregateRecorder):
    """Records the stored events of concurrent saves on one recorder, a group per call.

    A recorder in front of ``recorder``: :meth:`insert_events` answers as the recorder's own
    does (the notification ids of the events, in order) and raises what it would have raised
    for these events alone; reads go straight to ``recorder``. An insert that records a
    tracking position (a processed notification) or passes other keywords is recorded
    alone, as before: those are one processor's transactions, which group their own
    messages already. So is an insert of no events.
    """

    def __init__(self, recorder: AggregateRecorder) -> None:
        self.recorder = recorder
        self._turn = threading.Condition()
        self._waiting: list[_Save] = []
        self._recording = False
        #: How many ``insert_events`` calls recorded a group of more than one save, and how
        #: many saves those groups held (for benchmarks and tests).
        self.groups = 0
        self.grouped_saves = 0

    @property
    def waiting(self) -> int:
        """How many saves wait for the call in flight to end (their group is next)."""
        with self._turn:
            return sum(not save.done for save in self._waiting)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Record ``stored_events`` atomically, with whatever other saves are waiting."""
        if any(value is not None for value in kwargs.values()) or not stored_events:
            return self.recorder.insert_events(stored_events, **kwargs)
        save = _Save(stored_events)
        with self._turn:
            self._waiting.append(save)
            while self._recording and not save.done:
                self._turn.wait()
            if save.done:
                return save.answer()
            # Nobody is recording: this thread records everything waiting, its own save too.
            group, self._waiting = self._waiting, []
            self._recording = True
        try:
            self._record(group)
        finally:
            with self._turn:
                self._recording = False
                for member in group:
                    member.done = True
                self._turn.notify_all()
        return save.answer()

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        return self.recorder.select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)

    def _record(self, group: list[_Save]) -> None:
        if len(group) == 1:
            self._record_alone(group[0])
            return
        try:
            ids = self.recorder.insert_events([e for save in group for e in save.events])
        except (OperationalError, InterfaceError) as error:
            # The store is out of reach (the recorder has retried already): every member's.
            for save in group:
                save.error = error
            return
        except Exception:  # noqa: BLE001 - the store refused the call and wrote nothing
            # A save lost a race, or one save's data was refused: each is recorded alone
            # and meets its own outcome.
            for save in group:
                self._record_alone(save)
            return
        except BaseException as error:  # noqa: BLE001 - an interrupt: every member's
            for save in group:
                save.error = error
            return
        self.groups += 1
        self.grouped_saves += len(group)
        start = 0
        for save in group:
            end = start + len(save.events)
            save.ids = None if ids is None else ids[start:end]
            start = end

    def _record_alone(self, save: _Save) -> None:
        try:
            save.ids = self.recorder.insert_events(save.events)
        except BaseException as error:  # noqa: BLE001 - the saving thread raises it
            save.error = error


class GroupCommitEventStore(EventStore[UUID]):
    """An application's event store whose saves are recorded in groups (:class:`GroupCommit`)."""

    def __init__(self, mapper: Mapper[UUID], recorder: AggregateRecorder) -> None:
        self.group_commit = GroupCommit(recorder)
        super().__init__(mapper=mapper, recorder=self.group_commit)

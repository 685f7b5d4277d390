"""Saga views: one saga with its timeline, saga lists, due timers and statistics.

The list, the timer index and the statistics are a read model folded from the saga
events; one saga in full is read from its own events, so its timeline is its audit
trail, event by event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from suuupra_commerce.application import ReadModel
from suuupra_commerce.sagas.domain import Phase, Saga, SagaStatus, StepKey, timer_token

__all__ = [
    "SagaReadModel",
    "SagaStatistics",
    "SagaSummary",
    "SagaView",
    "TimelineEntry",
    "timeline_of",
]


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One event in a saga's life, in words."""

    at: datetime
    version: int
    event: str
    step: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class SagaSummary:
    """A saga as lists show it."""

    saga_id: UUID
    definition: str
    version: int
    subject: str
    status: SagaStatus
    step: str
    phase: Phase
    attempt: int
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class SagaView:
    """One saga in full: where it is, what it knows, and its timeline."""

    saga_id: UUID
    definition: str
    version: int
    subject: str
    correlation_id: str
    status: SagaStatus
    step: str
    phase: Phase
    attempt: int
    waiting_for: str | None
    timer_due: datetime | None
    data: Mapping[str, Any]
    results: Mapping[str, Mapping[str, Any]]
    compensated: tuple[str, ...]
    pending_compensation: tuple[str, ...]
    last_error: str
    stuck_reason: str
    started_at: datetime
    updated_at: datetime
    timeline: tuple[TimelineEntry, ...]

    @classmethod
    def of(cls, saga: Saga, events: Iterable[DomainEventProtocol[UUID]]) -> SagaView:
        return cls(
            saga_id=saga.id,
            definition=saga.definition,
            version=saga.definition_version,
            subject=saga.subject,
            correlation_id=saga.correlation_id,
            status=saga.status,
            step=saga.step,
            phase=saga.phase,
            attempt=saga.attempt,
            waiting_for=saga.outstanding,
            timer_due=None if saga.timer is None else saga.timer.due,
            data=MappingProxyType(dict(saga.data)),
            results=MappingProxyType({k: MappingProxyType(v) for k, v in saga.results.items()}),
            compensated=tuple(saga.compensated),
            pending_compensation=tuple(saga.pending_compensation),
            last_error=saga.last_error,
            stuck_reason=saga.stuck_reason,
            started_at=saga.created_on,
            updated_at=saga.modified_on,
            timeline=timeline_of(events),
        )

    def format_timeline(self) -> str:
        """The timeline as text, one line per event."""
        lines = [f"saga {self.saga_id} ({self.definition} v{self.version}) for {self.subject}"]
        lines.extend(
            f"  {e.version:>3} {e.at:%H:%M:%S.%f} {e.event:<22} {e.detail}" for e in self.timeline
        )
        lines.append(f"  -> {self.status.value.upper()}")
        return "\n".join(lines)


def _short(key: str) -> str:
    """A step key without its saga id (the timeline names the saga once)."""
    return key.split("/", 1)[1]


def _describe(event: Any) -> tuple[str | None, str]:
    """The step an event is about and a line saying what happened."""
    if isinstance(event, Saga.Started):
        return None, f"started {event.definition} v{event.definition_version} for {event.subject}"
    if isinstance(event, Saga.StepDispatched):
        return event.step, (
            f"sent {event.action} as {_short(event.key)} (delivery {event.delivery}), "
            f"reply due by {event.deadline:%H:%M:%S}"
        )
    if isinstance(event, Saga.CompensationDispatched):
        return event.step, (
            f"sent {event.action} to undo {event.step} as {_short(event.key)} "
            f"(delivery {event.delivery}), reply due by {event.deadline:%H:%M:%S}"
        )
    if isinstance(event, Saga.ReplyReceived):
        reply = event.reply
        outcome = "succeeded" if reply["succeeded"] else f"failed: {reply['error']}"
        step = reply["key"].split("/")[1]
        return step, f"{event.disposition} reply to {_short(reply['key'])}: {outcome}"
    if isinstance(event, Saga.StepFailed):
        then = "no retry left" if event.retry_at is None else f"retry at {event.retry_at:%H:%M:%S}"
        return event.step, f"attempt {event.attempt} failed ({event.error}); {then}"
    if isinstance(event, Saga.StepTimedOut):
        return event.step, f"no reply to {_short(event.key)} in time: outcome unknown"
    if isinstance(event, Saga.CompensationStarted):
        steps = ", ".join(event.steps) or "nothing to undo"
        return None, f"compensating ({steps}): {event.reason}"
    if isinstance(event, Saga.Stuck):
        return None, f"stuck: {event.reason}"
    if isinstance(event, Saga.OperatorActed):
        return event.step, f"{event.action} by {event.by}: {event.reason}"
    if isinstance(event, Saga.Completed):
        return None, "completed"
    if isinstance(event, Saga.Compensated):
        return None, "compensated"
    return None, type(event).__name__


def timeline_of(events: Iterable[DomainEventProtocol[UUID]]) -> tuple[TimelineEntry, ...]:
    """A saga's events as timeline entries, oldest first."""
    entries = []
    for e in events:
        step, detail = _describe(e)
        entries.append(
            TimelineEntry(
                at=getattr(e, "timestamp"),  # noqa: B009 - not on the Protocol
                version=e.originator_version,
                event=type(e).__name__,
                step=step,
                detail=detail,
            )
        )
    return tuple(entries)


@dataclass(frozen=True, slots=True)
class SagaStatistics:
    """Counts over every saga: by status, by definition, and how often things went wrong."""

    total: int
    by_status: Mapping[SagaStatus, int]
    by_definition: Mapping[str, Mapping[SagaStatus, int]]
    retries: int
    timeouts: int
    compensations: int
    operator_actions: int


@dataclass(slots=True)
class _Row:
    saga_id: UUID
    definition: str
    version: int
    subject: str
    steps: list[str]
    status: SagaStatus
    step: str
    phase: Phase
    attempt: int
    delivery: int
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None = None
    timer: tuple[str, datetime] | None = None

    def summary(self) -> SagaSummary:
        return SagaSummary(
            saga_id=self.saga_id,
            definition=self.definition,
            version=self.version,
            subject=self.subject,
            status=self.status,
            step=self.step,
            phase=self.phase,
            attempt=self.attempt,
            started_at=self.started_at,
            updated_at=self.updated_at,
            ended_at=self.ended_at,
        )


class SagaReadModel(ReadModel):
    """Every saga's summary, the index of running timers, and the statistics."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[UUID, _Row] = {}
        self._timers: dict[UUID, tuple[str, datetime]] = {}  # only sagas with a running timer
        self._by_subject: dict[str, list[UUID]] = {}
        self.retries = 0
        self.timeouts = 0
        self.compensations = 0
        self.operator_actions = 0
        self._handlers: dict[type[Any], Callable[[_Row, Any], None]] = {
            Saga.StepDispatched: self._dispatched(Phase.FORWARD),
            Saga.CompensationDispatched: self._dispatched(Phase.COMPENSATION),
            Saga.ReplyReceived: self._replied,
            Saga.StepFailed: self._failed,
            Saga.StepTimedOut: self._timed_out,
            Saga.CompensationStarted: self._compensating,
            Saga.Completed: self._ended(SagaStatus.COMPLETED),
            Saga.Compensated: self._ended(SagaStatus.COMPENSATED),
            Saga.Stuck: self._ended(SagaStatus.STUCK),
            Saga.OperatorActed: self._operator_acted,
        }

    def apply(self, event: DomainEventProtocol[UUID]) -> None:
        timestamp: datetime = getattr(event, "timestamp")  # noqa: B009 - not on the Protocol
        if isinstance(event, Saga.Started):
            row = _Row(
                saga_id=event.originator_id,
                definition=event.definition,
                version=event.definition_version,
                subject=event.subject,
                steps=list(event.steps),
                status=SagaStatus.RUNNING,
                step=event.steps[0],
                phase=Phase.FORWARD,
                attempt=0,
                delivery=0,
                started_at=timestamp,
                updated_at=timestamp,
            )
            self._rows[row.saga_id] = row
            self._by_subject.setdefault(row.subject, []).append(row.saga_id)
            return
        row = self._rows[event.originator_id]
        row.updated_at = timestamp
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(row, event)
        if row.timer is None:
            self._timers.pop(row.saga_id, None)
        else:
            self._timers[row.saga_id] = row.timer

    # --- queries ------------------------------------------------------------------------------

    def listing(
        self,
        status: SagaStatus | None,
        definition: str | None,
        subject: str | None,
        limit: int,
        offset: int,
    ) -> list[SagaSummary]:
        """Sagas, newest first, filtered by status, definition and subject."""
        ids = self._by_subject.get(subject, []) if subject is not None else list(self._rows)
        rows = [self._rows[i] for i in ids]
        if status is not None:
            rows = [r for r in rows if r.status is status]
        if definition is not None:
            rows = [r for r in rows if r.definition == definition]
        rows.sort(key=lambda r: r.started_at, reverse=True)
        return [r.summary() for r in rows[offset : offset + limit]]

    def due_timers(self, now: datetime) -> list[tuple[UUID, str]]:
        """Timers due by ``now`` (soonest first), as ``(saga id, token)``."""
        due = [
            (timer[1], saga_id, timer[0])
            for saga_id, timer in self._timers.items()
            if timer[1] <= now
        ]
        due.sort()
        return [(saga_id, token) for _, saga_id, token in due]

    def next_timer(self) -> datetime | None:
        """When the soonest running timer is due, if any runs."""
        return min((timer[1] for timer in self._timers.values()), default=None)

    def statistics(self) -> SagaStatistics:
        by_status: dict[SagaStatus, int] = {}
        by_definition: dict[str, dict[SagaStatus, int]] = {}
        for row in self._rows.values():
            by_status[row.status] = by_status.get(row.status, 0) + 1
            counts = by_definition.setdefault(row.definition, {})
            counts[row.status] = counts.get(row.status, 0) + 1
        return SagaStatistics(
            total=len(self._rows),
            by_status=MappingProxyType(by_status),
            by_definition=MappingProxyType(
                {name: MappingProxyType(c) for name, c in sorted(by_definition.items())}
            ),
            retries=self.retries,
            timeouts=self.timeouts,
            compensations=self.compensations,
            operator_actions=self.operator_actions,
        )

    # --- folding ------------------------------------------------------------------------------

    @staticmethod
    def _dispatched(phase: Phase) -> Callable[[_Row, Any], None]:
        def apply(row: _Row, e: Saga.StepDispatched | Saga.CompensationDispatched) -> None:
            row.phase = phase
            row.step = e.step
            row.attempt = e.attempt
            row.delivery = e.delivery
            row.status = SagaStatus.RUNNING if phase is Phase.FORWARD else SagaStatus.COMPENSATING
            row.timer = (timer_token(e.key, e.delivery, "timeout"), e.deadline)

        return apply

    @staticmethod
    def _replied(row: _Row, e: Saga.ReplyReceived) -> None:
        if e.disposition == "applied":
            row.timer = None

    def _failed(self, row: _Row, e: Saga.StepFailed) -> None:
        if e.retry_at is None:
            row.timer = None
            return
        self.retries += 1
        key = str(StepKey(row.saga_id, e.step, Phase(e.phase), e.attempt))
        row.timer = (timer_token(key, row.delivery, "retry"), e.retry_at)

    def _timed_out(self, row: _Row, _: Saga.StepTimedOut) -> None:
        self.timeouts += 1
        row.timer = None

    def _compensating(self, row: _Row, _: Saga.CompensationStarted) -> None:
        self.compensations += 1
        row.status = SagaStatus.COMPENSATING
        row.phase = Phase.COMPENSATION
        row.timer = None

    @staticmethod
    def _ended(status: SagaStatus) -> Callable[[_Row, Any], None]:
        def apply(row: _Row, e: Any) -> None:
            row.status = status
            row.timer = None
            row.ended_at = e.timestamp

        return apply

    def _operator_acted(self, row: _Row, _: Saga.OperatorActed) -> None:
        self.operator_actions += 1
        row.ended_at = None

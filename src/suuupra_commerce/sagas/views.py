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
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from suuupra_commerce.projections import Doc, Projection, Tally, instant, parse_instant
from suuupra_commerce.sagas.domain import Phase, Saga, SagaStatus, StepKey, timer_token

__all__ = [
    "SagaProjection",
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


class SagaProjection(Projection):
    """Every saga's summary, its running timer (indexed by due time) and its trouble counts."""

    name = "sagas"
    indexes = ("status", "definition", "subject", "started_at", "timer_at")

    def __init__(self) -> None:
        self._handlers: dict[type[Any], Callable[[Doc, Any], None]] = {
            Saga.StepDispatched: _dispatched(Phase.FORWARD),
            Saga.CompensationDispatched: _dispatched(Phase.COMPENSATION),
            Saga.ReplyReceived: _replied,
            Saga.StepFailed: _failed,
            Saga.StepTimedOut: _timed_out,
            Saga.CompensationStarted: _compensating,
            Saga.Completed: _ended(SagaStatus.COMPLETED),
            Saga.Compensated: _ended(SagaStatus.COMPENSATED),
            Saga.Stuck: _ended(SagaStatus.STUCK),
            Saga.OperatorActed: _operator_acted,
        }

    @property
    def handled(self) -> frozenset[type[Any]]:
        """The event classes this projection folds (besides ``Started``)."""
        return frozenset(self._handlers)

    def fold(self, doc: Doc | None, event: DomainEventProtocol[UUID]) -> Doc | None:
        timestamp = instant(getattr(event, "timestamp"))  # noqa: B009 - not on the Protocol
        if isinstance(event, Saga.Started):
            return {
                "saga_id": str(event.originator_id),
                "definition": event.definition,
                "version": event.definition_version,
                "subject": event.subject,
                "status": SagaStatus.RUNNING.value,
                "step": event.steps[0],
                "phase": Phase.FORWARD.value,
                "attempt": 0,
                "delivery": 0,
                "started_at": timestamp,
                "updated_at": timestamp,
                "ended_at": None,
                "timer_token": None,
                "timer_at": None,
                "retries": 0,
                "timeouts": 0,
                "compensations": 0,
                "operator_actions": 0,
            }
        if doc is None:
            return None
        doc["updated_at"] = timestamp
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(doc, event)
        return doc

    @staticmethod
    def summary(doc: Doc) -> SagaSummary:
        """The :class:`SagaSummary` a document holds."""
        ended_at = doc["ended_at"]
        return SagaSummary(
            saga_id=UUID(doc["saga_id"]),
            definition=doc["definition"],
            version=doc["version"],
            subject=doc["subject"],
            status=SagaStatus(doc["status"]),
            step=doc["step"],
            phase=Phase(doc["phase"]),
            attempt=doc["attempt"],
            started_at=parse_instant(doc["started_at"]),
            updated_at=parse_instant(doc["updated_at"]),
            ended_at=None if ended_at is None else parse_instant(ended_at),
        )

    @staticmethod
    def statistics(tallies: Iterable[Tally]) -> SagaStatistics:
        """Statistics from a tally by ``(definition, status)`` summing the trouble counts."""
        by_status: dict[SagaStatus, int] = {}
        by_definition: dict[str, dict[SagaStatus, int]] = {}
        sums = [0, 0, 0, 0]
        for tally in tallies:
            definition, status = str(tally.group[0]), SagaStatus(str(tally.group[1]))
            by_status[status] = by_status.get(status, 0) + tally.count
            counts = by_definition.setdefault(definition, {})
            counts[status] = counts.get(status, 0) + tally.count
            sums = [a + b for a, b in zip(sums, tally.sums, strict=True)]
        return SagaStatistics(
            total=sum(by_status.values()),
            by_status=MappingProxyType(by_status),
            by_definition=MappingProxyType(
                {name: MappingProxyType(c) for name, c in sorted(by_definition.items())}
            ),
            retries=sums[0],
            timeouts=sums[1],
            compensations=sums[2],
            operator_actions=sums[3],
        )

    #: The trouble counts :meth:`statistics` expects summed, in order.
    TROUBLE: ClassVar[tuple[str, ...]] = (
        "retries",
        "timeouts",
        "compensations",
        "operator_actions",
    )


# --- folding ----------------------------------------------------------------------------------


def _timer(doc: Doc, token: str | None, at: datetime | None) -> None:
    doc["timer_token"] = token
    doc["timer_at"] = None if at is None else instant(at)


def _dispatched(phase: Phase) -> Callable[[Doc, Any], None]:
    def apply(doc: Doc, e: Saga.StepDispatched | Saga.CompensationDispatched) -> None:
        doc["phase"] = phase.value
        doc["step"] = e.step
        doc["attempt"] = e.attempt
        doc["delivery"] = e.delivery
        status = SagaStatus.RUNNING if phase is Phase.FORWARD else SagaStatus.COMPENSATING
        doc["status"] = status.value
        _timer(doc, timer_token(e.key, e.delivery, "timeout"), e.deadline)

    return apply


def _replied(doc: Doc, e: Saga.ReplyReceived) -> None:
    if e.disposition == "applied":
        _timer(doc, None, None)


def _failed(doc: Doc, e: Saga.StepFailed) -> None:
    if e.retry_at is None:
        _timer(doc, None, None)
        return
    doc["retries"] += 1
    key = str(StepKey(UUID(doc["saga_id"]), e.step, Phase(e.phase), e.attempt))
    _timer(doc, timer_token(key, doc["delivery"], "retry"), e.retry_at)


def _timed_out(doc: Doc, _: Saga.StepTimedOut) -> None:
    doc["timeouts"] += 1
    _timer(doc, None, None)


def _compensating(doc: Doc, _: Saga.CompensationStarted) -> None:
    doc["compensations"] += 1
    doc["status"] = SagaStatus.COMPENSATING.value
    doc["phase"] = Phase.COMPENSATION.value
    _timer(doc, None, None)


def _ended(status: SagaStatus) -> Callable[[Doc, Any], None]:
    def apply(doc: Doc, e: Any) -> None:
        doc["status"] = status.value
        doc["ended_at"] = instant(e.timestamp)
        _timer(doc, None, None)

    return apply


def _operator_acted(doc: Doc, _: Saga.OperatorActed) -> None:
    doc["operator_actions"] += 1
    doc["ended_at"] = None

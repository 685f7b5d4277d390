"""The saga aggregate, its messages and the exchange log: every decision is pure.

A :class:`Saga` is an event-sourced aggregate. Its public methods take the saga's
state, a message (a reply, a timer, an operator's action), the definition it runs on
and the time, and record events; they do no I/O, so a saga rebuilt from its events is
exactly the saga that recorded them, and replay never repeats a side effect. The
commands a saga sends are events too (``StepDispatched``, ``CompensationDispatched``):
they are the outbox a dispatcher reads.

Idempotency keys are ``<saga id>/<step>/<attempt>`` (``<saga id>/<step>/undo/<attempt>``
for a compensation). The attempt grows only after a failure that says the command did
not take effect; a step that timed out is sent again under the *same* key, so a
participant that did act the first time answers the same way instead of acting twice.

How a saga moves::

    RUNNING -> COMPLETED                      every step succeeded
    RUNNING -> COMPENSATING -> COMPENSATED    a step before the pivot failed or timed out
    RUNNING | COMPENSATING -> STUCK           retries ran out where only an operator can decide
    STUCK -> RUNNING | COMPENSATING           an operator retries or skips the step
    STUCK -> COMPLETED | COMPENSATED          an operator marks it resolved
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from suuupra_commerce.aggregate import CommerceAggregate
from suuupra_commerce.errors import (
    IllegalTransitionError,
    InvalidIdentifierError,
    InvalidInputError,
)
from suuupra_commerce.sagas.definition import SagaDefinition, Step, StepRetry
from suuupra_commerce.values import check_identifier, check_moment, derived_id

__all__ = [
    "Phase",
    "Reply",
    "Saga",
    "SagaStatus",
    "StepCommand",
    "StepExchange",
    "StepKey",
    "Timer",
    "check_json_plain",
    "error_types_of",
    "timer_token",
]

MAX_DATA_BYTES = 32 * 1024
"""Largest string accepted in a saga's input or a step's result."""

MAX_EARLY_REPLIES = 16
"""Most replies a saga keeps for commands it has not sent yet; more are ignored."""


class SagaStatus(StrEnum):
    """Where a saga is. COMPLETED, COMPENSATED and STUCK are the ends a saga reaches."""

    RUNNING = "running"
    COMPENSATING = "compensating"
    COMPLETED = "completed"
    COMPENSATED = "compensated"
    STUCK = "stuck"

    @property
    def has_ended(self) -> bool:
        """Whether the saga has reached one of its three ends."""
        return self in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.STUCK)


class Phase(StrEnum):
    """Whether a command does a step or undoes it."""

    FORWARD = "forward"
    COMPENSATION = "compensation"


@dataclass(frozen=True, slots=True)
class StepKey:
    """The idempotency key of one attempt at one step (or at undoing it).

    >>> key = StepKey(UUID(int=1), "authorize_payment", Phase.FORWARD, 2)
    >>> str(key)
    '00000000-0000-0000-0000-000000000001/authorize_payment/2'
    >>> StepKey.parse(str(key)) == key
    True
    """

    saga_id: UUID
    step: str
    phase: Phase
    attempt: int

    def __str__(self) -> str:
        undo = "/undo" if self.phase is Phase.COMPENSATION else ""
        return f"{self.saga_id}/{self.step}{undo}/{self.attempt}"

    @classmethod
    def parse(cls, text: str) -> StepKey:
        """Read a key written by ``str()``; ``InvalidIdentifierError`` if it is not one."""
        check_identifier(text, "idempotency key")
        parts = text.split("/")
        try:
            if len(parts) == 3:
                saga, step, attempt, phase = parts[0], parts[1], parts[2], Phase.FORWARD
            elif len(parts) == 4 and parts[2] == "undo":
                saga, step, attempt, phase = parts[0], parts[1], parts[3], Phase.COMPENSATION
            else:
                raise ValueError(text)
            number = int(attempt)
            if not (attempt.isdigit() and 1 <= number <= 1_000_000 and step):
                raise ValueError(text)
            return cls(UUID(saga), step, phase, number)
        except ValueError:
            raise InvalidIdentifierError(f"not a saga step key: {text!r}") from None


@dataclass(frozen=True, slots=True)
class Timer:
    """A durable timer: fires once, and only if the saga still waits for it."""

    token: str
    due: datetime
    kind: str  # "timeout": the reply is overdue; "retry": the back-off before a new attempt


@dataclass(frozen=True, slots=True)
class StepCommand:
    """What a participant receives: one attempt at a step, with the saga's data."""

    saga_id: UUID
    saga: str
    version: int
    step: str
    phase: Phase
    attempt: int
    delivery: int
    idempotency_key: str
    action: str
    data: Mapping[str, Any]
    results: Mapping[str, Mapping[str, Any]]
    forward_key: str | None
    correlation_id: str

    @property
    def key(self) -> StepKey:
        """The command's idempotency key, parsed."""
        return StepKey(self.saga_id, self.step, self.phase, self.attempt)

    def result_of(self, step: str) -> Mapping[str, Any]:
        """What an earlier step answered; ``InvalidInputError`` if it has not succeeded."""
        try:
            return self.results[step]
        except KeyError:
            raise InvalidInputError(f"step {step!r} has no result yet") from None


@dataclass(frozen=True, slots=True)
class Reply:
    """A participant's answer to one command (named by its idempotency key).

    >>> key = StepKey(UUID(int=1), "notify", Phase.FORWARD, 1)
    >>> Reply.success(key).succeeded
    True
    >>> Reply.failure(key, ValueError("bad")).error_types
    ('ValueError',)
    """

    key: StepKey
    succeeded: bool
    result: Mapping[str, Any] = field(default_factory=dict)
    error_types: tuple[str, ...] = ()
    error: str = ""

    def __post_init__(self) -> None:
        check_json_plain(dict(self.result), "a reply's result")
        if self.succeeded and (self.error_types or self.error):
            raise InvalidInputError("a successful reply carries no error")
        if not self.succeeded and not self.error_types:
            raise InvalidInputError("a failed reply names its error type")

    @classmethod
    def success(cls, key: StepKey, result: Mapping[str, Any] | None = None) -> Reply:
        """The command took effect; ``result`` is JSON-plain data for the later steps."""
        return cls(key, True, dict(result or {}))

    @classmethod
    def failure(cls, key: StepKey, error: BaseException) -> Reply:
        """The command did not take effect, because of ``error``."""
        message = str(error)[:2000] or type(error).__name__
        return cls(key, False, {}, error_types_of(error), message)

    def to_event(self) -> dict[str, Any]:
        """The reply as JSON-plain event data (what :meth:`from_event` reads)."""
        return {
            "key": str(self.key),
            "succeeded": self.succeeded,
            "result": dict(self.result),
            "error_types": list(self.error_types),
            "error": self.error,
        }

    @classmethod
    def from_event(cls, data: Mapping[str, Any]) -> Reply:
        """The inverse of :meth:`to_event`."""
        return cls(
            StepKey.parse(data["key"]),
            bool(data["succeeded"]),
            dict(data["result"]),
            tuple(data["error_types"]),
            str(data["error"]),
        )


def error_types_of(error: BaseException) -> tuple[str, ...]:
    """The names of an error's class and base classes, most specific first.

    >>> error_types_of(KeyError("x"))
    ('KeyError', 'LookupError')
    """
    skip = {"object", "BaseException", "Exception"}
    return tuple(cls.__name__ for cls in type(error).__mro__ if cls.__name__ not in skip)


def check_json_plain(value: Any, what: str = "value") -> Any:
    """Return ``value`` if it is JSON-plain data with no floats, else ``InvalidInputError``.

    Saga data lives in events for ever and is handed to participants: strings, whole
    numbers, booleans, ``None``, lists and string-keyed dicts only (money as strings).

    >>> check_json_plain({"amount": "9.50", "lines": [1, 2]})
    {'amount': '9.50', 'lines': [1, 2]}
    """
    size = [0]

    def walk(item: Any, depth: int) -> None:
        if depth > 16:
            raise InvalidInputError(f"{what} is nested too deeply")
        size[0] += 1
        if size[0] > 10_000:
            raise InvalidInputError(f"{what} is too large")
        if item is None or isinstance(item, bool | int):
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > 10**18:
                raise InvalidInputError(f"{what} holds an absurd number")
            return
        if isinstance(item, str):
            if len(item) > MAX_DATA_BYTES or "\x00" in item:
                raise InvalidInputError(f"{what} holds an oversized or NUL-bearing string")
            return
        if isinstance(item, float | Decimal):
            raise InvalidInputError(f"{what} must hold amounts as strings, not {item!r}")
        if isinstance(item, list | tuple):
            for element in item:
                walk(element, depth + 1)
            return
        if isinstance(item, dict):
            for name, element in item.items():
                if not isinstance(name, str):
                    raise InvalidInputError(f"{what} has a key that is not a string: {name!r}")
                walk(element, depth + 1)
            return
        raise InvalidInputError(f"{what} holds a {type(item).__name__}, not JSON-plain data")

    walk(value, 0)
    return value


def timer_token(key: str, delivery: int, kind: str) -> str:
    """The token of the timer set for one delivery of a command (``kind``: timeout or retry)."""
    return f"{key}#{delivery}:{kind}"


class Saga(CommerceAggregate):
    """One run of a saga definition: its progress, its timers and its audit trail."""

    # --- start --------------------------------------------------------------------------------

    class Started(Aggregate.Created):
        definition: str
        definition_version: int
        steps: list[str]
        pivot: int | None
        data: dict[str, Any]
        subject: str
        correlation_id: str

    @event(Started)
    def __init__(
        self,
        id: UUID,
        definition: str,
        definition_version: int,
        steps: list[str],
        pivot: int | None,
        data: dict[str, Any],
        subject: str,
        correlation_id: str,
    ) -> None:
        self.definition = definition
        self.definition_version = definition_version
        self.steps = list(steps)
        self.pivot = pivot
        self.data = data
        self.subject = subject
        self.correlation_id = correlation_id
        self.status = SagaStatus.RUNNING
        self.phase = Phase.FORWARD
        self.cursor = 0
        self.attempt = 0
        self.delivery = 0
        self.sends = 0
        self.last_key: str | None = None
        self.outstanding: str | None = None
        self.timer: Timer | None = None
        self.results: dict[str, dict[str, Any]] = {}
        self.effects: dict[str, str] = {}
        self.pivot_passed = False
        self.pending_compensation: list[str] = []
        self.compensated: list[str] = []
        self.dispatched: set[str] = set()
        self.settled: set[str] = set()
        self.early: dict[str, dict[str, Any]] = {}
        self.last_error = ""
        self.stuck_reason = ""

    @classmethod
    def start(
        cls,
        *,
        saga_id: UUID,
        definition: SagaDefinition,
        data: Mapping[str, Any],
        subject: str,
        correlation_id: str,
        now: datetime,
    ) -> Saga:
        """A new saga on ``definition``, its first step already dispatched."""
        if not isinstance(saga_id, UUID):
            raise InvalidIdentifierError("a saga id must be a UUID")
        check_identifier(subject, "saga subject")
        check_identifier(correlation_id, "correlation id")
        check_moment(now)
        plain = check_json_plain(dict(data), "saga data")
        saga = cls(
            id=saga_id,
            definition=definition.name,
            definition_version=definition.version,
            steps=[step.name for step in definition.steps],
            pivot=definition.pivot_index,
            data=plain,
            subject=subject,
            correlation_id=correlation_id,
        )
        saga._dispatch(definition, 0, Phase.FORWARD, 1, now)
        return saga

    # --- reading the state --------------------------------------------------------------------

    @property
    def step(self) -> str:
        """The step the saga is at (doing it, or undoing it)."""
        return self.steps[self.cursor]

    def _current(self, definition: SagaDefinition) -> Step:
        return definition.steps[self.cursor]

    def _policy(self, definition: SagaDefinition) -> StepRetry:
        step = self._current(definition)
        return step.retry if self.phase is Phase.FORWARD else step.compensation_retry

    def _check(self, definition: SagaDefinition) -> None:
        if definition.key != (self.definition, self.definition_version):
            mine = f"{self.definition} v{self.definition_version}"
            msg = f"saga {self.id} runs {mine}, not {definition.name} v{definition.version}"
            raise InvalidInputError(msg)

    # --- dispatching --------------------------------------------------------------------------

    class StepDispatched(Aggregate.Event):
        step: str
        attempt: int
        delivery: int
        key: str
        action: str
        payload: dict[str, Any]
        deadline: datetime

    class CompensationDispatched(Aggregate.Event):
        step: str
        attempt: int
        delivery: int
        key: str
        action: str
        payload: dict[str, Any]
        deadline: datetime

    def _dispatch(
        self, definition: SagaDefinition, index: int, phase: Phase, attempt: int, now: datetime
    ) -> None:
        step = definition.steps[index]
        key = str(StepKey(self.id, step.name, phase, attempt))
        delivery = self.delivery + 1 if key == self.last_key else 1
        payload = {
            "definition": self.definition,
            "data": self.data,
            "results": dict(self.results),  # as they are now: later results are not this command's
            "forward_key": self.effects.get(step.name) if phase is Phase.COMPENSATION else None,
            "correlation_id": self.correlation_id,
            "version": self.definition_version,
        }
        if phase is Phase.FORWARD:
            self._step_dispatched(
                step.name, attempt, delivery, key, step.action, payload, now + step.timeout
            )
        else:
            assert step.compensation is not None  # only compensable steps are undone
            self._compensation_dispatched(
                step.name,
                attempt,
                delivery,
                key,
                step.compensation,
                payload,
                now + step.compensation_timeout,
            )
        early = self.early.get(key)
        if early is not None:
            self._apply_reply(Reply.from_event(early), definition, now)

    @event(StepDispatched)
    def _step_dispatched(
        self,
        step: str,
        attempt: int,
        delivery: int,
        key: str,
        action: str,
        payload: dict[str, Any],
        deadline: datetime,
    ) -> None:
        self._sent(Phase.FORWARD, step, attempt, delivery, key, deadline)

    @event(CompensationDispatched)
    def _compensation_dispatched(
        self,
        step: str,
        attempt: int,
        delivery: int,
        key: str,
        action: str,
        payload: dict[str, Any],
        deadline: datetime,
    ) -> None:
        self._sent(Phase.COMPENSATION, step, attempt, delivery, key, deadline)

    def _sent(
        self, phase: Phase, step: str, attempt: int, delivery: int, key: str, deadline: datetime
    ) -> None:
        index = self.steps.index(step)
        last = None if self.last_key is None else StepKey.parse(self.last_key)
        if last is None or (last.phase, last.step) != (phase, step):
            self.sends = 0
        self.last_key = key
        self.phase = phase
        self.cursor = index
        self.attempt = attempt
        self.delivery = delivery
        self.sends += 1
        self.outstanding = key
        self.dispatched.add(key)
        self.timer = Timer(timer_token(key, delivery, "timeout"), deadline, "timeout")
        self.status = SagaStatus.RUNNING if phase is Phase.FORWARD else SagaStatus.COMPENSATING
        self.stuck_reason = ""

    # --- replies ------------------------------------------------------------------------------

    class ReplyReceived(Aggregate.Event):
        reply: dict[str, Any]
        disposition: str  # applied | early | late

    def receive(self, reply: Reply, definition: SagaDefinition, now: datetime) -> str:
        """Take a participant's reply; returns what became of it.

        ``"applied"``: it answered the command the saga waits for, and the saga moved on;
        ``"early"``: it answers a command not sent yet, and is kept until it is;
        ``"late"``: the saga stopped waiting for it (a timeout); it is recorded, nothing
        more; ``"duplicate"`` or ``"ignored"``: nothing is recorded. A stuck saga whose
        last command's outcome was unknown takes its answer and goes on from there.
        """
        self._check(definition)
        check_moment(now)
        if reply.key.saga_id != self.id:
            raise InvalidInputError(f"reply {reply.key} is not for saga {self.id}")
        key = str(reply.key)
        if key == self.outstanding and not self.status.has_ended:
            self._apply_reply(reply, definition, now)
            return "applied"
        if key in self.settled or key in self.early:
            return "duplicate"
        if self.status is SagaStatus.STUCK and key == self.last_key:
            # Stuck waiting to learn what its last command did: the answer resumes it.
            self._apply_reply(reply, definition, now)
            return "applied"
        if key in self.dispatched or self.status.has_ended:
            self._reply_received(reply.to_event(), "late")
            return "late"
        if reply.key.step not in self.steps or len(self.early) >= MAX_EARLY_REPLIES:
            return "ignored"
        self._reply_received(reply.to_event(), "early")
        return "early"

    def _apply_reply(self, reply: Reply, definition: SagaDefinition, now: datetime) -> None:
        self._reply_received(reply.to_event(), "applied")
        if reply.succeeded:
            self._advance(definition, now)
            return
        step = self._current(definition)
        policy = self._policy(definition)
        if policy.is_retryable(reply.error_types) and self.sends < policy.max_attempts:
            retry_at = now + policy.delay(self.attempt)
            self._step_failed(step.name, self.phase.value, self.attempt, reply.error, retry_at)
            return
        self._step_failed(step.name, self.phase.value, self.attempt, reply.error, None)
        if self.phase is Phase.FORWARD and not self.pivot_passed:
            self._compensate(definition, now, f"{step.name} failed: {reply.error}", None)
        else:
            doing = "undoing " if self.phase is Phase.COMPENSATION else ""
            self._stuck(f"{doing}{step.name} failed after {self.sends} send(s): {reply.error}")

    @event(ReplyReceived)
    def _reply_received(self, reply: dict[str, Any], disposition: str) -> None:
        key = reply["key"]
        if disposition == "early":
            self.early[key] = reply
            return
        self.settled.add(key)
        self.early.pop(key, None)
        if disposition != "applied":
            return
        self.outstanding = None
        self.timer = None
        parsed = StepKey.parse(key)
        if not reply["succeeded"]:
            self.last_error = reply["error"]
        elif parsed.phase is Phase.FORWARD:
            self.results[parsed.step] = reply["result"]
            self.effects[parsed.step] = key
            if self.pivot is not None and self.steps.index(parsed.step) >= self.pivot:
                self.pivot_passed = True
        else:
            self._undone(parsed.step)

    def _undone(self, step: str) -> None:
        if step in self.pending_compensation:
            self.pending_compensation.remove(step)
        if step not in self.compensated:
            self.compensated.append(step)

    class StepFailed(Aggregate.Event):
        step: str
        phase: str
        attempt: int
        error: str
        retry_at: datetime | None

    @event(StepFailed)
    def _step_failed(
        self, step: str, phase: str, attempt: int, error: str, retry_at: datetime | None
    ) -> None:
        self.last_error = error
        if retry_at is None:
            self.timer = None
        else:
            key = str(StepKey(self.id, step, Phase(phase), attempt))
            self.timer = Timer(timer_token(key, self.delivery, "retry"), retry_at, "retry")

    # --- moving on ----------------------------------------------------------------------------

    def _advance(self, definition: SagaDefinition, now: datetime) -> None:
        if self.phase is Phase.FORWARD:
            following = self.cursor + 1
            if following < len(definition.steps):
                self._dispatch(definition, following, Phase.FORWARD, 1, now)
            else:
                self._completed()
        elif self.pending_compensation:
            index = definition.index(self.pending_compensation[0])
            self._dispatch(definition, index, Phase.COMPENSATION, 1, now)
        else:
            self._compensated()

    class CompensationStarted(Aggregate.Event):
        reason: str
        steps: list[str]
        abandoned: str | None

    def _compensate(
        self, definition: SagaDefinition, now: datetime, reason: str, abandoned: str | None
    ) -> None:
        """Undo, newest first, every compensable step that took effect or may have."""
        touched = set(self.effects)
        if abandoned is not None:
            touched.add(StepKey.parse(abandoned).step)
        steps = [
            step.name
            for step in reversed(definition.steps)
            if step.compensation is not None and step.name in touched
        ]
        self._compensation_started(reason[:2000], steps, abandoned)
        self._advance(definition, now)

    @event(CompensationStarted)
    def _compensation_started(self, reason: str, steps: list[str], abandoned: str | None) -> None:
        if abandoned is not None:
            self.effects[StepKey.parse(abandoned).step] = abandoned
        self.phase = Phase.COMPENSATION
        self.status = SagaStatus.COMPENSATING
        self.pending_compensation = list(steps)
        self.outstanding = None
        self.timer = None
        self.last_error = reason

    class Completed(Aggregate.Event):
        pass

    @event(Completed)
    def _completed(self) -> None:
        self._end(SagaStatus.COMPLETED)

    class Compensated(Aggregate.Event):
        pass

    @event(Compensated)
    def _compensated(self) -> None:
        self._end(SagaStatus.COMPENSATED)

    class Stuck(Aggregate.Event):
        reason: str

    def park(self, reason: str) -> None:
        """Stop the saga for an operator (its definition is missing, say); a no-op once ended."""
        if not self.status.has_ended:
            self._stuck(reason)

    @event(Stuck)
    def _stuck(self, reason: str) -> None:
        self.status = SagaStatus.STUCK
        self.stuck_reason = reason
        self.outstanding = None
        self.timer = None

    def _end(self, status: SagaStatus) -> None:
        self.status = status
        self.outstanding = None
        self.timer = None

    # --- timers -------------------------------------------------------------------------------

    class StepTimedOut(Aggregate.Event):
        step: str
        phase: str
        attempt: int
        key: str

    def fire_timer(self, token: str, definition: SagaDefinition, now: datetime) -> bool:
        """Act on a due timer; ``False`` (recording nothing) if it is stale or not yet due.

        A timer is stale once the saga has moved past what it was set for: a reply
        arrived, a later attempt was sent, or the saga ended.
        """
        self._check(definition)
        check_moment(now)
        timer = self.timer
        if timer is None or timer.token != token or now < timer.due or self.status.has_ended:
            return False
        if timer.kind == "retry":
            self._dispatch(definition, self.cursor, self.phase, self.attempt + 1, now)
            return True
        step = self._current(definition)
        key = self.outstanding
        assert key is not None  # a timeout timer runs only while a reply is awaited
        self._step_timed_out(step.name, self.phase.value, self.attempt, key)
        if self.phase is Phase.FORWARD and not self.pivot_passed:
            self._compensate(definition, now, f"{step.name} timed out", None)
        elif self.sends < self._policy(definition).max_attempts:
            self._dispatch(definition, self.cursor, self.phase, self.attempt, now)
        else:
            doing = "undoing " if self.phase is Phase.COMPENSATION else ""
            self._stuck(f"{doing}{step.name} timed out {self.sends} time(s)")
        return True

    @event(StepTimedOut)
    def _step_timed_out(self, step: str, phase: str, attempt: int, key: str) -> None:
        self.outstanding = None
        self.timer = None
        if Phase(phase) is Phase.FORWARD:
            # The outcome is unknown: treat the step as possibly done.
            self.effects[step] = key
            if self.pivot is not None and self.steps.index(step) >= self.pivot:
                self.pivot_passed = True

    # --- operators ----------------------------------------------------------------------------

    class OperatorActed(Aggregate.Event):
        action: str
        by: str
        reason: str
        step: str
        phase: str

    def retry_step(self, definition: SagaDefinition, by: str, reason: str, now: datetime) -> None:
        """Send the step the saga is stuck at again, with a fresh retry budget.

        If the last send failed for sure, this is a new attempt under a new key; if its
        outcome is unknown (it timed out, or the saga was parked waiting for it), the
        same command goes again under the same key, so that it cannot act twice.
        """
        self._check(definition)
        self._check_operator(by, reason)
        self._require_stuck("retry")
        unknown = self.last_key is not None and self.last_key not in self.settled
        attempt = self.attempt if unknown else self.attempt + 1
        self._operator_acted("retry", by, reason, self.step, self.phase.value)
        self._dispatch(definition, self.cursor, self.phase, attempt, now)

    def skip_step(self, definition: SagaDefinition, by: str, reason: str, now: datetime) -> None:
        """Count the step the saga is stuck at as done by hand, and go on from there."""
        self._check(definition)
        self._check_operator(by, reason)
        self._require_stuck("skip")
        self._operator_acted("skip", by, reason, self.step, self.phase.value)
        self._advance(definition, now)

    def force_compensation(
        self, definition: SagaDefinition, by: str, reason: str, now: datetime
    ) -> None:
        """Undo what the saga did so far; refused once the pivot may have taken effect.

        A step whose reply is still awaited is treated as possibly done, and undone too.
        """
        self._check(definition)
        self._check_operator(by, reason)
        outstanding_pivot = self.outstanding is not None and self.pivot == self.cursor
        if self.phase is Phase.COMPENSATION or self.status in (
            SagaStatus.COMPLETED,
            SagaStatus.COMPENSATED,
        ):
            raise IllegalTransitionError("saga", self._state_name(), "compensate")
        if self.pivot_passed or outstanding_pivot:
            raise IllegalTransitionError(
                "saga", f"{self._state_name()} past its pivot", "compensate"
            )
        self._operator_acted("compensate", by, reason, self.step, self.phase.value)
        self._compensate(definition, now, f"compensation asked by {by}: {reason}", self.outstanding)

    def resolve(self, outcome: SagaStatus, by: str, reason: str) -> None:
        """Mark a stuck saga as ended by hand, ``COMPLETED`` or ``COMPENSATED``."""
        self._check_operator(by, reason)
        self._require_stuck("resolve")
        if outcome not in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED):
            raise InvalidInputError("a saga is resolved as completed or compensated")
        self._operator_acted("resolve", by, reason, self.step, self.phase.value)
        if outcome is SagaStatus.COMPLETED:
            self._completed()
        else:
            self._compensated()

    def _require_stuck(self, action: str) -> None:
        if self.status is not SagaStatus.STUCK:
            raise IllegalTransitionError("saga", self._state_name(), action)

    def _state_name(self) -> str:
        return self.status.value

    @event(OperatorActed)
    def _operator_acted(self, action: str, by: str, reason: str, step: str, phase: str) -> None:
        if action == "retry":
            self.sends = 0
        elif action == "skip":
            if Phase(phase) is Phase.FORWARD:
                self.results[step] = {"skipped_by": by}
                if self.pivot is not None and self.steps.index(step) >= self.pivot:
                    self.pivot_passed = True
            else:
                self._undone(step)
            self.phase = Phase(phase)
            self.status = (
                SagaStatus.RUNNING if self.phase is Phase.FORWARD else SagaStatus.COMPENSATING
            )
        self.stuck_reason = ""

    @staticmethod
    def _check_operator(by: str, reason: str) -> None:
        check_identifier(by, "operator")
        check_identifier(reason, "reason")


class StepExchange(CommerceAggregate):
    """One command sent to a participant, and every answer it gave (the dispatcher's log)."""

    class Opened(Aggregate.Created):
        key: str
        action: str

    @event(Opened)
    def __init__(self, id: UUID, key: str, action: str) -> None:
        self.key = key
        self.action = action
        self.deliveries = 0
        self.replies = 0

    @staticmethod
    def id_for(key: str) -> UUID:
        """The exchange of a command key."""
        return derived_id("saga-exchange", key)

    @classmethod
    def open(cls, key: str, action: str) -> StepExchange:
        """The exchange of a command about to be sent for the first time."""
        StepKey.parse(key)
        return cls(id=cls.id_for(key), key=key, action=action)

    class Accepted(Aggregate.Event):
        delivery: int

    def accept(self, delivery: int) -> None:
        """The participant took the command and will answer later."""
        self._accepted(delivery)

    @event(Accepted)
    def _accepted(self, delivery: int) -> None:
        self.deliveries = max(self.deliveries, delivery)

    class Replied(Aggregate.Event):
        saga_id: UUID
        reply: dict[str, Any]
        delivery: int

    def reply(self, reply: Reply, delivery: int) -> None:
        """Record an answer (several may come for one key: the saga sorts them out)."""
        if str(reply.key) != self.key:
            raise InvalidInputError(f"reply {reply.key} does not answer {self.key}")
        self._replied(reply.key.saga_id, reply.to_event(), delivery)

    @event(Replied)
    def _replied(self, saga_id: UUID, reply: dict[str, Any], delivery: int) -> None:
        self.deliveries = max(self.deliveries, delivery)
        self.replies += 1

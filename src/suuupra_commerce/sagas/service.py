"""The saga engine: the saga store, the dispatcher that talks to participants, and the runner.

Three parts, each durable on its own, meeting through notification logs with tracking:

* :class:`Sagas` is an eventsourcing process application. It follows the dispatcher's
  log (participants' replies) and the logs of applications whose events start sagas
  (an order placed starts its fulfilment). Processing one message loads the saga,
  decides (a pure function: :class:`~suuupra_commerce.sagas.domain.Saga`), and commits
  the saga's new events -- the commands it sends among them -- together with the
  tracking record of the message, in one transaction. Operators' actions, timers and
  replies that arrive by webhook are commands on it, under optimistic concurrency.
* :class:`SagaDispatcher` follows the saga log. For each command the saga sent, it
  calls the participant registered for the action and records the reply, with the
  tracking record, in one transaction. A crash after the participant acted and before
  that commit makes it call again, with the same idempotency key: participants
  deduplicate by it, so the effect happens once.
* :class:`SagaEngine` moves the logs along in this process (``run_until_idle`` for
  tests and scripts, ``start`` for a background thread) and fires due timers.

A crash anywhere loses nothing: each part resumes from its tracked position.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar, Unpack
from uuid import UUID

from eventsourcing.application import Application, NotificationLog, ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Notification, ProcessRecorder, RecordConflictError, Tracking
from eventsourcing.system import ProcessApplication
from eventsourcing.utils import get_topic

from suuupra_commerce.application import (
    CommerceApplication,
    HeldWrites,
    ServiceOptions,
    collect,
)
from suuupra_commerce.context import command_context, current_context, metadata_of
from suuupra_commerce.errors import (
    IdempotencyKeyReusedError,
    ReplyPendingError,
    SagaConfigurationError,
    SagaNotFoundError,
    UnknownSagaDefinitionError,
)
from suuupra_commerce.projections import ViewQuery, instant, parse_instant
from suuupra_commerce.sagas.commands import (
    CompensateSaga,
    ResolveSaga,
    RetrySagaStep,
    SkipSagaStep,
    StartSaga,
)
from suuupra_commerce.sagas.definition import SagaDefinition, SagaRegistry
from suuupra_commerce.sagas.domain import (
    Phase,
    Reply,
    Saga,
    SagaStatus,
    StepCommand,
    StepExchange,
    StepKey,
)
from suuupra_commerce.sagas.views import SagaProjection, SagaStatistics, SagaSummary, SagaView
from suuupra_commerce.tracing import span, traced_service

__all__ = [
    "Handler",
    "Participants",
    "Reads",
    "SagaDispatcher",
    "SagaEngine",
    "SagaStart",
    "SagaTrigger",
    "Sagas",
    "partition_of",
]

log = logging.getLogger("suuupra_commerce.sagas")

T = TypeVar("T")

Reads = Callable[[StepCommand], Iterable[tuple[CommerceApplication, UUID]]]
"""Which aggregates, of which applications, performing a command loads."""

Handler = Callable[[StepCommand], Mapping[str, Any] | None]
"""Performs one action for a saga; returns JSON-plain result data (or ``None``).

Raises ``ReplyPendingError`` if the answer will come later, any other exception if the
action failed (the saga's retry policy decides what follows from its type).
"""


@dataclass(frozen=True, slots=True)
class SagaStart:
    """What a starter asks for: a saga of ``definition`` with this id, subject and data."""

    definition: str
    saga_id: UUID
    subject: str
    data: Mapping[str, Any]
    correlation_id: str


@dataclass(frozen=True, slots=True)
class SagaTrigger:
    """How events of another application start sagas.

    ``saga_id`` says, cheaply and deterministically, which saga an event concerns (the
    engine uses it to route the event to the worker that owns that saga); ``start``
    decides whether it starts one, and with what. ``reads`` (optional, a hint) names the
    aggregates of this library's applications that ``start`` loads for an event (the
    placed order, say): the engine reads those of a whole section at once beforehand,
    as it does for :class:`Participants`.
    """

    event_type: type[Any]
    saga_id: Callable[[Any], UUID]
    start: Callable[[Any], SagaStart | None]
    reads: Callable[[Any], Iterable[tuple[CommerceApplication, UUID]]] | None = None


def partition_of(saga_id: UUID, partitions: int) -> int:
    """The partition a saga belongs to, of ``partitions`` (its id, modulo their number)."""
    return saga_id.int % partitions


def _partition_name(leader: str, partition: int, partitions: int) -> str:
    """The name under which one partition of a leader's log is followed and tracked."""
    return leader if partitions == 1 else f"{leader}@{partition}of{partitions}"


def _parse_partition(name: str) -> tuple[int, int] | None:
    if "@" not in name:
        return None
    part, _, count = name.rpartition("@")[2].partition("of")
    return int(part), int(count)


class Participants:
    """The registry of actions the dispatcher can perform, by name.

    ``writes_to``: applications of this library that the handlers change, whose saves
    the dispatcher may hold and record once for a group of commands (see
    :class:`~suuupra_commerce.application.HeldWrites`). Name only applications whose
    aggregates rarely have other writers while a saga works on them: a change by
    another writer makes the whole group run again, command by command.

    ``reads``: which aggregates of such applications a command's handler loads (an
    order's id, say); the dispatcher reads those of a whole section at once beforehand
    (see :meth:`~suuupra_commerce.application.CommerceApplication.prefetched`).

    >>> participants = Participants({"notifier.hello": lambda command: {"said": "hello"}})
    >>> sorted(participants.actions())
    ['notifier.hello']
    """

    def __init__(
        self,
        handlers: Mapping[str, Handler] | None = None,
        *,
        writes_to: Iterable[CommerceApplication] = (),
        reads: Reads | None = None,
    ) -> None:
        self._handlers: dict[str, Handler] = {}
        for action, handler in (handlers or {}).items():
            self.register(action, handler)
        self.writes_to = tuple(writes_to)
        self._reads = reads

    def reads(self, command: StepCommand) -> Iterable[tuple[CommerceApplication, UUID]]:
        """The aggregates (and their applications) performing ``command`` loads, if known."""
        return () if self._reads is None else self._reads(command)

    def register(self, action: str, handler: Handler) -> None:
        """Perform ``action`` with ``handler`` from now on."""
        if not callable(handler):
            raise SagaConfigurationError(f"the handler of {action!r} is not callable")
        self._handlers[action] = handler

    def actions(self) -> set[str]:
        """The actions with a handler."""
        return set(self._handlers)

    def handler(self, action: str) -> Handler:
        """The handler of ``action`` (``SagaConfigurationError`` if there is none)."""
        try:
            return self._handlers[action]
        except KeyError:
            raise SagaConfigurationError(f"no participant performs {action!r}") from None

    def handle(self, command: StepCommand) -> Mapping[str, Any] | None:
        """Perform the command's action (``SagaConfigurationError`` if nobody performs it)."""
        return self.handler(command.action)(command)


def command_of(event: Saga.StepDispatched | Saga.CompensationDispatched) -> StepCommand:
    """The command a dispatch event carries, as a participant receives it."""
    payload = event.payload
    return StepCommand(
        saga_id=event.originator_id,
        saga=payload["definition"],
        version=payload["version"],
        step=event.step,
        phase=Phase.FORWARD if isinstance(event, Saga.StepDispatched) else Phase.COMPENSATION,
        attempt=event.attempt,
        delivery=event.delivery,
        idempotency_key=event.key,
        action=event.action,
        data=payload["data"],
        results=payload["results"],
        forward_key=payload["forward_key"],
        correlation_id=payload["correlation_id"],
    )


@dataclass(frozen=True, slots=True)
class _Job:
    """One message to process: the event, its position, and the saga it concerns."""

    event: DomainEventProtocol[UUID]
    tracking: Tracking
    saga_id: UUID | None


@dataclass(frozen=True, slots=True)
class _Decided:
    """A message and what processing it led to (not recorded yet)."""

    job: _Job
    processing_event: ProcessingEvent[UUID]


class _Processor(CommerceApplication, ProcessApplication[UUID]):
    """A process application with our service conventions; counts what it processed.

    It records in groups (group commit): the messages of a pulled section are processed
    one by one, and the new events of up to :attr:`group_size` of them are recorded in one
    transaction with the tracking record of the last. A group closes early before a
    message about a saga the group already changed (that message must read the saga as
    recorded) and before a message whose processing failed: what the messages before it
    did is recorded, the failed one is not, so the next pass starts at it.

    The changes a group's messages make to other applications (the participants' writes,
    for the dispatcher: :meth:`held_writes`) are held too, and recorded just before the
    group, one transaction per application.
    """

    pull_section_size = 200

    #: The most messages one transaction records (1: a transaction per message).
    group_size: ClassVar[int] = 50

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        **options: Unpack[ServiceOptions],
    ) -> None:
        super().__init__(env, **options)
        self.processed = 0
        self._counting = threading.Lock()

    def construct_recorder(self) -> ProcessRecorder:
        recorder = super().construct_recorder()
        assert isinstance(recorder, ProcessRecorder)  # a process application records tracking
        return recorder

    def pull_and_process(
        self, leader_name: str, start: int | None = None, stop: int | None = None
    ) -> None:
        """Process the new messages of ``leader_name``'s log, recording them in groups."""
        if start is None:
            start = self.recorder.max_tracking_id(leader_name)
        for notifications in self.pull_notifications(
            leader_name, start=start, stop=stop, inclusive_of_start=False
        ):
            if not notifications:
                continue
            received = self.filter_received_notifications(notifications)
            jobs = self.convert_notifications(leader_name, received)
            # What the section's messages will load is read in one go.
            with self._reading([event for event, _ in jobs]):
                # Tracked to the section's end: what is other partitions' (or nobody's)
                # business is not read again on the next pass.
                self._process_in_groups(jobs, Tracking(leader_name, notifications[-1].id))

    def process_event(self, domain_event: DomainEventProtocol[UUID], tracking: Tracking) -> None:
        """Process one message and record what it led to with its tracking record."""
        self._process_in_groups([(domain_event, tracking)], tracking)

    def _process_in_groups(
        self, jobs: Iterable[tuple[DomainEventProtocol[UUID], Tracking]], through: Tracking
    ) -> None:
        """Process ``jobs`` in groups; the last group is recorded as far as ``through``."""
        group: list[_Decided] = []
        sagas: set[UUID] = set()
        with self.held_writes() as held:
            for domain_event, tracking in jobs:
                saga_id = self.saga_of(domain_event)
                if len(group) >= self.group_size or saga_id in sagas:
                    self._record_group(group, held)
                    group, sagas = [], set()
                job = _Job(domain_event, tracking, saga_id)
                try:
                    group.append(_Decided(job, self._decide(job)))
                except Exception:
                    self._record_group(group, held)  # keep what the messages before it did
                    raise
                if saga_id is not None:
                    sagas.add(saga_id)
            self._record_group(group, held, through)

    def held_writes(self) -> HeldWrites:
        """The writes of other applications that a group's messages make, recorded together."""
        return HeldWrites(())

    def reads_for(self, domain_event: DomainEventProtocol[UUID]) -> UUID | None:
        """The aggregate of this application that processing the message loads, if one."""
        return None

    def reads_elsewhere(
        self, domain_event: DomainEventProtocol[UUID]
    ) -> Iterable[tuple[CommerceApplication, UUID]]:
        """The aggregates of other applications that processing the message loads, if known."""
        return ()

    @contextmanager
    def _reading(self, events: Sequence[DomainEventProtocol[UUID]]) -> Iterator[None]:
        """Read what processing ``events`` loads, in one go per application.

        This application's aggregates (:meth:`reads_for`), and other applications'
        (:meth:`reads_elsewhere`), each application's read once with :meth:`prefetched`.
        """
        wanted: dict[CommerceApplication, set[UUID]] = {
            self: {i for e in events if (i := self.reads_for(e)) is not None}
        }
        for domain_event in events:
            try:
                reads = list(self.reads_elsewhere(domain_event))
            except Exception:  # a hint only: processing reads for itself anyway
                log.warning("reads hint failed for %s", type(domain_event).__name__, exc_info=True)
                continue
            for app, aggregate_id in reads:
                wanted.setdefault(app, set()).add(aggregate_id)
        with ExitStack() as stack:
            for app, ids in wanted.items():
                stack.enter_context(app.prefetched(ids))
            yield

    def _decide(self, job: _Job) -> ProcessingEvent[UUID]:
        """Run the policy for one message; its events carry the message's correlation."""
        correlation = metadata_of(job.event).get("correlation_id")
        cause = f"{job.tracking.application_name}/{job.tracking.notification_id}"
        processing_event = ProcessingEvent[UUID](tracking=job.tracking)
        with (
            self._writers.hold([] if job.saga_id is None else [job.saga_id]),
            command_context(correlation, cause) as context,
        ):
            self.policy(job.event, processing_event)
        self._stamp(processing_event.events, context)
        return processing_event

    def _record_group(
        self, group: list[_Decided], held: HeldWrites, through: Tracking | None = None
    ) -> None:
        """Record the group's held writes, then its events and last tracking record.

        The held writes (what the group's messages changed in other applications) are
        recorded first: a reply must not be recorded for a change that was not. If another
        writer got in first, the group's messages are processed again, each recording
        its own writes; what they did the first time was recorded nowhere.

        ``through``: a later position to record instead (the messages after the group's
        last were none of this follower's business); recorded even if the group is empty.
        """
        decided = [done.processing_event for done in group]
        try:
            held.record()
        except RecordConflictError:
            log.info("%s: a group's held writes lost a race; processing it again", self.name)
            with held.paused():
                decided = [self._decide(done.job) for done in group]
        tracking = decided[-1].tracking if decided else None
        if through is not None and (
            tracking is None or tracking.notification_id < through.notification_id
        ):
            tracking = through
        if tracking is None:
            return
        together = ProcessingEvent[UUID](tracking=tracking)
        for processing_event in decided:
            together.events.extend(processing_event.events)
            together.aggregates.update(processing_event.aggregates)
        self._commit(together)
        with self._counting:
            self.processed += len(group)

    def saga_of(self, domain_event: DomainEventProtocol[UUID]) -> UUID | None:
        """The saga a message concerns (``None``: none of this follower's business)."""
        return None

    # --- partitions ---------------------------------------------------------------------------

    def follow_partitions(self, leader: str, log: NotificationLog, partitions: int) -> None:
        """Follow ``leader`` as ``partitions`` logs, one per partition of the sagas.

        Each partition is tracked on its own, so whichever worker owns it next resumes
        exactly where the last one stopped.
        """
        for partition in range(partitions):
            self.follow(_partition_name(leader, partition, partitions), log)

    def pull_partition(self, leader: str, partition: int, partitions: int) -> None:
        """Process the new messages of one partition of ``leader``'s log."""
        self.pull_and_process(_partition_name(leader, partition, partitions))

    def convert_notifications(
        self, leader_name: str, notifications: Iterable[Notification]
    ) -> list[tuple[DomainEventProtocol[UUID], Tracking]]:
        jobs = super().convert_notifications(leader_name, notifications)
        partition = _parse_partition(leader_name)
        if partition is None:
            return jobs
        mine, count = partition
        return [
            (event, tracking)
            for event, tracking in jobs
            if (saga_id := self.saga_of(event)) is not None and partition_of(saga_id, count) == mine
        ]


@traced_service
class Sagas(_Processor):
    """The saga store: starts sagas, applies replies and timers, answers operators."""

    name = "Sagas"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        registry: SagaRegistry,
        triggers: Iterable[SagaTrigger] = (),
        **options: Unpack[ServiceOptions],
    ) -> None:
        super().__init__(env, **options)
        self.registry = registry
        self._triggers = {trigger.event_type: trigger for trigger in triggers}
        self.topics = [get_topic(StepExchange.Replied)] + [get_topic(t) for t in self._triggers]
        self.register_projection(SagaProjection())

    # --- processing messages (with tracking) --------------------------------------------------

    def saga_of(self, domain_event: DomainEventProtocol[UUID]) -> UUID | None:
        if isinstance(domain_event, StepExchange.Replied):
            saga_id: UUID = domain_event.saga_id
            return saga_id
        trigger = self._triggers.get(type(domain_event))
        return None if trigger is None else trigger.saga_id(domain_event)

    def reads_for(self, domain_event: DomainEventProtocol[UUID]) -> UUID | None:
        return self.saga_of(domain_event)

    def reads_elsewhere(
        self, domain_event: DomainEventProtocol[UUID]
    ) -> Iterable[tuple[CommerceApplication, UUID]]:
        """What the event's trigger says starting a saga from it will load."""
        trigger = self._triggers.get(type(domain_event))
        if trigger is None or trigger.reads is None:
            return ()
        return trigger.reads(domain_event)

    def policy(
        self,
        domain_event: DomainEventProtocol[UUID],
        processing_event: ProcessingEvent[UUID],
    ) -> None:
        if isinstance(domain_event, StepExchange.Replied):
            saga = self._receive(Reply.from_event(domain_event.reply))
            collect(processing_event, saga)
            return
        trigger = self._triggers.get(type(domain_event))
        if trigger is None:
            return
        start = trigger.start(domain_event)
        if start is None or self._exists(start.saga_id):
            return
        definition = self.registry.latest(start.definition)
        saga = Saga.start(
            saga_id=start.saga_id,
            definition=definition,
            data=start.data,
            subject=start.subject,
            correlation_id=start.correlation_id,
            now=self.clock.now(),
        )
        log.info(
            "saga started",
            extra={"saga_id": str(saga.id), "saga": definition.name, "subject": start.subject},
        )
        collect(processing_event, saga)

    def _receive(self, reply: Reply) -> Saga | None:
        saga_id = reply.key.saga_id
        try:
            saga = self._saga(saga_id)
        except SagaNotFoundError:
            log.warning("reply for an unknown saga", extra={"key": str(reply.key)})
            return None
        definition = self._definition_of(saga)
        if definition is None:
            return saga
        disposition = saga.receive(reply, definition, self.clock.now())
        log.info(
            "saga reply %s",
            disposition,
            extra={"saga_id": str(saga_id), "key": str(reply.key), "ok": reply.succeeded},
        )
        return saga

    def _definition_of(self, saga: Saga) -> SagaDefinition | None:
        """The definition the saga started on; parks the saga if it is not registered."""
        try:
            return self.registry.get(saga.definition, saga.definition_version)
        except UnknownSagaDefinitionError:
            saga.park(f"definition {saga.definition} v{saga.definition_version} is not registered")
            return None

    # --- commands -----------------------------------------------------------------------------

    def _saga(self, saga_id: UUID) -> Saga:
        return self._load(Saga, saga_id, SagaNotFoundError(saga_id))

    def start(self, cmd: StartSaga) -> UUID:
        """Start a saga on the newest version of its definition; idempotent by ``saga_id``.

        The same id with the same definition and data returns at once; with others,
        ``IdempotencyKeyReusedError``.
        """
        definition = self.registry.latest(cmd.definition)
        outer = current_context()
        correlation = cmd.correlation_id or (outer.correlation_id if outer else str(cmd.saga_id))

        def attempt() -> UUID:
            if self._exists(cmd.saga_id):
                existing = self._saga(cmd.saga_id)
                if existing.definition != cmd.definition or existing.data != cmd.data:
                    msg = f"saga {cmd.saga_id} exists with another definition or data"
                    raise IdempotencyKeyReusedError(msg)
                return cmd.saga_id
            saga = Saga.start(
                saga_id=cmd.saga_id,
                definition=definition,
                data=cmd.data,
                subject=cmd.subject,
                correlation_id=correlation,
                now=self.clock.now(),
            )
            with command_context(correlation):
                self.save(saga)
            return saga.id

        return self._run(attempt, writes=[cmd.saga_id])

    def _change(self, saga_id: UUID, decide: Callable[[Saga, SagaDefinition], T], cause: str) -> T:
        """Load, decide, save (retried on conflict), in the saga's correlation."""

        def attempt() -> T:
            saga = self._saga(saga_id)
            with command_context(saga.correlation_id, cause):
                definition = self._definition_of(saga)
                if definition is None:
                    self.save(saga)
                    missing = f"{saga.definition} v{saga.definition_version}"
                    raise UnknownSagaDefinitionError(missing)
                result = decide(saga, definition)
                self.save(saga)
                return result

        return self._run(attempt, writes=[saga_id])

    def deliver_reply(self, reply: Reply) -> str:
        """Hand a participant's late answer (a webhook, say) straight to its saga.

        Returns what became of it (see :meth:`Saga.receive`); duplicates change nothing.
        """
        return self._change(
            reply.key.saga_id,
            lambda saga, d: saga.receive(reply, d, self.clock.now()),
            f"reply:{reply.key}",
        )

    def fire_due_timers(
        self, now: datetime | None = None, owns: Callable[[UUID], bool] | None = None
    ) -> int:
        """Fire every timer due by ``now`` (the clock's time by default); returns how many acted.

        ``owns`` limits it to the sagas a worker owns. Safe to run concurrently and
        repeatedly: a timer acts only if its saga still waits for it.
        """
        moment = now if now is not None else self.clock.now()
        fired = 0
        query = ViewQuery(at_most={"timer_at": instant(moment)}, order_by="timer_at")
        due = self._find(SagaProjection.name, query, fresh=True)
        for doc in due:
            saga_id, token = UUID(doc["saga_id"]), str(doc["timer_token"])
            if owns is not None and not owns(saga_id):
                continue

            def fire(saga: Saga, definition: SagaDefinition, token: str = token) -> bool:
                return saga.fire_timer(token, definition, moment)

            try:
                fired += int(self._change(saga_id, fire, f"timer:{token}"))
            except UnknownSagaDefinitionError:
                continue  # parked for an operator (recorded by _change)
        return fired

    def next_timer(self) -> datetime | None:
        """When the soonest running timer is due, if any runs."""
        soonest = self._find(
            SagaProjection.name, ViewQuery(order_by="timer_at", limit=1), fresh=True
        )
        at = soonest[0]["timer_at"] if soonest else None
        return None if at is None else parse_instant(at)

    def retry_step(self, cmd: RetrySagaStep) -> None:
        """Operator: send the step a stuck saga is at again."""
        self._change(
            cmd.saga_id,
            lambda saga, d: saga.retry_step(d, cmd.by, cmd.reason, self.clock.now()),
            f"operator:{cmd.by}",
        )

    def skip_step(self, cmd: SkipSagaStep) -> None:
        """Operator: count the stuck step as done by hand, and go on."""
        self._change(
            cmd.saga_id,
            lambda saga, d: saga.skip_step(d, cmd.by, cmd.reason, self.clock.now()),
            f"operator:{cmd.by}",
        )

    def compensate(self, cmd: CompensateSaga) -> None:
        """Operator: undo what the saga did so far (refused past its pivot)."""
        self._change(
            cmd.saga_id,
            lambda saga, d: saga.force_compensation(d, cmd.by, cmd.reason, self.clock.now()),
            f"operator:{cmd.by}",
        )

    def resolve(self, cmd: ResolveSaga) -> None:
        """Operator: mark a stuck saga as ended by hand."""
        self._change(
            cmd.saga_id,
            lambda saga, _: saga.resolve(SagaStatus(cmd.outcome), cmd.by, cmd.reason),
            f"operator:{cmd.by}",
        )

    # --- queries ------------------------------------------------------------------------------

    def get(self, saga_id: UUID) -> SagaView:
        """One saga in full, with its timeline; ``SagaNotFoundError`` if there is none."""
        saga = self._saga(saga_id)
        return SagaView.of(saga, self.events.get(saga_id))

    def find(self, saga_id: UUID) -> SagaView | None:
        """One saga in full, or ``None``."""
        try:
            return self.get(saga_id)
        except SagaNotFoundError:
            return None

    def find_aggregate(self, saga_id: UUID) -> Saga | None:
        """The saga aggregate, or ``None``: no timeline is read (cheaper than :meth:`find`)."""
        try:
            return self._saga(saga_id)
        except SagaNotFoundError:
            return None

    def aggregate(self, saga_id: UUID) -> Saga:
        """The saga aggregate itself, rebuilt from its events."""
        return self._saga(saga_id)

    def list(
        self,
        status: SagaStatus | None = None,
        definition: str | None = None,
        subject: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[SagaSummary]:
        """Sagas, newest first, filtered by status, definition and subject."""
        equal = {"status": status, "definition": definition, "subject": subject}
        query = ViewQuery(
            equal={field: str(value) for field, value in equal.items() if value is not None},
            order_by="started_at",
            descending=True,
            limit=max(1, min(limit, 1000)),
            offset=max(0, offset),
        )
        return [SagaProjection.summary(doc) for doc in self._find(SagaProjection.name, query)]

    def statistics(self) -> SagaStatistics:
        """Counts by status and definition, and of retries, timeouts and compensations."""
        by = ("definition", "status")
        tallies = self._query(
            lambda: self.views.tally(SagaProjection.name, by, SagaProjection.TROUBLE)
        )
        return SagaProjection.statistics(tallies)


class SagaDispatcher(_Processor):
    """Sends the sagas' commands to their participants and records the replies."""

    name = "SagaDispatcher"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        participants: Participants,
        **options: Unpack[ServiceOptions],
    ) -> None:
        super().__init__(env, **options)
        self.participants = participants
        self.topics = [get_topic(Saga.StepDispatched), get_topic(Saga.CompensationDispatched)]

    def saga_of(self, domain_event: DomainEventProtocol[UUID]) -> UUID | None:
        if isinstance(domain_event, Saga.StepDispatched | Saga.CompensationDispatched):
            return domain_event.originator_id
        return None

    def held_writes(self) -> HeldWrites:
        return HeldWrites(self.participants.writes_to)

    def reads_for(self, domain_event: DomainEventProtocol[UUID]) -> UUID | None:
        if isinstance(domain_event, Saga.StepDispatched | Saga.CompensationDispatched):
            return StepExchange.id_for(domain_event.key)
        return None

    def reads_elsewhere(
        self, domain_event: DomainEventProtocol[UUID]
    ) -> Iterable[tuple[CommerceApplication, UUID]]:
        """What the participants say performing the command will load."""
        if isinstance(domain_event, Saga.StepDispatched | Saga.CompensationDispatched):
            return self.participants.reads(command_of(domain_event))
        return ()

    def policy(
        self,
        domain_event: DomainEventProtocol[UUID],
        processing_event: ProcessingEvent[UUID],
    ) -> None:
        if not isinstance(domain_event, Saga.StepDispatched | Saga.CompensationDispatched):
            return
        command = command_of(domain_event)
        exchange_id = StepExchange.id_for(command.idempotency_key)
        try:
            exchange = self._load(StepExchange, exchange_id, SagaNotFoundError(exchange_id))
        except SagaNotFoundError:
            exchange = StepExchange.open(command.idempotency_key, command.action)
        context = {"saga_id": str(command.saga_id), "action": command.action}
        # The participants' own writes continue the saga's correlation, caused by this step.
        attributes = {
            "saga.id": str(command.saga_id),
            "saga.step": command.step,
            "saga.phase": command.phase.value,
            "saga.attempt": command.attempt,
            "saga.delivery": command.delivery,
            "saga.key": command.idempotency_key,
        }
        with (
            command_context(command.correlation_id, command.idempotency_key, str(command.saga_id)),
            span(f"saga.{command.action}", attributes) as current,
        ):
            outcome = "succeeded"
            try:
                result = self.participants.handle(command)
                reply = Reply.success(command.key, result)
            except ReplyPendingError:
                log.info("participant will answer later", extra=context)
                exchange.accept(command.delivery)
                outcome = "pending"
            except Exception as error:  # noqa: BLE001 - every failure is a reply the saga judges
                log.info("participant failed: %s", error, extra=context)
                exchange.reply(Reply.failure(command.key, error), command.delivery)
                outcome = f"failed: {type(error).__name__}"
            else:
                exchange.reply(reply, command.delivery)
            if current is not None:
                current.set_attribute("saga.outcome", outcome)
        collect(processing_event, exchange)

    def replies(self, key: StepKey) -> list[Reply]:
        """Every reply recorded for one command, oldest first."""
        exchange_id = StepExchange.id_for(str(key))
        return [
            Reply.from_event(e.reply)
            for e in self.events.get(exchange_id)
            if isinstance(e, StepExchange.Replied)
        ]


class SagaEngine:
    """Runs the saga machinery in this process.

    ``leaders`` are the applications whose events start sagas, by name (the orders
    service, for the fulfilment saga). ``run_until_idle()`` moves every log along
    until nothing is left to do; ``start()`` does the same in a background thread,
    waking every ``poll_interval`` seconds to look for new messages and due timers.

    Sagas fall into ``partitions`` by id (fixed for a deployment). An engine works on
    the partitions it owns (all of them, unless told otherwise with :meth:`own`), so
    several workers share the load and never work on one saga at once; each partition
    is tracked on its own, so its next owner resumes where the last one stopped.

    With ``threads`` above one, a pass works on that many owned partitions at once, each
    on a thread of its own: a saga is in one partition, so no two threads ever work on
    one saga, and the store's round trips of one partition overlap another's work.
    """

    def __init__(
        self,
        sagas: Sagas,
        dispatcher: SagaDispatcher,
        *,
        leaders: Mapping[str, Application[UUID]] | None = None,
        poll_interval: float = 0.2,
        partitions: int = 1,
        threads: int = 1,
    ) -> None:
        missing = sagas.registry.actions() - dispatcher.participants.actions()
        if missing:
            msg = f"no participant performs {', '.join(sorted(missing))}: configure its port"
            raise SagaConfigurationError(msg)
        if not 0 < poll_interval <= 60:
            raise SagaConfigurationError("poll_interval must be between 0 and 60 seconds")
        if not 1 <= partitions <= 1024:
            raise SagaConfigurationError("partitions must be between 1 and 1024")
        if not 1 <= threads <= 64:
            raise SagaConfigurationError("threads must be between 1 and 64")
        self.sagas = sagas
        self.dispatcher = dispatcher
        self.poll_interval = poll_interval
        self.partitions = partitions
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._owned = frozenset(range(partitions))
        self._leaders = dict(leaders or {})
        for name, app in self._leaders.items():
            sagas.follow_partitions(name, app.notification_log, partitions)
        sagas.follow_partitions(dispatcher.name, dispatcher.notification_log, partitions)
        dispatcher.follow_partitions(sagas.name, sagas.notification_log, partitions)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def owned(self) -> frozenset[int]:
        """The partitions this engine works on."""
        return self._owned

    def own(self, partitions: Iterable[int]) -> None:
        """Work on these partitions from the next pass on (a worker's leases decide them)."""
        chosen = frozenset(partitions)
        if not chosen <= set(range(self.partitions)):
            raise SagaConfigurationError(f"partitions are 0..{self.partitions - 1}")
        with self._lock:
            self._owned = chosen

    def owns(self, saga_id: UUID) -> bool:
        """Whether the saga falls in a partition this engine owns."""
        return partition_of(saga_id, self.partitions) in self._owned

    def run_once(self) -> int:
        """One pass over every owned partition's logs and due timers; returns what moved."""
        with self._lock:
            before = self.sagas.processed + self.dispatcher.processed
            owned = sorted(self._owned)
            if self.threads == 1 or len(owned) == 1:
                for partition in owned:
                    self._pass(partition)
            else:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.threads, "saga-partition")
                passes = [self._pool.submit(self._pass, partition) for partition in owned]
                # Every pass ends before this one returns (or the next pass could work on a
                # partition still being worked on); then the first failure is raised.
                wait(passes)
                for finished in passes:
                    finished.result()
            everything = len(self._owned) == self.partitions
            fired = self.sagas.fire_due_timers(owns=None if everything else self.owns)
            return self.sagas.processed + self.dispatcher.processed - before + fired

    def _pass(self, partition: int) -> None:
        """Move one partition's logs along: starts, then commands, then replies."""
        for name in self._leaders:
            self._pull(self.sagas, name, partition)
        self._pull(self.dispatcher, self.sagas.name, partition)
        self._pull(self.sagas, self.dispatcher.name, partition)

    def _pull(self, follower: _Processor, leader: str, partition: int) -> None:
        try:
            follower.pull_partition(leader, partition, self.partitions)
        except RecordConflictError:
            # A command changed the same saga meanwhile (or another worker took the
            # message); nothing was recorded for it here, so the next pass sees it again.
            log.info("conflict while processing %s; will retry", leader)

    def run_until_idle(self, max_rounds: int = 100_000) -> int:
        """Run passes until one moves nothing; returns how many messages moved in all."""
        moved = 0
        for _ in range(max_rounds):
            step = self.run_once()
            if step == 0:
                return moved
            moved += step
        msg = f"still busy after {max_rounds} passes"
        raise SagaConfigurationError(msg)

    def start(self) -> None:
        """Run in a background thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="saga-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread (waiting for the pass under way) and the pass threads."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                moved = self.run_once()
            except Exception:
                log.exception("saga engine pass failed; retrying")
                moved = 0
            if moved == 0:
                self._stop.wait(self.poll_interval)

    def __enter__(self) -> SagaEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""The service layer's common ground: retries, error translation and catch-up read models.

Every application service (``Inventory``, ``Orders``, ``Carts``) is an
``eventsourcing`` ``Application``. This module gives them one way to run a command
(load, decide, save as one atomic write, retry on an optimistic-concurrency
conflict with bounded, jittered backoff) and one way to keep a read model in step
with the application's notification log.
"""

from __future__ import annotations

import contextlib
import copy
import random
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    InterfaceError,
    OperationalError,
    RecordConflictError,
    Recording,
    StoredEvent,
)

from suuupra_commerce.context import CommandContext, current_context
from suuupra_commerce.errors import ConcurrencyConflictError, NotFoundError, StoreUnavailableError
from suuupra_commerce.group_commit import GroupCommitEventStore
from suuupra_commerce.ports import Clock, SystemClock
from suuupra_commerce.projections import Doc, InMemoryViewStore, Projection, ViewQuery, ViewStore

__all__ = [
    "BatchReads",
    "CommerceApplication",
    "HeldWrites",
    "Progress",
    "RecorderHook",
    "RetryPolicy",
    "ServiceOptions",
    "StripedLocks",
    "collect",
    "read_one_by_one",
]

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
R = TypeVar("R", bound=ApplicationRecorder)

Progress = Callable[[int, int], None]
"""Told ``(done, total)`` as a rebuild goes: notification ids folded so far, and the last one."""

BatchReads = Callable[
    [ApplicationRecorder, Mapping[UUID, int]], Mapping[UUID, Sequence[StoredEvent]]
]
"""Reads the stored events of many aggregates, each after the version given for it.

An adapter may do it in one round trip (``read_postgres_events_after``); aggregates with
no such events may be left out of the answer.
"""


def read_one_by_one(
    recorder: ApplicationRecorder, after: Mapping[UUID, int]
) -> dict[UUID, Sequence[StoredEvent]]:
    """:data:`BatchReads` with a query per aggregate (any recorder)."""
    return {i: recorder.select_events(i, gt=version) for i, version in after.items()}


RecorderHook = Callable[[str, ApplicationRecorder], ApplicationRecorder]
"""Receives each application's name and recorder, returns the recorder it will use.

For fault injection in tests (the saga crash harness wraps every recorder with one);
a hook must return a recorder of the same kind it was given.
"""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, and how patiently, a command is retried after losing a concurrency race.

    Delays grow from ``initial_delay`` by ``multiplier`` up to ``max_delay``; each
    sleep is drawn uniformly from zero to that bound ("full jitter") so that racing
    writers spread out instead of colliding again.
    """

    max_attempts: int = 30
    initial_delay: float = 0.001
    multiplier: float = 2.0
    max_delay: float = 0.1

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial_delay < 0 or self.multiplier < 1:
            msg = "RetryPolicy needs max_attempts >= 1, initial_delay >= 0, multiplier >= 1"
            raise ValueError(msg)

    def delay(self, attempt: int) -> float:
        """The sleep before retry number ``attempt`` (1-based)."""
        bound = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        return random.uniform(0, bound)  # noqa: S311 - jitter, not cryptography


class StripedLocks:
    """A fixed set of locks that serialises writers of the same aggregate within one process.

    Optimistic concurrency keeps writers from losing updates; these locks keep
    threads of one process from wasting attempts on each other, so a hot aggregate
    (one popular SKU) makes progress at the store's pace instead of exhausting its
    retries. Ids map to a stripe by hash; stripes are taken in ascending order, so
    commands that lock several aggregates cannot deadlock.
    """

    def __init__(self, stripes: int = 1024) -> None:
        self._locks = [threading.RLock() for _ in range(stripes)]

    @contextmanager
    def hold(self, ids: Iterable[object]) -> Iterator[None]:
        """Hold the stripes of ``ids`` for the duration of the ``with`` block."""
        held = [self._locks[i] for i in sorted({hash(i) % len(self._locks) for i in ids})]
        for lock in held:
            lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(held):
                lock.release()


def collect(
    processing_event: ProcessingEvent[UUID],
    *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
) -> None:
    """Collect the aggregates' new events into ``processing_event``.

    As ``ProcessingEvent.collect_events``, which asks two runtime-checkable Protocols
    about each object (about a twentieth of a saga step); the library's aggregates are
    ``Aggregate`` instances, and anything else is handed to it.
    """
    for obj in objs:
        if isinstance(obj, Aggregate):
            processing_event.events.extend(obj.collect_events())
            processing_event.aggregates[obj.id] = obj
        elif obj is not None:
            processing_event.collect_events(obj)


def _replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """Apply ``events`` to ``aggregate`` in turn (``None``: from the first).

    eventsourcing's ``project_aggregate`` does the same after asserting each event against
    a runtime-checkable Protocol, a check that cost about a tenth of a saga step; the
    events of the library's aggregates all have ``mutate``.
    """
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


class _Held:
    """What one thread holds for an application: the new events of its saves, and its reads.

    An aggregate is read from the store once while held: a command reads it again from
    here (the participants read an order, then the orders service changes it). Held
    writes assume nobody else writes these aggregates meanwhile, and recording them
    checks it; a command that only reads one reads it as it was at most one group ago.
    """

    __slots__ = ("reads", "writes")

    def __init__(self) -> None:
        self.writes = ProcessingEvent[UUID]()
        self.reads: dict[UUID, object] = {}

    def kept(self, aggregate_id: UUID) -> object | None:
        """The aggregate as this thread last saved or read it, if it has."""
        saved = self.writes.aggregates.get(aggregate_id)
        return saved if saved is not None else self.reads.get(aggregate_id)


class HeldWrites:
    """Holds one thread's saves on some applications, to record them together.

    Inside ``with HeldWrites(apps) as held:``, a save that this thread makes on one of
    ``apps`` records nothing: the new events are kept, and this thread's loads of the
    aggregates they belong to start from them (each load a copy, so a command that fails
    half-way changes nothing held). An aggregate this thread reads is read from the store
    once while held. :meth:`record` records what each application holds
    in one transaction of its own, in the order the applications were given; leaving
    the block forgets whatever was not recorded. Other threads see the changes once
    recorded.

    For a processor that commits the effects of many messages at once (the saga
    dispatcher): the changes a group of commands made to an application become one
    transaction instead of one per command. If another writer changed one of the
    aggregates meanwhile, :meth:`record` raises ``RecordConflictError`` and nothing of
    that application's held writes is recorded; the caller runs the commands again,
    :meth:`paused`, so that each records its own writes (and retries its own conflicts).
    """

    def __init__(self, apps: Iterable[CommerceApplication]) -> None:
        self.apps = tuple(apps)

    def __enter__(self) -> HeldWrites:
        for app in self.apps:
            app._hold_writes()
        return self

    def __exit__(self, *exc: object) -> None:
        for app in self.apps:
            app._drop_held()

    def record(self) -> None:
        """Record each application's held writes in one transaction; hold on afresh."""
        for app in self.apps:
            app._record_held()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Forget what is held, and let this thread's saves through until the block ends."""
        for app in self.apps:
            app._drop_held()
        try:
            yield
        finally:
            for app in self.apps:
                app._hold_writes()


class ServiceOptions(TypedDict, total=False):
    """The keywords every application service takes, passed on to :class:`CommerceApplication`.

    ``clock`` (the system clock), ``retry`` (how commands retry lost races),
    ``recorder_hook`` (wraps the recorder: fault injection in tests), ``views`` (where the
    read models live; in memory by default), ``batch_reads`` (reads many aggregates in one
    round trip; one by one by default).
    """

    clock: Clock | None
    retry: RetryPolicy | None
    recorder_hook: RecorderHook | None
    views: ViewStore | None
    batch_reads: BatchReads | None


class CommerceApplication(Application[UUID]):
    """Base of the library's application services."""

    #: How many notifications a read model reads per round trip when catching up.
    catch_up_batch: ClassVar[int] = 500

    #: The same when rebuilding: larger batches, fewer commits.
    rebuild_batch: ClassVar[int] = 5000

    #: Whether a query folds what was committed before answering (read-your-writes). Off
    #: when projection workers fold (``COMMERCE_VIEWS_FOLD=worker``): queries then read the
    #: views as far as the workers got. Sweeps and the saga engine's timers always fold.
    fold_on_query: bool = True

    #: How many times a read (a load, a query) is tried when the store's connection fails.
    read_attempts: ClassVar[int] = 3

    #: The largest section of the notification log a follower may read at once.
    log_section_size = 1000

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        recorder_hook: RecorderHook | None = None,
        views: ViewStore | None = None,
        batch_reads: BatchReads | None = None,
    ) -> None:
        self._recorder_hook = recorder_hook
        if batch_reads is not None:
            self.batch_reads = batch_reads
        super().__init__(env=dict(env) if env is not None else None)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.retry = retry if retry is not None else RetryPolicy()
        self.views: ViewStore = views if views is not None else InMemoryViewStore()
        self._projections: list[Projection] = []
        self._catch_up_lock = threading.RLock()
        self._writers = StripedLocks()
        self._held = threading.local()
        self._prefetch = threading.local()

    def construct_recorder(self) -> ApplicationRecorder:
        return self._hooked(super().construct_recorder())

    def construct_event_store(self) -> GroupCommitEventStore:
        """The event store: concurrent saves of this process are recorded in groups."""
        return GroupCommitEventStore(mapper=self.mapper, recorder=self.recorder)

    def _hooked(self, recorder: R) -> R:
        hook = self._recorder_hook
        if hook is None:
            return recorder
        hooked = hook(self.name, recorder)
        if not isinstance(hooked, type(recorder)):
            msg = f"recorder hook returned {type(hooked).__name__} for {type(recorder).__name__}"
            raise TypeError(msg)
        return hooked

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Record the events, each stamped with the correlation and causation ids at hand.

        The ids go in an extra ``metadata`` attribute that replay ignores (event handlers
        take only the attributes they name), so they change no aggregate's state.
        """
        self._stamp(processing_event.events, current_context() or CommandContext.new())
        return super()._record(processing_event)

    @staticmethod
    def _stamp(events: Iterable[DomainEventProtocol[UUID]], context: CommandContext) -> None:
        """Stamp the events not stamped yet with the context's correlation and causation ids."""
        metadata = context.metadata()
        for domain_event in events:
            if "metadata" not in vars(domain_event):
                object.__setattr__(domain_event, "metadata", metadata)

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """Record the aggregates' new events in one transaction (none: nothing is recorded).

        While this thread holds its writes (:class:`HeldWrites`), the events are kept, with
        the aggregates, to be recorded together with the thread's other held writes.
        """
        processing_event = ProcessingEvent[UUID]()
        collect(processing_event, *objs)
        processing_event.saved_kwargs.update(kwargs)
        held = self._holding()
        if held is not None:
            self._stamp(processing_event.events, current_context() or CommandContext.new())
            held.writes.events.extend(processing_event.events)
            held.writes.aggregates.update(processing_event.aggregates)
            return []
        if not processing_event.events:
            return []
        return self._commit(processing_event)

    def _commit(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Record a processing event's events (and tracking), then snapshot and notify."""
        recordings = self._record(processing_event)
        self._fetched_recorded(processing_event.aggregates)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _holding(self) -> _Held | None:
        """What this thread holds for this application, if it holds its writes."""
        held: _Held | None = getattr(self._held, "state", None)
        return held

    def _hold_writes(self) -> None:
        if self._holding() is not None:
            msg = f"this thread holds the writes of {self.name} already"
            raise RuntimeError(msg)
        self._held.state = _Held()

    def _record_held(self) -> None:
        """Record what this thread's saves held, in one transaction; hold on afresh.

        The held writes are let go whether or not they were recorded: after a failure the
        caller runs their commands again.
        """
        held = self._holding()
        assert held is not None  # only HeldWrites calls this, inside its block
        self._held.state = _Held()
        if held.writes.events:
            self._commit(held.writes)

    def _drop_held(self) -> None:
        self._held.state = None

    # --- commands ----------------------------------------------------------------------------

    def _run(self, decide_and_save: Callable[[], T], writes: Iterable[UUID] = ()) -> T:
        """Run ``decide_and_save`` (which loads, decides and saves once), retrying conflicts.

        ``decide_and_save`` must be safe to run again from scratch: it reloads what it
        reads on every attempt. ``writes`` names the aggregates it changes: threads of
        this process that change the same aggregate take turns, so only writers in
        other processes can make it lose a race. After ``retry.max_attempts`` lost races
        it raises ``ConcurrencyConflictError``; the losing attempts wrote nothing.
        """
        ids = list(writes)
        attempt = 1
        while True:
            try:
                with self._writers.hold(ids), self._store_errors(), self._reading_together(ids):
                    return decide_and_save()
            except RecordConflictError as conflict:
                self._forget_fetched(ids)
                if attempt >= self.retry.max_attempts:
                    msg = f"gave up after {attempt} attempts lost to concurrent writers"
                    raise ConcurrencyConflictError(msg) from conflict
                time.sleep(self.retry.delay(attempt))
                attempt += 1

    @contextmanager
    def _reading_together(self, ids: Collection[UUID]) -> Iterator[None]:
        """A command that changes several aggregates reads them in one go (:meth:`prefetched`).

        Not inside a processor's section or held writes, which read their own way.
        """
        if len(ids) < 2 or self._fetched() is not None or self._holding() is not None:
            yield
            return
        with self.prefetched(ids):
            yield

    @contextmanager
    def _store_errors(self) -> Iterator[None]:
        """Translate the store's connection failures into ``StoreUnavailableError``.

        A command that fails so may or may not have been recorded: commands are
        idempotent by their keys, so the caller may send it again; nothing here retries it.
        """
        try:
            yield
        except (OperationalError, InterfaceError) as error:
            msg = f"the {self.name} store is unavailable: {error}"
            raise StoreUnavailableError(msg) from error

    def _read(self, ask: Callable[[], T]) -> T:
        """Run the read ``ask``; a lost connection is retried (reads are safe to repeat)."""
        attempt = 1
        while True:
            try:
                with self._store_errors():
                    return ask()
            except StoreUnavailableError:
                if attempt >= self.read_attempts:
                    raise
                time.sleep(self.retry.delay(attempt))
                attempt += 1

    def _load(self, cls: type[A], aggregate_id: UUID, not_found: NotFoundError) -> A:
        """Load an aggregate of type ``cls``; raise ``not_found`` if there is none.

        Loading takes the aggregate's writer lock (re-entrant, so a command already
        holding it goes on): with the aggregate cache on, a load fast-forwards the cached
        object in place, and no other thread may copy it half-way through.
        """

        held = self._holding()
        kept = None if held is None else held.kept(aggregate_id)
        if kept is not None:
            # A copy: a command that changes it and then fails must not change what is held.
            aggregate: object = copy.deepcopy(kept)
            if not isinstance(aggregate, cls):
                raise not_found
            return aggregate

        def get() -> object:
            with self._writers.hold([aggregate_id]):
                fetched = self._fetched()
                if fetched is not None and aggregate_id in fetched:
                    # Read with the others of its section; others may fast-forward it in
                    # place once cached, hence the copy under the writer lock.
                    found = fetched[aggregate_id]
                    if found is None:
                        raise AggregateNotFoundError(aggregate_id)
                    return copy.deepcopy(found)
                return self.repository.get(aggregate_id, projector_func=_replay)

        try:
            aggregate = self._read(get)
        except AggregateNotFoundError:
            raise not_found from None
        if not isinstance(aggregate, cls):
            raise not_found
        fetched = self._fetched()
        if held is not None and (fetched is None or aggregate_id not in fetched):
            # Kept for the next load (what was read for the section is kept there already).
            held.reads[aggregate_id] = copy.deepcopy(aggregate)
        return aggregate

    def _exists(self, aggregate_id: UUID) -> bool:
        held = self._holding()
        if held is not None and held.kept(aggregate_id) is not None:
            return True
        fetched = self._fetched()
        if fetched is not None and aggregate_id in fetched:
            return fetched[aggregate_id] is not None

        def exists() -> bool:
            with self._writers.hold([aggregate_id]):
                return aggregate_id in self.repository

        return self._read(exists)

    # --- reading many aggregates at once ----------------------------------------------------

    #: How :meth:`prefetched` reads the aggregates' new events (an adapter's, or one by one).
    batch_reads: BatchReads = staticmethod(read_one_by_one)

    def _fetched(self) -> dict[UUID, Any] | None:
        fetched: dict[UUID, Any] | None = getattr(self._prefetch, "aggregates", None)
        return fetched

    @contextmanager
    def prefetched(self, ids: Collection[UUID]) -> Iterator[None]:
        """Read the aggregates ``ids`` in one go; this thread's loads of them use that read.

        Each aggregate is read from its cached copy on, as a load would (one round trip
        for all, with a :data:`BatchReads` that can). Loads in the block see an aggregate
        as it was read or as this thread last recorded it, not later writes by others: a
        command that writes one is refused on recording if another writer got in first,
        as after any load, and its retry reads the aggregate afresh.
        """
        self._prefetch.aggregates = self._read(lambda: self._read_many(ids)) if ids else {}
        try:
            yield
        finally:
            self._prefetch.aggregates = None

    def _read_many(self, ids: Collection[UUID]) -> dict[UUID, Any]:
        cache = self.repository.cache
        after: dict[UUID, int] = {}
        fetched: dict[UUID, Any] = {}
        for aggregate_id in ids:
            cached = None
            if cache is not None:
                with self._writers.hold([aggregate_id]), contextlib.suppress(KeyError):
                    cached = cache.get(aggregate_id)
                    after[aggregate_id] = cached.version
            fetched[aggregate_id] = cached
            after.setdefault(aggregate_id, 0)
        stored = self.batch_reads(self.recorder, after)
        for aggregate_id, new in stored.items():
            if not new or aggregate_id not in fetched:
                continue  # the cached copy is current (loads copy it under its writer lock)
            with self._writers.hold([aggregate_id]):
                # The events go onto a copy: the cached object is only ever changed in place
                # by a load that holds this lock and fast-forwards it from its own version.
                base = fetched[aggregate_id]
                start = None if base is None else copy.deepcopy(base)
                # Another load may have fast-forwarded the cached object since it was read.
                known = 0 if start is None else start.version
                events = [e for e in new if e.originator_version > known]
                aggregate = _replay(start, map(self.mapper.to_domain_event, events))
                fetched[aggregate_id] = aggregate
                if cache is not None and aggregate is not None:
                    cache.put(aggregate_id, aggregate)
        return fetched

    def _fetched_recorded(self, aggregates: Mapping[UUID, Any]) -> None:
        """Aggregates this thread just recorded: later loads in the block start from them."""
        fetched = self._fetched()
        if fetched is None:
            return
        cache = self.repository.cache
        for aggregate_id, aggregate in aggregates.items():
            if aggregate_id in fetched:
                with self._writers.hold([aggregate_id]):
                    fetched[aggregate_id] = aggregate
                    if cache is not None:
                        cache.put(aggregate_id, aggregate)

    def _forget_fetched(self, ids: Iterable[UUID]) -> None:
        """Aggregates found stale (a commit lost a race): later loads read them afresh."""
        fetched = self._fetched()
        if fetched is not None:
            for aggregate_id in ids:
                fetched.pop(aggregate_id, None)

    # --- read models ------------------------------------------------------------------------

    def register_projection(self, projection: Projection) -> None:
        """Fold ``projection`` from this service's events too (a host's own read model).

        Its documents are in :attr:`views` under ``projection.name``; call :meth:`catch_up`
        (or query through the service) before reading them.
        """
        self.views.prepare(projection)
        self._projections.append(projection)

    @property
    def projections(self) -> tuple[Projection, ...]:
        """The read models this service folds from its events."""
        return tuple(self._projections)

    def catch_up(self) -> int:
        """Fold every committed event into the read models; returns how many this call folded.

        Several processes may catch the same store up at once: each batch commits only
        if no other folded it first, so every event changes each view exactly once.
        """
        with self._catch_up_lock:
            return sum(self._catch_up_one(p) for p in self._projections)

    def rebuild(self, progress: Progress | None = None) -> int:
        """Forget the read models and fold them again from the first event; returns events folded.

        ``progress(done, total)`` is called after each batch (``total`` is the log's
        last notification id, so ``done / total`` is the share folded). Readers in
        other processes see partly rebuilt views until it ends: rebuild at a quiet time.
        """
        with self._catch_up_lock:
            total = self.recorder.max_notification_id() or 0
            folded = 0
            for projection in self._projections:
                self.views.reset(projection.name)
                folded += self._catch_up_one(projection, progress, total, self.rebuild_batch)
            return folded

    def _query(self, ask: Callable[[], T], *, fresh: bool = False) -> T:
        """Catch the read models up (unless workers fold them), then answer ``ask`` from them.

        ``fresh`` folds first whatever the mode: for sweeps and timers, which act on what
        the views say and must not wait for a worker.
        """

        def caught_up_answer() -> T:
            if fresh or self.fold_on_query:
                self.catch_up()
            return ask()

        return self._read(caught_up_answer)

    def _find(self, projection: str, query: ViewQuery, *, fresh: bool = False) -> list[Doc]:
        """The documents of ``projection`` that ``query`` selects, after catching up."""
        return self._query(lambda: self.views.find(projection, query), fresh=fresh)

    def _catch_up_one(
        self,
        projection: Projection,
        progress: Progress | None = None,
        total: int = 0,
        batch: int | None = None,
    ) -> int:
        size = batch or self.catch_up_batch
        name = projection.name
        folded = 0
        while True:
            expected = self.views.position(name)
            notifications = self.recorder.select_notifications(
                start=expected, limit=size, inclusive_of_start=False
            )
            if not notifications:
                return folded
            keyed = [
                (projection.key(event), event)
                for event in map(self.mapper.to_domain_event, notifications)
            ]
            keys = {key for key, _ in keyed if key is not None}
            docs: dict[str, Doc | None] = dict(self.views.get_many(name, keys))
            for key, event in keyed:
                if key is not None:
                    docs[key] = projection.fold(docs.get(key), event)
            changes = {k: docs.get(k) for k in keys}
            last = notifications[-1].id
            if not self.views.commit(name, changes, expected=expected, position=last):
                continue  # another process folded from ``expected`` first: start from its position
            folded += len(notifications)
            if progress is not None:
                progress(last, max(total, last))
            if len(notifications) < size:
                return folded

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

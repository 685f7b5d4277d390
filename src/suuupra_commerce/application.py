"""The service layer's common ground: retries, error translation and catch-up read models.

Every application service (``Inventory``, ``Orders``, ``Carts``) is an
``eventsourcing`` ``Application``. This module gives them one way to run a command
(load, decide, save as one atomic write, retry on an optimistic-concurrency
conflict with bounded, jittered backoff) and one way to keep a read model in step
with the application's notification log.
"""

from __future__ import annotations

import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, RecordConflictError, Recording

from suuupra_commerce.context import CommandContext, current_context
from suuupra_commerce.errors import ConcurrencyConflictError, NotFoundError
from suuupra_commerce.ports import Clock, SystemClock

__all__ = ["CommerceApplication", "ReadModel", "RecorderHook", "RetryPolicy", "StripedLocks"]

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
R = TypeVar("R", bound=ApplicationRecorder)

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


class ReadModel(ABC):
    """A view folded from an application's events, in notification order.

    Subclasses implement :meth:`apply`. The owning application calls
    :meth:`CommerceApplication.catch_up` before answering a query, so a query
    always sees every event committed before it started (read-your-writes), and
    each event is applied exactly once: the model's ``position`` only moves forward.
    """

    def __init__(self) -> None:
        self.position = 0

    @abstractmethod
    def apply(self, event: DomainEventProtocol[UUID]) -> None:
        """Fold one event into the view."""


class CommerceApplication(Application[UUID]):
    """Base of the library's application services."""

    #: How many notifications a read model reads per round trip when catching up.
    catch_up_batch: ClassVar[int] = 500

    #: The largest section of the notification log a follower may read at once.
    log_section_size = 1000

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        recorder_hook: RecorderHook | None = None,
    ) -> None:
        self._recorder_hook = recorder_hook
        super().__init__(env=dict(env) if env is not None else None)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.retry = retry if retry is not None else RetryPolicy()
        self._read_models: list[ReadModel] = []
        self._catch_up_lock = threading.RLock()
        self._writers = StripedLocks()

    def construct_recorder(self) -> ApplicationRecorder:
        return self._hooked(super().construct_recorder())

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
        context = current_context() or CommandContext.new()
        metadata = context.metadata()
        for domain_event in processing_event.events:
            if "metadata" not in vars(domain_event):
                object.__setattr__(domain_event, "metadata", metadata)
        return super()._record(processing_event)

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
                with self._writers.hold(ids):
                    return decide_and_save()
            except RecordConflictError as conflict:
                if attempt >= self.retry.max_attempts:
                    msg = f"gave up after {attempt} attempts lost to concurrent writers"
                    raise ConcurrencyConflictError(msg) from conflict
                time.sleep(self.retry.delay(attempt))
                attempt += 1

    def _load(self, cls: type[A], aggregate_id: UUID, not_found: NotFoundError) -> A:
        """Load an aggregate of type ``cls``; raise ``not_found`` if there is none.

        Loading takes the aggregate's writer lock (re-entrant, so a command already
        holding it goes on): with the aggregate cache on, a load fast-forwards the cached
        object in place, and no other thread may copy it half-way through.
        """
        try:
            with self._writers.hold([aggregate_id]):
                aggregate: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise not_found from None
        if not isinstance(aggregate, cls):
            raise not_found
        return aggregate

    def _exists(self, aggregate_id: UUID) -> bool:
        with self._writers.hold([aggregate_id]):
            return aggregate_id in self.repository

    # --- read models ------------------------------------------------------------------------

    def _register_read_model(self, model: ReadModel) -> None:
        self._read_models.append(model)

    def catch_up(self) -> int:
        """Bring every read model up to the last committed event; returns how many were applied."""
        applied = 0
        with self._catch_up_lock:
            for model in self._read_models:
                applied += self._catch_up_one(model)
        return applied

    def _query(self, ask: Callable[[], T]) -> T:
        """Catch the read models up, then answer ``ask`` from them, with no fold in between.

        Folding mutates a read model, so a query reads it under the same lock: it never
        sees a model half-way through an event (or a dict changing size under iteration).
        """
        with self._catch_up_lock:
            self.catch_up()
            return ask()

    def _catch_up_one(self, model: ReadModel) -> int:
        applied = 0
        while True:
            notifications = self.recorder.select_notifications(
                start=model.position, limit=self.catch_up_batch, inclusive_of_start=False
            )
            for notification in notifications:
                model.apply(self.mapper.to_domain_event(notification))
                model.position = notification.id
                applied += 1
            if len(notifications) < self.catch_up_batch:
                return applied

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

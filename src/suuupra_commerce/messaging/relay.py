"""The outbox relay: publishes an application's recorded events to the bus, from a tracked position.

The application's notification log *is* the outbox: an event is in it exactly when
the command that recorded it committed, so there is no second write to lose. The
relay reads the log after its saved position, maps each event to its integration
event, publishes them, and only then saves the new position. A crash anywhere in
between loses nothing: the next run reads from the old position and publishes again,
with the same message ids (derived from the event), and consumers drop the
duplicates. Publishing is therefore at least once, and handling, with a
deduplicating consumer, effectively once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import InterfaceError, OperationalError

from suuupra_commerce.context import metadata_of
from suuupra_commerce.errors import AdapterError, InvalidInputError, StoreUnavailableError
from suuupra_commerce.messaging.envelope import Envelope, check_name
from suuupra_commerce.messaging.events import envelope_for
from suuupra_commerce.messaging.mapping import DEFAULT_MAPPING, EventMapping, MappingContext
from suuupra_commerce.messaging.ports import LogWaiter, MessageBus, RelayPositions
from suuupra_commerce.ports import Clock, SystemClock
from suuupra_commerce.values import derived_id

__all__ = ["OutboxRelay", "PollingWaiter", "message_id_for"]

log = logging.getLogger("suuupra_commerce.messaging.relay")


def message_id_for(source: str, originator_id: UUID | str, version: int, event_type: str) -> str:
    """The id of the message published for one event: the same on every republish.

    >>> from uuid import UUID
    >>> one = message_id_for("orders", UUID(int=1), 3, "commerce.order.confirmed")
    >>> one == message_id_for("orders", UUID(int=1), 3, "commerce.order.confirmed")
    True
    """
    return str(derived_id("integration-message", source, originator_id, version, event_type))


class PollingWaiter:
    """A :class:`LogWaiter` that just sleeps: for stores that cannot notify (SQLite, memory).

    ``interval`` caps each sleep, so a relay on a store without notifications sees a new
    event within that long; a host can also call :meth:`wake` after its own writes.
    """

    def __init__(self, interval: float = 0.5) -> None:
        if not 0 < interval <= 60:
            raise InvalidInputError("interval must be between 0 and 60 seconds")
        self.interval = interval
        self._woken = threading.Event()

    def wake(self) -> None:
        """End the current (or next) wait at once."""
        self._woken.set()

    def wait(self, timeout: float) -> bool:
        woken = self._woken.wait(min(timeout, self.interval))
        self._woken.clear()
        return woken

    def close(self) -> None:
        self._woken.set()


class OutboxRelay:
    """Publishes an application's integration events, at least once, in recorded order.

    ``name`` identifies the relay's saved position (default: the application's name); run
    one relay per name at a time (two would publish everything twice, harmlessly).

    >>> from suuupra_commerce.adapters.memory_messaging import (
    ...     InMemoryMessageBus, InMemoryRelayPositions)
    >>> from suuupra_commerce.inventory.service import Inventory
    >>> from suuupra_commerce.inventory.commands import RegisterItem
    >>> from suuupra_commerce.money import Money
    >>> inventory = Inventory({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    >>> _ = inventory.register(RegisterItem(sku="MUG-1", product_id="mug", name="Mug",
    ...     unit_price=Money("9.50", "USD"), initial_quantity=3, low_stock_threshold=5))
    >>> bus = InMemoryMessageBus()
    >>> relay = OutboxRelay(inventory, bus, InMemoryRelayPositions())
    >>> relay.run_until_caught_up()  # notifications read: registered, received, low stock
    3
    >>> print(*(d.envelope.type for d in bus.consumer("commerce.inventory", "g", "c").receive()))
    commerce.stock.low
    """

    def __init__(
        self,
        application: Application[UUID],
        bus: MessageBus,
        positions: RelayPositions,
        *,
        mapping: EventMapping = DEFAULT_MAPPING,
        name: str | None = None,
        batch_size: int = 200,
        clock: Clock | None = None,
    ) -> None:
        if not 1 <= batch_size <= 10_000:
            raise InvalidInputError("batch_size must be between 1 and 10000")
        self.application = application
        self.bus = bus
        self.positions = positions
        self.mapping = mapping
        self.name = check_name(name or application.name.lower(), "relay name")
        self.batch_size = batch_size
        self.clock: Clock = clock or SystemClock()
        self._context = MappingContext(application)

    @property
    def position(self) -> int:
        """The last notification id published, as saved."""
        return self.positions.position(self.name)

    def run_once(self) -> int:
        """Publish the next batch of the log; returns how many notifications it read.

        Reads up to ``batch_size`` notifications after the saved position, publishes
        what they map to (in order), then saves the position of the last one read.
        """
        start = self.positions.position(self.name)
        try:
            notifications = self.application.recorder.select_notifications(
                start=start, limit=self.batch_size, inclusive_of_start=False
            )
        except (OperationalError, InterfaceError) as error:
            msg = f"cannot read the notification log of {self.application.name}: {error}"
            raise StoreUnavailableError(msg) from error
        if not notifications:
            return 0
        batches: list[tuple[str, list[Envelope]]] = []
        published_at = self.clock.now()
        for notification in notifications:
            event = self.application.mapper.to_domain_event(notification)
            integration = self.mapping.map(event, self._context)
            if integration is None:
                continue
            metadata = metadata_of(event)
            envelope = envelope_for(
                integration,
                id=message_id_for(
                    self.name,
                    notification.originator_id,
                    notification.originator_version,
                    integration.event_type,
                ),
                source=self.name,
                occurred_at=getattr(event, "timestamp", published_at),
                correlation_id=metadata.get("correlation_id"),
                causation_id=metadata.get("causation_id"),
            ).published(published_at)
            if batches and batches[-1][0] == integration.topic:
                batches[-1][1].append(envelope)
            else:
                batches.append((integration.topic, [envelope]))
        self._publish(batches)
        self.positions.save(self.name, notifications[-1].id)
        return len(notifications)

    def _publish(self, batches: Sequence[tuple[str, list[Envelope]]]) -> None:
        for topic, envelopes in batches:
            self.bus.publish(topic, *envelopes)

    def run_until_caught_up(self) -> int:
        """Publish until the log has nothing after the position; returns notifications read."""
        total = 0
        while True:
            read = self.run_once()
            total += read
            if read < self.batch_size:
                return total

    def run(
        self,
        stop: threading.Event,
        waiter: LogWaiter | None = None,
        *,
        idle_wait: float = 1.0,
        retry_delay: float = 1.0,
    ) -> None:
        """Publish until ``stop`` is set, sleeping on ``waiter`` when caught up.

        With a PostgreSQL store, a ``PostgresNotificationWaiter`` on the application's
        channel wakes the relay as soon as a command commits; otherwise it polls every
        ``idle_wait`` seconds. An unreachable bus or store (``AdapterError``) is logged and
        retried after ``retry_delay``; anything else stops the loop and is raised.
        """
        waiter = waiter or PollingWaiter(idle_wait)
        while not stop.is_set():
            try:
                read = self.run_until_caught_up()
            except AdapterError as error:
                log.warning("relay %s: %s; retrying in %.1fs", self.name, error, retry_delay)
                stop.wait(retry_delay)
                continue
            if read == 0:
                waiter.wait(idle_wait)

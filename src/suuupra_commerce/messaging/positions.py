"""Relay positions kept in the event store itself, as eventsourcing tracking records.

A relay's position is a tracking record (the relay's name, the last notification id it
published) in a tracking recorder built by eventsourcing's own factory from the same
environment as the applications: a ``relays.sqlite`` file beside theirs, a
``relays_tracking`` table in their PostgreSQL schema, a ``{relays}`` hash in their Redis
namespace, or memory. So the position survives exactly what the events survive, on
every backend, and no store other than the event store is needed to run a relay.
"""

from __future__ import annotations

from collections.abc import Mapping

from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    InterfaceError,
    OperationalError,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.utils import Environment

from suuupra_commerce.errors import StoreUnavailableError
from suuupra_commerce.messaging.envelope import check_name

__all__ = ["EventStoreRelayPositions"]


class EventStoreRelayPositions:
    """:class:`~suuupra_commerce.messaging.RelayPositions` as tracking records; only forward.

    ``env`` is an eventsourcing environment (``PERSISTENCE_MODULE`` and the backend's
    keys), ``name`` the store's name (its table prefix, file or key namespace).

    >>> positions = EventStoreRelayPositions({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    >>> positions.save("orders", 7); positions.save("orders", 5)
    >>> positions.position("orders"), positions.position("carts")
    (7, 0)
    >>> positions.close()
    """

    def __init__(self, env: Mapping[str, str], name: str = "Relays") -> None:
        self.factory: InfrastructureFactory[TrackingRecorder] = InfrastructureFactory.construct(
            Environment(name, env)
        )
        self.recorder = self.factory.tracking_recorder()

    def position(self, relay: str) -> int:
        try:
            found = self.recorder.max_tracking_id(check_name(relay, "relay name"))
        except (OperationalError, InterfaceError) as error:
            raise StoreUnavailableError(f"cannot read the relay position: {error}") from error
        return found or 0

    def save(self, relay: str, position: int) -> None:
        try:
            self.recorder.insert_tracking(Tracking(check_name(relay, "relay name"), position))
        except IntegrityError:
            # Not past the saved position: a relay that republished a batch after a
            # crash, or a second relay behind the first. Positions only go forward.
            return
        except (OperationalError, InterfaceError) as error:
            raise StoreUnavailableError(f"cannot save the relay position: {error}") from error

    def close(self) -> None:
        """Close the store's connections."""
        self.factory.close()

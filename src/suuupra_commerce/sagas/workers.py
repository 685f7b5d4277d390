"""Workers that share the sagas: each claims its share of the partitions, exclusively.

Run the same worker on as many processes and hosts as needed, against one store. Each
one announces itself, counts the live workers, and holds leases on a fair share of
the saga partitions (``ceil(partitions / workers)``), giving up extras when more
workers arrive and taking over the partitions of one that died. A lease is exclusive,
so no two workers ever work on one saga at once; a partition's tracking records say
where its next owner resumes.

Leases come from a :class:`PartitionLeases` adapter: PostgreSQL session advisory locks
(held while the worker's connection lives, so a killed worker's partitions free up at
once), or an in-memory table for threads of one process.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Protocol

from suuupra_commerce.sagas.service import SagaEngine

__all__ = ["PartitionLeases", "SagaWorker", "SoleLeases"]

log = logging.getLogger("suuupra_commerce.sagas.workers")


class PartitionLeases(Protocol):
    """Exclusive, crash-safe claims on saga partitions, and who else is working."""

    def join(self) -> None:
        """Announce this worker (again, after a lost connection)."""
        ...

    def members(self) -> int:
        """How many workers are alive, this one included."""
        ...

    def try_acquire(self, partition: int) -> bool:
        """Claim ``partition`` if nobody holds it; whether this worker holds it now."""
        ...

    def release(self, partition: int) -> None:
        """Give ``partition`` up (a no-op if not held)."""
        ...

    def renew(self) -> frozenset[int]:
        """Keep the claims alive; returns those still held (a lost one is dropped)."""
        ...

    def close(self) -> None:
        """Give every claim up and leave."""
        ...


class SoleLeases:
    """The leases of a worker that is alone by construction (an embedded store): all of them.

    >>> leases = SoleLeases()
    >>> leases.try_acquire(3), leases.members()
    (True, 1)
    """

    def __init__(self) -> None:
        self._held: set[int] = set()

    def join(self) -> None:
        return None

    def members(self) -> int:
        return 1

    def try_acquire(self, partition: int) -> bool:
        self._held.add(partition)
        return True

    def release(self, partition: int) -> None:
        self._held.discard(partition)

    def renew(self) -> frozenset[int]:
        return frozenset(self._held)

    def close(self) -> None:
        self._held.clear()


class SagaWorker:
    """One worker among several: claims its share of the partitions and runs them.

    ``balance()`` renews the leases, gives up partitions beyond the fair share and claims
    free ones up to it, then points the engine at what is held. ``run()`` alternates
    balancing (every ``balance_interval`` seconds) with engine passes until stopped.
    """

    def __init__(
        self, engine: SagaEngine, leases: PartitionLeases, *, balance_interval: float = 1.0
    ) -> None:
        if not 0 < balance_interval <= 300:
            msg = "balance_interval must be between 0 and 300 seconds"
            raise ValueError(msg)
        self.engine = engine
        self.leases = leases
        self.balance_interval = balance_interval
        leases.join()
        engine.own(())

    def balance(self) -> frozenset[int]:
        """Renew, give up extras, claim free partitions up to the fair share; what is held."""
        held = set(self.leases.renew())
        total = self.engine.partitions
        share = math.ceil(total / max(1, self.leases.members()))
        if len(held) > share:
            extras = sorted(held)[share:]
            # Stop working on them before letting them go: another worker may take them
            # the moment they are released.
            self.engine.own(held - set(extras))
            for partition in extras:
                self.leases.release(partition)
                held.discard(partition)
        elif len(held) < share:
            for partition in range(total):
                if len(held) >= share:
                    break
                if partition not in held and self.leases.try_acquire(partition):
                    held.add(partition)
        self.engine.own(held)
        return frozenset(held)

    def run(self, stop: threading.Event) -> None:
        """Balance and run passes until ``stop`` is set; then give every partition up."""
        balanced_at = -math.inf
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now - balanced_at >= self.balance_interval:
                    try:
                        owned = self.balance()
                    except Exception:
                        log.exception("balancing partitions failed; retrying")
                        owned = self.engine.owned
                    balanced_at = now
                    log.debug("owning partitions %s", sorted(owned))
                try:
                    moved = self.engine.run_once()
                except Exception:
                    log.exception("saga pass failed; retrying")
                    moved = 0
                if moved == 0:
                    stop.wait(self.engine.poll_interval)
        finally:
            self.engine.own(())
            self.leases.close()

"""Saga partition leases in process memory: for workers that are threads of one process."""

from __future__ import annotations

import itertools
import threading
import time

__all__ = ["InMemoryLeaseTable", "InMemoryPartitionLeases"]


class InMemoryLeaseTable:
    """The table the in-memory leases of one deployment share (who holds what, who is alive).

    A member that has not renewed for ``ttl`` seconds is gone, and so are its leases.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self.lock = threading.Lock()
        self.holders: dict[int, int] = {}
        self.seen: dict[int, float] = {}
        self._ids = itertools.count(1)

    def new_member(self) -> int:
        return next(self._ids)

    def expire(self) -> None:
        """Forget members (and their leases) not seen for ``ttl`` seconds; hold ``lock``."""
        cutoff = time.monotonic() - self.ttl
        gone = {m for m, at in self.seen.items() if at < cutoff}
        for member in gone:
            del self.seen[member]
        for partition in [p for p, m in self.holders.items() if m in gone]:
            del self.holders[partition]


class InMemoryPartitionLeases:
    """:class:`~suuupra_commerce.sagas.workers.PartitionLeases` on a shared in-memory table.

    >>> table = InMemoryLeaseTable()
    >>> one, two = InMemoryPartitionLeases(table), InMemoryPartitionLeases(table)
    >>> one.join(); two.join()
    >>> one.try_acquire(0), two.try_acquire(0), one.members()
    (True, False, 2)
    """

    def __init__(self, table: InMemoryLeaseTable) -> None:
        self.table = table
        self.member = table.new_member()

    def join(self) -> None:
        with self.table.lock:
            self.table.seen[self.member] = time.monotonic()

    def members(self) -> int:
        with self.table.lock:
            self.table.expire()
            return len(self.table.seen)

    def try_acquire(self, partition: int) -> bool:
        with self.table.lock:
            self.table.expire()
            holder = self.table.holders.setdefault(partition, self.member)
            return holder == self.member

    def release(self, partition: int) -> None:
        with self.table.lock:
            if self.table.holders.get(partition) == self.member:
                del self.table.holders[partition]

    def renew(self) -> frozenset[int]:
        with self.table.lock:
            self.table.expire()
            self.table.seen[self.member] = time.monotonic()
            return frozenset(p for p, m in self.table.holders.items() if m == self.member)

    def close(self) -> None:
        with self.table.lock:
            self.table.seen.pop(self.member, None)
            for partition in [p for p, m in self.table.holders.items() if m == self.member]:
                del self.table.holders[partition]

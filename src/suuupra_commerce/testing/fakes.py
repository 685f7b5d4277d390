"""Test doubles for the ports: they implement the real interfaces, with knobs for tests."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

__all__ = ["FakeClock"]


class FakeClock:
    """A clock that moves only when told to; thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        if start is not None and start.tzinfo is None:
            msg = "FakeClock needs a timezone-aware start"
            raise ValueError(msg)
        self._now = start or datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, by: timedelta) -> None:
        """Move the clock forward by ``by``."""
        if by < timedelta(0):
            msg = "a clock does not run backwards"
            raise ValueError(msg)
        with self._lock:
            self._now += by

"""What host applications import in their own tests: fakes and replay checks.

>>> from datetime import timedelta
>>> clock = FakeClock()
>>> before = clock.now()
>>> clock.advance(timedelta(minutes=5))
>>> clock.now() - before
datetime.timedelta(seconds=300)
"""

from __future__ import annotations

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.testing.fakes import FakeClock
from suuupra_commerce.testing.replay import replay, state_of

__all__ = ["FakeClock", "InMemoryPriceBook", "replay", "state_of"]

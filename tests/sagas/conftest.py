"""Fixtures of the saga tests: a saga test kit on each backend, stocked with two SKUs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.system import Settings
from suuupra_commerce.testing.sagas import SagaTestKit


@pytest.fixture
def kit(settings: Settings) -> Iterator[SagaTestKit]:
    """A kit on the backend under test, with 10 mugs at 9.50 and 5 T-shirts at 19.99."""
    built = SagaTestKit(settings, price_book=InMemoryPriceBook())
    built.stock("MUG-1", 10, "9.50")
    built.stock("TEE-M", 5, "19.99")
    try:
        yield built
    finally:
        built.close()

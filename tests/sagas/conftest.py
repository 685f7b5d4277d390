"""Fixtures of the saga tests: a saga test kit on each backend, stocked with two SKUs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import POSTGRES, _postgres_connect
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


class Schemas:
    """PostgreSQL schemas of a test's own: settings on a new one, and dropping them all."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def new(self) -> Settings:
        schema = f"test_{uuid.uuid4().hex[:12]}"
        conn: Any = _postgres_connect()
        try:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        finally:
            conn.close()
        self.made.append(schema)
        return Settings.from_env(
            {"COMMERCE_PERSISTENCE": "postgres", **POSTGRES, "POSTGRES_SCHEMA": schema}
        )

    def drop_all(self) -> None:
        conn: Any = _postgres_connect()
        try:
            while self.made:
                conn.execute(f'DROP SCHEMA "{self.made.pop()}" CASCADE')
        finally:
            conn.close()


@pytest.fixture
def schemas(postgres_available: None) -> Iterator[Schemas]:
    """Schemas made during the test, all dropped after it."""
    made = Schemas()
    yield made
    made.drop_all()

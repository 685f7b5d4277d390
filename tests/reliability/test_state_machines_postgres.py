"""The order-lives state machine (orders, stock, payments, shipments, returns and their read
models, at random) on PostgreSQL: each example on a new schema of its own."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from conftest import POSTGRES, _postgres_connect
from suuupra_commerce import Settings
from test_system_stateful import OrderLives

from .conftest import DEEP


class OrderLivesOnPostgres(OrderLives):
    def make_settings(self) -> Settings:
        self.schema = f"sm_{uuid.uuid4().hex[:12]}"
        admin: Any = _postgres_connect()
        try:
            admin.execute(f'CREATE SCHEMA "{self.schema}"')
        finally:
            admin.close()
        return Settings.from_env(
            {"COMMERCE_PERSISTENCE": "postgres", **POSTGRES, "POSTGRES_SCHEMA": self.schema}
        )

    def teardown(self) -> None:
        super().teardown()
        admin: Any = _postgres_connect()
        try:
            admin.execute(f'DROP SCHEMA "{self.schema}" CASCADE')
        finally:
            admin.close()


OrderLivesOnPostgres.TestCase.settings = settings(
    max_examples=480 * DEEP,  # with the saga schedules' 20: 500 examples on PostgreSQL
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# 500 examples take about eight minutes: more than the suite's per-test timeout allows.
TestOrderLivesOnPostgres = pytest.mark.timeout(1800)(
    pytest.mark.postgres(OrderLivesOnPostgres.TestCase)
)

"""Sagas under hypothesis-generated failure schedules: every one ends, every guarantee holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.errors import CommerceError
from suuupra_commerce.orders.lifecycle import OrderStatus, PaymentStatus
from suuupra_commerce.sagas import ORDER_FULFILMENT, SagaStatus
from suuupra_commerce.system import Settings
from suuupra_commerce.testing.sagas import SagaTestKit

from .conftest import Schemas

ACTIONS = sorted(ORDER_FULFILMENT.actions())
FIXTURES_ARE_RESET = [HealthCheck.function_scoped_fixture]


@dataclass(frozen=True)
class Fault:
    action: str
    kind: str
    times: int
    delay_seconds: int

    def apply(self, kit: SagaTestKit) -> None:
        faults = kit.faults
        if self.kind == "fail":
            faults.fail(self.action, self.times)
        elif self.kind == "drop_request":
            faults.drop_request(self.action, self.times)
        elif self.kind == "drop_reply":
            faults.drop_reply(self.action, self.times)
        elif self.kind == "late":
            faults.answer_late(self.action, timedelta(seconds=self.delay_seconds), self.times)
        else:
            faults.answer_twice(self.action, self.times)


faults = st.builds(
    Fault,
    action=st.sampled_from(ACTIONS),
    kind=st.sampled_from(["fail", "drop_request", "drop_reply", "late", "twice"]),
    times=st.integers(1, 3),
    delay_seconds=st.integers(1, 120),
)

#: Faults that cannot change the outcome: duplicates, answers late but within the step's
#: timeout, and failures the retry budget absorbs.
benign = st.builds(
    Fault,
    action=st.sampled_from(ACTIONS),
    kind=st.sampled_from(["fail", "late", "twice"]),
    times=st.integers(1, 2),
    delay_seconds=st.integers(1, 29),
)

orders = st.lists(
    st.dictionaries(st.sampled_from(["MUG-1", "TEE-M"]), st.integers(1, 3), min_size=1),
    min_size=1,
    max_size=3,
)


def _kit(settings: Settings) -> SagaTestKit:
    kit = SagaTestKit(settings, price_book=InMemoryPriceBook())
    kit.stock("MUG-1", 6, "9.50")
    kit.stock("TEE-M", 4, "19.99")
    return kit


def _memory() -> Settings:
    return Settings.from_env({"COMMERCE_PERSISTENCE": "memory"})


def _place_all(kit: SagaTestKit, lines: list[dict[str, int]]) -> list[UUID]:
    placed: list[UUID] = []
    for n, order in enumerate(lines):
        try:
            placed.append(kit.place(f"order-{n}", order, customer=f"c-{n}"))
        except CommerceError:
            continue  # out of stock: a refused order starts no saga
    return placed


def _check_any_schedule(
    stores: Callable[[], Settings],
    schedule: list[Fault],
    lines: list[dict[str, int]],
    declined: bool,
) -> None:
    with _kit(stores()) as kit:
        for fault in schedule:
            fault.apply(kit)
        if declined:
            kit.payments.decline("do not honour")
        placed = _place_all(kit, lines)
        kit.settle(horizon=timedelta(days=30))
        assert kit.violations() == []
        for order_id in placed:
            status = kit.fulfilment(order_id)
            assert status.has_ended
            if declined:
                assert status is not SagaStatus.COMPLETED


def _check_benign_schedule(
    stores: Callable[[], Settings], schedule: list[Fault], lines: list[dict[str, int]]
) -> None:
    with _kit(stores()) as clean, _kit(stores()) as faulty:
        for fault in schedule:
            fault.apply(faulty)
        for kit in (clean, faulty):
            _place_all(kit, lines)
            kit.settle(horizon=timedelta(days=30))
        assert faulty.violations() == []
        assert _outcome(faulty) == _outcome(clean)


def _outcome(kit: SagaTestKit) -> list[tuple[str, OrderStatus, PaymentStatus, str, int, int]]:
    found = []
    for summary in kit.commerce.orders.listing():
        order = kit.commerce.orders.get(summary.order_id)
        found.append(
            (
                str(order.idempotency_key),
                order.status,
                order.payment_status,
                str(kit.payments.captured(order.order_id)),
                len(kit.shipping.of_order(order.order_id)),
                sum(kit.commerce.inventory.item(line.sku).reserved for line in order.lines),
            )
        )
    return sorted(found)


@settings(max_examples=60, deadline=None)
@given(schedule=st.lists(faults, max_size=6), lines=orders, declined=st.booleans())
def test_every_saga_ends_with_its_guarantees_under_any_failure_schedule_in_memory(
    schedule: list[Fault], lines: list[dict[str, int]], declined: bool
) -> None:
    _check_any_schedule(_memory, schedule, lines, declined)


@settings(max_examples=40, deadline=None)
@given(schedule=st.lists(benign, max_size=6), lines=orders)
def test_duplicated_late_and_retried_answers_end_as_a_clean_run_does_in_memory(
    schedule: list[Fault], lines: list[dict[str, int]]
) -> None:
    _check_benign_schedule(_memory, schedule, lines)


@pytest.mark.postgres
@settings(max_examples=12, deadline=None, suppress_health_check=FIXTURES_ARE_RESET)
@given(schedule=st.lists(faults, max_size=6), lines=orders, declined=st.booleans())
def test_every_saga_ends_with_its_guarantees_under_any_failure_schedule_on_postgres(
    schemas: Schemas, schedule: list[Fault], lines: list[dict[str, int]], declined: bool
) -> None:
    schemas.drop_all()
    _check_any_schedule(schemas.new, schedule, lines, declined)


@pytest.mark.postgres
@settings(max_examples=8, deadline=None, suppress_health_check=FIXTURES_ARE_RESET)
@given(schedule=st.lists(benign, max_size=6), lines=orders)
def test_duplicated_late_and_retried_answers_end_as_a_clean_run_does_on_postgres(
    schemas: Schemas, schedule: list[Fault], lines: list[dict[str, int]]
) -> None:
    schemas.drop_all()
    _check_benign_schedule(schemas.new, schedule, lines)

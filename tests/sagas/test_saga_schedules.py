"""Sagas under hypothesis-generated failure schedules: every one ends, every guarantee holds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.orders.lifecycle import OrderStatus, PaymentStatus
from suuupra_commerce.sagas import ORDER_FULFILMENT, SagaStatus
from suuupra_commerce.system import Settings
from suuupra_commerce.testing.sagas import SagaTestKit

ACTIONS = sorted(ORDER_FULFILMENT.actions())


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


@pytest.fixture
def new_kit() -> Iterator[list[SagaTestKit]]:
    made: list[SagaTestKit] = []
    yield made
    for kit in made:
        kit.close()


def _kit(made: list[SagaTestKit]) -> SagaTestKit:
    kit = SagaTestKit(
        Settings.from_env({"COMMERCE_PERSISTENCE": "memory"}), price_book=InMemoryPriceBook()
    )
    made.append(kit)
    kit.stock("MUG-1", 6, "9.50")
    kit.stock("TEE-M", 4, "19.99")
    return kit


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(schedule=st.lists(faults, max_size=6), lines=orders, declined=st.booleans())
def test_every_saga_ends_with_its_guarantees_under_any_failure_schedule(
    new_kit: list[SagaTestKit], schedule: list[Fault], lines: list[dict[str, int]], declined: bool
) -> None:
    kit = _kit(new_kit)
    for fault in schedule:
        fault.apply(kit)
    if declined:
        kit.payments.decline("do not honour")
    placed = []
    for n, order in enumerate(lines):
        try:
            placed.append(kit.place(f"order-{n}", order, customer=f"c-{n}"))
        except Exception:  # noqa: BLE001 - stock may run out: a refused order starts no saga
            continue
    kit.settle(horizon=timedelta(days=30))
    assert kit.violations() == []
    for order_id in placed:
        assert kit.fulfilment(order_id).has_ended
        if declined:
            assert kit.fulfilment(order_id) is not SagaStatus.COMPLETED


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(schedule=st.lists(benign, max_size=6), lines=orders)
def test_duplicated_late_and_retried_answers_end_as_a_clean_run_does(
    new_kit: list[SagaTestKit], schedule: list[Fault], lines: list[dict[str, int]]
) -> None:
    clean, faulty = _kit(new_kit), _kit(new_kit)
    for fault in schedule:
        fault.apply(faulty)
    for kit in (clean, faulty):
        for n, order in enumerate(lines):
            try:
                kit.place(f"order-{n}", order, customer=f"c-{n}")
            except Exception:  # noqa: BLE001 - the same refusals happen in both kits
                continue
        kit.settle(horizon=timedelta(days=30))
    assert faulty.violations() == []

    def outcome(kit: SagaTestKit) -> list[tuple[str, OrderStatus, PaymentStatus, str, int]]:
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
                )
            )
        return sorted(found)

    assert outcome(faulty) == outcome(clean)
    for sku in ("MUG-1", "TEE-M"):
        assert (
            faulty.commerce.inventory.item(sku).reserved
            == clean.commerce.inventory.item(sku).reserved
        )

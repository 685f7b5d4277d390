"""Every saga ends COMPLETED, COMPENSATED or STUCK, whatever store write the process dies after.

For each scenario (both order sagas, clean and with each kind of fault), the harness runs
it once to count its store writes, then once per write, crashing right after that write,
restarting from the stores and letting the host repeat its requests. Each run must end
as the clean run did, with every guarantee intact.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.orders.commands import ApproveCancellation, CancelOrder
from suuupra_commerce.sagas import ORDER_FULFILMENT
from suuupra_commerce.system import Settings
from suuupra_commerce.testing.sagas import CrashHarness, CrashingRecorders, SagaTestKit

from .conftest import Schemas


@dataclass(frozen=True)
class Scenario:
    name: str
    prepare: Callable[[SagaTestKit], None]  # the outside world: faults, declines (once)
    act: Callable[[SagaTestKit], None]  # the host's requests: repeated after a restart


def _shop(kit: SagaTestKit) -> None:
    kit.stock("MUG-1", 10, "9.50")
    kit.stock("TEE-M", 5, "19.99")


def _place_and_settle(kit: SagaTestKit) -> None:
    _shop(kit)
    kit.place("order-1", {"MUG-1": 2, "TEE-M": 1})
    kit.settle()


def _place_three_and_settle(kit: SagaTestKit) -> None:
    """Three orders at once: the engine commits their messages in shared groups."""
    _shop(kit)
    for n in range(3):
        kit.place(f"order-{n}", {"MUG-1": 1, "TEE-M": 1}, customer=f"customer-{n}")
    kit.settle()


def _nothing(kit: SagaTestKit) -> None:
    return None


def _cancel_after_fulfilment(kit: SagaTestKit) -> None:
    _shop(kit)
    order_id = kit.place("order-1", {"MUG-1": 2, "TEE-M": 1})
    kit.settle()
    kit.commerce.order_sagas.cancel(CancelOrder(order_id=order_id, requested_by="alice"))
    kit.commerce.order_sagas.approve_cancellation(
        ApproveCancellation(order_id=order_id, approved_by="ops-ann")
    )
    kit.settle()


def _cancel_during_fulfilment(kit: SagaTestKit) -> None:
    _shop(kit)
    order_id = kit.place("order-1", {"MUG-1": 2})
    kit.commerce.engine.run_until_idle()
    kit.commerce.order_sagas.cancel(CancelOrder(order_id=order_id, requested_by="alice"))
    kit.settle()


def _declined(kit: SagaTestKit) -> None:
    kit.payments.decline("insufficient funds")


def _authorization_answer_lost(kit: SagaTestKit) -> None:
    kit.faults.drop_reply("payments.authorize")


def _capture_answer_lost(kit: SagaTestKit) -> None:
    kit.faults.drop_reply("payments.capture")


def _carrier_down_twice(kit: SagaTestKit) -> None:
    kit.shipping.fail_next("create_shipment", times=2)


def _every_answer_twice(kit: SagaTestKit) -> None:
    for action in ORDER_FULFILMENT.actions():
        kit.faults.answer_twice(action)


def _void_keeps_failing(kit: SagaTestKit) -> None:
    kit.payments.decline("do not honour")
    kit.faults.drop_reply("payments.authorize")
    kit.payments.fail_next("void", times=100)


def _authorization_answer_late(kit: SagaTestKit) -> None:
    kit.faults.answer_late("payments.authorize", timedelta(seconds=5))


SCENARIOS = [
    Scenario("fulfilment completes", _nothing, _place_and_settle),
    Scenario("three fulfilments in shared groups", _nothing, _place_three_and_settle),
    Scenario("payment declined, compensated", _declined, _place_and_settle),
    Scenario(
        "authorization answer lost, timed out, voided",
        _authorization_answer_lost,
        _place_and_settle,
    ),
    Scenario(
        "capture answer lost, sent again under the same key",
        _capture_answer_lost,
        _place_and_settle,
    ),
    Scenario("carrier down twice, retried after the pivot", _carrier_down_twice, _place_and_settle),
    Scenario("every answer duplicated", _every_answer_twice, _place_and_settle),
    Scenario("void keeps failing, stuck for an operator", _void_keeps_failing, _place_and_settle),
    Scenario("cancellation after fulfilment, approved", _nothing, _cancel_after_fulfilment),
    Scenario(
        "cancellation during fulfilment, compensated",
        _authorization_answer_late,
        _cancel_during_fulfilment,
    ),
]


def _outcome(kit: SagaTestKit) -> list[tuple[str, str]]:
    return sorted((s.definition, s.status.value) for s in kit.commerce.sagas.list())


def _check_every_crash_point(
    scenario: Scenario, new_settings: Callable[[], Settings], backend: str
) -> int:
    def make_kit(recorders: CrashingRecorders) -> SagaTestKit:
        kit = SagaTestKit(new_settings(), price_book=InMemoryPriceBook(), recorder_hook=recorders)
        scenario.prepare(kit)
        return kit

    harness = CrashHarness(make_kit, scenario.act)
    clean = harness.make_kit(CrashingRecorders())
    try:
        scenario.act(clean)
        expected = _outcome(clean)
        assert clean.violations() == []
    finally:
        clean.close()
    writes = harness.count_writes()
    assert writes > 10
    for point, kit in harness.runs(range(1, writes + 1)):
        where = f"{scenario.name}, crash after write {point} of {writes}"
        assert kit.violations() == [], where
        assert _outcome(kit) == expected, where
    report = f"{backend}: {scenario.name}: {writes} crash points, each ended as {expected}"
    print(f"\n{report}")  # noqa: T201 - the figures this test proves, for the record
    return writes


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_every_saga_ends_as_the_clean_run_did_after_a_crash_at_any_write_in_memory(
    scenario: Scenario,
) -> None:
    def settings() -> Settings:
        return Settings.from_env({"COMMERCE_PERSISTENCE": "memory"})

    _check_every_crash_point(scenario, settings, "memory")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_every_saga_ends_as_the_clean_run_did_after_a_crash_at_any_write_on_postgres(
    scenario: Scenario, schemas: Schemas
) -> None:
    def fresh() -> Settings:
        schemas.drop_all()  # the run before is checked and closed: keep the catalogue small
        return schemas.new()

    _check_every_crash_point(scenario, fresh, "postgres")


def test_harness_counts_writes_and_crashes_right_after_the_chosen_one(tmp_path: Path) -> None:
    def settings() -> Settings:
        env = {"COMMERCE_PERSISTENCE": "sqlite", "COMMERCE_SQLITE_DIR": str(tmp_path / "s")}
        return Settings.from_env(env)

    recorders = CrashingRecorders()
    recorders.crash_after = 3
    kit = SagaTestKit(settings(), price_book=InMemoryPriceBook(), recorder_hook=recorders)
    try:
        kit.stock("MUG-1", 1)
        kit.stock("TEE-M", 1)
        with pytest.raises(BaseException, match="crashed after store write 3"):
            kit.stock("CAP-1", 1)
        assert recorders.writes == 3
        assert os.path.exists(tmp_path / "s" / "inventory.sqlite")
        restarted = kit.restart()
        try:
            assert [i.sku for i in restarted.commerce.inventory.items()] == [
                "CAP-1",
                "MUG-1",
                "TEE-M",
            ], "the third write committed before the crash"
        finally:
            restarted.close()
    finally:
        kit.close()

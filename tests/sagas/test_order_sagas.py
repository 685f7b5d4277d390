"""The order sagas end to end, through the engine, on every backend, with faults injected."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, cast
from uuid import UUID

import pytest

from suuupra_commerce.errors import InvalidInputError, OrderLockedError, ReplyPendingError
from suuupra_commerce.inventory.domain import ReservationStatus, reservation_id_for
from suuupra_commerce.money import Money
from suuupra_commerce.orders.commands import (
    ApproveCancellation,
    CancelOrder,
    HoldOrder,
    ReleaseOrder,
    ShipOrder,
    StartFulfilment,
)
from suuupra_commerce.orders.lifecycle import OrderStatus, PaymentStatus
from suuupra_commerce.sagas import (
    ORDER_CANCELLATION,
    ORDER_FULFILMENT,
    CancellationOutcome,
    Participants,
    ResolveSaga,
    RetrySagaStep,
    SagaDefinition,
    SagaDispatcher,
    SagaEngine,
    SagaRegistry,
    Sagas,
    SagaStatus,
    StartSaga,
    Step,
)
from suuupra_commerce.sagas.domain import Saga, StepCommand
from suuupra_commerce.sagas.orders import cancellation_saga_id, fulfilment_saga_id
from suuupra_commerce.testing import replay, state_of
from suuupra_commerce.testing.sagas import SagaTestKit

COMPLETED, COMPENSATED, STUCK = SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.STUCK
TOTAL = Money("38.99", "USD")  # 2 mugs at 9.50 and a T-shirt at 19.99


def _timeline(kit: SagaTestKit, order_id: UUID) -> list[str]:
    view = kit.commerce.sagas.get(fulfilment_saga_id(order_id))
    return [f"{e.event}: {e.detail}" for e in view.timeline]


def test_fulfilment_completes_when_every_participant_answers(kit: SagaTestKit) -> None:
    order_id = kit.place("k-1", {"MUG-1": 2, "TEE-M": 1})
    kit.settle()
    assert kit.fulfilment(order_id) is COMPLETED
    order = kit.commerce.orders.get(order_id)
    assert (order.status, order.payment_status) == (OrderStatus.PROCESSING, PaymentStatus.CAPTURED)
    assert order.captured == TOTAL
    assert kit.payments.captured(order_id) == TOTAL
    assert len(kit.shipping.of_order(order_id)) == 1
    assert kit.notifier.to(order_id) == ["order_confirmed"]
    mug = kit.commerce.inventory.reservation("MUG-1", reservation_id_for(str(order_id), "MUG-1"))
    assert mug.status is ReservationStatus.CONFIRMED
    assert kit.violations() == []


def test_declined_payment_compensates_by_releasing_stock_and_cancelling(kit: SagaTestKit) -> None:
    kit.payments.decline("insufficient funds")
    order_id = kit.place("k-1", {"MUG-1": 2, "TEE-M": 1})
    kit.settle()
    assert kit.fulfilment(order_id) is COMPENSATED
    order = kit.commerce.orders.get(order_id)
    assert (order.status, order.payment_status) == (OrderStatus.CANCELLED, PaymentStatus.FAILED)
    assert kit.commerce.inventory.item("MUG-1").available == 10
    assert kit.commerce.inventory.item("TEE-M").reserved == 0
    assert kit.payments.of_order(order_id) == []
    timeline = "\n".join(_timeline(kit, order_id))
    assert (
        "StepFailed: attempt 1 failed (payment declined: insufficient funds); no retry" in timeline
    )
    assert "CompensationDispatched: sent inventory.release_order to undo reserve_stock" in timeline
    assert "CompensationDispatched: sent orders.reject to undo accept_order" in timeline
    assert kit.violations() == []


def test_an_order_whose_stock_hold_expired_before_fulfilment_is_compensated(
    kit: SagaTestKit,
) -> None:
    order_id = kit.place("k-1", {"MUG-1": 2})
    kit.clock.advance(timedelta(minutes=16))
    assert kit.commerce.inventory.expire_reservations() == 1
    kit.settle()
    assert kit.fulfilment(order_id) is COMPENSATED
    timeline = "\n".join(_timeline(kit, order_id))
    assert "hold stock with reservation in state 'expired'); no retry left" in timeline
    assert kit.commerce.orders.get(order_id).status is OrderStatus.CANCELLED
    assert kit.commerce.inventory.item("MUG-1").available == 10
    assert kit.payments.of_order(order_id) == []
    assert kit.violations() == []


def test_gateway_outage_is_retried_with_backoff_then_completes(kit: SagaTestKit) -> None:
    kit.payments.fail_next("authorize", times=2)
    order_id = kit.place("k-1", {"MUG-1": 1})
    kit.settle()
    assert kit.fulfilment(order_id) is COMPLETED
    keys = [key for op, key in kit.payments.calls if op == "authorize"]
    assert [k.rsplit("/", 1)[1] for k in keys] == ["1", "2", "3"], "a new key per attempt"
    assert kit.commerce.sagas.statistics().retries == 2
    assert kit.violations() == []


def test_lost_authorization_answer_is_voided_when_its_step_times_out(kit: SagaTestKit) -> None:
    kit.faults.drop_reply("payments.authorize")
    order_id = kit.place("k-1", {"MUG-1": 1})
    kit.settle()
    assert kit.fulfilment(order_id) is COMPENSATED
    [authorization] = kit.payments.of_order(order_id)
    assert authorization.status == "voided", "the gateway did authorize: the void releases it"
    assert kit.commerce.orders.get(order_id).status is OrderStatus.CANCELLED
    assert kit.violations() == []


def test_capture_that_times_out_is_sent_again_under_the_same_key_and_captures_once(
    kit: SagaTestKit,
) -> None:
    kit.faults.drop_reply("payments.capture")
    order_id = kit.place("k-1", {"MUG-1": 1})
    kit.settle()
    assert kit.fulfilment(order_id) is COMPLETED
    events = kit.commerce.sagas.events.get(fulfilment_saga_id(order_id))
    sent = [
        (e.key.rsplit("/", 1)[1], e.delivery)
        for e in events
        if isinstance(e, Saga.StepDispatched) and e.step == "capture_payment"
    ]
    assert sent == [("1", 1), ("1", 2)], "the same key, delivered again"
    assert kit.payments.captured(order_id) == Money("9.50", "USD")
    assert len([op for op, _ in kit.payments.calls if op == "capture"]) == 1
    assert kit.violations() == []


def test_duplicate_answers_leave_the_same_state_as_a_clean_run(kit: SagaTestKit) -> None:
    for action in ORDER_FULFILMENT.actions():
        kit.faults.answer_twice(action)
    order_id = kit.place("k-1", {"MUG-1": 2, "TEE-M": 1})
    kit.settle()
    assert kit.fulfilment(order_id) is COMPLETED
    assert kit.payments.captured(order_id) == TOTAL
    assert len(kit.payments.of_order(order_id)) == 1
    assert kit.commerce.inventory.item("MUG-1").reserved == 2
    assert kit.violations() == []


def test_late_answer_after_a_timeout_is_recorded_and_changes_nothing(kit: SagaTestKit) -> None:
    kit.faults.answer_late("payments.authorize", delay=timedelta(minutes=5))
    order_id = kit.place("k-1", {"MUG-1": 1})
    kit.settle()
    assert kit.fulfilment(order_id) is COMPENSATED
    assert any("late reply" in line for line in _timeline(kit, order_id))
    assert [a.status for a in kit.payments.of_order(order_id)] == ["voided"]
    assert kit.violations() == []


def test_timeout_fires_at_its_deadline_and_not_before(kit: SagaTestKit) -> None:
    kit.faults.drop_request("payments.authorize")
    order_id = kit.place("k-1", {"MUG-1": 1})
    engine = kit.commerce.engine
    engine.run_until_idle()
    saga = kit.commerce.sagas.get(fulfilment_saga_id(order_id))
    assert saga.timer_due is not None
    kit.clock.advance(saga.timer_due - kit.clock.now() - timedelta(microseconds=1))
    engine.run_until_idle()
    assert kit.commerce.sagas.get(saga.saga_id).status is SagaStatus.RUNNING
    kit.clock.advance(timedelta(microseconds=1))
    engine.run_until_idle()
    assert kit.commerce.sagas.get(saga.saga_id).status is COMPENSATED


def test_shipment_that_keeps_failing_parks_the_saga_until_an_operator_retries(
    kit: SagaTestKit,
) -> None:
    kit.shipping.fail_next("create_shipment", times=12)
    order_id = kit.place("k-1", {"MUG-1": 1})
    kit.settle()
    saga_id = fulfilment_saga_id(order_id)
    view = kit.commerce.sagas.get(saga_id)
    assert view.status is STUCK
    assert view.stuck_reason.startswith("create_shipment failed after 12 send(s)")
    assert kit.payments.captured(order_id) == Money("9.50", "USD"), "past the pivot: kept"
    assert [s.saga_id for s in kit.commerce.sagas.list(status=STUCK)] == [saga_id]
    kit.commerce.sagas.retry_step(
        RetrySagaStep(saga_id=saga_id, by="ops-ann", reason="carrier back online")
    )
    kit.settle()
    assert kit.fulfilment(order_id) is COMPLETED
    assert any("retry by ops-ann: carrier back online" in line for line in _timeline(kit, order_id))
    assert kit.violations() == []


def test_cancelling_before_the_capture_compensates_the_fulfilment(kit: SagaTestKit) -> None:
    kit.faults.answer_late("payments.authorize", delay=timedelta(seconds=5))
    order_id = kit.place("k-1", {"MUG-1": 2})
    kit.commerce.engine.run_until_idle()  # waiting for the authorization's answer
    outcome = kit.commerce.order_sagas.cancel(
        CancelOrder(order_id=order_id, reason="changed mind", requested_by="alice")
    )
    assert outcome is CancellationOutcome.CANCELLING
    kit.settle()
    assert kit.fulfilment(order_id) is COMPENSATED
    assert kit.commerce.orders.get(order_id).status is OrderStatus.CANCELLED
    assert [a.status for a in kit.payments.of_order(order_id)] == ["voided"]
    assert kit.commerce.inventory.item("MUG-1").reserved == 0
    assert any("compensate by alice: changed mind" in line for line in _timeline(kit, order_id))
    assert kit.violations() == []


def test_cancelling_past_the_capture_is_refused_while_the_fulfilment_runs(
    kit: SagaTestKit,
) -> None:
    kit.shipping.fail_next("create_shipment")
    order_id = kit.place("k-1", {"MUG-1": 1})
    kit.commerce.engine.run_until_idle()  # captured; the shipment waits for its retry
    with pytest.raises(OrderLockedError) as refused:
        kit.commerce.order_sagas.cancel(CancelOrder(order_id=order_id))
    assert refused.value.step == "create_shipment"
    kit.settle()
    assert kit.fulfilment(order_id) is COMPLETED


def test_pending_order_cancelled_before_its_fulfilment_starts_is_cancelled_at_once(
    kit: SagaTestKit,
) -> None:
    order_id = kit.place("k-1", {"MUG-1": 1})
    outcome = kit.commerce.order_sagas.cancel(CancelOrder(order_id=order_id))
    assert outcome is CancellationOutcome.CANCELLED
    kit.settle()
    assert kit.commerce.sagas.find(fulfilment_saga_id(order_id)) is None
    assert kit.commerce.inventory.item("MUG-1").reserved == 0
    assert kit.violations() == []


def test_cancelling_a_fulfilled_order_refunds_less_the_fee_once_approved(
    kit: SagaTestKit,
) -> None:
    order_id = kit.place("k-1", {"MUG-1": 2, "TEE-M": 1})
    kit.settle()
    cancel = CancelOrder(order_id=order_id, reason="too slow", requested_by="alice")
    assert kit.commerce.order_sagas.cancel(cancel) is CancellationOutcome.AWAITING_APPROVAL
    assert kit.commerce.orders.get(order_id).status is OrderStatus.CANCELLATION_REQUESTED
    approval = ApproveCancellation(order_id=order_id, approved_by="ops-ann")
    assert kit.commerce.order_sagas.approve_cancellation(approval) is (
        CancellationOutcome.CANCELLING
    )
    kit.settle()
    saga = kit.commerce.sagas.get(cancellation_saga_id(order_id))
    assert saga.status is COMPLETED
    order = kit.commerce.orders.get(order_id)
    fee = TOTAL.percentage(5)
    assert (order.status, order.payment_status) == (
        OrderStatus.CANCELLED,
        PaymentStatus.PARTIALLY_REFUNDED,
    )
    assert order.refunded == TOTAL - fee
    assert kit.payments.captured(order_id) == fee, "the merchant keeps the fee, no more"
    assert kit.commerce.inventory.item("MUG-1").reserved == 0
    assert kit.notifier.to(order_id) == ["order_confirmed", "order_cancelled"]
    assert kit.violations() == []


def test_saga_finishes_on_the_version_it_started_with(kit: SagaTestKit) -> None:
    kit.faults.answer_late("payments.authorize", delay=timedelta(seconds=5))
    first = kit.place("k-1", {"MUG-1": 1})
    kit.commerce.engine.run_until_idle()  # v1 is under way
    v2 = SagaDefinition(
        ORDER_FULFILMENT.name,
        2,
        (*ORDER_FULFILMENT.steps, Step("thank_customer", "notifier.order_confirmed")),
    )
    kit.commerce.sagas.registry.register(v2)
    second = kit.place("k-2", {"MUG-1": 1})
    kit.settle()
    for order_id, version, steps in ((first, 1, 7), (second, 2, 8)):
        view = kit.commerce.sagas.get(fulfilment_saga_id(order_id))
        assert (view.status, view.version) == (COMPLETED, version)
        assert len(view.results) == steps


def test_a_hosts_own_saga_runs_on_the_engine_beside_the_order_sagas(kit: SagaTestKit) -> None:
    wrapped: list[str] = []

    def wrap(command: StepCommand) -> dict[str, Any]:
        wrapped.append(command.data["note"])
        return {"wrapped": True}

    kit.commerce.participants.register("host.wrap_gift", wrap)
    kit.commerce.sagas.registry.register(
        SagaDefinition("gift_wrap", 1, (Step("wrap", "host.wrap_gift"),))
    )
    gift = kit.commerce.sagas.start(
        StartSaga(
            definition="gift_wrap", saga_id=UUID(int=42), subject="gift-1", data={"note": "hi"}
        )
    )
    order_id = kit.place("k-1", {"MUG-1": 1})
    kit.settle()  # the gift's command and the order's share the dispatcher's sections
    assert kit.commerce.sagas.get(gift).status is COMPLETED
    assert kit.fulfilment(order_id) is COMPLETED
    assert wrapped == ["hi"]


def test_saga_whose_definition_is_missing_is_parked_then_resumed_by_an_operator(
    kit: SagaTestKit,
) -> None:
    kit.faults.answer_late("payments.authorize", delay=timedelta(seconds=5))
    order_id = kit.place("k-1", {"MUG-1": 1})
    kit.commerce.engine.run_until_idle()
    registry = kit.commerce.sagas.registry
    kit.commerce.sagas.registry = SagaRegistry([ORDER_CANCELLATION])
    kit.settle()
    view = kit.commerce.sagas.get(fulfilment_saga_id(order_id))
    assert view.status is STUCK
    assert view.stuck_reason == "definition order_fulfilment v1 is not registered"
    kit.commerce.sagas.registry = registry
    kit.commerce.sagas.retry_step(
        RetrySagaStep(saga_id=view.saga_id, by="ops-ann", reason="v1 deployed again")
    )
    kit.settle()
    assert kit.fulfilment(order_id) is COMPLETED
    assert kit.violations() == []


def test_saga_start_is_idempotent_by_saga_id(kit: SagaTestKit) -> None:
    order_id = kit.place("k-1", {"MUG-1": 1})
    kit.settle()
    view = kit.commerce.sagas.get(fulfilment_saga_id(order_id))
    again = StartSaga(
        definition="order_fulfilment",
        saga_id=view.saga_id,
        subject=view.subject,
        data=dict(view.data),
    )
    assert kit.commerce.sagas.start(again) == view.saga_id
    assert kit.commerce.sagas.get(view.saga_id).timeline == view.timeline


def test_replay_of_every_saga_equals_the_live_saga(kit: SagaTestKit) -> None:
    kit.payments.fail_next("capture")
    kit.faults.answer_twice("inventory.reserve")
    kit.place("k-1", {"MUG-1": 1})
    kit.payments.decline(order_id=str(kit.place("k-2", {"TEE-M": 1})))
    kit.settle()
    sagas = kit.commerce.sagas
    assert len(sagas.list()) == 2
    for summary in sagas.list():
        rebuilt = replay(cast(Any, sagas.events.get(summary.saga_id)))
        assert state_of(rebuilt) == state_of(sagas.aggregate(summary.saga_id))


@pytest.mark.parametrize("settings", ["memory"], indirect=True)
def test_timeout_fires_within_the_poll_interval_when_the_engine_runs_in_background(
    settings: Any,
) -> None:
    never = SagaDefinition(
        "never", 1, (Step("wait", "test.never", timeout=timedelta(seconds=0.3)),)
    )

    def no_answer(command: StepCommand) -> None:
        raise ReplyPendingError("no answer will come")

    env = settings.application_env
    sagas = Sagas(env("Sagas"), registry=SagaRegistry([never]))
    dispatcher = SagaDispatcher(
        env("SagaDispatcher"), participants=Participants({"test.never": no_answer})
    )
    poll = 0.05
    with SagaEngine(sagas, dispatcher, poll_interval=poll):
        saga_id = sagas.start(
            StartSaga(definition="never", saga_id=UUID(int=5), subject="x", data={})
        )
        waited = 0.0
        while sagas.get(saga_id).status is SagaStatus.RUNNING and waited < 10:
            time.sleep(0.02)
            waited += 0.02
    events = list(sagas.events.get(saga_id))
    [sent] = [e for e in events if isinstance(e, Saga.StepDispatched)]
    [timed_out] = [e for e in events if isinstance(e, Saga.StepTimedOut)]
    lateness = (timed_out.timestamp - sent.deadline).total_seconds()
    # The deadline plus one poll interval, with slack for a loaded machine.
    assert 0 <= lateness <= poll + 1.0
    sagas.close()
    dispatcher.close()


def test_orders_refuse_commands_not_made_for_the_saga_holding_the_order(
    kit: SagaTestKit,
) -> None:
    kit.shipping.fail_next("create_shipment")
    order_id = kit.place("k-1", {"MUG-1": 1})
    kit.commerce.engine.run_until_idle()  # captured; the shipment waits for its retry
    held_by = str(fulfilment_saga_id(order_id))
    assert kit.commerce.orders.aggregate(order_id).held_by == held_by
    with pytest.raises(OrderLockedError) as refused:
        kit.commerce.orders.cancel(CancelOrder(order_id=order_id))
    assert str(refused.value.saga_id) == held_by
    with pytest.raises(OrderLockedError):
        kit.commerce.orders.start_fulfilment(StartFulfilment(order_id=order_id))
    kit.settle()
    assert kit.fulfilment(order_id) is COMPLETED
    assert kit.commerce.orders.aggregate(order_id).held_by is None, "booked: let go"
    kit.commerce.orders.ship(ShipOrder(order_id=order_id, shipment_id="parcel-1"))


def test_compensation_lets_the_order_go(kit: SagaTestKit) -> None:
    kit.payments.decline("insufficient funds")
    order_id = kit.place("k-1", {"MUG-1": 1})
    kit.settle()
    assert kit.fulfilment(order_id) is COMPENSATED
    assert kit.commerce.orders.aggregate(order_id).held_by is None


def test_stuck_saga_keeps_its_hold_until_an_operator_frees_the_order(kit: SagaTestKit) -> None:
    kit.shipping.fail_next("create_shipment", times=12)
    order_id = kit.place("k-1", {"MUG-1": 1})
    kit.settle()
    saga_id = fulfilment_saga_id(order_id)
    assert kit.fulfilment(order_id) is STUCK
    kit.commerce.sagas.resolve(
        ResolveSaga(saga_id=saga_id, outcome="completed", by="ops-ann", reason="booked by phone")
    )
    assert kit.commerce.orders.aggregate(order_id).held_by == str(saga_id)
    kit.commerce.orders.release(
        ReleaseOrder(order_id=order_id, by="ops-ann", reason="saga resolved by hand")
    )
    order = kit.commerce.orders.aggregate(order_id)
    assert order.held_by is None
    kit.commerce.orders.start_fulfilment(StartFulfilment(order_id=order_id))
    assert kit.commerce.orders.get(order_id).status is OrderStatus.PROCESSING


def test_only_a_sagas_step_may_hold_an_order(kit: SagaTestKit) -> None:
    order_id = kit.place("k-1", {"MUG-1": 1})
    with pytest.raises(InvalidInputError, match="saga"):
        kit.commerce.orders.hold(HoldOrder(order_id=order_id))

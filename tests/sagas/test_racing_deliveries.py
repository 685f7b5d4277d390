"""A command delivered twice at once: the late one must not turn a done step into a failure.

Two workers can deliver one command at the same time when a partition changes hands
while its old owner is still in a pass (a lease lost to a dropped connection or an
expiry). Both read the order before either records the step's effect; the first records
it; the second then finds its change already made. If that counted as a failure, the
saga could compensate a step that succeeded: void a captured payment's authorization.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from suuupra_commerce import ApproveCancellation, CancelOrder
from suuupra_commerce.context import command_context
from suuupra_commerce.orders.domain import Order
from suuupra_commerce.orders.lifecycle import OrderStatus
from suuupra_commerce.sagas import SagaStatus
from suuupra_commerce.sagas.domain import StepCommand
from suuupra_commerce.sagas.orders import CancellationOutcome, cancellation_saga_id
from suuupra_commerce.testing.sagas import SagaTestKit


def race_every_step(kit: SagaTestKit) -> list[str]:
    """Deliver each command a second time, as if read before the first delivery wrote.

    Returns the actions raced, as they happen. The duplicate raises if it takes the
    done step for a failed one.
    """
    registry = kit.commerce.engine.dispatcher.participants
    orders = kit.commerce.orders
    handle, read = registry.handle, orders.aggregate
    raced: list[str] = []

    def racing(command: StepCommand) -> Any:
        stale: list[Order] = [read(UUID(command.data["order_id"]))]
        first = handle(command)

        def as_read_before_the_first_wrote(order_id: UUID) -> Order:
            return stale.pop() if stale else read(order_id)

        orders.aggregate = as_read_before_the_first_wrote  # type: ignore[method-assign]
        try:
            with command_context(
                command.correlation_id, command.idempotency_key, str(command.saga_id)
            ):
                handle(command)
        finally:
            orders.aggregate = read  # type: ignore[method-assign]
        raced.append(command.action)
        return first

    registry.handle = racing  # type: ignore[method-assign]
    return raced


def test_a_duplicate_racing_each_step_of_a_fulfilment_changes_nothing(kit: SagaTestKit) -> None:
    raced = race_every_step(kit)
    order_id = kit.place("k-1", {"MUG-1": 2})
    kit.settle()
    assert kit.fulfilment(order_id) is SagaStatus.COMPLETED
    assert kit.violations() == []  # one authorization, one capture, one shipment
    assert {"orders.confirm", "payments.authorize", "payments.capture"} <= set(raced)
    assert "shipping.create_shipment" in raced


def test_a_duplicate_racing_each_step_of_a_compensation_changes_nothing(
    kit: SagaTestKit,
) -> None:
    kit.payments.decline("card declined")
    raced = race_every_step(kit)
    order_id = kit.place("k-1", {"MUG-1": 2})
    kit.settle()
    assert kit.fulfilment(order_id) is SagaStatus.COMPENSATED
    assert kit.commerce.orders.get(order_id).status is OrderStatus.CANCELLED
    assert kit.commerce.inventory.item("MUG-1").reserved == 0
    assert kit.violations() == []
    assert {"inventory.release_order", "orders.reject"} <= set(raced)


def test_a_duplicate_racing_each_step_of_a_cancellation_changes_nothing(
    kit: SagaTestKit,
) -> None:
    order_id = kit.place("k-1", {"MUG-1": 2})
    kit.settle()
    raced = race_every_step(kit)
    cancel = CancelOrder(order_id=order_id, reason="too slow", requested_by="alice")
    assert kit.commerce.order_sagas.cancel(cancel) is CancellationOutcome.AWAITING_APPROVAL
    approval = ApproveCancellation(order_id=order_id, approved_by="ops-ann")
    kit.commerce.order_sagas.approve_cancellation(approval)
    kit.settle()
    saga = kit.commerce.sagas.get(cancellation_saga_id(order_id))
    assert saga.status is SagaStatus.COMPLETED
    assert kit.commerce.orders.get(order_id).status is OrderStatus.CANCELLED
    assert kit.violations() == []  # one refund
    assert {"payments.refund", "orders.cancel"} <= set(raced)

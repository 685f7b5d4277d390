"""Saga definitions: what a sound definition is, back-off, versions, and the drawing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from suuupra_commerce.errors import SagaConfigurationError, UnknownSagaDefinitionError
from suuupra_commerce.sagas import ORDER_CANCELLATION, ORDER_FULFILMENT
from suuupra_commerce.sagas.definition import SagaDefinition, SagaRegistry, Step, StepRetry


def test_backoff_grows_by_the_coefficient_and_stops_at_the_cap() -> None:
    retry = StepRetry(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=3.0,
        max_interval=timedelta(seconds=20),
    )
    assert [retry.delay(n) for n in (1, 2, 3, 4)] == [
        timedelta(seconds=2),
        timedelta(seconds=6),
        timedelta(seconds=18),
        timedelta(seconds=20),
    ]


def test_an_error_is_final_when_its_type_or_a_base_type_is_named_non_retryable() -> None:
    retry = StepRetry(non_retryable=("BusinessRuleError",))
    assert not retry.is_retryable(("PaymentDeclinedError", "BusinessRuleError", "CommerceError"))
    assert retry.is_retryable(("ConnectionError", "OSError"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"backoff_coefficient": 0.5},
        {"initial_interval": timedelta(minutes=2), "max_interval": timedelta(minutes=1)},
        {"non_retryable": ("not an identifier",)},
    ],
)
def test_retry_policy_is_refused_when_unsound(kwargs: dict[str, object]) -> None:
    with pytest.raises(SagaConfigurationError):
        StepRetry(**kwargs)  # type: ignore[arg-type]


def test_steps_at_or_after_the_pivot_cannot_have_compensations() -> None:
    with pytest.raises(SagaConfigurationError, match="pivot"):
        Step("capture", "payments.capture", compensation="payments.refund", pivot=True)
    with pytest.raises(SagaConfigurationError, match="cannot compensate"):
        SagaDefinition(
            "demo",
            1,
            (Step("a", "x.a", pivot=True), Step("b", "x.b", compensation="x.undo_b")),
        )


@pytest.mark.parametrize(
    "steps",
    [
        (),
        (Step("a", "x.a"), Step("a", "x.b")),
        (Step("a", "x.a", pivot=True), Step("b", "x.b", pivot=True)),
    ],
)
def test_definition_is_refused_when_steps_are_empty_repeated_or_have_two_pivots(
    steps: tuple[Step, ...],
) -> None:
    with pytest.raises(SagaConfigurationError):
        SagaDefinition("demo", 1, steps)


@pytest.mark.parametrize("name", ["Bad", "with space", "x" * 65, ""])
def test_step_is_refused_when_its_name_is_not_lower_snake_case(name: str) -> None:
    with pytest.raises(SagaConfigurationError):
        Step(name, "x.a")


@pytest.mark.parametrize("action", ["nodot", "Upper.case", "x.", ".x"])
def test_step_is_refused_when_its_action_is_not_dotted(action: str) -> None:
    with pytest.raises(SagaConfigurationError):
        Step("a", action)


def test_registry_keeps_old_versions_beside_new_ones() -> None:
    v1 = SagaDefinition("demo", 1, (Step("a", "x.a"),))
    v2 = SagaDefinition("demo", 2, (Step("a", "x.a"), Step("b", "x.b")))
    registry = SagaRegistry([v1, v2])
    assert registry.latest("demo") is v2
    assert registry.get("demo", 1) is v1
    with pytest.raises(UnknownSagaDefinitionError):
        registry.get("demo", 3)
    with pytest.raises(SagaConfigurationError):
        registry.register(SagaDefinition("demo", 1, (Step("z", "x.z"),)))


def test_fulfilment_has_its_pivot_at_the_capture_and_compensates_only_before_it() -> None:
    names = [s.name for s in ORDER_FULFILMENT.steps]
    assert names == [
        "accept_order",
        "reserve_stock",
        "authorize_payment",
        "confirm_order",
        "capture_payment",
        "create_shipment",
        "notify_customer",
    ]
    assert ORDER_FULFILMENT.pivot_index == names.index("capture_payment")
    assert {s.name for s in ORDER_FULFILMENT.steps if s.compensation} == {
        "accept_order",
        "reserve_stock",
        "authorize_payment",
    }
    assert ORDER_CANCELLATION.pivot_index == 0


def test_mermaid_draws_every_step_and_compensation_when_exported() -> None:
    drawing = ORDER_FULFILMENT.to_mermaid()
    assert drawing.startswith("flowchart LR")
    for step in ORDER_FULFILMENT.steps:
        assert step.name in drawing
        assert step.action in drawing
    assert "capture_payment (pivot)" in drawing
    assert "undo authorize_payment<br/>payments.void" in drawing
    # the void runs first, then the stock is released, then the order rejected
    assert 'c2["undo authorize_payment<br/>payments.void"] -.-> c1' in drawing
    assert 'c1["undo reserve_stock<br/>inventory.release_order"] -.-> c0' in drawing

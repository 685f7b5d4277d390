"""StateTable: the lifecycle tables behind the aggregates."""

from __future__ import annotations

from enum import StrEnum

import pytest

from suuupra_commerce.errors import IllegalTransitionError
from suuupra_commerce.orders.lifecycle import ORDER_LIFECYCLE, OrderStatus
from suuupra_commerce.statemachine import StateTable


class Door(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    LOCKED = "locked"


DOOR = StateTable(
    "door",
    Door,
    Door.CLOSED,
    [
        ("open", [Door.CLOSED], Door.OPEN),
        ("close", [Door.OPEN], Door.CLOSED),
        ("lock", [Door.CLOSED], Door.LOCKED),
        ("knock", [Door.CLOSED, Door.LOCKED], None),
    ],
)


def test_moves_to_the_target_when_the_trigger_is_allowed() -> None:
    assert DOOR.next_state(Door.CLOSED, "lock") is Door.LOCKED


def test_stays_put_when_the_move_is_internal() -> None:
    assert DOOR.next_state(Door.LOCKED, "knock") is Door.LOCKED


def test_raises_illegal_transition_when_the_trigger_is_not_allowed() -> None:
    with pytest.raises(IllegalTransitionError) as raised:
        DOOR.next_state(Door.LOCKED, "open")
    assert (raised.value.entity, raised.value.state, raised.value.trigger) == (
        "door",
        "locked",
        "open",
    )


def test_raises_illegal_transition_when_the_trigger_is_unknown() -> None:
    with pytest.raises(IllegalTransitionError):
        DOOR.next_state(Door.OPEN, "fly")


def test_lists_allowed_triggers_in_table_order() -> None:
    assert DOOR.triggers(Door.CLOSED) == ["open", "lock", "knock"]
    assert DOOR.can(Door.OPEN, "close")
    assert not DOOR.can(Door.OPEN, "lock")


def test_refuses_an_ambiguous_table_when_built() -> None:
    with pytest.raises(ValueError, match="exactly one target"):
        StateTable(
            "door",
            Door,
            Door.CLOSED,
            [("open", [Door.CLOSED], Door.OPEN), ("open", [Door.CLOSED], Door.LOCKED)],
        )


def test_draws_the_order_lifecycle_as_mermaid() -> None:
    diagram = ORDER_LIFECYCLE.to_mermaid()
    assert diagram.startswith("stateDiagram-v2\n    [*] --> pending\n")
    assert "    pending --> confirmed: confirm" in diagram
    assert "    processing --> cancellation_requested: request_cancellation" in diagram
    assert ORDER_LIFECYCLE.initial is OrderStatus.PENDING

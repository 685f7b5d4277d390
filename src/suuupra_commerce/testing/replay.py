"""Replay checks: rebuild an aggregate from its events and compare it with the live one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from eventsourcing.domain import Aggregate, CanMutateAggregate

__all__ = ["replay", "state_of"]

A = TypeVar("A", bound=Aggregate)


def replay(events: Iterable[CanMutateAggregate[Any]]) -> Any:
    """The aggregate the events describe, rebuilt by their replay handlers alone."""
    aggregate: Any = None
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


def state_of(aggregate: Aggregate) -> dict[str, Any]:
    """Everything that makes up an aggregate's state (its attributes, less pending events)."""
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}

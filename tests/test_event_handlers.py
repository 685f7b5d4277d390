"""Every event type has a replay handler, and the read models know every event type."""

from __future__ import annotations

import inspect

import pytest
from eventsourcing.domain import Aggregate, DecoratedFuncCaller

from suuupra_commerce.carts.domain import Cart
from suuupra_commerce.inventory.domain import InventoryItem
from suuupra_commerce.inventory.views import InventoryProjection
from suuupra_commerce.orders.domain import Order
from suuupra_commerce.sagas.domain import Saga, StepExchange
from suuupra_commerce.sagas.views import SagaProjection

AGGREGATES = [InventoryItem, Order, Cart, Saga, StepExchange]
IRREGULAR_PAST = {"Placed", "Held", "Stuck"}


def _own_events(aggregate: type[Aggregate]) -> dict[str, type[Aggregate.Event]]:
    return {
        name: value
        for name, value in vars(aggregate).items()
        if inspect.isclass(value) and issubclass(value, Aggregate.Event) and name != "Event"
    }


@pytest.mark.parametrize("aggregate", AGGREGATES, ids=lambda a: a.__name__)
def test_each_event_is_applied_by_a_decorated_method_when_replayed(
    aggregate: type[Aggregate],
) -> None:
    events = _own_events(aggregate)
    created = [n for n, cls in events.items() if issubclass(cls, Aggregate.Created)]
    assert created, f"{aggregate.__name__} needs a creation event (applied by __init__)"
    unhandled = [
        name
        for name, cls in events.items()
        if name not in created and not issubclass(cls, DecoratedFuncCaller)
    ]
    assert unhandled == [], f"{aggregate.__name__} events with no @event handler: {unhandled}"


@pytest.mark.parametrize("aggregate", AGGREGATES, ids=lambda a: a.__name__)
def test_event_names_are_past_tense_when_declared(aggregate: type[Aggregate]) -> None:
    for name in _own_events(aggregate):
        assert name.endswith(("ed", "Needed", "Out")) or name in IRREGULAR_PAST, name


def test_inventory_projection_folds_every_inventory_event_when_built() -> None:
    handled = set(InventoryProjection().handled) | {InventoryItem.Registered}
    recorded = {cls for name, cls in _own_events(InventoryItem).items() if name != "Created"}
    assert recorded == handled


def test_saga_projection_folds_every_saga_event_when_built() -> None:
    handled = set(SagaProjection().handled) | {Saga.Started}
    recorded = {cls for name, cls in _own_events(Saga).items() if name != "Created"}
    assert recorded == handled

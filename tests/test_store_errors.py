"""A store that drops its connection surfaces as StoreUnavailableError; reads are retried."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eventsourcing.persistence import InterfaceError, OperationalError

from suuupra_commerce import Commerce, Money, RegisterItem, StoreUnavailableError
from suuupra_commerce.adapters.memory import InMemoryPriceBook

MUG = RegisterItem(sku="MUG-1", product_id="mug", name="Mug", unit_price=Money("9.50", "USD"))


@pytest.fixture
def commerce() -> Iterator[Commerce]:
    with Commerce.from_env(
        {"COMMERCE_PERSISTENCE": "memory"}, price_book=InMemoryPriceBook()
    ) as built:
        yield built


def failing(times: int, error: Exception, then: Callable[..., Any]) -> Callable[..., Any]:
    """``then``, after raising ``error`` the first ``times`` calls."""
    left = [times]

    def call(*args: Any, **kwargs: Any) -> Any:
        if left[0] > 0:
            left[0] -= 1
            raise error
        return then(*args, **kwargs)

    return call


@pytest.mark.parametrize("error", [OperationalError("server closed"), InterfaceError("closed")])
def test_a_command_whose_write_fails_raises_store_unavailable_and_is_not_retried(
    commerce: Commerce, error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = commerce.inventory.recorder
    monkeypatch.setattr(recorder, "insert_events", failing(1, error, recorder.insert_events))
    with pytest.raises(StoreUnavailableError, match="Inventory store is unavailable") as raised:
        commerce.inventory.register(MUG)
    assert raised.value.__cause__ is error
    assert commerce.inventory.items() == []  # not written, and not retried behind the caller
    commerce.inventory.register(MUG)  # sent again by the caller: done once
    assert [item.sku for item in commerce.inventory.items()] == ["MUG-1"]


def test_a_query_rides_out_a_dropped_connection(
    commerce: Commerce, monkeypatch: pytest.MonkeyPatch
) -> None:
    commerce.inventory.register(MUG)
    recorder = commerce.inventory.recorder
    select = recorder.select_notifications
    monkeypatch.setattr(recorder, "select_notifications", failing(2, OperationalError("x"), select))
    assert commerce.inventory.item("MUG-1").sku == "MUG-1"


def test_a_query_gives_up_with_store_unavailable_when_the_store_stays_down(
    commerce: Commerce, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = commerce.orders.recorder
    select = recorder.select_notifications
    monkeypatch.setattr(
        recorder, "select_notifications", failing(99, OperationalError("x"), select)
    )
    with pytest.raises(StoreUnavailableError, match="Orders store is unavailable"):
        commerce.orders.count_by_status()

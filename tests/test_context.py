"""Correlation and causation ids: a request's id flows through the saga to the participants."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.context import ContextLogFilter, command_context, metadata_of
from suuupra_commerce.errors import InvalidIdentifierError
from suuupra_commerce.inventory.domain import InventoryItem
from suuupra_commerce.orders.domain import Order
from suuupra_commerce.sagas.domain import Saga, StepExchange
from suuupra_commerce.sagas.orders import fulfilment_saga_id
from suuupra_commerce.system import Settings
from suuupra_commerce.testing.sagas import SagaTestKit


def _events(app: Any) -> list[Any]:
    return [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(0, 10_000)]


def test_request_id_flows_through_the_saga_to_every_participant_write(
    settings: Settings,
) -> None:
    with SagaTestKit(settings, price_book=InMemoryPriceBook()) as kit:
        kit.stock("MUG-1", 5)
        with command_context("req-42"):
            order_id = kit.place("k-1", {"MUG-1": 1})
        kit.settle()
        c = kit.commerce
        saga_id = fulfilment_saga_id(order_id)
        assert c.sagas.get(saga_id).correlation_id == "req-42"

        orders = [e for e in _events(c.orders) if e.originator_id == order_id]
        placed = next(e for e in orders if isinstance(e, Order.Placed))
        assert metadata_of(placed) == {"correlation_id": "req-42", "causation_id": "req-42"}
        for e in orders:
            assert metadata_of(e)["correlation_id"] == "req-42", type(e).__name__
        captured = next(e for e in orders if isinstance(e, Order.PaymentCaptured))
        assert metadata_of(captured)["causation_id"] == f"{saga_id}/capture_payment/1"

        sagas = [e for e in _events(c.sagas) if e.originator_id == saga_id]
        assert {metadata_of(e)["correlation_id"] for e in sagas} == {"req-42"}
        started = next(e for e in sagas if isinstance(e, Saga.Started))
        assert metadata_of(started)["causation_id"].startswith("Orders/")

        replies = [e for e in _events(c.saga_dispatcher) if isinstance(e, StepExchange.Replied)]
        assert {metadata_of(e)["correlation_id"] for e in replies} == {"req-42"}

        confirmed = [
            e for e in _events(c.inventory) if isinstance(e, InventoryItem.ReservationConfirmed)
        ]
        assert [metadata_of(e) for e in confirmed] == [
            {"correlation_id": "req-42", "causation_id": f"{saga_id}/confirm_order/1"}
        ]


def test_write_outside_any_context_starts_a_correlation_of_its_own() -> None:
    settings = Settings.from_env({"COMMERCE_PERSISTENCE": "memory"})
    with SagaTestKit(settings, price_book=InMemoryPriceBook()) as kit:
        kit.stock("MUG-1", 5)
        kit.stock("TEE-M", 5)
        registered = [
            metadata_of(e)
            for e in _events(kit.commerce.inventory)
            if isinstance(e, InventoryItem.Registered)
        ]
        first, second = registered
        assert first["correlation_id"] == first["causation_id"]
        assert first["correlation_id"] != second["correlation_id"]


def test_nested_context_keeps_the_correlation_and_names_its_own_cause() -> None:
    with command_context("req-1"), command_context(causation_id="step-9") as inner:
        assert (inner.correlation_id, inner.causation_id) == ("req-1", "step-9")


@pytest.mark.parametrize("bad", ["", "x" * 300, "a\x00b"])
def test_context_is_refused_when_its_ids_are_malformed(bad: str) -> None:
    with pytest.raises(InvalidIdentifierError), command_context(bad):
        pass


def test_log_records_carry_the_ids_when_the_filter_is_attached() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(ContextLogFilter())
    logger = logging.getLogger("test.context")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with command_context("req-7", "cause-3"):
            logger.info("inside")
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    assert [(r.correlation_id, r.causation_id) for r in records] == [  # type: ignore[attr-defined]
        ("req-7", "cause-3"),
        ("-", "-"),
    ]

"""OpenTelemetry spans for commands and saga steps, seen through the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from suuupra_commerce import tracing
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.errors import UnknownSkuError
from suuupra_commerce.sagas.orders import fulfilment_saga_id
from suuupra_commerce.system import Settings
from suuupra_commerce.testing.sagas import SagaTestKit


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_tracer_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_tracer_provider(None)
        provider.shutdown()


def test_commands_and_saga_steps_run_in_spans(spans: InMemorySpanExporter) -> None:
    memory = Settings.from_env({"COMMERCE_PERSISTENCE": "memory"})
    with SagaTestKit(memory, price_book=InMemoryPriceBook()) as kit:
        kit.stock("MUG-1", 5)
        order_id = kit.place("k-1", {"MUG-1": 1})
        kit.settle()
    names = [s.name for s in spans.get_finished_spans()]
    assert "commerce.Inventory.register" in names
    assert "commerce.Orders.place" in names
    assert "commerce.Inventory.reserve" in names, "nested service calls have spans too"
    capture = next(s for s in spans.get_finished_spans() if s.name == "saga.payments.capture")
    assert capture.attributes is not None
    assert capture.attributes["saga.id"] == str(fulfilment_saga_id(order_id))
    assert capture.attributes["saga.step"] == "capture_payment"
    assert capture.attributes["saga.outcome"] == "succeeded"


def test_a_failing_command_marks_its_span_as_an_error(spans: InMemorySpanExporter) -> None:
    memory = Settings.from_env({"COMMERCE_PERSISTENCE": "memory"})
    with SagaTestKit(memory, price_book=InMemoryPriceBook()) as kit, pytest.raises(UnknownSkuError):
        kit.commerce.inventory.item("NOPE-1")
    [failed] = [s for s in spans.get_finished_spans() if s.name == "commerce.Inventory.item"]
    assert not failed.status.is_ok
    assert failed.events[0].name == "exception"


def test_without_a_tracer_provider_no_span_is_made() -> None:
    from opentelemetry import trace

    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # none set here
    with tracing.span("commerce.nothing") as current:
        assert current is None
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_a_span_made_within_a_parent_continues_its_trace(spans: InMemorySpanExporter) -> None:
    with tracing.span("parent") as parent, tracing.span("child") as child:
        assert child.get_span_context().trace_id == parent.get_span_context().trace_id
    names = [s.name for s in spans.get_finished_spans()]
    assert names == ["child", "parent"]

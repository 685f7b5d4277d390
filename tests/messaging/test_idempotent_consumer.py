"""The idempotent consumer: once per message id, failures retried, the request's context kept."""

from __future__ import annotations

import logging
import time

import pytest

from suuupra_commerce.adapters.memory_messaging import InMemoryMessageBus, InMemoryProcessedMessages
from suuupra_commerce.context import CommandContext, current_context
from suuupra_commerce.messaging import DeliveryPolicy, Envelope, IdempotentConsumer, PollResult

from .conftest import envelope

POLICY = DeliveryPolicy(redeliver_after=0.2, max_deliveries=3)


def test_a_message_is_handled_once_when_it_is_delivered_three_times() -> None:
    bus = InMemoryMessageBus(POLICY)
    handled: list[str] = []
    worker = IdempotentConsumer(
        bus.consumer("orders", "billing", "c1"),
        lambda e: handled.append(e.id),
        InMemoryProcessedMessages(),
    )
    sent = envelope()
    bus.publish("orders", sent)
    bus.publish("orders", sent)
    assert worker.poll() == PollResult(handled=1, duplicates=1)
    bus.publish("orders", sent)
    assert worker.poll() == PollResult(duplicates=1)
    assert handled == [sent.id]


def test_a_failed_message_is_retried_after_the_idle_time_and_the_rest_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = InMemoryMessageBus(POLICY)
    failures = {"m": 1}
    handled: list[str] = []

    def flaky(message: Envelope) -> None:
        if message.payload.get("flaky") and failures["m"]:
            failures["m"] -= 1
            raise RuntimeError("downstream timed out")
        handled.append(message.id)

    worker = IdempotentConsumer(
        bus.consumer("orders", "billing", "c1"), flaky, InMemoryProcessedMessages()
    )
    first, second = envelope(flaky=True), envelope()
    bus.publish("orders", first, second)
    with caplog.at_level(logging.ERROR, logger="suuupra_commerce.messaging.consumer"):
        assert worker.poll() == PollResult(handled=1, failed=1)
    assert "downstream timed out" in caplog.text
    time.sleep(POLICY.redeliver_after + 0.05)
    assert worker.poll() == PollResult(handled=1)
    assert handled == [second.id, first.id]


def test_a_message_that_always_fails_ends_in_the_dead_letters() -> None:
    bus = InMemoryMessageBus(POLICY)

    def broken(message: Envelope) -> None:
        raise ValueError("cannot handle")

    worker = IdempotentConsumer(
        bus.consumer("orders", "billing", "c1"), broken, InMemoryProcessedMessages()
    )
    bus.publish("orders", poison := envelope())
    for _ in range(POLICY.max_deliveries):
        assert worker.poll().failed == 1
        time.sleep(POLICY.redeliver_after + 0.05)
    assert worker.poll() == PollResult()
    assert [d.envelope for d in bus.dead_letters("orders")] == [poison]


def test_the_handler_runs_in_the_messages_correlation_with_the_message_as_cause() -> None:
    bus = InMemoryMessageBus(POLICY)
    contexts: list[CommandContext | None] = []
    worker = IdempotentConsumer(
        bus.consumer("orders", "billing", "c1"),
        lambda e: contexts.append(current_context()),
        InMemoryProcessedMessages(),
    )
    bus.publish("orders", sent := envelope())
    worker.poll()
    assert contexts == [CommandContext(correlation_id="req-1", causation_id=sent.id)]

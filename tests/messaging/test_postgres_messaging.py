"""What only PostgreSQL has: LISTEN/NOTIFY wake-ups, checked identifiers, table-backed stores."""

from __future__ import annotations

import threading
import time

import pytest

from suuupra_commerce.adapters.postgres_messaging import (
    PostgresMessageBus,
    PostgresNotificationWaiter,
    PostgresProcessedMessages,
    PostgresRelayPositions,
)
from suuupra_commerce.errors import InvalidInputError, MessagingUnavailableError
from suuupra_commerce.inventory.commands import RegisterItem
from suuupra_commerce.inventory.service import Inventory
from suuupra_commerce.money import Money

from .conftest import envelope

pytestmark = pytest.mark.postgres


def _register(inventory: Inventory, sku: str) -> None:
    inventory.register(
        RegisterItem(sku=sku, product_id=sku.lower(), name=sku, unit_price=Money("1.00", "USD"))
    )


def test_a_blocked_reader_wakes_within_a_bound_when_another_connection_commits(
    postgres_schema: dict[str, str],
) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", **postgres_schema}
    with Inventory(env) as writer, Inventory(env) as reader:
        _register(writer, "MUG-1")  # creates the table
        waiter = PostgresNotificationWaiter.for_application(postgres_schema, reader)
        try:
            while waiter.wait(0.05):  # forget wake-ups from before (other tests, setup)
                pass
            woke: list[float] = []

            def block() -> None:
                woke.append(time.monotonic() if waiter.wait(10.0) else float("inf"))

            thread = threading.Thread(target=block)
            thread.start()
            time.sleep(0.3)  # the reader is blocked in wait()
            committed = time.monotonic()
            _register(writer, "CAP-1")  # another application, its own connection
            thread.join(timeout=15)
            assert reader.recorder.max_notification_id() == 2  # what woke it is readable
        finally:
            waiter.close()
    assert woke, "the reader never returned"
    assert woke[0] - committed < 1.0


def test_a_waiter_reports_no_news_when_nothing_commits_before_its_timeout(
    postgres_schema: dict[str, str],
) -> None:
    waiter = PostgresNotificationWaiter(postgres_schema, "quiet_channel_for_tests")
    try:
        started = time.monotonic()
        assert waiter.wait(0.3) is False
        assert 0.25 <= time.monotonic() - started < 2.0
    finally:
        waiter.close()


def test_a_waiter_wakes_when_it_had_to_reconnect(postgres_schema: dict[str, str]) -> None:
    from .conftest import _kill_backends

    waiter = PostgresNotificationWaiter(postgres_schema, "quiet_channel_for_tests")
    try:
        assert _kill_backends(postgres_schema, "suuupra-commerce listen quiet_channel_for_tests")
        assert waiter.wait(5.0) is True  # notifications may have been missed meanwhile
        assert waiter.wait(0.1) is False
    finally:
        waiter.close()


def test_a_waiter_needs_an_application_stored_in_postgres(postgres_schema: dict[str, str]) -> None:
    with (
        Inventory({"PERSISTENCE_MODULE": "eventsourcing.popo"}) as app,
        pytest.raises(InvalidInputError, match="PostgreSQL"),
    ):
        PostgresNotificationWaiter.for_application(postgres_schema, app)


@pytest.mark.parametrize(
    "prefix", ["", "Bus", "bus; DROP TABLE x", 'a"b', "x" * 42, "1bus", "bus-1"]
)
def test_a_table_prefix_that_is_not_a_plain_identifier_is_refused(
    postgres_schema: dict[str, str], prefix: str
) -> None:
    with pytest.raises(InvalidInputError):
        PostgresMessageBus(postgres_schema, prefix=prefix)


def test_a_schema_that_is_not_a_plain_identifier_is_refused(
    postgres_schema: dict[str, str],
) -> None:
    with pytest.raises(InvalidInputError):
        PostgresMessageBus({**postgres_schema, "POSTGRES_SCHEMA": 'x"; --'})


def test_an_unreachable_server_is_a_messaging_unavailable_error_within_a_bound(
    postgres_schema: dict[str, str],
) -> None:
    started = time.monotonic()
    with pytest.raises(MessagingUnavailableError, match="create tables"):
        PostgresMessageBus({**postgres_schema, "POSTGRES_PORT": "1"}, retries=1)
    assert time.monotonic() - started < 10


def test_a_consumer_goes_on_after_its_connection_is_killed(
    postgres_schema: dict[str, str],
) -> None:
    from .conftest import _kill_backends

    bus = PostgresMessageBus(postgres_schema)
    try:
        consumer = bus.consumer("orders", "billing", "c1")
        assert consumer.receive() == []
        assert _kill_backends(postgres_schema, "suuupra-commerce consumer billing/c1")
        bus.publish("orders", sent := envelope())
        assert [d.envelope.id for d in consumer.receive()] == [sent.id]
    finally:
        bus.close()


def test_table_backed_dedupe_and_positions_keep_their_promises(
    postgres_schema: dict[str, str],
) -> None:
    processed = PostgresProcessedMessages(postgres_schema)
    positions = PostgresRelayPositions(postgres_schema)
    try:
        assert not processed.seen("billing", "m-1")
        processed.remember("billing", "m-1")
        processed.remember("billing", "m-1")
        assert processed.seen("billing", "m-1")
        assert not processed.seen("shipping", "m-1")
        positions.save("orders", 9)
        positions.save("orders", 4)
        assert (positions.position("orders"), positions.position("carts")) == (9, 0)
    finally:
        processed.close()
        positions.close()

"""The outbox relay: every event published at least once, whatever point it is killed at."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from suuupra_commerce.adapters.memory_messaging import (
    InMemoryMessageBus,
    InMemoryProcessedMessages,
    InMemoryRelayPositions,
)
from suuupra_commerce.context import command_context
from suuupra_commerce.errors import StoreUnavailableError
from suuupra_commerce.inventory.commands import (
    RegisterItem,
    ReleaseReservation,
    ReservationLine,
    ReserveStock,
)
from suuupra_commerce.inventory.domain import reservation_id_for
from suuupra_commerce.inventory.service import Inventory
from suuupra_commerce.messaging import (
    DeliveryPolicy,
    Envelope,
    IdempotentConsumer,
    MessageBus,
    OutboxRelay,
    decode,
)
from suuupra_commerce.messaging.events import INVENTORY_TOPIC, StockLow, StockReserved
from suuupra_commerce.money import Money


class Killed(BaseException):
    """The relay's process dies here (a BaseException: nothing in the relay catches it)."""


class KillableBus:
    """A bus that kills its caller at the ``kill_at``-th publish, before or after it lands."""

    def __init__(self, bus: MessageBus, kill_at: int | None, after: bool) -> None:
        self.bus = bus
        self.kill_at = kill_at
        self.after = after
        self.calls = 0

    def publish(self, topic: str, *envelopes: Envelope) -> None:
        self.calls += 1
        if self.calls == self.kill_at and not self.after:
            raise Killed
        self.bus.publish(topic, *envelopes)
        if self.calls == self.kill_at and self.after:
            raise Killed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bus, name)


class KillablePositions(InMemoryRelayPositions):
    """Positions that kill their caller at the ``kill_at``-th save, before or after it lands."""

    def __init__(self, kill_at: int | None = None, after: bool = False) -> None:
        super().__init__()
        self.kill_at = kill_at
        self.after = after
        self.saves = 0

    def save(self, relay: str, position: int) -> None:
        self.saves += 1
        if self.saves == self.kill_at and not self.after:
            raise Killed
        super().save(relay, position)
        if self.saves == self.kill_at and self.after:
            raise Killed


def _item(sku: str, quantity: int, low: int = 0) -> RegisterItem:
    return RegisterItem(
        sku=sku,
        product_id=sku.lower(),
        name=sku,
        unit_price=Money("5.00", "USD"),
        initial_quantity=quantity,
        low_stock_threshold=low,
    )


def _trade(inventory: Inventory) -> None:
    """Commands that record published and unpublished events, on two SKUs."""
    inventory.register(_item("MUG-1", 10, low=8))
    inventory.register(_item("CAP-1", 10))
    for n in range(4):
        with command_context(correlation_id=f"req-{n}"):
            inventory.reserve(
                ReserveStock(
                    order_id=f"order-{n}",
                    lines=[ReservationLine(sku="MUG-1", quantity=1)]
                    + ([ReservationLine(sku="CAP-1", quantity=2)] if n % 2 else []),
                )
            )
    inventory.release(
        ReleaseReservation(sku="MUG-1", reservation_id=reservation_id_for("order-0", "MUG-1"))
    )


@pytest.fixture
def inventory() -> Iterator[Inventory]:
    with Inventory({"PERSISTENCE_MODULE": "eventsourcing.popo"}) as app:
        _trade(app)
        yield app


def _reference_ids(inventory: Inventory) -> list[str]:
    """What a relay that is never killed publishes, in order."""
    bus = InMemoryMessageBus()
    consumer = bus.consumer(INVENTORY_TOPIC, "reference", "c")
    OutboxRelay(inventory, bus, InMemoryRelayPositions()).run_until_caught_up()
    return [d.envelope.id for d in consumer.receive(max_messages=1000)]


def test_the_relay_publishes_integration_events_in_recorded_order(inventory: Inventory) -> None:
    bus = InMemoryMessageBus()
    consumer = bus.consumer(INVENTORY_TOPIC, "g", "c")
    relay = OutboxRelay(inventory, bus, InMemoryRelayPositions(), batch_size=3)
    relay.run_until_caught_up()
    envelopes = [d.envelope for d in consumer.receive(max_messages=100)]
    events = [decode(e) for e in envelopes]
    kinds = [(type(e).__name__, e.key) for e in events]
    assert kinds == [
        ("StockReserved", "MUG-1"),  # order-0: 9 left
        ("StockReserved", "CAP-1"),  # order-1 reserves both SKUs in one write
        ("StockReserved", "MUG-1"),
        ("StockLow", "MUG-1"),  # 8 left: at the threshold
        ("StockReserved", "MUG-1"),  # order-2
        ("StockReserved", "CAP-1"),  # order-3
        ("StockReserved", "MUG-1"),
        ("StockReleased", "MUG-1"),  # order-0 let go
    ]
    assert isinstance(events[0], StockReserved)
    assert (events[0].sku, events[0].order_id, events[0].quantity) == ("MUG-1", "order-0", 1)
    assert isinstance(events[3], StockLow)
    assert (events[3].available, events[3].threshold) == (8, 8)
    assert envelopes[0].correlation_id == "req-0"
    assert {e.source for e in envelopes} == {"inventory"}
    assert all(e.published_at is not None for e in envelopes)
    assert relay.position == inventory.recorder.max_notification_id()


def test_republishing_sends_the_same_message_ids_when_run_again_from_the_start(
    inventory: Inventory,
) -> None:
    assert _reference_ids(inventory) == _reference_ids(inventory)
    assert len(set(_reference_ids(inventory))) == 8


def test_the_relay_moves_its_position_past_events_that_are_not_published() -> None:
    with Inventory({"PERSISTENCE_MODULE": "eventsourcing.popo"}) as app:
        app.register(_item("MUG-1", 10))  # registered + received: neither is published
        bus = InMemoryMessageBus()
        relay = OutboxRelay(app, bus, InMemoryRelayPositions())
        assert relay.run_until_caught_up() == 2
        assert relay.position == 2
        assert bus.length(INVENTORY_TOPIC) == 0


# With two notifications a batch, saves 1 and 2 cover registrations (nothing published);
# saves 3 to 6 each follow one publish.
KILL_POINTS = [
    *[pytest.param("publish", n, False, id=f"before-publish-{n}") for n in (1, 2, 4)],
    *[pytest.param("publish", n, True, id=f"after-publish-{n}") for n in (1, 2, 4)],
    *[pytest.param("save", n, False, id=f"before-save-{n}") for n in (1, 3, 6)],
    *[pytest.param("save", n, True, id=f"after-save-{n}") for n in (1, 3, 6)],
]


@pytest.mark.parametrize(("where", "kill_at", "after"), KILL_POINTS)
def test_nothing_is_lost_or_handled_twice_when_the_relay_is_killed(
    inventory: Inventory, where: str, kill_at: int, after: bool
) -> None:
    expected = _reference_ids(inventory)
    bus = InMemoryMessageBus(DeliveryPolicy(redeliver_after=0.2))
    consumer = bus.consumer(INVENTORY_TOPIC, "billing", "c1")
    handled: list[str] = []
    worker = IdempotentConsumer(
        consumer, lambda e: handled.append(e.id), InMemoryProcessedMessages()
    )
    positions = KillablePositions(kill_at if where == "save" else None, after)
    killable = KillableBus(bus, kill_at if where == "publish" else None, after)

    with pytest.raises(Killed):
        OutboxRelay(inventory, killable, positions, batch_size=2).run_until_caught_up()
    worker.poll(max_messages=100)  # the consumer handles what got out before the kill

    restarted = OutboxRelay(inventory, bus, positions, batch_size=2)  # a new process
    restarted.run_until_caught_up()
    worker.poll(max_messages=100)

    assert handled == expected
    assert restarted.position == inventory.recorder.max_notification_id()
    published = bus.length(INVENTORY_TOPIC)
    republished = (where == "publish" and after) or (where == "save" and not after and kill_at > 2)
    if republished:  # published, not saved: sent again, and the consumer dropped the copies
        assert published > len(expected)
    else:
        assert published == len(expected)


def test_the_relay_reports_an_unreachable_store_as_an_adapter_error(inventory: Inventory) -> None:
    from eventsourcing.persistence import OperationalError

    class Broken:
        def select_notifications(self, *args: Any, **kwargs: Any) -> Any:
            raise OperationalError("connection lost")

    relay = OutboxRelay(inventory, InMemoryMessageBus(), InMemoryRelayPositions())
    relay.application = type("App", (), {"recorder": Broken(), "name": "Inventory"})()
    with pytest.raises(StoreUnavailableError, match="connection lost"):
        relay.run_once()


def test_a_running_relay_publishes_new_events_when_polling(inventory: Inventory) -> None:
    bus = InMemoryMessageBus()
    consumer = bus.consumer(INVENTORY_TOPIC, "g", "c")
    relay = OutboxRelay(inventory, bus, InMemoryRelayPositions())
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), kwargs={"idle_wait": 0.05})
    thread.start()
    try:
        assert len(consumer.receive(max_messages=100, wait=5.0)) > 0
        consumer.receive(max_messages=100, wait=0.2)
        inventory.reserve(
            ReserveStock(order_id="late", lines=[ReservationLine(sku="CAP-1", quantity=1)])
        )
        [late] = consumer.receive(max_messages=100, wait=5.0)
        reserved = decode(late.envelope)
        assert isinstance(reserved, StockReserved)
        assert (reserved.sku, reserved.order_id) == ("CAP-1", "late")
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


@pytest.mark.redis
def test_events_reach_a_redis_consumer_once_when_a_sqlite_app_relays_and_crashes(
    redis_available: str, redis_namespace: str, tmp_path: Path
) -> None:
    from suuupra_commerce.adapters.redis_messaging import (
        RedisProcessedMessages,
        RedisRelayPositions,
        RedisStreamBus,
        redis_client,
    )

    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "i.db")}
    client = redis_client(redis_available)
    bus = RedisStreamBus(client, namespace=redis_namespace)
    positions = RedisRelayPositions(client, namespace=redis_namespace)
    handled: list[Envelope] = []
    worker = IdempotentConsumer(
        bus.consumer(INVENTORY_TOPIC, "warehouse", "w1"),
        handled.append,
        RedisProcessedMessages(client, namespace=redis_namespace, ttl=60),
    )
    try:
        with Inventory(env) as inventory:
            _trade(inventory)
            expected = _reference_ids(inventory)
            relay = OutboxRelay(inventory, bus, positions, batch_size=4)
            stop = threading.Event()
            thread = threading.Thread(target=relay.run, args=(stop,), kwargs={"idle_wait": 0.05})
            thread.start()
            deadline = time.monotonic() + 10
            while len(handled) < len(expected) and time.monotonic() < deadline:
                worker.poll(max_messages=50, wait=0.5)
            stop.set()
            thread.join(timeout=5)

            # A relay that lost its saved position (killed before saving) publishes it all again.
            client.delete(f"{redis_namespace}:relay:inventory")
            assert OutboxRelay(inventory, bus, positions).run_until_caught_up() > 0
            while worker.poll(max_messages=50).received:
                pass
        assert [e.id for e in handled] == expected
        assert bus.length(INVENTORY_TOPIC) == 2 * len(expected)
        assert {decode(e).event_type for e in handled} == {
            "commerce.stock.reserved",
            "commerce.stock.low",
            "commerce.stock.released",
        }
        assert sorted(k.decode() for k in client.scan_iter(f"{redis_namespace}:relay:*")) == [
            f"{redis_namespace}:relay:inventory"
        ]
    finally:
        bus.close()
        client.close()


@pytest.mark.postgres
def test_a_relay_waiting_on_notify_publishes_a_commit_within_a_second(
    postgres_schema: dict[str, str],
) -> None:
    from suuupra_commerce.adapters.postgres_messaging import (
        PostgresMessageBus,
        PostgresNotificationWaiter,
        PostgresRelayPositions,
    )

    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", **postgres_schema}
    bus = PostgresMessageBus(postgres_schema)
    positions = PostgresRelayPositions(postgres_schema)
    with Inventory(env) as inventory:
        inventory.register(_item("MUG-1", 10))
        waiter = PostgresNotificationWaiter.for_application(postgres_schema, inventory)
        consumer = bus.consumer(INVENTORY_TOPIC, "g", "c")
        relay = OutboxRelay(inventory, bus, positions)
        stop = threading.Event()
        # idle_wait is long: only a notification can wake the relay in time.
        thread = threading.Thread(target=relay.run, args=(stop, waiter), kwargs={"idle_wait": 30})
        thread.start()
        try:
            time.sleep(0.3)  # the relay has caught up and sleeps on the waiter
            started = time.monotonic()
            inventory.reserve(
                ReserveStock(order_id="o-1", lines=[ReservationLine(sku="MUG-1", quantity=1)])
            )
            [delivery] = consumer.receive(wait=5.0)
            latency = time.monotonic() - started
        finally:
            stop.set()
            inventory.reserve(  # a commit notifies: the relay wakes and sees the stop
                ReserveStock(order_id="o-2", lines=[ReservationLine(sku="MUG-1", quantity=1)])
            )
            thread.join(timeout=10)
            waiter.close()
            bus.close()
            positions.close()
    assert delivery.envelope.type == "commerce.stock.reserved"
    assert latency < 1.0
    assert not thread.is_alive()

"""The Redis event store's own promises: races, gap-free ids, expiry, namespaces, failures."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any, cast
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import pytest
import redis
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.cipher import AESCipher
from eventsourcing.domain import Aggregate, DomainEventProtocol, event
from eventsourcing.persistence import (
    IntegrityError,
    MapperDeserialisationError,
    Notification,
    OperationalError,
    StoredEvent,
    Tracking,
)
from eventsourcing.projection import EventSourcedProjection, EventSourcedProjectionRunner
from eventsourcing.utils import Environment

from suuupra_commerce import AddItem, CreateCart, Money, RegisterItem
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.adapters.redis import (
    RedisApplicationRecorder,
    RedisFactory,
    RedisProcessRecorder,
    ScriptArg,
)
from suuupra_commerce.errors import CartNotFoundError, StoreUnavailableError
from suuupra_commerce.inventory.service import Inventory
from suuupra_commerce.system import Commerce, Settings
from suuupra_commerce.testing import FakeClock

pytestmark = pytest.mark.redis

MODULE = "suuupra_commerce.adapters.redis"


@pytest.fixture
def open_factory(
    redis_available: str, redis_namespace: str
) -> Iterator[Callable[..., RedisFactory]]:
    """Builds factories on this test's namespace (``name``, extra settings); closes them after."""
    built: list[RedisFactory] = []

    def build(name: str = "Store", prefix: str | None = None, **settings: str) -> RedisFactory:
        env = {
            "REDIS_URL": redis_available,
            "REDIS_KEY_PREFIX": prefix if prefix is not None else f"{redis_namespace}:",
            **settings,
        }
        factory = RedisFactory(Environment(name, env))
        built.append(factory)
        return factory

    yield build
    for factory in built:
        factory.close()


def _app_recorder(factory: RedisFactory) -> RedisApplicationRecorder:
    recorder = factory.application_recorder()
    assert isinstance(recorder, RedisApplicationRecorder)
    return recorder


def _event(
    originator_id: UUID, version: int, state: bytes = b"{}", topic: str = "t"
) -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id, originator_version=version, topic=topic, state=state
    )


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


# --- races and ordering -------------------------------------------------------------------------


def _race(recorder: RedisApplicationRecorder, shared: UUID, own: dict[str, UUID]) -> dict[str, str]:
    """Two writers insert at once: both at version 1 of ``shared``, each with one of its own."""
    start = threading.Barrier(len(own))
    outcome: dict[str, str] = {}

    def write(name: str) -> None:
        start.wait()
        try:
            recorder.insert_events(
                [_event(shared, 1, name.encode()), _event(own[name], 1, name.encode())]
            )
        except IntegrityError:
            outcome[name] = "lost"
        else:
            outcome[name] = "won"

    threads = [threading.Thread(target=write, args=(name,)) for name in own]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


def test_exactly_one_writer_wins_and_the_loser_writes_nothing_when_two_race_for_a_version(
    open_factory: Callable[..., RedisFactory],
) -> None:
    recorder = _app_recorder(open_factory())
    rounds = 40
    for _ in range(rounds):
        shared, own = uuid4(), {"a": uuid4(), "b": uuid4()}
        outcome = _race(recorder, shared, own)

        assert sorted(outcome.values()) == ["lost", "won"]
        winner = next(n for n, o in outcome.items() if o == "won")
        loser = next(n for n, o in outcome.items() if o == "lost")
        assert [e.state for e in recorder.select_events(shared)] == [winner.encode()]
        assert recorder.select_events(own[loser]) == []
        assert [e.state for e in recorder.select_events(own[winner])] == [winner.encode()]

    # Only the winners' events were numbered: two per round, with no gap left by a loser.
    ids = [n.id for n in recorder.select_notifications(None, 10 * rounds)]
    assert ids == list(range(1, 2 * rounds + 1))


def test_ids_run_from_1_to_n_and_tailing_readers_miss_none_when_many_threads_write(
    open_factory: Callable[..., RedisFactory],
) -> None:
    recorder = _app_recorder(open_factory())
    writers, inserts_each = 8, 40
    sizes = [1 + (i % 3) for i in range(inserts_each)]
    total = writers * sum(sizes)
    returned: list[list[int]] = []
    polled: list[int] = []
    streamed: list[int] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for size in sizes:
                originator = uuid4()
                ids = recorder.insert_events([_event(originator, v) for v in range(1, size + 1)])
                assert ids is not None
                returned.append(list(ids))
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            errors.append(error)

    def poll() -> None:
        deadline = time.monotonic() + 60
        position = 0
        while len(polled) < total and time.monotonic() < deadline:
            for notification in recorder.select_notifications(
                position, limit=37, inclusive_of_start=False
            ):
                polled.append(notification.id)
                position = notification.id

    def stream() -> None:
        with recorder.subscribe(gt=0) as subscription:
            for notification in subscription:
                streamed.append(notification.id)
                if len(streamed) == total:
                    break

    readers = [threading.Thread(target=poll), threading.Thread(target=stream)]
    for reader in readers:
        reader.start()
    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for reader in readers:
        reader.join(timeout=60)

    assert errors == []
    everything = list(range(1, total + 1))
    assert sorted(i for ids in returned for i in ids) == everything
    assert all(ids == list(range(ids[0], ids[0] + len(ids))) for ids in returned)
    assert polled == everything
    assert streamed == everything
    assert recorder.max_notification_id() == total


def test_a_subscription_yields_only_the_topics_asked_for_including_events_recorded_later(
    open_factory: Callable[..., RedisFactory],
) -> None:
    recorder = _app_recorder(open_factory())
    recorder.insert_events([_event(uuid4(), 1, topic="a"), _event(uuid4(), 1, topic="b")])
    seen: list[Notification] = []
    with recorder.subscribe(gt=None, topics=["b"]) as subscription:
        for notification in subscription:
            seen.append(notification)
            if len(seen) == 1:
                recorder.insert_events(
                    [_event(uuid4(), 1, topic="a"), _event(uuid4(), 1, topic="b")]
                )
            if len(seen) == 2:
                break
    assert [(n.id, n.topic) for n in seen] == [(2, "b"), (4, "b")]


class Tally(Aggregate):
    """Counts what a projection saw."""

    def __init__(self) -> None:
        self.count = 0

    @staticmethod
    def create_id() -> UUID:
        return uuid5(NAMESPACE_URL, "suuupra-commerce/tests/tally")

    @event("Counted")
    def count_one(self) -> None:
        self.count += 1


class Counting(EventSourcedProjection[UUID]):
    """An event-sourced projection that counts its upstream application's events."""

    def policy(
        self, domain_event: DomainEventProtocol[UUID], processing_event: ProcessingEvent[UUID]
    ) -> None:
        try:
            tally: Tally = self.repository.get(Tally.create_id())
        except AggregateNotFoundError:
            tally = Tally()
        tally.count_one()
        processing_event.collect_events(tally)


def test_an_event_sourced_projection_follows_an_application_when_both_live_in_redis(
    redis_available: str, redis_namespace: str
) -> None:
    env = {
        "PERSISTENCE_MODULE": MODULE,
        "REDIS_URL": redis_available,
        "REDIS_KEY_PREFIX": f"{redis_namespace}:",
    }
    with EventSourcedProjectionRunner(
        application_class=Application[UUID], projection_class=Counting, env=env
    ) as runner:
        for _ in range(3):
            recordings = runner.app.save(Aggregate())
        runner.wait(recordings[-1].notification.id)
        tally: Tally = runner.projection.repository.get(Tally.create_id())
        assert tally.count == 3
        assert runner.projection.recorder.max_tracking_id(runner.app.name) == 3


# --- lost connections and lost replies ---------------------------------------------------------


class LostReply:
    """Stands in for the insert script: runs it, or not, then loses the reply, ``times`` times."""

    def __init__(self, script: Any, *, times: int = 1, run_first: bool = True) -> None:
        self.script = script
        self.times = times
        self.run_first = run_first
        self.calls: list[list[ScriptArg]] = []

    def __call__(self, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        self.calls.append(list(args))
        if len(self.calls) <= self.times:
            if self.run_first:
                self.script(keys=keys, args=args)
            raise redis.exceptions.ConnectionError("Connection closed by server.")
        return self.script(keys=keys, args=args)


def test_a_write_whose_reply_was_lost_is_retried_without_writing_twice(
    open_factory: Callable[..., RedisFactory],
) -> None:
    recorder = open_factory().process_recorder()
    assert isinstance(recorder, RedisProcessRecorder)
    lost = LostReply(recorder.datastore._insert)
    recorder.datastore._insert = lost  # type: ignore[assignment]
    originator = uuid4()

    ids = recorder.insert_events(
        [_event(originator, 1), _event(originator, 2)], tracking=Tracking("upstream", 7)
    )

    assert ids == [1, 2]
    assert len(lost.calls) == 2
    assert [n.id for n in recorder.select_notifications(None, 10)] == [1, 2]
    assert recorder.max_tracking_id("upstream") == 7
    lost.calls.clear()
    recorder.insert_tracking(Tracking("upstream", 8))  # a tracking-only write, reply lost
    assert recorder.max_tracking_id("upstream") == 8
    assert len(lost.calls) == 2


def test_a_retried_write_still_loses_to_a_writer_that_got_in_first(
    open_factory: Callable[..., RedisFactory],
) -> None:
    recorder = _app_recorder(open_factory())
    other = _app_recorder(open_factory())
    originator = uuid4()

    class RivalFirst(LostReply):
        def __call__(self, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
            if not self.calls:
                other.insert_events([_event(originator, 1, b"rival")])
            return super().__call__(keys, args)

    recorder.datastore._insert = RivalFirst(recorder.datastore._insert, run_first=False)  # type: ignore[assignment]
    with pytest.raises(IntegrityError):
        recorder.insert_events([_event(originator, 1, b"mine")])
    assert [e.state for e in recorder.select_events(originator)] == [b"rival"]


def test_reads_and_writes_go_on_when_the_server_drops_every_connection(
    open_factory: Callable[..., RedisFactory], redis_available: str
) -> None:
    factory = open_factory()
    recorder = _app_recorder(factory)
    recorder.insert_events([_event(uuid4(), 1)])
    admin = _client(redis_available)
    try:
        ours = [c for c in admin.client_list() if c.get("name") == factory.namespace]
        assert ours
        for connection in ours:
            admin.client_kill_filter(_id=connection["id"])
    finally:
        admin.close()

    assert recorder.max_notification_id() == 1
    assert recorder.insert_events([_event(uuid4(), 1)]) == [2]
    assert [n.id for n in recorder.select_notifications(None, 10)] == [1, 2]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_building_a_recorder_raises_operational_error_when_the_server_is_unreachable(
    open_factory: Callable[..., RedisFactory],
) -> None:
    factory = open_factory(
        REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0",
        REDIS_RETRIES="1",
        REDIS_SOCKET_CONNECT_TIMEOUT="1",
    )
    started = time.monotonic()
    with pytest.raises(OperationalError):
        factory.application_recorder()
    assert time.monotonic() - started < 5


def test_reads_and_writes_raise_operational_error_when_the_server_is_unreachable(
    open_factory: Callable[..., RedisFactory],
) -> None:
    factory = open_factory(
        REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0",
        REDIS_RETRIES="2",
        CREATE_TABLE="n",
    )
    recorder = _app_recorder(factory)
    with pytest.raises(OperationalError):
        recorder.select_notifications(None, 10)
    with pytest.raises(OperationalError):
        recorder.max_notification_id()
    with pytest.raises(OperationalError, match="may or may not have been recorded"):
        recorder.insert_events([_event(uuid4(), 1)])


def test_commerce_on_an_unreachable_redis_raises_store_unavailable_when_built() -> None:
    env = {
        "COMMERCE_PERSISTENCE": "redis",
        "REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0",
        "REDIS_RETRIES": "0",
    }
    with pytest.raises(StoreUnavailableError) as raised:
        Commerce.from_env(env, price_book=InMemoryPriceBook())
    assert isinstance(raised.value.__cause__, OperationalError)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("REDIS_KEY_PREFIX", "shop {a}:"),
        ("REDIS_RETRIES", "-1"),
        ("REDIS_SOCKET_TIMEOUT", "soon"),
        ("REDIS_SOCKET_TIMEOUT", "0"),
        ("REDIS_MAX_CONNECTIONS", "0"),
        ("REDIS_AGGREGATE_TTL_SECONDS", "nan"),
        ("ORIGINATOR_ID_TYPE", "integer"),
    ],
)
def test_an_invalid_setting_raises_os_error_naming_its_key(key: str, value: str) -> None:
    with pytest.raises(OSError, match=key):
        RedisFactory(Environment("Store", {key: value}))


# --- namespaces ------------------------------------------------------------------------------


def test_applications_and_prefixes_never_see_each_others_keys(
    open_factory: Callable[..., RedisFactory], redis_available: str, redis_namespace: str
) -> None:
    other_prefix = f"{redis_namespace}-other:"
    factories = {
        "alpha": open_factory("Alpha"),
        "beta": open_factory("Beta"),
        "alpha elsewhere": open_factory("Alpha", prefix=other_prefix),
    }
    originator = uuid4()
    for label, factory in factories.items():
        recorder = _app_recorder(factory)
        assert recorder.insert_events([_event(originator, 1, label.encode())]) == [1]

    for label, factory in factories.items():
        recorder = _app_recorder(factory)
        assert [e.state for e in recorder.select_events(originator)] == [label.encode()]
        assert [n.state for n in recorder.select_notifications(None, 10)] == [label.encode()]
        assert recorder.max_notification_id() == 1

    client = _client(redis_available)
    try:
        keys = {
            label: sorted(k.decode() for k in client.scan_iter(match=f"{f.namespace}:*"))
            for label, f in factories.items()
        }
    finally:
        client.close()
    assert factories["alpha"].namespace == f"{redis_namespace}:{{alpha}}"
    assert keys["alpha"] == sorted(
        f"{redis_namespace}:{{alpha}}:{k}" for k in ("seq", "log", f"events:{originator}")
    )
    assert set(keys["alpha"]).isdisjoint(keys["beta"])
    assert set(keys["alpha"]).isdisjoint(keys["alpha elsewhere"])
    assert all(k.startswith(other_prefix) for k in keys["alpha elsewhere"])


# --- encryption ------------------------------------------------------------------------------


def test_stored_events_are_unreadable_without_the_key_and_the_service_works_with_it(
    redis_available: str, redis_namespace: str
) -> None:
    env = {
        "PERSISTENCE_MODULE": MODULE,
        "REDIS_URL": redis_available,
        "REDIS_KEY_PREFIX": f"{redis_namespace}:",
    }
    secret = "Mug for Agent Ferreira"
    key = AESCipher.create_key(16)
    with Inventory({**env, "CIPHER_KEY": key}) as inventory:
        item_id = inventory.register(
            RegisterItem(
                sku="MUG-1",
                product_id="mug",
                name=secret,
                unit_price=Money("9.50", "USD"),
                initial_quantity=3,
            )
        )

    client = _client(redis_available)
    try:
        stored = b"".join(
            bytes(member)
            for k in client.scan_iter(match=f"{redis_namespace}:*:events:*")
            for member in cast(list[bytes], client.zrange(k, 0, -1))
        )
    finally:
        client.close()
    assert stored
    assert secret.encode() not in stored
    assert b"9.50" not in stored

    with Inventory(env) as without_key, pytest.raises(MapperDeserialisationError):
        without_key.repository.get(item_id)
    wrong_key = {**env, "CIPHER_KEY": AESCipher.create_key(16)}
    with Inventory(wrong_key) as inventory, pytest.raises(MapperDeserialisationError):
        inventory.repository.get(item_id)
    with Inventory({**env, "CIPHER_KEY": key}) as with_key:
        assert with_key.item("MUG-1").name == secret
        assert with_key.item("MUG-1").available == 3


# --- expiry ----------------------------------------------------------------------------------


def test_an_aggregates_events_and_snapshots_expire_together_a_ttl_after_its_last_write(
    open_factory: Callable[..., RedisFactory], redis_available: str
) -> None:
    factory = open_factory(REDIS_AGGREGATE_TTL_SECONDS="1")
    events = _app_recorder(factory)
    snapshots = factory.aggregate_recorder(purpose="snapshots")
    originator = uuid4()
    events.insert_events([_event(originator, 1)])
    snapshots.insert_events([_event(originator, 1, b"snapshot")])
    time.sleep(0.6)
    events.insert_events([_event(originator, 2)])  # restarts both clocks
    time.sleep(0.6)

    assert [e.originator_version for e in events.select_events(originator)] == [1, 2]
    assert len(snapshots.select_events(originator)) == 1
    client = _client(redis_available)
    try:
        ttls = [
            client.pttl(f"{factory.namespace}:{p}:{originator}") for p in ("events", "snapshots")
        ]
    finally:
        client.close()
    assert all(0 < ttl <= 1000 for ttl in ttls)

    time.sleep(0.5)
    assert events.select_events(originator) == []
    assert snapshots.select_events(originator) == []


def test_expired_aggregates_leave_the_log_but_their_ids_are_never_reused(
    open_factory: Callable[..., RedisFactory], redis_available: str
) -> None:
    factory = open_factory(REDIS_AGGREGATE_TTL_SECONDS="1")
    recorder = _app_recorder(factory)
    gone, kept = uuid4(), uuid4()
    assert recorder.insert_events([_event(gone, 1), _event(gone, 2)]) == [1, 2]
    time.sleep(0.6)
    assert recorder.insert_events([_event(kept, 1)]) == [3]
    time.sleep(0.6)  # gone's TTL has run out, kept's has not

    assert [(n.id, n.originator_id) for n in recorder.select_notifications(None, 10)] == [(3, kept)]
    assert recorder.max_notification_id() == 3
    assert recorder.insert_events([_event(uuid4(), 1)]) == [4]
    client = _client(redis_available)
    try:
        assert client.xlen(recorder.log_key) == 2  # the read dropped gone's dangling entries
    finally:
        client.close()


def test_a_stale_writer_cannot_revive_an_expired_aggregate_but_its_id_may_begin_again(
    open_factory: Callable[..., RedisFactory],
) -> None:
    recorder = _app_recorder(open_factory(REDIS_AGGREGATE_TTL_SECONDS="0.2"))
    originator = uuid4()
    recorder.insert_events([_event(originator, 1), _event(originator, 2)])
    time.sleep(0.3)

    with pytest.raises(IntegrityError, match="follows no stored event"):
        recorder.insert_events([_event(originator, 3)])  # from a copy cached before expiry
    assert recorder.select_events(originator) == []
    assert recorder.insert_events([_event(originator, 1, b"again")]) == [3]
    with pytest.raises(IntegrityError, match="does not follow"):
        recorder.insert_events([_event(originator, 3)])
    # The old life's log entries point at versions the new life numbers differently: skipped.
    assert [(n.id, n.state) for n in recorder.select_notifications(None, 10)] == [(3, b"again")]


def _cart_shop(redis_url: str, namespace: str, ttl_seconds: str, clock: FakeClock) -> Commerce:
    settings = Settings.from_env(
        {
            "COMMERCE_PERSISTENCE": "redis",
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": f"{namespace}:",
            "CARTS_REDIS_AGGREGATE_TTL_SECONDS": ttl_seconds,
        }
    )
    prices = InMemoryPriceBook()
    prices.set_price("MUG-1", "Mug", Money("9.50", "USD"))
    return Commerce(settings, price_book=prices, clock=clock)


def test_every_cart_view_agrees_when_redis_drops_carts_the_expiry_sweep_has_expired(
    redis_available: str, redis_namespace: str
) -> None:
    clock = FakeClock()
    with _cart_shop(redis_available, redis_namespace, "1", clock) as shop:
        shop.inventory.register(
            RegisterItem(
                sku="MUG-1",
                product_id="mug",
                name="Mug",
                unit_price=Money("9.50", "USD"),
                initial_quantity=3,
            )
        )
        cart_id = shop.carts.create(CreateCart(customer_id="alice", currency="USD"))
        shop.carts.add_item(AddItem(cart_id=cart_id, sku="MUG-1", quantity=1))
        assert shop.carts.active_cart("alice") is not None
        clock.advance(timedelta(hours=24 * 7 + 1))
        assert shop.carts.expire_stale() == 1
        assert shop.carts.expire_stale() == 0  # the next sweep, which folds the expiry
        time.sleep(1.3)  # then Redis drops the expired cart

        with _cart_shop(redis_available, redis_namespace, "1", clock) as restarted:
            for view in (shop.carts, restarted.carts):
                assert view.active_cart("alice") is None
                assert view.abandoned() == []
            with pytest.raises(CartNotFoundError):
                restarted.carts.get(cart_id)
            assert restarted.inventory.item("MUG-1").available == 3  # only carts expire


def test_a_cart_redis_drops_before_the_sweep_stays_in_a_running_process_until_it_restarts(
    redis_available: str, redis_namespace: str
) -> None:
    """The trade-off docs/adapters/redis.md describes: keep the TTL above the cart TTL."""
    clock = FakeClock()
    with _cart_shop(redis_available, redis_namespace, "1", clock) as shop:
        cart_id = shop.carts.create(CreateCart(customer_id="alice", currency="USD"))
        assert shop.carts.active_cart("alice") is not None
        time.sleep(1.3)  # Redis drops the cart; no event says so

        active = shop.carts.active_cart("alice")  # folded before, served from the cache
        assert active is not None
        assert active.id == cart_id
        with _cart_shop(redis_available, redis_namespace, "1", clock) as restarted:
            assert restarted.carts.active_cart("alice") is None

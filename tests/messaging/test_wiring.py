"""COMMERCE_MESSAGING: the bus and the relays built from settings alone, and the worker's roles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.adapters.memory_messaging import InMemoryMessageBus
from suuupra_commerce.errors import InvalidInputError
from suuupra_commerce.messaging import decode
from suuupra_commerce.system import Commerce, Settings
from suuupra_commerce.testing.sagas import SagaTestKit

BUSES = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


def _bus_env(request: pytest.FixtureRequest, kind: str) -> dict[str, str]:
    env = {"COMMERCE_MESSAGING": kind}
    if kind == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_available")
        env["REDIS_KEY_PREFIX"] = f"{request.getfixturevalue('redis_namespace')}:"
    if kind == "postgres":
        env.update(request.getfixturevalue("postgres_schema"))
    return env


@pytest.fixture(params=BUSES)
def bus_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """SQLite files for the events, and each bus in turn."""
    return {
        "COMMERCE_PERSISTENCE": "sqlite",
        "COMMERCE_SQLITE_DIR": str(tmp_path / "store"),
        **_bus_env(request, request.param),
    }


def test_no_bus_by_default() -> None:
    with Commerce.from_env({"COMMERCE_PERSISTENCE": "memory"}, price_book=InMemoryPriceBook()) as c:
        assert c.settings.messaging == "none"
        assert c.bus is None
        assert c.relays == ()


def test_an_unknown_bus_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="messaging"):
        Settings.from_env({"COMMERCE_MESSAGING": "kafka"})


def test_the_setting_names_the_bus(bus_env: dict[str, str]) -> None:
    expected = {
        "memory": "InMemoryMessageBus",
        "redis": "RedisStreamBus",
        "postgres": "PostgresMessageBus",
    }[bus_env["COMMERCE_MESSAGING"]]
    env = {**bus_env, "COMMERCE_BUS_MAX_DELIVERIES": "3"}
    with Commerce.from_env(env, price_book=InMemoryPriceBook()) as commerce:
        assert type(commerce.bus).__name__ == expected
        assert commerce.bus is commerce.bus, "built once"
        assert getattr(commerce.bus, "policy").max_deliveries == 3  # noqa: B009
        assert [r.name for r in commerce.relays] == ["inventory", "orders", "carts"]
        assert all(r.bus is commerce.bus for r in commerce.relays)


def _placed(kit: SagaTestKit) -> Any:
    kit.stock("MUG-1", 10, price="9.50")
    return kit.place("k-1", {"MUG-1": 2}, customer="alice")


def _order_events(bus: Any, group: str) -> list[Any]:
    consumer = bus.consumer("commerce.orders", group, "c1")
    try:
        deliveries = consumer.receive(max_messages=100)
        consumer.ack(*deliveries)
    finally:
        consumer.close()
    return [decode(d.envelope) for d in deliveries]


def test_relays_publish_a_placed_order_and_keep_their_position_in_the_store(
    bus_env: dict[str, str],
) -> None:
    with SagaTestKit(Settings.from_env(bus_env), price_book=InMemoryPriceBook()) as kit:
        order_id = _placed(kit)
        bus = kit.commerce.bus
        read = sum(relay.run_until_caught_up() for relay in kit.commerce.relays)
        assert read > 0
        placed = [e for e in _order_events(bus, "billing") if e.event_type.endswith("placed")]
        assert [(e.order_id, e.total.amount) for e in placed] == [(str(order_id), "19.00")]
    if bus_env["COMMERCE_MESSAGING"] == "memory":
        return  # the bus lived in that process; the rest is about what survives it
    # A new process: the relays resume from the positions saved in the event store.
    with SagaTestKit(Settings.from_env(bus_env), price_book=InMemoryPriceBook()) as again:
        positions = [relay.position for relay in again.commerce.relays]
        assert positions[:2] != [0, 0]
        assert sum(relay.run_until_caught_up() for relay in again.commerce.relays) == 0
        again.stock("MUG-1", 10, price="9.50")  # this process's price book; stock is there
        second = again.place("k-2", {"MUG-1": 1}, customer="bob")
        assert sum(relay.run_until_caught_up() for relay in again.commerce.relays) > 0
        events = _order_events(again.commerce.bus, "billing")
        assert {e.order_id for e in events} == {str(second)}, "only what is new since"


def test_relay_positions_live_in_the_event_store(tmp_path: Path) -> None:
    env = {"COMMERCE_PERSISTENCE": "sqlite", "COMMERCE_SQLITE_DIR": str(tmp_path)}
    with SagaTestKit(
        Settings.from_env({**env, "COMMERCE_MESSAGING": "memory"}), price_book=InMemoryPriceBook()
    ) as kit:
        _placed(kit)
        for relay in kit.commerce.relays:
            relay.run_until_caught_up()
        saved = {r.name: r.position for r in kit.commerce.relays}
    assert (tmp_path / "relays.sqlite").exists()
    assert saved["orders"] > 0
    # A new in-memory bus starts empty, but the positions come from the store: nothing again.
    with SagaTestKit(
        Settings.from_env({**env, "COMMERCE_MESSAGING": "memory"}), price_book=InMemoryPriceBook()
    ) as kit:
        assert {r.name: r.position for r in kit.commerce.relays} == saved
        assert isinstance(kit.commerce.bus, InMemoryMessageBus)
        assert sum(r.run_until_caught_up() for r in kit.commerce.relays) == 0


def _worker(role: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "suuupra_commerce.cli", "worker", "--role", role, *extra],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def redis_bus_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    return {
        "COMMERCE_PERSISTENCE": "sqlite",
        "COMMERCE_SQLITE_DIR": str(tmp_path / "store"),
        **_bus_env(request, "redis"),
    }


@pytest.mark.redis
def test_the_relay_role_runs_as_a_process_of_its_own(redis_bus_env: dict[str, str]) -> None:
    with SagaTestKit(Settings.from_env(redis_bus_env), price_book=InMemoryPriceBook()) as kit:
        order_id = _placed(kit)
    done = _worker("relay", redis_bus_env, "--once")
    assert done.returncode == 0, done.stderr
    assert "relayed" in done.stdout
    assert "moved" not in done.stdout, "the relay role runs no saga"
    with Commerce.from_env(redis_bus_env, price_book=InMemoryPriceBook()) as commerce:
        events = _order_events(commerce.bus, "billing")
        sagas = commerce.sagas.list()
    assert str(order_id) in {e.order_id for e in events}
    assert sagas == [], "no saga was started by the relay"


@pytest.mark.redis
def test_the_relay_role_stops_on_sigterm(redis_bus_env: dict[str, str]) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "suuupra_commerce.cli", "worker", "--role", "relay"],
        env={**os.environ, **redis_bus_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    assert "relays running (inventory, orders, carts) to redis" in worker.stdout.readline()
    worker.terminate()
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "relays stopped" in out
    assert "saga worker" not in out


def test_the_relay_role_needs_a_bus(tmp_path: Path) -> None:
    env = {"COMMERCE_PERSISTENCE": "sqlite", "COMMERCE_SQLITE_DIR": str(tmp_path)}
    done = _worker("relay", env)
    assert done.returncode == 1
    assert "COMMERCE_MESSAGING" in done.stderr
    assert "Traceback" not in done.stderr

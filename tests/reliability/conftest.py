"""Throwaway servers for the reliability tests: a PostgreSQL and a Redis of the test's own.

Each starts in a temporary folder on a free port, so a test may stop it abruptly and start
it again without touching the machine's shared servers. PostgreSQL refuses to run as root:
when the tests run as root, ``initdb`` and the server run as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from suuupra_commerce import OrderLineRequest, PlaceOrder

#: ``COMMERCE_RELIABILITY_DEEP=N`` multiplies the counts of the reliability tests by N.
DEEP = max(1, int(os.environ.get("COMMERCE_RELIABILITY_DEEP", "1") or "1"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def figures(title: str, **values: object) -> None:
    """Print a test's figures, one line, for ``pytest -s`` and docs/reliability.md."""
    shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in values.items())
    print(f"\n[figures] {title}: {shown}")  # noqa: T201 - the point of these tests


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder, on a port of its own (fsync on)."""

    def __init__(self, folder: Path, bin_dir: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.bin = bin_dir
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def init(self) -> None:
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "--auth=trust",
            "--username=postgres",
            "--no-instructions",
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} "
            "-c fsync=on -c synchronous_commit=on -c max_connections=60"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def settings(self) -> dict[str, str]:
        return {
            "POSTGRES_DBNAME": "postgres",
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": "postgres",
            "POSTGRES_PASSWORD": "",
            "POSTGRES_POOL_SIZE": "1",
            "POSTGRES_MAX_OVERFLOW": "9",
            "POSTGRES_CONNECT_TIMEOUT": "1",
            "POSTGRES_PRE_PING": "y",
        }


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("initdb must be installed in CI")
        pytest.skip("initdb is not installed")
    folder = Path(tempfile.mkdtemp(prefix="commerce-pg-"))
    server = ThrowawayPostgres(folder, bin_dir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server._run(
            str(bin_dir / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "stop", check=False
        )
        shutil.rmtree(folder, ignore_errors=True)


class ThrowawayRedis:
    """A Redis server in a temporary folder, on a port of its own, appending every write."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            )
            if ping.stdout.strip() == "PONG":
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the throwaway Redis did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last save; only what the append-only file holds survives."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server must be installed in CI")
        pytest.skip("redis-server is not installed")
    folder = Path(tempfile.mkdtemp(prefix="commerce-redis-"))
    server = ThrowawayRedis(folder)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)


class OrderClients:
    """Client threads placing single-unit orders until stopped, through outages.

    Each client sends the same idempotency key again until it is acknowledged (safe to
    repeat), counting every error by type; ``acknowledged`` maps each acknowledged key to
    its order id. ``check(fresh)`` looks for them all in a new process's ``Commerce``.
    """

    def __init__(self, shop: Any, skus: list[str], clients: int) -> None:
        self.shop = shop
        self.skus = skus
        self.clients = clients
        self.acknowledged: dict[str, Any] = {}
        self.errors: Counter[str] = Counter()
        self.slowest = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(c,)) for c in range(clients)]

    def command(self, key: str) -> Any:
        number, n = (int(part) for part in key[1:].split("-"))
        return PlaceOrder(
            idempotency_key=key,
            customer_id=f"customer-{number}",
            currency="USD",
            lines=[OrderLineRequest(sku=self.skus[n % len(self.skus)], quantity=1)],
        )

    def _run(self, number: int) -> None:
        n = 0
        while not self._stop.is_set():
            key = f"c{number}-{n}"
            while True:
                started = time.monotonic()
                try:
                    order_id = self.shop.orders.place(self.command(key))
                except Exception as error:  # noqa: BLE001 - counted, asserted by the test
                    with self._lock:
                        self.errors[type(error).__name__] += 1
                    if self._stop.is_set():
                        return
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.acknowledged[key] = order_id
                    self.slowest = max(self.slowest, time.monotonic() - started)
                break
            n += 1

    def __enter__(self) -> OrderClients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def check(self, fresh: Any) -> dict[str, int]:
        """Figures from a new process's view, asserting nothing lost and nothing twice."""
        lost = []
        for key, order_id in self.acknowledged.items():
            try:
                fresh.orders.get(order_id)
            except Exception:  # noqa: BLE001 - not found
                lost.append(key)
        stored = sum(fresh.orders.count_by_status().values())
        reserved = fresh.inventory.summary().reserved
        again = {key: fresh.orders.place(self.command(key)) for key in list(self.acknowledged)[:50]}
        assert lost == []
        # At most one order per client was in flight, unacknowledged, when the test stopped.
        assert len(self.acknowledged) <= stored <= len(self.acknowledged) + self.clients
        assert reserved == stored  # exactly one unit reserved per stored order
        assert all(again[key] == self.acknowledged[key] for key in again)  # none twice
        return {
            "acknowledged_orders": len(self.acknowledged),
            "stored_orders": stored,
            "refused_while_down": sum(self.errors.values()),
            "lost": len(lost),
        }

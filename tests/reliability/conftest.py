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
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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

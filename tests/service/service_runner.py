"""Runs the example host service for tests: uvicorn in a subprocess, on a port it picks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import POSTGRES, _postgres_connect

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class Server:
    """A running service: where it listens, and the file its logs go to."""

    base_url: str
    log: Path
    process: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without any store or service settings, plus ``extra``."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COMMERCE_", "POSTGRES_", "REDIS_", "CIPHER_", "SERVICE_"))
    }
    return {
        **inherited,
        "PYTHONPATH": os.pathsep.join([str(ROOT), inherited.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
        "SERVICE_HOST": "127.0.0.1",
        "SERVICE_PORT": "0",
        "COMMERCE_SAGA_POLL_SECONDS": "0.05",
        **extra,
    }


#: Where the service keeps its events and publishes its integration events, by environment
#: variables alone: SQLite files and no bus (the embedded default), PostgreSQL with the
#: Redis Streams bus, and Redis for both.
STORES = [
    "sqlite",
    pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
]
REDIS_STORE = pytest.param("redis", marks=pytest.mark.redis)


@contextmanager
def store_env(kind: str, where: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The settings of a fresh store of ``kind``, removed afterwards (a schema, a key prefix)."""
    if kind == "sqlite":
        yield {"COMMERCE_PERSISTENCE": "sqlite", "COMMERCE_SQLITE_DIR": str(where / "store")}
        return
    request.getfixturevalue("redis_available")
    import redis

    tag = uuid.uuid4().hex[:12]
    env = {
        "COMMERCE_MESSAGING": "redis",
        "REDIS_URL": request.getfixturevalue("redis_available"),
        "REDIS_KEY_PREFIX": f"test-{tag}:",
    }
    conn: Any = None
    if kind == "postgres+redis":
        request.getfixturevalue("postgres_available")
        conn = _postgres_connect()
        conn.execute(f'CREATE SCHEMA "test_{tag}"')
        env.update(POSTGRES, POSTGRES_SCHEMA=f"test_{tag}", COMMERCE_PERSISTENCE="postgres")
    else:
        env["COMMERCE_PERSISTENCE"] = "redis"
    try:
        yield env
    finally:
        if conn is not None:
            conn.execute(f'DROP SCHEMA "test_{tag}" CASCADE')
            conn.close()
        client = redis.Redis.from_url(env["REDIS_URL"])
        try:
            keys = list(client.scan_iter(match=f"test-{tag}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@contextmanager
def running_service(env: Mapping[str, str], log: Path, timeout: float = 60) -> Iterator[Server]:
    """Start ``python -m examples.service`` on a free port; stop it (SIGTERM) afterwards."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.service"],
            cwd=ROOT,
            env=_environment(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        base_url = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the service exited with {process.returncode}:\n{log.read_text()}")
            found = _LISTENING.findall(log.read_text(encoding="utf-8", errors="replace"))
            if found:
                base_url = f"http://127.0.0.1:{found[-1]}"
                break
            time.sleep(0.05)
        if base_url is None:
            pytest.fail(f"the service did not start in {timeout} s:\n{log.read_text()}")
        with httpx.Client(base_url=base_url, timeout=10) as probe:
            assert probe.get("/health/ready").status_code == 200
        yield Server(base_url, log, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

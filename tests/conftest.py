"""Shared fixtures: the backends (memory, SQLite, PostgreSQL, Redis), a fake clock, a price book."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.money import Money
from suuupra_commerce.system import Commerce, Settings
from suuupra_commerce.testing import FakeClock

# CI explores the same examples on every run, so a red build is reproducible and a green one is
# not luck; local runs keep drawing new examples (HYPOTHESIS_PROFILE=ci to replay CI's).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("dev", print_blob=True)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)

POSTGRES = {
    "POSTGRES_DBNAME": os.environ.get("TEST_POSTGRES_DBNAME", "test"),
    "POSTGRES_HOST": os.environ.get("TEST_POSTGRES_HOST", "127.0.0.1"),
    "POSTGRES_PORT": os.environ.get("TEST_POSTGRES_PORT", "5432"),
    "POSTGRES_USER": os.environ.get("TEST_POSTGRES_USER", "postgres"),
    "POSTGRES_PASSWORD": os.environ.get("TEST_POSTGRES_PASSWORD", ""),
    # Each service has a pool of its own, opened eagerly: keep tests within the server's
    # connection slots, even when several stores are open at once.
    "POSTGRES_POOL_SIZE": "1",
    "POSTGRES_MAX_OVERFLOW": "7",
}


def _postgres_connect() -> object:
    import psycopg

    return psycopg.connect(
        dbname=POSTGRES["POSTGRES_DBNAME"],
        host=POSTGRES["POSTGRES_HOST"],
        port=int(POSTGRES["POSTGRES_PORT"]),
        user=POSTGRES["POSTGRES_USER"],
        password=POSTGRES["POSTGRES_PASSWORD"] or None,
        autocommit=True,
        connect_timeout=5,
    )


@pytest.fixture(scope="session")
def postgres_available() -> None:
    """Fail in CI, skip locally, when PostgreSQL cannot be reached."""
    try:
        _postgres_connect().close()  # type: ignore[attr-defined]
    except Exception as error:  # noqa: BLE001 - any failure to connect means "not available"
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must be available in CI: {error}")
        where = f"{POSTGRES['POSTGRES_HOST']}:{POSTGRES['POSTGRES_PORT']}"
        pytest.skip(f"PostgreSQL is not reachable on {where} ({error})")


@pytest.fixture
def postgres_schema(postgres_available: None) -> Iterator[dict[str, str]]:
    """A schema of this test's own, dropped afterwards; yields eventsourcing's settings for it."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    conn = _postgres_connect()
    conn.execute(f'CREATE SCHEMA "{schema}"')  # type: ignore[attr-defined]
    try:
        yield {**POSTGRES, "POSTGRES_SCHEMA": schema}
    finally:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')  # type: ignore[attr-defined]
        conn.close()  # type: ignore[attr-defined]


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_available() -> str:
    """Fail in CI, skip locally, when Redis cannot be reached; yields its URL."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
        client.ping()
        client.close()
    except Exception as error:  # noqa: BLE001 - any failure to connect means "not available"
        if os.environ.get("CI"):
            pytest.fail(f"Redis must be available in CI: {error}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({error})")
    return REDIS_URL


@pytest.fixture
def redis_namespace(redis_available: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    import redis

    namespace = f"test-{uuid.uuid4().hex[:12]}"
    yield namespace
    client = redis.Redis.from_url(redis_available)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
]


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for each backend in turn."""
    env: dict[str, str] = {"COMMERCE_PERSISTENCE": request.param}
    if request.param == "sqlite":
        env["COMMERCE_SQLITE_DIR"] = str(tmp_path / "store")
    if request.param == "postgres":
        env.update(request.getfixturevalue("postgres_schema"))
    if request.param == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_available")
        env["REDIS_KEY_PREFIX"] = f"{request.getfixturevalue('redis_namespace')}:"
    return Settings.from_env(env)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Settings of a store several applications (or processes) can share: SQLite files or PG."""
    env = {"COMMERCE_PERSISTENCE": request.param}
    if request.param == "sqlite":
        env["COMMERCE_SQLITE_DIR"] = str(tmp_path / "store")
    else:
        env.update(request.getfixturevalue("postgres_schema"))
    return env


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def price_book() -> InMemoryPriceBook:
    book = InMemoryPriceBook()
    book.set_price("MUG-1", "Mug", Money("9.50", "USD"))
    book.set_price("TEE-M", "T-shirt, medium", Money("19.99", "USD"))
    book.set_price("CAP-1", "Cap", Money("12.00", "USD"))
    return book


@pytest.fixture
def commerce(
    settings: Settings, price_book: InMemoryPriceBook, clock: FakeClock
) -> Iterator[Commerce]:
    """Every service, wired on the backend under test."""
    with Commerce(settings, price_book=price_book, clock=clock) as built:
        yield built

"""Stored events encrypted by settings (eventsourcing's cipher), and the key kept out of sight."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from eventsourcing.cipher import AESCipher

from conftest import _postgres_connect
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.errors import InvalidInputError
from suuupra_commerce.inventory.commands import RegisterItem
from suuupra_commerce.money import Money
from suuupra_commerce.system import Commerce, Settings

KEY = AESCipher.create_key(16)
OTHER_KEY = AESCipher.create_key(16)
NAME = "Zebra-striped porcelain mug"
MARK = b"Zebra-striped"


def _register(env: dict[str, str]) -> None:
    with Commerce.from_env(env, price_book=InMemoryPriceBook()) as commerce:
        commerce.inventory.register(
            RegisterItem(
                sku="ZEBRA-1",
                product_id="zebra",
                name=NAME,
                unit_price=Money("12.00", "USD"),
                initial_quantity=4,
            )
        )


def _read_name(env: dict[str, str]) -> str:
    """The item's name as its events say (read models hold plain documents: not asked here)."""
    with Commerce.from_env(env, price_book=InMemoryPriceBook()) as commerce:
        return commerce.inventory.aggregate("ZEBRA-1").name


def _raw_postgres(env: dict[str, str]) -> bytes:
    conn: Any = _postgres_connect()
    try:
        rows = conn.execute(
            f'SELECT state FROM "{env["POSTGRES_SCHEMA"]}".inventory_events'
        ).fetchall()
    finally:
        conn.close()
    assert rows, "the events are there"
    return b"".join(bytes(row[0]) for row in rows)


def _raw_redis(env: dict[str, str]) -> bytes:
    import redis

    # redis-py annotates replies loosely; a RESP2 client answers bytes, read as such here.
    client: Any = redis.Redis.from_url(env["REDIS_URL"])
    found: list[bytes] = []
    try:
        for key in client.scan_iter(match=f"{env['REDIS_KEY_PREFIX']}*"):
            kind = client.type(key)
            if kind == b"string":
                found.append(client.get(key) or b"")
            elif kind == b"hash":
                found.extend(b"".join(pair) for pair in client.hgetall(key).items())
            elif kind == b"zset":
                found.extend(client.zrange(key, 0, -1))
            elif kind == b"list":
                found.extend(client.lrange(key, 0, -1))
            elif kind == b"stream":
                for _, fields in client.xrange(key):
                    found.extend(b"".join(pair) for pair in fields.items())
            else:
                pytest.fail(f"a key of a type this test does not read: {key!r} {kind!r}")
    finally:
        client.close()
    assert found, "the events are there"
    return b"".join(found)


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def store(request: pytest.FixtureRequest) -> tuple[dict[str, str], Any]:
    """A fresh store on each server, and how to read its raw bytes."""
    if request.param == "postgres":
        env = {"COMMERCE_PERSISTENCE": "postgres", **request.getfixturevalue("postgres_schema")}
        return env, _raw_postgres
    env = {
        "COMMERCE_PERSISTENCE": "redis",
        "REDIS_URL": request.getfixturevalue("redis_available"),
        "REDIS_KEY_PREFIX": f"{request.getfixturevalue('redis_namespace')}:",
    }
    return env, _raw_redis


def test_plain_events_show_their_content(store: tuple[dict[str, str], Any]) -> None:
    """The control: without a cipher, the raw store holds the name as written."""
    env, raw = store
    _register(env)
    assert MARK in raw(env)


def test_encrypted_events_are_unreadable_without_the_key(
    store: tuple[dict[str, str], Any],
) -> None:
    env, raw = store
    secret = {**env, "CIPHER_TOPIC": "eventsourcing.cipher:AESCipher", "CIPHER_KEY": KEY}
    _register(secret)
    stored = raw(env)
    assert MARK not in stored
    assert b"ZEBRA-1" not in stored
    assert b"zebra" not in stored
    assert _read_name(secret) == NAME, "readable with the key"
    with pytest.raises(Exception):  # noqa: B017, PT011 - eventsourcing's decode error, whichever
        _read_name(env)
    with pytest.raises(Exception):  # noqa: B017, PT011 - AES-GCM refuses a wrong key
        _read_name({**secret, "CIPHER_KEY": OTHER_KEY})


def test_a_key_alone_means_aes_and_compression_passes_through(tmp_path: Any) -> None:
    env = {
        "COMMERCE_PERSISTENCE": "sqlite",
        "COMMERCE_SQLITE_DIR": str(tmp_path),
        "CIPHER_KEY": KEY,
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
    }
    app_env = Settings.from_env(env).application_env("Inventory")
    assert app_env["CIPHER_TOPIC"] == "eventsourcing.cipher:AESCipher"
    assert app_env["CIPHER_KEY"] == KEY
    assert app_env["COMPRESSOR_TOPIC"] == "eventsourcing.compressor:ZlibCompressor"
    _register(env)
    assert MARK not in (tmp_path / "inventory.sqlite").read_bytes()
    assert _read_name(env) == NAME


def test_a_cipher_without_a_key_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="CIPHER_KEY"):
        Settings.from_env({"CIPHER_TOPIC": "eventsourcing.cipher:AESCipher"})


def test_the_key_never_shows_in_the_settings_or_the_logs(
    caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    env = {
        "COMMERCE_PERSISTENCE": "sqlite",
        "COMMERCE_SQLITE_DIR": str(tmp_path),
        "CIPHER_KEY": KEY,
    }
    settings = Settings.from_env(env)
    for shown in (repr(settings), str(settings), settings.model_dump_json(), f"{settings!r}"):
        assert KEY not in shown
    assert "**********" in repr(settings)
    with pytest.raises(InvalidInputError) as refused:
        Settings.from_env({**env, "COMMERCE_SAGA_PARTITIONS": "0"})
    assert KEY not in str(refused.value)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("suuupra_commerce").info("settings: %s", settings)
        _register(env)
        assert _read_name(env) == NAME
    assert caplog.records, "something was logged"
    assert KEY not in caplog.text


def test_store_passwords_never_show_in_the_settings() -> None:
    settings = Settings.from_env(
        {
            "COMMERCE_PERSISTENCE": "postgres",
            "POSTGRES_PASSWORD": "pg-s3cret",
            "REDIS_URL": "redis://:redis-s3cret@127.0.0.1:6379/0",
        }
    )
    assert settings.postgres["POSTGRES_PASSWORD"] == "pg-s3cret"  # kept, for the stores
    for shown in (repr(settings), str(settings), f"{settings!r}"):
        assert "pg-s3cret" not in shown
        assert "redis-s3cret" not in shown

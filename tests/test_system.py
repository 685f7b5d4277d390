"""The composition root: settings from a mapping (then the environment), backend by setting only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from suuupra_commerce import Commerce, InvalidInputError, Money, RegisterItem, Settings
from suuupra_commerce.testing import InMemoryPriceBook


def test_defaults_to_sqlite_files_when_nothing_is_set() -> None:
    settings = Settings.from_env({})
    assert settings.persistence == "sqlite"
    assert settings.application_env("Orders")["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"


def test_reads_commerce_keys_and_postgres_keys_when_given_a_mapping(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "COMMERCE_PERSISTENCE": "postgres",
            "COMMERCE_RESERVATION_MINUTES": "30",
            "POSTGRES_DBNAME": "shop",
            "POSTGRES_SCHEMA": "commerce",
        }
    )
    env = settings.application_env("Inventory")
    assert settings.reservation_minutes == 30
    assert env["PERSISTENCE_MODULE"] == "suuupra_commerce.adapters.postgres"
    assert env["POSTGRES_DBNAME"] == "shop"
    assert env["POSTGRES_SCHEMA"] == "commerce"


@pytest.mark.parametrize(
    "env",
    [
        {"COMMERCE_PERSISTENCE": "mongodb"},
        {"COMMERCE_RESERVATION_MINUTES": "0"},
        {"COMMERCE_RESERVATION_MINUTES": "soon"},
        {"COMMERCE_RETRY_MAX_ATTEMPTS": "-1"},
    ],
)
def test_refuses_with_a_typed_error_when_a_setting_is_invalid(env: dict[str, str]) -> None:
    with pytest.raises(InvalidInputError, match="invalid commerce settings"):
        Settings.from_env(env)


def test_keeps_state_across_restarts_when_the_backend_is_sqlite(tmp_path: Path) -> None:
    env = {"COMMERCE_PERSISTENCE": "sqlite", "COMMERCE_SQLITE_DIR": str(tmp_path)}
    book = InMemoryPriceBook()
    with Commerce.from_env(env, price_book=book) as first:
        first.inventory.register(
            RegisterItem(
                sku="MUG-1",
                product_id="mug",
                name="Mug",
                unit_price=Money("9.50", "USD"),
                initial_quantity=7,
            )
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "carts.sqlite",
        "inventory.sqlite",
        "orders.sqlite",
        "sagadispatcher.sqlite",
        "sagas.sqlite",
        "views.sqlite",
    ]
    with Commerce.from_env(env, price_book=book) as second:
        assert second.inventory.item("MUG-1").on_hand == 7


def test_forgets_everything_when_the_backend_is_memory() -> None:
    env = {"COMMERCE_PERSISTENCE": "memory"}
    book = InMemoryPriceBook()
    with Commerce.from_env(env, price_book=book) as first:
        first.inventory.register(
            RegisterItem(sku="MUG-1", product_id="mug", name="Mug", unit_price=Money("1", "USD"))
        )
    with Commerce.from_env(env, price_book=book) as second:
        assert second.inventory.items() == []


def test_builds_every_service_on_each_backend_when_asked(commerce: Commerce) -> None:
    commerce.inventory.register(
        RegisterItem(sku="MUG-1", product_id="mug", name="Mug", unit_price=Money("1", "USD"))
    )
    assert [i.sku for i in commerce.inventory.items()] == ["MUG-1"]
    assert commerce.orders.listing() == []


def test_a_postgres_url_is_spelled_out_and_plain_keys_win_over_it() -> None:
    settings = Settings.from_env(
        {
            "COMMERCE_PERSISTENCE": "postgres",
            "COMMERCE_POSTGRES_URL": "postgresql://shop:p%40ss@db.internal:6543/orders?schema=eu",
            "POSTGRES_PORT": "5432",
        }
    )
    assert settings.postgres == {
        "POSTGRES_HOST": "db.internal",
        "POSTGRES_DBNAME": "orders",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "shop",
        "POSTGRES_PASSWORD": "p@ss",
        "POSTGRES_SCHEMA": "eu",
    }
    assert "p@ss" not in repr(settings)


@pytest.mark.parametrize(
    "url", ["mysql://db/shop", "postgresql://db", "postgresql:///shop", "postgresql://db:x/shop"]
)
def test_a_malformed_postgres_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidInputError, match="COMMERCE_POSTGRES_URL"):
        Settings.from_env({"COMMERCE_POSTGRES_URL": url})


@pytest.mark.postgres
def test_each_application_may_have_a_schema_of_its_own(
    postgres_schema: dict[str, str],
) -> None:
    import uuid

    from conftest import _postgres_connect

    own = f"test_{uuid.uuid4().hex[:12]}"
    admin: Any = _postgres_connect()
    admin.execute(f'CREATE SCHEMA "{own}"')
    try:
        env = {"COMMERCE_PERSISTENCE": "postgres", **postgres_schema}
        env["INVENTORY_POSTGRES_SCHEMA"] = own
        with Commerce.from_env(env, price_book=InMemoryPriceBook()) as commerce:
            commerce.inventory.register(
                RegisterItem(
                    sku="MUG-1",
                    product_id="mug",
                    name="Mug",
                    unit_price=Money("9.50", "USD"),
                    initial_quantity=1,
                )
            )
        rows = admin.execute(f'SELECT count(*) FROM "{own}".inventory_events').fetchone()
        assert rows[0] == 2  # registered, received: in the inventory's own schema
        shared = postgres_schema["POSTGRES_SCHEMA"]
        found = admin.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name = 'inventory_events'",
            (shared,),
        ).fetchone()
        assert found[0] == 0
    finally:
        admin.execute(f'DROP SCHEMA "{own}" CASCADE')
        admin.close()


@pytest.mark.postgres
def test_processes_starting_together_on_a_new_schema_all_start(
    postgres_schema: dict[str, str],
) -> None:
    """Creating tables at start-up is serialised: without it, eventsourcing's DDL run by
    several processes at once fails with "tuple concurrently updated"."""
    import os
    import subprocess
    import sys

    script = (
        "from suuupra_commerce import Commerce\n"
        "from suuupra_commerce.adapters.memory import InMemoryPriceBook\n"
        "with Commerce.from_env(None, price_book=InMemoryPriceBook()) as shop:\n"
        "    print(len(shop.inventory.items()))\n"
    )
    env = {**os.environ, "COMMERCE_PERSISTENCE": "postgres", **postgres_schema}
    starting = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for process in starting:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert out.strip() == "0"

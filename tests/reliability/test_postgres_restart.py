"""PostgreSQL stopped abruptly (immediate mode) under load, then started again: no
acknowledged order is lost, none is recorded twice, and stock still adds up."""

from __future__ import annotations

import time

import pytest

from suuupra_commerce import (
    Commerce,
    Money,
    RegisterItem,
    Settings,
    StoreUnavailableError,
)
from suuupra_commerce.adapters.memory import InMemoryPriceBook

from .conftest import DEEP, OrderClients, ThrowawayPostgres, figures

CLIENTS = 4
SKUS = [f"SKU-{n}" for n in range(10)]


def _prices() -> InMemoryPriceBook:
    book = InMemoryPriceBook()
    for sku in SKUS:
        book.set_price(sku, sku.lower(), Money("5.00", "USD"))
    return book


@pytest.mark.postgres
def test_no_acknowledged_order_is_lost_when_postgres_stops_abruptly_under_load(
    throwaway_postgres: ThrowawayPostgres,
) -> None:
    settings = Settings.from_env(
        {"COMMERCE_PERSISTENCE": "postgres", **throwaway_postgres.settings()}
    )
    down_for = 2.5  # seconds the server stays down, longer than the connect timeout
    with Commerce(settings, price_book=_prices()) as shop:
        for sku in SKUS:
            shop.inventory.register(
                RegisterItem(
                    sku=sku,
                    product_id=sku.lower(),
                    name=sku.lower(),
                    unit_price=Money("5.00", "USD"),
                    initial_quantity=1_000_000,
                )
            )
        with OrderClients(shop, SKUS, CLIENTS) as clients:
            for _ in range(DEEP):
                time.sleep(1.5)
                before = len(clients.acknowledged)
                throwaway_postgres.stop("immediate")
                time.sleep(down_for)
                throwaway_postgres.start()
                time.sleep(1.5)
                assert len(clients.acknowledged) > before, "no order was placed after the restart"
    with Commerce(settings, price_book=_prices()) as fresh:  # a new process
        found = clients.check(fresh)
    figures(
        "PostgreSQL stopped in immediate mode under load",
        restarts=DEEP,
        clients=CLIENTS,
        slowest_acknowledged_s=round(clients.slowest, 2),
        **found,
    )
    assert set(clients.errors) <= {StoreUnavailableError.__name__}, clients.errors
    # Clients felt the outage: refused (StoreUnavailableError), or held until the server was back.
    assert clients.errors or clients.slowest >= 0.8 * down_for, "no outage seen"

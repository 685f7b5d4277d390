"""The asyncio facade: commands run in worker threads, in parallel, without blocking the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.aio import AsyncCommerce
from suuupra_commerce.errors import UnknownSkuError
from suuupra_commerce.inventory.commands import RegisterItem
from suuupra_commerce.money import Money
from suuupra_commerce.orders.commands import OrderLineRequest, PlaceOrder
from suuupra_commerce.ports import PriceQuote
from suuupra_commerce.system import Commerce, Settings

PARALLEL = 4


class RendezvousPriceBook(InMemoryPriceBook):
    """A price book whose quotes return only once ``parties`` of them are in flight at once."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=10)

    def quote(self, sku: str, currency: str) -> PriceQuote | None:
        self.barrier.wait()
        return super().quote(sku, currency)


def _commerce(settings: Settings, book: InMemoryPriceBook) -> Commerce:
    commerce = Commerce(settings, price_book=book)
    for n in range(PARALLEL):
        sku = f"SKU-{n}"
        book.set_price(sku, sku, Money("5.00", "USD"))
        commerce.inventory.register(
            RegisterItem(
                sku=sku,
                product_id=sku,
                name=sku,
                unit_price=Money("5.00", "USD"),
                initial_quantity=5,
            )
        )
    return commerce


def _order(n: int) -> PlaceOrder:
    return PlaceOrder(
        idempotency_key=f"k-{n}",
        customer_id=f"c-{n}",
        currency="USD",
        lines=[OrderLineRequest(sku=f"SKU-{n}", quantity=1)],
    )


def test_concurrent_commands_progress_in_parallel_without_blocking_the_loop(
    settings: Settings,
) -> None:
    book = RendezvousPriceBook(PARALLEL)
    commerce = _commerce(settings, book)

    async def main() -> tuple[set[object], int]:
        ticks = 0
        async with AsyncCommerce(commerce, max_workers=PARALLEL) as shop:

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.001)

            ticking = asyncio.create_task(ticker())
            placed = await asyncio.gather(
                *(shop.call(shop.orders.place, _order(n)) for n in range(PARALLEL))
            )
            ticking.cancel()
            return set(placed), ticks

    # Each quote waits until all four are in flight at once: the placements only finish if
    # they run in parallel, and the loop kept ticking while they waited.
    placed, ticks = asyncio.run(main())
    assert len(placed) == PARALLEL
    assert ticks > 1


def test_library_errors_are_raised_in_the_awaiting_task(settings: Settings) -> None:
    commerce = Commerce(settings, price_book=InMemoryPriceBook())

    async def main() -> None:
        async with AsyncCommerce(commerce) as shop:
            await shop.call(shop.inventory.item, "NOPE-1")

    with pytest.raises(UnknownSkuError):
        asyncio.run(main())


def test_pool_size_is_refused_when_out_of_range() -> None:
    commerce = Commerce.from_env({"COMMERCE_PERSISTENCE": "memory"}, price_book=InMemoryPriceBook())
    try:
        with pytest.raises(ValueError, match="max_workers"):
            AsyncCommerce(commerce, max_workers=0)
    finally:
        commerce.close()

"""An asyncio facade: run the library's (synchronous) services without blocking the event loop.

eventsourcing, and so every service here, is synchronous: a command waits on its
database. :class:`AsyncCommerce` runs each call in a bounded pool of worker threads, so
an async host (FastAPI, aiohttp, an asyncio worker) keeps serving while commands wait,
and several commands progress at once::

    async with AsyncCommerce(Commerce.from_env(env, price_book=book)) as shop:
        order_id = await shop.call(shop.orders.place, command)
        view = await shop.call(shop.orders.get, order_id)

``call`` keeps the service method's signature and return type for the type checker.
Errors are the library's own, raised in the awaiting task.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from suuupra_commerce.carts.service import Carts
from suuupra_commerce.inventory.service import Inventory
from suuupra_commerce.orders.service import Orders
from suuupra_commerce.sagas.orders import OrderSagas
from suuupra_commerce.sagas.service import Sagas
from suuupra_commerce.system import Commerce

__all__ = ["AsyncCommerce"]

P = ParamSpec("P")
T = TypeVar("T")


class AsyncCommerce:
    """Awaitable access to a :class:`~suuupra_commerce.system.Commerce`.

    ``max_workers`` bounds how many commands run at once (each holds a database
    connection while it runs); further calls wait their turn without blocking the loop.

    >>> import asyncio
    >>> from suuupra_commerce.adapters.memory import InMemoryPriceBook
    >>> async def main() -> int:
    ...     commerce = Commerce.from_env({"COMMERCE_PERSISTENCE": "memory"},
    ...                                  price_book=InMemoryPriceBook())
    ...     async with AsyncCommerce(commerce) as shop:
    ...         return len(await shop.call(shop.inventory.items))
    >>> asyncio.run(main())
    0
    """

    def __init__(self, commerce: Commerce, *, max_workers: int = 8) -> None:
        if not 1 <= max_workers <= 256:
            msg = "max_workers must be between 1 and 256"
            raise ValueError(msg)
        self.commerce = commerce
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="commerce")

    @property
    def inventory(self) -> Inventory:
        """The inventory service (pass its methods to :meth:`call`)."""
        return self.commerce.inventory

    @property
    def orders(self) -> Orders:
        """The orders service (pass its methods to :meth:`call`)."""
        return self.commerce.orders

    @property
    def carts(self) -> Carts:
        """The carts service (pass its methods to :meth:`call`)."""
        return self.commerce.carts

    @property
    def sagas(self) -> Sagas:
        """The saga store (pass its methods to :meth:`call`)."""
        return self.commerce.sagas

    @property
    def order_sagas(self) -> OrderSagas:
        """Order-level operations that respect the sagas (pass its methods to :meth:`call`)."""
        return self.commerce.order_sagas

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker thread and return its result.

        The caller's context variables (a request id, say) are visible in the thread.
        """
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        bound = functools.partial(context.run, fn, *args, **kwargs)
        return await loop.run_in_executor(self._pool, bound)

    async def close(self) -> None:
        """Wait for running calls, then close the pool and the stores."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, functools.partial(self._pool.shutdown, wait=True))
        await loop.run_in_executor(None, self.commerce.close)

    async def __aenter__(self) -> AsyncCommerce:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

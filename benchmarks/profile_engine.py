"""Where an order's time goes: placement and the saga engine, profiled apart.

Usage: ``.venv/bin/python -m benchmarks.profile_engine [--backend memory] [--orders 300]``
(``--backend`` is one of the suite's: memory, sqlite, postgres, postgres+redis).

Places ``--orders`` orders (a 2-line cart each, checked out) from one thread, then runs the
saga engine until idle, each under ``cProfile``; prints milliseconds per order for both and
the library's functions that took the most time, cumulatively. The profiler slows Python
code about twofold and store round trips not at all: read the shares, not the totals.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import time

from benchmarks.suite import MIX, _prices, _stock, checkout, store
from suuupra_commerce import Commerce, SagaStatus, Settings
from suuupra_commerce.testing.sagas import fake_ports


def profile(backend: str, orders: int, top: int) -> dict[str, float]:
    """Profile ``orders`` placements, then the engine; print both, return ms per order."""
    with (
        store(backend) as env,
        Commerce(Settings.from_env(env), price_book=_prices(), **fake_ports()) as shop,
    ):
        _stock(shop, orders * 2 + 10)
        rng = random.Random(1)

        def place() -> None:
            for n in range(orders):
                checkout(shop, f"c{n}", rng.sample(MIX, 2))

        figures: dict[str, float] = {}
        for name, work in (("placement", place), ("saga engine", shop.engine.run_until_idle)):
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.runcall(work)
            figures[name] = 1000 * (time.perf_counter() - started) / orders
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
            stats.print_stats("suuupra_commerce", top)
            print(f"== {name}: {figures[name]:.2f} ms per order (profiled)")  # noqa: T201
            print(out.getvalue())  # noqa: T201
        completed = shop.sagas.statistics().by_status.get(SagaStatus.COMPLETED, 0)
        assert completed == orders, f"{completed} of {orders} sagas completed"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", default="memory")
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--top", type=int, default=25, help="functions listed per part")
    args = parser.parse_args()
    profile(args.backend, args.orders, args.top)


if __name__ == "__main__":
    main()

"""Three worker processes on PostgreSQL and Redis; one is killed with SIGKILL mid-load.

The survivors take over its partitions (its advisory locks die with its connection), every
saga converges, and no effect happens twice: one authorization, one capture, one shipment
and one notification per order, counted by participants that live in Redis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.inventory.commands import RegisterItem
from suuupra_commerce.money import Money
from suuupra_commerce.orders.commands import OrderLineRequest, PlaceOrder
from suuupra_commerce.sagas import SagaStatus
from suuupra_commerce.sagas.orders import fulfilment_saga_id
from suuupra_commerce.system import Commerce, Settings

HERE = Path(__file__).resolve().parent
ORDERS = 60
KILL_AFTER = 20


def _start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "suuupra_commerce.cli", "worker", "--host", "worker_host:ports"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    line = worker.stdout.readline()
    if "saga worker running (6 partitions)" not in line:
        worker.kill()
        _, err = worker.communicate(timeout=30)
        pytest.fail(f"the worker did not start: {line}{err}")
    return worker


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_sagas_converge_with_no_duplicate_effect_when_a_worker_is_killed(
    postgres_schema: dict[str, str], redis_namespace: str, redis_available: str
) -> None:
    env = {
        **os.environ,
        **postgres_schema,
        "COMMERCE_PERSISTENCE": "postgres",
        "COMMERCE_SAGA_PARTITIONS": "6",
        "COMMERCE_SAGA_POLL_SECONDS": "0.05",
        # Five services per process, each with its own pool: keep the server's slots.
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": "3",
        "TEST_REDIS_URL": redis_available,
        "TEST_WORKER_NAMESPACE": redis_namespace,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    settings = Settings.from_env(
        {k: v for k, v in env.items() if k.startswith(("COMMERCE_", "POSTGRES_"))}
    )
    book = InMemoryPriceBook()
    book.set_price("MUG-1", "Mug", Money("9.50", "USD"))
    shop = Commerce(settings, price_book=book)
    workers: list[subprocess.Popen[str]] = []
    try:
        shop.inventory.register(
            RegisterItem(
                sku="MUG-1",
                product_id="mug",
                name="Mug",
                unit_price=Money("9.50", "USD"),
                initial_quantity=ORDERS,
            )
        )
        for _ in range(3):
            workers.append(_start_worker(env))
        started = time.monotonic()
        placed = []
        for n in range(ORDERS):
            placed.append(
                shop.orders.place(
                    PlaceOrder(
                        idempotency_key=f"order-{n}",
                        customer_id=f"c-{n}",
                        currency="USD",
                        lines=[OrderLineRequest(sku="MUG-1", quantity=1)],
                    )
                )
            )
            if n + 1 == KILL_AFTER:
                time.sleep(0.5)  # let the sagas get under way
                workers[1].send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 180
        pending = set(placed)
        while pending and time.monotonic() < deadline:
            for order_id in list(pending):
                saga = shop.sagas.find(fulfilment_saga_id(order_id))
                if saga is not None and saga.status.has_ended:
                    pending.discard(order_id)
            time.sleep(0.2)
        converged = time.monotonic() - started
        assert not pending, f"{len(pending)} sagas did not end in 180 s"
        for order_id in placed:
            assert shop.sagas.get(fulfilment_saga_id(order_id)).status is SagaStatus.COMPLETED
        counters = redis.Redis.from_url(redis_available)
        for effect in ("authorizations", "captures", "shipments", "notified"):
            counts = [
                int(counters.get(f"{redis_namespace}:{effect}:{order_id}") or 0)
                for order_id in placed
            ]
            assert counts == [1] * ORDERS, f"{effect}: {counts}"
        counters.close()
        mug = shop.inventory.item("MUG-1")
        assert (mug.on_hand, mug.reserved, mug.available) == (ORDERS, ORDERS, 0)
        print(  # noqa: T201 - the figure this test proves, for the record
            f"\n{ORDERS} orders, 3 workers, one killed after {KILL_AFTER}: "
            f"every saga completed in {converged:.1f} s, each effect exactly once"
        )
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for n, worker in enumerate(workers):
            _, err = worker.communicate(timeout=30)
            if n != 1:
                assert worker.returncode == 0, err
        shop.close()

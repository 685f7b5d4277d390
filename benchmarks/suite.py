"""The benchmark suite: one table per run, with references measured in the same run.

Usage: ``make bench`` (``.venv/bin/python -m benchmarks.suite``), or ``make bench-quick`` for a
smaller run (``--quick``). ``--backends memory,sqlite,postgres,postgres+redis`` picks rows.

For each backend:

* **orders/s end to end**: client threads each build a 2-line cart and check it out; the
  fulfilment saga (fake payment gateway, carrier and notifier) takes every order to
  COMPLETED on the saga engine's thread. Once with a 100-SKU mix, once with one hot SKU on
  every cart. Checked after: every saga completed, no SKU oversold.
* **reservations/s on one hot SKU**: 16 client threads reserve one unit each on one SKU
  until its stock is gone; checked after: every unit reserved once, every extra refused.
* **sagas in worker processes** (PostgreSQL, ``--workers 2``): the same end-to-end runs
  with the saga engine in ``suuupra-commerce worker --role sagas`` processes sharing the
  partitions, as a deployment runs it, instead of a thread of the clients' process.
* **store writes per order**: recorder inserts (and read-model commits) counted during the
  run, per fulfilled order.
* **latency p50/p99** of placing an order, open loop at about half the peak placement rate.
* **rebuild**: read models folded again from the first event (events/s), beside reading and
  decoding the same log (``benchmarks/rebuild.py``).
* **references**: eventsourcing's plain ``Application.save`` on the same backend;
  ``pgbench`` one-row inserts; ``redis-benchmark`` XADD; and the ratios.

Peak RSS of 100,000 orders placed in memory is measured once. The table is printed and
written to ``benchmarks/results/<UTC date>-<host>.md`` with the machine's description.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from benchmarks.rebuild import measure as rebuild_rates
from suuupra_commerce import (
    AddItem,
    CheckoutCart,
    Commerce,
    CreateCart,
    InsufficientStockError,
    Money,
    OrderLineRequest,
    PlaceOrder,
    RegisterItem,
    ReservationLine,
    ReserveStock,
    SagaStatus,
    Settings,
)
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.testing.sagas import fake_ports

RESULTS = Path(__file__).with_name("results")
PG = {
    "POSTGRES_DBNAME": os.environ.get("POSTGRES_DBNAME", "test"),
    "POSTGRES_HOST": os.environ.get("POSTGRES_HOST", "127.0.0.1"),
    "POSTGRES_PORT": os.environ.get("POSTGRES_PORT", "5432"),
    "POSTGRES_USER": os.environ.get("POSTGRES_USER", "postgres"),
    "POSTGRES_PASSWORD": os.environ.get("POSTGRES_PASSWORD", ""),
}
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MIX = [f"SKU-{n:03d}" for n in range(100)]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201 - progress of a long run


# --- stores ----------------------------------------------------------------------------------


def _pg_admin(sql: str) -> None:
    import psycopg

    conninfo = " ".join(
        f"{k}={v}"
        for k, v in (
            ("dbname", PG["POSTGRES_DBNAME"]),
            ("host", PG["POSTGRES_HOST"]),
            ("port", PG["POSTGRES_PORT"]),
            ("user", PG["POSTGRES_USER"]),
        )
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql)


@contextmanager
def store(backend: str) -> Iterator[dict[str, str]]:
    """Settings of a new, empty store of ``backend``, removed afterwards.

    Collects the garbage of the phases before first: a finished phase's objects would otherwise
    be traversed by a full collection during this one (measured: a 337 ms pause in the latency
    phase after two in-memory runs, with the aggregate cache at 10,000).
    """
    gc.collect()
    if backend == "memory":
        yield {"COMMERCE_PERSISTENCE": "memory"}
    elif backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="bench-")
        try:
            yield {"COMMERCE_PERSISTENCE": "sqlite", "COMMERCE_SQLITE_DIR": folder}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        _pg_admin(f'CREATE SCHEMA "{schema}"')
        env = {
            "COMMERCE_PERSISTENCE": "postgres",
            **PG,
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "8",
        }
        if backend == "postgres+redis":
            env.update(
                {
                    "COMMERCE_MESSAGING": "redis",
                    "REDIS_URL": REDIS_URL,
                    "REDIS_KEY_PREFIX": f"{schema}:",
                }
            )
        try:
            yield env
        finally:
            _pg_admin(f'DROP SCHEMA "{schema}" CASCADE')
            if backend == "postgres+redis":
                _redis_delete(f"{schema}*")


def _redis_delete(pattern: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=pattern):
        client.delete(key)
    for key in client.scan_iter(match=pattern.replace(":", ".").lower()):
        client.delete(key)
    client.close()


# --- the library, end to end -----------------------------------------------------------------


class Writes:
    """Counts recorder inserts per application (a ``Commerce(recorder_hook=...)``)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, name: str, recorder: Any) -> Any:
        insert = recorder.insert_events

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.counts[name] += 1
            return insert(*args, **kwargs)

        recorder.insert_events = counted
        return recorder

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())


def _prices() -> InMemoryPriceBook:
    book = InMemoryPriceBook()
    for sku in [*MIX, "HOT-1"]:
        book.set_price(sku, sku.lower(), Money("7.25", "USD"))
    return book


def checkout(shop: Commerce, customer: str, skus: Sequence[str]) -> None:
    """A customer's cart with one unit of each SKU, checked out: one order placed."""
    cart = shop.carts.create(CreateCart(customer_id=customer, currency="USD"))
    for sku in skus:
        shop.carts.add_item(AddItem(cart_id=cart, sku=sku, quantity=1))
    shop.carts.checkout(CheckoutCart(cart_id=cart))


def _stock(shop: Commerce, units: int, skus: Sequence[str] = (*MIX, "HOT-1")) -> None:
    for sku in skus:
        shop.inventory.register(
            RegisterItem(
                sku=sku,
                product_id=sku.lower(),
                name=sku.lower(),
                unit_price=Money("7.25", "USD"),
                initial_quantity=units,
            )
        )


@contextmanager
def saga_workers(env: dict[str, str], count: int) -> Iterator[None]:
    """``count`` saga worker processes (``suuupra-commerce worker --role sagas``) on ``env``.

    They share the partitions by leases, as a deployment's workers do; the fakes are their
    participants. The fakes keep their state in each process (an authorization made in one
    worker is unknown to another), so the run starts only once the workers have settled
    their shares: a saga handed over mid-way would fail its capture in the other worker.
    Yields then; stops them (SIGTERM) after.
    """
    if count == 0:
        yield
        return
    command = [sys.executable, "-m", "suuupra_commerce.cli", "worker", "--role", "sagas"]
    command += ["--host", "suuupra_commerce.testing.sagas:fake_ports"]
    with tempfile.TemporaryFile("w+") as errors:
        processes = [
            subprocess.Popen(
                command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=errors, text=True
            )
            for _ in range(count)
        ]
        try:
            for process in processes:
                assert process.stdout is not None
                while "saga worker running" not in process.stdout.readline():
                    if process.poll() is not None:
                        errors.seek(0)
                        raise RuntimeError(f"a saga worker failed to start: {errors.read()}")
            time.sleep(3 * 1.0)  # three balancing rounds (``Commerce.worker``'s interval: 1 s)
            yield
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=60)
                if process.stdout is not None:
                    process.stdout.close()


def end_to_end(
    env: dict[str, str], orders: int, clients: int, hot: bool, workers: int = 0
) -> dict[str, float]:
    """Orders/s through checkout and the fulfilment saga to COMPLETED, and writes per order.

    The saga engine runs on a thread of this process, or, with ``workers``, in that many
    worker processes (then only this process's writes are counted).
    """
    writes = Writes()
    env = {**env, "COMMERCE_SAGA_POLL_SECONDS": "0.01"}
    if workers:
        env["COMMERCE_SAGA_PARTITIONS"] = str(4 * workers)
    settings = Settings.from_env(env)
    units = orders * 2 + 10
    with Commerce(settings, price_book=_prices(), recorder_hook=writes, **fake_ports()) as shop:
        _stock(shop, units)
        view_commits = Counter[str]()
        commit = shop.views.commit

        def counted_commit(name: str, *args: Any, **kwargs: Any) -> bool:
            view_commits[name] += 1
            return commit(name, *args, **kwargs)

        shop.views.commit = counted_commit  # type: ignore[method-assign]
        before = writes.total()
        stop = threading.Event()
        relays = None
        if shop.settings.messaging != "none":
            relays = threading.Thread(target=shop.run_relays, args=(stop,))
            relays.start()
        with saga_workers(env, workers):
            if not workers:
                shop.engine.start()
            started = time.perf_counter()

            def client(number: int) -> None:
                rng = random.Random(number)
                for _ in range(number, orders, clients):
                    first, second = rng.sample(MIX, 2)
                    checkout(shop, f"c{number}", ["HOT-1" if hot else first, second])

            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(client, range(clients)))
            placed = time.perf_counter()
            deadline = placed + 600
            while True:
                statuses = shop.sagas.statistics().by_status
                ended = sum(n for status, n in statuses.items() if status.has_ended)
                if ended >= orders or time.perf_counter() > deadline:
                    break
                time.sleep(0.05)
            finished = time.perf_counter()
            shop.engine.stop()
        stop.set()
        if relays is not None:
            relays.join()
        stats = shop.sagas.statistics()
        assert stats.by_status.get(SagaStatus.COMPLETED, 0) == orders, stats
        for view in shop.inventory.items():
            assert view.available >= 0, view.sku  # no oversell
            assert view.on_hand >= 0, view.sku
        taken = sum(units - v.on_hand + v.reserved for v in shop.inventory.items())
        assert taken == 2 * orders, (taken, orders)  # every unit sold once, none twice
        store_writes = writes.total() - before
    return {
        "orders_per_s": orders / (finished - started),
        "checkouts_per_s": orders / (placed - started),
        "writes_per_order": store_writes / orders,
        "view_commits_per_order": sum(view_commits.values()) / orders,
    }


def placement_latency(env: dict[str, str], orders: int, clients: int) -> dict[str, float]:
    """Peak placement rate, then p50/p99 latency placing at about half of it (open loop)."""
    with Commerce(Settings.from_env(env), price_book=_prices()) as shop:
        _stock(shop, orders * 4 + 10)

        def place(key: str) -> None:
            sku = MIX[hash(key) % len(MIX)]
            shop.orders.place(
                PlaceOrder(
                    idempotency_key=key,
                    customer_id="c",
                    currency="USD",
                    lines=[OrderLineRequest(sku=sku, quantity=1)],
                )
            )

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(place, [f"peak-{n}" for n in range(orders)]))
        peak = orders / (time.perf_counter() - started)
        interval = 2.0 / peak
        latencies: list[float] = []
        lock = threading.Lock()

        def timed(key: str, due: float) -> None:
            place(key)
            with lock:
                latencies.append(time.perf_counter() - due)

        origin = time.perf_counter()
        with ThreadPoolExecutor(clients * 4) as pool:
            for n in range(orders):
                due = origin + n * interval
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                pool.submit(timed, f"paced-{n}", due)
    latencies.sort()
    return {
        "peak_places_per_s": peak,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


def hot_reservations(env: dict[str, str], reservations: int, clients: int) -> float:
    """Reservations/s of one unit each on one SKU from ``clients`` threads, oversell checked.

    The SKU holds exactly ``reservations`` units and the clients ask for ``clients`` more,
    so the race ends with the stock gone: every unit reserved once, every extra refused.
    """
    with Commerce(Settings.from_env(env), price_book=_prices()) as shop:
        _stock(shop, reservations, ["HOT-1"])

        def client(number: int) -> tuple[int, int]:
            granted = refused = 0
            for n in range(number, reservations + clients, clients):
                line = ReservationLine(sku="HOT-1", quantity=1)
                try:
                    shop.inventory.reserve(ReserveStock(order_id=f"hot-{n}", lines=[line]))
                    granted += 1
                except InsufficientStockError:
                    refused += 1
            return granted, refused

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            outcomes = list(pool.map(client, range(clients)))
        elapsed = time.perf_counter() - started
        granted = sum(g for g, _ in outcomes)
        refused = sum(r for _, r in outcomes)
        item = shop.inventory.item("HOT-1")
        assert (granted, refused) == (reservations, clients), (granted, refused)
        assert (item.reserved, item.available) == (reservations, 0), item  # no oversell
    return granted / elapsed


# --- references ------------------------------------------------------------------------------


class Tick(Aggregate):
    @event("Created")
    def __init__(self) -> None:
        self.n = 0

    @event("Ticked")
    def tick(self) -> None:
        self.n += 1


def plain_saves(env: dict[str, str], saves: int, clients: int) -> float:
    """eventsourcing's own ``save`` of a one-event change, ``clients`` threads, per second."""
    settings = Settings.from_env(env)
    app_env = settings.application_env("Reference")
    if settings.persistence == "postgres":
        app_env["PERSISTENCE_MODULE"] = "eventsourcing.postgres"  # not the library's recorder
    app: Application[UUID] = Application(env=app_env)
    try:
        ticks = [Tick() for _ in range(clients)]
        app.save(*ticks)

        def work(tick: Tick) -> None:
            for _ in range(saves // clients):
                tick.tick()
                app.save(tick)

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(work, ticks))
        return (saves // clients * clients) / (time.perf_counter() - started)
    finally:
        app.close()


def pgbench(seconds: int, clients: int) -> float | None:
    if shutil.which("pgbench") is None:
        return None
    schema = f"pgbench_{uuid.uuid4().hex[:8]}"
    _pg_admin(f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".t (id bigserial, v int)')
    script = Path(tempfile.mkstemp(suffix=".sql")[1])
    script.write_text(f'INSERT INTO "{schema}".t (v) VALUES (1);\n')
    try:
        done = subprocess.run(
            [
                "pgbench",
                "-n",
                "-c",
                str(clients),
                "-j",
                str(min(clients, os.cpu_count() or 1)),
                "-T",
                str(seconds),
                "-f",
                str(script),
                "-h",
                PG["POSTGRES_HOST"],
                "-p",
                PG["POSTGRES_PORT"],
                "-U",
                PG["POSTGRES_USER"],
                PG["POSTGRES_DBNAME"],
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        found = re.search(r"tps = ([0-9.]+)", done.stdout)
        return float(found.group(1)) if found else None
    finally:
        script.unlink()
        _pg_admin(f'DROP SCHEMA "{schema}" CASCADE')


def redis_xadd(requests: int, clients: int) -> float | None:
    if shutil.which("redis-benchmark") is None:
        return None
    key = f"bench:{uuid.uuid4().hex[:8]}"
    host, port = re.match(r"redis://([^:/]+):?(\d*)", REDIS_URL).groups()  # type: ignore[union-attr]
    done = subprocess.run(
        [
            *("redis-benchmark", "-h", host, "-p", port or "6379", "-n", str(requests)),
            *("-c", str(clients), "-q", "XADD", key, "*", "f", "v"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    _redis_delete(key)
    found = re.search(r"([0-9.]+) requests per second", done.stdout)
    return float(found.group(1)) if found else None


def peak_rss_mb(orders: int) -> float:
    """Peak RSS (MiB) of a process that places ``orders`` orders in memory.

    The orders spread over one SKU per 20 orders, so no item holds thousands of open
    reservations at once (an item copies its open reservations on every command:
    docs/index.md says so); what is measured is the memory, not that limit.
    """
    script = (
        "import resource, sys\n"
        "from suuupra_commerce import (Commerce, Money, OrderLineRequest, PlaceOrder,\n"
        "                              RegisterItem, Settings)\n"
        "from suuupra_commerce.adapters.memory import InMemoryPriceBook\n"
        "n = int(sys.argv[1]); skus = [f'R-{i}' for i in range(max(1, n // 20))]\n"
        "book = InMemoryPriceBook()\n"
        "for sku in skus: book.set_price(sku, sku, Money('7.25', 'USD'))\n"
        "with Commerce(Settings.from_env({'COMMERCE_PERSISTENCE': 'memory'}),"
        " price_book=book) as shop:\n"
        "    for sku in skus:\n"
        "        shop.inventory.register(RegisterItem(sku=sku, product_id=sku, name=sku,"
        " unit_price=Money('7.25', 'USD'), initial_quantity=100))\n"
        "    for i in range(n):\n"
        "        shop.orders.place(PlaceOrder(idempotency_key=f'k{i}', customer_id='c',"
        " currency='USD', lines=[OrderLineRequest(sku=skus[i % len(skus)], quantity=1)]))\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(orders)], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip().splitlines()[-1]) / 1024


# --- the run ---------------------------------------------------------------------------------


#: The project's targets: (backend, figure, what it is, target, whether higher is better).
TARGETS = (
    ("postgres", "orders_per_s", "orders/s end to end, 100-SKU mix", 1000.0, True),
    ("postgres", "reservations_per_s", "reservations/s on one hot SKU, 16 clients", 500.0, True),
    ("memory", "orders_per_s", "orders/s end to end, 100-SKU mix", 3000.0, True),
    ("postgres", "ratio", "orders/s ÷ (plain saves/s ÷ writes per order)", 0.8, True),
    ("postgres", "p99_ms", "placement p99 ms at ½ peak", 50.0, False),
    ("postgres", "rebuild_per_s", "read-model rebuild events/s", 20_000.0, True),
)


def against_targets(measured: Mapping[str, Mapping[str, float]]) -> list[str]:
    """One line per target whose backend was run: the figure, the target, met or by how much."""
    lines = []
    for backend, key, what, target, higher in TARGETS:
        value = measured.get(backend, {}).get(key)
        if value is None:
            continue
        met = value >= target if higher else value <= target
        shown = f"{value:,.2f}" if value < 10 else f"{value:,.0f}"
        share = value / target
        verdict = "met" if met else f"missed ({share:.2f}x of the target)"
        lines.append(f"- {backend}, {what}: {shown} against {target:,g}: {verdict}")
    return lines


def machine() -> list[str]:
    def version(command: list[str]) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "not installed"

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    sync = "unknown"
    try:
        import psycopg

        with psycopg.connect(
            f"dbname={PG['POSTGRES_DBNAME']} host={PG['POSTGRES_HOST']} "
            f"port={PG['POSTGRES_PORT']} user={PG['POSTGRES_USER']}"
        ) as conn:
            row = conn.execute("SHOW synchronous_commit").fetchone()
            sync = str(row[0]) if row else sync
    except Exception as error:  # noqa: BLE001 - described as unknown
        sync = f"unknown ({type(error).__name__})"
    return [
        f"host {socket.gethostname()}, {os.cpu_count()} cores, {memory:.0f} GiB, "
        f"{platform.platform()}, Python {platform.python_version()}",
        f"{version(['postgres', '--version']) or version(['psql', '--version'])}, "
        f"synchronous_commit={sync}; {version(['redis-server', '--version']).split(' sha')[0]}",
        "PostgreSQL and Redis on the same machine; other work may share the cores.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller counts (a few minutes)")
    parser.add_argument("--backends", default="memory,sqlite,postgres,postgres+redis")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--no-write", action="store_true", help="print only, write no file")
    parser.add_argument("--orders", type=int, help="orders per end-to-end run")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="also run PostgreSQL's sagas in this many worker processes (0: not)",
    )
    args = parser.parse_args()
    orders = args.orders or (100 if args.quick else 400)
    events = 20_000 if args.quick else 100_000
    rss_orders = 10_000 if args.quick else 100_000
    reservations = 500 if args.quick else 2000
    rows: list[list[str]] = []
    measured: dict[str, dict[str, float]] = {}
    references: dict[str, float | None] = {}
    backends = args.backends.split(",")
    if any(b.startswith("postgres") for b in backends):
        say("reference: pgbench one-row insert")
        references["pgbench one-row insert (tps)"] = pgbench(5 if args.quick else 15, 4)
    if "postgres+redis" in backends:
        say("reference: redis-benchmark XADD")
        references["redis-benchmark XADD (req/s)"] = redis_xadd(20_000, 4)
    for backend in backends:
        n = orders * (3 if backend == "memory" else 1)
        with store(backend) as env:
            say(f"{backend}: eventsourcing plain saves")
            saves = plain_saves(env, 400 if args.quick else 2000, 4)
        with store(backend) as env:
            say(f"{backend}: {n} orders end to end, 100-SKU mix")
            mix = end_to_end(env, n, args.clients, hot=False)
        with store(backend) as env:
            say(f"{backend}: {n} orders end to end, one hot SKU")
            hot = end_to_end(env, n, args.clients, hot=True)
        with store(backend) as env:
            say(f"{backend}: {reservations} reservations on one SKU, 16 clients")
            hot_rate = hot_reservations(env, reservations, 16)
        with store(backend) as env:
            say(f"{backend}: placement latency")
            latency = placement_latency(env, n, args.clients)
        bound = saves / mix["writes_per_order"]
        measured[backend] = {
            "orders_per_s": mix["orders_per_s"],
            "reservations_per_s": hot_rate,
            "ratio": mix["orders_per_s"] / bound,
            "p99_ms": latency["p99_ms"],
        }
        rebuild = "-"
        if backend in ("memory", "sqlite", "postgres"):
            say(f"{backend}: rebuild of {events} events")
            _, read_rate, rate = rebuild_rates(backend, events)
            rebuild = f"{rate:,.0f} ({rate / read_rate:.2f}x read)"
            measured[backend]["rebuild_per_s"] = rate
        rows.append(
            [
                backend,
                f"{mix['orders_per_s']:,.1f}",
                f"{hot['orders_per_s']:,.1f}",
                f"{hot_rate:,.0f}",
                f"{mix['writes_per_order']:.1f} (+{mix['view_commits_per_order']:.1f})",
                f"{saves:,.0f}",
                f"{mix['orders_per_s'] / bound:.2f}",
                f"{latency['p50_ms']:.1f} / {latency['p99_ms']:.1f}",
                rebuild,
            ]
        )
    if args.workers and "postgres" in backends:
        label = f"postgres, sagas in {args.workers} worker processes"
        figures = []
        for hot_sku in (False, True):
            with store("postgres") as env:
                say(f"{label}: {orders} orders end to end, {'hot SKU' if hot_sku else 'mix'}")
                run = end_to_end(env, orders, args.clients, hot=hot_sku, workers=args.workers)
                figures.append(f"{run['orders_per_s']:,.1f}")
        rows.append([label, *figures, *["-"] * 6])
    say(f"peak RSS of {rss_orders} orders in memory")
    rss = peak_rss_mb(rss_orders)
    header = [
        "backend",
        "orders/s (100-SKU mix)",
        "orders/s (hot SKU)",
        "reservations/s (hot SKU, 16 clients)",
        "store writes per order (+ view commits)",
        "plain saves/s",
        "orders/s ÷ (saves/s ÷ writes per order)",
        "place p50 / p99 ms at ½ peak",
        "rebuild events/s",
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        f"Orders end to end: {orders} per run ({3 * orders} in memory), {args.clients} client "
        "threads, each checking out 2-line carts; every saga COMPLETED, no SKU oversold.",
        f"Peak RSS placing {rss_orders:,} orders in memory: {rss:,.0f} MiB.",
        *(
            f"{name}: {'not available' if value is None else f'{value:,.0f}'}"
            for name, value in references.items()
        ),
        "",
        "Against the project's targets:",
        "",
        *against_targets(measured),
    ]
    table = "\n".join(lines)
    print(table)  # noqa: T201 - the result
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M")
        path = RESULTS / f"{stamp}-{socket.gethostname()[:12]}{'-quick' if args.quick else ''}.md"
        path.write_text(
            f"# Benchmark run {stamp} UTC\n\n"
            + "\n".join(f"- {line}" for line in machine())
            + f"\n\nCommand: `python -m benchmarks.suite {' '.join(sys.argv[1:])}`\n\n"
            + table
            + "\n"
        )
        say(f"written to {path}")


if __name__ == "__main__":
    main()

"""The benchmark suite still runs (tiny sizes, in memory and SQLite); it asserts no speed."""

from __future__ import annotations

from benchmarks.profile_engine import profile
from benchmarks.suite import end_to_end, hot_reservations, placement_latency, plain_saves, store


def test_the_end_to_end_benchmark_completes_every_saga_without_oversell() -> None:
    for backend in ("memory", "sqlite"):
        with store(backend) as env:
            figures = end_to_end(env, orders=12, clients=3, hot=True)
        assert figures["writes_per_order"] > 0  # it counted the store's writes
        with store(backend) as env:
            latency = placement_latency(env, orders=12, clients=2)
        assert latency["p99_ms"] >= latency["p50_ms"] > 0
        with store(backend) as env:
            assert plain_saves(env, saves=20, clients=2) > 0
        with store(backend) as env:  # it checks every unit went once and the extras were refused
            assert hot_reservations(env, reservations=30, clients=4) > 0


def test_the_end_to_end_benchmark_runs_the_sagas_in_a_worker_process() -> None:
    with store("sqlite") as env:
        figures = end_to_end(env, orders=6, clients=2, hot=False, workers=1)
    assert figures["orders_per_s"] > 0  # every saga completed (checked inside)


def test_the_engine_profile_runs_and_completes_every_saga() -> None:
    figures = profile(backend="memory", orders=5, top=3)
    assert set(figures) == {"placement", "saga engine"}

"""The benchmark suite still runs (tiny sizes, in memory and SQLite); it asserts no speed."""

from __future__ import annotations

from benchmarks.profile_engine import profile
from benchmarks.suite import (
    against_targets,
    end_to_end,
    hot_reservations,
    placement_latency,
    plain_saves,
    store,
)


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


def test_the_table_says_which_targets_were_met_and_by_how_much_the_others_were_missed() -> None:
    lines = against_targets(
        {
            "postgres": {"orders_per_s": 250.0, "reservations_per_s": 600.0, "p99_ms": 80.0},
            "sqlite": {"orders_per_s": 5000.0},
        }
    )
    assert lines == [
        "- postgres, orders/s end to end, 100-SKU mix: 250 against 1,000: missed (0.25x of the"
        " target)",
        "- postgres, reservations/s on one hot SKU, 16 clients: 600 against 500: met",
        "- postgres, placement p99 ms at ½ peak: 80 against 50: missed (1.60x of the target)",
    ]

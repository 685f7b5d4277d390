"""The command line, run as users run it: a subprocess, with settings in the environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.sagas import SagaStatus
from suuupra_commerce.sagas.orders import fulfilment_saga_id
from suuupra_commerce.system import Settings
from suuupra_commerce.testing.sagas import SagaTestKit

FAKES = "suuupra_commerce.testing.sagas:fake_ports"


def cli(
    *args: str, store: Path, extra: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COMMERCE_PERSISTENCE": "sqlite",
        "COMMERCE_SQLITE_DIR": str(store),
        **(extra or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "suuupra_commerce.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store the demo filled: a completed and a compensated fulfilment saga."""
    store = tmp_path_factory.mktemp("demo")
    done = cli("demo", "--data-dir", str(store), store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    return store


@pytest.fixture
def stuck_store(tmp_path: Path) -> tuple[Path, str]:
    """A store with one fulfilment saga stuck at its shipment (the carrier kept failing)."""
    store = tmp_path / "store"
    settings = Settings.from_env(
        {"COMMERCE_PERSISTENCE": "sqlite", "COMMERCE_SQLITE_DIR": str(store)}
    )
    with SagaTestKit(settings, price_book=InMemoryPriceBook()) as kit:
        kit.stock("MUG-1", 5)
        kit.shipping.fail_next("create_shipment", times=12)
        order_id = kit.place("k-1", {"MUG-1": 1})
        kit.settle()
        assert kit.fulfilment(order_id) is SagaStatus.STUCK
    return store, str(fulfilment_saga_id(order_id))


def test_help_lists_every_command() -> None:
    done = cli("--help", store=Path("unused"))
    assert done.returncode == 0
    for command in ("demo", "worker", "sagas", "projections", "inventory", "export"):
        assert command in done.stdout


def test_demo_runs_and_exits_zero(demo_store: Path) -> None:
    assert (demo_store / "sagas.sqlite").exists()


def test_sagas_list_shows_every_saga_with_its_status(demo_store: Path) -> None:
    done = cli("sagas", "list", store=demo_store)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("order_fulfilment v1") == 2
    assert "completed" in done.stdout
    assert "compensated" in done.stdout
    only = cli("sagas", "list", "--status", "compensated", store=demo_store)
    assert only.stdout.count("order_fulfilment v1") == 1


def test_sagas_show_prints_the_timeline(demo_store: Path) -> None:
    listed = cli("sagas", "list", "--status", "compensated", store=demo_store)
    saga_id = listed.stdout.splitlines()[1].split()[0]
    done = cli("sagas", "show", saga_id, store=demo_store)
    assert done.returncode == 0, done.stderr
    assert "payment declined" in done.stdout
    assert "-> COMPENSATED" in done.stdout


def test_sagas_stats_counts_by_definition_and_status(demo_store: Path) -> None:
    done = cli("sagas", "stats", store=demo_store)
    assert done.returncode == 0, done.stderr
    assert "order_fulfilment: compensated 1, completed 1" in done.stdout


def test_unknown_saga_is_one_line_on_stderr_and_exit_one(demo_store: Path) -> None:
    done = cli("sagas", "show", "00000000-0000-0000-0000-000000000000", store=demo_store)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("suuupra-commerce: SagaNotFoundError")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_malformed_saga_id_is_refused_without_a_traceback(demo_store: Path) -> None:
    done = cli("sagas", "show", "not-an-id", store=demo_store)
    assert done.returncode == 1
    assert "InvalidInputError" in done.stderr
    assert "Traceback" not in done.stderr


def test_operator_action_on_a_saga_that_is_not_stuck_is_refused(demo_store: Path) -> None:
    listed = cli("sagas", "list", "--status", "completed", store=demo_store)
    saga_id = listed.stdout.splitlines()[1].split()[0]
    done = cli("sagas", "retry", saga_id, "--by", "ann", "--reason", "why not", store=demo_store)
    assert done.returncode == 1
    assert "IllegalTransitionError" in done.stderr


def test_stuck_saga_is_retried_by_an_operator_then_completed_by_the_worker(
    stuck_store: tuple[Path, str],
) -> None:
    store, saga_id = stuck_store
    retried = cli("sagas", "retry", saga_id, "--by", "ann", "--reason", "carrier back", store=store)
    assert retried.returncode == 0, retried.stderr
    assert f"saga {saga_id}: running at create_shipment" in retried.stdout
    worked = cli("worker", "--once", "--host", FAKES, store=store)
    assert worked.returncode == 0, worked.stderr
    shown = cli("sagas", "show", saga_id, store=store)
    assert "retry by ann: carrier back" in shown.stdout
    assert "-> COMPLETED" in shown.stdout


@pytest.mark.parametrize(
    ("action", "extra"),
    [("skip", []), ("resolve", ["--outcome", "completed"])],
)
def test_stuck_saga_is_skipped_or_resolved_by_an_operator(
    stuck_store: tuple[Path, str], action: str, extra: list[str]
) -> None:
    store, saga_id = stuck_store
    done = cli("sagas", action, saga_id, "--by", "ann", "--reason", "by phone", *extra, store=store)
    assert done.returncode == 0, done.stderr
    shown = cli("sagas", "show", saga_id, store=store)
    assert f"{action} by ann: by phone" in shown.stdout


def test_compensate_refuses_past_the_pivot(stuck_store: tuple[Path, str]) -> None:
    store, saga_id = stuck_store
    done = cli("sagas", "compensate", saga_id, "--by", "ann", "--reason", "x", store=store)
    assert done.returncode == 1
    assert "pivot" in done.stderr


def test_worker_without_ports_names_what_is_missing(tmp_path: Path) -> None:
    done = cli("worker", "--once", store=tmp_path)
    assert done.returncode == 1
    assert "SagaConfigurationError" in done.stderr
    assert "payments.authorize" in done.stderr


def test_worker_with_a_malformed_host_is_a_usage_error(tmp_path: Path) -> None:
    done = cli("worker", "--once", "--host", "no-colon", store=tmp_path)
    assert done.returncode == 1
    assert "module:function" in done.stderr


def test_worker_runs_until_stopped_by_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "COMMERCE_PERSISTENCE": "sqlite",
        "COMMERCE_SQLITE_DIR": str(tmp_path),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "suuupra_commerce.cli", "worker", "--host", FAKES],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    assert "saga worker running" in worker.stdout.readline()
    worker.terminate()
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "saga worker stopped" in out


def test_projections_rebuild_folds_a_lost_view_store_again_with_a_progress_bar(
    demo_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "copy"
    shutil.copytree(demo_store, store)
    before = cli("sagas", "stats", store=store).stdout
    (store / "views.sqlite").unlink()  # lost, or stale: a view store can always be rebuilt
    lost = cli("projections", "status", store=store)
    assert lost.returncode == 0, lost.stderr
    rows = {line.split()[0]: line.split() for line in lost.stdout.splitlines()[2:]}
    assert set(rows) == {"inventory_items", "orders", "carts", "sagas"}
    assert all(row[2] == "0" for row in rows.values())
    done = cli("projections", "rebuild", store=store)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("rebuilt ")
    assert "events/s" in done.stderr
    assert "100.0%" in done.stderr
    for service in ("Inventory", "Orders", "Carts", "Sagas"):
        assert f"  {service}: " in done.stdout
    caught_up = cli("projections", "status", store=store)
    assert all(line.split()[-1] == "0" for line in caught_up.stdout.splitlines()[2:])
    assert cli("sagas", "stats", store=store).stdout == before


def test_inventory_report_lists_low_stock(demo_store: Path) -> None:
    done = cli("inventory", "report", store=demo_store)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2 items: on hand")
    assert "low stock: 0" in done.stdout


@pytest.mark.parametrize(
    "name", ["order-fulfilment", "order-cancellation", "order-lifecycle", "payment-lifecycle"]
)
def test_export_prints_a_mermaid_diagram(name: str, tmp_path: Path) -> None:
    done = cli("export", "diagram", name, store=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"%% {name}\n")
    assert "flowchart LR" in done.stdout or "stateDiagram-v2" in done.stdout


def test_export_all_prints_every_diagram(tmp_path: Path) -> None:
    done = cli("export", "diagram", "all", store=tmp_path)
    assert done.stdout.count("%% ") == 4


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    done = cli("fly", store=tmp_path)
    assert done.returncode == 2
    assert "invalid choice" in done.stderr

"""The README's first command: the demo runs end to end and every check in it holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from suuupra_commerce.demo import main, run


def test_demo_passes_every_check_when_run_on_sqlite(tmp_path: Path) -> None:
    lines: list[str] = []
    failures = run(tmp_path, out=lines.append)
    assert failures == 0, "\n".join(lines)
    assert sum("[ok]" in line for line in lines) >= 20
    assert (tmp_path / "inventory.sqlite").exists()


def test_demo_exits_zero_when_every_check_holds(tmp_path: Path) -> None:
    assert main(["--data-dir", str(tmp_path)]) == 0


def test_demo_exits_non_zero_when_run_again_on_the_same_store(tmp_path: Path) -> None:
    assert main(["--data-dir", str(tmp_path)]) == 0
    # The SKUs are registered already: the demo reports the refusal and fails.
    assert main(["--data-dir", str(tmp_path)]) == 1


def test_demo_runs_on_the_store_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMERCE_PERSISTENCE", "memory")
    lines: list[str] = []
    assert run(tmp_path, out=lines.append) == 0, "\n".join(lines)
    assert "   store: in memory (gone when the demo ends)" in lines
    assert "   [ok] alice's order: its events replay to the live order" in lines
    assert not (tmp_path / "inventory.sqlite").exists()


@pytest.mark.postgres
@pytest.mark.redis
def test_demo_runs_on_postgres_with_its_events_published_to_redis(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_schema: dict[str, str],
    redis_available: str,
    redis_namespace: str,
) -> None:
    """The README's demo, pointed at PostgreSQL + Redis by settings alone."""
    for key, value in postgres_schema.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COMMERCE_PERSISTENCE", "postgres")
    monkeypatch.setenv("COMMERCE_MESSAGING", "redis")
    monkeypatch.setenv("REDIS_URL", redis_available)
    monkeypatch.setenv("REDIS_KEY_PREFIX", f"{redis_namespace}:")
    lines: list[str] = []
    assert run(tmp_path, out=lines.append) == 0, "\n".join(lines)
    assert any(line.startswith("   store: PostgreSQL database") for line in lines)
    assert "\n== Integration events on the redis bus (COMMERCE_MESSAGING)" in lines
    assert "   [ok] alice's order was published placed first, then paid" in lines

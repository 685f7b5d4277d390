"""The examples run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from suuupra_commerce import Money, Settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_host_service_example_checks_out_a_merged_cart_when_run(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "COMMERCE_PERSISTENCE": settings.persistence,
        "COMMERCE_SQLITE_DIR": str(settings.sqlite_dir),
        **settings.postgres,
        **settings.redis,
    }
    example = _load("host_service")
    total = example.main(env)  # type: ignore[attr-defined]
    assert total == Money("39.80", "EUR")
    printed = capsys.readouterr().out
    assert "2 x Trail map: 14.90 EUR" in printed
    assert "1 x Field guide: 24.90 EUR" in printed

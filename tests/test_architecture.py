"""Layering checks that import-linter cannot express, and security rules for stored data."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "suuupra_commerce"

DOMAIN_MODULES = [
    "aggregate.py",
    "money.py",
    "errors.py",
    "values.py",
    "statemachine.py",
    "ports.py",
    "pricing.py",
    "inventory/domain.py",
    "orders/domain.py",
    "orders/lifecycle.py",
    "orders/policy.py",
    "carts/domain.py",
    "sagas/definition.py",
    "sagas/domain.py",
]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", DOMAIN_MODULES)
def test_domain_uses_only_eventsourcing_domain_when_importing_eventsourcing(module: str) -> None:
    imported = {m for m in _imports(SRC / module) if m.split(".")[0] == "eventsourcing"}
    assert imported <= {"eventsourcing.domain"}, f"{module} imports {sorted(imported)}"


def test_nothing_unpickles_or_evaluates_when_scanning_the_source() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                )
                if any(n and n.split(".")[0] in {"pickle", "marshal", "shelve"} for n in names):
                    offenders.append(f"{path.name}: imports {names}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"eval", "exec"}
            ):
                offenders.append(f"{path.name}:{node.lineno}: {node.func.id}()")
    assert offenders == []


def test_only_the_composition_root_reads_the_environment_when_scanning_the_source() -> None:
    readers = sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "os.environ" in path.read_text(encoding="utf-8")
    )
    assert readers == ["system.py"]

"""Every code block in README.md and docs/ runs, in order, as a reader following the page would.

- A page's ``python`` blocks run in the order they appear, in one namespace: a block may use
  what an earlier block of the page made. A ``print(...)  # text`` line must print ``text``.
- A page's ``sh`` blocks run in bash (``-e -u -o pipefail``), in the same order, with this
  environment's ``python`` and ``suuupra-commerce`` first on the ``PATH``.
- A ``text`` block right after a ``python`` or ``sh`` block is what that block prints, line by
  line; ``...`` in a line stands for any text (timestamps, random ids).
- Fences with no language are diagrams and outlines, not code.
- Every page runs in a folder of its own (``./data`` lands there). A page whose run blocks name
  PostgreSQL runs with the test server's ``POSTGRES_*`` settings in the environment and a schema
  of its own (dropped afterwards); one naming Redis with ``REDIS_URL`` and a ``REDIS_KEY_PREFIX``
  of its own (deleted afterwards). Like the rest of the suite, they skip locally without the
  servers and fail in CI.
- ``NOT_RUN`` lists, by page and first line, the blocks that are not run, each with the reason;
  ``PRELUDES`` gives the names a page's fragments take for granted (the reader's ``commerce``),
  for pages that do not make them themselves.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUN = {"python", "sh"}

#: Blocks not run, by page and the start of their first line: each says why.
NOT_RUN: dict[tuple[str, str], str] = {
    ("README.md", "make demo"): (
        "builds a virtualenv and runs the whole CI (this suite included); "
        "tests/test_demo.py runs the demo"
    ),
    ("docs/example-service.md", 'pip install -e ".[example]"'): (
        "installs packages, then serves HTTP until stopped; "
        "tests/service starts the server and calls it"
    ),
    ("docs/example-service.md", "COMMERCE_PERSISTENCE=postgres POSTGRES_DBNAME=shop"): (
        "serves HTTP until stopped, on the reader's database; tests/service runs it on PostgreSQL"
    ),
    ("docs/adapters/messaging.md", "suuupra-commerce worker --role relay"): (
        "an outline of worker processes that run until stopped; "
        "tests/messaging/test_wiring.py runs the relay role as a subprocess (--once and SIGTERM)"
    ),
    ("docs/deployment.md", "export COMMERCE_PERSISTENCE=postgres POSTGRES_DBNAME=shop"): (
        "an outline for the reader's own hosts (db, cache) of processes that run until stopped; "
        "tests/sagas/test_worker_processes.py and tests/messaging/test_wiring.py run them"
    ),
    ("docs/example-service.md", "COMMERCE_PERSISTENCE=redis COMMERCE_MESSAGING=redis"): (
        "serves HTTP until stopped, on the reader's Redis; tests/service runs it on Redis"
    ),
    ("docs/adapters/postgres.md", "export COMMERCE_PERSISTENCE=postgres COMMERCE_MESSAGING"): (
        "the demo needs an empty store, and the page's first block filled this one; "
        "tests/test_demo.py runs the demo on PostgreSQL + Redis and checks these lines"
    ),
    ("docs/benchmarks.md", "make bench"): (
        "runs for about ten minutes; tests/test_benchmarks_smoke.py runs its parts at tiny sizes"
    ),
    ("docs/reliability.md", ".venv/bin/python -m pytest -s -q tests/reliability"): (
        "runs the reliability tests, which are part of this suite already"
    ),
    ("docs/read-models.md", "suuupra-commerce worker --role projections"): (
        "a worker that folds until stopped; tests/test_projections.py runs the role as a "
        "subprocess and stops it with SIGTERM"
    ),
    ("docs/sagas.md", "suuupra-commerce sagas list --status stuck"): (
        "an outline of commands on the reader's own sagas (its ids are elided); "
        "tests/test_cli.py runs every command as a subprocess"
    ),
}

#: What a page's fragments take for granted, made before its first block runs.
PRELUDES: dict[str, str] = {
    # The sweeps in "Housekeeping a host schedules" run on the reader's `commerce`.
    "docs/index.md": (
        "from suuupra_commerce import Commerce\n"
        "from suuupra_commerce.adapters.memory import InMemoryPriceBook\n"
        'commerce = Commerce.from_env({"COMMERCE_PERSISTENCE": "memory"},\n'
        "                             price_book=InMemoryPriceBook())\n"
    ),
}


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    language: str
    code: str
    line: int  # of its first line of code, 1-based
    output: str | None  # the text block right after it, if any

    @property
    def first_line(self) -> str:
        return self.code.splitlines()[0] if self.code else ""


FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", flags=re.M | re.S)


def blocks_of(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with the output block that follows it, if any."""
    text = page.read_text(encoding="utf-8")
    found = list(FENCE.finditer(text))
    result: list[Block] = []
    for i, match in enumerate(found):
        language = match.group(1)
        if language == "text":
            continue
        output = None
        if i + 1 < len(found):
            after = found[i + 1]
            if after.group(1) == "text" and not text[match.end() : after.start()].strip():
                output = after.group(2)
        line = text.count("\n", 0, match.start(2)) + 1
        result.append(Block(language, match.group(2), line, output))
    return result


def name_of(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def left_out(page: Path, block: Block) -> tuple[str, str] | None:
    """The ``NOT_RUN`` entry of ``block``, if it has one."""
    for where, start in NOT_RUN:
        if where == name_of(page) and block.first_line.startswith(start):
            return (where, start)
    return None


def runs(page: Path, block: Block) -> bool:
    return block.language in RUN and left_out(page, block) is None


def needs(page: Path, server: str) -> bool:
    return any(
        re.search(server, block.code, flags=re.I) for block in blocks_of(page) if runs(page, block)
    )


RUNNABLE = [page for page in PAGES if any(runs(page, block) for block in blocks_of(page))]


def check_output(shown: str, printed: str, where: str) -> None:
    expected = shown.rstrip("\n").splitlines()
    actual = printed.rstrip("\n").splitlines()
    assert len(actual) == len(expected), f"{where}: printed\n{printed}\nnot\n{shown}"
    for want, got in zip(expected, actual, strict=True):
        pattern = ".*".join(re.escape(part) for part in want.rstrip().split("..."))
        assert re.fullmatch(pattern, got.rstrip()), f"{where}: printed {got!r}, not {want!r}"


@pytest.mark.parametrize("page", RUNNABLE, ids=[name_of(p) for p in RUNNABLE])
def test_every_block_of_the_page_runs_in_order_and_prints_what_it_shows(
    page: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    name = name_of(page)
    if needs(page, "postgres"):
        for key, value in request.getfixturevalue("postgres_schema").items():
            monkeypatch.setenv(key, value)
    if needs(page, "redis"):
        monkeypatch.setenv("REDIS_URL", request.getfixturevalue("redis_available"))
        monkeypatch.setenv("REDIS_KEY_PREFIX", f"{request.getfixturevalue('redis_namespace')}:")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "docs"}
    if name in PRELUDES:
        exec(PRELUDES[name], namespace)
    for block in blocks_of(page):
        if not runs(page, block):
            continue
        where = f"{name}:{block.line}"
        if block.language == "python":
            capsys.readouterr()
            exec(compile("\n" * (block.line - 1) + block.code, name, "exec"), namespace)
            printed = capsys.readouterr().out
            for expected in re.findall(r"^\s*print\(.*#\s+(\S.*)$", block.code, flags=re.M):
                assert expected.strip() in printed, f"{where}: {expected!r} not printed"
        else:
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block.code],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, f"{where}:\n{done.stdout}\n{done.stderr}"
            printed = done.stdout
        if block.output is not None:
            check_output(block.output, printed, where)


def test_every_block_left_out_is_on_its_page_and_every_language_is_known() -> None:
    matched = {left_out(p, b) for p in PAGES for b in blocks_of(p)}
    assert set(NOT_RUN) <= matched, f"stale NOT_RUN entries: {set(NOT_RUN) - matched}"
    assert set(PRELUDES) <= {name_of(p) for p in PAGES}
    languages = {b.language for p in PAGES for b in blocks_of(p)}
    assert languages <= RUN | {""}, f"blocks nobody runs: {languages - RUN - {''}}"

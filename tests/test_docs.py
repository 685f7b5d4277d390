"""Code in docs/: every Python block compiles, and every self-contained one runs as shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCKS = [
    (path, block)
    for path in sorted(DOCS.rglob("*.md"))
    for block in re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)
]


@pytest.mark.parametrize(
    ("path", "block"), BLOCKS, ids=[f"{p.name}-{i}" for i, (p, _) in enumerate(BLOCKS)]
)
def test_docs_block_compiles_and_runs_when_self_contained(
    path: Path, block: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = compile(block, str(path), "exec")
    if not block.lstrip().startswith(("from ", "import ")):
        return  # a fragment continuing the page's story: compiling it is the check
    exec(code, {"__name__": "docs"})
    printed = capsys.readouterr().out
    for expected in re.findall(r"^\s*print\(.*#\s+(\S.*)$", block, flags=re.M):
        assert expected.strip() in printed

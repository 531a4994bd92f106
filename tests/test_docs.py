"""Every ```python block in README.md and docs/*.md runs as written.

Blocks of one file run in order in one namespace, in a temporary directory.
A block preceded by the line ``<!-- not-run: REASON -->`` is skipped (for
snippets that need hardware or a commercial gateway); the reason is required.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- not-run: [^>]+-->\s*)?```python\n(.*?)```", re.DOTALL)


def python_blocks(path: Path) -> list[str]:
    return [code for skip, code in BLOCK.findall(path.read_text()) if not skip]


DOCS = [
    path
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    if python_blocks(path)
]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MACNSS_AUTH_HOME", str(tmp_path / "home"))
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for number, code in enumerate(blocks, start=1):
        exec(compile(code, f"{path.name}[block {number}]", "exec"), namespace)  # noqa: S102 (running our own docs)

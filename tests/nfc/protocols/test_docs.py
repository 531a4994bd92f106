"""The Python examples in docs/eid-protocols.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "eid-protocols.md"
BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)


def test_guide_has_examples() -> None:
    assert BLOCKS


@pytest.mark.parametrize("source", BLOCKS)
def test_example_runs(source: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(source, str(GUIDE), "exec"), {"__name__": "__docs__"})  # noqa: S102 (our own docs)
    assert "9000" in capsys.readouterr().out

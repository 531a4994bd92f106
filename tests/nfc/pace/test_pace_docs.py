"""The runnable example of docs/pace.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "pace.md"


def test_python_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {"__name__": "docs_pace"})  # noqa: S102 (our own docs)
    out = capsys.readouterr().out
    assert "0022C1A412800A04007F0007020204020283010184010D" in out
    # The PIN example walks the retry counter down, blocks and unblocks.
    assert "AccessDenied 0x63c2 2\nPasswordSuspended 0x63c1 1\nPasswordSuspended 0x63c1 1" in out
    assert "blocked: 0x63c0" in out
    assert "PIN accepted, reference 3 PIN(<redacted>)" in out

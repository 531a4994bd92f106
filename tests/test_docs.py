"""Every ```python block in README.md and docs/*.md runs as written.

Blocks of one file run in order in one namespace, in a temporary directory.
A block preceded by the line ``<!-- not-run: REASON -->`` is skipped (for
snippets that need hardware or a commercial gateway); the reason is required.
A block preceded by ``<!-- pytest-module -->`` is a test module (a contract
subclass, say): it is written to a file of its own and run by pytest, which
must pass at least one test and skip none.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(?:<!-- (not-run: [^>]+|pytest-module) -->\s*)?```python\n(.*?)```", re.DOTALL)


def python_blocks(path: Path) -> list[str]:
    return [code for marker, code in BLOCK.findall(path.read_text()) if not marker]


def pytest_modules(path: Path) -> list[str]:
    return [code for marker, code in BLOCK.findall(path.read_text()) if marker == "pytest-module"]


# What the production examples read from the environment (a secrets manager's job), made up.
ENVIRONMENT = {
    "OOB_PEPPER_HEX": "5e" * 32,
    "SMTP_PASSWORD": "made-up password",
    "SMS_KEY": "made-up key",
}

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCS = [path for path in PAGES if python_blocks(path)]
MODULES = [
    pytest.param(code, id=f"{path.name}[module {number}]")
    for path in PAGES
    for number, code in enumerate(pytest_modules(path), start=1)
]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MACNSS_AUTH_HOME", str(tmp_path / "home"))
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for number, code in enumerate(blocks, start=1):
        exec(compile(code, f"{path.name}[block {number}]", "exec"), namespace)  # noqa: S102 (running our own docs)


@pytest.mark.parametrize("code", MODULES)
def test_test_modules_pass(code: str, tmp_path: Path) -> None:
    module = tmp_path / "test_from_the_docs.py"
    module.write_text(code)
    pytest_command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"]
    done = subprocess.run(
        [*pytest_command, module.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b\d+ passed\b", summary), summary
    assert "skipped" not in summary, summary


def test_the_markers_are_read() -> None:
    # Guards the pattern: a marker it stopped recognising would run (or skip) the wrong blocks.
    text = (
        "<!-- not-run: needs a reader -->\n```python\nskipped()\n```\n"
        "<!-- pytest-module -->\n```python\ndef test_x(): pass\n```\n"
        "```python\nran()\n```\n"
    )
    found = BLOCK.findall(text)
    assert found == [
        ("not-run: needs a reader", "skipped()\n"),
        ("pytest-module", "def test_x(): pass\n"),
        ("", "ran()\n"),
    ]

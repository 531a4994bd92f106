"""The pcscd command in docs/kiosk-without-hardware.md is the one the tests run.

pcscd changes to ``/`` before it reads ``-c DIR``, so a relative directory
fails with "invalid directory". The PC/SC test infrastructure
(``tests/nfc/card/paths.py``, ``PcscdService``) runs ``pcscd -f -c`` with a
temporary absolute directory and has served every PC/SC test; the documented
line must have the same shape once the shell has expanded it. (The tests
never start a pcscd with a bad directory on purpose: on its way out it
removes the default socket, which would break a pcscd another test runs.)
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "kiosk-without-hardware.md"
PATHS = ROOT / "tests" / "nfc" / "card" / "paths.py"


def _documented_commands() -> list[str]:
    commands, inside = [], False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside and line.startswith("pcscd "):
            commands.append(line)
    return commands


def test_the_documented_pcscd_command_gives_an_absolute_directory(tmp_path: Path) -> None:
    commands = _documented_commands()
    assert commands == ['pcscd -f -c "$PWD/reader.conf.d"']
    # What the shell runs, from the directory that holds reader.conf.d.
    expanded = os.path.expandvars(commands[0].replace("$PWD", str(tmp_path)))
    argv = shlex.split(expanded)
    assert argv[:3] == ["pcscd", "-f", "-c"]
    assert len(argv) == 4
    assert Path(argv[3]).is_absolute()
    assert Path(argv[3]) == tmp_path / "reader.conf.d"


def test_the_tests_run_pcscd_with_the_same_shape() -> None:
    source = PATHS.read_text(encoding="utf-8")
    assert '[pcscd, "-f", "-c", str(self.conf_dir)]' in source
    # conf_dir is a temporary directory: absolute, as the documented command's.
    assert re.search(r"self\.conf_dir = Path\(tempfile\.mkdtemp\(", source)


def test_no_relative_pcscd_directory_is_documented() -> None:
    for path in (ROOT / "docs").glob("*.md"):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"pcscd -f -c (\S+)", text):
            argument = match.group(1).strip('`"')
            if (
                argument in ("./reader.conf.d",)
                and "invalid directory" in text[match.end() : match.end() + 120]
            ):
                continue  # the sentence that explains the failure
            assert argument.startswith(("$PWD/", "/", "TMPDIR")), (path.name, argument)

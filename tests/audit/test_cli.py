"""``macnss-auth audit``: through click's runner and through the installed script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from macnss_auth.audit import ChainedAuditLog
from macnss_auth.cli import main
from tests.audit.helpers import CHAIN_KEY, event, log_path, make_log, rewrite

SCRIPT = Path(sys.executable).parent / "macnss-auth"


def _filled(tmp_path: Path, kind: str = "sqlite", *, keyed: bool = False) -> ChainedAuditLog:
    log = make_log(kind, tmp_path, chain_key=CHAIN_KEY if keyed else None)
    for n in range(5):
        log.record(event(n))
    return log


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", *args], env=env)
    return result.exit_code, result.output


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_verify_intact(kind: str, tmp_path: Path) -> None:
    log = _filled(tmp_path, kind)
    code, out = _run("verify", str(log_path(log)))
    assert code == 0, out
    assert out.startswith(f"OK: 5 records, unkeyed (SHA-256), head {log.head()}")
    assert "--expected-head" in out


def test_verify_keyed_with_hex_and_env(tmp_path: Path) -> None:
    log = _filled(tmp_path, keyed=True)
    path = str(log_path(log))
    code, out = _run("verify", path, "--key-hex", CHAIN_KEY.hex())
    assert code == 0, out
    assert "keyed (HMAC-SHA256)" in out
    code, out = _run(
        "verify",
        path,
        "--key-env",
        "AUDIT_KEY",
        "--expected-head",
        str(log.head()),
        env={"AUDIT_KEY": CHAIN_KEY.hex()},
    )
    assert code == 0, out
    assert "note: a cut-off tail" not in out


def test_verify_reports_the_first_bad_record(tmp_path: Path) -> None:
    log = _filled(tmp_path, "jsonl")
    rewrite(log, lambda lines: lines[:2] + lines[3:])
    code, out = _run("verify", str(log_path(log)))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == (
        "BROKEN at record 3 (line/row 3): missing: record 3 is absent (next present is 4)"
    )
    assert lines[1].startswith("intact through record 2 of 4 read")
    assert lines[3].split()[:4] == ["3", "3", "missing", "seq"]
    assert len(lines) == 4


def test_verify_with_expected_head_detects_truncation(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    saved = str(log.head())
    rewrite(log, lambda lines: lines[:-1])
    assert _run("verify", str(log_path(log)))[0] == 0
    code, out = _run("verify", str(log_path(log)), "--expected-head", saved)
    assert code == 1
    assert out.startswith("BROKEN at record 5: truncated:")


def test_verify_key_problems(tmp_path: Path) -> None:
    path = str(log_path(_filled(tmp_path, keyed=True)))
    code, out = _run("verify", path)
    assert code == 2
    assert "keyed" in out
    code, out = _run("verify", path, "--key-hex", "11" * 32)
    assert code == 1
    assert "wrong_key" in out
    assert _run("verify", path, "--key-hex", "nothex")[0] == 2
    assert _run("verify", path, "--key-hex", "11" * 32, "--key-env", "X")[0] == 2
    assert _run("verify", path, "--key-env", "MACNSS_TEST_UNSET_VARIABLE")[0] == 2
    assert _run("verify", path, "--expected-head", "3:abc")[0] == 2
    assert _run("verify", str(tmp_path / "absent.sqlite3"))[0] == 2


def test_verify_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    code, out = _run("verify", str(path))
    assert code == 1
    assert out.startswith("UNREADABLE")


def test_show_and_head(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    path = str(log_path(log))
    code, out = _run("show", path)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["seq", "at", "action", "method", "outcome"]
    assert len(lines) == 6
    assert "kiosk-casa-07" in lines[1]
    code, out = _run("show", path, "--limit", "2", "--json")
    assert code == 0
    shown = [json.loads(line) for line in out.splitlines()]
    assert [r["seq"] for r in shown] == [4, 5]
    assert _run("show", path, "--limit", "0")[1].count("\n") == 1
    code, out = _run("head", path)
    assert (code, out.strip()) == (0, str(log.head()))


def test_installed_script(tmp_path: Path) -> None:
    log = _filled(tmp_path, keyed=True)
    path = str(log_path(log))
    ok = subprocess.run(
        [str(SCRIPT), "audit", "verify", path, "--key-hex", CHAIN_KEY.hex()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: 5 records")
    rewrite(log, lambda lines: [*lines[:1], lines[2], lines[1], *lines[3:]])
    bad = subprocess.run(
        [str(SCRIPT), "audit", "verify", path, "--key-hex", CHAIN_KEY.hex()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stdout.startswith("BROKEN at record 2 (line/row 2): out_of_order:")

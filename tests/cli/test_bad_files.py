"""A bad or foreign state file, audit log or key file: one line on stderr, never a traceback.

Every command that opens ``state.sqlite3``, ``audit.sqlite3`` or a key file
of the data directory is run against garbage, a truncated copy of a real
file, another application's SQLite database, and a directory in the file's
place. The command must exit non-zero with a one-line ``Error: ...`` and no
Python exception escaping (click's runner keeps an escaping exception in
``result.exception``; with a real process it would be a traceback).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from macnss_auth.audit import SQLiteAuditLog
from macnss_auth.cli import main

COMMAND_LINE = (sys.executable, "-m", "macnss_auth")
KEY_ENVS = ("MACNSS_AUTH_KEY", "MACNSS_AUTH_OOB_PEPPER", "MACNSS_AUTH_HOME")


@pytest.fixture(autouse=True)
def _no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_ENVS:
        monkeypatch.delenv(name, raising=False)


def invoke(home: Path, *args: str) -> tuple[int, str, str, BaseException | None]:
    result = CliRunner().invoke(main, [*args, "--home", str(home)])
    exception = result.exception
    if isinstance(exception, SystemExit):
        exception = None
    return result.exit_code, result.stdout, result.stderr, exception


def real_home(tmp_path: Path) -> tuple[Path, str, str]:
    """A data directory with real files: a TOTP enrollment and an e-mail challenge.

    Returns the directory, an e-mail login challenge id and a TOTP subject.
    """
    home = tmp_path / "real"
    code, out, _, _ = invoke(home, "totp", "enroll", "alice", "--no-qr")
    assert code == 0, out
    code, out, _, _ = invoke(home, "code", "enroll", "bob", "--email", "bob@example.org")
    assert code == 0, out
    match = re.search(r"^challenge: (\S+)$", out, re.MULTILINE)
    assert match
    return home, match.group(1), "alice"


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00\xffnot a database at all\n" * 300)


def truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: max(len(data) // 3, 120)])


def header_only(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def foreign(path: Path) -> None:
    """Another application's SQLite database (its own application id, its own tables)."""
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA application_id = 0x12345678")
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        db.execute("INSERT INTO invoices (total) VALUES (12.5)")
    db.close()


def foreign_plain(path: Path) -> None:
    """A SQLite database with no application id but tables of its own."""
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)")
    db.close()


def directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "garbage": garbage,
    "truncated": truncated,
    "header-only": header_only,
    "foreign": foreign,
    "foreign-plain": foreign_plain,
    "directory": directory,
}

COMMANDS: dict[str, Callable[[str, str], list[str]]] = {
    "totp-enroll": lambda cid, sub: ["totp", "enroll", "carol", "--no-qr"],
    "totp-confirm": lambda cid, sub: ["totp", "confirm", sub, "123456"],
    "totp-verify": lambda cid, sub: ["totp", "verify", sub, "123456"],
    "code-enroll": lambda cid, sub: ["code", "enroll", "dan", "--email", "dan@example.org"],
    "code-confirm": lambda cid, sub: ["code", "confirm", cid, "123456"],
    "code-send": lambda cid, sub: ["code", "send", "bob", "--channel", "email"],
    "code-verify": lambda cid, sub: ["code", "verify", cid, "123456"],
}


def assert_one_line_error(code: int, out: str, err: str, exception: BaseException | None) -> None:
    assert exception is None, f"{type(exception).__name__}: {exception}"
    assert code != 0
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(("Error: ", "refused: ", "not sent: ")), err


def _copy(home: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(home, target)
    return target


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    os.environ.pop("MACNSS_AUTH_KEY", None)
    return real_home(tmp_path_factory.mktemp("cli-bad-files"))


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("file_name", ["state.sqlite3", "audit.sqlite3"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_state_or_audit_file_gives_one_line(
    prepared: tuple[Path, str, str], tmp_path: Path, damage: str, file_name: str, command: str
) -> None:
    source, challenge, subject = prepared
    home = _copy(source, tmp_path, "home")
    if file_name == "audit.sqlite3":
        # The audit log now lives in state.sqlite3; a home of the older layout
        # (a separate audit.sqlite3, which the CLI keeps using) is what gets damaged here.
        SQLiteAuditLog(home / file_name).close()
    DAMAGE[damage](home / file_name)
    code, out, err, exception = invoke(home, *COMMANDS[command](challenge, subject))
    assert_one_line_error(code, out, err, exception)


def bad_hex(path: Path) -> None:
    path.write_text("not hex at all\n")


def binary(path: Path) -> None:
    path.write_bytes(b"\xff\xfe\x00\x01" * 16)


def short(path: Path) -> None:
    path.write_text("00ff\n")


KEY_DAMAGE: dict[str, Callable[[Path], None]] = {
    "bad-hex": bad_hex,
    "binary": binary,
    "short": short,
    "directory": directory,
}


@pytest.mark.parametrize("damage", sorted(KEY_DAMAGE))
@pytest.mark.parametrize("key_name", ["keyring.key", "oob-pepper.key"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_key_file_gives_one_line(
    prepared: tuple[Path, str, str], tmp_path: Path, damage: str, key_name: str, command: str
) -> None:
    source, challenge, subject = prepared
    home = _copy(source, tmp_path, "home")
    KEY_DAMAGE[damage](home / key_name)
    code, out, err, exception = invoke(home, *COMMANDS[command](challenge, subject))
    if key_name == "oob-pepper.key" and command.startswith("totp"):
        # TOTP does not use the pepper: the command runs as usual.
        assert exception is None, f"{type(exception).__name__}: {exception}"
        return
    assert_one_line_error(code, out, err, exception)


@pytest.mark.parametrize("damage", sorted(KEY_DAMAGE))
def test_demo_with_a_bad_key_file_gives_one_line(tmp_path: Path, damage: str) -> None:
    home = tmp_path / "demo"
    home.mkdir()
    (home / "keyring.key").write_text("00" * 32 + "\n")
    (home / "keyring.key").chmod(0o600)  # as we create it: a wider mode adds a warning
    KEY_DAMAGE[damage](home / "keyring.key")
    code, out, err, exception = invoke(home, "demo")
    assert_one_line_error(code, out, err, exception)


def test_real_process_prints_no_traceback(prepared: tuple[Path, str, str], tmp_path: Path) -> None:
    source, challenge, _ = prepared
    home = _copy(source, tmp_path, "home")
    garbage(home / "state.sqlite3")
    done = subprocess.run(
        [*COMMAND_LINE, "code", "verify", challenge, "123456", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k not in KEY_ENVS},
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize("variable", ["MACNSS_AUTH_KEY", "MACNSS_AUTH_OOB_PEPPER"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_key_in_the_environment_gives_one_line(
    prepared: tuple[Path, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    command: str,
) -> None:
    source, challenge, subject = prepared
    home = _copy(source, tmp_path, "home")
    monkeypatch.setenv(variable, "zz" * 32)
    code, out, err, exception = invoke(home, *COMMANDS[command](challenge, subject))
    if variable == "MACNSS_AUTH_OOB_PEPPER" and command.startswith("totp"):
        assert exception is None, f"{type(exception).__name__}: {exception}"
        return
    assert_one_line_error(code, out, err, exception)

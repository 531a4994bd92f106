"""Library and CLI never write to a file that is not theirs.

Another application's SQLite database, or garbage, handed to SQLiteStore or
SQLiteAuditLog is refused before anything changes it: its bytes are the same
afterwards and no -wal, -shm or -journal file appears beside it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from macnss_auth.audit import AuditAction, AuditEvent, Outcome, SQLiteAuditLog
from macnss_auth.audit.errors import AuditFormatError
from macnss_auth.audit.files import verify_file
from macnss_auth.cli import main
from macnss_auth.errors import StoreError
from macnss_auth.store import Keyring
from macnss_auth.store.sqlite import SQLiteStore
from macnss_auth.testing import FixedClock, FixedRandom

SIDE_FILES = ("-wal", "-shm", "-journal")


def _make(path: Path, statements: list[str]) -> None:
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def foreign_with_id(path: Path) -> None:
    _make(
        path,
        [
            "PRAGMA application_id = 0x12345678",
            "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)",
            "INSERT INTO invoices (total) VALUES (12.5)",
        ],
    )


def foreign_plain(path: Path) -> None:
    _make(path, ["CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)"])


def foreign_wal(path: Path) -> None:
    """A WAL-mode database of another application, cleanly closed (no -wal left)."""
    _make(
        path,
        [
            "PRAGMA journal_mode = WAL",
            "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, line TEXT)",
            "INSERT INTO audit_log (line) VALUES ('theirs')",
        ],
    )


def foreign_versioned(path: Path) -> None:
    """No application id, no tables, but a user_version of its own."""
    _make(path, ["PRAGMA user_version = 7"])


def foreign_delete_journal(path: Path) -> None:
    _make(
        path,
        [
            "PRAGMA journal_mode = DELETE",
            "CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT)",
            "CREATE VIEW audit_events AS SELECT * FROM settings",
        ],
    )


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00\xffnot a database\n" * 300)


def sqlite_header_garbage(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)


FOREIGN: dict[str, Callable[[Path], None]] = {
    "app-id": foreign_with_id,
    "plain": foreign_plain,
    "wal": foreign_wal,
    "user-version": foreign_versioned,
    "delete-journal": foreign_delete_journal,
    "garbage": garbage,
    "header-garbage": sqlite_header_garbage,
}


def open_store(path: Path) -> None:
    SQLiteStore(path, keyring=Keyring.generate(random=FixedRandom(3))).close()


def open_audit(path: Path) -> None:
    log = SQLiteAuditLog(path)
    try:
        log.record(
            AuditEvent(
                at=FixedClock.at(1_800_000_000).now(),
                action=AuditAction.VERIFY,
                method="totp",
                outcome=Outcome.SUCCESS,
            )
        )
    finally:
        log.close()


OPENERS: dict[str, Callable[[Path], None]] = {"store": open_store, "audit": open_audit}


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
@pytest.mark.parametrize("opener", sorted(OPENERS))
def test_foreign_file_is_refused_and_left_untouched(tmp_path: Path, kind: str, opener: str) -> None:
    path = tmp_path / "theirs.db"
    FOREIGN[kind](path)
    for suffix in SIDE_FILES:
        assert not Path(f"{path}{suffix}").exists()
    before = snapshot(tmp_path)
    with pytest.raises(StoreError):
        OPENERS[opener](path)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("opener", sorted(OPENERS))
def test_empty_file_and_blank_database_are_taken(tmp_path: Path, opener: str) -> None:
    """A new file (empty, or a database with nothing in it yet) becomes ours."""
    empty = tmp_path / "empty.db"
    empty.touch()
    OPENERS[opener](empty)
    blank = tmp_path / "blank.db"
    _make(blank, ["PRAGMA application_id = 0"])
    OPENERS[opener](blank)
    OPENERS[opener](blank)  # and it opens again as ours


def test_store_and_audit_files_are_not_each_other(tmp_path: Path) -> None:
    store_file = tmp_path / "state.sqlite3"
    audit_file = tmp_path / "audit.sqlite3"
    open_store(store_file)
    open_audit(audit_file)
    with pytest.raises(StoreError):
        open_audit(store_file)
    with pytest.raises(StoreError):
        open_store(audit_file)


def test_audit_log_without_an_application_id_still_opens(tmp_path: Path) -> None:
    """Audit files written before the application id existed are recognised by their schema."""
    path = tmp_path / "audit.sqlite3"
    open_audit(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id = 0")
    db.commit()
    db.close()
    open_audit(path)
    assert verify_file(path).count == 2
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA application_id").fetchone() == (0x4D41414C,)
    db.close()


@pytest.mark.parametrize("kind", ["app-id", "plain", "wal", "delete-journal"])
@pytest.mark.parametrize("command", ["verify", "head", "show"])
def test_reading_a_foreign_file_as_an_audit_log_leaves_it_untouched(
    tmp_path: Path, kind: str, command: str
) -> None:
    path = tmp_path / "theirs.db"
    FOREIGN[kind](path)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, ["audit", command, str(path)])
    assert result.exit_code == 1
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    assert "UNREADABLE" in result.output
    with pytest.raises(AuditFormatError):
        verify_file(path)
    assert snapshot(tmp_path) == before

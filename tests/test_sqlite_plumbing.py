"""The shared SQLite transaction helper: commit, rollback, and no hidden error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from macnss_auth._sqlite import connect_read_only, immediate


def _connection(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("CREATE TABLE t (x INTEGER)")
    return connection


def test_the_block_commits_when_it_ends(tmp_path: Path) -> None:
    connection = _connection(tmp_path / "db")
    with immediate(connection):
        assert connection.in_transaction
        connection.execute("INSERT INTO t VALUES (1)")
    assert not connection.in_transaction
    assert sqlite3.connect(tmp_path / "db").execute("SELECT x FROM t").fetchall() == [(1,)]


def test_the_block_rolls_back_when_it_raises(tmp_path: Path) -> None:
    connection = _connection(tmp_path / "db")

    def insert_then_fail() -> None:
        with immediate(connection):
            connection.execute("INSERT INTO t VALUES (1)")
            raise KeyError("boom")

    with pytest.raises(KeyError):
        insert_then_fail()
    assert not connection.in_transaction
    assert connection.execute("SELECT x FROM t").fetchall() == []


def test_a_transaction_sqlite_already_ended_does_not_hide_the_error(tmp_path: Path) -> None:
    # Some errors (a full disk, an I/O error) end the transaction inside SQLite;
    # a ROLLBACK after them raises "no transaction is active" instead of the cause.
    connection = _connection(tmp_path / "db")

    def fail_after_sqlite_ended_it() -> None:
        with immediate(connection):
            connection.execute("INSERT INTO t VALUES (1)")
            connection.execute("ROLLBACK")
            raise KeyError("the cause")

    with pytest.raises(KeyError, match="the cause"):
        fail_after_sqlite_ended_it()


def test_a_read_only_connection_neither_writes_nor_creates(tmp_path: Path) -> None:
    _connection(tmp_path / "db").close()
    for immutable in (False, True):
        reader = connect_read_only(tmp_path / "db", immutable=immutable)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("INSERT INTO t VALUES (1)")
        reader.close()
    with pytest.raises(sqlite3.OperationalError):
        connect_read_only(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()

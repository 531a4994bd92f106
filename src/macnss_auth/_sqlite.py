"""SQLite plumbing shared by the SQLite store and the SQLite audit log."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

__all__ = ["connect_read_only", "immediate"]


@contextlib.contextmanager
def immediate(connection: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on an autocommit connection; ``ROLLBACK`` on error.

    ``BEGIN IMMEDIATE`` takes the write lock before the first read, so nothing
    read inside the block can change before the commit. The rollback is skipped
    when SQLite has already ended the transaction itself (it does on some errors,
    such as a full disk): a ``ROLLBACK`` would then raise "no transaction is
    active" and hide the error that matters.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def connect_read_only(path: Path, *, immutable: bool = False) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``), which never creates the file.

    ``immutable=True`` also takes no lock and leaves no -wal/-shm files: for a
    file that may belong to another application, looked at before anything else.

    Raises:
        sqlite3.Error: the file cannot be opened.
    """
    flags = "mode=ro&immutable=1" if immutable else "mode=ro"
    return sqlite3.connect(f"file:{quote(os.fspath(path.absolute()))}?{flags}", uri=True)

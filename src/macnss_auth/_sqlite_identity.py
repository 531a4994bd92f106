"""Whose SQLite file is this? Decided read-only, before anything writes to it.

Opening a database the usual way already changes it: ``PRAGMA journal_mode =
WAL`` rewrites the header and leaves -wal and -shm files beside it, and
``CREATE TABLE IF NOT EXISTS`` adds our tables to whatever file it is given.
Another application's database must come out of a failed open byte for byte
as it went in. So the store and the audit log first look at the file
without SQLite's write path:

* the 100-byte header (SQLite file format §1.3): the magic string, and the
  ``application_id`` at offset 68 that each of our files carries;
* for a file without an application id (a blank database, or an audit log
  from before it had one), the names in ``sqlite_master``, read through an
  ``immutable=1`` connection, which takes no lock and creates no file.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from macnss_auth._sqlite import connect_read_only
from macnss_auth.errors import StoreError

__all__ = ["Identity", "identify"]

_MAGIC = b"SQLite format 3\x00"
_HEADER = 100
_APPLICATION_ID = slice(68, 72)
_USER_VERSION = slice(60, 64)


class Identity(enum.Enum):
    """What :func:`identify` found."""

    NEW = "new"  # missing, empty, or a database with nothing in it: ours to set up
    OURS = "ours"  # carries our application id, or holds only our objects


def identify(
    path: Path,
    *,
    application_id: int,
    own_objects: frozenset[str] = frozenset(),
    own_columns: Mapping[str, tuple[str, ...]] | None = None,
    what: str,
) -> Identity:
    """Decide, without writing, whether ``path`` may be opened as ours.

    Args:
        path: the database file.
        application_id: the id our files carry in their header.
        own_objects: names of the tables, views, triggers and indexes a file
            of ours may hold without the id (an older file); empty when every
            file of ours has the id.
        own_columns: for such a file, the columns each of our tables must
            have, in order (a same-named table of someone else's is not ours).
        what: how errors name the file (``"store"``, ``"audit log"``).

    Raises:
        StoreError: the file is not a SQLite database, is another
            application's, or cannot be read.
    """
    try:
        with path.open("rb") as handle:
            header = handle.read(_HEADER)
    except FileNotFoundError:
        return Identity.NEW
    except OSError as exc:
        raise StoreError(f"cannot read the {what} file {str(path)!r}: {exc.strerror}") from exc
    if not header:
        return Identity.NEW
    if len(header) < _HEADER or not header.startswith(_MAGIC):
        raise StoreError(f"{str(path)!r} is not a SQLite database: not a macnss-auth {what}")
    app = int.from_bytes(header[_APPLICATION_ID], "big")
    if app == application_id:
        return Identity.OURS
    if app != 0:
        raise StoreError(f"{str(path)!r} belongs to another application: not a macnss-auth {what}")
    names, columns = _schema(path, what)
    if not names and not int.from_bytes(header[_USER_VERSION], "big"):
        return Identity.NEW
    expected = own_columns or {}
    if (
        names
        and names <= own_objects
        and all(columns.get(table) == cols for table, cols in expected.items())
    ):
        return Identity.OURS
    raise StoreError(
        f"{str(path)!r} is a SQLite database of another application: not a macnss-auth {what}"
    )


def _schema(path: Path, what: str) -> tuple[frozenset[str], dict[str, tuple[str, ...]]]:
    """Object names in ``sqlite_master`` (``sqlite_*`` left out) and each table's columns."""
    try:
        connection = connect_read_only(path, immutable=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the {what} file {str(path)!r}") from exc
    try:
        rows = connection.execute("SELECT type, name FROM sqlite_master").fetchall()
        names = frozenset(str(name) for _, name in rows if not str(name).startswith("sqlite_"))
        columns = {
            str(name): tuple(
                str(row[1])
                for row in connection.execute("SELECT * FROM pragma_table_info(?)", (name,))
            )
            for kind, name in rows
            if kind == "table" and str(name) in names
        }
    except sqlite3.Error as exc:
        raise StoreError(f"{str(path)!r} is not a usable SQLite {what}") from exc
    finally:
        connection.close()
    return names, columns

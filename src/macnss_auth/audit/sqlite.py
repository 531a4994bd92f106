"""The default audit sink: one SQLite file, safe across threads and processes.

Each append is one ``BEGIN IMMEDIATE`` transaction: it takes SQLite's write
lock first, then reads the last record (its sequence and hash), seals the
next one and inserts it. Two writers -- threads, processes, or service
instances sharing the file -- therefore never take the same sequence number
or chain off the same predecessor. The table is ``audit_log(seq INTEGER
PRIMARY KEY, record TEXT)``, where ``record`` is the canonical JSON of the
record; triggers refuse ``UPDATE`` and ``DELETE`` (a guard against accidents,
not against someone who can drop triggers: that is what the chain is for).
The view ``audit_events`` exposes the fields as columns for SQL queries.

The journal is in WAL mode with ``synchronous=FULL``: a record whose
``record()`` call returned survives a power cut.

**In the store's file.** :meth:`SQLiteAuditLog.in_store` keeps the records
in the ``audit_log`` table of a :class:`~macnss_auth.store.SQLiteStore`'s
file (the store's schema has it from version 3) and appends through the
store's connections. Inside the store's
:meth:`~macnss_auth.store.SQLiteStore.commit_group` the append joins the
group's transaction, so a verification's counted attempt, spent code and
audit record are one commit: one ``fsync``, and a crash keeps all of them
or none. ``read_sqlite`` (and so ``macnss-auth audit verify``) reads such a
file too.

The file carries ``PRAGMA application_id`` :data:`APPLICATION_ID`. Before
anything writes to an existing file (the WAL switch, the schema), its
identity is checked read-only: another application's database, or a file
that is not SQLite, is refused unchanged. A log written before the id
existed is recognised by its schema and stamped.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from macnss_auth._sqlite import connect_read_only, immediate
from macnss_auth._sqlite_identity import identify
from macnss_auth.audit.base import ChainedAuditLog, ChainSettings, Sealer
from macnss_auth.audit.chain import EMPTY_HEAD, ChainHead, Stored
from macnss_auth.audit.errors import AuditFormatError
from macnss_auth.audit.events import AuditEvent
from macnss_auth.audit.record import canonical_json, decode_record
from macnss_auth.errors import ConfigurationError, StoreError
from macnss_auth.store.sqlite import APPLICATION_ID as STORE_APPLICATION_ID
from macnss_auth.store.sqlite import AUDIT_LOG_SCHEMA, SQLiteStore

if TYPE_CHECKING:
    # Only for the type checker (PEP 692 on Python 3.10): nothing imports it at run time.
    from typing_extensions import Unpack

__all__ = ["SQLiteAuditLog", "read_sqlite"]

SQLITE_MAGIC = b"SQLite format 3\x00"
#: ``PRAGMA application_id`` of an audit log ("MAAL"; the store's is "MACN").
APPLICATION_ID = 0x4D41414C
_OWN_OBJECTS = frozenset(
    {"audit_log", "audit_log_no_update", "audit_log_no_delete", "audit_events"}
)
_OWN_COLUMNS = {"audit_log": ("seq", "record")}

# The same objects as in a store's file (its migration 3): one definition.
_SCHEMA = AUDIT_LOG_SCHEMA


def _row_record(seq: object, raw: object) -> Mapping[str, Any] | AuditFormatError:
    position = seq if isinstance(seq, int) else None
    if isinstance(raw, str):
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError:
            return AuditFormatError("record is not valid text", position=position)
    elif isinstance(raw, bytes):
        data = raw
    else:
        return AuditFormatError("record is not text", position=position)
    try:
        return decode_record(data, position=position)
    except AuditFormatError as exc:
        return exc


def _stored_rows(conn: sqlite3.Connection) -> list[Stored]:
    rows = conn.execute("SELECT seq, record FROM audit_log ORDER BY seq").fetchall()
    out: list[Stored] = []
    for index, (seq, raw) in enumerate(rows, start=1):
        out.append((seq if isinstance(seq, int) else index, _row_record(seq, raw)))
    return out


def read_sqlite(path: str | os.PathLike[str]) -> list[Stored]:
    """Read every stored record of an SQLite audit file, read-only, in storage order.

    Raises:
        AuditFormatError: the file is not an SQLite audit log.
    """
    # Even a read-only connection leaves -wal and -shm files beside a WAL
    # database: decide from the header and schema first whose file it is.
    # A store's file (its own application id) may hold the audit log too.
    if not _is_store_file(Path(path)):
        try:
            identify(
                Path(path),
                application_id=APPLICATION_ID,
                own_objects=_OWN_OBJECTS,
                own_columns=_OWN_COLUMNS,
                what="audit log",
            )
        except StoreError as exc:
            raise AuditFormatError(f"not an SQLite audit log ({exc})") from exc
    try:
        conn = connect_read_only(Path(path))
    except sqlite3.Error as exc:
        raise AuditFormatError(f"cannot open the audit database ({exc})") from exc
    try:
        return _stored_rows(conn)
    except sqlite3.Error as exc:
        raise AuditFormatError(f"not an SQLite audit log ({exc})") from exc
    finally:
        conn.close()


def _is_store_file(path: Path) -> bool:
    """Whether ``path`` carries the store's application id (read from the header only)."""
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
    except OSError:
        return False
    return (
        len(header) == 100
        and header.startswith(SQLITE_MAGIC)
        and int.from_bytes(header[68:72], "big") == STORE_APPLICATION_ID
    )


def _check_in_store_schema(conn: sqlite3.Connection) -> None:
    """The store's file holds our audit objects, with our columns (schema version 3+).

    Raises:
        StoreError: it does not.
    """
    names = {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master").fetchall()}
    columns = tuple(
        str(row[1]) for row in conn.execute("SELECT * FROM pragma_table_info('audit_log')")
    )
    if not names >= _OWN_OBJECTS or columns != _OWN_COLUMNS["audit_log"]:
        raise StoreError("the store's file does not hold a macnss-auth audit log")


class SQLiteAuditLog(ChainedAuditLog):
    """An audit log in an SQLite file (created on first use, mode 0600).

    Args:
        path: the database file.
        chain_key, pseudonym_key, screen, signer, checkpoint_every: see
            :class:`~macnss_auth.audit.base.ChainedAuditLog`.
        timeout: seconds a writer waits for another writer's transaction.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        **settings: Unpack[ChainSettings],
    ) -> None:
        super().__init__(**settings)
        self.path = Path(path)
        self._timeout = timeout
        # (text, record) of the last record this writer inserted (see _last_of).
        self._written: tuple[str, Mapping[str, Any]] | None = None
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._open()

    @classmethod
    def in_store(
        cls,
        store: SQLiteStore,
        **settings: Unpack[ChainSettings],
    ) -> SQLiteAuditLog:
        """An audit log kept in ``store``'s own file, committed with the store's decisions.

        The authenticators run each verification in the store's
        :meth:`~macnss_auth.store.SQLiteStore.commit_group` when their audit
        log is this one: the counted attempt, the spent code and the audit
        record land in one transaction (one ``fsync``), and a crash leaves
        all of them or none. Settings as for :class:`SQLiteAuditLog`.

        Raises:
            ConfigurationError: ``store`` is not a :class:`~macnss_auth.store.SQLiteStore`.
            StoreError: the store's file does not hold the audit tables.
        """
        if not isinstance(store, SQLiteStore):
            raise ConfigurationError("an audit log in the store needs a SQLiteStore")
        return _InStoreAuditLog(store, **settings)

    @property
    def store(self) -> SQLiteStore | None:
        """The store whose file and transactions this log shares (None: a file of its own)."""
        return None

    def _open(self) -> None:
        with self._lock:
            self._connection()

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross a fork: the child opens its own.
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        # Read-only first: nothing below may touch another application's file.
        identify(
            self.path,
            application_id=APPLICATION_ID,
            own_objects=_OWN_OBJECTS,
            own_columns=_OWN_COLUMNS,
            what="audit log",
        )
        try:
            if not self.path.exists():
                # Create the file ourselves so that it is private from the start.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot create the audit database: {exc.strerror}") from exc
        try:
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            with immediate(conn):
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the audit database: {exc}") from exc
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _last_of(self, conn: sqlite3.Connection) -> Mapping[str, Any] | None:
        row = conn.execute("SELECT seq, record FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return None
        written = self._written
        if written is not None and row[1] == written[0]:
            # The stored text is exactly what this writer sealed last (the common
            # case): its record is known, no need to parse and re-check it.
            return written[1]
        record = _row_record(row[0], row[1])
        if isinstance(record, AuditFormatError):
            raise record
        return record

    def _head_of(self, conn: sqlite3.Connection) -> ChainHead:
        last = self._last_of(conn)
        return EMPTY_HEAD if last is None else ChainHead(last["seq"], last["hash"])

    def _append_on(self, conn: sqlite3.Connection, sealer: Sealer) -> Mapping[str, Any]:
        """Read the head, seal the next record and insert it, on ``conn`` (write lock held)."""
        record = sealer(self._last_of(conn))
        text = canonical_json(record).decode("utf-8")
        conn.execute("INSERT INTO audit_log (seq, record) VALUES (?, ?)", (record["seq"], text))
        # Remembered for the next append; compared with the stored text, so a rolled-back
        # or foreign last record is parsed as usual.
        self._written = (text, record)
        return record

    def _append(self, sealer: Sealer, event: AuditEvent) -> Mapping[str, Any]:
        with self._lock:
            conn = self._connection()
            try:
                # Take the write lock before reading the head: no other writer can
                # chain off the same predecessor.
                with immediate(conn):
                    record = self._append_on(conn, sealer)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot append to the audit log: {exc}") from exc
            return record

    def head(self) -> ChainHead:
        """The last record's sequence and hash.

        Raises:
            AuditFormatError: the last stored record is unreadable.
            StoreError: the database cannot be read.
        """
        with self._lock:
            try:
                return self._head_of(self._connection())
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the audit log: {exc}") from exc

    def stored(self) -> Iterator[Stored]:
        with self._lock:
            try:
                return iter(_stored_rows(self._connection()))
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the audit log: {exc}") from exc

    def close(self) -> None:
        """Close the connection (a later call reopens it)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> SQLiteAuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteAuditLog({str(self.path)!r}, keyed={self.keyed})"


class _InStoreAuditLog(SQLiteAuditLog):
    """An :class:`SQLiteAuditLog` whose records live in a :class:`SQLiteStore`'s file.

    Appends and reads go through the store's connections (its pool, its
    writer lock, its fork handling), so an append inside the store's
    ``commit_group`` is part of that group's transaction.
    """

    def __init__(self, store: SQLiteStore, **settings: Unpack[ChainSettings]) -> None:
        self._store = store
        super().__init__(store.path, **settings)

    @property
    def store(self) -> SQLiteStore:
        """The store whose file and transactions this log shares."""
        return self._store

    def _connection(self) -> sqlite3.Connection:  # pragma: no cover (never called)
        raise NotImplementedError

    def _open(self) -> None:
        # The store opened (and migrated) the file; check that the audit objects are ours.
        with self._reading() as conn:
            _check_in_store_schema(conn)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        # The store's pool, fork handling and error mapping (its private helpers:
        # this class is the store's audit side, kept here with the format).
        with self._store._connection() as conn:
            yield conn

    def _append(self, sealer: Sealer, event: AuditEvent) -> Mapping[str, Any]:
        # Inside a commit group the group's BEGIN IMMEDIATE holds the write lock and
        # the append joins its transaction (one INSERT: no savepoint needed); outside,
        # the store's transaction takes the write lock before the head is read. Either
        # way no other writer chains off the same predecessor.
        store = self._store
        try:
            with store._writing() if store._grouped() is not None else store._transaction() as conn:
                return self._append_on(conn, sealer)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot append to the audit log: {exc}") from exc

    def head(self) -> ChainHead:
        with self._reading() as conn:
            return self._head_of(conn)

    def stored(self) -> Iterator[Stored]:
        with self._reading() as conn:
            return iter(_stored_rows(conn))

    def close(self) -> None:
        """Nothing of its own to close: the store owns the connections."""

    def __repr__(self) -> str:
        return f"SQLiteAuditLog.in_store({self._store!r}, keyed={self.keyed})"

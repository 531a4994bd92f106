"""The default persistent store: one SQLite file, safe across threads and processes.

Theory of operation
-------------------
* **One file, WAL.** The database runs in write-ahead-log mode, so readers
  never block the single writer and a crashed writer leaves the file
  consistent: an incomplete transaction is simply not in the log.
* **Connections.** Each thread borrows a connection from a small per-process
  pool for the length of one call, so no connection is ever used by two
  threads at once. Writers of one process queue on a lock (SQLite admits one
  writer per file anyway); readers do not wait for it. A child process
  created with ``fork`` notices the new process id and opens its own
  connections; it never touches its parent's.
  Processes coordinate through SQLite's file locks; a writer that finds the
  file locked waits up to ``busy_timeout`` seconds, then raises
  :class:`~macnss_auth.errors.StoreError`.
* **Atomicity.** Every method that decides an outcome is a single statement
  (``INSERT ... ON CONFLICT DO UPDATE ... WHERE``, ``UPDATE ... RETURNING``,
  ``DELETE``) or a single ``BEGIN IMMEDIATE`` transaction, which takes the
  write lock before reading so two writers never decide on the same snapshot.
* **Durability.** ``synchronous=FULL`` by default (see :class:`SQLiteStore`).
* **Time.** Instants are stored as integer microseconds since the Unix epoch
  (UTC), so comparisons in SQL are exact and round trips are lossless.
* **Secrets.** Enrollment secrets are sealed with the :class:`Keyring`
  (AES-256-GCM), bound to ``enrollment_context(subject, method)``; the plain
  secret never reaches the file, its log or its journal.
* **Schema.** ``PRAGMA user_version`` holds the schema version and
  ``PRAGMA application_id`` marks the file as ours. Opening applies every
  missing migration step in one transaction; a file from newer code raises
  :class:`~macnss_auth.errors.SchemaVersionError` rather than being guessed at.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final, Literal

from macnss_auth._sqlite import immediate
from macnss_auth._sqlite_identity import identify
from macnss_auth.errors import ConfigurationError, SchemaVersionError, StoreError
from macnss_auth.store._codec import CHALLENGE_COLUMNS as _CHALLENGE_COLUMNS
from macnss_auth.store._codec import challenge_record as _challenge_record
from macnss_auth.store._codec import challenge_row as _challenge_row
from macnss_auth.store._codec import counter_state as _counter_state
from macnss_auth.store._codec import enrollment_row as _enrollment_row
from macnss_auth.store._codec import int64 as _int64
from macnss_auth.store._codec import micros as _micros
from macnss_auth.store._codec import open_enrollment as _open_enrollment
from macnss_auth.store._codec import require_storable as _require_storable
from macnss_auth.store._codec import storable as _storable
from macnss_auth.store._codec import window_micros as _window_micros
from macnss_auth.store.base import ChallengeRecord, CounterState, Enrollment, enrollment_context
from macnss_auth.store.keyring import Keyring

__all__ = ["RESEAL_BATCH", "SCHEMA_VERSION", "SQLiteStore", "Synchronous"]

Synchronous = Literal["NORMAL", "FULL", "EXTRA"]

#: Records :meth:`SQLiteStore.reseal` reads, seals and writes per batch by default.
RESEAL_BATCH: Final = 500

# RETURNING arrived in SQLite 3.35.0 (2021-03); upserts in 3.24.
_MIN_SQLITE: Final = (3, 35, 0)

# "MACN" as a big-endian integer; marks the file as a macnss-auth store.
APPLICATION_ID: Final = 0x4D41434E

# The audit log's objects, the same in a standalone audit file (macnss_auth.audit.sqlite)
# and in a store's file (migration 3). Released: change them with a new migration step.
AUDIT_LOG_SCHEMA: Final[tuple[str, ...]] = (
    """CREATE TABLE IF NOT EXISTS audit_log (
        seq INTEGER PRIMARY KEY,
        record TEXT NOT NULL
    )""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE VIEW IF NOT EXISTS audit_events AS SELECT
        seq,
        json_extract(record, '$.at') AS at,
        json_extract(record, '$.action') AS action,
        json_extract(record, '$.method') AS method,
        json_extract(record, '$.outcome') AS outcome,
        json_extract(record, '$.subject') AS subject,
        json_extract(record, '$.reason') AS reason,
        json_extract(record, '$.channel') AS channel,
        json_extract(record, '$.client.client_id') AS client_id,
        json_extract(record, '$.client.ip') AS ip,
        json_extract(record, '$.details') AS details
    FROM audit_log""",
)

# Forward migrations: step i brings a file from version i to version i + 1.
# Steps are append-only once released; never edit a released step.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 1: the tables.
    (
        """CREATE TABLE enrollments (
            subject TEXT NOT NULL,
            method TEXT NOT NULL,
            sealed BLOB NOT NULL,
            key_id TEXT NOT NULL,
            params TEXT NOT NULL,
            confirmed INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER,
            PRIMARY KEY (subject, method)
        ) WITHOUT ROWID""",
        """CREATE TABLE counters (
            key TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE challenges (
            id TEXT PRIMARY KEY,
            slot TEXT NOT NULL,
            subject TEXT NOT NULL,
            method TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            hint TEXT,
            data TEXT NOT NULL,
            verifier BLOB NOT NULL,
            max_attempts INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            consumed INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE windows (
            key TEXT PRIMARY KEY,
            count INTEGER NOT NULL,
            first_at INTEGER NOT NULL,
            last_at INTEGER NOT NULL,
            ends_at INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE tokens (
            key TEXT NOT NULL,
            digest BLOB NOT NULL,
            PRIMARY KEY (key, digest)
        ) WITHOUT ROWID""",
    ),
    # 2: indexes for slot retirement, purge and key rotation.
    (
        "CREATE INDEX challenges_live_slot ON challenges (slot) WHERE consumed = 0",
        "CREATE INDEX challenges_expiry ON challenges (expires_at)",
        "CREATE INDEX windows_expiry ON windows (ends_at)",
        "CREATE INDEX enrollments_key ON enrollments (key_id)",
    ),
    # 3: the audit log's tables, so that SQLiteAuditLog.in_store can keep the
    # audit records in this file and commit them with the decision they record.
    AUDIT_LOG_SCHEMA,
)

SCHEMA_VERSION: Final = len(_MIGRATIONS)
"""The schema version this code writes and understands."""


def _schema_version(connection: sqlite3.Connection) -> int:
    """The file's schema version, after checking that the file is ours and not too new."""
    (app,) = connection.execute("PRAGMA application_id").fetchone()
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    if app not in (0, APPLICATION_ID):
        raise StoreError("the file belongs to another application")
    if app == 0:
        (tables,) = connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        ).fetchone()
        if tables or version:
            raise StoreError("the file is a SQLite database of another application")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the store has schema version {version}; this code knows up to "
            f"{SCHEMA_VERSION}: upgrade macnss-auth"
        )
    return int(version)


class SQLiteStore:
    """A :class:`~macnss_auth.store.base.Store` in one SQLite file.

    Durability: ``synchronous`` defaults to ``"FULL"``. In WAL mode every
    setting survives the *process* being killed (``kill -9``, an OOM kill, a
    crash) without losing a committed transaction, because a commit has
    reached the operating system's page cache before the call returns. The
    settings differ only when the *machine* loses power or the kernel
    crashes: with ``"NORMAL"`` the last transactions before the failure may
    roll back, because the log is synced at checkpoints, not at each commit.
    For this store a rolled-back update is a security event (a TOTP step
    accepted again, a consumed code usable twice, a failure count forgotten),
    so the default pays one ``fsync`` per commit. Choose ``"NORMAL"`` only if
    several times the write throughput matters more than that window; see
    ``docs/stores.md`` and ``bench/store.py`` for measured numbers.

    Args:
        path: the database file; created with mode 0600 if missing.
            ``":memory:"`` is refused: use :class:`MemoryStore`.
        keyring: seals enrollment secrets; required.
        busy_timeout: seconds a writer waits for another to finish before
            :class:`~macnss_auth.errors.StoreError` is raised.
        synchronous: the ``PRAGMA synchronous`` setting (see above).

    Raises:
        SchemaVersionError: the file was written by a newer schema.
        StoreError: the file is not a SQLite database, belongs to another
            application, or cannot be opened; or the SQLite library is older
            than 3.35.
        ConfigurationError: an invalid argument.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        keyring: Keyring,
        busy_timeout: float = 10.0,
        synchronous: Synchronous = "FULL",
    ) -> None:
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise StoreError(
                f"SQLiteStore needs SQLite {'.'.join(map(str, _MIN_SQLITE))} or newer"
                f" (UPDATE ... RETURNING); this Python has {sqlite3.sqlite_version}"
            )
        if synchronous not in ("NORMAL", "FULL", "EXTRA"):
            raise ConfigurationError("synchronous must be NORMAL, FULL or EXTRA")
        if not math.isfinite(busy_timeout) or busy_timeout < 0:
            raise ConfigurationError("busy_timeout must be a non-negative number of seconds")
        text = os.fspath(path)
        if text == ":memory:" or text.startswith("file:"):
            raise ConfigurationError("SQLiteStore needs a file path; use MemoryStore in memory")
        self._path = Path(text)
        self._keyring = keyring
        self._busy_ms = int(busy_timeout * 1000)
        self._synchronous: Synchronous = synchronous
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pool: list[sqlite3.Connection] = []
        # The connection of the commit group this thread is in (see commit_group).
        self._group = threading.local()
        self._pid = os.getpid()
        _STORES.add(self)
        self._closed = False
        # Read-only first: another application's file must not be switched to
        # WAL (or touched at all) before it is refused.
        identify(self._path, application_id=APPLICATION_ID, what="store")
        self._create_private_file()
        connection = self._connect()
        try:
            self._migrate(connection)
        except BaseException:
            connection.close()
            raise
        self._pool.append(connection)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self._path)!r}, synchronous={self._synchronous!r})"

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # Connections -------------------------------------------------------------
    def _create_private_file(self) -> None:
        """Create a new store file readable by its owner only.

        SQLite would create it with the umask's permissions; it then gives
        the -wal and -shm files the database file's mode, so all three stay
        private. An existing file keeps the mode it has.
        """
        try:
            descriptor = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        except OSError as exc:
            raise StoreError(f"cannot create the store at {str(self._path)!r}") from exc
        os.close(descriptor)

    def _connect(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: no implicit transactions; each statement
            # commits on its own unless we opened BEGIN IMMEDIATE ourselves.
            connection = sqlite3.connect(
                self._path,
                timeout=self._busy_ms / 1000,
                isolation_level=None,
                check_same_thread=False,  # the pool hands it to one thread at a time
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {str(self._path)!r}") from exc
        try:
            connection.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
            connection.execute(f"PRAGMA synchronous = {self._synchronous}")
            connection.execute("PRAGMA trusted_schema = OFF")
        except sqlite3.Error as exc:
            connection.close()
            raise StoreError(f"{str(self._path)!r} is not a usable SQLite store") from exc
        if str(mode).lower() != "wal":
            connection.close()
            raise StoreError(f"the store file cannot use WAL (journal_mode={mode})")
        return connection

    @staticmethod
    def _migrate(connection: sqlite3.Connection) -> None:
        try:
            with immediate(connection):
                version = _schema_version(connection)
                for step in _MIGRATIONS[version:]:
                    for statement in step:
                        connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        except sqlite3.Error as exc:
            raise StoreError("cannot read or migrate the store's schema") from exc

    def _forget_parent(self) -> None:
        # Run in a forked child (see _after_fork_in_child): it must not use its
        # parent's connections (SQLite's locks are per process); abandon them
        # without closing, which would disturb the parent's locks, and start
        # afresh, locks included (a parent's thread may have held one at the fork).
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pool = []
        self._group = threading.local()
        self._pid = os.getpid()

    def _grouped(self) -> sqlite3.Connection | None:
        """The connection of this thread's open commit group, if any."""
        group: _GroupConnection | None = getattr(self._group, "context", None)
        return None if group is None else group.connection

    def _connection(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        # Inside a commit group every call of this thread uses its connection,
        # so reads see the group's own writes and nothing commits on its own.
        # The group's context is made once: a verification makes a dozen calls.
        group: _GroupConnection | None = getattr(self._group, "context", None)
        return group if group is not None else self._pooled()

    @contextlib.contextmanager
    def _pooled(self) -> Iterator[sqlite3.Connection]:
        connection = self._borrow()
        try:
            yield connection
        except sqlite3.Error as exc:
            # Lock timeouts and constraint failures leave the connection usable;
            # anything else (corruption, misuse) retires it.
            usable = isinstance(exc, (sqlite3.IntegrityError, sqlite3.OperationalError))
            self._release(connection, reuse=usable)
            raise _driver_error(exc) from exc
        except BaseException:
            self._release(connection, reuse=True)
            raise
        self._release(connection, reuse=True)

    def _borrow(self) -> sqlite3.Connection:
        """A pooled connection (or a new one) for this thread alone until released.

        Raises:
            StoreError: the store is closed, or a new connection cannot be opened.
        """
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            connection = self._pool.pop() if self._pool else None
        return connection if connection is not None else self._connect()

    def _release(self, connection: sqlite3.Connection, *, reuse: bool) -> None:
        if connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
        with self._lock:
            keep = reuse and not self._closed and os.getpid() == self._pid
            if keep:
                self._pool.append(connection)
        if not keep:
            connection.close()

    def _writing(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A connection for one write, holding this process's writer lock.

        SQLite admits one writer per file anyway; queueing this process's
        threads on a lock is much faster than letting them collide in the
        file lock and back off in SQLite's busy handler. Other processes still
        meet at the file lock. A commit group holds both locks already.
        """
        group: _GroupConnection | None = getattr(self._group, "context", None)
        return group if group is not None else self._pooled_writing()

    @contextlib.contextmanager
    def _pooled_writing(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock, self._pooled() as connection:
            yield connection

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: takes the write lock before any read.

        Inside a commit group it is a savepoint instead: all or nothing within
        the group, committed with it.
        """
        if self._grouped() is not None:
            with self._connection() as connection:
                connection.execute("SAVEPOINT store_step")
                try:
                    yield connection
                except BaseException:
                    connection.execute("ROLLBACK TO store_step")
                    connection.execute("RELEASE store_step")
                    raise
                connection.execute("RELEASE store_step")
            return
        with self._writing() as connection:
            connection.execute("BEGIN IMMEDIATE")
            yield connection
            connection.execute("COMMIT")

    @contextlib.contextmanager
    def commit_group(self) -> Iterator[None]:
        """Run every call of this thread inside the block as one durable commit.

        ``BEGIN IMMEDIATE`` takes the write lock first; every store call of
        this thread inside the block, and every append of an audit log opened
        with :meth:`SQLiteAuditLog.in_store <macnss_auth.audit.SQLiteAuditLog.in_store>`
        on this store, runs on one connection in that transaction; one
        ``COMMIT`` (one ``fsync`` with ``synchronous=FULL``) ends it. Each
        call's effect stands as if it had committed on its own, *also when the
        block raises* (a refused code must leave its counted attempt and its
        audit record behind), so the block commits on the way out, before
        the exception reaches the caller; it rolls back only when the
        database itself failed (:class:`~macnss_auth.errors.StoreError`).
        A process killed inside the block commits nothing of it.

        Groups nest (an inner block joins the outer one). Other threads of
        the process wait for the writer lock meanwhile; their reads do not.

        Raises:
            StoreError: the transaction could not start or commit.
        """
        if self._grouped() is not None:
            yield
            return
        with self._write_lock:
            connection = self._borrow()
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self._release(connection, reuse=isinstance(exc, sqlite3.OperationalError))
                raise _driver_error(exc) from exc
            self._group.context = _GroupConnection(connection)
            failed = False
            try:
                yield
            except StoreError:
                failed = True
                raise
            finally:
                self._group.context = None
                self._finish_group(connection, commit=not failed)

    def _finish_group(self, connection: sqlite3.Connection, *, commit: bool) -> None:
        """Commit (or roll back) a commit group and return its connection to the pool."""
        try:
            if connection.in_transaction:
                connection.execute("COMMIT" if commit else "ROLLBACK")
        except sqlite3.Error as exc:
            self._release(connection, reuse=False)
            raise _driver_error(exc, "the store failed to commit") from exc
        self._release(connection, reuse=True)

    # Enrollments -----------------------------------------------------------
    def put_enrollment(self, enrollment: Enrollment) -> None:
        """Create or replace the enrollment for (subject, method), secret sealed."""
        _require_storable(enrollment.subject, enrollment.method)
        values = _enrollment_row(enrollment, self._keyring)
        with self._writing() as db:
            db.execute(
                "INSERT INTO enrollments (subject, method, sealed, key_id, params, confirmed,"
                " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (subject, method) DO UPDATE SET sealed = excluded.sealed,"
                " key_id = excluded.key_id, params = excluded.params,"
                " confirmed = excluded.confirmed, created_at = excluded.created_at,"
                " expires_at = excluded.expires_at",
                values,
            )

    def get_enrollment(self, subject: str, method: str) -> Enrollment | None:
        """The enrollment with its secret opened, or None.

        Raises:
            SecretKeyError: the sealed secret does not open under the keyring
                (unknown or wrong key, or a record moved to another subject).
        """
        if not _storable(subject, method):
            return None
        with self._connection() as db:
            row = db.execute(
                "SELECT sealed, params, confirmed, created_at, expires_at FROM enrollments"
                " WHERE subject = ? AND method = ?",
                (subject, method),
            ).fetchone()
        return _open_enrollment(self._keyring, subject, method, row)

    def delete_enrollment(self, subject: str, method: str) -> bool:
        """Remove it; True if there was one."""
        if not _storable(subject, method):
            return False
        with self._writing() as db:
            cursor = db.execute(
                "DELETE FROM enrollments WHERE subject = ? AND method = ?", (subject, method)
            )
            return cursor.rowcount == 1

    def reseal(self, *, batch_size: int = RESEAL_BATCH) -> int:
        """Re-seal every secret not sealed under the primary key; return how many.

        Run after adding a new primary key; afterwards the old key can leave
        the keyring. Works through the table in primary-key order,
        ``batch_size`` records at a time: each batch is read without a lock,
        sealed, then written in one short transaction whose ``UPDATE ...
        WHERE sealed = <the value read>`` skips a record changed meanwhile
        (re-enrolled, confirmed, deleted), so logins of other threads and
        processes wait for one batch's writes at most, never for the sealing.

        Raises:
            ConfigurationError: ``batch_size`` is not positive.
            SecretKeyError: a secret does not open under the ring; earlier
                batches stay re-sealed, this one and later ones are untouched.
        """
        if batch_size < 1:
            raise ConfigurationError("batch_size must be positive")
        primary = self._keyring.primary
        done = 0
        # Keyset pagination over the primary key: each record is read once.
        query = (
            "SELECT subject, method, sealed FROM enrollments WHERE key_id != :primary"
            " ORDER BY subject, method LIMIT :n"
        )
        params: dict[str, object] = {"primary": primary, "n": batch_size}
        while True:
            with self._connection() as db:
                rows = db.execute(query, params).fetchall()
            if not rows:
                return done
            query = (
                "SELECT subject, method, sealed FROM enrollments WHERE key_id != :primary"
                " AND (subject, method) > (:subject, :method)"
                " ORDER BY subject, method LIMIT :n"
            )
            params.update(subject=rows[-1][0], method=rows[-1][1])
            updates = [
                (
                    self._keyring.reseal(
                        bytes(sealed), context=enrollment_context(subject, method)
                    ),
                    primary,
                    subject,
                    method,
                    sealed,
                )
                for subject, method, sealed in rows
            ]
            with self._transaction() as db:
                # executemany sums the rows each UPDATE changed: the CAS winners.
                done += db.executemany(
                    "UPDATE enrollments SET sealed = ?, key_id = ?"
                    " WHERE subject = ? AND method = ? AND sealed = ?",
                    updates,
                ).rowcount

    # Monotonic counters ------------------------------------------------------
    def advance(self, key: str, value: int) -> bool:
        """Atomically set ``key`` to ``value`` iff absent or ``value`` > current.

        One upsert statement whose update clause only fires on a larger value.

        Raises:
            StoreError: ``value`` does not fit in a signed 64-bit integer.
        """
        _require_storable(key)
        with self._writing() as db:
            cursor = db.execute(
                "INSERT INTO counters (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                " WHERE excluded.value > counters.value",
                (key, _int64(value)),
            )
            return cursor.rowcount == 1

    def current(self, key: str) -> int | None:
        """The counter's value, or None if never set (advisory)."""
        if not _storable(key):
            return None
        with self._connection() as db:
            row = db.execute("SELECT value FROM counters WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def reset_counter(self, key: str) -> None:
        """Forget a monotonic counter."""
        if not _storable(key):
            return
        with self._writing() as db:
            db.execute("DELETE FROM counters WHERE key = ?", (key,))

    # Challenges --------------------------------------------------------------
    def create_challenge(self, record: ChallengeRecord) -> None:
        """Insert a challenge and retire the live ones in its slot, in one transaction.

        ``BEGIN IMMEDIATE`` (or a savepoint inside a commit group).

        Raises:
            StoreError: a challenge with this id exists already.
        """
        values = _challenge_row(record)
        with self._transaction() as db:
            try:
                db.execute(
                    f"INSERT INTO challenges ({_CHALLENGE_COLUMNS})"  # noqa: S608 (constant columns)
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
            except sqlite3.IntegrityError:
                raise StoreError("a challenge with this id exists already") from None
            db.execute(
                "UPDATE challenges SET consumed = 1 WHERE slot = ? AND consumed = 0 AND id != ?",
                (record.slot, record.id),
            )

    def get_challenge(self, challenge_id: str) -> ChallengeRecord | None:
        """The record, or None (advisory)."""
        if not _storable(challenge_id):
            return None
        with self._connection() as db:
            row = db.execute(
                f"SELECT {_CHALLENGE_COLUMNS} FROM challenges WHERE id = ?",  # noqa: S608 (constant columns)
                (challenge_id,),
            ).fetchone()
        return None if row is None else _challenge_record(row)

    def count_attempt(self, challenge_id: str) -> int | None:
        """Atomically add one wrong attempt; the new count, or None if unknown."""
        if not _storable(challenge_id):
            return None
        with self._writing() as db:
            rows = db.execute(
                "UPDATE challenges SET attempts = attempts + 1 WHERE id = ? RETURNING attempts",
                (challenge_id,),
            ).fetchall()  # fetch to the end: the statement (and its commit) completes
        return int(rows[0][0]) if rows else None

    def consume_challenge(self, challenge_id: str, now: dt.datetime) -> ChallengeRecord | None:
        """Atomically mark used iff unused, unexpired and attempts remain.

        One ``UPDATE ... WHERE consumed = 0 ... RETURNING`` statement, so
        exactly one caller gets the record (as it was: ``consumed=False``).
        """
        if not _storable(challenge_id):
            return None
        with self._writing() as db:
            rows = db.execute(
                "UPDATE challenges SET consumed = 1"  # noqa: S608 (constant columns)
                " WHERE id = ? AND consumed = 0 AND expires_at > ? AND attempts < max_attempts"
                f" RETURNING {_CHALLENGE_COLUMNS}",
                (challenge_id, _micros(now)),
            ).fetchall()
        if not rows:
            return None
        # RETURNING shows the row after the update; the only change was consumed.
        return _challenge_record(rows[0], consumed=False)

    # Windowed counters -------------------------------------------------------
    def hit(self, key: str, now: dt.datetime, window: float) -> CounterState:
        """Atomically count one event; a window older than ``window`` s restarts.

        Raises:
            ConfigurationError: ``window`` is not a positive finite number.
        """
        _require_storable(key)
        at, span = _micros(now), _window_micros(window)
        with self._writing() as db:
            # SET expressions all read the row as it was before this update.
            rows = db.execute(
                "INSERT INTO windows (key, count, first_at, last_at, ends_at)"
                " VALUES (:key, 1, :now, :now, :now + :span)"
                " ON CONFLICT (key) DO UPDATE SET"
                " count = CASE WHEN :now >= windows.first_at + :span THEN 1"
                "   ELSE windows.count + 1 END,"
                " first_at = CASE WHEN :now >= windows.first_at + :span THEN :now"
                "   ELSE windows.first_at END,"
                " last_at = :now,"
                " ends_at = CASE WHEN :now >= windows.first_at + :span THEN :now + :span"
                "   ELSE windows.first_at + :span END"
                " RETURNING count, first_at, last_at",
                {"key": key, "now": at, "span": span},
            ).fetchall()
        return _counter_state(rows[0])

    def peek(self, key: str, now: dt.datetime, window: float) -> CounterState | None:
        """The counter if its window is still open at ``now`` (advisory)."""
        if not _storable(key):
            return None
        at, span = _micros(now), _window_micros(window)
        with self._connection() as db:
            row = db.execute(
                "SELECT count, first_at, last_at FROM windows WHERE key = ? AND ? < first_at + ?",
                (key, at, span),
            ).fetchone()
        return None if row is None else _counter_state(row)

    def clear(self, key: str) -> None:
        """Reset a windowed counter."""
        if not _storable(key):
            return
        with self._writing() as db:
            db.execute("DELETE FROM windows WHERE key = ?", (key,))

    # Single-use tokens -------------------------------------------------------
    def add_tokens(self, key: str, digests: Iterable[bytes]) -> None:
        """Replace the token set under ``key``, in one transaction."""
        _require_storable(key)
        rows = [(key, bytes(digest)) for digest in digests]
        with self._transaction() as db:
            db.execute("DELETE FROM tokens WHERE key = ?", (key,))
            db.executemany("INSERT OR IGNORE INTO tokens (key, digest) VALUES (?, ?)", rows)

    def consume_token(self, key: str, digest: bytes) -> bool:
        """Atomically remove one token; True to exactly one caller."""
        if not _storable(key):
            return False
        with self._writing() as db:
            cursor = db.execute("DELETE FROM tokens WHERE key = ? AND digest = ?", (key, digest))
            return cursor.rowcount == 1

    def count_tokens(self, key: str) -> int:
        """Tokens left under ``key``."""
        if not _storable(key):
            return 0
        with self._connection() as db:
            (count,) = db.execute("SELECT count(*) FROM tokens WHERE key = ?", (key,)).fetchone()
        return int(count)

    # Housekeeping ------------------------------------------------------------
    def purge(self, now: dt.datetime) -> int:
        """Delete expired challenges and windows that ended; return how many."""
        at = _micros(now)
        with self._transaction() as db:
            challenges = db.execute("DELETE FROM challenges WHERE expires_at <= ?", (at,)).rowcount
            windows = db.execute("DELETE FROM windows WHERE ends_at <= ?", (at,)).rowcount
        return challenges + windows

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check``: ``["ok"]`` for a sound file, else the problems."""
        with self._connection() as db:
            return [str(row[0]) for row in db.execute("PRAGMA integrity_check").fetchall()]

    def close(self) -> None:
        """Close every pooled connection; later calls raise ``StoreError``.

        Call it once the threads using the store are done: a connection lent
        to a running call is closed when that call returns.
        """
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, []
        if os.getpid() == self._pid:
            for connection in pool:
                connection.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _GroupConnection:
    """A commit group's connection as the context every call of its thread enters.

    Errors become :class:`~macnss_auth.errors.StoreError`; nothing is committed
    or released here (the group does that once, at its end).
    """

    __slots__ = ("connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        return self.connection

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        if isinstance(error, sqlite3.Error):
            raise _driver_error(error) from error


# SQLITE_BUSY and SQLITE_LOCKED (primary codes): another connection held the lock
# longer than busy_timeout; the same call may succeed once it lets go.
_BUSY_CODES: Final = frozenset({5, 6})


def _driver_error(exc: sqlite3.Error, what: str = "the store failed") -> StoreError:
    """``exc`` as a ``StoreError`` naming its class; retryable when the file was busy."""
    code = getattr(exc, "sqlite_errorcode", None)
    retryable = (
        code & 0xFF in _BUSY_CODES
        if isinstance(code, int)
        # Python 3.10 has no error code on the exception: its message says it.
        else str(exc).startswith(("database is locked", "database table is locked"))
    )
    return StoreError(f"{what}: {exc.__class__.__name__}", retryable=retryable)


#: Every open store of this process, so that a forked child forgets their
#: connections at once rather than asking for its pid on every call.
_STORES: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._forget_parent()


os.register_at_fork(after_in_child=_after_fork_in_child)

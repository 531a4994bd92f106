"""A store in PostgreSQL, for several service instances sharing one database.

Theory of operation
-------------------
* **Connections.** psycopg 3 connections in autocommit mode, lent to one
  thread at a time from a bounded per-process pool: at most
  ``max_connections`` exist at once, and a caller finding them all lent out
  waits up to ``pool_timeout`` seconds (then a retryable ``StoreError``), so
  a burst of requests on one instance cannot take every connection slot of
  the server from the other instances. A pooled connection on whose socket
  something arrived while it sat idle (the server ended the session: a
  restart, a failover, ``pg_terminate_backend``, ``idle_session_timeout``)
  is closed instead of being lent, so no call fails on a connection the
  server already dropped.
* **Stalled clients.** Each transaction sets ``idle_in_transaction_session_timeout``
  (``idle_in_transaction_timeout``, 10 s) for itself: the store's transactions
  send their statements back to back, so one that idles belongs to a client
  that froze or lost the network while holding a slot's lock; the server ends
  it rather than let every other instance wait on that lock.
* **Connection poolers.** Nothing the store relies on outlives a transaction,
  so it runs behind PgBouncer in transaction mode: the timeout above is set
  per transaction (``set_config(..., true)``, sent with the advisory lock in
  one statement), advisory locks are transaction-scoped, isolation is named
  in each ``BEGIN``. Server-side prepared statements are the exception:
  psycopg prepares a statement once it has run five times, and behind a
  transaction pooler a later run may reach a server session that lacks it,
  or holds another client's statement of that name. A connection whose ``BackendKeyData`` pid
  differs from ``pg_backend_pid()`` goes through a pooler (PostgreSQL itself
  sends its own pid), so it never prepares (``prepared_statements=None``,
  the default; ``True`` or ``False`` decides without looking).
* **Errors.** Every driver error becomes a ``StoreError`` naming only the
  error class; ``retryable`` is set for what a later call may not meet
  again (a lost connection, a server starting or shutting down, a deadlock,
  a read-only standby after a failover). Connection failures do not chain
  libpq's message: it may quote part of the connection string (a password
  with an unescaped ``@``), so they name the error class only, and are
  retryable (libpq does not say whether the server refused the login).
  A connection that met a read-only standby is dropped, so the next
  connection can reach the new primary (``target_session_attrs``).
* **Atomicity.** Each deciding method is one statement that PostgreSQL makes
  atomic under concurrency (``INSERT ... ON CONFLICT DO UPDATE ... WHERE``,
  ``UPDATE ... WHERE consumed = false ... RETURNING``: a second updater waits
  for the row lock, then re-checks the condition on the new row and skips
  it), or one transaction that first takes a transaction-scoped advisory lock
  on what it decides about (the challenge slot, the token set), so two
  instances creating a challenge in the same slot at once cannot both leave
  theirs live.
* **Durability** is the server's: with the default ``synchronous_commit=on``
  an accepted update survives a crash of the server or the machine.
* **Time** is stored as ``bigint`` microseconds since the Unix epoch (UTC).
* **Secrets** are sealed with the :class:`Keyring` exactly as in SQLite.
* **Schema.** All tables live in one PostgreSQL schema (``macnss_auth`` by
  default) with a ``meta`` table holding the schema version; opening applies
  the missing forward steps under an advisory lock, and a newer version
  raises :class:`~macnss_auth.errors.SchemaVersionError`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import select
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Final

import psycopg
from psycopg import sql

from macnss_auth.errors import ConfigurationError, SchemaVersionError, StoreError
from macnss_auth.store._codec import CHALLENGE_COLUMNS as _CHALLENGE_COLUMNS
from macnss_auth.store._codec import challenge_record as _record
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

__all__ = ["POSTGRES_SCHEMA_VERSION", "RESEAL_BATCH", "PostgresStore"]

# Forward migrations; "{s}" is replaced by the quoted schema name.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE {s}.enrollments (
            subject text NOT NULL,
            method text NOT NULL,
            sealed bytea NOT NULL,
            key_id text NOT NULL,
            params text NOT NULL,
            confirmed boolean NOT NULL,
            created_at bigint NOT NULL,
            expires_at bigint,
            PRIMARY KEY (subject, method)
        )""",
        "CREATE TABLE {s}.counters (key text PRIMARY KEY, value bigint NOT NULL)",
        """CREATE TABLE {s}.challenges (
            id text PRIMARY KEY,
            slot text NOT NULL,
            subject text NOT NULL,
            method text NOT NULL,
            created_at bigint NOT NULL,
            expires_at bigint NOT NULL,
            hint text,
            data text NOT NULL,
            verifier bytea NOT NULL,
            max_attempts integer NOT NULL,
            attempts integer NOT NULL,
            consumed boolean NOT NULL
        )""",
        "CREATE INDEX ON {s}.challenges (slot) WHERE NOT consumed",
        "CREATE INDEX ON {s}.challenges (expires_at)",
        """CREATE TABLE {s}.windows (
            key text PRIMARY KEY,
            count bigint NOT NULL,
            first_at bigint NOT NULL,
            last_at bigint NOT NULL,
            ends_at bigint NOT NULL
        )""",
        "CREATE INDEX ON {s}.windows (ends_at)",
        """CREATE TABLE {s}.tokens (
            key text NOT NULL,
            digest bytea NOT NULL,
            PRIMARY KEY (key, digest)
        )""",
    ),
)

POSTGRES_SCHEMA_VERSION: Final = len(_MIGRATIONS)

#: Records :meth:`PostgresStore.reseal` reads, seals and writes per batch by default.
RESEAL_BATCH: Final = 500

_COLUMNS: Final = sql.SQL(_CHALLENGE_COLUMNS)

# Statement parameters: positional (%s) or named (%(name)s).
Params = tuple[Any, ...] | dict[str, Any]

# Advisory lock namespaces (first argument of the two-int form is not used:
# one bigint key from hashtextextended, salted per purpose).
_MIGRATION_LOCK: Final = 0x4D41434E

# SQLSTATEs of failures a later call may not meet: read-only transaction (a standby
# after a failover), and the classes that psycopg does not map to OperationalError.
_RETRYABLE_STATES: Final = frozenset({"25006"})

# psycopg's default: a statement run this many times on a connection is prepared.
_PREPARE_THRESHOLD: Final = 5

# A transaction's first statement: its own idle limit (is_local), and maybe an advisory lock.
_SET_IDLE_TIMEOUT: Final = "SELECT set_config('idle_in_transaction_session_timeout', %s, true)"
_SET_IDLE_TIMEOUT_AND_LOCK: Final = (
    f"{_SET_IDLE_TIMEOUT}, pg_advisory_xact_lock(hashtextextended(%s, 0))"
)


def _driver_error(exc: psycopg.Error, what: str) -> StoreError:
    """``exc`` as a ``StoreError`` (class name only: messages may quote data)."""
    retryable = isinstance(exc, psycopg.OperationalError) or exc.sqlstate in _RETRYABLE_STATES
    return StoreError(f"{what}: {exc.__class__.__name__}", retryable=retryable)


def _idle_socket_has_data(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
    """Whether the server sent anything to a connection that sent it nothing.

    An idle session gets no unsolicited message but its end: a FATAL notice
    (shutdown, termination, idle timeout) or the close of the socket.
    """
    try:
        fd = conn.fileno()
        if hasattr(select, "poll"):
            # poll, not select: select refuses descriptors above 1023 (a busy server).
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


class PostgresStore:
    """A :class:`~macnss_auth.store.base.Store` in PostgreSQL (psycopg 3).

    Args:
        conninfo: a libpq connection string or URI.
        keyring: seals enrollment secrets.
        schema: the PostgreSQL schema holding the tables (created if missing).
        connect_timeout: seconds to wait for a connection.
        max_connections: connections this store opens at most (per process).
        pool_timeout: seconds a call waits for a connection when all are lent out.
        idle_in_transaction_timeout: seconds after which the server ends a session
            of this store that sits idle inside a transaction (its client stalled
            or vanished), releasing the locks it held.
        prepared_statements: whether connections prepare statements that run
            often on the server. ``None`` (the default) decides per connection:
            yes when it reaches PostgreSQL itself, no behind a connection pooler
            such as PgBouncer. ``True`` suits PgBouncer 1.21 or newer with
            ``max_prepared_statements`` set (or session pooling); ``False`` any
            pooler the check does not recognise.

    Raises:
        ConfigurationError: a malformed connection string, schema name, pool size or
            ``prepared_statements``, or a server that refuses transactions (PgBouncer
            in statement pooling mode).
        SchemaVersionError: the schema was written by newer code.
        StoreError: the server cannot be reached or the schema not created.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        keyring: Keyring,
        schema: str = "macnss_auth",
        connect_timeout: float = 10.0,
        max_connections: int = 10,
        pool_timeout: float = 30.0,
        idle_in_transaction_timeout: float = 10.0,
        prepared_statements: bool | None = None,
    ) -> None:
        if not schema or len(schema) > 63:
            raise ConfigurationError("the schema name must be 1-63 characters")
        if max_connections < 1 or not pool_timeout > 0:
            raise ConfigurationError("max_connections and pool_timeout must be positive")
        if not 0.001 <= idle_in_transaction_timeout <= 86_400:
            raise ConfigurationError("idle_in_transaction_timeout must be 0.001 to 86400 s")
        if not (prepared_statements is None or isinstance(prepared_statements, bool)):
            raise ConfigurationError("prepared_statements must be None, True or False")
        try:
            psycopg.conninfo.conninfo_to_dict(conninfo)
        except psycopg.Error:
            # libpq's message quotes the text around the fault, which may be a password.
            raise ConfigurationError("the PostgreSQL connection string is malformed") from None
        self._conninfo = conninfo
        self._keyring = keyring
        self._schema = schema
        self._timeout = max(1, round(connect_timeout))
        self._max = max_connections
        self._pool_timeout = pool_timeout
        self._idle_ms = str(round(idle_in_transaction_timeout * 1000))
        self._prepare = prepared_statements
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._pool: list[psycopg.Connection[tuple[Any, ...]]] = []
        self._pid = os.getpid()
        self._closed = False
        self._sql: dict[str, sql.Composed] = {}
        try:
            with self._connection() as conn:
                self._migrate(conn)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self._schema!r})"

    # Plumbing ----------------------------------------------------------------
    def _q(self, text: str) -> sql.Composed:
        """``text`` with ``{s}`` bound to the quoted schema (cached)."""
        query = self._sql.get(text)
        if query is None:
            query = sql.SQL(text).format(s=sql.Identifier(self._schema), cols=_COLUMNS)
            self._sql[text] = query
        return query

    def _fetch_one(self, text: str, params: Params) -> tuple[Any, ...] | None:
        """Run one statement (see :meth:`_q`) on a pooled connection; its first row or None."""
        with self._connection() as conn:
            return conn.execute(self._q(text), params).fetchone()

    def _rowcount(self, text: str, params: Params) -> int:
        """Run one statement (see :meth:`_q`) on a pooled connection; the rows it touched."""
        with self._connection() as conn:
            return conn.execute(self._q(text), params).rowcount

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            conn = psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=self._timeout,
                prepare_threshold=None if self._prepare is False else _PREPARE_THRESHOLD,
            )
        except psycopg.Error as exc:
            # Not chained: libpq's text may quote part of the connection string, and
            # the error's pgconn shows the password in its repr. libpq gives no SQLSTATE
            # here, so a refused login cannot be told from a server still starting:
            # both are retryable.
            raise StoreError(
                f"cannot connect to PostgreSQL: {exc.__class__.__name__}", retryable=True
            ) from None
        # Slot retirement and counters rely on each statement seeing rows committed by
        # other instances meanwhile: a REPEATABLE READ default (server, database or role
        # setting) would let a resend leave two live codes.
        conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        if self._prepare is None:
            try:
                row = conn.execute("SELECT pg_backend_pid()").fetchone()
            except psycopg.Error as exc:
                conn.close()
                raise _driver_error(exc, "cannot set up the PostgreSQL session") from exc
            # PostgreSQL tells the client its own pid at login; a pooler (PgBouncer)
            # tells it a key of its own, since the session behind it changes.
            if row is None or row[0] != conn.info.backend_pid:
                conn.prepare_threshold = None
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        if os.getpid() != self._pid:
            # Never share a socket with a parent process after fork.
            self._lock = threading.Lock()
            self._slots = threading.BoundedSemaphore(self._max)
            self._pool = []
            self._pid = os.getpid()
        slots = self._slots
        if not slots.acquire(timeout=self._pool_timeout):
            raise StoreError(
                f"no PostgreSQL connection free within {self._pool_timeout:g} s"
                f" ({self._max} in use)",
                retryable=True,
            )
        try:
            conn = self._checkout()
        except BaseException:
            slots.release()
            raise
        try:
            yield conn
        except psycopg.Error as exc:
            self._release(conn, slots, drop=exc.sqlstate in _RETRYABLE_STATES)
            raise _driver_error(exc, "PostgreSQL failed") from exc
        except BaseException:
            self._release(conn, slots)
            raise
        self._release(conn, slots)

    def _checkout(self) -> psycopg.Connection[tuple[Any, ...]]:
        """A pooled connection the server has not dropped meanwhile, else a new one."""
        while True:
            with self._lock:
                if self._closed:
                    raise StoreError("the store is closed")
                conn = self._pool.pop() if self._pool else None
            if conn is None:
                return self._connect()
            if not conn.closed and not _idle_socket_has_data(conn):
                return conn
            # The server ended it: release the socket now rather than when it is collected.
            conn.close()
            conn.close()

    def _release(
        self,
        conn: psycopg.Connection[tuple[Any, ...]],
        slots: threading.BoundedSemaphore,
        *,
        drop: bool = False,
    ) -> None:
        try:
            usable = (
                not drop
                and not conn.closed
                and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            )
            with self._lock:
                keep = usable and not self._closed and os.getpid() == self._pid
                if keep:
                    self._pool.append(conn)
            if not keep:
                conn.close()
        finally:
            # A semaphore from before a fork belongs to the parent's pool: leave it.
            if slots is self._slots:
                slots.release()

    @contextlib.contextmanager
    def _transaction(
        self, conn: psycopg.Connection[tuple[Any, ...]], *, lock: tuple[str, str] | None = None
    ) -> Iterator[None]:
        """A transaction the server ends if it idles; first takes the advisory lock ``lock``.

        A transaction of this store never waits for its client between statements: if
        it idles, the client stalled or lost the network while holding a slot's
        advisory lock and row locks, which every instance would wait for (for hours,
        until TCP keepalive). The timeout is the transaction's own (``set_config(...,
        true)``), not the session's: behind PgBouncer in transaction mode the next
        transaction may run in another server session, and a session setting would
        stay behind on one that other clients get. It rides with the lock in one
        statement, so it costs no round trip where a lock is taken.
        """
        with conn.transaction():
            if lock is None:
                conn.execute(_SET_IDLE_TIMEOUT, (self._idle_ms,))
            else:
                conn.execute(
                    _SET_IDLE_TIMEOUT_AND_LOCK, (self._idle_ms, json.dumps([self._schema, *lock]))
                )
            yield

    def _migrate(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        try:
            with self._transaction(conn):
                self._migrate_steps(conn)
        except psycopg.errors.ProtocolViolation as exc:
            # PgBouncer in statement pooling mode refuses every transaction block; no
            # retry can help (psycopg files 08P01 as a retryable OperationalError). Only
            # its message tells it from PgBouncer's other 08P01s (a pool killed or
            # paused, a wait timeout), which stay retryable.
            if "statement pooling" not in (exc.diag.message_primary or ""):
                raise
            raise ConfigurationError(
                "the server refuses transactions (PgBouncer in statement pooling mode?):"
                " PostgresStore needs transaction or session pooling"
            ) from exc

    def _migrate_steps(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        """Bring the schema to this version (inside the migration transaction)."""
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(self._q("CREATE SCHEMA IF NOT EXISTS {s}"))
        conn.execute(
            self._q("CREATE TABLE IF NOT EXISTS {s}.meta (name text PRIMARY KEY, value text)")
        )
        row = conn.execute(
            self._q("SELECT value FROM {s}.meta WHERE name = 'schema_version'")
        ).fetchone()
        version = 0 if row is None else int(row[0])
        if version > POSTGRES_SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the store has schema version {version}; this code knows up to "
                f"{POSTGRES_SCHEMA_VERSION}: upgrade macnss-auth"
            )
        for step in _MIGRATIONS[version:]:
            for statement in step:
                conn.execute(self._q(statement))
        conn.execute(
            self._q(
                "INSERT INTO {s}.meta (name, value) VALUES ('schema_version', %s)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
            ),
            (str(POSTGRES_SCHEMA_VERSION),),
        )

    # Enrollments -----------------------------------------------------------
    def put_enrollment(self, enrollment: Enrollment) -> None:
        """Create or replace the enrollment for (subject, method), secret sealed."""
        _require_storable(enrollment.subject, enrollment.method)
        values = _enrollment_row(enrollment, self._keyring)
        with self._connection() as conn:
            conn.execute(
                self._q(
                    "INSERT INTO {s}.enrollments (subject, method, sealed, key_id, params,"
                    " confirmed, created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (subject, method) DO UPDATE SET sealed = excluded.sealed,"
                    " key_id = excluded.key_id, params = excluded.params,"
                    " confirmed = excluded.confirmed, created_at = excluded.created_at,"
                    " expires_at = excluded.expires_at"
                ),
                values,
            )

    def get_enrollment(self, subject: str, method: str) -> Enrollment | None:
        """The enrollment with its secret opened, or None.

        Raises:
            SecretKeyError: the sealed secret does not open under the keyring.
        """
        if not _storable(subject, method):
            return None
        row = self._fetch_one(
            "SELECT sealed, params, confirmed, created_at, expires_at"
            " FROM {s}.enrollments WHERE subject = %s AND method = %s",
            (subject, method),
        )
        return _open_enrollment(self._keyring, subject, method, row)

    def delete_enrollment(self, subject: str, method: str) -> bool:
        """Remove it; True if there was one."""
        if not _storable(subject, method):
            return False
        changed = self._rowcount(
            "DELETE FROM {s}.enrollments WHERE subject = %s AND method = %s", (subject, method)
        )
        return changed == 1

    def reseal(self, *, batch_size: int = RESEAL_BATCH) -> int:
        """Re-seal every secret not sealed under the primary key; return how many.

        Works through the table in primary-key order, ``batch_size`` records
        at a time: a batch is read (no lock), sealed in this process, then
        written by one ``UPDATE ... WHERE sealed = <the value read>``, a
        compare-and-set per record: a record another instance re-enrolled,
        confirmed or deleted meanwhile keeps that state and is not counted.
        No transaction spans more than one statement, and no row lock is held
        while secrets are sealed.

        Raises:
            ConfigurationError: ``batch_size`` is not positive.
            SecretKeyError: a secret does not open under the ring; earlier
                batches stay re-sealed, this one and later ones are untouched.
        """
        if batch_size < 1:
            raise ConfigurationError("batch_size must be positive")
        primary = self._keyring.primary
        done = 0
        # Keyset pagination over the primary key's index: each record is read once.
        query = (
            "SELECT subject, method, sealed FROM {s}.enrollments WHERE key_id <> %(primary)s"
            " ORDER BY subject, method LIMIT %(n)s"
        )
        params: dict[str, Any] = {"primary": primary, "n": batch_size}
        while True:
            with self._connection() as conn:
                rows = conn.execute(self._q(query), params).fetchall()
            if not rows:
                return done
            query = (
                "SELECT subject, method, sealed FROM {s}.enrollments WHERE key_id <> %(primary)s"
                " AND (subject, method) > (%(subject)s, %(method)s)"
                " ORDER BY subject, method LIMIT %(n)s"
            )
            params.update(subject=rows[-1][0], method=rows[-1][1])
            subjects, methods, old, fresh = [], [], [], []
            for subject, method, sealed in rows:
                context = enrollment_context(subject, method)
                subjects.append(subject)
                methods.append(method)
                old.append(bytes(sealed))
                fresh.append(self._keyring.reseal(bytes(sealed), context=context))
            done += self._rowcount(
                "UPDATE {s}.enrollments AS e SET sealed = v.fresh, key_id = %s"
                " FROM unnest(%s::text[], %s::text[], %s::bytea[], %s::bytea[])"
                " AS v(subject, method, old, fresh)"
                " WHERE e.subject = v.subject AND e.method = v.method AND e.sealed = v.old",
                (primary, subjects, methods, old, fresh),
            )

    # Monotonic counters ------------------------------------------------------
    def advance(self, key: str, value: int) -> bool:
        """Atomically set ``key`` to ``value`` iff absent or ``value`` > current.

        Raises:
            StoreError: ``value`` does not fit in a signed 64-bit integer.
        """
        _require_storable(key)
        changed = self._rowcount(
            "INSERT INTO {s}.counters AS c (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            " WHERE excluded.value > c.value",
            (key, _int64(value)),
        )
        return changed == 1

    def current(self, key: str) -> int | None:
        """The counter's value, or None (advisory)."""
        if not _storable(key):
            return None
        row = self._fetch_one("SELECT value FROM {s}.counters WHERE key = %s", (key,))
        return None if row is None else int(row[0])

    def reset_counter(self, key: str) -> None:
        """Forget a monotonic counter."""
        if not _storable(key):
            return
        self._rowcount("DELETE FROM {s}.counters WHERE key = %s", (key,))

    # Challenges --------------------------------------------------------------
    def create_challenge(self, record: ChallengeRecord) -> None:
        """Insert a challenge and retire the live ones in its slot, in one transaction.

        The transaction holds the slot's advisory lock (see the module docstring).

        Raises:
            StoreError: a challenge with this id exists already.
        """
        values = _challenge_row(record)
        with self._connection() as conn:
            try:
                with self._transaction(conn, lock=("slot", record.slot)):
                    conn.execute(
                        self._q(
                            "INSERT INTO {s}.challenges ({cols}) VALUES"
                            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                        ),
                        values,
                    )
                    conn.execute(
                        self._q(
                            "UPDATE {s}.challenges SET consumed = true"
                            " WHERE slot = %s AND NOT consumed AND id <> %s"
                        ),
                        (record.slot, record.id),
                    )
            except psycopg.errors.UniqueViolation:
                raise StoreError("a challenge with this id exists already") from None

    def get_challenge(self, challenge_id: str) -> ChallengeRecord | None:
        """The record, or None (advisory)."""
        if not _storable(challenge_id):
            return None
        row = self._fetch_one("SELECT {cols} FROM {s}.challenges WHERE id = %s", (challenge_id,))
        return None if row is None else _record(row)

    def count_attempt(self, challenge_id: str) -> int | None:
        """Atomically add one wrong attempt; the new count, or None if unknown."""
        if not _storable(challenge_id):
            return None
        row = self._fetch_one(
            "UPDATE {s}.challenges SET attempts = attempts + 1 WHERE id = %s RETURNING attempts",
            (challenge_id,),
        )
        return None if row is None else int(row[0])

    def consume_challenge(self, challenge_id: str, now: dt.datetime) -> ChallengeRecord | None:
        """Atomically mark used iff unused, unexpired and attempts remain."""
        if not _storable(challenge_id):
            return None
        row = self._fetch_one(
            "UPDATE {s}.challenges SET consumed = true WHERE id = %s AND NOT consumed"
            " AND expires_at > %s AND attempts < max_attempts RETURNING {cols}",
            (challenge_id, _micros(now)),
        )
        return None if row is None else _record(row, consumed=False)

    # Windowed counters -------------------------------------------------------
    def hit(self, key: str, now: dt.datetime, window: float) -> CounterState:
        """Atomically count one event; a window older than ``window`` s restarts."""
        _require_storable(key)
        at, span = _micros(now), _window_micros(window)
        row = self._fetch_one(
            "INSERT INTO {s}.windows AS w (key, count, first_at, last_at, ends_at)"
            " VALUES (%(key)s, 1, %(now)s, %(now)s, %(now)s + %(span)s)"
            " ON CONFLICT (key) DO UPDATE SET"
            " count = CASE WHEN %(now)s >= w.first_at + %(span)s THEN 1"
            "   ELSE w.count + 1 END,"
            " first_at = CASE WHEN %(now)s >= w.first_at + %(span)s THEN %(now)s"
            "   ELSE w.first_at END,"
            " last_at = %(now)s,"
            " ends_at = CASE WHEN %(now)s >= w.first_at + %(span)s"
            "   THEN %(now)s + %(span)s ELSE w.first_at + %(span)s END"
            " RETURNING count, first_at, last_at",
            {"key": key, "now": at, "span": span},
        )
        assert row is not None  # noqa: S101 (an upsert always returns its row)
        return _counter_state(row)

    def peek(self, key: str, now: dt.datetime, window: float) -> CounterState | None:
        """The counter if its window is still open (advisory)."""
        if not _storable(key):
            return None
        at, span = _micros(now), _window_micros(window)
        row = self._fetch_one(
            "SELECT count, first_at, last_at FROM {s}.windows"
            " WHERE key = %s AND %s < first_at + %s",
            (key, at, span),
        )
        return None if row is None else _counter_state(row)

    def clear(self, key: str) -> None:
        """Reset a windowed counter."""
        if not _storable(key):
            return
        self._rowcount("DELETE FROM {s}.windows WHERE key = %s", (key,))

    # Single-use tokens -------------------------------------------------------
    def add_tokens(self, key: str, digests: Iterable[bytes]) -> None:
        """Replace the token set under ``key``, in one transaction."""
        _require_storable(key)
        rows = [(key, bytes(d)) for d in digests]
        with self._connection() as conn, self._transaction(conn, lock=("tokens", key)):
            conn.execute(self._q("DELETE FROM {s}.tokens WHERE key = %s"), (key,))
            with conn.cursor() as cursor:
                cursor.executemany(
                    self._q(
                        "INSERT INTO {s}.tokens (key, digest) VALUES (%s, %s)"
                        " ON CONFLICT DO NOTHING"
                    ),
                    rows,
                )

    def consume_token(self, key: str, digest: bytes) -> bool:
        """Atomically remove one token; True to exactly one caller."""
        if not _storable(key):
            return False
        changed = self._rowcount(
            "DELETE FROM {s}.tokens WHERE key = %s AND digest = %s", (key, digest)
        )
        return changed == 1

    def count_tokens(self, key: str) -> int:
        """Tokens left under ``key``."""
        if not _storable(key):
            return 0
        row = self._fetch_one("SELECT count(*) FROM {s}.tokens WHERE key = %s", (key,))
        return 0 if row is None else int(row[0])

    # Housekeeping ------------------------------------------------------------
    def purge(self, now: dt.datetime) -> int:
        """Delete expired challenges and windows that ended; return how many."""
        at = _micros(now)
        with self._connection() as conn, self._transaction(conn):
            gone = conn.execute(
                self._q("DELETE FROM {s}.challenges WHERE expires_at <= %s"), (at,)
            ).rowcount
            gone += conn.execute(
                self._q("DELETE FROM {s}.windows WHERE ends_at <= %s"), (at,)
            ).rowcount
        return gone

    def close(self) -> None:
        """Close every pooled connection; later calls raise ``StoreError``."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, []
        for conn in pool:
            conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

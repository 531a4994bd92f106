"""PostgresStore against a real PostgreSQL server on 127.0.0.1 (see services.py)."""

from __future__ import annotations

import datetime as dt
import functools
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from macnss_auth.authenticator import Challenge
from macnss_auth.errors import ConfigurationError, SchemaVersionError, StoreError
from macnss_auth.store import ChallengeRecord, Keyring, Store
from macnss_auth.store.postgres import POSTGRES_SCHEMA_VERSION, PostgresStore
from macnss_auth.testing.races import race_threads
from macnss_auth.testing.store_contract import (
    PersistentStoreContract,
    at,
    enrollment,
    make_record,
)
from tests.store._leaks import everything_said, secret_forms

pytestmark = pytest.mark.services


@pytest.fixture
def schema() -> str:
    return f"t_{uuid.uuid4().hex}"


class TestPostgresStore(PersistentStoreContract):
    @pytest.fixture
    def conninfo(self, postgres: str) -> str:
        """Where the stores connect (test_pgbouncer.py puts a PgBouncer there)."""
        return postgres

    @pytest.fixture
    def open_store(self, conninfo: str, schema: str) -> Iterator[Callable[[Keyring], Store]]:
        opened: list[PostgresStore] = []

        def open_store(keyring: Keyring) -> Store:
            store = PostgresStore(conninfo, keyring=keyring, schema=schema)
            opened.append(store)
            return store

        yield open_store
        for store in opened:
            store.close()

    @pytest.fixture
    def store(self, open_store: Callable[[Keyring], Store], keyring: Keyring) -> Store:
        return open_store(keyring)


def test_newer_schema_is_refused(postgres: str, schema: str, keyring: Keyring) -> None:
    PostgresStore(postgres, keyring=keyring, schema=schema).close()
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("UPDATE {}.meta SET value = %s WHERE name = 'schema_version'").format(
                psycopg.sql.Identifier(schema)
            ),
            (str(POSTGRES_SCHEMA_VERSION + 1),),
        )
    with pytest.raises(SchemaVersionError):
        PostgresStore(postgres, keyring=keyring, schema=schema)


def test_resends_never_leave_two_live_codes_even_if_the_server_defaults_to_repeatable_read(
    postgres: str, schema: str, keyring: Keyring
) -> None:
    """The slot retirement must see a concurrent insert: the store forces READ COMMITTED."""
    repeatable = psycopg.conninfo.make_conninfo(
        postgres, options=r"-c default_transaction_isolation=repeatable\ read"
    )
    store = PostgresStore(repeatable, keyring=keyring, schema=schema)
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    try:
        for n in range(40):
            slot = f"sms:s{n}"

            def create(i: int, slot: str = slot) -> None:
                challenge = Challenge(
                    id=f"{slot}-{i}", subject="s", method="sms", created_at=now,
                    expires_at=now + dt.timedelta(minutes=5),
                )  # fmt: skip
                store.create_challenge(ChallengeRecord(challenge=challenge, slot=slot))

            raced = race_threads([functools.partial(create, i) for i in range(2)])
            assert [r for r in raced if isinstance(r, BaseException)] == [], slot
            live = [
                i for i in range(2)
                if (record := store.get_challenge(f"{slot}-{i}")) is not None
                and not record.consumed
            ]  # fmt: skip
            assert len(live) == 1, slot
    finally:
        store.close()


# Concurrency, connection loss and error mapping -------------------------------------------
def _named(postgres: str, name: str, **extra: str) -> str:
    """The test server's conninfo with an application_name to find its sessions by."""
    return psycopg.conninfo.make_conninfo(postgres, application_name=name, **extra)


def _sessions(admin: psycopg.Connection[tuple[object, ...]], name: str) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def _wait_for(predicate: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def admin(postgres: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(postgres, autocommit=True) as conn:
        yield conn


def _hold_row_lock(
    postgres: str, schema: str, challenge_id: str
) -> psycopg.Connection[tuple[object, ...]]:
    """A session in a transaction holding the challenge's row lock (commit to release)."""
    holder = psycopg.connect(postgres)
    holder.execute(
        psycopg.sql.SQL("SELECT 1 FROM {}.challenges WHERE id = %s FOR UPDATE").format(
            psycopg.sql.Identifier(schema)
        ),
        (challenge_id,),
    )
    return holder


def test_a_burst_never_opens_more_connections_than_the_pool_holds(
    postgres: str, schema: str, keyring: Keyring, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    # One instance under a burst must not take every connection slot of the server
    # (max_connections=100 by default) from the other instances.
    name = f"burst-{uuid.uuid4().hex[:12]}"
    callers = 24
    with PostgresStore(_named(postgres, name), keyring=keyring, schema=schema) as store:
        store.create_challenge(make_record("c", max_attempts=100))
        holder = _hold_row_lock(postgres, schema, "c")
        try:
            pool = ThreadPoolExecutor(callers)
            futures = [pool.submit(store.count_attempt, "c") for _ in range(callers)]
            # Ten callers wait on the row lock, each on its own connection; the rest
            # wait for one of those connections (the old pool opened 24).
            _wait_for(lambda: _sessions(admin, name) >= 10, "ten sessions")
            time.sleep(1.0)
            assert _sessions(admin, name) == 10
        finally:
            holder.commit()
            holder.close()
        counts = sorted(f.result(timeout=60) or 0 for f in futures)
        pool.shutdown()
        assert counts == list(range(1, callers + 1))
        assert _sessions(admin, name) <= 10


def test_a_caller_waits_for_a_connection_at_most_pool_timeout(
    postgres: str, schema: str, keyring: Keyring
) -> None:
    store = PostgresStore(postgres, keyring=keyring, schema=schema, max_connections=1,
                          pool_timeout=0.5)  # fmt: skip
    try:
        store.create_challenge(make_record("c"))
        holder = _hold_row_lock(postgres, schema, "c")
        try:
            with ThreadPoolExecutor(1) as pool:
                blocked = pool.submit(store.count_attempt, "c")  # holds the one connection
                time.sleep(0.3)
                with pytest.raises(StoreError, match="no PostgreSQL connection free") as info:
                    store.current("k")
                assert info.value.retryable is True
                holder.commit()
                assert blocked.result(timeout=60) == 1
        finally:
            holder.close()
        assert store.current("k") is None  # the connection came back to the pool
    finally:
        store.close()


@pytest.mark.parametrize("bad", [0, -1])
def test_the_pool_size_must_be_positive(postgres: str, keyring: Keyring, bad: int) -> None:
    with pytest.raises(ConfigurationError):
        PostgresStore(postgres, keyring=keyring, max_connections=bad)


def test_sessions_the_server_ended_are_not_lent_again(
    postgres: str, schema: str, keyring: Keyring, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    # A restart, a failover or pg_terminate_backend ends the pooled sessions; the
    # next calls must not fail on them (the old pool lent them and raised StoreError).
    name = f"ended-{uuid.uuid4().hex[:12]}"
    with PostgresStore(_named(postgres, name), keyring=keyring, schema=schema) as store:
        raced = race_threads([functools.partial(store.advance, f"k{n}", 1) for n in range(4)])
        assert raced == [True] * 4
        assert _sessions(admin, name) >= 1
        admin.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (name,),
        )
        _wait_for(lambda: _sessions(admin, name) == 0, "sessions ended")
        for n in range(4):
            assert store.advance(f"k{n}", 2) is True
        store.create_challenge(make_record("c"))
        assert store.consume_challenge("c", at(1)) is not None


def test_driver_errors_say_whether_a_retry_may_help(
    postgres: str, schema: str, keyring: Keyring
) -> None:
    with PostgresStore(postgres, keyring=keyring, schema=schema) as store:
        store.create_challenge(make_record("c"))
        with pytest.raises(StoreError) as duplicate:
            store.create_challenge(make_record("c"))
        assert duplicate.value.retryable is False
    # A statement cancelled by statement_timeout while it waits for a row lock.
    impatient = _named(postgres, "impatient", options="-c statement_timeout=200")
    with PostgresStore(impatient, keyring=keyring, schema=schema) as store:
        holder = _hold_row_lock(postgres, schema, "c")
        try:
            with pytest.raises(StoreError, match="QueryCanceled") as cancelled:
                store.count_attempt("c")
            assert cancelled.value.retryable is True
        finally:
            holder.rollback()
            holder.close()
        assert store.count_attempt("c") == 1
    # A read-only session (a standby after a failover) cannot migrate: retryable.
    standby = _named(postgres, "standby", options="-c default_transaction_read_only=on")
    with pytest.raises(StoreError, match="ReadOnlySqlTransaction") as read_only:
        PostgresStore(standby, keyring=keyring, schema=schema)
    assert read_only.value.retryable is True
    # Nothing listens: retryable.
    refused = psycopg.conninfo.make_conninfo(postgres, port=str(_closed_port()))
    with pytest.raises(StoreError, match="cannot connect") as unreachable:
        PostgresStore(refused, keyring=keyring, schema=schema, connect_timeout=2)
    assert unreachable.value.retryable is True


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "conninfo",
    [
        # A password with a space, not quoted: libpq quotes the text after it.
        "host=127.0.0.1 port={port} user=postgres password=hunter2 s3cr3tpart",
        # A password with an unescaped '@' in a URI: libpq names the host it then
        # tries to resolve, "s3cr3tpart@127.0.0.1".
        "postgresql://postgres:hunter2@s3cr3tpart@127.0.0.1:{port}/postgres",
        # A password with an unescaped '/': libpq reads the rest as the database.
        "postgresql://postgres:hunter2/s3cr3tpart@127.0.0.1:{port}/postgres",
    ],
)
def test_no_part_of_a_password_reaches_an_error(
    postgres: str, schema: str, keyring: Keyring, conninfo: str
) -> None:
    port = psycopg.conninfo.conninfo_to_dict(postgres)["port"]
    with pytest.raises((StoreError, ConfigurationError)) as info:
        PostgresStore(conninfo.format(port=port), keyring=keyring, schema=schema,
                      connect_timeout=2)  # fmt: skip
    said = everything_said(info.value)
    assert "s3cr3tpart" not in said
    assert "hunter2" not in said


def test_instances_starting_together_on_an_empty_database_all_open_it(
    postgres: str, schema: str, keyring: Keyring
) -> None:
    # The schema, its tables and the version row are created once, under an advisory
    # lock; every other instance waits for it and then finds the schema current.
    stores = race_threads(
        [functools.partial(PostgresStore, postgres, keyring=keyring, schema=schema)] * 8
    )
    try:
        assert [type(s).__name__ for s in stores] == ["PostgresStore"] * 8
        opened = [s for s in stores if isinstance(s, PostgresStore)]
        assert opened[0].advance("k", 1) is True
        assert opened[-1].current("k") == 1
    finally:
        for store in stores:
            if isinstance(store, PostgresStore):
                store.close()
    with psycopg.connect(postgres) as conn:
        rows = conn.execute(
            psycopg.sql.SQL("SELECT value FROM {}.meta").format(psycopg.sql.Identifier(schema))
        ).fetchall()
    assert rows == [(str(POSTGRES_SCHEMA_VERSION),)]


def test_a_secret_never_reaches_the_tables(
    postgres: str, schema: str, keyring: Keyring, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    secret = b"\x8f\x11TOTP-seed-that-must-never-reach-the-server\x02\xfe"
    with PostgresStore(postgres, keyring=keyring, schema=schema) as store:
        store.put_enrollment(enrollment(secret=secret))
        store.put_enrollment(enrollment(method="hotp", secret=secret))
        rows = admin.execute(
            psycopg.sql.SQL("SELECT e::text, sealed FROM {}.enrollments e").format(
                psycopg.sql.Identifier(schema)
            )
        ).fetchall()
        assert len(rows) == 2
        for text, sealed in rows:
            for form in secret_forms(secret):
                assert form not in str(text).encode()
                assert isinstance(sealed, bytes)
                assert form not in sealed
        got = store.get_enrollment("alice", "hotp")
        assert got is not None
        assert got.secret.reveal() == secret


def test_pooled_sessions_are_reused_in_a_process_with_many_files(
    postgres: str,
    schema: str,
    keyring: Keyring,
    admin: psycopg.Connection[tuple[object, ...]],
    tmp_path: Path,
) -> None:
    # A service holds many sockets and files: a session whose descriptor is above
    # 1023 (which select() refuses) must still be checked and lent again, not
    # replaced by a new connection on every call.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("the descriptor limit is too low to go above 1023")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = []
    try:
        while (fd := os.open(tmp_path, os.O_RDONLY)) < 1030:
            held.append(fd)
        held.append(fd)
        name = f"manyfiles-{uuid.uuid4().hex[:12]}"
        with PostgresStore(_named(postgres, name), keyring=keyring, schema=schema) as store:
            pids = set()
            for n in range(5):
                store.advance("k", n)
                row = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
                ).fetchone()
                assert row is not None
                pids.add(row[0])
            assert len(pids) == 1
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_session_that_met_a_read_only_server_is_not_lent_again(
    postgres: str, schema: str, keyring: Keyring, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    # After a failover a pooled session may still reach the old primary, now a
    # standby: it refuses writes (25006). That session must go, so that the next
    # connection reaches the new primary (target_session_attrs=read-write).
    database = f"ro_{uuid.uuid4().hex[:12]}"
    name = f"ro-{uuid.uuid4().hex[:12]}"
    admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(database)))
    conninfo = _named(postgres, name, dbname=database)
    try:
        with PostgresStore(conninfo, keyring=keyring, schema=schema) as store:
            assert store.advance("k", 1) is True
            # New sessions of this database are read-only from now on ("a standby")...
            admin.execute(
                psycopg.sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                    psycopg.sql.Identifier(database)
                )
            )
            admin.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (name,),
            )
            with pytest.raises(StoreError, match="ReadOnlySqlTransaction") as info:
                store.advance("k", 2)
            assert info.value.retryable is True
            # ... until the writable server is back: the read-only session is gone.
            admin.execute(
                psycopg.sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(
                    psycopg.sql.Identifier(database)
                )
            )
            assert store.advance("k", 2) is True
    finally:
        admin.execute(
            psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                psycopg.sql.Identifier(database)
            )
        )


_STALLING_CHILD = """
import sys
from macnss_auth.store import Keyring
from macnss_auth.store.postgres import PostgresStore
from macnss_auth.testing.store_contract import KEY1, make_record

conninfo, schema = sys.argv[1], sys.argv[2]
store = PostgresStore(conninfo, keyring=Keyring({"k1": KEY1}, primary="k1"), schema=schema,
                      idle_in_transaction_timeout=0.5)
store.create_challenge(make_record("child", slot="sms:s"))
"""


def _state(admin: psycopg.Connection[tuple[object, ...]], name: str) -> tuple[object, ...] | None:
    return admin.execute(
        "SELECT state, wait_event_type FROM pg_stat_activity WHERE application_name = %s",
        (name,),
    ).fetchone()


def test_a_client_frozen_inside_a_transaction_does_not_hold_its_slot_for_ever(
    postgres: str, schema: str, keyring: Keyring, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    # An instance freezes (a VM paused, SIGSTOP, a partition) between two statements of
    # create_challenge, holding the slot's advisory lock. Without a server-side limit the
    # other instances wait for that slot until the frozen one wakes up, or for ever.
    with PostgresStore(postgres, keyring=keyring, schema=schema) as store:
        store.create_challenge(make_record("old", slot="sms:s"))
        # The child's retirement UPDATE of "old" waits for this row lock, inside its
        # transaction, after its INSERT: there it is frozen.
        holder = _hold_row_lock(postgres, schema, "old")
        name = f"frozen-{uuid.uuid4().hex[:12]}"
        pool = ThreadPoolExecutor(1)
        child = subprocess.Popen(
            [sys.executable, "-c", _STALLING_CHILD, _named(postgres, name), schema],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        try:
            _wait_for(lambda: _state(admin, name) == ("active", "Lock"), "child waits on the row")
            child.send_signal(signal.SIGSTOP)
            holder.commit()
            _wait_for(lambda: _state(admin, name) in (None, ("idle in transaction", "Client")),
                      "child frozen in its transaction")  # fmt: skip
            other = pool.submit(store.create_challenge, make_record("new", slot="sms:s"))
            other.result(timeout=30)  # the old code waited here for ever
            # The server ended the frozen session. A backend drops its locks before its
            # pg_stat_activity row, so on a loaded machine the row may still be there.
            _wait_for(lambda: _state(admin, name) is None, "the frozen session ended")
            assert store.get_challenge("child") is None  # its transaction rolled back
            live = store.get_challenge("new")
            assert live is not None
            assert not live.consumed
        finally:
            holder.close()
            child.kill()  # also ends its session, and with it any wait on its locks
            child.wait(timeout=30)
            pool.shutdown(wait=True)

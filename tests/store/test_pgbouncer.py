"""PostgresStore behind PgBouncer, in transaction and session pooling mode.

Each PgBouncer here is the tests' own (services.py), on 127.0.0.1 in front of
the session's throw-away PostgreSQL. The whole store contract and the
multi-instance replay races run through it; the other tests pin down what
transaction pooling broke: server-side prepared statements (psycopg prepares
a statement once it has run five times; a later run may reach a server
session that lacks it, or has another client's statement of that name) and
session settings (they stay on whichever server session ran them, and other
clients of the pool get them, while the store's own transactions may not).
"""

from __future__ import annotations

import functools
import hashlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from macnss_auth.errors import ConfigurationError, StoreError
from macnss_auth.store import Keyring, Store
from macnss_auth.store.postgres import PostgresStore
from macnss_auth.testing.races import race_threads
from macnss_auth.testing.store_contract import at, make_record
from tests.conftest import STORE_KEYRING, OpenStore
from tests.otp.test_replay_across_instances import (
    test_a_totp_code_is_accepted_once,
    test_an_hotp_code_is_accepted_once,
    test_an_sms_code_is_accepted_once,
)
from tests.store import test_postgres
from tests.store.services import pgbouncer_server
from tests.store.test_postgres import _hold_row_lock, _named, _wait_for

pytestmark = pytest.mark.services

__all__ = [
    "test_a_totp_code_is_accepted_once",
    "test_an_hotp_code_is_accepted_once",
    "test_an_sms_code_is_accepted_once",
]

MODES = ["transaction", "session"]


@pytest.fixture(scope="module")
def pgbouncer_transaction(postgres: str) -> Iterator[str]:
    with pgbouncer_server(postgres, pool_mode="transaction", pool_size=8) as conninfo:
        yield conninfo


@pytest.fixture(scope="module")
def pgbouncer_session(postgres: str) -> Iterator[str]:
    # Session pooling holds one server session per client connection.
    with pgbouncer_server(postgres, pool_mode="session", pool_size=30) as conninfo:
        yield conninfo


@pytest.fixture(params=MODES)
def bouncer(request: pytest.FixtureRequest) -> str:
    """The conninfo of a PgBouncer in each pooling mode in turn."""
    return str(request.getfixturevalue(f"pgbouncer_{request.param}"))


@pytest.fixture
def schema() -> str:
    return f"t_{uuid.uuid4().hex}"


# Through the module, not its name: a Test* class imported by name would run here twice.
class TestPostgresStoreBehindPgBouncer(test_postgres.TestPostgresStore):
    @pytest.fixture
    def conninfo(self, bouncer: str) -> str:
        return bouncer


@pytest.fixture
def open_any_store(bouncer: str, tmp_path: Path) -> Iterator[OpenStore]:
    """Replaces tests/conftest.py's: every handle is a PostgresStore through PgBouncer.

    The replay races imported above run with it: each instance its own store,
    its own connections to PgBouncer, sharing one schema.
    """
    opened: list[Store] = []
    name = hashlib.sha256(tmp_path.name.encode()).hexdigest()[:20]

    def open_store() -> Store:
        store = PostgresStore(bouncer, keyring=STORE_KEYRING, schema=f"t_{name}")
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def _busy(store: PostgresStore, n: int) -> list[str]:
    """Many calls of few statements (each soon over the prepare threshold); what went wrong."""
    wrong = []
    try:
        for i in range(1, 60):
            store.advance(f"k{n}", i)
            store.reset_counter(f"gone{n}")
            if (value := store.current(f"k{n}")) != i:
                wrong.append(f"current(k{n}) = {value}, not {i}")
            store.create_challenge(make_record(f"c{n}-{i}", slot=f"sms:{n}"))
            if store.consume_challenge(f"c{n}-{i}", at(1)) is None:
                wrong.append(f"c{n}-{i} not consumed")
    except StoreError as exc:
        wrong.append(str(exc))
    return wrong


def test_busy_instances_behind_a_transaction_pooler_never_meet_a_prepared_statement(
    pgbouncer_transaction: str, schema: str, keyring: Keyring
) -> None:
    # psycopg prepared each statement on its sixth run, on whichever server session ran
    # it; the next run reached another one: DuplicatePreparedStatement (42P05) and
    # InvalidSqlStatementName (26000) on every thread. Worse, a name another client had
    # prepared for another statement could run that one with these parameters.
    stores = [PostgresStore(pgbouncer_transaction, keyring=keyring, schema=schema)
              for _ in range(3)]  # fmt: skip
    try:
        calls = [functools.partial(_busy, stores[n % 3], n) for n in range(6)]
        assert race_threads(calls) == [[]] * 6
    finally:
        for store in stores:
            store.close()


def test_a_read_never_runs_another_instances_statement_behind_a_transaction_pooler(
    postgres: str, schema: str, keyring: Keyring
) -> None:
    # Each instance names its first prepared statement _pg3_0. Behind PgBouncer 1.18 the
    # reader's _pg3_0 ("SELECT value FROM counters WHERE key = $1") ran in a server
    # session where the other instance's _pg3_0 was "DELETE FROM counters WHERE key =
    # $1": current("victim") deleted the counter (a TOTP replay guard), then failed.
    # Measured on the old code with 300 calls a side: the counter was gone after 3
    # trials of 5, and calls failed in all (here, with 200, they fail in every run).
    with (
        pgbouncer_server(postgres, pool_size=2) as bouncer,  # two sessions for two clients
        PostgresStore(bouncer, keyring=keyring, schema=schema, max_connections=1) as reader,
        PostgresStore(bouncer, keyring=keyring, schema=schema, max_connections=1) as other,
        psycopg.connect(postgres, autocommit=True) as direct,
    ):
        guard = psycopg.sql.SQL("SELECT value FROM {}.counters WHERE key = 'victim'").format(
            psycopg.sql.Identifier(schema)
        )
        for trial in range(3):
            assert reader.advance("victim", 7 + trial) is True
            reads = [functools.partial(_outcome, reader.current, "victim")] * 200
            deletes = [functools.partial(_outcome, other.reset_counter, "other")] * 200
            got = race_threads([functools.partial(_each, reads), functools.partial(_each, deletes)])
            # The guard survives (read without the pooler), and no call failed.
            assert direct.execute(guard).fetchone() == (7 + trial,)
            assert got == [[7 + trial] * 200, [None] * 200]


def _outcome(call: Callable[[str], object], key: str) -> object:
    """What ``call(key)`` returned, or the name of the StoreError it raised."""
    try:
        return call(key)
    except StoreError as exc:
        return str(exc)


def _each(calls: Sequence[Callable[[], object]]) -> list[object]:
    return [call() for call in calls]


def test_prepared_statements_can_be_forced_and_break_an_old_transaction_pooler(
    pgbouncer_transaction: str, schema: str, keyring: Keyring
) -> None:
    # prepared_statements=True is for PgBouncer >= 1.21 with max_prepared_statements;
    # Debian 12's 1.18 shows why the default never prepares behind a pooler.
    stores = [PostgresStore(pgbouncer_transaction, keyring=keyring, schema=schema,
                            prepared_statements=True) for _ in range(3)]  # fmt: skip
    try:
        calls = [functools.partial(_busy, stores[n % 3], n) for n in range(6)]
        failures = [w for ws in race_threads(calls) if isinstance(ws, list) for w in ws]
        assert any("PreparedStatement" in w or "SqlStatementName" in w for w in failures)
    finally:
        for store in stores:
            store.close()


def test_the_store_leaves_no_setting_behind_for_other_clients_of_the_pool(
    postgres: str, schema: str, keyring: Keyring
) -> None:
    # The old store set idle_in_transaction_session_timeout for its session; in
    # transaction mode that is whichever server session ran the SET, which PgBouncer
    # then lends to every other client: their transactions were cut after 10 s idle.
    with (
        pgbouncer_server(postgres, pool_mode="transaction", pool_size=1) as bouncer,
        PostgresStore(bouncer, keyring=keyring, schema=schema) as store,
    ):
        store.create_challenge(make_record("c"))
        store.add_tokens("t", [b"a", b"b"])
        assert store.advance("k", 1) is True
        with psycopg.connect(bouncer, autocommit=True) as other:
            row = other.execute("SHOW idle_in_transaction_session_timeout").fetchone()
        assert row == ("0",)


def _waiting(admin: psycopg.Connection[tuple[object, ...]], name: str) -> object:
    """The pid of the server session of ``name`` waiting on a lock, or None."""
    row = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
        (name,),
    ).fetchone()
    return None if row is None else row[0]


_STALLING_CHILD = """
import sys
from macnss_auth.store import Keyring
from macnss_auth.store.postgres import PostgresStore
from macnss_auth.testing.store_contract import KEY1, make_record

conninfo, schema = sys.argv[1], sys.argv[2]
store = PostgresStore(conninfo, keyring=Keyring({"k1": KEY1}, primary="k1"), schema=schema,
                      idle_in_transaction_timeout=0.5)
print("open", flush=True)
sys.stdin.readline()
store.create_challenge(make_record("child", slot="sms:s"))
"""


def test_a_client_frozen_inside_a_transaction_behind_pgbouncer_releases_its_slot(
    postgres: str, schema: str, keyring: Keyring
) -> None:
    # The instance's transaction runs in another server session than the one that ran
    # its session setup, so the old session-level idle timeout did not cover it: a
    # frozen instance held the slot's lock until it woke up (here: for ever).
    name = f"frozen-{uuid.uuid4().hex[:12]}"
    with (
        pgbouncer_server(postgres, pool_mode="transaction", pool_size=2) as bouncer,
        PostgresStore(postgres, keyring=keyring, schema=schema) as store,
        psycopg.connect(postgres, autocommit=True) as admin,
    ):
        store.create_challenge(make_record("old", slot="sms:s"))
        holder = _hold_row_lock(postgres, schema, "old")
        child = subprocess.Popen(
            [sys.executable, "-c", _STALLING_CHILD, _named(bouncer, name), schema],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdin is not None
        assert child.stdout is not None
        pool = ThreadPoolExecutor(1)
        # PgBouncer lends the most recently used server session first: this client
        # takes the one the child used so far, and the child's transaction the other.
        other = psycopg.connect(_named(bouncer, "bystander"))
        try:
            assert child.stdout.readline() == "open\n"
            other.execute("SELECT 1")
            child.stdin.write("go\n")
            child.stdin.flush()
            _wait_for(lambda: _waiting(admin, name) is not None, "child waits on the row")
            frozen = _waiting(admin, name)
            child.send_signal(signal.SIGSTOP)
            holder.commit()
            other.commit()
            created = pool.submit(store.create_challenge, make_record("new", slot="sms:s"))
            created.result(timeout=30)  # the old code waited here for ever
            # The server ended the frozen session: its locks go before its row in
            # pg_stat_activity does, so the row may linger for a moment.
            gone = "SELECT 1 FROM pg_stat_activity WHERE pid = %s"
            _wait_for(lambda: admin.execute(gone, (frozen,)).fetchone() is None, "session ended")
            assert store.get_challenge("child") is None  # its transaction rolled back
            live = store.get_challenge("new")
            assert live is not None
            assert not live.consumed
        finally:
            other.close()
            holder.close()
            child.kill()
            child.communicate(timeout=30)  # also closes its pipes
            pool.shutdown(wait=True)


def test_a_call_pgbouncer_cannot_serve_in_time_is_a_retryable_error(
    postgres: str, schema: str, keyring: Keyring
) -> None:
    # Every server session busy for longer than query_wait_timeout: PgBouncer answers
    # with an error (08P01) and closes the client. A later call may succeed.
    with (
        pgbouncer_server(postgres, pool_size=1, query_wait_timeout="1") as bouncer,
        PostgresStore(bouncer, keyring=keyring, schema=schema) as store,
        psycopg.connect(bouncer) as holder,
    ):
        holder.execute("SELECT 1")  # a transaction holding the only server session
        with pytest.raises(StoreError, match="PostgreSQL failed: ProtocolViolation") as info:
            store.advance("k", 1)
        assert info.value.retryable is True
        assert "query_wait_timeout" in str(info.value.__cause__)
        holder.rollback()
        assert store.advance("k", 1) is True


def test_statement_pooling_is_refused_when_the_store_opens(
    postgres: str, schema: str, keyring: Keyring
) -> None:
    # The store's transactions have several statements, which statement pooling
    # refuses. The old store failed at open with a *retryable* StoreError
    # (ProtocolViolation), though no retry can help: now a ConfigurationError says why.
    with (
        pgbouncer_server(postgres, pool_mode="statement") as bouncer,
        pytest.raises(ConfigurationError, match="statement pooling"),
    ):
        PostgresStore(bouncer, keyring=keyring, schema=schema)


def _prepared_in_own_session(
    conninfo: str, schema: str, keyring: Keyring, monkeypatch: pytest.MonkeyPatch, **options: bool
) -> list[str]:
    """The statements the store's one connection holds prepared after many calls.

    Only meaningful where that connection has one server session of its own
    (PostgreSQL itself, or session pooling).
    """
    opened: list[psycopg.Connection[tuple[object, ...]]] = []
    connect = psycopg.connect

    def recording_connect(*args: Any, **kwargs: Any) -> psycopg.Connection[tuple[object, ...]]:
        conn = connect(*args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(psycopg, "connect", recording_connect)
    with PostgresStore(conninfo, keyring=keyring, schema=schema, **options) as store:
        for n in range(10):
            store.advance("k", n)
        assert len(opened) == 1
        rows = opened[0].execute("SELECT statement FROM pg_prepared_statements").fetchall()
    return [str(row[0]) for row in rows]


def test_statements_are_prepared_on_postgresql_itself_and_not_behind_pgbouncer(
    postgres: str, pgbouncer_session: str, schema: str, keyring: Keyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # The direct path keeps psycopg's prepared statements (they save the parse and plan
    # of each call); the check must not take PostgreSQL for a pooler, nor the reverse.
    direct = _prepared_in_own_session(postgres, schema, keyring, monkeypatch)
    assert any("counters" in statement for statement in direct)
    assert _prepared_in_own_session(pgbouncer_session, schema, keyring, monkeypatch) == []
    forced = _prepared_in_own_session(
        pgbouncer_session, schema, keyring, monkeypatch, prepared_statements=True
    )
    assert any("counters" in statement for statement in forced)
    never = _prepared_in_own_session(
        postgres, schema, keyring, monkeypatch, prepared_statements=False
    )
    assert never == []


def test_connections_pgbouncer_dropped_are_not_lent_again(
    postgres: str, schema: str, keyring: Keyring
) -> None:
    # Restarting PgBouncer, or KILL on its console, closes every client connection;
    # the pooled ones must be noticed and replaced, not fail the next calls.
    with (
        pgbouncer_server(postgres, pool_mode="transaction") as bouncer,
        PostgresStore(bouncer, keyring=keyring, schema=schema) as store,
    ):
        raced = race_threads([functools.partial(store.advance, f"k{n}", 1) for n in range(4)])
        assert raced == [True] * 4
        console = psycopg.conninfo.make_conninfo(bouncer, dbname="pgbouncer")
        # The console speaks only the simple query protocol: client-side binding.
        with psycopg.connect(
            console, autocommit=True, cursor_factory=psycopg.ClientCursor
        ) as admin:
            before = admin.execute("SHOW CLIENTS").fetchall()
            admin.execute("KILL postgres")  # every client and server connection of the pool
            after = admin.execute("SHOW CLIENTS").fetchall()
            admin.execute("RESUME postgres")
        # SHOW CLIENTS: (type, user, database, ...); the console is a client of "pgbouncer".
        assert len([c for c in before if c[2] == "postgres"]) >= 1
        assert [c for c in after if c[2] == "postgres"] == []
        for n in range(4):
            assert store.advance(f"k{n}", 2) is True
        store.create_challenge(make_record("c"))
        assert store.consume_challenge("c", at(1)) is not None


@pytest.mark.parametrize("bad", ["no", 0, 1])
def test_prepared_statements_is_none_true_or_false(
    postgres: str, keyring: Keyring, bad: Any
) -> None:
    # "no" would have meant yes, and 0 no: refused before anything connects.
    with pytest.raises(ConfigurationError, match="prepared_statements"):
        PostgresStore(postgres, keyring=keyring, prepared_statements=bad)

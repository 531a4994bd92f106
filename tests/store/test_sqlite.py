"""SQLiteStore behaviour beyond the contract: files, schema versions, arguments, fork."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from macnss_auth.errors import ConfigurationError, SchemaVersionError, StoreError
from macnss_auth.store import SCHEMA_VERSION, Keyring, SQLiteStore
from macnss_auth.testing.store_contract import KEY1, T0, at, enrollment, make_record


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_file_is_wal_with_the_chosen_synchronous(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "s.sqlite3"
    with SQLiteStore(path, keyring=keyring, synchronous="NORMAL") as store:
        assert store.path == path
        assert "NORMAL" in repr(store)
        store.advance("k", 1)
        assert store.integrity_check() == ["ok"]
    raw = _raw(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        raw.close()


def test_newer_schema_is_refused(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "s.sqlite3"
    SQLiteStore(path, keyring=keyring).close()
    raw = _raw(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(SchemaVersionError):
        SQLiteStore(path, keyring=keyring)


def test_older_schema_is_migrated_forward_keeping_data(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "s.sqlite3"
    with SQLiteStore(path, keyring=keyring) as store:
        store.advance("ctr", 7)
        store.put_enrollment(enrollment(secret=b"kept"))
    # Turn the file back into a version-1 file: version 2 only added indexes.
    raw = _raw(path)
    indexes = [
        name
        for (name,) in raw.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
    ]
    assert len(indexes) == 4
    for name in indexes:
        raw.execute(f'DROP INDEX "{name}"')
    raw.execute("PRAGMA user_version = 1")
    raw.close()
    with SQLiteStore(path, keyring=keyring) as store:
        assert store.current("ctr") == 7
        got = store.get_enrollment("alice", "totp")
        assert got is not None
        assert got.secret.reveal() == b"kept"
    raw = _raw(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        (count,) = raw.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchone()
        assert count == 4
    finally:
        raw.close()


def test_foreign_files_are_refused(tmp_path: Path, keyring: Keyring) -> None:
    other_app = tmp_path / "other.sqlite3"
    raw = _raw(other_app)
    raw.execute("CREATE TABLE users (name TEXT)")
    raw.close()
    with pytest.raises(StoreError, match="another application"):
        SQLiteStore(other_app, keyring=keyring)
    tagged = tmp_path / "tagged.sqlite3"
    raw = _raw(tagged)
    raw.execute("PRAGMA application_id = 1234")
    raw.close()
    with pytest.raises(StoreError, match="another application"):
        SQLiteStore(tagged, keyring=keyring)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError):
        SQLiteStore(garbage, keyring=keyring)
    with pytest.raises(StoreError):
        SQLiteStore(tmp_path / "missing-dir" / "s.sqlite3", keyring=keyring)


def test_bad_arguments(tmp_path: Path, keyring: Keyring) -> None:
    with pytest.raises(ConfigurationError):
        SQLiteStore(":memory:", keyring=keyring)
    with pytest.raises(ConfigurationError):
        SQLiteStore(tmp_path / "s", keyring=keyring, synchronous="OFF")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        SQLiteStore(tmp_path / "s", keyring=keyring, busy_timeout=-1)


def test_naive_times_and_huge_counters_are_refused(tmp_path: Path, keyring: Keyring) -> None:
    with SQLiteStore(tmp_path / "s.sqlite3", keyring=keyring) as store:
        with pytest.raises(ConfigurationError):
            store.hit("k", dt.datetime(2026, 1, 1), 60)  # noqa: DTZ001 (the point of the test)
        with pytest.raises(StoreError):
            store.advance("k", 2**63)
        assert store.current("k") is None


def test_closed_store_raises(tmp_path: Path, keyring: Keyring) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3", keyring=keyring)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.advance("k", 1)
    store.close()  # idempotent


def test_reseal_moves_every_secret_to_the_primary_key(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "s.sqlite3"
    with SQLiteStore(path, keyring=keyring) as store:
        for name in ("a", "b", "c"):
            store.put_enrollment(enrollment(subject=name, secret=name.encode() * 8))
    k2 = bytes(range(100, 132))
    with SQLiteStore(path, keyring=Keyring({"k1": KEY1, "k2": k2}, primary="k2")) as s:
        assert s.reseal() == 3
        assert s.reseal() == 0
    with SQLiteStore(path, keyring=Keyring({"k2": k2}, primary="k2")) as store:
        for name in ("a", "b", "c"):
            got = store.get_enrollment(name, "totp")
            assert got is not None
            assert got.secret.reveal() == name.encode() * 8


def _forked_child(store: SQLiteStore, out: multiprocessing.SimpleQueue[list[object]]) -> None:
    out.put(
        [
            store.advance("ctr", 2),
            store.consume_challenge("c1", at(1)) is not None,
            store.current("ctr"),
        ]
    )
    store.close()


def test_a_forked_child_opens_its_own_connections(tmp_path: Path, keyring: Keyring) -> None:
    with SQLiteStore(tmp_path / "s.sqlite3", keyring=keyring) as store:
        store.advance("ctr", 1)
        store.create_challenge(make_record("c1"))
        ctx = multiprocessing.get_context("fork")
        out: multiprocessing.SimpleQueue[list[object]] = ctx.SimpleQueue()
        child = ctx.Process(target=_forked_child, args=(store, out))
        child.start()
        child.join(30)
        assert child.exitcode == 0
        assert out.get() == [True, True, 2]
        # The parent's own pool still works after the child closed its copy.
        assert store.advance("ctr", 2) is False
        assert store.consume_challenge("c1", at(2)) is None
        assert store.hit("w", T0, 60).count == 1


def test_a_new_store_file_and_its_log_are_private(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "s.sqlite3"
    with SQLiteStore(path, keyring=keyring) as store:
        store.advance("k", 1)
        modes = {
            p.name: p.stat().st_mode & 0o777
            for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        }
    assert modes == {"s.sqlite3": 0o600, "s.sqlite3-wal": 0o600, "s.sqlite3-shm": 0o600}


def test_an_old_sqlite_library_is_refused(
    tmp_path: Path, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    with pytest.raises(StoreError, match=r"3\.35"):
        SQLiteStore(tmp_path / "s.sqlite3", keyring=keyring)


def test_a_busy_file_is_a_retryable_failure(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "s.sqlite3"
    with SQLiteStore(path, keyring=keyring, busy_timeout=0.1) as store:
        store.advance("n", 1)
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            with pytest.raises(StoreError, match="OperationalError") as busy:
                store.advance("n", 2)
            assert busy.value.retryable is True
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert store.advance("n", 2) is True
        store.create_challenge(make_record("c"))
        with pytest.raises(StoreError) as duplicate:
            store.create_challenge(make_record("c"))
        assert duplicate.value.retryable is False

"""``SQLiteStore.commit_group`` and the audit log kept in the store's file.

A commit group runs every call of the thread as one transaction, committed
on the way out also when the block raises (a refused code keeps its count
and its record), rolled back only when the database failed. The audit log
opened with ``SQLiteAuditLog.in_store`` appends inside it.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from macnss_auth.attempts import commit_group_of
from macnss_auth.audit import AuditEvent, MemoryAuditLog, SQLiteAuditLog
from macnss_auth.audit.events import AuditAction, Outcome
from macnss_auth.audit.sqlite import read_sqlite
from macnss_auth.errors import ConfigurationError, InvalidCode, StoreError
from macnss_auth.store import Keyring, MemoryStore, SQLiteStore

AT = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.timezone.utc)


def _event(outcome: Outcome = Outcome.SUCCESS) -> AuditEvent:
    return AuditEvent(at=AT, action=AuditAction.VERIFY, method="totp", outcome=outcome)


@pytest.fixture
def store(tmp_path: Path, keyring: Keyring) -> SQLiteStore:
    return SQLiteStore(tmp_path / "state.sqlite3", keyring=keyring)


def test_a_group_commits_its_writes_and_records_together(store: SQLiteStore) -> None:
    log = SQLiteAuditLog.in_store(store)
    with store.commit_group():
        assert store.advance("step", 7)
        log.record(_event())
        # Inside the group the thread reads its own writes.
        assert store.current("step") == 7
        assert log.head().sequence == 1
    assert store.current("step") == 7
    assert [r["seq"] for r in log.records()] == [1]
    log.verify()


def test_a_refused_attempt_keeps_its_writes_when_the_block_raises(store: SQLiteStore) -> None:
    log = SQLiteAuditLog.in_store(store)

    def refused() -> None:
        with store.commit_group():
            store.hit("attempts", AT, 60.0)
            log.record(_event(Outcome.FAILURE))
            raise InvalidCode(remaining_attempts=3)

    with pytest.raises(InvalidCode):
        refused()
    state = store.peek("attempts", AT, 60.0)
    assert state is not None
    assert state.count == 1
    assert [r["outcome"] for r in log.records()] == ["failure"]


def test_a_store_failure_rolls_the_whole_group_back(store: SQLiteStore) -> None:
    log = SQLiteAuditLog.in_store(store)

    def failing() -> None:
        with store.commit_group():
            store.advance("step", 7)
            log.record(_event())
            raise StoreError("the disk is full")

    with pytest.raises(StoreError):
        failing()
    assert store.current("step") is None
    assert log.records() == []


def test_groups_nest_into_one_transaction(store: SQLiteStore) -> None:
    def nested() -> None:
        with store.commit_group():
            store.advance("outer", 1)
            with store.commit_group():
                store.advance("inner", 1)
            raise StoreError("fails after the inner block")

    with pytest.raises(StoreError):
        nested()
    assert store.current("outer") is None
    assert store.current("inner") is None


def test_other_threads_read_the_last_commit_without_waiting(store: SQLiteStore) -> None:
    store.advance("step", 1)
    seen: list[int | None] = []
    with store.commit_group():
        store.advance("step", 2)
        reader = threading.Thread(target=lambda: seen.append(store.current("step")))
        reader.start()
        reader.join(timeout=30)
        assert not reader.is_alive()
    assert seen == [1]  # the group's write is not visible before its commit
    assert store.current("step") == 2


def test_the_records_read_back_from_the_file_like_a_standalone_log(
    store: SQLiteStore, keyring: Keyring
) -> None:
    log = SQLiteAuditLog.in_store(store, chain_key=b"k" * 32)
    log.record(_event())
    log.record(_event(Outcome.FAILURE))
    stored = read_sqlite(store.path)
    assert [record["seq"] for _, record in stored] == [1, 2]  # type: ignore[index]
    # A second writer on the same file continues the chain.
    again = SQLiteAuditLog.in_store(SQLiteStore(store.path, keyring=keyring), chain_key=b"k" * 32)
    again.record(_event())
    # The first writer's next record chains off the other's, not off its own last one.
    log.record(_event())
    log.verify()
    assert log.head().sequence == 4


def test_an_append_rolled_back_with_its_group_is_not_chained_off(store: SQLiteStore) -> None:
    log = SQLiteAuditLog.in_store(store)
    log.record(_event())

    def failing() -> None:
        with store.commit_group():
            log.record(_event())
            raise StoreError("the disk is full")

    with pytest.raises(StoreError):
        failing()
    log.record(_event(Outcome.FAILURE))
    assert [(r["seq"], r["outcome"]) for r in log.records()] == [(1, "success"), (2, "failure")]
    log.verify()


def test_only_a_log_in_the_same_store_groups_the_commits(
    store: SQLiteStore, tmp_path: Path, keyring: Keyring
) -> None:
    assert commit_group_of(store, SQLiteAuditLog.in_store(store)) is not None
    assert commit_group_of(store, SQLiteAuditLog(tmp_path / "audit.sqlite3")) is None
    assert commit_group_of(store, MemoryAuditLog()) is None
    other = SQLiteStore(tmp_path / "other.sqlite3", keyring=keyring)
    assert commit_group_of(store, SQLiteAuditLog.in_store(other)) is None


def test_in_store_needs_a_sqlite_store() -> None:
    with pytest.raises(ConfigurationError):
        SQLiteAuditLog.in_store(MemoryStore())  # type: ignore[arg-type]

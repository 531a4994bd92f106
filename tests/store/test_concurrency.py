"""Threads and processes racing on one store: no lost and no duplicated update.

The process test runs on one SQLite file, and (marked ``services``) on one
PostgreSQL schema and one Redis key prefix, as several service instances would.

Each worker walks the same counters, challenges and tokens in the same order,
so every step collides. The checks are exact:

* ``advance``: no value is accepted twice, the last value is accepted, and
  each worker's accepted values increase;
* ``hit`` and ``count_attempt``: the returned counts are exactly 1..M, each once;
* ``consume_challenge`` and ``consume_token``: exactly one winner per item.

The SQLite stores here use ``synchronous="NORMAL"``: atomicity comes from the
locking protocol, which is the same at every synchronous level, and leaving
out an fsync per commit keeps the test fast on a busy disk. Durability is
what ``test_crash.py`` checks, at both levels.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest

from macnss_auth.store import Keyring, MemoryStore, SQLiteStore, Store
from macnss_auth.testing.races import race_processes
from tests.store._workers import (
    ATTEMPTS_ID,
    Outcome,
    open_spec,
    prepare,
    process_main,
    run_threads,
)

ROUNDS = 100
PROCESS_ROUNDS = 60  # per thread; spawned processes pay for their start-up too


def check(store: Store, outcomes: list[Outcome], rounds: int) -> None:
    workers = len(outcomes)
    advanced = [v for o in outcomes for v in o["advanced"]]
    duplicates = [v for v, n in Counter(advanced).items() if n > 1]
    assert duplicates == []
    assert max(advanced) == rounds
    for o in outcomes:
        assert o["advanced"] == sorted(o["advanced"])
    assert store.current("adv") == rounds
    total = workers * rounds
    assert sorted(v for o in outcomes for v in o["hits"]) == list(range(1, total + 1))
    assert sorted(v for o in outcomes for v in o["attempts"]) == list(range(1, total + 1))
    record = store.get_challenge(ATTEMPTS_ID)
    assert record is not None
    assert record.attempts == total
    assert sorted(v for o in outcomes for v in o["challenges"]) == list(range(rounds))
    assert sorted(v for o in outcomes for v in o["tokens"]) == list(range(rounds))
    assert store.count_tokens("tok") == 0


def test_eight_threads_on_one_memory_store(keyring: Keyring) -> None:
    store = MemoryStore(keyring=keyring)
    prepare(store, ROUNDS)
    check(store, run_threads(store, 8, ROUNDS), ROUNDS)


def test_eight_threads_on_one_sqlite_store(tmp_path: Path, keyring: Keyring) -> None:
    with SQLiteStore(tmp_path / "s.sqlite3", keyring=keyring, synchronous="NORMAL") as store:
        prepare(store, ROUNDS)
        check(store, run_threads(store, 8, ROUNDS), ROUNDS)
        assert store.integrity_check() == ["ok"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services),
                        pytest.param("redis", marks=pytest.mark.services)])  # fmt: skip
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str]:
    """Where the processes meet: one SQLite file, or a fresh namespace on a server."""
    kind = str(request.param)
    namespace = f"t_{uuid.uuid4().hex}"
    if kind == "sqlite":
        return (kind, str(tmp_path / "s.sqlite3"), "")
    if kind == "postgres":
        return (kind, str(request.getfixturevalue("postgres")), namespace)
    return (kind, str(request.getfixturevalue("redis_url")), "{" + namespace + "}:")


def test_four_processes_of_two_threads(spec: tuple[str, str, str]) -> None:
    store = open_spec(spec)
    try:
        prepare(store, PROCESS_ROUNDS)
    finally:
        store.close()
    # Each process opens its own store, then all start together (race_processes).
    results = race_processes(process_main, [(spec, 2, PROCESS_ROUNDS)] * 4, timeout=120)
    outcomes: list[Outcome] = []
    for result in results:
        # An exception, a crash or a non-zero exit of any process is an outcome here.
        assert not isinstance(result, BaseException), repr(result)
        outcomes.extend(result)
    assert len(outcomes) == 8
    store = open_spec(spec)
    try:
        check(store, outcomes, PROCESS_ROUNDS)
        if isinstance(store, SQLiteStore):
            assert store.integrity_check() == ["ok"]
    finally:
        store.close()

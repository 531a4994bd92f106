"""Workloads for the concurrency and crash tests (importable by spawned processes)."""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypedDict

from macnss_auth.secret import Secret
from macnss_auth.store import Enrollment, Keyring, SQLiteStore, Store
from macnss_auth.testing.races import race_threads
from macnss_auth.testing.store_contract import KEY1, T0, at, make_record

__all__ = [
    "ATTEMPTS_ID",
    "Outcome",
    "crash_child",
    "digest",
    "prepare",
    "process_main",
    "workload",
]

ATTEMPTS_ID = "attempts"
HUGE_WINDOW = 10.0**9


class Outcome(TypedDict):
    """What one worker saw: every value the store returned to it."""

    advanced: list[int]
    hits: list[int]
    attempts: list[int]
    challenges: list[int]
    tokens: list[int]


def digest(i: int) -> bytes:
    """The i-th token digest."""
    return hashlib.sha256(b"token %d" % i).digest()


def prepare(store: Store, rounds: int) -> None:
    """Create the challenges and tokens the workers race for."""
    store.create_challenge(make_record(ATTEMPTS_ID, slot="attempts", max_attempts=10**9))
    for i in range(rounds):
        store.create_challenge(make_record(f"c{i}", slot=f"slot{i}"))
    store.add_tokens("tok", [digest(i) for i in range(rounds)])


def workload(store: Store, rounds: int) -> Outcome:
    """Every worker walks the same items in the same order, so they collide on each."""
    out: Outcome = {"advanced": [], "hits": [], "attempts": [], "challenges": [], "tokens": []}
    for i in range(rounds):
        if store.advance("adv", i + 1):
            out["advanced"].append(i + 1)
        out["hits"].append(store.hit("hits", T0, HUGE_WINDOW).count)
        count = store.count_attempt(ATTEMPTS_ID)
        assert count is not None
        out["attempts"].append(count)
        if store.consume_challenge(f"c{i}", at(1)) is not None:
            out["challenges"].append(i)
        if store.consume_token("tok", digest(i)):
            out["tokens"].append(i)
    return out


def run_threads(store: Store, threads: int, rounds: int) -> list[Outcome]:
    """Run ``workload`` on ``threads`` threads released together."""
    results = race_threads([functools.partial(workload, store, rounds)] * threads)
    outcomes: list[Outcome] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        outcomes.append(result)
    return outcomes


def open_spec(spec: tuple[str, str, str]) -> Store:
    """Open a store from a picklable ``(kind, target, namespace)`` description."""
    kind, target, namespace = spec
    keyring = Keyring({"k1": KEY1}, primary="k1")
    if kind == "sqlite":
        return SQLiteStore(target, keyring=keyring, synchronous="NORMAL")
    if kind == "postgres":
        from macnss_auth.store.postgres import PostgresStore  # noqa: PLC0415 (optional extra)

        return PostgresStore(target, keyring=keyring, schema=namespace)
    if kind == "redis":
        from macnss_auth.store.redis import RedisStore  # noqa: PLC0415 (optional extra)

        return RedisStore(target, keyring=keyring, prefix=namespace)
    raise ValueError(kind)


def process_main(
    spec: tuple[str, str, str], threads: int, rounds: int, start: Callable[[], None]
) -> list[Outcome]:  # pragma: no cover (runs in a child process)
    """A child process of ``race_processes``: open its own store, start with the others, race."""
    store = open_spec(spec)
    try:
        start()
        return run_threads(store, threads, rounds)
    finally:
        store.close()


def crash_child(argv: Sequence[str]) -> None:  # pragma: no cover (killed by the test)
    """Update the store forever, printing each index once all its updates are acknowledged."""
    path, synchronous = argv
    keyring = Keyring({"k1": KEY1}, primary="k1")
    assert synchronous in ("NORMAL", "FULL", "EXTRA")
    store = SQLiteStore(Path(path), keyring=keyring, synchronous=synchronous)  # type: ignore[arg-type]
    out = os.fdopen(sys.stdout.fileno(), "w", buffering=1, closefd=False)
    i = 0
    while True:
        assert store.advance("ctr", i + 1)
        store.create_challenge(make_record(f"c{i}", slot="crash"))
        assert store.consume_challenge(f"c{i}", at(1)) is not None
        assert store.consume_token("tok", digest(i))
        assert store.hit("hits", T0, HUGE_WINDOW).count == i + 1
        store.put_enrollment(
            Enrollment(subject=f"s{i}", method="totp", secret=Secret(b"seed %d" % i), created_at=T0)
        )
        out.write(f"{i}\n")  # only after every update of round i returned
        i += 1


if __name__ == "__main__":  # pragma: no cover
    crash_child(sys.argv[1:])

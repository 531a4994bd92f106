"""Atomic check-and-set throughput: MemoryStore vs SQLiteStore, one thread.

Run: ``.venv/bin/python bench/store.py`` (at most about 10 s: each cell stops
after a fixed number of calls or one second; ``--long`` or ``--scale 2`` for
steadier numbers); exits 1 when a floor of :data:`FLOORS` is missed. Each
operation is a store call that decides an outcome:

* ``advance``: compare-and-set of a monotonic counter (a new maximum each time);
* ``hit``: increment-and-return of a windowed counter;
* ``consume_challenge``: mark-used-if-live, on a fresh challenge each time.

SQLite runs on a real file in a temporary directory, in WAL mode, with
``synchronous=FULL`` (the default: one fsync per commit) and with ``NORMAL``.
The numbers depend on the disk's fsync latency: compare columns, not machines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from macnss_auth.authenticator import Challenge
from macnss_auth.store import ChallengeRecord, Keyring, MemoryStore, SQLiteStore, Store
from macnss_auth.store.sqlite import Synchronous

__all__ = ["main", "measure"]

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
LATER = T0 + dt.timedelta(seconds=1)
Operation = Callable[[Store, int], object]
SYNCHRONOUS: tuple[Synchronous, ...] = ("FULL", "NORMAL")


def _record(i: int) -> ChallengeRecord:
    challenge = Challenge(
        id=f"c{i}",
        subject="alice",
        method="sms",
        created_at=T0,
        expires_at=T0 + dt.timedelta(minutes=5),
    )
    return ChallengeRecord(challenge=challenge, slot=f"slot{i}", verifier=b"v" * 32)


def _advance(store: Store, i: int) -> object:
    return store.advance("totp:alice", i + 1)


def _hit(store: Store, i: int) -> object:
    del i
    return store.hit("failures:alice", LATER, 3600.0)


def _consume(store: Store, i: int) -> object:
    return store.consume_challenge(f"c{i}", LATER)


OPERATIONS: dict[str, Operation] = {
    "advance": _advance,
    "hit": _hit,
    "consume_challenge": _consume,
}


def _rate(store: Store, name: str, count: int, budget: float) -> float:
    """Operations per second over at most ``count`` calls or ``budget`` seconds."""
    operation = OPERATIONS[name]
    start = time.perf_counter()
    deadline = start + budget
    done = 0
    while done < count:
        operation(store, done)
        done += 1
        if done % 64 == 0 and time.perf_counter() > deadline:
            break
    return done / (time.perf_counter() - start)


def measure(directory: Path, scale: float = 1.0) -> dict[str, dict[str, float]]:
    """Operations per second by operation, then by store ("memory", "FULL", "NORMAL")."""
    keyring = Keyring.generate()
    counts = {"memory": int(40_000 * scale), "FULL": int(2_000 * scale)}
    counts["NORMAL"] = int(8_000 * scale)
    budget = 1.0 * scale  # seconds per cell at most, so a slow disk cannot stall the run
    table: dict[str, dict[str, float]] = {}
    for name in OPERATIONS:
        row: dict[str, float] = {}
        memory = MemoryStore(keyring=keyring)
        if name == "consume_challenge":
            for i in range(counts["memory"]):
                memory.create_challenge(_record(i))
        row["memory"] = _rate(memory, name, counts["memory"], budget)
        memory.close()
        for sync in SYNCHRONOUS:
            path = directory / f"{name}-{sync}.sqlite3"
            if name == "consume_challenge":
                # Fill the file without an fsync per challenge; only consumption is timed.
                with SQLiteStore(path, keyring=keyring, synchronous="NORMAL") as filler:
                    for i in range(counts[sync]):
                        filler.create_challenge(_record(i))
            with SQLiteStore(path, keyring=keyring, synchronous=sync) as sqlite:
                row[sync] = _rate(sqlite, name, counts[sync], budget)
        table[name] = row
    return table


#: Floors (operations per second, every operation): MemoryStore and SQLite NORMAL.
#: FULL depends on the disk's fsync latency: reported as a ratio, no floor.
FLOORS = {"memory": 50_000.0, "NORMAL": 1_000.0}


def main(argv: list[str] | None = None) -> int:
    """Print the table; return 1 when a floor is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply operation counts")
    parser.add_argument("--long", action="store_true", help="three times the operations")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="macnss-bench-") as tmp:
        table = measure(Path(tmp), args.scale * (3 if args.long else 1))
    print("Atomic check-and-set operations per second (one thread, SQLite in WAL mode)")
    print()
    header = (
        "| operation         | MemoryStore | SQLite FULL | memory/FULL "
        "| SQLite NORMAL | memory/NORMAL |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    missed = []
    for name, row in table.items():
        print(
            f"| {name:<17} | {row['memory']:>11,.0f} | {row['FULL']:>11,.0f} "
            f"| {row['memory'] / row['FULL']:>10.0f}x "
            f"| {row['NORMAL']:>13,.0f} | {row['memory'] / row['NORMAL']:>12.0f}x |"
        )
        missed += [f"{name} {store}" for store, floor in FLOORS.items() if row[store] < floor]
    floors = ", ".join(f"{store} {floor:,.0f}/s" for store, floor in FLOORS.items())
    print(f"\nfloors ({floors}): " + ("MISSED: " + ", ".join(missed) if missed else "ok"))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

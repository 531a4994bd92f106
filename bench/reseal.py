"""Re-sealing after a key rotation: secrets per second, and how long logins wait meanwhile.

Run: ``.venv/bin/python bench/reseal.py [--records N] [--postgres CONNINFO]
[--redis URL]``. SQLite always runs (a temporary file, ``synchronous=FULL``);
PostgreSQL and Redis run when given a server (use a throw-away one: the
bench writes a schema or prefix of its own and leaves it behind).

For each store it writes N enrollments under ``k1``, then re-seals them with
``{k1, k2}`` (primary ``k2``) while a second handle calls ``advance`` (the
write of every TOTP login) in a loop, and reports the re-sealing rate and the
slowest ``advance`` during the run next to the slowest one before it. A
re-seal that held one lock for the whole table would show the whole run as
the slowest login.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from macnss_auth.secret import Secret
from macnss_auth.store import Enrollment, Keyring, SQLiteStore, Store

__all__ = ["main", "measure"]

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
K1 = Keyring({"k1": bytes(range(32))}, primary="k1")
ROTATED = Keyring({"k1": bytes(range(32)), "k2": bytes(range(32, 64))}, primary="k2")


def _logins(store: Store, stop: threading.Event, waits: list[float]) -> None:
    # A counter of its own per run: each call stores a new maximum (a real write).
    key, n = f"totp:{uuid.uuid4().hex}", 0
    while not stop.is_set():
        n += 1
        started = time.perf_counter()
        store.advance(key, n)
        waits.append(time.perf_counter() - started)


def _login_waits(store: Store, seconds: float) -> list[float]:
    stop, waits = threading.Event(), list[float]()
    thread = threading.Thread(target=_logins, args=(store, stop, waits))
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    return waits


def measure(
    open_store: Callable[[Keyring], Store], records: int, *, shared: bool = False
) -> dict[str, float]:
    """Fill, then re-seal while logging in; the figures of one run.

    ``shared``: the logins and the re-seal use one store object (one process's
    threads), else two (two processes or instances).
    """
    writer = open_store(K1)
    for n in range(records):
        writer.put_enrollment(
            Enrollment(subject=f"s{n:07d}", method="totp", secret=Secret(b"x" * 20), created_at=T0)
        )
    logins = open_store(ROTATED)
    resealer = logins if shared else open_store(ROTATED)
    before = _login_waits(logins, 1.0)
    stop, during = threading.Event(), list[float]()
    thread = threading.Thread(target=_logins, args=(logins, stop, during))
    thread.start()
    started = time.perf_counter()
    moved = resealer.reseal()
    took = time.perf_counter() - started
    stop.set()
    thread.join()
    if moved != records:
        raise SystemExit(f"re-sealed {moved} of {records}")
    for store in {writer, logins, resealer}:
        store.close()
    return {
        "per_s": records / took,
        "seconds": took,
        "login_max_before_ms": max(before) * 1000,
        "login_max_during_ms": max(during) * 1000,
        "login_median_during_ms": statistics.median(during) * 1000,
        "logins_during": len(during),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--postgres", help="a throw-away PostgreSQL server's conninfo")
    parser.add_argument("--redis", help="a throw-away Redis server's URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.sqlite3"
        backends: dict[str, Callable[[Keyring], Store]] = {
            "sqlite": lambda keyring: SQLiteStore(path, keyring=keyring)
        }
        if args.postgres:
            from macnss_auth.store.postgres import PostgresStore  # noqa: PLC0415 (extra)

            schema = f"bench_{uuid.uuid4().hex[:12]}"
            backends["postgres"] = lambda keyring: PostgresStore(
                args.postgres, keyring=keyring, schema=schema
            )
        if args.redis:
            from macnss_auth.store.redis import RedisStore  # noqa: PLC0415 (extra)

            prefix = f"{{bench-{uuid.uuid4().hex[:12]}}}:"
            backends["redis"] = lambda keyring: RedisStore(
                args.redis, keyring=keyring, prefix=prefix
            )
        print(f"{args.records} enrollments re-sealed from k1 to k2")
        runs = [(name, opener, shared) for name, opener in backends.items() for shared in (0, 1)]
        for name, open_store, shared in runs:
            got = measure(open_store, args.records, shared=bool(shared))
            label = f"{name} ({'one handle' if shared else 'two handles'})"
            print(
                f"{label:26} {got['per_s']:9.0f} secrets/s ({got['seconds']:.2f} s);"
                f" slowest login before {got['login_max_before_ms']:.1f} ms,"
                f" during {got['login_max_during_ms']:.1f} ms"
                f" (median {got['login_median_during_ms']:.2f} ms,"
                f" {got['logins_during']:.0f} logins)"
            )


if __name__ == "__main__":
    main()

"""SMS/e-mail code cycles per second: begin + verify, MemoryStore vs SQLiteStore.

Run: ``.venv/bin/python bench/oob.py`` (a few seconds; ``--long`` or
``--scale 2`` for steadier numbers). Exits 1 when a floor of :data:`FLOORS`
is missed; every row is also shown as a ratio to MemoryStore. One cycle is
what a login costs the service: ``begin``
(rate-limit counters, code generation, keyed hash, challenge insert, message
rendering, delivery through the console channel into an in-memory stream)
then ``verify`` (throttle counter, keyed hash, atomic consume, throttle
reset). Subjects rotate so that no resend cooldown applies; the channel is
the console one writing to ``io.StringIO``, so the numbers measure the
library and the store, not a gateway.

SQLite runs on a real file in a temporary directory (WAL) with
``synchronous=FULL`` (the default: one fsync per commit) and ``NORMAL``.
Also reported: ``begin`` alone for known and unknown subjects. With the
inline dispatcher used here the known column includes the console delivery
and the opening of the sealed destination, which an unknown subject skips:
that difference is what the background dispatcher (the default) or padding
hides (see ``docs/codes.md`` and ``tests/otp/test_oob_timing.py``).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.delivery import ChannelKind, ConsoleChannel, find_code
from macnss_auth.otp.contacts import parse_phone, put_destination
from macnss_auth.otp.oob import InlineDispatcher, ResendPolicy, SMSCodeAuthenticator
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, MemoryStore, SQLiteStore, Store
from macnss_auth.store.sqlite import Synchronous
from macnss_auth.testing import FixedClock

__all__ = ["main", "measure"]

SUBJECTS = 50
OPEN = ResendPolicy(
    cooldown=0, daily_per_subject=10**9, daily_per_destination=10**9, hourly_per_prefix=None
)


def _cycles(store: Store, count: int) -> tuple[float, float, float]:
    """(cycles/s, known begins/s, unknown begins/s)."""
    clock = FixedClock.at(1_800_000_000)
    stream = io.StringIO()
    auth = SMSCodeAuthenticator(
        channel=ConsoleChannel(ChannelKind.SMS, stream=stream),
        store=store,
        audit=MemoryAuditLog(),
        pepper=Secret(b"bench pepper, 32 bytes or longer!"),
        clock=clock,
        dispatcher=InlineDispatcher(),
        resend=OPEN,
        language="en",
    )
    for i in range(SUBJECTS):
        put_destination(store, f"user{i}", parse_phone(f"06123456{i:02d}"), now=clock.now())
    start = time.perf_counter()
    for i in range(count):
        challenge = auth.begin(f"user{i % SUBJECTS}")
        text = stream.getvalue()
        stream.seek(0)
        stream.truncate()
        auth.verify(challenge, find_code(text))
    cycles = count / (time.perf_counter() - start)
    begins = {}
    for label, prefix in (("known", "user"), ("unknown", "nobody")):
        start = time.perf_counter()
        for i in range(count):
            auth.begin(f"{prefix}{i % SUBJECTS}")
        begins[label] = count / (time.perf_counter() - start)
        stream.seek(0)
        stream.truncate()
    return cycles, begins["known"], begins["unknown"]


def measure(directory: Path, scale: float = 1.0) -> dict[str, tuple[float, float, float]]:
    """Rates by store: "memory", "FULL", "NORMAL"."""
    keyring = Keyring.generate()
    rows: dict[str, tuple[float, float, float]] = {}
    rows["MemoryStore"] = _cycles(MemoryStore(keyring=keyring), int(3_000 * scale))
    # FULL pays an fsync per commit (about ten per login): fewer cycles suffice.
    runs: tuple[tuple[Synchronous, int], ...] = (("FULL", 100), ("NORMAL", 500))
    for sync, count in runs:
        path = directory / f"oob-{sync}.sqlite3"
        with SQLiteStore(path, keyring=keyring, synchronous=sync) as store:
            rows[f"SQLite {sync}"] = _cycles(store, int(count * scale))
    return rows


#: Floors (cycles per second) a regression must not cross; FULL depends on the disk's
#: fsync latency and is reported against MemoryStore without a floor.
FLOORS = {"MemoryStore": 1_000.0, "SQLite NORMAL": 100.0}


def main(argv: list[str] | None = None) -> int:
    """Print the table; return 1 when a floor is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply cycle counts")
    parser.add_argument("--long", action="store_true", help="three times the cycles")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="macnss-bench-") as tmp:
        rows = measure(Path(tmp), args.scale * (3 if args.long else 1))
    print("SMS code logins per second (begin + verify, console channel into memory, one thread)")
    print()
    print("| store         | cycles/s | vs MemoryStore | begin/s known | begin/s unknown | floor |")
    print("|---------------|----------|----------------|---------------|-----------------|-------|")
    base = rows["MemoryStore"][0]
    missed = []
    for name, (cycles, known, unknown) in rows.items():
        floor = FLOORS.get(name)
        verdict = "-" if floor is None else f"{floor:,.0f}: {'ok' if cycles >= floor else 'MISSED'}"
        if floor is not None and cycles < floor:
            missed.append(name)
        print(
            f"| {name:<13} | {cycles:>8,.0f} | {cycles / base:>13.3f}x "
            f"| {known:>13,.0f} | {unknown:>15,.0f} | {verdict} |"
        )
    if missed:
        print("\nfloors missed: " + ", ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Audit log throughput: appends per second for each sink, and verification speed.

Run: ``.venv/bin/python bench/audit.py`` (a few seconds; ``--records N`` for
more). Appends go to real files in a temporary directory: SQLite in WAL mode
with ``synchronous=FULL`` (one fsync per record), JSON Lines with and without
``fsync``. Every append takes the sink's lock, reads the head, seals the
record (HMAC-SHA256 here) and writes it. The numbers depend on the disk's
fsync latency: compare rows, not machines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from macnss_auth.audit import (
    AuditAction,
    AuditEvent,
    ChainedAuditLog,
    JsonLinesAuditLog,
    MemoryAuditLog,
    Outcome,
    SQLiteAuditLog,
    verify_file,
)
from macnss_auth.authenticator import ClientContext

__all__ = ["main"]

KEY = bytes(range(32))
PSEUDONYM_KEY = bytes(range(32, 64))
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
CLIENT = ClientContext(client_id="kiosk-07", ip="10.0.0.7", user_agent="kiosk/2.1")


def _event(i: int) -> AuditEvent:
    return AuditEvent(
        at=T0 + dt.timedelta(seconds=i),
        action=AuditAction.VERIFY,
        method="totp",
        outcome=Outcome.FAILURE,
        subject=f"subject-{i % 100}",
        reason="invalid_code",
        client=CLIENT,
        details={"drift": "0", "remaining_attempts": "7"},
    )


def _sinks(directory: Path) -> dict[str, Callable[[], ChainedAuditLog]]:
    return {
        "memory": lambda: MemoryAuditLog(chain_key=KEY, pseudonym_key=PSEUDONYM_KEY),
        "sqlite (FULL)": lambda: SQLiteAuditLog(
            directory / "a.sqlite3", chain_key=KEY, pseudonym_key=PSEUDONYM_KEY
        ),
        "jsonl (fsync)": lambda: JsonLinesAuditLog(
            directory / "a.jsonl", chain_key=KEY, pseudonym_key=PSEUDONYM_KEY
        ),
        "jsonl (no fsync)": lambda: JsonLinesAuditLog(
            directory / "b.jsonl", chain_key=KEY, pseudonym_key=PSEUDONYM_KEY, fsync=False
        ),
    }


def main() -> None:
    """Print appends/s per sink and verified records/s per file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()
    count: int = args.records
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        print(f"{'sink':<18} {'appends/s':>10} {'verify rec/s':>13}")
        for label, make in _sinks(directory).items():
            log = make()
            start = time.perf_counter()
            for i in range(count):
                log.record(_event(i))
            appended = count / (time.perf_counter() - start)
            start = time.perf_counter()
            if isinstance(log, SQLiteAuditLog | JsonLinesAuditLog):
                result = verify_file(log.path, key=KEY)
            else:
                result = log.verify()
            verified = result.count / (time.perf_counter() - start)
            print(f"{label:<18} {appended:>10,.0f} {verified:>13,.0f}")


if __name__ == "__main__":
    main()

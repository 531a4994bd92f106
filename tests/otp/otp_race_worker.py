"""A long-lived worker process for the cross-process replay races (see test_sqlite.py).

Each worker opens its own SQLiteStore on the shared file, builds its own
authenticators, and for every task waits on a shared barrier before
verifying, so all workers hit the store at the same moment.
"""

from __future__ import annotations

import datetime as dt
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.errors import AuthenticationFailed
from macnss_auth.otp.hotp import HotpAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.store import Keyring
from macnss_auth.store.sqlite import SQLiteStore
from macnss_auth.testing import FixedClock
from macnss_auth.throttle import ThrottlePolicy

__all__ = ["RELAXED", "worker"]

# Losers of a race are counted failures; keep them far from any delay.
RELAXED = ThrottlePolicy(free_failures=50, lockout_after=100)


def worker(
    path: str,
    key_hex: str,
    barrier: Barrier,
    tasks: Queue[tuple[Any, ...]],
    results: Queue[tuple[int, str]],
) -> None:
    """Serve tasks until ``("stop",)``: ``(rep, method, timestamp, code)``."""
    store = SQLiteStore(Path(path), keyring=Keyring({"k1": bytes.fromhex(key_hex)}, primary="k1"))
    clock = FixedClock.at(0)
    common: dict[str, Any] = {
        "store": store,
        "audit": MemoryAuditLog(),
        "clock": clock,
        "throttle_policy": RELAXED,
    }
    authenticators = {"totp": TotpAuthenticator(**common), "hotp": HotpAuthenticator(**common)}
    # Warm up the connection pool so the first race is not skewed by opening.
    store.current("warm-up")
    try:
        while True:
            task = tasks.get()
            if task[0] == "stop":
                return
            rep, method, timestamp, code = task
            clock.set(dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc))
            barrier.wait(timeout=30)
            try:
                authenticators[method].verify_code("alice", code)
            except AuthenticationFailed as exc:
                results.put((rep, exc.reason.value))
            else:
                results.put((rep, "ok"))
    finally:
        store.close()

"""A service instance that verifies codes, audit log in the store's file, until it dies.

``python -m tests.otp._combined_crash_worker STATE FLOW STATEMENT N``:

* FLOW ``totp``: round ``i`` sends a wrong TOTP code, then the code of time
  step ``FIRST_STEP + i``, and prints ``i`` once that verification returned.
* FLOW ``resync``: round ``i`` sends a wrong pair to
  :meth:`HotpAuthenticator.resync`, then the pair ``RESYNC_JUMP`` counters
  past the expected one, and prints ``i`` once that resync returned.

The worker kills itself with SIGKILL just before SQLite runs the ``N``-th
statement that starts with STATEMENT (``*``: any statement): the hook is
SQLite's trace callback, so the kill lands between two statements of a
verification's grouped transaction (or before its ``COMMIT``), at a point
the test chooses. ``N`` = 0 never kills (the parent then kills at a random
moment instead). After ``MAX_ROUNDS`` rounds the worker exits normally,
which the test reports as a kill point that never came.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import sqlite3
import sys
from typing import Any

import pyotp

from macnss_auth.audit import SQLiteAuditLog
from macnss_auth.errors import InvalidCode
from macnss_auth.otp.hotp import HotpAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.store import Keyring, SQLiteStore
from macnss_auth.testing import FixedClock
from macnss_auth.throttle import ThrottlePolicy

KEY = bytes(range(32))
SEED = b"12345678901234567890"
FIRST_STEP = 56_666_700
#: Rounds before the worker gives up and exits 0 (the kill point never came: a failure).
MAX_ROUNDS = 60
RESYNC_JUMP = 20  # past the default look-ahead of 10: only a resync finds it
# Two attempts per round (a wrong one, a right one) never reach a delay.
POLICY = ThrottlePolicy(free_failures=5, lockout_after=10)
TOTP_ORACLE = pyotp.TOTP(base64.b32encode(SEED).decode())
HOTP_ORACLE = pyotp.HOTP(base64.b32encode(SEED).decode())


def keyring() -> Keyring:
    return Keyring({"k": KEY}, primary="k")


def wrong_totp(step: int) -> str:
    """A code that no step in the ±1 window around ``step`` has."""
    taken = {TOTP_ORACLE.at(s * 30) for s in (step - 1, step, step + 1)}
    return next(c for c in (f"{n:06d}" for n in range(10**6)) if c not in taken)


def _install_kill_hook(prefix: str, nth: int) -> None:
    """Every connection opened from now on dies at the ``nth`` statement matching ``prefix``."""
    seen = [0]
    connect = sqlite3.connect

    def trace(statement: str) -> None:
        if prefix == "*" or statement.startswith(prefix):
            seen[0] += 1
            if seen[0] == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = connect(*args, **kwargs)
        connection.set_trace_callback(trace)
        return connection

    sqlite3.connect = traced  # type: ignore[assignment]


def totp_rounds(state: str) -> None:
    clock = FixedClock.at(FIRST_STEP * 30)
    store = SQLiteStore(state, keyring=keyring())
    totp = TotpAuthenticator(
        store=store, audit=SQLiteAuditLog.in_store(store), clock=clock, throttle_policy=POLICY
    )
    for i in range(MAX_ROUNDS):
        step = FIRST_STEP + i
        clock.set(FixedClock.at(step * 30).now())
        with contextlib.suppress(InvalidCode):
            totp.verify_code("alice", wrong_totp(step))
        totp.verify_code("alice", TOTP_ORACLE.at(step * 30))
        print(i, flush=True)


def resync_rounds(state: str) -> None:
    store = SQLiteStore(state, keyring=keyring())
    hotp = HotpAuthenticator(
        store=store,
        audit=SQLiteAuditLog.in_store(store),
        clock=FixedClock.at(0),
        throttle_policy=POLICY,
    )
    for i in range(MAX_ROUNDS):
        expected = hotp.counter("alice")
        assert expected is not None  # the parent enrolled alice
        target = expected + RESYNC_JUMP
        with contextlib.suppress(InvalidCode):
            hotp.resync("alice", HOTP_ORACLE.at(target + 1), HOTP_ORACLE.at(target))
        hotp.resync("alice", HOTP_ORACLE.at(target), HOTP_ORACLE.at(target + 1))
        print(i, flush=True)


def main(state: str, flow: str, prefix: str, nth: int) -> None:
    if nth:
        _install_kill_hook(prefix, nth)
    {"totp": totp_rounds, "resync": resync_rounds}[flow](state)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))

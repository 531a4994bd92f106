"""A spawned guesser for the combined layout's lockout race (see test_combined_layout.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from macnss_auth.audit import SQLiteAuditLog
from macnss_auth.errors import AuthenticationFailed
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.store import Keyring, SQLiteStore
from macnss_auth.testing import FixedClock
from macnss_auth.throttle import ThrottlePolicy

__all__ = ["GUESSING", "guess_wrong"]

# No delay before the lockout: every refusal in the race is the lockout itself.
GUESSING = ThrottlePolicy(free_failures=9, lockout_after=10)


def guess_wrong(
    path: str, key_hex: str, at: float, codes: list[str], start: Callable[[], None]
) -> list[str]:
    """Open the shared file with the audit log in it, meet the others, try every code."""
    keyring = Keyring({"k1": bytes.fromhex(key_hex)}, primary="k1")
    with SQLiteStore(Path(path), keyring=keyring) as store:
        totp = TotpAuthenticator(
            store=store,
            audit=SQLiteAuditLog.in_store(store),
            clock=FixedClock.at(at),
            throttle_policy=GUESSING,
        )
        store.current("warm-up")  # the connection is open before the race starts
        start()
        return [_outcome(totp, code) for code in codes]


def _outcome(totp: TotpAuthenticator, code: str) -> str:
    try:
        totp.verify_code("alice", code)
    except AuthenticationFailed as exc:
        return exc.reason.value
    return "ok"

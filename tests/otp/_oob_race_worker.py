"""Racers of one SMS challenge whose guesses are all counted before any is compared.

:class:`GuessesFirst` wraps a store so that each racer, once its guess is
counted (the ``oob-guess:`` counter), waits at a barrier for all the others:
the interleaving that a slow store (PgBouncer, a busy server) opens at
random, forced without sleeping. Used from threads and spawned processes
(see test_oob_right_code_race.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.delivery import CapturingChannel, ChannelKind
from macnss_auth.errors import AuthenticationFailed
from macnss_auth.otp.oob import InlineDispatcher, ResendPolicy, SMSCodeAuthenticator
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, SQLiteStore, Store
from macnss_auth.store.base import CounterState
from macnss_auth.testing import FixedClock
from macnss_auth.throttle import ThrottlePolicy

__all__ = ["PEPPER", "RELAXED", "T0", "GuessesFirst", "sms_authenticator", "verify_in_process"]

T0 = 1_800_000_000
PEPPER = b"an application pepper of 32+ bytes, test only"
# Every racer but one is a counted failure: keep the throttle out of the way.
RELAXED = ThrottlePolicy(free_failures=98, lockout_after=99)


class GuessesFirst:
    """A store handle whose guess counter holds each racer until every racer has guessed."""

    def __init__(self, store: Store, barrier: Any) -> None:
        self._store = store
        self._barrier = barrier

    def hit(self, key: str, now: dt.datetime, window: float) -> CounterState:
        state = self._store.hit(key, now, window)
        if key.startswith("oob-guess:"):
            self._barrier.wait(timeout=60)
        return state

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def sms_authenticator(
    store: Store, *, channel: CapturingChannel | None = None
) -> SMSCodeAuthenticator:
    """An SMS authenticator with the racers' settings (fixed clock, no resend cooldown)."""
    return SMSCodeAuthenticator(
        channel=channel or CapturingChannel(ChannelKind.SMS),
        store=store,
        pepper=Secret(PEPPER),
        clock=FixedClock.at(T0),
        audit=MemoryAuditLog(),
        dispatcher=InlineDispatcher(),
        resend=ResendPolicy(cooldown=0),
        throttle=RELAXED,
    )


def outcome(auth: SMSCodeAuthenticator, challenge_id: str, code: str) -> str:
    """``ok`` or the failure's reason."""
    try:
        auth.verify(challenge_id, code)
    except AuthenticationFailed as exc:
        return exc.reason.value
    return "ok"


def verify_in_process(
    job: tuple[str, str, str, str], barrier: Any, start: Callable[[], None]
) -> str:
    """Open the shared file, meet the others, verify a code with guesses counted first.

    ``job``: the file's path, the keyring's key in hex, the challenge id, the code.
    """
    path, key_hex, challenge_id, code = job
    keyring = Keyring({"k1": bytes.fromhex(key_hex)}, primary="k1")
    with SQLiteStore(Path(path), keyring=keyring) as store:
        auth = sms_authenticator(cast(Store, GuessesFirst(store, barrier)))
        store.current("warm-up")  # the connection is open before the race starts
        start()
        try:
            return outcome(auth, challenge_id, code)
        finally:
            auth.close()

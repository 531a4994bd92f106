"""Item 9 of issue 18: the loser of a double-submit counts as one failed attempt.

Decision (reasoning in docs/security.md, "Race losers"): a request that
loses the race for a code (``TokenReplayed``, ``ChallengeUsed``) is counted
and audited as a failure, like any other attempt: it was counted before it
was checked, and a loser cannot be told from an attacker replaying a code
seen over a shoulder or relayed from a phishing page. These tests pin down
what that costs the person: at most one counted attempt per double-submit,
absorbed by the free failures, so their next code goes through at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.authenticator import AssuranceLevel, AuthResult
from macnss_auth.delivery import CapturingChannel, ChannelKind
from macnss_auth.errors import AuthenticationFailed, ChallengeUsed, InvalidCode, TokenReplayed
from macnss_auth.otp.contacts import parse_phone, put_destination
from macnss_auth.otp.oob import InlineDispatcher, ResendPolicy, SMSCodeAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.policy import Policy
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, SQLiteStore, Store
from macnss_auth.testing import FixedClock
from macnss_auth.testing.races import race_threads
from macnss_auth.throttle import ThrottlePolicy
from tests.otp.otp_helpers import SECRET, T0, totp_code

POLICY = ThrottlePolicy(free_failures=3, base_delay=60.0, lockout_after=10)
KEYRING = Keyring({"k": bytes(range(32))}, primary="k")


def _race(calls: list[Callable[[], object]]) -> list[object]:
    """Run the callables at once; their results or exceptions, in order."""
    outcomes = race_threads(calls)
    # Only authentication failures are expected outcomes; anything else is a bug.
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, AuthenticationFailed):
            raise outcome
    return list(outcomes)


def _totp(store: Store, clock: FixedClock, audit: MemoryAuditLog) -> TotpAuthenticator:
    return TotpAuthenticator(store=store, audit=audit, clock=clock, throttle_policy=POLICY)


def test_a_replayed_totp_code_counts_once_and_costs_no_delay(tmp_path: Path) -> None:
    clock = FixedClock.at(T0)
    audit = MemoryAuditLog()
    stores = [SQLiteStore(tmp_path / "s.sqlite3", keyring=KEYRING) for _ in range(2)]
    first, second = (_totp(store, clock, audit) for store in stores)
    first.enroll("alice", secret=SECRET)
    first.confirm("alice", totp_code(SECRET, T0))
    clock.advance(30)
    code = totp_code(SECRET, clock.now())
    # Two service instances get the same code at the same moment.
    results = _race(
        [lambda: first.verify_code("alice", code), lambda: second.verify_code("alice", code)]
    )
    assert sum(isinstance(r, AuthResult) for r in results) == 1
    (loser,) = [r for r in results if not isinstance(r, AuthResult)]
    assert isinstance(loser, TokenReplayed)
    # Counted like any attempt (the winner's attempt shares its count when both
    # were counted before the success).
    assert loser.remaining_attempts in (POLICY.lockout_after - 1, POLICY.lockout_after - 2)
    assert [e.reason for e in audit.events if e.outcome.value == "failure"] == ["replayed"]
    # A late resubmission (after the winner's success) counts once more: the
    # loser's attempt fell before or after the success, so 1 or 2 are counted.
    with pytest.raises(TokenReplayed) as late:
        first.verify_code("alice", code)
    assert late.value.remaining_attempts in (POLICY.lockout_after - 1, POLICY.lockout_after - 2)
    # The person's next code goes through at once: no delay, no lockout.
    clock.advance(30)
    assert second.verify_code("alice", totp_code(SECRET, clock.now())).subject == "alice"
    # And the count starts afresh after that success.
    with pytest.raises(InvalidCode) as wrong:
        first.verify_code("alice", "000000")
    assert wrong.value.remaining_attempts == POLICY.lockout_after - 1
    for store in stores:
        store.close()


def test_a_double_submitted_sms_code_counts_once_and_costs_no_delay(tmp_path: Path) -> None:
    clock = FixedClock.at(T0)
    channel = CapturingChannel(ChannelKind.SMS)
    audit = MemoryAuditLog()
    stores = [SQLiteStore(tmp_path / "s.sqlite3", keyring=KEYRING) for _ in range(2)]
    put_destination(stores[0], "alice", parse_phone("+212612345678"), now=clock.now())
    first, second = (
        SMSCodeAuthenticator(
            channel=channel,
            store=store,
            pepper=Secret(b"an application pepper of 32+ bytes, test only"),
            clock=clock,
            audit=audit,
            dispatcher=InlineDispatcher(),
            resend=ResendPolicy(cooldown=0),
            throttle=POLICY,
        )
        for store in stores
    )
    challenge = first.begin("alice")
    code = channel.last_code()
    results = _race([lambda: first.verify(challenge, code), lambda: second.verify(challenge, code)])
    assert sum(isinstance(r, AuthResult) for r in results) == 1
    (loser,) = [r for r in results if not isinstance(r, AuthResult)]
    assert isinstance(loser, ChallengeUsed)
    failures = [e.reason for e in audit.events if e.outcome.value == "failure"]
    assert failures == ["challenge_used"]
    # The next code goes through at once.
    fresh = second.begin("alice")
    assert first.verify(fresh, channel.last_code()).subject == "alice"
    for auth in (first, second):
        auth.close()
    for store in stores:
        store.close()


def test_a_loser_through_policy_never_delays_the_next_login(tmp_path: Path) -> None:
    clock = FixedClock.at(T0)
    store = SQLiteStore(tmp_path / "s.sqlite3", keyring=KEYRING)
    totp = _totp(store, clock, MemoryAuditLog())
    totp.enroll("alice", secret=SECRET)
    totp.confirm("alice", totp_code(SECRET, T0))
    policy = Policy(
        authenticators=[(totp, AssuranceLevel.SUBSTANTIAL)],
        store=store,
        clock=clock,
        throttle_policy=POLICY,
    )
    for _ in range(5):
        clock.advance(30)
        code = totp_code(SECRET, clock.now())
        challenges = [policy.begin("alice", "totp") for _ in range(2)]
        results = _race([functools.partial(policy.verify, c, code) for c in challenges])
        assert sum(isinstance(r, AuthResult) for r in results) == 1
        assert sum(isinstance(r, TokenReplayed) for r in results) == 1
    # Five double-submits in a row: the person still logs in at once.
    clock.advance(30)
    result = policy.verify(policy.begin("alice", "totp"), totp_code(SECRET, clock.now()))
    assert result.subject == "alice"
    store.close()

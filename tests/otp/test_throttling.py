"""Growing delays and lockouts of TOTP/HOTP follow the ThrottlePolicy exactly."""

from __future__ import annotations

import pytest

from macnss_auth.audit import AuditAction, MemoryAuditLog
from macnss_auth.authenticator import ClientContext
from macnss_auth.errors import InvalidCode, LockedOut, Reason, VerificationThrottled
from macnss_auth.otp.hotp import BaseOtpAuthenticator
from macnss_auth.testing import FixedClock
from macnss_auth.throttle import ThrottlePolicy

from .otp_helpers import SECRET, T0, hotp_code, make_hotp, make_totp, totp_code

POLICIES = [
    ThrottlePolicy(
        free_failures=2, base_delay=2.0, max_delay=8.0, lockout_after=6, lockout_duration=60.0
    ),
    ThrottlePolicy(),  # the library defaults
    ThrottlePolicy(free_failures=0, base_delay=0.5, max_delay=1.0, lockout_after=3),
]


def _setup(
    method: str, policy: ThrottlePolicy, clock: FixedClock, audit: MemoryAuditLog
) -> tuple[BaseOtpAuthenticator, str, str]:
    """An enrolled authenticator, a correct code and a wrong code for now."""
    if method == "totp":
        totp = make_totp(clock, policy=policy, audit=audit)
        totp.enroll("alice", secret=SECRET)
        totp.confirm("alice", totp_code(SECRET, clock.now()))
        clock.advance(60)
        good = totp_code(SECRET, clock.now())
        authenticator: BaseOtpAuthenticator = totp
    else:
        hotp = make_hotp(clock, policy=policy, audit=audit)
        hotp.enroll("alice", secret=SECRET)
        hotp.confirm("alice", hotp_code(SECRET, 0))
        good = hotp_code(SECRET, 1)
        authenticator = hotp
    window = {totp_code(SECRET, clock.now().timestamp() + 30 * d) for d in (-1, 0, 1)}
    window |= {hotp_code(SECRET, c) for c in range(1, 12)}
    wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in window)
    return authenticator, good, wrong


@pytest.mark.parametrize("method", ["totp", "hotp"])
@pytest.mark.parametrize("policy", POLICIES, ids=["custom", "defaults", "strict"])
def test_delays_and_lockout_follow_the_policy(method: str, policy: ThrottlePolicy) -> None:
    clock = FixedClock.at(T0)
    audit = MemoryAuditLog()
    authenticator, good, wrong = _setup(method, policy, clock, audit)
    for count in range(1, policy.lockout_after + 1):
        # The previous attempt set a delay; one instant earlier is refused...
        wait = policy.delay_after(count - 1)
        if wait > 0:
            clock.advance(wait - 0.25)
            with pytest.raises(VerificationThrottled) as throttled:
                authenticator.verify_code("alice", wrong)
            assert type(throttled.value) is VerificationThrottled
            assert throttled.value.retry_after == pytest.approx(0.25)
            assert throttled.value.remaining_attempts == policy.lockout_after - (count - 1)
            clock.advance(0.25)
        # ...and on time it is counted and checked.
        with pytest.raises(InvalidCode) as info:
            authenticator.verify_code("alice", wrong)
        assert info.value.remaining_attempts == policy.lockout_after - count
    assert audit.events[-1].action is AuditAction.LOCKOUT
    assert audit.events[-1].reason == Reason.LOCKED_OUT.value
    # Locked out: even the correct code is refused, until the lockout ends.
    with pytest.raises(LockedOut) as locked:
        authenticator.verify_code("alice", good)
    assert locked.value.retry_after == pytest.approx(policy.lockout_duration)
    assert locked.value.remaining_attempts == 0
    clock.advance(policy.lockout_duration - 1)
    with pytest.raises(LockedOut) as locked:
        authenticator.verify(authenticator.begin("alice"), good)
    assert locked.value.retry_after == pytest.approx(1)
    clock.advance(1)
    if method == "totp":
        good = totp_code(SECRET, clock.now())
    assert authenticator.verify_code("alice", good).subject == "alice"


@pytest.mark.parametrize("method", ["totp", "hotp"])
def test_success_resets_the_count(method: str) -> None:
    policy = POLICIES[0]
    clock = FixedClock.at(T0)
    authenticator, good, wrong = _setup(method, policy, clock, MemoryAuditLog())
    for _ in range(2):
        with pytest.raises(InvalidCode):
            authenticator.verify_code("alice", wrong)
    authenticator.verify_code("alice", good)
    with pytest.raises(InvalidCode) as info:
        authenticator.verify_code("alice", wrong)
    assert info.value.remaining_attempts == policy.lockout_after - 1


def test_unknown_subjects_are_throttled_the_same_way() -> None:
    policy = POLICIES[2]
    clock = FixedClock.at(T0)
    totp = make_totp(clock, policy=policy)
    for count in range(1, policy.lockout_after + 1):
        clock.advance(policy.delay_after(count - 1))
        with pytest.raises(InvalidCode) as info:
            totp.verify_code("nobody", "123456")
        assert info.value.remaining_attempts == policy.lockout_after - count
    with pytest.raises(LockedOut):
        totp.verify_code("nobody", "123456")


def test_confirm_is_throttled_too() -> None:
    policy = POLICIES[2]
    clock = FixedClock.at(T0)
    totp = make_totp(clock, policy=policy)
    provisioning = totp.enroll("alice")
    good = totp_code(provisioning.secret.reveal(), clock.now())
    wrong = f"{(int(good) + 500_000) % 1_000_000:06d}"
    for count in range(policy.lockout_after):
        clock.advance(policy.delay_after(count))
        with pytest.raises(InvalidCode):
            totp.confirm("alice", wrong)
    with pytest.raises(LockedOut):
        totp.confirm("alice", good)


def test_attempts_are_counted_per_client_as_well() -> None:
    policy = POLICIES[0]
    clock = FixedClock.at(T0)
    authenticator, _good, wrong = _setup("totp", policy, clock, MemoryAuditLog())
    kiosk = ClientContext(client_id="kiosk-1")
    for _ in range(2):
        with pytest.raises(InvalidCode):
            authenticator.verify_code("alice", wrong, context=kiosk)
    # The subject's count is shared: another client continues it.
    with pytest.raises(InvalidCode) as info:
        authenticator.verify_code("alice", wrong, context=ClientContext(client_id="phone"))
    assert info.value.remaining_attempts == policy.lockout_after - 3


def test_default_figures_match_the_guide() -> None:
    # docs/totp.md: attempts 1-4 at once, then waits of 1, 2, 4, 8, 16, 32 s,
    # lockout at the 10th for 15 minutes.
    policy = ThrottlePolicy()
    waits = [policy.delay_after(n) for n in range(policy.lockout_after)]
    assert waits == [0, 0, 0, 0, 1, 2, 4, 8, 16, 32]
    assert policy.lockout_after == 10
    assert policy.lockout_duration == 900

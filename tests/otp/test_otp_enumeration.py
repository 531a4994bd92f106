"""An enrollment's code length must not show through the kind of error.

A subject enrolled with 8 digits (or a longer recovery code) and a subject
who is not enrolled at all must fail a wrong code the same way, whatever its
length: otherwise MalformedInput versus InvalidCode tells them apart.
"""

from __future__ import annotations

import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.errors import AuthenticationFailed, InvalidCode, MalformedInput
from macnss_auth.otp.enrollment import OtpParameters
from macnss_auth.otp.recovery import RecoveryCodeAuthenticator
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.testing import FixedClock, FixedRandom

from .otp_helpers import RELAXED, SECRET, T0, hotp_code, make_hotp, make_totp, totp_code

EIGHT = OtpParameters(digits=8)


def _outcome(call: object, *args: str) -> type[Exception]:
    assert callable(call)
    try:
        call(*args)
    except (AuthenticationFailed, MalformedInput) as exc:
        return type(exc)
    raise AssertionError("a wrong code was accepted")


def _digit_codes() -> list[str]:
    # Wrong codes of every length around the possible ones; none is the right code.
    return ["9" * n for n in range(1, 13)] + ["12 34-56", "0000000"]


def test_totp_unknown_and_eight_digit_subjects_fail_alike() -> None:
    clock = FixedClock.at(T0)
    totp = make_totp(clock)
    totp.enroll("alice", secret=SECRET, parameters=EIGHT)
    totp.confirm("alice", totp_code(SECRET, clock.now(), digits=8))
    clock.advance(90)
    for code in [*_digit_codes(), "12345a", ""]:
        assert _outcome(totp.verify_code, "alice", code) is _outcome(
            totp.verify_code, "nobody", code
        ), code


def test_hotp_unknown_and_eight_digit_subjects_fail_alike() -> None:
    clock = FixedClock.at(T0)
    hotp = make_hotp(clock, look_ahead=2)
    hotp.enroll("alice", secret=SECRET, parameters=EIGHT)
    hotp.confirm("alice", hotp_code(SECRET, 0, digits=8))
    for code in [*_digit_codes(), "12345a"]:
        assert _outcome(hotp.verify_code, "alice", code) is _outcome(
            hotp.verify_code, "nobody", code
        ), code
        assert _outcome(hotp.resync, "alice", code, code) is _outcome(
            hotp.resync, "nobody", code, code
        ), code


def test_recovery_unknown_and_long_code_subjects_fail_alike() -> None:
    clock = FixedClock.at(T0)
    store = MemoryStore(keyring=Keyring.generate())

    def make(length: int) -> RecoveryCodeAuthenticator:
        return RecoveryCodeAuthenticator(
            store=store,
            audit=MemoryAuditLog(),
            clock=clock,
            random=FixedRandom(3),
            throttle_policy=RELAXED,
            scrypt_n=1024,
            length=length,
        )

    make(20).generate("alice")
    recovery = make(12)  # the configuration changed since alice's set was made
    for n in (10, 11, 12, 13, 16, 20, 24, 40):
        code = "Z" * n
        assert _outcome(recovery.verify_code, "alice", code) is _outcome(
            recovery.verify_code, "nobody", code
        ), n
    assert _outcome(recovery.verify_code, "nobody", "Z" * 11 + "U") is MalformedInput


def test_wrong_length_digit_codes_are_invalid_codes() -> None:
    clock = FixedClock.at(T0)
    totp = make_totp(clock)
    totp.enroll("alice", secret=SECRET)
    totp.confirm("alice", totp_code(SECRET, clock.now()))
    with pytest.raises(InvalidCode):
        totp.verify_code("alice", "1234567")
    with pytest.raises(MalformedInput):
        totp.verify_code("alice", "12345x")

"""Recovery codes: single use, hashed with scrypt, throttled, audited, contract-compliant."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.audit import AuditAction, MemoryAuditLog, Outcome
from macnss_auth.authenticator import AssuranceLevel, Challenge
from macnss_auth.errors import ConfigurationError, InvalidCode, LockedOut, MalformedInput
from macnss_auth.otp.recovery import (
    ALPHABET,
    RecoveryCodeAuthenticator,
    normalize_recovery_code,
)
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.testing.contract import AuthenticatorContract
from macnss_auth.testing.races import outcome_name, race_threads
from macnss_auth.throttle import ThrottlePolicy

from .otp_helpers import RELAXED, T0

FAST_N = 2**10  # the KDF cost under test; production default is 2**15


def make(
    clock: FixedClock,
    *,
    store: MemoryStore | None = None,
    audit: MemoryAuditLog | None = None,
    policy: ThrottlePolicy | None = RELAXED,
    **kwargs: Any,
) -> RecoveryCodeAuthenticator:
    return RecoveryCodeAuthenticator(
        store=store if store is not None else MemoryStore(keyring=Keyring.generate()),
        audit=audit if audit is not None else MemoryAuditLog(),
        clock=clock,
        random=FixedRandom(3),
        throttle_policy=policy,
        scrypt_n=kwargs.pop("scrypt_n", FAST_N),
        **kwargs,
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock.at(T0)


def test_a_set_of_single_use_codes(clock: FixedClock) -> None:
    recovery = make(clock)
    issued = recovery.generate("alice")
    assert len(issued.codes) == 10
    assert len(set(issued.codes)) == 10
    assert all(len(code) == 14 and code.count("-") == 2 for code in issued.codes)
    assert issued.codes[0] not in repr(issued)
    assert recovery.remaining("alice") == 10
    result = recovery.verify_code("alice", issued.codes[3])
    assert result.assurance is AssuranceLevel.SUBSTANTIAL
    assert result.details["remaining"] == "9"
    with pytest.raises(InvalidCode):
        recovery.verify_code("alice", issued.codes[3])
    assert recovery.remaining("alice") == 9


def test_codes_are_forgiving_the_crockford_way(clock: FixedClock) -> None:
    recovery = make(clock)
    code = recovery.generate("alice").codes[0]
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert recovery.verify_code("alice", f"  {typed} ").subject == "alice"
    # Another length is a wrong code (test_otp_enumeration.py), not a malformed one.
    with pytest.raises(InvalidCode):
        recovery.verify_code("alice", code + "X")
    with pytest.raises(MalformedInput):
        recovery.verify_code("alice", "X" * 41)
    with pytest.raises(MalformedInput):
        recovery.verify_code("alice", code[:-1] + "U")


def test_a_new_set_replaces_the_old_one(clock: FixedClock) -> None:
    store = MemoryStore()
    recovery = make(clock, store=store)
    old = recovery.generate("alice")
    enrollment = store.get_enrollment("alice", "recovery")
    assert enrollment is not None
    old_key = f"otp:recovery:{enrollment.params['generation']}"
    new = recovery.generate("alice")
    assert store.count_tokens(old_key) == 0
    assert set(old.codes).isdisjoint(new.codes)
    with pytest.raises(InvalidCode):
        recovery.verify_code("alice", old.codes[0])
    assert recovery.verify_code("alice", new.codes[0]).subject == "alice"
    assert recovery.revoke("alice")
    with pytest.raises(InvalidCode):
        recovery.verify_code("alice", new.codes[1])
    assert recovery.remaining("alice") == 0


def test_digests_are_scrypt_with_a_salt_per_set_and_a_sealed_pepper(clock: FixedClock) -> None:
    store = MemoryStore(keyring=Keyring.generate())
    recovery = make(clock, store=store)
    code = recovery.generate("alice").codes[0]
    enrollment = store.get_enrollment("alice", "recovery")
    assert enrollment is not None
    params = enrollment.params
    assert params["kdf"] == "scrypt"
    assert (params["n"], params["r"], params["p"], params["length"]) == (FAST_N, 8, 1, 12)
    expected = hashlib.scrypt(
        code.replace("-", "").encode(),
        salt=bytes.fromhex(str(params["salt"])) + enrollment.secret.reveal(),
        n=FAST_N,
        r=8,
        p=1,
        dklen=32,
    )
    key = f"otp:recovery:{params['generation']}"
    assert store.consume_token(key, expected)  # the stored digest is exactly that
    assert store.count_tokens(key) == 9


def test_long_codes_use_a_fast_keyed_hash(clock: FixedClock) -> None:
    store = MemoryStore()
    recovery = make(clock, store=store, length=24)  # 120 bits
    code = recovery.generate("alice").codes[0]
    enrollment = store.get_enrollment("alice", "recovery")
    assert enrollment is not None
    assert enrollment.params["kdf"] == "hmac-sha256"
    assert recovery.verify_code("alice", code).subject == "alice"


def test_default_cost_is_production_grade(clock: FixedClock) -> None:
    recovery = make(clock, scrypt_n=2**15, count=1)
    code = recovery.generate("alice").codes[0]
    assert recovery.verify_code("alice", code).details["remaining"] == "0"


def test_threads_race_for_one_code(clock: FixedClock) -> None:
    recovery = make(clock)
    codes = recovery.generate("alice").codes
    for code in codes[:5]:
        outcomes = race_threads([functools.partial(recovery.verify_code, "alice", code)] * 8)
        assert sorted(outcome_name(o) for o in outcomes) == ["InvalidCode"] * 7 + ["ok"]


def test_unknown_subject_and_throttling(clock: FixedClock) -> None:
    policy = ThrottlePolicy(free_failures=1, base_delay=1, lockout_after=3, lockout_duration=60)
    recovery = make(clock, policy=policy)
    code = recovery.generate("alice").codes[0]
    with pytest.raises(InvalidCode):
        recovery.verify_code("nobody", code)
    for count in range(policy.lockout_after):
        clock.advance(policy.delay_after(count))
        with pytest.raises(InvalidCode):
            recovery.verify_code("alice", "0000-0000-0000")
    with pytest.raises(LockedOut):
        recovery.verify_code("alice", code)


def test_audited_without_codes(clock: FixedClock) -> None:
    audit = MemoryAuditLog()
    recovery = make(clock, audit=audit)
    codes = recovery.generate("alice").codes
    recovery.verify_code("alice", codes[0])
    with pytest.raises(InvalidCode):
        recovery.verify_code("alice", codes[0])
    assert [(e.action, e.outcome) for e in audit.events] == [
        (AuditAction.ENROLL, Outcome.SUCCESS),
        (AuditAction.RECOVERY, Outcome.SUCCESS),
        (AuditAction.RECOVERY, Outcome.FAILURE),
    ]
    text = repr(audit.events) + repr(audit.records())
    for code in codes:
        assert code not in text
        assert code.replace("-", "") not in text


def test_configuration_is_checked(clock: FixedClock) -> None:
    kwargs: list[dict[str, Any]] = [
        {"count": 0},
        {"length": 9},
        {"scrypt_n": 1000},
        {"scrypt_n": 512},
    ]
    for bad in kwargs:
        with pytest.raises(ConfigurationError):
            make(clock, **bad)


@given(st.text(max_size=80))
def test_normalization_never_raises_anything_else(text: str) -> None:
    try:
        out = normalize_recovery_code(text, length=12)
    except MalformedInput:
        return
    assert len(out) == 12
    assert set(out) <= set(ALPHABET)


class TestRecoveryContract(AuthenticatorContract):
    @pytest.fixture
    def authenticator(self, clock: FixedClock) -> RecoveryCodeAuthenticator:
        recovery = make(clock)
        recovery.generate("alice")
        return recovery

    @pytest.fixture
    def subject(self) -> str:
        return "alice"

    def good_response(self, authenticator: Any, challenge: Challenge) -> str:
        # The contract needs fresh codes: issue a new set each time (the old one dies).
        codes: tuple[str, ...] = authenticator.generate("alice").codes
        return codes[0]

    def bad_response(self, authenticator: Any, challenge: Challenge) -> str:
        return "0000-0000-0000"

    def secrets(self, authenticator: Any, subject: str) -> list[str]:
        return []

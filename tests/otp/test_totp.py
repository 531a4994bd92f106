"""TOTP through the public authenticator: RFC 6238 vectors, windows, replay, drift, enrollment."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.audit import AuditAction, MemoryAuditLog, Outcome
from macnss_auth.authenticator import AssuranceLevel, Challenge, ClientContext
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeNotFound,
    ChallengeUsed,
    ConfigurationError,
    InvalidCode,
    MalformedInput,
    NotEnrolled,
    Reason,
    TokenReplayed,
)
from macnss_auth.otp.enrollment import OtpParameters
from macnss_auth.otp.totp import TotpAuthenticator, time_step
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.testing import FixedClock
from macnss_auth.testing.contract import AuthenticatorContract
from macnss_auth.testing.races import outcome_name, race_threads

from .otp_helpers import SECRET, T0, make_hotp, make_totp, totp_code
from .rfc_vectors import TotpVector, totp_vectors

VECTORS = totp_vectors()


def _id(v: TotpVector) -> str:
    return f"{v.algorithm}-{v.time}"


@pytest.mark.parametrize("vector", VECTORS, ids=_id)
def test_rfc6238_vector_confirms_an_enrollment(vector: TotpVector) -> None:
    clock = FixedClock.at(vector.time)
    params = OtpParameters(algorithm=vector.algorithm, digits=8, period=30)
    totp = make_totp(clock, parameters=params)
    totp.enroll("alice", secret=vector.secret)
    result = totp.confirm("alice", vector.code)
    assert result.details["step"] == str(vector.step)
    assert result.details["drift"] == "0"
    assert time_step(clock.now(), 30) == vector.step


@pytest.mark.parametrize("vector", VECTORS, ids=_id)
def test_rfc6238_vector_verifies_through_begin_and_verify(vector: TotpVector) -> None:
    # Confirm one step earlier with a code from plain pyotp (window 0, so that
    # step is not the published one), then verify the published code.
    clock = FixedClock.at(vector.time - 30)
    params = OtpParameters(algorithm=vector.algorithm, digits=8)
    totp = make_totp(clock, parameters=params, window=0)
    totp.enroll("alice", secret=vector.secret)
    totp.confirm(
        "alice", totp_code(vector.secret, clock.now(), algorithm=vector.algorithm, digits=8)
    )
    clock.set(dt.datetime.fromtimestamp(vector.time, tz=dt.timezone.utc))
    challenge = totp.begin("alice")
    result = totp.verify(challenge, vector.code)
    assert result.subject == "alice"
    assert result.method == "totp"
    assert result.assurance is AssuranceLevel.SUBSTANTIAL
    assert result.details["step"] == str(vector.step)
    with pytest.raises(TokenReplayed):
        totp.verify(totp.begin("alice"), vector.code)


@pytest.mark.parametrize("vector", [v for v in VECTORS if v.algorithm == "SHA1"], ids=_id)
def test_six_digit_codes_are_the_last_six_digits(vector: TotpVector) -> None:
    totp = make_totp(FixedClock.at(vector.time))
    totp.enroll("alice", secret=vector.secret)
    assert totp.confirm("alice", vector.code[-6:]).details["step"] == str(vector.step)


def test_leading_zero_codes_stay_text() -> None:
    vector = next(v for v in VECTORS if v.code.startswith("0"))
    totp = make_totp(FixedClock.at(vector.time), parameters=OtpParameters(digits=8))
    totp.enroll("alice", secret=vector.secret)
    # A digit code of the wrong length is a wrong code (test_otp_enumeration.py).
    with pytest.raises(InvalidCode):
        totp.confirm("alice", vector.code.lstrip("0"))
    assert totp.confirm("alice", vector.code[:4] + " - " + vector.code[4:]).subject == "alice"


# -- a confirmed enrollment on a fixed clock ------------------------------------


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock.at(T0)


@pytest.fixture
def audit() -> MemoryAuditLog:
    return MemoryAuditLog()


@pytest.fixture
def totp(clock: FixedClock, audit: MemoryAuditLog) -> TotpAuthenticator:
    authenticator = make_totp(clock, audit=audit)
    authenticator.enroll("alice", secret=SECRET)
    authenticator.confirm("alice", totp_code(SECRET, clock.now()))
    clock.advance(120)
    return authenticator


def code_at(clock: FixedClock, steps: int = 0) -> str:
    return totp_code(SECRET, clock.now().timestamp() + 30 * steps)


class TestTotpContract(AuthenticatorContract):
    @pytest.fixture
    def authenticator(self, totp: TotpAuthenticator) -> TotpAuthenticator:
        return totp

    @pytest.fixture
    def subject(self) -> str:
        return "alice"

    def good_response(self, authenticator: Any, challenge: Challenge) -> str:
        return totp_code(SECRET, challenge.created_at)

    def bad_response(self, authenticator: Any, challenge: Challenge) -> str:
        good = totp_code(SECRET, challenge.created_at)
        return f"{(int(good) + 1) % 1_000_000:06d}"

    def secrets(self, authenticator: Any, subject: str) -> list[str]:
        return [SECRET.decode(), SECRET.hex(), "GEZDGNBVGY3TQOJQ"]


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_window_accepts_one_step_either_side(
    totp: TotpAuthenticator, clock: FixedClock, offset: int
) -> None:
    result = totp.verify_code("alice", code_at(clock, offset))
    assert result.details["drift"] == str(offset)
    assert totp.drift("alice") == offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_window_refuses_codes_further_away(
    totp: TotpAuthenticator, clock: FixedClock, offset: int
) -> None:
    with pytest.raises(InvalidCode):
        totp.verify_code("alice", code_at(clock, offset))


def test_a_wider_window_is_configurable(clock: FixedClock) -> None:
    totp = make_totp(clock, window=3)
    totp.enroll("alice", secret=SECRET)
    totp.confirm("alice", code_at(clock, -3))
    assert totp.verify_code("alice", code_at(clock, 3)).details["drift"] == "3"
    with pytest.raises(ConfigurationError):
        make_totp(clock, window=11)


def test_a_step_at_or_below_the_last_accepted_is_replayed(
    totp: TotpAuthenticator, clock: FixedClock
) -> None:
    totp.verify_code("alice", code_at(clock, 1))
    # The current step's code is valid, but below the accepted step +1.
    with pytest.raises(TokenReplayed) as info:
        totp.verify_code("alice", code_at(clock))
    assert info.value.reason is Reason.REPLAYED
    with pytest.raises(TokenReplayed):
        totp.verify_code("alice", code_at(clock, 1))
    clock.advance(60)
    assert totp.verify_code("alice", code_at(clock)).details["drift"] == "0"


def test_drift_is_tracked_per_enrollment(totp: TotpAuthenticator, clock: FixedClock) -> None:
    assert totp.drift("alice") == 0  # from the confirmation
    totp.verify_code("alice", code_at(clock, 1))
    assert totp.drift("alice") == 1
    clock.advance(90)
    totp.verify_code("alice", code_at(clock, -1))
    assert totp.drift("alice") == -1
    assert totp.drift("bob") is None


def test_threads_race_for_one_code_and_exactly_one_wins(
    totp: TotpAuthenticator, clock: FixedClock
) -> None:
    for _ in range(20):
        clock.advance(30)
        code = code_at(clock)
        outcomes = race_threads([functools.partial(totp.verify_code, "alice", code)] * 8)
        assert sorted(outcome_name(o) for o in outcomes) == ["TokenReplayed"] * 7 + ["ok"]


def test_wrong_and_malformed_codes(totp: TotpAuthenticator, clock: FixedClock) -> None:
    with pytest.raises(InvalidCode) as info:
        totp.verify_code("alice", "000000" if code_at(clock) != "000000" else "000001")
    assert info.value.remaining_attempts is not None
    for bad in ("12345a", "12.3456", "\u0661\u0662\u0663x\u0665\u0666"):
        with pytest.raises(MalformedInput):
            totp.verify_code("alice", bad)
    # A digit code of the wrong length is a wrong code (test_otp_enumeration.py);
    # one no enrollment can have is malformed.
    with pytest.raises(InvalidCode):
        totp.verify_code("alice", "1234567")
    with pytest.raises(MalformedInput, match="6 to 8 digits"):
        totp.verify_code("alice", "12345")
    with pytest.raises(MalformedInput):
        totp.verify_code("alice", 123456)  # type: ignore[arg-type]


def test_codes_with_spaces_dashes_and_arabic_digits(
    totp: TotpAuthenticator, clock: FixedClock
) -> None:
    code = code_at(clock)
    arabic = "".join(chr(0x0660 + int(d)) for d in code)
    assert totp.verify_code("alice", arabic).subject == "alice"
    clock.advance(30)
    code = code_at(clock)
    assert totp.verify_code("alice", f" {code[:3]}-{code[3:]} ").subject == "alice"


def test_unknown_subject_looks_like_a_wrong_code(
    totp: TotpAuthenticator, clock: FixedClock, audit: MemoryAuditLog
) -> None:
    known = totp.begin("alice")
    unknown = totp.begin("nobody")
    assert known.to_dict().keys() == unknown.to_dict().keys()
    assert known.expires_at - known.created_at == unknown.expires_at - unknown.created_at
    assert (known.hint, dict(known.data)) == (unknown.hint, dict(unknown.data))
    with pytest.raises(InvalidCode) as info:
        totp.verify(unknown, code_at(clock))
    assert info.value.remaining_attempts is not None
    with pytest.raises(InvalidCode):
        totp.verify_code("nobody", code_at(clock))
    assert audit.events[-1].reason == Reason.INVALID_CODE.value


def test_a_challenge_burns_after_its_attempts(clock: FixedClock) -> None:
    totp = make_totp(clock)
    totp.enroll("alice", secret=SECRET)
    totp.confirm("alice", code_at(clock))
    clock.advance(60)
    challenge = totp.begin("alice")
    wrong = f"{(int(code_at(clock)) + 5) % 1_000_000:06d}"
    for _ in range(5):
        with pytest.raises(InvalidCode):
            totp.verify(challenge, wrong)
    with pytest.raises(ChallengeUsed) as info:
        totp.verify(challenge, code_at(clock))
    assert info.value.reason is Reason.ATTEMPTS_EXHAUSTED


def test_a_challenge_of_another_method_is_not_found(
    totp: TotpAuthenticator, clock: FixedClock
) -> None:
    store = MemoryStore()
    totp2 = make_totp(clock, store=store)
    hotp = make_hotp(clock, store=store)
    with pytest.raises(ChallengeNotFound):
        totp2.verify(hotp.begin("alice"), "123456")


# -- enrollment -----------------------------------------------------------------


def test_enrollment_generates_a_fresh_secret_and_is_pending(clock: FixedClock) -> None:
    totp = make_totp(clock)
    provisioning = totp.enroll("alice")
    assert len(provisioning.secret) == 20
    assert provisioning.secret_base32 in provisioning.uri
    assert provisioning.secret_base32 not in repr(provisioning)
    assert not totp.is_enrolled("alice")
    code = totp_code(provisioning.secret.reveal(), clock.now())
    with pytest.raises(InvalidCode):
        totp.verify_code("alice", code)  # not confirmed yet
    result = totp.confirm("alice", code)
    assert result.audit_event_id is not None
    assert totp.is_enrolled("alice")
    with pytest.raises(NotEnrolled):
        totp.confirm("alice", code)  # nothing pending any more
    other = totp.enroll("bob")
    assert other.secret != provisioning.secret


@pytest.mark.parametrize(("algorithm", "size"), [("SHA1", 20), ("SHA256", 32), ("SHA512", 64)])
def test_generated_secrets_match_the_hash(clock: FixedClock, algorithm: str, size: int) -> None:
    totp = make_totp(clock, parameters=OtpParameters(algorithm=algorithm, digits=7, period=60))
    provisioning = totp.enroll("alice")
    assert len(provisioning.secret) == size
    assert f"algorithm={algorithm}" in provisioning.uri
    code = totp_code(
        provisioning.secret.reveal(), clock.now(), algorithm=algorithm, digits=7, period=60
    )
    assert totp.confirm("alice", code).details["step"] == str(time_step(clock.now(), 60))


def test_unconfirmed_enrollments_expire(clock: FixedClock) -> None:
    totp = make_totp(clock)
    provisioning = totp.enroll("alice")
    clock.advance(900)
    with pytest.raises(NotEnrolled):
        totp.confirm("alice", totp_code(provisioning.secret.reveal(), clock.now()))


def test_reenrolling_keeps_the_old_phone_until_the_new_one_confirms(
    totp: TotpAuthenticator, clock: FixedClock
) -> None:
    new = totp.enroll("alice")
    assert totp.verify_code("alice", code_at(clock)).subject == "alice"
    clock.advance(30)
    totp.confirm("alice", totp_code(new.secret.reveal(), clock.now()))
    clock.advance(30)
    with pytest.raises(InvalidCode):
        totp.verify_code("alice", code_at(clock))
    assert totp.verify_code("alice", totp_code(new.secret.reveal(), clock.now())).subject == "alice"


def test_given_secrets_are_checked(clock: FixedClock) -> None:
    totp = make_totp(clock)
    with pytest.raises(ConfigurationError):
        totp.enroll("alice", secret=b"short")
    with pytest.raises(MalformedInput):
        totp.enroll("alice", secret="not base32 at all!")
    provisioning = totp.enroll("alice", secret="GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ")
    assert provisioning.secret.reveal() == SECRET
    with pytest.raises(ConfigurationError):
        totp.enroll("alice", account="a:b")


def test_unenroll(totp: TotpAuthenticator, clock: FixedClock) -> None:
    assert totp.unenroll("alice")
    assert not totp.unenroll("alice")
    with pytest.raises(InvalidCode):
        totp.verify_code("alice", code_at(clock))


# -- audit ------------------------------------------------------------------------


def test_every_step_is_audited_without_secrets(clock: FixedClock) -> None:
    audit = MemoryAuditLog()
    totp = make_totp(clock, audit=audit)
    context = ClientContext(client_id="kiosk-7", ip="127.0.0.1")
    provisioning = totp.enroll("alice", context=context)
    first = totp_code(provisioning.secret.reveal(), clock.now())
    totp.confirm("alice", first, context=context)
    clock.advance(60)
    challenge = totp.begin("alice", context=context)
    second = totp_code(provisioning.secret.reveal(), clock.now())
    with pytest.raises(InvalidCode):
        totp.verify(challenge, f"{(int(second) + 1) % 1_000_000:06d}", context=context)
    result = totp.verify(challenge, second, context=context)
    actions = [(e.action, e.outcome) for e in audit.events]
    assert actions == [
        (AuditAction.ENROLL, Outcome.SUCCESS),
        (AuditAction.CONFIRM, Outcome.SUCCESS),
        (AuditAction.BEGIN, Outcome.INFO),
        (AuditAction.VERIFY, Outcome.FAILURE),
        (AuditAction.VERIFY, Outcome.SUCCESS),
    ]
    assert result.audit_event_id == str(len(audit.events))
    assert audit.events[-1].details["drift"] == "0"
    assert all(e.client == context and e.subject == "alice" for e in audit.events)
    text = repr(audit.events) + repr(audit.records())
    for secret in (provisioning.secret_base32, provisioning.secret.reveal().hex(), first, second):
        assert secret not in text


def test_secret_is_sealed_in_the_store(clock: FixedClock) -> None:
    keyring = Keyring.generate()
    store = MemoryStore(keyring=keyring)
    totp = make_totp(clock, store=store)
    totp.enroll("alice", secret=SECRET)
    other = make_totp(clock, store=MemoryStore(keyring=Keyring.generate()))
    assert not other.is_enrolled("alice")
    assert "12345678901234567890" not in repr(store.__dict__)


def test_repr_names_no_secret(totp: TotpAuthenticator) -> None:
    assert "CNSS" in repr(totp)
    assert SECRET.decode() not in repr(totp)


def test_bad_configuration_is_refused(clock: FixedClock) -> None:
    with pytest.raises(ConfigurationError):
        TotpAuthenticator(store=MemoryStore(), audit=MemoryAuditLog(), issuer="a:b")
    with pytest.raises(ConfigurationError):
        TotpAuthenticator(store=MemoryStore(), audit=MemoryAuditLog(), challenge_ttl=0)
    with pytest.raises(ConfigurationError):
        OtpParameters(digits=9)
    with pytest.raises(ConfigurationError):
        OtpParameters(period=0)


@settings(max_examples=100)
@given(response=st.one_of(st.text(max_size=40), st.integers(), st.none(), st.binary(max_size=8)))
def test_any_response_is_a_library_error(response: object) -> None:
    clock = FixedClock.at(T0)
    totp = make_totp(clock)
    totp.enroll("alice", secret=SECRET)
    totp.confirm("alice", code_at(clock, -1))
    with pytest.raises((MalformedInput, AuthenticationFailed)):
        totp.verify(totp.begin("alice"), response)  # type: ignore[arg-type]
    with pytest.raises((MalformedInput, AuthenticationFailed)):
        totp.verify_code("nobody", response)  # type: ignore[arg-type]


@settings(max_examples=50)
@given(challenge_id=st.text(max_size=60))
def test_any_challenge_id_is_refused_cleanly(challenge_id: str) -> None:
    totp = make_totp(FixedClock.at(T0))
    with pytest.raises(ChallengeNotFound):
        totp.verify(challenge_id, "123456")

"""HOTP through the public authenticator: RFC 4226 vectors, look-ahead, resync, replay."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from macnss_auth.audit import AuditAction, MemoryAuditLog, Outcome
from macnss_auth.authenticator import Challenge
from macnss_auth.errors import ConfigurationError, InvalidCode, MalformedInput, TokenReplayed
from macnss_auth.otp.enrollment import OtpParameters
from macnss_auth.otp.hotp import MAX_LOOK_AHEAD, REPLAY_LOOK_BEHIND, HotpAuthenticator
from macnss_auth.store import MemoryStore
from macnss_auth.testing import FixedClock
from macnss_auth.testing.contract import AuthenticatorContract
from macnss_auth.testing.races import outcome_name, race_threads

from .otp_helpers import SECRET, T0, hotp_code, make_hotp
from .rfc_vectors import hotp_vectors

VECTORS = hotp_vectors()


def test_rfc4226_vectors_in_sequence() -> None:
    hotp = make_hotp(FixedClock.at(T0))
    hotp.enroll("alice", secret=VECTORS[0].secret)
    first, *rest = VECTORS
    assert hotp.confirm("alice", first.code).details["counter"] == "0"
    for vector in rest:
        result = hotp.verify(hotp.begin("alice"), vector.code)
        assert result.details == {"counter": str(vector.counter), "skipped": "0"}
        assert hotp.counter("alice") == vector.counter + 1
    # Used codes fall behind the counter: the last few are reported as
    # replayed, older ones are simply wrong.
    for vector in VECTORS:
        recent = vector.counter >= 10 - REPLAY_LOOK_BEHIND
        with pytest.raises(TokenReplayed if recent else InvalidCode):
            hotp.verify_code("alice", vector.code)


@pytest.mark.parametrize("vector", VECTORS[1:], ids=lambda v: f"count{v.counter}")
def test_rfc4226_vector_within_the_look_ahead(vector: Any) -> None:
    hotp = make_hotp(FixedClock.at(T0))
    hotp.enroll("alice", secret=vector.secret)
    hotp.confirm("alice", VECTORS[0].code)
    result = hotp.verify_code("alice", vector.code)
    assert result.details["counter"] == str(vector.counter)
    assert result.details["skipped"] == str(vector.counter - 1)
    # Every code at or below the matched counter is now refused.
    for earlier in VECTORS[: vector.counter + 1]:
        recent = earlier.counter > vector.counter - REPLAY_LOOK_BEHIND
        with pytest.raises(TokenReplayed if recent else InvalidCode):
            hotp.verify_code("alice", earlier.code)


def test_look_ahead_is_bounded_and_configurable() -> None:
    clock = FixedClock.at(T0)
    hotp = make_hotp(clock, look_ahead=2)
    hotp.enroll("alice", secret=SECRET)
    hotp.confirm("alice", hotp_code(SECRET, 0))
    with pytest.raises(InvalidCode):
        hotp.verify_code("alice", hotp_code(SECRET, 4))  # counters 1..3 only
    assert hotp.verify_code("alice", hotp_code(SECRET, 3)).details["counter"] == "3"
    with pytest.raises(ConfigurationError):
        make_hotp(clock, look_ahead=MAX_LOOK_AHEAD + 1)
    with pytest.raises(ConfigurationError):
        make_hotp(clock, look_ahead=-1)


def test_default_look_ahead_is_ten() -> None:
    hotp = make_hotp(FixedClock.at(T0))
    hotp.enroll("alice", secret=SECRET)
    hotp.confirm("alice", hotp_code(SECRET, 0))
    with pytest.raises(InvalidCode):
        hotp.verify_code("alice", hotp_code(SECRET, 12))
    assert hotp.verify_code("alice", hotp_code(SECRET, 11)).details["skipped"] == "10"


def test_resync_with_two_consecutive_codes() -> None:
    audit = MemoryAuditLog()
    hotp = make_hotp(FixedClock.at(T0), audit=audit)
    hotp.enroll("alice", secret=SECRET)
    hotp.confirm("alice", hotp_code(SECRET, 0))
    # The token was pressed 50 times without logging in.
    with pytest.raises(InvalidCode):
        hotp.verify_code("alice", hotp_code(SECRET, 50))
    with pytest.raises(InvalidCode):  # not consecutive
        hotp.resync("alice", hotp_code(SECRET, 50), hotp_code(SECRET, 52))
    result = hotp.resync("alice", hotp_code(SECRET, 50), hotp_code(SECRET, 51))
    assert result.details["counter"] == "51"
    assert hotp.counter("alice") == 52
    assert audit.events[-1].action is AuditAction.RESYNC
    assert audit.events[-1].outcome is Outcome.SUCCESS
    with pytest.raises(TokenReplayed):
        hotp.verify_code("alice", hotp_code(SECRET, 51))
    assert hotp.verify_code("alice", hotp_code(SECRET, 52)).details["skipped"] == "0"
    with pytest.raises(InvalidCode):  # beyond the resync window of 100
        hotp.resync("alice", hotp_code(SECRET, 200), hotp_code(SECRET, 201))
    with pytest.raises(MalformedInput):
        hotp.resync("alice", "12a456", "123456")


def test_resync_for_an_unknown_subject_fails_like_a_wrong_code() -> None:
    hotp = make_hotp(FixedClock.at(T0))
    with pytest.raises(InvalidCode):
        hotp.resync("nobody", hotp_code(SECRET, 0), hotp_code(SECRET, 1))


def test_migrated_token_starts_at_its_counter() -> None:
    hotp = make_hotp(FixedClock.at(T0))
    provisioning = hotp.enroll("alice", secret=SECRET, counter=5)
    assert "counter=5" in provisioning.uri
    # Counters before the migrated one were used elsewhere: never accepted.
    with pytest.raises(TokenReplayed):
        hotp.confirm("alice", hotp_code(SECRET, 4))
    with pytest.raises(InvalidCode):
        hotp.confirm("alice", hotp_code(SECRET, 1))
    assert hotp.confirm("alice", hotp_code(SECRET, 5)).details["counter"] == "5"
    with pytest.raises(ConfigurationError):
        hotp.enroll("bob", counter=-1)


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA512"])
def test_other_hashes_and_lengths(algorithm: str) -> None:
    hotp = make_hotp(FixedClock.at(T0))
    provisioning = hotp.enroll("alice", parameters=OtpParameters(algorithm=algorithm, digits=8))
    secret = provisioning.secret.reveal()
    code = hotp_code(secret, 0, algorithm=algorithm, digits=8)
    assert hotp.confirm("alice", code).details["counter"] == "0"


def test_threads_race_for_one_counter() -> None:
    hotp = make_hotp(FixedClock.at(T0))
    hotp.enroll("alice", secret=SECRET)
    hotp.confirm("alice", hotp_code(SECRET, 0))
    for counter in range(1, 21):
        code = hotp_code(SECRET, counter)
        # A loser that matched before the winner advanced loses the
        # compare-and-set; one that read the counter after it finds the code
        # just behind it. Both are told the code was replayed.
        outcomes = race_threads([functools.partial(hotp.verify_code, "alice", code)] * 8)
        assert sorted(outcome_name(o) for o in outcomes) == ["TokenReplayed"] * 7 + ["ok"]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock.at(T0)


class TestHotpContract(AuthenticatorContract):
    @pytest.fixture
    def authenticator(self, clock: FixedClock) -> HotpAuthenticator:
        hotp = make_hotp(clock, store=MemoryStore())
        hotp.enroll("alice", secret=SECRET)
        hotp.confirm("alice", hotp_code(SECRET, 0))
        return hotp

    @pytest.fixture
    def subject(self) -> str:
        return "alice"

    def good_response(self, authenticator: Any, challenge: Challenge) -> str:
        return hotp_code(SECRET, authenticator.counter("alice"))

    def bad_response(self, authenticator: Any, challenge: Challenge) -> str:
        window = {hotp_code(SECRET, c) for c in range(1, 12)}
        return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in window)

    def secrets(self, authenticator: Any, subject: str) -> list[str]:
        return [SECRET.decode(), SECRET.hex(), "GEZDGNBVGY3TQOJQ"]

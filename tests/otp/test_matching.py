"""The pure TOTP/HOTP decision: RFC vectors in, frozen typed records out, no store, no clock."""

from __future__ import annotations

import base64
import datetime as dt

import attrs
import hypothesis
import pyotp
import pytest
from hypothesis import strategies as st

from macnss_auth.errors import ConfigurationError, MalformedInput
from macnss_auth.otp.enrollment import OtpAlgorithm, OtpParameters
from macnss_auth.otp.matching import (
    HotpMatch,
    TotpMatch,
    find_counter,
    match_hotp,
    match_totp,
    otp_codes,
    time_step,
    totp_offsets,
)
from macnss_auth.secret import Secret
from tests.otp.rfc_vectors import TotpVector, hotp_vectors, totp_vectors

SIX = OtpParameters()


def _at(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


@pytest.mark.parametrize("vector", totp_vectors(), ids=lambda v: f"{v.algorithm}-{v.time}")
def test_totp_vectors_match_their_step_with_no_drift(vector: TotpVector) -> None:
    params = OtpParameters(algorithm=OtpAlgorithm.parse(vector.algorithm), digits=8)
    match = match_totp(
        secret=Secret(vector.secret),
        parameters=params,
        code=vector.code,
        at=_at(vector.time),
        window=1,
    )
    assert match == TotpMatch(step=vector.step, drift=0)
    assert match.advance_to == vector.step
    assert match.details() == {"step": str(vector.step), "drift": "0"}


def test_totp_reports_drift_as_an_int_and_refuses_outside_the_window() -> None:
    vector = totp_vectors()[0]
    params = OtpParameters(digits=8)
    later = _at(vector.time + 30)  # the code is one step behind now
    match = match_totp(
        secret=Secret(vector.secret), parameters=params, code=vector.code, at=later, window=1
    )
    assert match is not None
    assert (match.step, match.drift, match.replayed) == (vector.step, -1, False)
    assert (
        match_totp(
            secret=Secret(vector.secret), parameters=params, code=vector.code, at=later, window=0
        )
        is None
    )


def test_totp_match_is_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        TotpMatch(step=1, drift=0).step = 2  # type: ignore[misc]


def test_hotp_match_ahead_and_behind() -> None:
    vectors = hotp_vectors()
    secret = Secret(vectors[0].secret)
    # Counter 5 expected; the code of counter 7 matches two counters ahead.
    match = match_hotp(secret=secret, parameters=SIX, code=vectors[7].code, counter=5, look_ahead=3)
    assert match == HotpMatch(counter=7, skipped=2)
    assert match.advance_to == 8
    assert match.details() == {"counter": "7", "skipped": "2"}
    # The code of counter 3 was used already: replayed, never an acceptance.
    behind = match_hotp(
        secret=secret, parameters=SIX, code=vectors[3].code, counter=5, look_ahead=3
    )
    assert behind == HotpMatch(counter=3, skipped=None, replayed=True)
    assert behind.details() == {"counter": "3"}
    # Beyond the look-ahead, and further behind than the look-behind: no match.
    assert (
        match_hotp(secret=secret, parameters=SIX, code=vectors[9].code, counter=5, look_ahead=3)
        is None
    )
    assert (
        match_hotp(secret=secret, parameters=SIX, code=vectors[1].code, counter=5, look_ahead=3)
        is None
    )


def test_codes_are_normalized_and_bad_input_is_a_library_error() -> None:
    vector = hotp_vectors()[0]
    code = f"{vector.code[:3]} {vector.code[3:]}"
    match = match_hotp(
        secret=Secret(vector.secret), parameters=SIX, code=code, counter=0, look_ahead=0
    )
    assert match == HotpMatch(counter=0, skipped=0)
    with pytest.raises(MalformedInput):
        match_hotp(
            secret=Secret(vector.secret), parameters=SIX, code="12ab56", counter=0, look_ahead=0
        )


def test_offsets_are_nearest_first_and_time_step_is_exact() -> None:
    assert totp_offsets(2) == (0, -1, 1, -2, 2)
    assert time_step(_at(59), 30) == 1
    assert time_step(_at(60), 30) == 2


def test_matching_takes_keywords_only() -> None:
    vector = hotp_vectors()[0]
    with pytest.raises(TypeError):
        match_hotp(Secret(vector.secret), SIX, vector.code, 0, 0)  # type: ignore[call-arg]


# pyotp is the reference for the codes match_totp and match_hotp compute themselves.
@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    secret=st.binary(min_size=16, max_size=80),
    counter=st.one_of(st.integers(0, 2**40), st.integers(0, 2**64 - 1)),
    digits=st.sampled_from([6, 7, 8]),
    algorithm=st.sampled_from(list(OtpAlgorithm)),
)
def test_codes_equal_pyotp_for_random_secrets_counters_digits_algorithms(
    secret: bytes, counter: int, digits: int, algorithm: OtpAlgorithm
) -> None:
    params = OtpParameters(algorithm=algorithm, digits=digits)
    reference = pyotp.HOTP(
        base64.b32encode(secret).decode(), digits=digits, digest=algorithm.digest
    ).at(counter)
    assert otp_codes(Secret(secret), params, [counter]) == [reference]
    assert (
        find_counter(secret=Secret(secret), parameters=params, code=reference, counters=[counter])
        == 0
    )


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(
    secret=st.binary(min_size=16, max_size=64),
    moment=st.integers(120, 2**34),  # pyotp refuses steps below 0
    digits=st.sampled_from([6, 7, 8]),
    algorithm=st.sampled_from(list(OtpAlgorithm)),
    period=st.sampled_from([15, 30, 60]),
    offset=st.integers(-1, 1),
)
def test_match_totp_agrees_with_pyotp_at_random_times(  # noqa: PLR0917 (hypothesis arguments)
    secret: bytes, moment: int, digits: int, algorithm: OtpAlgorithm, period: int, offset: int
) -> None:
    totp = pyotp.TOTP(
        base64.b32encode(secret).decode(), digits=digits, digest=algorithm.digest, interval=period
    )
    code = totp.at(moment + offset * period)
    params = OtpParameters(algorithm=algorithm, digits=digits, period=period)
    match = match_totp(
        secret=Secret(secret), parameters=params, code=code, at=_at(moment), window=1
    )
    # Another step of the window may share the code (1 in 10**digits); never none.
    assert match is not None
    assert totp.at(match.step * period) == code
    assert totp.verify(code, for_time=moment, valid_window=1)


def test_counters_outside_eight_bytes_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        otp_codes(Secret(b"k" * 20), SIX, [2**64])
    with pytest.raises(ConfigurationError):
        otp_codes(Secret(b"k" * 20), SIX, [-1])

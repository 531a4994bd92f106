from __future__ import annotations

import contextlib
import datetime as dt
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from macnss_auth import AssuranceLevel, AuthResult, Challenge, MacnssAuthError, MalformedInput
from macnss_auth.testing import FixedRandom

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.timezone.utc)


def make_challenge(**changes: object) -> Challenge:
    fields: dict[str, object] = {
        "id": "abc",
        "subject": "citizen-1",
        "method": "sms",
        "created_at": T0,
        "expires_at": T0 + dt.timedelta(minutes=5),
        "hint": "+212 6•• ••• •12",
        "data": {"nonce": "00ff"},
    }
    fields.update(changes)
    return Challenge(**fields)  # type: ignore[arg-type]


def test_challenge_round_trips_through_json() -> None:
    challenge = make_challenge()
    assert Challenge.from_json(challenge.to_json()) == challenge
    assert json.loads(challenge.to_json())["hint"] == "+212 6•• ••• •12"


def test_challenge_data_is_read_only() -> None:
    challenge = make_challenge()
    with pytest.raises(TypeError):
        challenge.data["nonce"] = "11"  # type: ignore[index]


def test_expiry_is_inclusive_of_the_end() -> None:
    challenge = make_challenge()
    assert not challenge.is_expired(T0)
    assert challenge.is_expired(challenge.expires_at)


def test_new_ids_are_unique_and_url_safe() -> None:
    random = FixedRandom(1)
    ids = {Challenge.new_id(random) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 26 and i.isalnum() and i == i.lower() for i in ids)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "{}",
        '{"id": 1, "subject": "a", "method": "m", "created_at": "x", "expires_at": "y"}',
        (
            '{"id": "a", "subject": "a", "method": "m", "created_at": "2026-01-01T00:00:00",'
            ' "expires_at": "2026-01-01T00:05:00"}'
        ),
        (
            '{"id": "a", "subject": "a", "method": "m", "created_at": "2026-01-01T00:00:00+00:00",'
            ' "expires_at": "2026-01-01T00:05:00+00:00", "data": {"k": 1}}'
        ),
    ],
)
def test_malformed_challenges_raise_malformed_input(text: str) -> None:
    with pytest.raises(MalformedInput):
        Challenge.from_json(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)


@settings(max_examples=1000)
@given(
    st.dictionaries(
        st.sampled_from(["id", "subject", "method", "created_at", "expires_at", "hint", "data"]),
        json_values | st.just("2026-01-01T00:00:00+00:00"),
    )
)
def test_from_dict_raises_only_library_errors(value: dict[str, object]) -> None:
    with contextlib.suppress(MacnssAuthError):
        Challenge.from_dict(value)


@settings(max_examples=1000)
@given(st.binary(max_size=200))
@example(b"[" * 100_000)  # nested past the JSON parser's recursion limit (was RecursionError)
def test_from_json_raises_only_library_errors(raw: bytes) -> None:
    with contextlib.suppress(MacnssAuthError):
        Challenge.from_json(raw)


def test_assurance_levels_map_to_eidas_and_nist() -> None:
    assert [level.eidas for level in AssuranceLevel] == ["low", "substantial", "high"]
    assert AssuranceLevel.HIGH > AssuranceLevel.SUBSTANTIAL > AssuranceLevel.LOW
    assert AssuranceLevel.SUBSTANTIAL.nist_aal == 2


def test_auth_result_claims_are_frozen() -> None:
    result = AuthResult(
        subject="s",
        method="totp",
        authenticated_at=T0,
        assurance=AssuranceLevel.SUBSTANTIAL,
        claims={"name": "ERIKA"},
    )
    with pytest.raises(TypeError):
        result.claims["name"] = "MALLORY"  # type: ignore[index]

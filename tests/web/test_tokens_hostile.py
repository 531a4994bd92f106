"""Assertion checks against hostile key sets, odd claims and clocks a little apart."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt
import pytest

from macnss_auth import AssuranceLevel, AuthResult
from macnss_auth.testing import FixedClock
from macnss_auth.web import AssertionIssuer, InvalidAssertion, SigningKeys, verify_assertion

NOW = 1_800_000_000
ISS = "https://auth.example.ma"
AUD = "https://service.example.ma"


def signer() -> tuple[AssertionIssuer, FixedClock]:
    clock = FixedClock.at(NOW)
    keys = SigningKeys.generate(clock=clock)
    return AssertionIssuer(issuer=ISS, keys=keys, audiences=[AUD], clock=clock), clock


def token_of(issuer: AssertionIssuer) -> str:
    at = dt.datetime.fromtimestamp(NOW, dt.timezone.utc)
    return issuer.issue(
        AuthResult(subject="amina", method="sms", authenticated_at=at, assurance=AssuranceLevel.LOW)
    )


@pytest.mark.parametrize(
    "bend",
    [
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"crv": "P-384"},
        {"x": "!!!"},
        {"x": None},
        {"alg": "HS256"},
    ],
    ids=["rsa", "oct", "p384", "garbled-x", "no-x", "alg-hs256"],
)
def test_a_bad_key_in_the_key_set_is_an_invalid_assertion(bend: dict[str, Any]) -> None:
    # The JWKS comes over the network: whatever it holds under the token's kid,
    # the caller gets InvalidAssertion, never PyJWT's own exceptions.
    issuer, clock = signer()
    token = token_of(issuer)
    jwk = {**issuer.keys.jwks()["keys"][0], **bend}
    jwk = {k: v for k, v in jwk.items() if v is not None}
    with pytest.raises(InvalidAssertion):
        verify_assertion(token, keys={"keys": [jwk]}, issuer=ISS, audience=AUD, now=clock.now())


@pytest.mark.parametrize(
    ("claim", "value"),
    [("iat", "yesterday"), ("exp", "never"), ("auth_time", [1]), ("exp", float("inf"))],
)
def test_times_that_are_not_numbers_are_refused(claim: str, value: object) -> None:
    issuer, clock = signer()
    claims = jwt.decode(token_of(issuer), options={"verify_signature": False})
    claims[claim] = value
    key = issuer.keys.current
    forged = jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})
    with pytest.raises(InvalidAssertion, match="not numbers"):
        verify_assertion(forged, keys=issuer.keys, issuer=ISS, audience=AUD, now=clock.now())


def test_a_verifier_whose_clock_is_a_little_behind_accepts_a_fresh_token() -> None:
    issuer, clock = signer()
    token = token_of(issuer)
    behind = clock.now() - dt.timedelta(seconds=1)
    assert verify_assertion(token, keys=issuer.keys, issuer=ISS, audience=AUD, now=behind)
    # Far behind is still refused, and expiry is not stretched.
    with pytest.raises(InvalidAssertion, match="expired or not yet valid"):
        verify_assertion(token, keys=issuer.keys, issuer=ISS, audience=AUD,
                         now=clock.now() - dt.timedelta(seconds=60))  # fmt: skip
    with pytest.raises(InvalidAssertion, match="expired or not yet valid"):
        verify_assertion(token, keys=issuer.keys, issuer=ISS, audience=AUD,
                         now=clock.now() + dt.timedelta(seconds=issuer.lifetime))  # fmt: skip


def test_the_jwks_holds_public_members_only() -> None:
    # RFC 7518 §6.2.2: "d" is the private key; nothing but the public point and labels.
    issuer, _ = signer()
    rotated = issuer.keys.rotated(keep=2)
    for jwk in rotated.jwks()["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "y", "use", "alg", "kid"}
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")

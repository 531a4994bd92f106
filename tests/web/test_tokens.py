"""The assertion: claims, ES256 only, times from the injected clock, key rotation."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path

import attrs
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from macnss_auth import AssuranceLevel, AuthResult, ConfigurationError
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.web import (
    AssertionIssuer,
    InvalidAssertion,
    SigningKey,
    SigningKeys,
    verify_assertion,
)

NOW = 1_800_000_000
ISS = "https://auth.example.ma"
AUD = "https://service.example.ma"


def result(method: str = "totp", level: AssuranceLevel = AssuranceLevel.SUBSTANTIAL) -> AuthResult:
    at = dt.datetime.fromtimestamp(NOW, dt.timezone.utc)
    return AuthResult(subject="amina", method=method, authenticated_at=at, assurance=level)


def issuer(clock: FixedClock, keys: SigningKeys | None = None) -> AssertionIssuer:
    return AssertionIssuer(
        issuer=ISS, keys=keys or SigningKeys.generate(clock=clock), audiences=[AUD, "other"],
        clock=clock, random=FixedRandom(1), lifetime=60,
    )  # fmt: skip


def test_claims() -> None:
    clock = FixedClock.at(NOW + 2)
    token = issuer(clock).issue(result(), nonce="abc")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {
        "iss": ISS, "sub": "amina", "aud": AUD, "iat": NOW + 2, "exp": NOW + 62,
        "auth_time": NOW, "acr": "http://eidas.europa.eu/LoA/substantial",
        "amr": ["otp", "totp"], "nist_aal": 2, "jti": claims["jti"], "nonce": "abc",
    }  # fmt: skip
    assert "nonce" not in jwt.decode(
        issuer(clock).issue(result(), audience="other"), options={"verify_signature": False}
    )


def test_an_unconfigured_audience_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        issuer(FixedClock.at(NOW)).issue(result(), audience="https://evil.example")


def test_times_come_from_the_clock() -> None:
    clock = FixedClock.at(NOW)
    signer = issuer(clock)
    token = signer.issue(result())
    clock.advance(59)
    assert signer.verify(token, audience=AUD)["sub"] == "amina"
    clock.advance(1)
    with pytest.raises(InvalidAssertion, match="expired"):
        signer.verify(token, audience=AUD)
    with pytest.raises(InvalidAssertion, match="expired"):
        verify_assertion(token, keys=signer.keys, issuer=ISS, audience=AUD,
                         now=dt.datetime.fromtimestamp(NOW - 10, dt.timezone.utc))  # fmt: skip


def test_wrong_issuer_audience_signature_and_algorithm_fail() -> None:
    clock = FixedClock.at(NOW)
    signer = issuer(clock)
    token = signer.issue(result())
    for iss, aud in (("x", AUD), (ISS, "other")):
        with pytest.raises(InvalidAssertion):
            verify_assertion(token, keys=signer.keys, issuer=iss, audience=aud, now=clock.now())
    stranger = issuer(clock).keys
    with pytest.raises(InvalidAssertion, match="unknown signing key"):
        verify_assertion(token, keys=stranger, issuer=ISS, audience=AUD, now=clock.now())
    head, body, signature = token.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(InvalidAssertion):
        verify_assertion(f"{head}.{flipped}.{signature}", keys=signer.keys, issuer=ISS,
                         audience=AUD, now=clock.now())  # fmt: skip
    # alg=none and HS256 with the public key as the secret: refused before any key is used.
    none_header = (
        base64.urlsafe_b64encode(
            json.dumps({"alg": "none", "kid": signer.keys.current.kid}).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(InvalidAssertion, match="ES256"):
        verify_assertion(f"{none_header}.{body}.", keys=signer.keys, issuer=ISS, audience=AUD)
    with pytest.raises(InvalidAssertion):
        verify_assertion("not a token", keys=signer.keys, issuer=ISS, audience=AUD)


def test_rotation_publishes_every_key_and_the_newest_signs(tmp_path: Path) -> None:
    clock = FixedClock.at(NOW)
    first = SigningKeys.generate(clock=clock)
    old_token = issuer(clock, first).issue(result())
    clock.advance(3600)
    second = first.rotated(SigningKey.generate(clock=clock))
    signer = issuer(clock, second)
    new_token = signer.issue(result())
    jwks = second.jwks()
    kids = [k["kid"] for k in jwks["keys"]]
    assert kids == [second.current.kid, first.current.kid]
    assert jwt.get_unverified_header(new_token)["kid"] == second.current.kid
    at = dt.datetime.fromtimestamp(NOW + 30, dt.timezone.utc)
    assert verify_assertion(old_token, keys=jwks, issuer=ISS, audience=AUD, now=at)
    # A third rotation retires the first key: its tokens no longer verify.
    clock.advance(3600)
    third = second.rotated(SigningKey.generate(clock=clock))
    assert [k.kid for k in third.keys] == [second.current.kid, third.current.kid]
    with pytest.raises(InvalidAssertion):
        verify_assertion(old_token, keys=third.jwks(), issuer=ISS, audience=AUD, now=at)
    # Keys survive a restart, in order, and the file is private.
    third.save(tmp_path / "keys")
    loaded = SigningKeys.load(tmp_path / "keys")
    assert [k.kid for k in loaded.keys] == [k.kid for k in third.keys]
    assert all(p.stat().st_mode & 0o077 == 0 for p in (tmp_path / "keys").glob("*.pem"))
    assert SigningKeys.load_or_create(tmp_path / "keys").current.kid == third.current.kid


@pytest.mark.parametrize("stamp", ["99999999999999999", "9" * 30, "-99999999999", "9" * 200])
def test_a_key_file_with_an_impossible_time_stamp_is_a_configuration_error(
    tmp_path: Path, stamp: str
) -> None:
    # Past time_t, the stamp raised OverflowError or OSError instead of ConfigurationError.
    SigningKeys.generate(clock=FixedClock.at(NOW)).save(tmp_path / "keys")
    (saved,) = (tmp_path / "keys").glob("*.pem")
    saved.rename(saved.with_name(f"{stamp}-{saved.name.partition('-')[2]}"))
    with pytest.raises(ConfigurationError, match="not a signing key"):
        SigningKeys.load(tmp_path / "keys")


def test_the_kid_is_the_rfc7638_thumbprint() -> None:
    # RFC 7638 §3.1 uses an RSA key; for EC the members are crv, kty, x, y (§3.2).
    key = SigningKey.of(ec.derive_private_key(7, ec.SECP256R1()), dt.datetime.now(dt.timezone.utc))
    jwk = key.public_jwk()
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    assert canonical.startswith('{"crv":"P-256","kty":"EC","x":')
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=")
    assert key.kid == expected.decode()
    with pytest.raises(ConfigurationError):
        SigningKey.of(ec.generate_private_key(ec.SECP384R1()), dt.datetime.now(dt.timezone.utc))


def test_secrets_stay_out_of_reprs() -> None:
    keys = SigningKeys.generate()
    assert "private" not in repr(keys.current).lower()
    assert "BEGIN" not in repr(keys)


@pytest.mark.parametrize(
    ("backup_eligible", "attestation", "user_verified", "amr"),
    [
        ("true", "none", "true", ["swk", "mfa", "passkey"]),
        ("true", "trusted", "false", ["swk", "user", "passkey"]),
        ("false", "trusted", "true", ["hwk", "mfa", "passkey"]),
        ("false", "unverified", "true", ["pop", "mfa", "passkey"]),
        ("false", "none", "false", ["pop", "user", "passkey"]),
    ],
)
def test_a_passkey_amr_says_where_the_key_lives_and_which_factors(
    backup_eligible: str, attestation: str, user_verified: str, amr: list[str]
) -> None:
    passkey = attrs.evolve(
        result("passkey"),
        details={
            "backup_eligible": backup_eligible,
            "attestation": attestation,
            "user_verified": user_verified,
        },
    )
    token = issuer(FixedClock.at(NOW)).issue(passkey)
    assert jwt.decode(token, options={"verify_signature": False})["amr"] == amr
    # Without the flags (a result made by hand), the floor: possession of a key.
    bare = issuer(FixedClock.at(NOW)).issue(result("passkey"))
    assert jwt.decode(bare, options={"verify_signature": False})["amr"] == ["pop", "passkey"]

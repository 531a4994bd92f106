"""Active Authentication signatures: a real passport's answer, and both trailers and ECDSA."""

from __future__ import annotations

import json

import pytest

from macnss_auth.nfc.lds import parse_dg15
from macnss_auth.nfc.pki import (
    HashAlgorithm,
    PublicKeyInfo,
    SignatureInvalid,
    parse_public_key_info,
)
from macnss_auth.nfc.verify import verify_active_authentication
from macnss_auth.testing.pki import PrivateKey, active_authentication_sign, generate_key

from .conftest import VECTORS

CHALLENGE = bytes.fromhex("96302b0f3d7e7864")


def spki(key: PrivateKey) -> PublicKeyInfo:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 (local)

    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return parse_public_key_info(der)


def test_recorded_passport_answer() -> None:
    # gmrtd's TestDoActiveAuth, recorded from a real passport (RSA-1792, SHA-1 trailer BC).
    vector = json.loads((VECTORS / "icao9303" / "aa_gmrtd.json").read_text())
    key = parse_dg15(bytes.fromhex(vector["dg15"])).public_key
    signature = bytes.fromhex(vector["signature"])
    verify_active_authentication(key, bytes.fromhex(vector["challenge"]), signature)
    with pytest.raises(SignatureInvalid):
        verify_active_authentication(key, bytes(8), signature)
    with pytest.raises(SignatureInvalid):
        verify_active_authentication(key, bytes.fromhex(vector["challenge"]), signature[::-1])


@pytest.fixture(scope="module")
def rsa_key() -> PrivateKey:
    return generate_key("rsa", bits=1024)


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_rsa_trailers(rsa_key: PrivateKey, algorithm: HashAlgorithm) -> None:
    signature = active_authentication_sign(rsa_key, CHALLENGE, hash_algorithm=algorithm)
    verify_active_authentication(spki(rsa_key), CHALLENGE, signature)
    with pytest.raises(SignatureInvalid):
        verify_active_authentication(spki(rsa_key), CHALLENGE[:-1] + b"\x00", signature)


def test_rsa_wrong_length(rsa_key: PrivateKey) -> None:
    signature = active_authentication_sign(rsa_key, CHALLENGE)
    with pytest.raises(SignatureInvalid):
        verify_active_authentication(spki(rsa_key), CHALLENGE, signature[1:])
    with pytest.raises(SignatureInvalid):
        verify_active_authentication(spki(rsa_key), CHALLENGE, b"\xff" * len(signature))


@pytest.mark.parametrize(
    ("algorithm", "oid"),
    [
        (HashAlgorithm.SHA256, "1.2.840.10045.4.3.2"),
        (HashAlgorithm.SHA1, "1.2.840.10045.4.1"),
        (HashAlgorithm.SHA384, "0.4.0.127.0.7.1.1.4.1.4"),
    ],
)
def test_ecdsa_plain(algorithm: HashAlgorithm, oid: str) -> None:
    key = generate_key("ec")
    signature = active_authentication_sign(key, CHALLENGE, hash_algorithm=algorithm)
    assert len(signature) == 64
    verify_active_authentication(spki(key), CHALLENGE, signature, ecdsa_algorithm=oid)
    with pytest.raises(SignatureInvalid):
        verify_active_authentication(spki(key), bytes(8), signature, ecdsa_algorithm=oid)
    with pytest.raises(SignatureInvalid):
        verify_active_authentication(spki(key), CHALLENGE, signature[:-1], ecdsa_algorithm=oid)

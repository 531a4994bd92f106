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


def test_an_aa_key_on_a_curve_this_library_lacks_is_not_performed_not_failed() -> None:
    """Issue 16 item 2: an AA that cannot be checked is no evidence against the chip."""
    import datetime as dt  # noqa: PLC0415 (local)

    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    from macnss_auth.nfc.lds import encode_dg1, encode_dg15  # noqa: PLC0415
    from macnss_auth.nfc.pki import TrustStore  # noqa: PLC0415
    from macnss_auth.nfc.verify import (  # noqa: PLC0415
        CheckStatus,
        ChipAuthenticity,
        DocumentVerification,
        VerificationPolicy,
        inspect_document,
    )
    from macnss_auth.testing import FixedClock  # noqa: PLC0415
    from macnss_auth.testing.pki import TestPki, make_td1_mrz, sign_sod  # noqa: PLC0415

    now = dt.datetime(2027, 1, 15, tzinfo=dt.timezone.utc)
    pki = TestPki.create(now=now, key_type="ec")
    k1 = ec.generate_private_key(ec.SECP256K1()).public_key()
    dg15 = encode_dg15(
        k1.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    groups = {1: encode_dg1(make_td1_mrz()), 15: dg15}
    store = TrustStore()
    store.add_csca(pki.csca.der)
    clock = FixedClock.at(now.timestamp())

    def run(chip: ChipAuthenticity) -> DocumentVerification:
        return inspect_document(
            data_groups=groups,
            sod=sign_sod(groups, pki.ds, signing_time=now),
            trust_store=store,
            clock=clock,
            policy=VerificationPolicy(chip_authenticity=chip),
            aa_challenge=CHALLENGE,
            aa_signature=bytes(64),
        )

    lenient = run(ChipAuthenticity.NONE)
    check = lenient.check("active_authentication")
    assert check.status is CheckStatus.NOT_PERFORMED
    assert "not supported" in check.reason
    assert lenient.genuine
    strict = run(ChipAuthenticity.ACTIVE_AUTHENTICATION)
    assert not strict.genuine
    assert "not supported" in strict.verdict_reason

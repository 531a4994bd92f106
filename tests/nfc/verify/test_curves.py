"""ECDSA on every standardized curve: published vectors, PKI chains and Active Authentication.

The Wycheproof files (tests/vectors/wycheproof/README.md) run through the
library's public verification call on both paths of the dispatch: the
installed cryptography where it has the curve, and the project's own
arithmetic (forced by making :func:`macnss_auth.nfc.eckeys.native_curve`
answer ``None``), so P-192 and P-224 vectors check the own code too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from asn1crypto import cms, core, crl, keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric import utils

from macnss_auth.errors import MacnssAuthError, UnsupportedAlgorithm
from macnss_auth.nfc import ec as ec_math
from macnss_auth.nfc import eckeys, pki
from macnss_auth.nfc.domain_params import CURVE_OIDS, curve_by_name
from macnss_auth.nfc.eckeys import EcPrivateKey, EcPublicKey, ecdsa_sign, ecdsa_verify
from macnss_auth.nfc.lds.sod import OID_LDS_SECURITY_OBJECT, encode_lds_security_object, encode_sod
from macnss_auth.nfc.pki import (
    OID_CSCA_MASTER_LIST,
    HashAlgorithm,
    PkiFormatError,
    SignatureInvalid,
    SignatureKind,
    SignatureScheme,
    TrustStore,
)
from macnss_auth.nfc.verify import CheckStatus, inspect_document
from macnss_auth.nfc.verify.active import verify_active_authentication
from macnss_auth.testing import FixedClock
from tests.nfc.explicit_ec import curve_spki
from tests.nfc.protocols.vectors import load

from .conftest import NOW, VECTORS

SPECIMEN = VECTORS / "bsi2008"

ECDSA_FILES = {
    ("wycheproof", "ecdsa_brainpoolP224r1_sha224_p1363_test.json"): SignatureKind.ECDSA_PLAIN,
    ("wycheproof", "ecdsa_brainpoolP224r1_sha224_test.json"): SignatureKind.ECDSA,
    ("wycheproof", "ecdsa_brainpoolP320r1_sha384_p1363_test.json"): SignatureKind.ECDSA_PLAIN,
    ("wycheproof", "ecdsa_secp192r1_sha256_p1363_test.json"): SignatureKind.ECDSA_PLAIN,
    ("wycheproof", "ecdsa_secp224r1_sha224_p1363_test.json"): SignatureKind.ECDSA_PLAIN,
    ("rooterberg", "ecdsa_brainpool_p192r1_sha_224_p1363.json"): SignatureKind.ECDSA_PLAIN,
}


@pytest.fixture(params=["dispatch", "own"])
def arithmetic(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with the normal dispatch, then with cryptography switched off."""
    if request.param == "own":
        monkeypatch.setattr(eckeys, "native_curve", lambda _curve: None)
    return str(request.param)


@pytest.mark.parametrize(("source", "name"), sorted(ECDSA_FILES), ids=str)
def test_published_ecdsa_vectors(source: str, name: str, arithmetic: str) -> None:
    data = load(name, source=source)
    kind = ECDSA_FILES[source, name]
    counts = {"valid": 0, "invalid": 0, "acceptable": 0}
    for group in data["groups"]:
        curve = curve_by_name(group["curve"])
        key = EcPublicKey.from_encoded(curve, bytes.fromhex(group["public"]))
        scheme = SignatureScheme(kind, HashAlgorithm.from_name(group["sha"]))
        for tc_id, msg, sig, result, flags in group["tests"]:
            counts[result] += 1
            try:
                pki.verify_signature(key, scheme, bytes.fromhex(msg), bytes.fromhex(sig))
            except SignatureInvalid:
                assert result != "valid", (tc_id, flags)
            else:
                assert result != "invalid", (tc_id, flags)
    assert counts["valid"] > 0
    assert counts["invalid"] > 0


def test_rooterberg_ecdh_brainpool_p192() -> None:
    """ECDH on brainpoolP192r1 with raw points: arithmetic edge cases and invalid keys."""
    data = load("ecdh_uncompressed_brainpool_p192r1.json", source="rooterberg")
    curve = curve_by_name(data["curve"])
    outcomes = set()
    for tc_id, public, private, shared, result, flags in data["tests"]:
        mine = EcPrivateKey(curve, int(private, 16))
        try:
            secret = mine.exchange(EcPublicKey.from_encoded(curve, bytes.fromhex(public)))
        except MacnssAuthError:
            assert result == "invalid", (tc_id, flags)
        else:
            assert result == "valid", (tc_id, flags)
            assert secret == bytes.fromhex(shared), tc_id
        outcomes.add(result)
    assert outcomes == {"valid", "invalid"}


def _ecdh_cases() -> list[tuple[str, list[Any]]]:
    cases = []
    for name in ("ecdh_brainpoolP224r1_test.json", "ecdh_brainpoolP320r1_test.json"):
        cases += [(name, test) for test in load(name, source="wycheproof")["tests"]]
    return cases


def test_wycheproof_ecdh() -> None:
    """Key agreement on curves cryptography lacks; bad public keys raise typed errors.

    One deliberate difference: explicit parameters without a cofactor are
    read with cofactor 1 (X9.62 and RFC 3279 §2.3.5 make it optional for
    ECDSA keys, which is what certificates carry; Chip Authentication keys
    come through the SecurityInfos parser). Wycheproof itself marks the same
    bytes "invalid" in tcId 532 and "acceptable" in tcId 535.
    """
    checked = {"valid": 0, "invalid": 0, "acceptable": 0}
    for name, (tc_id, public, private, shared, result_as_published, flags) in _ecdh_cases():
        result = "acceptable" if "NoCofactor" in flags else result_as_published
        curve = curve_by_name(load(name, source="wycheproof")["curve"])
        mine = EcPrivateKey(curve, int(private, 16))
        try:
            peer = pki.parse_public_key_info(bytes.fromhex(public)).ec_public_key()
            secret = mine.exchange(peer)
        except MacnssAuthError:
            assert result != "valid", (name, tc_id, flags)
        else:
            assert result != "invalid", (name, tc_id, flags)
            assert secret == bytes.fromhex(shared), (name, tc_id)
        checked[result] += 1
    assert checked["valid"] >= 150
    assert checked["invalid"] >= 50


# --- Passive Authentication chains on curves cryptography lacks ------------------------

_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
_AFTER = dt.datetime(2035, 1, 1, tzinfo=dt.timezone.utc)


def _named_spki(key: EcPrivateKey) -> bytes:
    return bytes(
        keys.PublicKeyInfo(
            {
                "algorithm": {
                    "algorithm": "ec",
                    "parameters": keys.ECDomainParameters(
                        name="named", value=CURVE_OIDS[key.curve.name]
                    ),
                },
                "public_key": key.public_key().encode(),
            }
        ).dump()
    )


def _explicit_spki(key: EcPrivateKey) -> bytes:
    return curve_spki(key.curve, key.public_key().encode())


def _sign_der(key: EcPrivateKey, data: bytes, hash_algorithm: HashAlgorithm) -> bytes:
    return utils.encode_dss_signature(*ecdsa_sign(key, data, hash_algorithm.new()))


def _name(common_name: str) -> asn1_x509.Name:
    return asn1_x509.Name.build({"country_name": "DE", "common_name": common_name})


def _certificate(
    *, subject: str, issuer: str, spki: bytes, signer: EcPrivateKey, serial: int, ca: bool
) -> bytes:
    usage = {"key_cert_sign", "crl_sign"} if ca else {"digital_signature"}
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial,
            "signature": {"algorithm": "sha224_ecdsa"},
            "issuer": _name(issuer),
            "validity": {
                "not_before": asn1_x509.Time(name="utc_time", value=_BEFORE),
                "not_after": asn1_x509.Time(name="utc_time", value=_AFTER),
            },
            "subject": _name(subject),
            "subject_public_key_info": keys.PublicKeyInfo.load(spki),
            "extensions": [
                {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": ca}},
                {"extn_id": "key_usage", "critical": True, "extn_value": usage},
            ],
        }
    )
    signature = _sign_der(signer, tbs.dump(), HashAlgorithm.SHA224)
    return bytes(
        asn1_x509.Certificate(
            {
                "tbs_certificate": tbs,
                "signature_algorithm": {"algorithm": "sha224_ecdsa"},
                "signature_value": signature,
            }
        ).dump()
    )


def _crl(*, issuer: str, signer: EcPrivateKey, revoked: list[int]) -> bytes:
    tbs = crl.TbsCertList(
        {
            "version": "v2",
            "signature": {"algorithm": "sha224_ecdsa"},
            "issuer": _name(issuer),
            "this_update": asn1_x509.Time(name="utc_time", value=_BEFORE),
            "next_update": asn1_x509.Time(name="utc_time", value=_AFTER),
            "revoked_certificates": [
                {
                    "user_certificate": serial,
                    "revocation_date": asn1_x509.Time(name="utc_time", value=_BEFORE),
                }
                for serial in revoked
            ],
        }
    )
    signature = _sign_der(signer, tbs.dump(), HashAlgorithm.SHA224)
    return bytes(
        crl.CertificateList(
            {
                "tbs_cert_list": tbs,
                "signature_algorithm": {"algorithm": "sha224_ecdsa"},
                "signature": signature,
            }
        ).dump()
    )


@pytest.fixture(scope="module")
def chain() -> dict[str, Any]:
    """A brainpoolP224r1 CSCA (named curve) and a brainpoolP320r1 DS (explicit parameters)."""
    csca_key = EcPrivateKey.generate(curve_by_name("brainpoolP224r1"))
    ds_key = EcPrivateKey.generate(curve_by_name("brainpoolP320r1"))
    csca = _certificate(
        subject="CSCA BP224",
        issuer="CSCA BP224",
        spki=_named_spki(csca_key),
        signer=csca_key,
        serial=1,
        ca=True,
    )
    ds = _certificate(
        subject="DS BP320",
        issuer="CSCA BP224",
        spki=_explicit_spki(ds_key),
        signer=csca_key,
        serial=2,
        ca=False,
    )
    return {"csca_key": csca_key, "ds_key": ds_key, "csca": csca, "ds": ds}


def test_certificate_chain_on_brainpool_p224_and_p320(chain: dict[str, Any]) -> None:
    csca = pki.parse_certificate(chain["csca"])
    ds = pki.parse_certificate(chain["ds"])
    assert csca.public_key.curve == "brainpoolP224r1"
    assert ds.public_key.curve == "brainpoolP320r1"
    assert ds.public_key.ec_parameters is not None
    csca.verify_issued_by(csca)
    ds.verify_issued_by(csca)
    with pytest.raises(SignatureInvalid):
        csca.verify_issued_by(ds)
    store = TrustStore()
    store.add_csca(chain["csca"])
    result = store.validate_document_signer(ds, at=NOW)
    assert result.trusted, result.reason


def test_crl_on_brainpool_p224(chain: dict[str, Any]) -> None:
    csca = pki.parse_certificate(chain["csca"])
    ds = pki.parse_certificate(chain["ds"])
    revocation = pki.parse_crl(_crl(issuer="CSCA BP224", signer=chain["csca_key"], revoked=[2]))
    revocation.verify_issued_by(csca)
    with pytest.raises(SignatureInvalid):
        revocation.verify_issued_by(ds)
    store = TrustStore()
    store.add_csca(chain["csca"])
    store.add_crl(revocation)
    result = store.validate_document_signer(ds, at=NOW)
    assert not result.trusted
    assert result.revocation == "revoked"


def _signed_data(content_type: str, content: bytes, signer_der: bytes, key: EcPrivateKey) -> bytes:
    """A CMS ContentInfo (RFC 5652 §5) signed with signed attributes by an own-arithmetic key."""
    certificate = asn1_x509.Certificate.load(signer_der)
    signed_attrs = cms.CMSAttributes(
        [
            {"type": "content_type", "values": [content_type]},
            {"type": "message_digest", "values": [HashAlgorithm.SHA256.digest(content)]},
        ]
    )
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": {
                        "issuer": certificate.issuer,
                        "serial_number": certificate.serial_number,
                    }
                }
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": _sign_der(key, signed_attrs.dump(), HashAlgorithm.SHA256),
        }
    )
    signed = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {
                "content_type": content_type,
                "content": core.ParsableOctetString(content),
            },
            "certificates": [certificate],
            "signer_infos": [signer_info],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())


def _sod(groups: dict[int, bytes], ds_der: bytes, ds_key: EcPrivateKey) -> bytes:
    """EF.SOD (ICAO 9303-10 §4.6.2) over ``groups``."""
    content = encode_lds_security_object(HashAlgorithm.SHA256, groups)
    return encode_sod(_signed_data(OID_LDS_SECURITY_OBJECT, content, ds_der, ds_key))


def test_master_list_signed_on_curves_cryptography_lacks(chain: dict[str, Any]) -> None:
    """A CSCA master list (ICAO 9303-12 §9) whose signer and CSCA are on brainpool curves."""
    # CscaMasterList ::= SEQUENCE { version INTEGER, certList SET OF Certificate }
    body = bytes(core.Integer(0).dump()) + _set_of([chain["csca"]])
    listed = b"\x30" + _der_length(body) + body
    master_list = _signed_data(OID_CSCA_MASTER_LIST, listed, chain["ds"], chain["ds_key"])
    store = TrustStore()
    store.load_master_list(master_list, name="brainpool list", trust_as_is=True)
    assert [a.certificate.subject for a in store.anchors] == [
        pki.parse_certificate(chain["csca"]).subject
    ]
    assert store.validate_document_signer(pki.parse_certificate(chain["ds"]), at=NOW).trusted
    forged = _signed_data(
        OID_CSCA_MASTER_LIST,
        listed,
        chain["ds"],
        EcPrivateKey.generate(curve_by_name("brainpoolP320r1")),
    )
    with pytest.raises(SignatureInvalid):
        TrustStore().load_master_list(forged, trust_as_is=True)


def _der_length(body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([size])
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _set_of(items: list[bytes]) -> bytes:
    body = b"".join(sorted(items))
    return b"\x31" + _der_length(body) + body


def test_document_signed_on_curves_cryptography_lacks(chain: dict[str, Any]) -> None:
    """Passive Authentication end to end: brainpoolP320r1 DS, brainpoolP224r1 CSCA."""
    groups = {n: (SPECIMEN / f"Datagroup{n}.bin").read_bytes() for n in (1, 2)}
    sod = _sod(groups, chain["ds"], chain["ds_key"])
    store = TrustStore()
    store.add_csca(chain["csca"])
    result = inspect_document(data_groups=groups, sod=sod, trust_store=store, clock=FixedClock(NOW))
    for name in ("sod_signature", "chain", "dg1_hash", "dg2_hash"):
        assert result.check(name).status is CheckStatus.PASSED, (name, result.check(name).reason)
    assert result.document_signer is not None
    assert "DS BP320" in result.document_signer
    forged = dict(groups)
    forged[1] = groups[1][:-1] + bytes([groups[1][-1] ^ 1])
    tampered = inspect_document(
        data_groups=forged, sod=sod, trust_store=store, clock=FixedClock(NOW)
    )
    assert tampered.check("dg1_hash").status is CheckStatus.FAILED
    other_key = EcPrivateKey.generate(curve_by_name("brainpoolP320r1"))
    wrong = inspect_document(
        data_groups=groups,
        sod=_sod(groups, chain["ds"], other_key),
        trust_store=store,
        clock=FixedClock(NOW),
    )
    assert wrong.check("sod_signature").status is CheckStatus.FAILED
    assert not wrong.genuine


def test_signed_data_by_a_brainpool_p320_signer(chain: dict[str, Any]) -> None:
    """A SignerInfo signature (SOD, master list) by an explicit-parameter DS key."""
    ds = pki.parse_certificate(chain["ds"])
    attrs_der = b"\x31\x03\x02\x01\x05"
    signature = _sign_der(chain["ds_key"], attrs_der, HashAlgorithm.SHA256)
    scheme = SignatureScheme(SignatureKind.ECDSA, HashAlgorithm.SHA256)
    pki.verify_signature(ds.public_key, scheme, attrs_der, signature)
    with pytest.raises(SignatureInvalid):
        pki.verify_signature(ds.public_key, scheme, attrs_der + b"\x00", signature)


def test_explicit_parameters_with_a_wrong_cofactor_are_not_the_named_curve(
    chain: dict[str, Any],
) -> None:
    spki = _explicit_spki(chain["ds_key"])
    info = keys.PublicKeyInfo.load(spki)
    info["algorithm"]["parameters"].chosen["cofactor"] = 4
    tampered = keys.PublicKeyInfo.load(info.dump(force=True))
    parsed = pki.parse_public_key_info(tampered.dump())
    assert parsed.curve is None
    with pytest.raises(UnsupportedAlgorithm):
        parsed.ec_public_key()


def test_invalid_points_are_refused_before_any_verification() -> None:
    curve = curve_by_name("brainpoolP224r1")
    good = EcPrivateKey.generate(curve).public_key().encode()
    off_curve = good[:-1] + bytes([good[-1] ^ 1])
    spki = keys.PublicKeyInfo(
        {
            "algorithm": {
                "algorithm": "ec",
                "parameters": keys.ECDomainParameters(name="named", value=CURVE_OIDS[curve.name]),
            },
            "public_key": off_curve,
        }
    ).dump()
    info = pki.parse_public_key_info(spki)
    scheme = SignatureScheme(SignatureKind.ECDSA, HashAlgorithm.SHA224)
    with pytest.raises(PkiFormatError):
        pki.verify_signature(info, scheme, b"data", b"\x30\x06\x02\x01\x01\x02\x01\x01")


# --- Active Authentication --------------------------------------------------------------


@pytest.mark.parametrize("curve_name", ["brainpoolP192r1", "brainpoolP224r1", "brainpoolP320r1"])
@pytest.mark.parametrize("encoding", ["plain", "der"])
def test_active_authentication_ecdsa_on_curves_cryptography_lacks(
    curve_name: str, encoding: str
) -> None:
    key = EcPrivateKey.generate(curve_by_name(curve_name))
    info = pki.parse_public_key_info(_named_spki(key))
    challenge = bytes(range(8))
    r, s = ecdsa_sign(key, challenge, HashAlgorithm.SHA256.new())
    size = key.curve.order_length
    signature = (
        r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if encoding == "plain"
        else utils.encode_dss_signature(r, s)
    )
    oid = "1.2.840.10045.4.3.2"  # ecdsa-with-SHA256, as DG14's ActiveAuthenticationInfo
    verify_active_authentication(info, challenge, signature, ecdsa_algorithm=oid)
    with pytest.raises(SignatureInvalid):
        verify_active_authentication(info, bytes(8), signature, ecdsa_algorithm=oid)
    with pytest.raises(SignatureInvalid):
        verify_active_authentication(info, challenge, signature[:-1], ecdsa_algorithm=oid)


def test_der_signature_on_a_curve_cryptography_has_is_accepted_for_aa() -> None:
    key = EcPrivateKey.generate(curve_by_name("brainpoolP256r1"))
    info = pki.parse_public_key_info(_named_spki(key))
    challenge = b"\x01" * 8
    signature = utils.encode_dss_signature(*ecdsa_sign(key, challenge, HashAlgorithm.SHA256.new()))
    verify_active_authentication(info, challenge, signature, ecdsa_algorithm="1.2.840.10045.4.3.2")


# --- the primitive itself ----------------------------------------------------------------


@pytest.mark.parametrize(
    "curve_name",
    ["secp192r1", "brainpoolP192r1", "secp224r1", "brainpoolP224r1", "brainpoolP320r1"],
)
def test_sign_and_verify_agree_on_both_paths(
    curve_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = EcPrivateKey.generate(curve_by_name(curve_name))
    public = key.public_key()
    digest = HashAlgorithm.SHA256.new()
    native = ecdsa_sign(key, b"message", digest)
    monkeypatch.setattr(eckeys, "native_curve", lambda _curve: None)
    own = ecdsa_sign(key, b"message", digest)
    assert public == EcPrivateKey(key.curve, key.d).public_key()
    for signature in (native, own):
        assert ecdsa_verify(public, b"message", signature, digest)
        assert not ecdsa_verify(public, b"massage", signature, digest)
        r, s = signature
        assert not ecdsa_verify(public, b"message", (r, key.curve.n - s + 1), digest)
        assert not ecdsa_verify(public, b"message", (0, s), digest)
        assert not ecdsa_verify(public, b"message", (r, key.curve.n), digest)


def test_unknown_curves_are_unsupported_not_crashes() -> None:
    curve = curve_by_name("secp256r1")
    strange = ec_math.Curve("strange", curve.p, curve.a, curve.b + 1, curve.gx, curve.gy, curve.n)
    with pytest.raises(UnsupportedAlgorithm):
        EcPrivateKey(strange, 5)
    with pytest.raises(UnsupportedAlgorithm):
        EcPublicKey(strange, strange.generator)

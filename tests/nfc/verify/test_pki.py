"""Trust material: real master lists, explicit EC parameters, CRLs, link certificates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from macnss_auth.errors import MalformedInput, UnsupportedAlgorithm
from macnss_auth.nfc import pki
from macnss_auth.nfc.domain_params import curve_by_name
from macnss_auth.nfc.pki import PkiFormatError, SignatureInvalid, TrustSource, TrustStore
from macnss_auth.testing.pki import (
    TestPki,
    generate_key,
    make_csca,
    make_document_signer,
    make_link_certificate,
    make_master_list,
)
from tests.nfc.explicit_ec import curve_spki

from .conftest import NOW, VECTORS

ML = VECTORS / "masterlists"


@pytest.fixture(scope="module")
def german() -> pki.MasterList:
    return pki.parse_master_list((ML / "DE_ML_2026-05-28-08-28-45.ml").read_bytes())


@pytest.fixture(scope="module")
def dutch() -> pki.MasterList:
    return pki.parse_master_list((ML / "NL_ML_2026-07-22.ml").read_bytes())


def test_german_master_list(german: pki.MasterList) -> None:
    assert german.skipped == 0
    assert len(german.certificates) > 500
    signer = german.signer
    assert signer is not None
    assert signer.public_key.ec_parameters is not None  # explicit brainpoolP256r1
    assert signer.public_key.curve == "brainpoolP256r1"
    issuer = german.verify()
    assert "csca-germany" in issuer.subject
    assert any(c.serial_number < 0 for c in german.certificates)


def test_dutch_master_list(dutch: pki.MasterList) -> None:
    assert "CSCA NL" in dutch.verify().subject


def test_moroccan_cscas(german: pki.MasterList) -> None:
    moroccan = german.by_country("MA")
    assert len(moroccan) >= 2
    for cert in moroccan:
        assert "CSCA-MAROC" in cert.subject
        assert cert.public_key.algorithm == "rsa"
        assert cert.public_key.key_size == 4096
    self_signed = [c for c in moroccan if c.self_issued]
    assert self_signed
    for cert in self_signed:
        try:
            cert.verify_issued_by(cert)
        except SignatureInvalid:
            continue  # a link certificate with the same name, signed by the older key
        break
    else:
        pytest.fail("no Moroccan CSCA verifies as self-signed")


def test_trust_store_from_master_list(german: pki.MasterList) -> None:
    store = TrustStore()
    store.load_master_list(german, name="DE", countries={"MA"}, trust_as_is=True)
    anchors = store.find(country="MA")
    assert anchors
    assert all(a.source is TrustSource.MASTER_LIST for a in anchors)
    assert "signed by Common Name: CSCA Master List Signer" in anchors[0].detail
    assert "(trusted as is)" in anchors[0].detail
    assert store.find(country="DE") == ()


def test_tampered_master_list_is_refused() -> None:
    data = bytearray((ML / "NL_ML_2026-07-22.ml").read_bytes())
    data[5000] ^= 0x01  # inside a listed certificate: the message digest no longer matches
    master = pki.parse_master_list(bytes(data))
    with pytest.raises(SignatureInvalid):
        master.verify()


def test_master_list_signer_must_chain(german: pki.MasterList) -> None:
    test_pki = TestPki.create(now=NOW, key_type="ec")
    store = TrustStore()
    store.add_csca(test_pki.csca.der)
    with pytest.raises(SignatureInvalid):
        store.load_master_list(german)
    assert store.load_master_list(test_pki.master_list()).certificates


def test_a_master_list_does_not_vouch_for_itself_by_default() -> None:
    # A list signed under a CSCA it carries proves nothing about where it came from:
    # an empty store refuses it unless the caller says trust_as_is=True.
    listed = TestPki.create(now=NOW, key_type="ec").master_list()
    with pytest.raises(SignatureInvalid, match="trust_as_is"):
        TrustStore().load_master_list(listed)
    with pytest.raises(SignatureInvalid):
        TrustStore.from_master_lists({"self-signed": listed})
    assert TrustStore().load_master_list(listed, trust_as_is=True).certificates
    assert TrustStore.from_master_lists({"self-signed": listed}, trust_as_is=True).anchors


def test_a_master_list_chains_to_anchors_given_first(german: pki.MasterList) -> None:
    # The CSCA that certifies the German list signer, vouched for out of band.
    signer_csca = german.verify()
    store = TrustStore.from_master_lists(
        {"DE": (ML / "DE_ML_2026-05-28-08-28-45.ml").read_bytes()}, anchors=[signer_csca.der]
    )
    listed = [a for a in store.anchors if a.source is TrustSource.MASTER_LIST]
    assert listed
    assert all("(signer certified by a trusted CSCA)" in a.detail for a in listed)


def _explicit_spki(curve_name: str) -> tuple[bytes, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(
        ec.BrainpoolP384R1() if curve_name.endswith("384r1") else ec.SECP256R1()
    )
    public = key.public_key()
    point = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return curve_spki(curve_by_name(curve_name), point), public


@pytest.mark.parametrize("curve_name", ["secp256r1", "brainpoolP384r1"])
def test_explicit_parameters_rebuilt_on_named_curve(curve_name: str) -> None:
    spki, public = _explicit_spki(curve_name)
    info = pki.parse_public_key_info(spki)
    assert info.curve == curve_name
    rebuilt = info.to_cryptography()
    assert isinstance(rebuilt, ec.EllipticCurvePublicKey)
    assert rebuilt.public_numbers() == public.public_numbers()


def test_explicit_parameters_of_an_unknown_curve() -> None:
    spki, _ = _explicit_spki("secp256r1")
    curve = curve_by_name("secp256r1")
    # Change b: a different curve that shares G's x... not a named curve any more.
    wrong_b = (curve.b + 1).to_bytes(32, "big")
    tampered = spki.replace(curve.b.to_bytes(32, "big"), wrong_b)
    info = pki.parse_public_key_info(tampered)
    assert info.curve is None
    with pytest.raises(UnsupportedAlgorithm):
        info.to_cryptography()


def test_malformed_keys_and_certificates() -> None:
    for parser in (pki.parse_public_key_info, pki.parse_certificate, pki.parse_crl):
        with pytest.raises(MalformedInput):
            parser(b"\x30\x03\x02\x01\x00")
    with pytest.raises(PkiFormatError):
        pki.parse_master_list(b"\x30\x00")


def test_crl_must_be_signed_by_a_trusted_csca() -> None:
    trusted = TestPki.create(now=NOW, key_type="ec")
    other = TestPki.create(now=NOW, key_type="ec")
    store = TrustStore()
    store.add_csca(trusted.csca.der)
    store.add_crl(trusted.crl([5]))
    with pytest.raises(SignatureInvalid):
        store.add_crl(other.crl([5]))


def test_link_certificate() -> None:
    old = make_csca(
        not_before=NOW - dt.timedelta(days=2000), not_after=NOW + dt.timedelta(days=100),
        key=generate_key("ec"), serial=1,
    )  # fmt: skip
    new = make_csca(
        not_before=NOW - dt.timedelta(days=10), not_after=NOW + dt.timedelta(days=3000),
        key=generate_key("ec"), serial=2,
    )  # fmt: skip
    link = make_link_certificate(old, new, serial=3)
    store = TrustStore()
    with pytest.raises(SignatureInvalid):
        store.add_link_certificate(link)
    store.add_csca(old.der)
    anchor = store.add_link_certificate(link)
    assert anchor.source is TrustSource.LINK_CERTIFICATE
    ds = make_document_signer(
        new, not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=10),
        key=generate_key("ec"),
    )  # fmt: skip
    result = store.validate_document_signer(ds.certificate, at=NOW)
    assert result.trusted, result.reason
    assert result.anchor == anchor


def test_directory_of_certificates(tmp_path: Path) -> None:
    test_pki = TestPki.create(now=NOW, key_type="ec")
    (tmp_path / "csca.cer").write_bytes(test_pki.csca.der)
    (tmp_path / "notes.txt").write_text("ignored")
    store = TrustStore()
    assert store.load_directory(tmp_path) == 1
    assert store.anchors[0].source is TrustSource.FILE
    result = store.validate_document_signer(test_pki.ds.certificate, at=NOW)
    assert result.trusted


def test_master_list_by_test_pki_roundtrip() -> None:
    test_pki = TestPki.create(now=NOW, key_type="ec")
    other = make_csca(not_before=NOW, not_after=NOW + dt.timedelta(days=1), key=generate_key("ec"))
    data = make_master_list([test_pki.csca.der, other.der], test_pki.master_list_signer)
    master = pki.parse_master_list(data)
    assert len(master.certificates) == 2
    assert master.verify() == test_pki.csca.certificate


def test_every_listed_certificate_verifies_with_its_listed_issuer(german: pki.MasterList) -> None:
    # Real signatures of 100+ countries: PKCS#1 v1.5, PSS, ECDSA on six curves,
    # explicit parameters, NULL parameters, negative serials.
    by_key: dict[bytes | None, list[pki.Certificate]] = {}
    for cert in german.certificates:
        by_key.setdefault(cert.subject_key_identifier, []).append(cert)
    kinds: set[tuple[str, str | None]] = set()
    checked = 0
    for cert in german.certificates:
        key_id = cert.authority_key_identifier or cert.subject_key_identifier
        issuers = [c for c in by_key.get(key_id, []) if c.subject_key == cert.issuer_key]
        if not issuers:
            continue  # a link certificate from a key no longer listed
        cert.verify_issued_by(issuers[0])
        kinds.add((cert.signature_scheme().kind.value, issuers[0].public_key.curve))
        checked += 1
    assert checked > 550
    assert {"rsa-pkcs1v15", "rsa-pss", "ecdsa"} <= {kind for kind, _ in kinds}
    assert {"brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1", "secp521r1"} <= {
        curve for _, curve in kinds
    }


def test_signatures_on_unknown_explicit_curves_are_refused() -> None:
    spki, _ = _explicit_spki("secp256r1")
    curve = curve_by_name("secp256r1")
    tampered = spki.replace(curve.b.to_bytes(32, "big"), (curve.b + 1).to_bytes(32, "big"))
    info = pki.parse_public_key_info(tampered)
    scheme = pki.SignatureScheme(pki.SignatureKind.ECDSA, pki.HashAlgorithm.SHA256)
    with pytest.raises(UnsupportedAlgorithm):
        pki.verify_signature(info, scheme, b"data", b"\x30\x06\x02\x01\x01\x02\x01\x01")

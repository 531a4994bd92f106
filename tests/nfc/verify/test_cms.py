"""CMS SignedData (nfc.pki.cms): real envelopes, and every shape RFC 5652 allows.

The envelopes of the property tests are built by asn1crypto.cms's own classes
and signed with ``cryptography``: neither shares code with the declarations in
:mod:`macnss_auth.nfc.pki.cms`, so a field the parser reads from the wrong
place, or a shape it wrongly refuses, shows up here. The real files (the BSI
2008 specimen's EF.SOD, the German and Dutch master lists) were made by their
issuers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import algos, cms, core, crl, x509
from cryptography import x509 as c_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macnss_auth.errors import MacnssAuthError, UnsupportedAlgorithm
from macnss_auth.nfc import pki
from macnss_auth.nfc.lds import parse_sod
from macnss_auth.nfc.pki import PkiFormatError, SignatureInvalid

VECTORS = Path(__file__).resolve().parents[2] / "vectors"  # copies of /work/shared/realdata
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
HASHES: dict[str, Any] = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384}
OID_LDS = "2.23.136.1.1.1"
OID_ML = "2.23.136.1.1.2"


def _signer(serial: int) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = c_x509.Name([c_x509.NameAttribute(NameOID.COMMON_NAME, f"DS {serial}")])
    cert = (
        c_x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(c_x509.Name([c_x509.NameAttribute(NameOID.COMMON_NAME, "CSCA CMS")]))
        .public_key(key.public_key())
        .serial_number(abs(serial))
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(
            c_x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    if serial < 0:
        # cryptography refuses to write negative serials, so set it with asn1crypto and re-sign.
        parsed = x509.Certificate.load(der)
        tbs = parsed["tbs_certificate"]
        tbs["serial_number"] = serial
        parsed["signature_value"] = key.sign(tbs.dump(force=True), ec.ECDSA(hashes.SHA256()))
        der = parsed.dump(force=True)
    return key, der


KEY, CERT = _signer(4711)
# A negative serial, as real certificates have: the issuerAndSerialNumber must match it.
OTHER_KEY, OTHER_CERT = _signer(-0x1234)


def _crl() -> bytes:
    builder = (
        c_x509.CertificateRevocationListBuilder()
        .issuer_name(c_x509.Name([c_x509.NameAttribute(NameOID.COMMON_NAME, "CSCA CMS")]))
        .last_update(NOW)
        .next_update(NOW + dt.timedelta(days=9))
    )
    return builder.sign(KEY, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


CRL = _crl()


def _attribute(kind: str, values: list[Any]) -> dict[str, Any]:
    return {"type": kind, "values": values}


def build(
    *,
    content: bytes = b"\x30\x03\x02\x01\x00",
    content_type: str = OID_LDS,
    digest: str = "sha256",
    sid: str = "issuer_and_serial_number",
    signer: tuple[ec.EllipticCurvePrivateKey, bytes] = (KEY, CERT),
    attributes: list[Any] | None = None,
    with_attributes: bool = True,
    certificates: int = 1,
    crls: bool = False,
    unsigned: bool = False,
    version: int = 3,
    signer_version: int | None = None,
    listed: list[dict[str, Any]] | None = None,
    digest_parameters: bytes | None = None,
    signers: int = 1,
    with_content: bool = True,
) -> bytes:
    """A ContentInfo(SignedData) built with asn1crypto.cms and signed with cryptography."""
    key, der = signer
    certificate = x509.Certificate.load(der)
    known = digest in HASHES
    message_digest = hashlib.new(digest, content).digest() if known else b"\x00" * 16
    signed_attrs = None
    if with_attributes:
        signed_attrs = cms.CMSAttributes(
            [
                _attribute("content_type", [content_type]),
                _attribute("message_digest", [message_digest]),
                *(attributes or []),
            ]
        )
    to_sign = signed_attrs.dump() if signed_attrs is not None else content
    signature = key.sign(to_sign, ec.ECDSA(HASHES.get(digest, hashes.SHA256)()))
    if sid == "issuer_and_serial_number":
        identifier = cms.SignerIdentifier(
            {
                sid: {
                    "issuer": certificate.issuer,
                    "serial_number": certificate.serial_number,
                }
            }
        )
    else:
        identifier = cms.SignerIdentifier({sid: certificate.key_identifier})
    digest_algorithm: Any = {"algorithm": digest}
    if digest_parameters is not None:
        # asn1crypto writes only NULL parameters: splice others into the DER by hand.
        oid = algos.DigestAlgorithmId(digest).dump()
        body = oid + digest_parameters
        digest_algorithm = algos.DigestAlgorithm.load(b"\x30" + bytes([len(body)]) + body)
    info: dict[str, Any] = {
        "version": signer_version or (1 if sid == "issuer_and_serial_number" else 3),
        "sid": identifier,
        "digest_algorithm": digest_algorithm,
        "signature_algorithm": {"algorithm": f"{digest if known else 'sha256'}_ecdsa"},
        "signature": signature,
    }
    if signed_attrs is not None:
        info["signed_attrs"] = signed_attrs
    if unsigned:
        info["unsigned_attrs"] = [_attribute("1.2.3.4", [core.OctetString(b"unsigned")])]
    encap: dict[str, Any] = {"content_type": content_type}
    if with_content:
        encap["content"] = core.ParsableOctetString(content)
    # asn1crypto reads a version-1 SignedData as PKCS#7 (its eContent an ANY); the
    # encoding of an OCTET STRING eContent is the same either way.
    encapsulated = cms.EncapsulatedContentInfo(encap)
    if version == 1:
        encapsulated = cms.ContentInfo.load(encapsulated.dump())
    fields: dict[str, Any] = {
        "version": version,
        "digest_algorithms": listed if listed is not None else [{"algorithm": digest}],
        "encap_content_info": encapsulated,
        "signer_infos": [cms.SignerInfo(info)] * signers,
    }
    if certificates:
        fields["certificates"] = [certificate, x509.Certificate.load(OTHER_CERT)][:certificates]
    if crls:
        fields["crls"] = [crl.CertificateList.load(CRL)]
    signed = cms.SignedData(fields)
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())


def indefinite(der: bytes) -> bytes:
    """The same constructed object with an indefinite length (X.690 §8.1.3.6, BER only)."""
    first = der[1]
    header = 2 + (first & 0x7F if first & 0x80 else 0)
    return der[:1] + b"\x80" + der[header:] + b"\x00\x00"


# -- real envelopes ---------------------------------------------------------------------------


def test_bsi_specimen_sod_envelope() -> None:
    raw = (VECTORS / "bsi2008" / "EF_SOD.bin").read_bytes()
    sod = parse_sod(raw)
    signed = sod.signed
    assert signed.content_type == signed.content_type_attribute == OID_LDS
    assert signed.signer_serial == 4711
    assert signed.signer_key_identifier is None
    assert signed.digest_algorithm is pki.HashAlgorithm.SHA1
    assert signed.message_digest == hashlib.sha1(signed.content).digest()  # noqa: S324 (the specimen's)
    assert signed.signed_attributes is not None
    assert signed.signed_attributes[0] == 0x31
    signer = signed.signer_certificate()
    assert signer is not None
    assert signer.serial_number == 4711
    assert "BundesDruckerei" in signer.subject
    signed.verify(signer)
    assert sorted(sod.hashes) == [1, 2, 3, 14]


@pytest.mark.parametrize(
    ("name", "scheme", "certificates"),
    [
        ("DE_ML_2026-05-28-08-28-45.ml", pki.SignatureKind.ECDSA, 2),
        ("NL_ML_2026-07-22.ml", pki.SignatureKind.RSA_PKCS1, 1),
    ],
)
def test_master_list_envelopes(name: str, scheme: pki.SignatureKind, certificates: int) -> None:
    signed = pki.parse_signed_data((VECTORS / "masterlists" / name).read_bytes())
    assert signed.content_type == signed.content_type_attribute == OID_ML
    assert signed.signer_key_identifier is not None
    assert signed.signer_serial is None
    assert signed.scheme.kind is scheme
    assert len(signed.certificates) == certificates
    assert signed.signing_time is not None
    assert signed.signing_time.year == 2026
    signer = signed.signer_certificate()
    assert signer is not None
    signed.verify(signer)


def test_a_byte_of_the_real_content_changed_fails_the_digest() -> None:
    raw = bytearray((VECTORS / "masterlists" / "NL_ML_2026-07-22.ml").read_bytes())
    signed = pki.parse_signed_data(bytes(raw))
    at = bytes(raw).index(signed.content[200:232])
    raw[at] ^= 0x01
    tampered = pki.parse_signed_data(bytes(raw))
    signer = tampered.signer_certificate()
    assert signer is not None
    with pytest.raises(SignatureInvalid, match="message digest"):
        tampered.verify(signer)


# -- every shape RFC 5652 allows --------------------------------------------------------------


@st.composite
def envelopes(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    digest = draw(st.sampled_from(sorted(HASHES)))
    sid = draw(st.sampled_from(["issuer_and_serial_number", "subject_key_identifier"]))
    signer = draw(st.sampled_from([(KEY, CERT), (OTHER_KEY, OTHER_CERT)]))
    content = draw(st.binary(max_size=300))
    content_type = draw(st.sampled_from([OID_LDS, OID_ML, "0.4.0.127.0.7.3.2.1"]))
    with_attributes = draw(st.booleans())
    attributes: list[Any] = []
    time = None
    if with_attributes and draw(st.booleans()):
        naive = st.datetimes(
            min_value=dt.datetime(2000, 1, 1),  # noqa: DTZ001 (hypothesis takes naive bounds)
            max_value=dt.datetime(2049, 12, 31),  # noqa: DTZ001 (UTCTime ends in 2049)
        )
        time = draw(naive)
        time = time.replace(microsecond=0, tzinfo=dt.timezone.utc)
        attributes.append(_attribute("signing_time", [cms.Time(name="utc_time", value=time)]))
    if with_attributes and draw(st.booleans()):
        # An attribute the parser does not know keeps its value undecoded.
        attributes.append(_attribute("1.2.3.4.5", [core.OctetString(draw(st.binary(max_size=9)))]))
    envelope = build(
        content=content,
        content_type=content_type,
        digest=digest,
        sid=sid,
        signer=signer,
        attributes=attributes,
        with_attributes=with_attributes,
        certificates=draw(st.integers(0, 2)),
        crls=draw(st.booleans()),
        unsigned=draw(st.booleans()),
        version=draw(st.sampled_from([1, 3])),
    )
    expected = {
        "content": content,
        "content_type": content_type,
        "digest": digest,
        "sid": sid,
        "signer": signer[1],
        "with_attributes": with_attributes,
        "time": time,
    }
    if draw(st.booleans()):
        envelope = indefinite(envelope)  # BER lengths in the envelope (RFC 5652 §5.1)
    return envelope, expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes())
def test_every_allowed_shape_parses_to_its_fields_and_verifies(
    case: tuple[bytes, dict[str, Any]],
) -> None:
    der, expected = case
    signed = pki.parse_signed_data(der)
    assert signed.content == expected["content"]
    assert signed.content_type == expected["content_type"]
    assert signed.digest_algorithm.value == expected["digest"]
    assert signed.scheme.kind is pki.SignatureKind.ECDSA
    assert signed.scheme.hash.value == expected["digest"]
    certificate = pki.parse_certificate(expected["signer"])
    if expected["sid"] == "issuer_and_serial_number":
        assert signed.signer_serial == certificate.serial_number
        assert signed.signer_issuer_key == certificate.issuer_key
        assert signed.signer_key_identifier is None
    else:
        assert signed.signer_key_identifier == certificate.subject_key_identifier
        assert signed.signer_serial is None
    assert signed.signer_certificate(extra=[certificate]) == certificate
    if expected["with_attributes"]:
        assert signed.content_type_attribute == expected["content_type"]
        assert signed.message_digest == hashlib.new(expected["digest"], signed.content).digest()
        assert signed.signing_time == expected["time"]
    else:
        assert signed.signed_attributes is None
        assert signed.message_digest is None
    signed.verify(certificate)
    other = pki.parse_certificate(OTHER_CERT if expected["signer"] == CERT else CERT)
    with pytest.raises(SignatureInvalid):
        signed.verify(other)


def test_content_changed_after_signing() -> None:
    signed = pki.parse_signed_data(build(content=b"\x30\x00"))
    forged = pki.parse_signed_data(
        build(content=b"\x30\x00").replace(b"\x04\x02\x30\x00", b"\x04\x02\x31\x00")
    )
    assert forged.content == b"\x31\x00"
    signer = pki.parse_certificate(CERT)
    signed.verify(signer)
    with pytest.raises(SignatureInvalid, match="message digest"):
        forged.verify(signer)


def test_signed_attributes_carried_in_ber_verify_as_der() -> None:
    # RFC 5652 §5.4: the signature covers the DER of the SET OF, whatever length
    # form the envelope carries them in; the length is read, not hashed.
    der = build()
    signed = pki.parse_signed_data(der)
    attrs_der = signed.signed_attributes
    assert attrs_der is not None
    assert attrs_der[1] < 0x80  # short form: the header is two bytes
    ber = b"\xa0\x80" + attrs_der[2:] + b"\x00\x00"
    carried = pki.parse_signed_data(_resize(der, b"\xa0" + attrs_der[1:], ber))
    assert carried.signed_attributes == attrs_der
    carried.verify(pki.parse_certificate(CERT))


def _resize(der: bytes, old: bytes, new: bytes) -> bytes:
    """Replace the first ``old`` by ``new`` inside ``der``; fix every enclosing definite length."""
    start = der.index(old)
    return _rebuild(der, start, start + len(old), new)


def _rebuild(der: bytes, start: int, end: int, new: bytes) -> bytes:
    # Walk down the constructed objects that contain [start, end) and re-encode their lengths.
    length = der[1]
    if length & 0x80:
        size = length & 0x7F
        header = 2 + size
        total = int.from_bytes(der[2:header], "big")
    else:
        header, total = 2, length
    if start == 0 and end == len(der):
        return new
    inner = der[header : header + total]
    offset = header
    body = b""
    pos = 0
    while pos < len(inner):
        child_len_byte = inner[pos + 1]
        if child_len_byte & 0x80:
            n = child_len_byte & 0x7F
            child_total = 2 + n + int.from_bytes(inner[pos + 2 : pos + 2 + n], "big")
        else:
            child_total = 2 + child_len_byte
        child = inner[pos : pos + child_total]
        lo, hi = offset + pos, offset + pos + child_total
        if lo <= start and end <= hi:
            child = _rebuild(child, start - lo, end - lo, new)
        body += child
        pos += child_total
    return der[:1] + _length(len(body)) + body


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


NON_MINIMAL_OID = bytes.fromhex("060767808108010101")  # 2.23.136.1.1.1, arc 136 padded
# signingTime whose value is a NULL (RFC 5652 §11.3 wants a Time).
BAD_SIGNING_TIME = cms.CMSAttribute.load(bytes.fromhex("300f06092a864886f70d01090531020500"))


@pytest.mark.parametrize(
    ("envelope", "error", "message"),
    [
        pytest.param(
            lambda: build(signers=2), PkiFormatError, "exactly one SignerInfo", id="two-signers"
        ),
        pytest.param(
            lambda: build(with_content=False), PkiFormatError, "no content", id="detached"
        ),
        pytest.param(lambda: build(version=2), PkiFormatError, "version", id="signed-data-v2"),
        pytest.param(lambda: build(signer_version=3), PkiFormatError, "sid", id="v3-with-serial"),
        pytest.param(
            lambda: build(sid="subject_key_identifier", signer_version=1),
            PkiFormatError,
            "sid",
            id="v1-with-ski",
        ),
        pytest.param(
            lambda: build(listed=[{"algorithm": "sha512"}]),
            PkiFormatError,
            "not listed",
            id="unlisted",
        ),
        pytest.param(
            lambda: build(digest_parameters=b"\x05\x01\x00"),
            PkiFormatError,
            "parameters must be absent or NULL",
            id="digest-parameters-null-with-content",
        ),
        pytest.param(
            lambda: build(digest_parameters=b"\x04\x01x"),
            PkiFormatError,
            "malformed",
            id="digest-parameters-octet-string",
        ),
        pytest.param(
            lambda: build(attributes=[_attribute("1.2.3", [core.Null(), core.Null()])]),
            PkiFormatError,
            "one value",
            id="two-values",
        ),
        pytest.param(
            lambda: build(attributes=[BAD_SIGNING_TIME]),
            PkiFormatError,
            "malformed",
            id="signing-time-not-a-time",
        ),
        pytest.param(lambda: build(digest="md5"), UnsupportedAlgorithm, "digest", id="md5"),
        pytest.param(
            lambda: bytes(
                cms.ContentInfo({"content_type": "data", "content": core.OctetString(b"x")}).dump()
            ),
            PkiFormatError,
            "not CMS SignedData",
            id="not-signed-data",
        ),
        pytest.param(
            # The eContentType (the first of its two occurrences) with a padded arc.
            lambda: _resize(build(), bytes.fromhex("0606678108010101"), NON_MINIMAL_OID),
            PkiFormatError,
            "malformed OID",
            id="non-minimal-oid",
        ),
        pytest.param(lambda: build() + b"\x00", PkiFormatError, "malformed", id="trailing-byte"),
        pytest.param(lambda: build()[:-1], PkiFormatError, "malformed", id="truncated"),
    ],
)
def test_what_rfc_5652_and_the_profiles_refuse(
    envelope: Any, error: type[MacnssAuthError], message: str
) -> None:
    with pytest.raises(error, match=message):
        pki.parse_signed_data(envelope())


FUZZ_SEEDS = [
    build(
        sid=sid,
        certificates=2,
        crls=True,
        unsigned=True,
        attributes=[
            _attribute("signing_time", [cms.Time(name="utc_time", value=NOW)]),
            _attribute("1.2.3.4.5", [core.OctetString(b"other")]),
        ],
    )
    for sid in ("issuer_and_serial_number", "subject_key_identifier")
]


@settings(max_examples=1_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(FUZZ_SEEDS),
    st.lists(st.tuples(st.integers(0), st.binary(max_size=4)), min_size=1, max_size=3),
)
def test_mutated_envelopes_raise_only_library_errors(
    seed: bytes, edits: list[tuple[int, bytes]]
) -> None:
    # Every optional part of the declaration is present in the seeds, so each
    # class (certificates, CRLs, unsigned attributes, both sid forms) meets damage.
    data = bytearray(seed)
    for position, replacement in edits:
        at = position % len(data)
        data[at : at + len(replacement)] = replacement or b"\xff"
    try:
        signed = pki.parse_signed_data(bytes(data))
    except (PkiFormatError, UnsupportedAlgorithm):
        return
    signer = signed.signer_certificate(extra=[pki.parse_certificate(CERT)])
    if signer is not None:
        # A carried certificate damaged in its key fails here, as a library error too.
        with contextlib.suppress(MacnssAuthError):
            signed.verify(signer)

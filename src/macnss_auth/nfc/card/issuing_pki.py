"""The issuing PKI of the virtual card: CSCA, document signers, CRLs, master lists, signed EF.SOD.

It lives beside the issuer (:mod:`macnss_auth.nfc.card.issuer`), which signs
every card it personalizes with it; :mod:`macnss_auth.testing.pki` re-exports
it for tests. Everything here is for tests, demos, kiosks without hardware
and the virtual card: keys are generated fresh (or passed in), nothing is
protected, and the defaults are chosen so a document verifies under
:mod:`macnss_auth.nfc.verify` when the clock is inside the validity periods.

Typical use::

    pki = TestPki.create(now=clock.now(), key_type="ec")
    document = pki.issue_document(mrz=make_td1_mrz(...), aa_key_type="rsa")
    store = TrustStore()
    store.load_master_list(pki.master_list(), trust_as_is=True)  # the test CSCA, made here
    signature = document.sign_active_authentication(nonce)

Builders: :func:`generate_key`, :func:`make_csca`, :func:`make_link_certificate`,
:func:`make_document_signer`, :func:`make_master_list_signer`, :func:`make_crl`,
:func:`make_master_list`, :func:`sign_cms`, :func:`sign_sod`, and the card
side of Active Authentication: :func:`active_authentication_sign`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Literal, Union

import attrs
from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import NameOID

from macnss_auth.errors import UnsupportedAlgorithm
from macnss_auth.nfc import securityinfos as si
from macnss_auth.nfc.domain_params import curve_by_name
from macnss_auth.nfc.eckeys import native_curve
from macnss_auth.nfc.lds import (
    encode_com,
    encode_dg1,
    encode_dg2,
    encode_dg14,
    encode_dg15,
    encode_sod,
    image_dimensions,
)
from macnss_auth.nfc.lds.security import OID_SECURITY_OBJECT
from macnss_auth.nfc.lds.sod import OID_LDS_SECURITY_OBJECT, encode_lds_security_object
from macnss_auth.nfc.mrz import check_digit
from macnss_auth.nfc.pki import OID_CSCA_MASTER_LIST, Certificate, HashAlgorithm, parse_certificate

__all__ = [
    "IssuedCertificate",
    "KeyType",
    "PrivateKey",
    "TestDocument",
    "TestPki",
    "active_authentication_sign",
    "generate_key",
    "make_crl",
    "make_csca",
    "make_document_signer",
    "make_link_certificate",
    "make_master_list",
    "make_master_list_signer",
    "make_td1_mrz",
    "placeholder_jpeg",
    "sign_card_security",
    "sign_cms",
    "sign_sod",
]

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]  # noqa: UP007 (runtime alias, 3.10)
KeyType = Literal["rsa", "ec"]

# ISO/IEC 10118-3 hash identifiers in ISO/IEC 9796-2 two-byte trailers.
_HASH_IDS = {
    HashAlgorithm.SHA1: 0x33,
    HashAlgorithm.SHA256: 0x34,
    HashAlgorithm.SHA512: 0x35,
    HashAlgorithm.SHA384: 0x36,
    HashAlgorithm.SHA224: 0x38,
}


def generate_key(
    key_type: KeyType = "rsa", *, bits: int = 2048, curve: str = "brainpoolP256r1"
) -> PrivateKey:
    """A fresh RSA (``bits``) or EC (``curve``, a curve cryptography has) private key.

    Raises:
        UnsupportedAlgorithm: an unknown curve, or one the installed cryptography lacks.
    """
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    native = native_curve(curve_by_name(curve))
    if native is None:
        raise UnsupportedAlgorithm(f"cryptography cannot generate keys on {curve}")
    return ec.generate_private_key(native)


@attrs.frozen
class IssuedCertificate:
    """A certificate with its private key (tests only)."""

    der: bytes = attrs.field(repr=False)
    private_key: PrivateKey = attrs.field(repr=False)

    @property
    def certificate(self) -> Certificate:
        """The parsed certificate."""
        return parse_certificate(self.der)

    @property
    def x509(self) -> x509.Certificate:
        """The cryptography certificate object."""
        return x509.load_der_x509_certificate(self.der)


def _name(common_name: str, country: str, organization: str = "Test") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _hash(
    algorithm: HashAlgorithm,
) -> hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    # X.509 builders refuse SHA-1; certificates here use SHA-2 only.
    value = algorithm.new()
    if not isinstance(value, (hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512)):
        raise TypeError("test certificates are signed with SHA-2")
    return value


def _sign_builder(
    builder: x509.CertificateBuilder, key: PrivateKey, algorithm: HashAlgorithm, *, pss: bool
) -> bytes:
    if pss and isinstance(key, rsa.RSAPrivateKey):
        cert = builder.sign(
            key,
            _hash(algorithm),
            rsa_padding=padding.PSS(
                mgf=padding.MGF1(_hash(algorithm)), salt_length=algorithm.digest_size
            ),
        )
    else:
        cert = builder.sign(key, _hash(algorithm))
    return cert.public_bytes(serialization.Encoding.DER)


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_csca(
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    country: str = "MA",
    common_name: str = "CSCA TEST",
    key: PrivateKey | None = None,
    serial: int = 1,
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA256,
    pss: bool = False,
) -> IssuedCertificate:
    """A self-signed CSCA certificate (basicConstraints cA, keyCertSign + cRLSign)."""
    key = key or generate_key("rsa", bits=2048)
    name = _name(common_name, country)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return IssuedCertificate(_sign_builder(builder, key, hash_algorithm, pss=pss), key)


def make_link_certificate(
    old: IssuedCertificate,
    new: IssuedCertificate,
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    serial: int = 2,
) -> bytes:
    """The new CSCA key and name, certified by the old CSCA key (a link certificate)."""
    new_cert = new.x509
    old_cert = old.x509
    public = new.private_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(new_cert.subject)
        .issuer_name(old_cert.subject)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(not_before or new_cert.not_valid_before_utc)
        .not_valid_after(not_after or new_cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(old.private_key.public_key()),
            critical=False,
        )
    )
    return _sign_builder(builder, old.private_key, HashAlgorithm.SHA256, pss=False)


def _issue(
    issuer: IssuedCertificate,
    *,
    common_name: str,
    key: PrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    serial: int,
    key_usage: x509.KeyUsage | None,
    hash_algorithm: HashAlgorithm,
    pss: bool,
    ca: bool = False,
) -> IssuedCertificate:
    issuer_cert = issuer.x509
    country = issuer_cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, str(country)))
        .issuer_name(issuer_cert.subject)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.private_key.public_key()),
            critical=False,
        )
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True
        )
    return IssuedCertificate(
        _sign_builder(builder, issuer.private_key, hash_algorithm, pss=pss), key
    )


def make_document_signer(
    csca: IssuedCertificate,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    key: PrivateKey | None = None,
    serial: int = 100,
    common_name: str = "DS TEST",
    may_sign: bool = True,
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA256,
    pss: bool = False,
) -> IssuedCertificate:
    """A document signer certificate issued by ``csca``.

    ``may_sign=False`` gives it a key usage without digitalSignature (a forgery
    that verification must reject).
    """
    return _issue(
        csca,
        common_name=common_name,
        key=key or generate_key("rsa", bits=2048),
        not_before=not_before,
        not_after=not_after,
        serial=serial,
        key_usage=_key_usage(digital_signature=may_sign, cert_sign=not may_sign),
        hash_algorithm=hash_algorithm,
        pss=pss,
    )


def make_master_list_signer(
    csca: IssuedCertificate,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    key: PrivateKey | None = None,
    serial: int = 50,
) -> IssuedCertificate:
    """A master list signer certificate issued by ``csca``."""
    return _issue(
        csca,
        common_name="CSCA Master List Signer TEST",
        key=key or generate_key("ec"),
        not_before=not_before,
        not_after=not_after,
        serial=serial,
        key_usage=_key_usage(digital_signature=True),
        hash_algorithm=HashAlgorithm.SHA256,
        pss=False,
    )


def make_crl(
    csca: IssuedCertificate,
    revoked_serials: Iterable[int] = (),
    *,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> bytes:
    """A CRL signed by ``csca`` listing ``revoked_serials``."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(csca.x509.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(csca.private_key.public_key()),
            critical=False,
        )
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(this_update)
            .build()
        )
    return builder.sign(csca.private_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _signature_algorithm(
    key: PrivateKey, algorithm: HashAlgorithm, *, pss: bool
) -> dict[str, object]:
    name = algorithm.value
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"algorithm": f"{name}_ecdsa"}
    if pss:
        return {
            "algorithm": "rsassa_pss",
            "parameters": {
                "hash_algorithm": {"algorithm": name},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": name}},
                "salt_length": algorithm.digest_size,
                "trailer_field": "trailer_field_bc",
            },
        }
    return {"algorithm": f"{name}_rsa"}


def _raw_sign(key: PrivateKey, algorithm: HashAlgorithm, data: bytes, *, pss: bool) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(algorithm.new()))
    if pss:
        return key.sign(
            data,
            padding.PSS(mgf=padding.MGF1(algorithm.new()), salt_length=algorithm.digest_size),
            algorithm.new(),
        )
    return key.sign(data, padding.PKCS1v15(), algorithm.new())


def sign_cms(
    content_type: str,
    content: bytes,
    signer: IssuedCertificate,
    *,
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA256,
    pss: bool = False,
    signing_time: dt.datetime | None = None,
    include_certificate: bool = True,
    signed_attributes: bool = True,
) -> bytes:
    """CMS SignedData (as a ContentInfo DER) over ``content`` by ``signer``."""
    cert = asn1_x509.Certificate.load(signer.der)
    digest = hash_algorithm.digest(content)
    info: dict[str, object] = {
        "version": "v1",
        "sid": cms.SignerIdentifier(
            {
                "issuer_and_serial_number": {
                    "issuer": cert.issuer,
                    "serial_number": cert.serial_number,
                }
            }
        ),
        "digest_algorithm": {"algorithm": hash_algorithm.value},
        "signature_algorithm": _signature_algorithm(signer.private_key, hash_algorithm, pss=pss),
    }
    if signed_attributes:
        attributes = [
            {"type": "content_type", "values": [content_type]},
            {"type": "message_digest", "values": [digest]},
        ]
        if signing_time is not None:
            attributes.insert(
                1, {"type": "signing_time", "values": [cms.Time({"utc_time": signing_time})]}
            )
        attrs_value = cms.CMSAttributes(attributes)
        to_sign = b"\x31" + attrs_value.dump()[1:]
        info["signed_attrs"] = attrs_value
    else:
        to_sign = content
    info["signature"] = _raw_sign(signer.private_key, hash_algorithm, to_sign, pss=pss)
    signed = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": hash_algorithm.value}],
            "encap_content_info": {
                "content_type": content_type,
                "content": core.ParsableOctetString(content),
            },
            "certificates": [cert] if include_certificate else [],
            "signer_infos": [cms.SignerInfo(info)],
        }
    )
    if not include_certificate:
        del signed["certificates"]
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())


def sign_sod(
    data_groups: Mapping[int, bytes],
    signer: IssuedCertificate,
    *,
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA256,
    signature_hash: HashAlgorithm | None = None,
    pss: bool = False,
    signing_time: dt.datetime | None = None,
    lds_version: str | None = None,
    unicode_version: str | None = None,
) -> bytes:
    """EF.SOD hashing ``data_groups`` (number -> file bytes), signed by ``signer``."""
    content = encode_lds_security_object(
        hash_algorithm, data_groups, lds_version=lds_version, unicode_version=unicode_version
    )
    return encode_sod(
        sign_cms(
            OID_LDS_SECURITY_OBJECT,
            content,
            signer,
            hash_algorithm=signature_hash or hash_algorithm,
            pss=pss,
            signing_time=signing_time,
        )
    )


def sign_card_security(
    security_infos: bytes,
    signer: IssuedCertificate,
    *,
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA256,
    signing_time: dt.datetime | None = None,
) -> bytes:
    """EF.CardSecurity: ``security_infos`` (DER) signed by ``signer`` (BSI TR-03110-3 §A.1.2.5)."""
    return sign_cms(
        OID_SECURITY_OBJECT,
        security_infos,
        signer,
        hash_algorithm=hash_algorithm,
        signing_time=signing_time,
    )


def make_master_list(
    cscas: Iterable[bytes], signer: IssuedCertificate, *, signing_time: dt.datetime | None = None
) -> bytes:
    """A CSCA master list (ICAO 9303-12 §9) of ``cscas`` (DER), signed by ``signer``."""
    certs = b"".join(sorted(bytes(c) for c in cscas))
    body = core.Integer(0).dump() + b"\x31" + _der_length(len(certs)) + certs
    content = b"\x30" + _der_length(len(body)) + body
    return sign_cms(OID_CSCA_MASTER_LIST, content, signer, signing_time=signing_time)


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def active_authentication_sign(
    key: PrivateKey,
    challenge: bytes,
    *,
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA1,
    recoverable: bytes | None = None,
) -> bytes:
    """The chip's Active Authentication signature over ``challenge`` (ICAO 9303-11 §6.1).

    RSA: ISO/IEC 9796-2 digital signature scheme 1 with partial message
    recovery; the recoverable part M1 is ``recoverable`` (random-looking filler
    derived from the challenge when not given); trailer ``BC`` for SHA-1, else
    ``<hash id> CC``. EC: ECDSA over the challenge, plain ``r || s``.
    """
    if isinstance(key, ec.EllipticCurvePrivateKey):
        der = key.sign(challenge, ec.ECDSA(hash_algorithm.new()))
        r, s = utils.decode_dss_signature(der)
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    numbers = key.private_numbers()
    n = numbers.public_numbers.n
    k = (n.bit_length() + 7) // 8
    trailer = (
        b"\xbc"
        if hash_algorithm is HashAlgorithm.SHA1
        else bytes([_HASH_IDS[hash_algorithm], 0xCC])
    )
    m1_length = k - 1 - hash_algorithm.digest_size - len(trailer)
    if recoverable is None:
        seed = hashlib.sha256(b"M1" + challenge).digest()
        recoverable = (seed * (m1_length // len(seed) + 1))[:m1_length]
    if len(recoverable) != m1_length:
        raise ValueError(f"M1 must be {m1_length} bytes for this key")
    digest = hash_algorithm.digest(recoverable + challenge)
    representative = int.from_bytes(b"\x6a" + recoverable + digest + trailer, "big")
    return pow(representative, numbers.d, n).to_bytes(k, "big")


def make_td1_mrz(
    *,
    document_number: str = "AB1234567",
    date_of_birth: str = "900115",
    date_of_expiry: str = "350101",
    surname: str = "BENANI",
    given_names: str = "FATIMA",
    sex: str = "F",
    issuing_state: str = "MAR",
    nationality: str = "MAR",
    optional_data: str = "",
) -> str:
    """A TD1 MRZ (three lines of 30, joined by newlines) with correct check digits."""
    number = document_number.ljust(9, "<")[:9]
    state = issuing_state.ljust(3, "<")
    line1 = f"ID{state}{number}{check_digit(number)}{optional_data.ljust(15, '<')}"[:30]
    birth = f"{date_of_birth}{check_digit(date_of_birth)}"
    expiry = f"{date_of_expiry}{check_digit(date_of_expiry)}"
    line2 = f"{birth}{sex}{expiry}{nationality.ljust(3, '<')}" + "<" * 11
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    line2 += str(check_digit(composite))
    name = f"{surname.replace(' ', '<')}<<{given_names.replace(' ', '<')}"
    line3 = name.ljust(30, "<")[:30]
    return "\n".join((line1.ljust(30, "<"), line2, line3))


def placeholder_jpeg(width: int = 240, height: int = 320) -> bytes:
    """JPEG markers only (SOI, JFIF APP0, SOF0 with the size, EOI).

    Enough for parsers and size sniffing; it is not a decodable picture.
    """
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = (
        b"\xff\xc0\x00\x11\x08"
        + height.to_bytes(2, "big")
        + width.to_bytes(2, "big")
        + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    )
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


@attrs.frozen
class TestDocument:
    """A personalised test document: its files and its chip's private keys.

    Attributes:
        com: EF.COM.
        data_groups: number -> file bytes (DG1, DG2, and DG14/DG15 when keys were made).
        sod: EF.SOD.
        aa_key: the Active Authentication private key (DG15), if any.
        ca_key: the Chip Authentication private key (DG14), if any.
    """

    __test__ = False  # not a pytest test class

    com: bytes = attrs.field(repr=False)
    data_groups: Mapping[int, bytes] = attrs.field(repr=lambda d: f"<DG {sorted(d)}>")
    sod: bytes = attrs.field(repr=False)
    aa_key: PrivateKey | None = attrs.field(default=None, repr=False)
    ca_key: ec.EllipticCurvePrivateKey | None = attrs.field(default=None, repr=False)
    aa_hash: HashAlgorithm = HashAlgorithm.SHA256

    def sign_active_authentication(self, challenge: bytes) -> bytes:
        """What the chip answers to INTERNAL AUTHENTICATE with ``challenge``."""
        if self.aa_key is None:
            raise ValueError("this document has no Active Authentication key")
        return active_authentication_sign(self.aa_key, challenge, hash_algorithm=self.aa_hash)


@attrs.frozen
class TestPki:
    """A country's PKI for tests: CSCA, one document signer, a master list signer.

    Validity: the CSCA from ``now - 1 year`` to ``now + 10 years``, the DS and
    master list signer from ``now - 30 days`` to ``now + 5 years``.
    """

    __test__ = False  # not a pytest test class

    now: dt.datetime
    csca: IssuedCertificate
    ds: IssuedCertificate
    master_list_signer: IssuedCertificate

    @classmethod
    def create(
        cls,
        *,
        now: dt.datetime,
        key_type: KeyType = "rsa",
        country: str = "MA",
        pss: bool = False,
        curve: str = "brainpoolP256r1",
    ) -> TestPki:
        """Make the CSCA, DS and master list signer (RSA-2048 or EC keys on ``curve``)."""
        csca = make_csca(
            not_before=now - dt.timedelta(days=365),
            not_after=now + dt.timedelta(days=3650),
            country=country,
            key=generate_key(key_type, curve=curve),
            pss=pss,
        )
        ds = make_document_signer(
            csca,
            not_before=now - dt.timedelta(days=30),
            not_after=now + dt.timedelta(days=1825),
            key=generate_key(key_type, curve=curve),
            pss=pss,
        )
        signer = make_master_list_signer(
            csca, not_before=now - dt.timedelta(days=30), not_after=now + dt.timedelta(days=1825)
        )
        return cls(now, csca, ds, signer)

    def master_list(self, extra: Iterable[bytes] = ()) -> bytes:
        """A master list holding this CSCA (and ``extra`` certificates), signed by the ML signer."""
        return make_master_list(
            [self.csca.der, *extra], self.master_list_signer, signing_time=self.now
        )

    def crl(self, revoked: Iterable[int] = ()) -> bytes:
        """A current CRL of this CSCA revoking ``revoked`` serials."""
        return make_crl(
            self.csca,
            revoked,
            this_update=self.now - dt.timedelta(days=1),
            next_update=self.now + dt.timedelta(days=30),
        )

    def issue_document(
        self,
        *,
        mrz: str | None = None,
        face: bytes | None = None,
        aa_key_type: KeyType | None = "rsa",
        aa_curve: str = "brainpoolP256r1",
        chip_authentication: bool = True,
        extra_data_groups: Mapping[int, bytes] | None = None,
        signer: IssuedCertificate | None = None,
        hash_algorithm: HashAlgorithm = HashAlgorithm.SHA256,
        pss: bool = False,
        covered: Iterable[int] | None = None,
    ) -> TestDocument:
        """Personalise a document and sign its EF.SOD.

        Args:
            mrz: the MRZ (default: :func:`make_td1_mrz`).
            face: a JPEG or JP2 for DG2 (default: :func:`placeholder_jpeg`).
            aa_key_type: make an Active Authentication key in DG15 (RSA-1024 or
                EC on ``aa_curve``), or ``None`` for no DG15.
            chip_authentication: make an ECDH Chip Authentication key in DG14.
            extra_data_groups: more files (number -> bytes), e.g. DG11.
            signer: sign with this DS instead of the PKI's own.
            covered: hash only these data groups in the SOD (default: all).
        """
        groups: dict[int, bytes] = {1: encode_dg1(mrz or make_td1_mrz())}
        image = face or placeholder_jpeg()
        width, height = image_dimensions(image) or (0, 0)
        groups[2] = encode_dg2(image, width=width, height=height)
        aa_key: PrivateKey | None = None
        ca_key: ec.EllipticCurvePrivateKey | None = None
        infos: list[si.SecurityInfo] = []
        if chip_authentication:
            ca_key = ec.generate_private_key(ec.BrainpoolP256R1())
            spki = ca_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            infos.append(si.ChipAuthenticationPublicKeyInfo(si.PublicKeyOid.ECDH, spki))
            infos.append(
                si.ChipAuthenticationInfo(si.ChipAuthenticationOid.ECDH_AES_CBC_CMAC_128, 1)
            )
        if aa_key_type is not None:
            aa_key = generate_key(aa_key_type, bits=1024, curve=aa_curve)
            spki = aa_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            groups[15] = encode_dg15(spki)
            if aa_key_type == "ec":
                infos.append(si.ActiveAuthenticationInfo(1, "1.2.840.10045.4.3.2"))
        if infos:
            groups[14] = encode_dg14(si.encode_security_infos(infos))
        groups.update(extra_data_groups or {})
        wanted = set(covered) if covered is not None else set(groups)
        sod = sign_sod(
            {n: d for n, d in groups.items() if n in wanted},
            signer or self.ds,
            hash_algorithm=hash_algorithm,
            pss=pss,
            signing_time=self.now,
        )
        return TestDocument(
            com=encode_com(sorted(groups)),
            data_groups=MappingProxyType(groups),
            sod=sod,
            aa_key=aa_key,
            ca_key=ca_key,
            aa_hash=HashAlgorithm.SHA256 if aa_key_type == "ec" else HashAlgorithm.SHA1,
        )

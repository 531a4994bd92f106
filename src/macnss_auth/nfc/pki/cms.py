"""CMS SignedData (RFC 5652) with one signer: EF.SOD, CSCA master lists, EF.CardSecurity.

The three eMRTD files are one structure: a ContentInfo holding SignedData with
one SignerInfo, over an eContent that says what it is (an LDSSecurityObject,
ICAO 9303-10 §4.6.2; a CscaMasterList, ICAO 9303-12 §9; SecurityInfos, BSI
TR-03110-3 §A.1.2.5). The ASN.1 is declared below as asn1crypto classes, each
citing its definition; :func:`parse_signed_data` decodes through them and
checks what a verifier relies on (versions, one signer, the digest algorithm
listed, single-valued signed attributes). asn1crypto decodes a field only when
it is read, so certificates and CRLs carried but unused cost nothing, and all
of its failures become :class:`PkiFormatError` through
:func:`macnss_auth.nfc.asn1.decoding`.

The envelope may use BER lengths (RFC 5652 §5.1 allows it, and asn1crypto
reads them); what is signed cannot: the content is hashed as carried, and the
signed attributes are verified as their DER SET OF (RFC 5652 §5.4).
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
from collections.abc import Iterable
from typing import Any, ClassVar

import attrs
from asn1crypto import algos, core, x509
from asn1crypto import cms as asn1_cms

from macnss_auth.errors import UnsupportedAlgorithm
from macnss_auth.nfc.asn1 import decoding, int_repr
from macnss_auth.nfc.pki.certificates import Certificate, name_key_of, parse_certificate
from macnss_auth.nfc.pki.errors import PkiFormatError, SignatureInvalid
from macnss_auth.nfc.pki.keys import aware
from macnss_auth.nfc.pki.signatures import (
    HASH_OIDS,
    HashAlgorithm,
    SignatureScheme,
    verify_signature,
)

__all__ = ["SignedContent", "parse_signed_data"]

OID_SIGNED_DATA = "1.2.840.113549.1.7.2"  # RFC 5652 §5.1: id-signedData
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"  # RFC 5652 §11.1
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"  # RFC 5652 §11.2
OID_SIGNING_TIME = "1.2.840.113549.1.9.5"  # RFC 5652 §11.3


@attrs.frozen
class SignedContent:
    """A parsed CMS SignedData with one SignerInfo.

    Attributes:
        content_type: the eContentType OID (dotted).
        content: the eContent bytes (what was signed, directly or via attributes).
        certificates: certificates carried in the SignedData.
        signer_issuer_key / signer_serial: the signer identifier (issuer and serial), or
        signer_key_identifier: the subjectKeyIdentifier form of it.
        digest_algorithm: the SignerInfo digest algorithm.
        scheme: the signature scheme.
        signed_attributes: DER of the signed attributes as a SET (what is signed), if any.
        message_digest: the messageDigest attribute.
        content_type_attribute: the contentType attribute (dotted).
        signing_time: the signingTime attribute.
    """

    content_type: str
    content: bytes = attrs.field(repr=False)
    certificates: tuple[Certificate, ...] = attrs.field(repr=False)
    signer_issuer_key: str | None = attrs.field(repr=False)
    signer_serial: int | None = attrs.field(repr=int_repr)
    signer_key_identifier: bytes | None = attrs.field(repr=False)
    digest_algorithm: HashAlgorithm
    scheme: SignatureScheme
    signature: bytes = attrs.field(repr=False)
    signed_attributes: bytes | None = attrs.field(repr=False)
    message_digest: bytes | None = attrs.field(repr=False)
    content_type_attribute: str | None
    signing_time: dt.datetime | None

    def signer_certificate(self, extra: Iterable[Certificate] = ()) -> Certificate | None:
        """The certificate (carried, or among ``extra``) that the signer identifier names."""
        for cert in (*self.certificates, *extra):
            if self.signer_key_identifier is not None:
                if cert.subject_key_identifier == self.signer_key_identifier:
                    return cert
            elif (
                cert.issuer_key == self.signer_issuer_key
                and cert.serial_number == self.signer_serial
            ):
                return cert
        return None

    def verify(self, signer: Certificate) -> None:
        """Verify the signature (and, with signed attributes, the content digest).

        Raises:
            SignatureInvalid: the digest or signature does not match.
            UnsupportedAlgorithm: an unsupported algorithm or curve.
        """
        if self.signed_attributes is None:
            signed = self.content
        else:
            if self.message_digest is None:
                raise SignatureInvalid("signed attributes lack a message digest")
            if self.content_type_attribute != self.content_type:
                raise SignatureInvalid("contentType attribute differs from eContentType")
            digest = self.digest_algorithm.digest(self.content)
            if not _constant_time_eq(digest, self.message_digest):
                raise SignatureInvalid("message digest does not match the content")
            signed = self.signed_attributes
        verify_signature(signer.public_key, self.scheme, signed, self.signature)


def _constant_time_eq(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


# The structures, declared as RFC 5652 and the ICAO profiles of it give them.
# They are this module's own classes rather than asn1crypto.cms's: those parse
# a version-1 SignedData as PKCS#7 (eContent ANY instead of OCTET STRING) and
# decode every known signed attribute eagerly; a verifier needs neither.


class _Attribute(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # RFC 5652 §5.3: Attribute ::= SEQUENCE { attrType OBJECT IDENTIFIER,
    #   attrValues SET OF AttributeValue }; each value is decoded by its type below.
    _fields: ClassVar[list[tuple[str, Any, dict[str, Any]]]] = [
        ("type", core.ObjectIdentifier, {}),
        ("values", core.SetOf, {"spec": core.Any}),
    ]


class _Attributes(core.SetOf):  # type: ignore[misc]  # asn1crypto is untyped
    # RFC 5652 §5.3: SignedAttributes / UnsignedAttributes ::= SET SIZE (1..MAX) OF Attribute
    _child_spec = _Attribute


class _SignerInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # RFC 5652 §5.3 (ICAO 9303-10 §4.6.2 profiles it for EF.SOD: one signer,
    # signed attributes with contentType and messageDigest).
    _fields: ClassVar[list[tuple[str, Any, dict[str, Any]]]] = [
        ("version", core.Integer, {}),
        ("sid", asn1_cms.SignerIdentifier, {}),
        ("digest_algorithm", algos.DigestAlgorithm, {}),
        ("signed_attrs", _Attributes, {"implicit": 0, "optional": True}),
        ("signature_algorithm", algos.SignedDigestAlgorithm, {}),
        ("signature", core.OctetString, {}),
        ("unsigned_attrs", _Attributes, {"implicit": 1, "optional": True}),
    ]


class _SignerInfos(core.SetOf):  # type: ignore[misc]  # asn1crypto is untyped
    # RFC 5652 §5.1: SignerInfos ::= SET OF SignerInfo
    _child_spec = _SignerInfo


class _EncapsulatedContentInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # RFC 5652 §5.2: eContent [0] EXPLICIT OCTET STRING OPTIONAL, whatever the version.
    _fields: ClassVar[list[tuple[str, Any, dict[str, Any]]]] = [
        ("content_type", core.ObjectIdentifier, {}),
        ("content", core.OctetString, {"explicit": 0, "optional": True}),
    ]


class _SignedData(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # RFC 5652 §5.1; the eMRTD profiles: ICAO 9303-10 §4.6.2 (EF.SOD),
    # ICAO 9303-12 §9 (CSCA master lists), BSI TR-03110-3 §A.1.2.5 (EF.CardSecurity).
    _fields: ClassVar[list[tuple[str, Any, dict[str, Any]]]] = [
        ("version", core.Integer, {}),
        ("digest_algorithms", asn1_cms.DigestAlgorithms, {}),
        ("encap_content_info", _EncapsulatedContentInfo, {}),
        ("certificates", asn1_cms.CertificateSet, {"implicit": 0, "optional": True}),
        # Never decoded: CRLs carried in the SignedData are not used.
        ("crls", asn1_cms.RevocationInfoChoices, {"implicit": 1, "optional": True}),
        ("signer_infos", _SignerInfos, {}),
    ]


class _ContentInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # RFC 5652 §3: ContentInfo ::= SEQUENCE { contentType, content [0] EXPLICIT ANY }.
    # Declared as SignedData: asn1crypto decodes a field only when it is read,
    # and the parser reads it only once contentType says SignedData.
    _fields: ClassVar[list[tuple[str, Any, dict[str, Any]]]] = [
        ("content_type", core.ObjectIdentifier, {}),
        ("content", _SignedData, {"explicit": 0, "optional": True}),
    ]


@functools.lru_cache(maxsize=256)
def _dotted(der: bytes) -> str:
    """The dotted form of an OBJECT IDENTIFIER, refused unless it is DER.

    asn1crypto reads padded subidentifiers without complaint; an OID that names
    a digest or a content type must have one encoding, so it is checked here,
    once per distinct OID (a handful recur in every envelope: the cache).

    Raises:
        PkiFormatError: not the DER of an OID (X.690 §8.19: every subidentifier
            in the fewest octets, the last octet closing one), or over 64 octets.
    """
    with decoding("OID", error=PkiFormatError):
        oid = core.ObjectIdentifier.load(der, strict=True)
        value = bytes(oid.contents)
        starts = [0, *(n + 1 for n, byte in enumerate(value[:-1]) if not byte & 0x80)]
        if not value or value[-1] & 0x80 or len(value) > 64 or 0x80 in (value[n] for n in starts):
            raise PkiFormatError("malformed OID", field="OID")
        return str(oid.dotted)


def _oid(value: Any) -> str:
    return _dotted(value.dump())


@functools.lru_cache(maxsize=256)
def _scheme_of(algorithm_der: bytes, digest_name: str) -> SignatureScheme:
    with decoding("signature algorithm", error=PkiFormatError):
        algorithm = algos.SignedDigestAlgorithm.load(algorithm_der, strict=True)
        return SignatureScheme.from_asn1(algorithm, digest_name)


def parse_signed_data(der: bytes) -> SignedContent:
    """Parse a CMS ContentInfo holding SignedData with exactly one SignerInfo (RFC 5652 §5).

    Raises:
        PkiFormatError: malformed, not SignedData, no content, or not one signer.
        UnsupportedAlgorithm: unsupported digest or signature algorithm.
    """
    with decoding("CMS SignedData", error=PkiFormatError):
        info = _ContentInfo.load(bytes(der), strict=True)
        if _oid(info["content_type"]) != OID_SIGNED_DATA:
            raise PkiFormatError("not CMS SignedData", field="content_type")
        signed = info["content"]
        if isinstance(signed, core.Void):
            raise PkiFormatError("not CMS SignedData", field="content_type")
        return _signed_content(signed)


def _signed_content(signed: Any) -> SignedContent:
    """The SignedContent of a decoded ``_SignedData`` (inside :func:`decoding`)."""
    # RFC 5652 §5.1: version 1 or 3 (4/5 only with attribute certificates or other formats).
    if signed["version"].native not in (1, 3, 4, 5):
        raise PkiFormatError("unknown SignedData version", field="CMS SignedData")
    encap = signed["encap_content_info"]
    if isinstance(encap["content"], core.Void):
        raise PkiFormatError("SignedData carries no content", field="content")
    certificates = tuple(
        parse_certificate(choice.chosen.dump())
        for choice in signed["certificates"] or ()
        if choice.name == "certificate"
    )
    signer_infos = signed["signer_infos"]
    if len(signer_infos) != 1:
        raise PkiFormatError("expected exactly one SignerInfo", field="signer_infos")
    signer = signer_infos[0]
    sid = signer["sid"]
    issuer_key = serial = ski = None
    if sid.name == "issuer_and_serial_number":
        number = sid.chosen["serial_number"]
        if not number.contents:
            raise PkiFormatError("malformed issuerAndSerialNumber", field="sid")
        issuer_key = name_key_of(sid.chosen["issuer"].dump())
        # Negative serial numbers occur in real certificates: read them as DER says.
        serial = int(number.native)
    else:
        ski = bytes(sid.chosen.native)
    digest = signer["digest_algorithm"]
    digest_oid = _oid(digest["algorithm"])
    digest_name = HASH_OIDS.get(digest_oid)
    if digest_name is None:
        raise UnsupportedAlgorithm("the SignerInfo digest algorithm is not supported")
    # RFC 5652 §5.3: version 1 with issuerAndSerialNumber, 3 with subjectKeyIdentifier.
    if signer["version"].native != (1 if ski is None else 3):
        raise PkiFormatError("SignerInfo version does not match its sid", field="signer_info")
    if digest["parameters"].dump() not in (b"", b"\x05\x00"):
        raise PkiFormatError("digest algorithm parameters must be absent or NULL", field="digest")
    if all(_oid(item["algorithm"]) != digest_oid for item in signed["digest_algorithms"]):
        raise PkiFormatError("the signer's digest algorithm is not listed", field="digest")
    attributes = _SignedAttributes.of(signer["signed_attrs"])
    return SignedContent(
        content_type=_oid(encap["content_type"]),
        content=bytes(encap["content"].native),
        certificates=certificates,
        signer_issuer_key=issuer_key,
        signer_serial=serial,
        signer_key_identifier=ski,
        digest_algorithm=HashAlgorithm.from_name(digest_name),
        scheme=_scheme_of(signer["signature_algorithm"].dump(), digest_name),
        signature=bytes(signer["signature"].native),
        signed_attributes=attributes.der,
        message_digest=attributes.message_digest,
        content_type_attribute=attributes.content_type,
        signing_time=attributes.signing_time,
    )


@attrs.frozen
class _SignedAttributes:
    """What the verifier takes from the signed attributes (RFC 5652 §5.3, §11)."""

    der: bytes | None = None
    message_digest: bytes | None = None
    content_type: str | None = None
    signing_time: dt.datetime | None = None

    @classmethod
    def of(cls, attributes: Any) -> _SignedAttributes:
        if isinstance(attributes, core.Void):
            return cls()
        message_digest = content_type = signing_time = None
        for attribute in attributes:
            values = attribute["values"]
            if len(values) != 1:
                raise PkiFormatError("signed attribute must have one value", field="signed_attrs")
            kind = _oid(attribute["type"])
            if kind == OID_MESSAGE_DIGEST:  # RFC 5652 §11.2
                message_digest = bytes(values[0].parse(core.OctetString).native)
            elif kind == OID_CONTENT_TYPE:  # RFC 5652 §11.1
                content_type = _oid(values[0].parse(core.ObjectIdentifier))
            elif kind == OID_SIGNING_TIME:  # RFC 5652 §11.3
                signing_time = aware(values[0].parse(x509.Time).native)
        # The signature covers the attributes with a SET OF tag, not [0] (RFC 5652 §5.4).
        der = b"\x31" + attributes.dump()[1:]
        return cls(der, message_digest, content_type, signing_time)

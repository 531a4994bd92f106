"""CMS SignedData (RFC 5652) with one signer: EF.SOD, CSCA master lists, EF.CardSecurity."""

from __future__ import annotations

import datetime as dt
import functools
import hmac
from collections.abc import Iterable

import attrs
from asn1crypto import algos, core

from macnss_auth.errors import MalformedInput, UnsupportedAlgorithm
from macnss_auth.nfc import tlv
from macnss_auth.nfc.asn1 import decoding
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
    signer_serial: int | None
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


def _der_items(data: bytes, field: str) -> list[tuple[int, bytes, bytes]]:
    """(tag, value, whole encoding) of the DER objects that fill ``data`` exactly."""
    out: list[tuple[int, bytes, bytes]] = []
    offset = 0
    while offset < len(data):
        try:
            item, end = tlv.parse_one(data, offset)
        except MalformedInput as exc:
            raise PkiFormatError(f"malformed {field}: {exc}", field=field) from exc
        out.append((item.tag, item.value, data[offset:end]))
        offset = end
    return out


def _der_expect(
    items: list[tuple[int, bytes, bytes]], index: int, tag: int, field: str
) -> tuple[bytes, bytes]:
    if index >= len(items) or items[index][0] != tag:
        raise PkiFormatError(f"malformed {field}: expected tag {tag:#x}", field=field)
    return items[index][1], items[index][2]


def _der_oid(value: bytes, field: str) -> str:
    """Decode the content octets of an OBJECT IDENTIFIER (X.690 §8.19)."""
    if not value or value[-1] & 0x80 or len(value) > 64:
        raise PkiFormatError(f"malformed OID in {field}", field=field)
    numbers: list[int] = []
    current = 0
    for index, byte in enumerate(value):
        if current == 0 and byte == 0x80 and (index == 0 or not value[index - 1] & 0x80):
            raise PkiFormatError(f"non-minimal OID in {field}", field=field)
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            numbers.append(current)
            current = 0
    first = numbers[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(n) for n in head + numbers[1:])


@functools.lru_cache(maxsize=256)
def _scheme_of(algorithm_der: bytes, digest_name: str) -> SignatureScheme:
    with decoding("signature algorithm", error=PkiFormatError):
        algorithm = algos.SignedDigestAlgorithm.load(algorithm_der, strict=True)
        return SignatureScheme.from_asn1(algorithm, digest_name)


def parse_signed_data(der: bytes) -> SignedContent:
    """Parse a CMS ContentInfo holding SignedData with exactly one SignerInfo (RFC 5652 §5).

    The envelope is walked with the bounded TLV reader (every length checked
    against its buffer); asn1crypto decodes only certificates, algorithm
    identifiers and times.

    Raises:
        PkiFormatError: malformed, not SignedData, no content, or not one signer.
        UnsupportedAlgorithm: unsupported digest or signature algorithm.
    """
    data = bytes(der)
    field = "CMS SignedData"
    top = _der_items(data, field)
    if len(top) != 1 or top[0][0] != 0x30:
        raise PkiFormatError("not one DER ContentInfo", field=field)
    info = _der_items(top[0][1], field)
    content_type, _ = _der_expect(info, 0, 0x06, field)
    if _der_oid(content_type, field) != "1.2.840.113549.1.7.2" or len(info) != 2:
        raise PkiFormatError("not CMS SignedData", field="content_type")
    explicit, _ = _der_expect(info, 1, 0xA0, field)
    wrapper = _der_items(explicit, field)
    if len(wrapper) != 1:
        raise PkiFormatError("malformed SignedData wrapper", field=field)
    body = _der_items(_der_expect(wrapper, 0, 0x30, field)[0], field)
    # RFC 5652 §5.1: version 1 or 3 (4/5 only with attribute certificates or other formats).
    if _der_expect(body, 0, 0x02, field)[0] not in (b"\x01", b"\x03", b"\x04", b"\x05"):
        raise PkiFormatError("unknown SignedData version", field=field)
    digest_set = _der_items(_der_expect(body, 1, 0x31, field)[0], "digest_algorithms")
    encap = _der_items(_der_expect(body, 2, 0x30, field)[0], field)
    econtent_type = _der_oid(_der_expect(encap, 0, 0x06, field)[0], field)
    if len(encap) != 2:
        raise PkiFormatError("SignedData carries no content", field="content")
    econtent = _der_items(_der_expect(encap, 1, 0xA0, field)[0], field)
    if len(econtent) != 1:
        raise PkiFormatError("malformed eContent", field="content")
    content_bytes, _ = _der_expect(econtent, 0, 0x04, "content")
    index = 3
    certs: list[Certificate] = []
    if index < len(body) and body[index][0] == 0xA0:
        certs = [
            parse_certificate(raw)
            for tag, _, raw in _der_items(body[index][1], "certificates")
            if tag == 0x30
        ]
        index += 1
    if index < len(body) and body[index][0] == 0xA1:
        index += 1  # CRLs carried in the SignedData are not used
    signer_set, _ = _der_expect(body, index, 0x31, field)
    if index + 1 != len(body):
        raise PkiFormatError("unexpected fields after signerInfos", field=field)
    signer_infos = _der_items(signer_set, "signer_infos")
    if len(signer_infos) != 1 or signer_infos[0][0] != 0x30:
        raise PkiFormatError("expected exactly one SignerInfo", field="signer_infos")
    signer = _der_items(signer_infos[0][1], "signer_info")
    signer_version = _der_expect(signer, 0, 0x02, "signer_info")[0]
    issuer_key = serial = ski = None
    if len(signer) > 1 and signer[1][0] == 0x30:
        sid = _der_items(signer[1][1], "sid")
        _, name_raw = _der_expect(sid, 0, 0x30, "sid")
        serial_value, _ = _der_expect(sid, 1, 0x02, "sid")
        if len(sid) != 2 or not serial_value:
            raise PkiFormatError("malformed issuerAndSerialNumber", field="sid")
        issuer_key = name_key_of(name_raw)
        # Negative serial numbers occur in real certificates: read them as DER says.
        serial = int.from_bytes(serial_value, "big", signed=True)
    else:
        ski = _der_expect(signer, 1, 0x80, "sid")[0]
    digest_items = _der_items(_der_expect(signer, 2, 0x30, "digest_algorithm")[0], "digest")
    digest_name = HASH_OIDS.get(_der_oid(_der_expect(digest_items, 0, 0x06, "digest")[0], "digest"))
    if digest_name is None:
        raise UnsupportedAlgorithm("the SignerInfo digest algorithm is not supported")
    # RFC 5652 §5.3: version 1 with issuerAndSerialNumber, 3 with subjectKeyIdentifier.
    if signer_version != (b"\x01" if ski is None else b"\x03"):
        raise PkiFormatError("SignerInfo version does not match its sid", field="signer_info")
    if len(digest_items) > 2 or (len(digest_items) == 2 and digest_items[1][2] != b"\x05\x00"):
        raise PkiFormatError("digest algorithm parameters must be absent or NULL", field="digest")
    listed = [_der_items(value, "digest_algorithms") for tag, value, _ in digest_set if tag == 0x30]
    if not any(items and items[0][2] == digest_items[0][2] for items in listed):
        raise PkiFormatError("the signer's digest algorithm is not listed", field="digest")
    index = 3
    attrs_der = digest_attr = ct_attr = None
    signing_time = None
    if index < len(signer) and signer[index][0] == 0xA0:
        value, raw = signer[index][1], signer[index][2]
        # The signature covers the attributes with a SET OF tag, not [0] (RFC 5652 §5.4).
        attrs_der = b"\x31" + raw[1:]
        for tag, attribute, _ in _der_items(value, "signed_attrs"):
            parts = _der_items(attribute, "signed_attrs") if tag == 0x30 else []
            kind = _der_oid(_der_expect(parts, 0, 0x06, "signed_attrs")[0], "signed_attrs")
            values = _der_items(_der_expect(parts, 1, 0x31, "signed_attrs")[0], "signed_attrs")
            if len(parts) != 2 or len(values) != 1:
                raise PkiFormatError("signed attribute must have one value", field="signed_attrs")
            value_tag, _, value_raw = values[0]
            if kind == "1.2.840.113549.1.9.4":
                digest_attr = _der_expect(values, 0, 0x04, "message_digest")[0]
            elif kind == "1.2.840.113549.1.9.3":
                ct_attr = _der_oid(_der_expect(values, 0, 0x06, "content_type")[0], "content_type")
            elif kind == "1.2.840.113549.1.9.5":
                signing_time = _time_of(value_tag, value_raw)
        index += 1
    _, algorithm_raw = _der_expect(signer, index, 0x30, "signature_algorithm")
    signature, _ = _der_expect(signer, index + 1, 0x04, "signature")
    if index + 2 < len(signer) and signer[index + 2][0] != 0xA1:
        raise PkiFormatError("unexpected fields in SignerInfo", field="signer_info")
    return SignedContent(
        content_type=econtent_type,
        content=content_bytes,
        certificates=tuple(certs),
        signer_issuer_key=issuer_key,
        signer_serial=serial,
        signer_key_identifier=ski,
        digest_algorithm=HashAlgorithm.from_name(digest_name),
        scheme=_scheme_of(algorithm_raw, digest_name),
        signature=signature,
        signed_attributes=attrs_der,
        message_digest=digest_attr,
        content_type_attribute=ct_attr,
        signing_time=signing_time,
    )


def _time_of(tag: int, raw: bytes) -> dt.datetime:
    with decoding("signing time", error=PkiFormatError):
        if tag == 0x17:
            return aware(core.UTCTime.load(raw, strict=True).native)
        if tag == 0x18:
            return aware(core.GeneralizedTime.load(raw, strict=True).native)
    raise PkiFormatError("signing time is not a Time", field="signing_time")

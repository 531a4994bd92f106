"""X.509 certificates (RFC 5280), parsed tolerantly: negative serials, NULL parameters.

Parsing is cached by DER bytes; name comparison uses the RFC 5280 §7.1 folded form.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from typing import Any

import attrs
from asn1crypto import algos, x509

from macnss_auth.nfc.asn1 import decoding, int_repr
from macnss_auth.nfc.pki.errors import PkiFormatError
from macnss_auth.nfc.pki.keys import PublicKeyInfo, aware, parse_public_key_info, whole_bytes
from macnss_auth.nfc.pki.signatures import SignatureScheme, verify_signature

__all__ = ["Certificate", "name_key", "name_key_of", "parse_certificate"]


@attrs.frozen(eq=False)
class Certificate:
    """An X.509 certificate, parsed tolerantly (negative serials, NULL parameters).

    Equality is by DER bytes.

    Attributes:
        der: the certificate's DER.
        subject / issuer: RFC 4514-like readable names.
        subject_key / issuer_key: canonical forms for matching names.
        serial_number: may be negative in real certificates.
        subject_key_identifier / authority_key_identifier: when present.
        key_usage: key usage bit names (``None`` when the extension is absent).
        is_ca: basicConstraints cA (``None`` when absent).
        private_key_usage_period: (not_before, not_after) when present.
        public_key: the subject's key.
    """

    der: bytes = attrs.field(repr=False)
    subject: str
    issuer: str
    subject_key: str = attrs.field(repr=False)
    issuer_key: str = attrs.field(repr=False)
    # RFC 5280 allows 20 octets; a hostile one of 2 KB made repr() raise ValueError.
    serial_number: int = attrs.field(repr=int_repr)
    not_before: dt.datetime
    not_after: dt.datetime
    subject_key_identifier: bytes | None = attrs.field(repr=False)
    authority_key_identifier: bytes | None = attrs.field(repr=False)
    key_usage: frozenset[str] | None
    is_ca: bool | None
    private_key_usage_period: tuple[dt.datetime | None, dt.datetime | None] | None
    country: str | None
    public_key: PublicKeyInfo = attrs.field(repr=False)
    signature_scheme_der: bytes = attrs.field(repr=False)
    tbs_der: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Certificate) and other.der == self.der

    def __hash__(self) -> int:
        return hash(self.der)

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of the DER."""
        return hashlib.sha256(self.der).digest()

    @property
    def self_issued(self) -> bool:
        """Issuer name equals subject name."""
        return self.subject_key == self.issuer_key

    def valid_at(self, when: dt.datetime) -> bool:
        """Whether ``when`` is inside notBefore..notAfter."""
        return self.not_before <= when <= self.not_after

    def signature_scheme(self) -> SignatureScheme:
        """The scheme of this certificate's own signature."""
        return SignatureScheme.from_asn1(
            algos.SignedDigestAlgorithm.load(self.signature_scheme_der)
        )

    def verify_issued_by(self, issuer: Certificate) -> None:
        """Verify this certificate's signature with ``issuer``'s key.

        Raises:
            SignatureInvalid: the signature does not verify.
            UnsupportedAlgorithm: the algorithm or curve is not supported.
        """
        verify_signature(
            issuer.public_key,
            self.signature_scheme(),
            self.tbs_der,
            self.signature,
        )


def name_key(name: Any) -> str:
    # RFC 5280 §7.1 comparison form (case- and space-folded); cached by DER
    # because asn1crypto's string preparation is the slowest part of a SOD parse.
    return name_key_of(name.dump())


@functools.lru_cache(maxsize=4096)
def name_key_of(der: bytes) -> str:
    with decoding("name", error=PkiFormatError):
        return str(x509.Name.load(der, strict=True).hashable)


def parse_certificate(der: bytes) -> Certificate:
    """Parse an X.509 certificate (DER).

    Raises:
        PkiFormatError: malformed DER or fields.
    """
    return _parse_certificate(bytes(der))


@functools.lru_cache(maxsize=8192)
def _parse_certificate(der: bytes) -> Certificate:
    with decoding("certificate", error=PkiFormatError):
        cert = x509.Certificate.load(der, strict=True)
        tbs = cert["tbs_certificate"]
        validity = tbs["validity"]
        ski = cert.key_identifier
        aki = cert.authority_key_identifier
        ku = cert.key_usage_value
        bc = cert.basic_constraints_value
        pkup = cert.private_key_usage_period_value
        country = None
        for rdn in tbs["subject"].chosen:
            for attr in rdn:
                if attr["type"].native == "country_name":
                    country = str(attr["value"].native)
        return Certificate(
            der=der,
            subject=tbs["subject"].human_friendly,
            issuer=tbs["issuer"].human_friendly,
            subject_key=name_key(tbs["subject"]),
            issuer_key=name_key(tbs["issuer"]),
            serial_number=int(tbs["serial_number"].native),
            not_before=aware(validity["not_before"].native),
            not_after=aware(validity["not_after"].native),
            subject_key_identifier=bytes(ski) if ski is not None else None,
            authority_key_identifier=bytes(aki) if aki is not None else None,
            key_usage=frozenset(ku.native) if ku is not None else None,
            is_ca=bool(bc["ca"].native) if bc is not None else None,
            private_key_usage_period=(
                (
                    aware(pkup["not_before"].native) if pkup["not_before"].native else None,
                    aware(pkup["not_after"].native) if pkup["not_after"].native else None,
                )
                if pkup is not None
                else None
            ),
            country=country,
            public_key=parse_public_key_info(tbs["subject_public_key_info"].dump()),
            signature_scheme_der=cert["signature_algorithm"].dump(),
            tbs_der=tbs.dump(),
            signature=whole_bytes(cert["signature_value"], "certificate signature"),
        )

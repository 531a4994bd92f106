"""CSCA master lists (ICAO 9303-12 §9) and certificate revocation lists (RFC 5280 §5)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, ClassVar

import attrs
from asn1crypto import algos, core, crl, x509

from macnss_auth.errors import UnsupportedAlgorithm
from macnss_auth.nfc.asn1 import decoding
from macnss_auth.nfc.pki.certificates import Certificate, name_key, parse_certificate
from macnss_auth.nfc.pki.cms import SignedContent, parse_signed_data
from macnss_auth.nfc.pki.errors import PkiFormatError, SignatureInvalid
from macnss_auth.nfc.pki.keys import aware, whole_bytes
from macnss_auth.nfc.pki.signatures import SignatureScheme, verify_signature

__all__ = [
    "OID_CSCA_MASTER_LIST",
    "CertificateRevocationList",
    "MasterList",
    "parse_crl",
    "parse_master_list",
]

OID_CSCA_MASTER_LIST = "2.23.136.1.1.2"  # ICAO 9303-12 §9: id-icao-cscaMasterList


class _CscaMasterList(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # ICAO 9303-12 §9: CscaMasterList ::= SEQUENCE { version, certList SET OF Certificate }
    _fields: ClassVar[list[tuple[str, Any, dict[str, Any]]]] = [
        ("version", core.Integer, {}),
        ("cert_list", core.SetOf, {"spec": x509.Certificate}),
    ]


@attrs.frozen
class MasterList:
    """A CSCA master list (ICAO 9303-12 §9), parsed but not yet verified.

    Attributes:
        certificates: the CSCA (and link) certificates listed.
        signed: the CMS envelope; ``signed.signer_certificate()`` is the master list signer.
        skipped: entries that could not be parsed (kept out of the list, counted here).
    """

    certificates: tuple[Certificate, ...] = attrs.field(repr=lambda c: f"<{len(c)} certificates>")
    signed: SignedContent = attrs.field(repr=False)
    skipped: int = 0

    def by_country(self, country: str) -> tuple[Certificate, ...]:
        """The listed certificates whose subject country is ``country`` (e.g. ``"MA"``)."""
        wanted = country.upper()
        return tuple(c for c in self.certificates if (c.country or "").upper() == wanted)

    @property
    def signer(self) -> Certificate | None:
        """The master list signer's certificate (carried in the CMS)."""
        return self.signed.signer_certificate()

    def verify(self, trusted: Iterable[Certificate] = ()) -> Certificate:
        """Verify the list's CMS signature and its signer's certificate.

        The signer must be certified by a CSCA in ``trusted`` when given, else by a
        CSCA in the list itself (a self-consistent list: trust then rests on how
        you obtained the file).

        Returns:
            The CSCA that certified the master list signer.

        Raises:
            SignatureInvalid: the list signature, or the signer's certificate, does not verify.
            UnsupportedAlgorithm: an algorithm that cannot be checked.
        """
        signer = self.signer
        if signer is None:
            raise SignatureInvalid("the master list signer's certificate is missing")
        if signer.key_usage is not None and "digital_signature" not in signer.key_usage:
            raise SignatureInvalid("the master list signer may not sign")
        self.signed.verify(signer)
        issuers = tuple(trusted) or self.certificates
        for csca in issuers:
            if csca.subject_key != signer.issuer_key:
                continue
            if (
                signer.authority_key_identifier is not None
                and csca.subject_key_identifier is not None
                and signer.authority_key_identifier != csca.subject_key_identifier
            ):
                continue
            try:
                signer.verify_issued_by(csca)
            except (SignatureInvalid, UnsupportedAlgorithm, PkiFormatError):
                continue
            return csca
        raise SignatureInvalid("no CSCA certifies the master list signer")


def parse_master_list(der: bytes) -> MasterList:
    """Parse a CSCA master list file (CMS SignedData over CscaMasterList).

    Raises:
        PkiFormatError: malformed, or not a master list.
    """
    signed = parse_signed_data(der)
    if signed.content_type != OID_CSCA_MASTER_LIST:
        raise PkiFormatError("not a CSCA master list", field="content_type")
    with decoding("CscaMasterList", error=PkiFormatError):
        body = _CscaMasterList.load(signed.content, strict=True)
        certs: list[Certificate] = []
        skipped = 0
        for item in body["cert_list"]:
            try:
                certs.append(parse_certificate(item.dump()))
            except (PkiFormatError, UnsupportedAlgorithm):  # noqa: PERF203 (count bad entries)
                skipped += 1
    return MasterList(tuple(certs), signed, skipped)


@attrs.frozen
class CertificateRevocationList:
    """A parsed CRL (RFC 5280 §5)."""

    der: bytes = attrs.field(repr=False)
    issuer: str
    issuer_key: str = attrs.field(repr=False)
    authority_key_identifier: bytes | None = attrs.field(repr=False)
    this_update: dt.datetime
    next_update: dt.datetime | None
    revoked: frozenset[int] = attrs.field(repr=lambda r: f"<{len(r)} serials>")
    scheme_der: bytes = attrs.field(repr=False)
    tbs_der: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)

    def verify_issued_by(self, issuer: Certificate) -> None:
        """Verify the CRL signature with ``issuer``'s key.

        Raises:
            SignatureInvalid: it does not verify.
        """
        scheme = SignatureScheme.from_asn1(algos.SignedDigestAlgorithm.load(self.scheme_der))
        verify_signature(issuer.public_key, scheme, self.tbs_der, self.signature)


def parse_crl(der: bytes) -> CertificateRevocationList:
    """Parse a DER CRL.

    Raises:
        PkiFormatError: malformed.
    """
    with decoding("CRL", error=PkiFormatError):
        parsed = crl.CertificateList.load(bytes(der), strict=True)
        tbs = parsed["tbs_cert_list"]
        next_update = tbs["next_update"].native
        return CertificateRevocationList(
            der=bytes(der),
            issuer=tbs["issuer"].human_friendly,
            issuer_key=name_key(tbs["issuer"]),
            authority_key_identifier=(
                bytes(parsed.authority_key_identifier)
                if parsed.authority_key_identifier is not None
                else None
            ),
            this_update=aware(tbs["this_update"].native),
            next_update=aware(next_update) if next_update is not None else None,
            revoked=frozenset(
                int(entry["user_certificate"].native) for entry in tbs["revoked_certificates"]
            ),
            scheme_der=parsed["signature_algorithm"].dump(),
            tbs_der=tbs.dump(),
            signature=whole_bytes(parsed["signature"], "CRL signature"),
        )

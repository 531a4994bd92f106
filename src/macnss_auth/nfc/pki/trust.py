"""The trust store: CSCA anchors with their provenance, CRLs, document signer validation."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs
from asn1crypto import pem

from macnss_auth.errors import UnsupportedAlgorithm
from macnss_auth.nfc.pki.certificates import Certificate, parse_certificate
from macnss_auth.nfc.pki.errors import PkiFormatError, SignatureInvalid
from macnss_auth.nfc.pki.masterlists import (
    CertificateRevocationList,
    MasterList,
    parse_crl,
    parse_master_list,
)

__all__ = ["ChainResult", "RevocationStatus", "TrustAnchor", "TrustSource", "TrustStore"]


class TrustSource(str, enum.Enum):
    """How a CSCA certificate came to be trusted."""

    MASTER_LIST = "master_list"
    FILE = "file"
    LINK_CERTIFICATE = "link_certificate"
    EXPLICIT = "explicit"


class RevocationStatus(str, enum.Enum):
    """What the CRLs say about a document signer."""

    GOOD = "good"  # not listed on a current CRL of the issuing CSCA
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # no current CRL from the issuing CSCA (or not checked)

    # Shown and formatted as the value (``"good"``), as the plain strings were.
    __str__ = str.__str__
    __format__ = str.__format__  # type: ignore[assignment]


@attrs.frozen
class TrustAnchor:
    """A trusted CSCA certificate and why it is trusted."""

    certificate: Certificate
    source: TrustSource
    detail: str


@attrs.frozen
class ChainResult:
    """The outcome of validating a document signer certificate against the trust store.

    Attributes:
        trusted: the DS chains to a trust anchor and every check passed.
        reason: why not (or what anchor it chains to).
        anchor: the CSCA anchor, when one verified the DS signature.
        issuer_name: the DS issuer as written in the certificate.
        revocation: good, revoked or unknown (no CRL for the issuer).
        revocation_reason: details for the CRL check.
    """

    trusted: bool
    reason: str
    anchor: TrustAnchor | None
    issuer_name: str
    revocation: RevocationStatus
    revocation_reason: str


class TrustStore:
    """CSCA trust anchors and CRLs, with cached chain validation.

    What is trusted and why:

    * ``add_csca(cert)`` / ``load_directory(path)``: the caller vouches for the file.
    * ``load_master_list(data)``: the list's CMS signature and its signer are
      verified, and the signer must be certified by a CSCA already in this
      store. ``trust_as_is=True`` accepts a signer certified by a CSCA inside
      the list itself: the list is then only as trustworthy as the channel you
      got the file through, so it must be asked for explicitly.
    * ``add_link_certificate(cert)``: trusted only if an existing anchor signed it.
    * ``add_crl(crl)``: kept only if a trusted CSCA signed it.

    Validation caches signature checks (per certificate pair), so a warm store
    validates a known document signer with only the cheap date and CRL checks.
    """

    def __init__(self) -> None:
        self._anchors: dict[bytes, TrustAnchor] = {}
        self._by_subject: dict[str, list[TrustAnchor]] = {}
        self._crls: dict[str, list[CertificateRevocationList]] = {}
        self._signature_ok: dict[tuple[bytes, bytes], bool] = {}

    def __repr__(self) -> str:
        return (
            f"TrustStore({len(self._anchors)} anchors, {sum(map(len, self._crls.values()))} CRLs)"
        )

    @property
    def anchors(self) -> tuple[TrustAnchor, ...]:
        """Every trusted CSCA with its provenance."""
        return tuple(self._anchors.values())

    def _add(self, cert: Certificate, source: TrustSource, detail: str) -> TrustAnchor:
        existing = self._anchors.get(cert.fingerprint)
        if existing is not None:
            return existing
        anchor = TrustAnchor(cert, source, detail)
        self._anchors[cert.fingerprint] = anchor
        self._by_subject.setdefault(cert.subject_key, []).append(anchor)
        return anchor

    def add_csca(
        self, certificate: Certificate | bytes, *, detail: str = "added explicitly"
    ) -> TrustAnchor:
        """Trust a CSCA certificate the caller vouches for.

        Raises:
            PkiFormatError: the bytes are not a certificate.
        """
        cert = (
            certificate if isinstance(certificate, Certificate) else parse_certificate(certificate)
        )
        return self._add(cert, TrustSource.EXPLICIT, detail)

    def load_directory(self, path: str | Path) -> int:
        """Trust every ``*.cer``/``*.crt``/``*.der``/``*.pem`` certificate in a directory.

        Returns:
            How many certificates were added.

        Raises:
            PkiFormatError: a file is not a certificate.
        """
        count = 0
        for file in sorted(Path(path).iterdir()):
            if file.suffix.lower() not in {".cer", ".crt", ".der", ".pem"}:
                continue
            data = file.read_bytes()
            if data.lstrip().startswith(b"-----BEGIN"):
                _, _, data = pem.unarmor(data)
            self._add(parse_certificate(data), TrustSource.FILE, str(file))
            count += 1
        return count

    def load_master_list(
        self,
        data: bytes | MasterList,
        *,
        name: str = "master list",
        trust_as_is: bool = False,
        countries: Iterable[str] | None = None,
    ) -> MasterList:
        """Verify a CSCA master list and trust its certificates.

        A master list is signed by a master list signer whose certificate a
        CSCA issued. By default that CSCA must already be trusted here (added
        with :meth:`add_csca`, :meth:`load_directory` or an earlier list), so
        a list cannot vouch for itself. ``trust_as_is=True`` accepts a signer
        certified by a CSCA *inside the list* (a self-consistent list): use it
        only when the file itself came through a channel you trust (a
        national PKD download checked out of band, the test PKI); the
        provenance of every anchor says which way it was trusted.

        Args:
            data: the master list file, or an already parsed list.
            name: how to name the list in provenance records.
            trust_as_is: accept a signer certified by a CSCA in the list itself.
            countries: only trust CSCAs of these countries (e.g. ``{"MA"}``).

        Raises:
            PkiFormatError: malformed list.
            SignatureInvalid: the list's signature does not verify, or its signer
                is not certified by a trusted CSCA (by one in the list, with
                ``trust_as_is``).
        """
        master = data if isinstance(data, MasterList) else parse_master_list(data)
        trusted = [a.certificate for a in self._anchors.values()]
        if not trust_as_is and not trusted:
            raise SignatureInvalid(
                "no trusted CSCA to check the master list signer against "
                "(add one first, or pass trust_as_is=True to trust the list as is)"
            )
        issuer = master.verify(() if trust_as_is else trusted)
        signer = master.signer
        assert signer is not None  # noqa: S101 (verify() checked it)
        how = "trusted as is" if trust_as_is else "signer certified by a trusted CSCA"
        detail = f"{name} ({how}), signed by {signer.subject}, certified by {issuer.subject}"
        wanted = {c.upper() for c in countries} if countries is not None else None
        for cert in master.certificates:
            if wanted is None or (cert.country or "").upper() in wanted:
                self._add(cert, TrustSource.MASTER_LIST, detail)
        return master

    def add_link_certificate(self, certificate: Certificate | bytes) -> TrustAnchor:
        """Trust a link certificate (new CSCA key signed by a trusted CSCA key).

        Raises:
            SignatureInvalid: no trusted anchor signed it.
        """
        cert = (
            certificate if isinstance(certificate, Certificate) else parse_certificate(certificate)
        )
        for anchor in self._candidates(cert):
            if self._signed_by(cert, anchor.certificate):
                return self._add(
                    cert,
                    TrustSource.LINK_CERTIFICATE,
                    f"link certificate signed by {anchor.certificate.subject}",
                )
        raise SignatureInvalid("no trusted CSCA signed this link certificate")

    def add_crl(self, data: bytes | CertificateRevocationList) -> CertificateRevocationList:
        """Add a CRL after checking that a trusted CSCA signed it.

        Raises:
            PkiFormatError: malformed CRL.
            SignatureInvalid: no trusted CSCA signed it.
        """
        parsed = data if isinstance(data, CertificateRevocationList) else parse_crl(data)
        for anchor in self._by_subject.get(parsed.issuer_key, []):
            try:
                parsed.verify_issued_by(anchor.certificate)
            except (SignatureInvalid, UnsupportedAlgorithm, PkiFormatError):
                continue
            self._crls.setdefault(parsed.issuer_key, []).append(parsed)
            return parsed
        raise SignatureInvalid("no trusted CSCA signed this CRL")

    def _candidates(self, cert: Certificate) -> list[TrustAnchor]:
        found = self._by_subject.get(cert.issuer_key, [])
        aki = cert.authority_key_identifier
        if aki is None:
            return list(found)
        # Key identifiers pick the right key among a CSCA's successive keys;
        # anchors without an SKI stay candidates (the signature decides).
        return [a for a in found if a.certificate.subject_key_identifier in (None, aki)]

    def _signed_by(self, cert: Certificate, issuer: Certificate) -> bool:
        key = (cert.fingerprint, issuer.fingerprint)
        cached = self._signature_ok.get(key)
        if cached is None:
            try:
                cert.verify_issued_by(issuer)
                cached = True
            except (SignatureInvalid, UnsupportedAlgorithm, PkiFormatError):
                cached = False
            self._signature_ok[key] = cached
        return cached

    def clear_cache(self) -> None:
        """Forget cached signature checks (to measure cold validation)."""
        self._signature_ok.clear()

    def validate_document_signer(
        self, ds: Certificate, *, at: dt.datetime, signing_time: dt.datetime | None = None
    ) -> ChainResult:
        """Validate a document signer certificate against the trust anchors.

        Checks: a trusted CSCA (matched by name and key identifier) signed the DS;
        the CSCA is a CA allowed to sign certificates (when it says); the DS may
        make digital signatures (when it has a key usage extension); both are
        valid at ``at`` (the verifier's trusted time); both certificates, and the
        DS private key usage period, cover ``signing_time`` when the SOD states
        one; and the CRLs of the CSCA do not list the DS.
        """
        issuer = ds.issuer

        def fail(reason: str, anchor: TrustAnchor | None = None) -> ChainResult:
            return ChainResult(
                trusted=False,
                reason=reason,
                anchor=anchor,
                issuer_name=issuer,
                revocation=RevocationStatus.UNKNOWN,
                revocation_reason="not checked",
            )

        candidates = self._candidates(ds)
        if not candidates:
            return fail(f"issuer {issuer!r} is not a trusted CSCA")
        anchor = next((a for a in candidates if self._signed_by(ds, a.certificate)), None)
        if anchor is None:
            return fail(f"no trusted CSCA named {issuer!r} signed the document signer")
        csca = anchor.certificate
        if csca.is_ca is False or (
            csca.key_usage is not None and "key_cert_sign" not in csca.key_usage
        ):
            return fail("the CSCA is not allowed to sign certificates", anchor)
        if ds.key_usage is not None and "digital_signature" not in ds.key_usage:
            return fail("the document signer certificate does not allow digital signatures", anchor)
        if ds.is_ca:
            return fail("the document signer certificate is a CA certificate", anchor)
        if not csca.valid_at(at):
            return fail(f"the CSCA certificate is not valid at {at.isoformat()}", anchor)
        if not ds.valid_at(at):
            return fail(f"the document signer certificate is not valid at {at.isoformat()}", anchor)
        if signing_time is not None:
            if not csca.valid_at(signing_time):
                return fail("the SOD was signed outside the CSCA certificate's validity", anchor)
            if not ds.valid_at(signing_time):
                return fail("the SOD was signed outside the document signer's validity", anchor)
            if ds.private_key_usage_period is not None:
                start, end = ds.private_key_usage_period
                if (start and signing_time < start) or (end and signing_time > end):
                    return fail(
                        "the SOD was signed outside the DS private key usage period", anchor
                    )
        revocation, revocation_reason = self._revocation(ds, csca, at)
        if revocation is RevocationStatus.REVOKED:
            return ChainResult(
                trusted=False,
                reason=revocation_reason,
                anchor=anchor,
                issuer_name=issuer,
                revocation=revocation,
                revocation_reason=revocation_reason,
            )
        return ChainResult(
            trusted=True,
            reason=f"chains to {csca.subject} ({anchor.source.value}: {anchor.detail})",
            anchor=anchor,
            issuer_name=issuer,
            revocation=revocation,
            revocation_reason=revocation_reason,
        )

    def _revocation(
        self, ds: Certificate, csca: Certificate, at: dt.datetime
    ) -> tuple[RevocationStatus, str]:
        lists = [
            c
            for c in self._crls.get(csca.subject_key, [])
            if c.authority_key_identifier in (None, csca.subject_key_identifier)
        ]
        if not lists:
            return RevocationStatus.UNKNOWN, "no CRL from the issuing CSCA"
        for item in lists:
            if ds.serial_number in item.revoked:
                return (
                    RevocationStatus.REVOKED,
                    f"the document signer is revoked by the CRL of {item.this_update.date()}",
                )
        current = [c for c in lists if c.next_update is None or c.next_update >= at]
        if not current:
            return (
                RevocationStatus.UNKNOWN,
                "the issuing CSCA's CRLs are all past their next update",
            )
        return RevocationStatus.GOOD, "not listed on the issuing CSCA's current CRL"

    def find(self, *, country: str | None = None) -> tuple[TrustAnchor, ...]:
        """Anchors, optionally only those of one country."""
        if country is None:
            return self.anchors
        return tuple(
            a
            for a in self._anchors.values()
            if (a.certificate.country or "").upper() == country.upper()
        )

    @classmethod
    def from_master_lists(
        cls,
        files: Mapping[str, bytes],
        *,
        anchors: Iterable[Certificate | bytes] = (),
        trust_as_is: bool = False,
    ) -> TrustStore:
        """A store loaded from several master lists (name -> file bytes).

        Args:
            files: the master lists, by name.
            anchors: CSCAs the caller vouches for, added first: the lists'
                signers must chain to them (or to an earlier list's CSCAs).
            trust_as_is: as :meth:`load_master_list`.

        Raises:
            PkiFormatError / SignatureInvalid: as :meth:`load_master_list`.
        """
        store = cls()
        for anchor in anchors:
            store.add_csca(anchor)
        for name, data in files.items():
            store.load_master_list(data, name=name, trust_as_is=trust_as_is)
        return store

"""Security data groups: DG14, DG15, EF.CardAccess, EF.CardSecurity.

* SecurityInfos (ICAO 9303-11 §9.2, BSI TR-03110-3 §A.1) are parsed by
  :mod:`macnss_auth.nfc.securityinfos`; here they are wrapped with their DER
  and the accessors verification needs. DG14 holds them in ``6E``,
  EF.CardAccess bare, EF.CardSecurity inside CMS SignedData with eContentType
  id-SecurityObject.
* DG15 (``6F``) holds the Active Authentication public key as a
  SubjectPublicKeyInfo, RSA or EC (explicit EC parameters accepted).
"""

from __future__ import annotations

import attrs

from macnss_auth.errors import MalformedInput, UnsupportedAlgorithm
from macnss_auth.nfc import securityinfos as si
from macnss_auth.nfc.lds.errors import LdsFormatError
from macnss_auth.nfc.pki import (
    PkiFormatError,
    PublicKeyInfo,
    SignedContent,
    parse_public_key_info,
    parse_signed_data,
)
from macnss_auth.nfc.tlv import encode_tlv, parse_one, read_exact

__all__ = [
    "OID_SECURITY_OBJECT",
    "CardSecurity",
    "Dg15",
    "SecurityInfos",
    "encode_dg14",
    "encode_dg15",
    "parse_card_access",
    "parse_card_security",
    "parse_dg14",
    "parse_dg15",
]

OID_SECURITY_OBJECT = "0.4.0.127.0.7.3.2.1"  # id-SecurityObject (BSI TR-03110-3 §A.1.2.5)


@attrs.frozen
class SecurityInfos:
    """A parsed SecurityInfos set with its DER.

    Attributes:
        der: the SecurityInfos DER (what DG14 or EF.CardAccess holds).
        infos: the typed records of :mod:`macnss_auth.nfc.securityinfos`.
    """

    der: bytes = attrs.field(repr=False)
    infos: tuple[si.SecurityInfo, ...]

    @property
    def chip_authentication_keys(self) -> tuple[si.ChipAuthenticationPublicKeyInfo, ...]:
        """The ChipAuthenticationPublicKeyInfos."""
        return tuple(i for i in self.infos if isinstance(i, si.ChipAuthenticationPublicKeyInfo))

    @property
    def chip_authentication(self) -> tuple[si.ChipAuthenticationInfo, ...]:
        """The ChipAuthenticationInfos."""
        return tuple(i for i in self.infos if isinstance(i, si.ChipAuthenticationInfo))

    @property
    def pace(self) -> tuple[si.PaceInfo, ...]:
        """The PACEInfos."""
        return tuple(i for i in self.infos if isinstance(i, si.PaceInfo))

    @property
    def active_authentication(self) -> si.ActiveAuthenticationInfo | None:
        """The ActiveAuthenticationInfo (names the ECDSA AA hash), if any."""
        return next((i for i in self.infos if isinstance(i, si.ActiveAuthenticationInfo)), None)

    def chip_authentication_key(
        self, key_id: int | None = None
    ) -> si.ChipAuthenticationPublicKeyInfo | None:
        """The CA key with ``key_id`` (or the only one when ``key_id`` is ``None``)."""
        keys = self.chip_authentication_keys
        if key_id is None:
            return keys[0] if len(keys) == 1 else None
        return next((k for k in keys if k.key_id == key_id), None)


def _parse_infos(der: bytes, name: str) -> SecurityInfos:
    try:
        return SecurityInfos(bytes(der), si.parse_security_infos(bytes(der)))
    except MalformedInput as exc:
        raise LdsFormatError(f"{name}: {exc}", field=name) from exc


def parse_dg14(data: bytes) -> SecurityInfos:
    """Parse DG14 (``6E { SecurityInfos }``).

    Raises:
        LdsFormatError: malformed.
    """
    return _parse_infos(read_exact(data, 0x6E, field="DG14", error=LdsFormatError).value, "DG14")


def encode_dg14(security_infos: bytes) -> bytes:
    """Wrap a SecurityInfos DER as DG14.

    Build the DER with :func:`macnss_auth.nfc.securityinfos.encode_security_infos`.
    """
    return encode_tlv(0x6E, security_infos)


def parse_card_access(data: bytes) -> SecurityInfos:
    """Parse EF.CardAccess as read from a card: a bare SecurityInfos, then any padding.

    Files are often read in whole blocks, and some chips pad EF.CardAccess;
    bytes after the first data object are ignored (``der`` is that object).

    Raises:
        LdsFormatError: no valid SecurityInfos at the start of the file.
    """
    data = bytes(data)
    try:
        _, end = parse_one(data)
    except MalformedInput as exc:
        raise LdsFormatError(f"EF.CardAccess: {exc}", field="EF.CardAccess") from exc
    return _parse_infos(data[:end], "EF.CardAccess")


@attrs.frozen
class CardSecurity:
    """EF.CardSecurity: SecurityInfos signed by a document signer (signature not yet checked)."""

    signed: SignedContent = attrs.field(repr=False)
    security_infos: SecurityInfos


def parse_card_security(data: bytes) -> CardSecurity:
    """Parse EF.CardSecurity (CMS SignedData over SecurityInfos).

    Raises:
        LdsFormatError: malformed.
    """
    try:
        signed = parse_signed_data(data)
    except (PkiFormatError, UnsupportedAlgorithm) as exc:
        raise LdsFormatError(f"EF.CardSecurity: {exc}", field="EF.CardSecurity") from exc
    if signed.content_type != OID_SECURITY_OBJECT:
        raise LdsFormatError(
            "EF.CardSecurity does not hold a security object", field="EF.CardSecurity"
        )
    return CardSecurity(signed, _parse_infos(signed.content, "EF.CardSecurity"))


@attrs.frozen
class Dg15:
    """DG15: the Active Authentication public key."""

    public_key: PublicKeyInfo


def parse_dg15(data: bytes) -> Dg15:
    """Parse DG15 (``6F { SubjectPublicKeyInfo }``).

    Raises:
        LdsFormatError: malformed, or a key that is neither RSA nor EC.
    """
    inner = read_exact(data, 0x6F, field="DG15", error=LdsFormatError).value
    try:
        key = parse_public_key_info(inner)
    except (PkiFormatError, UnsupportedAlgorithm) as exc:
        raise LdsFormatError(f"DG15 key: {exc}", field="DG15") from exc
    if key.algorithm not in ("rsa", "ec"):
        raise LdsFormatError("the Active Authentication key must be RSA or EC", field="DG15")
    return Dg15(key)


def encode_dg15(public_key_info: bytes) -> bytes:
    """Wrap a SubjectPublicKeyInfo DER as DG15."""
    return encode_tlv(0x6F, public_key_info)

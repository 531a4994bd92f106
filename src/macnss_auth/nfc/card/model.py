"""What a personalized virtual card is made of: profile, files and chip secrets.

* :class:`CardProfile` says how the chip behaves (which access protocols, which
  PACE mapping and domain parameters, short or extended length, whether a
  password has a retry counter, AA/CA keys present).
* :class:`ChipSecrets` holds what a real chip keeps in protected memory: the
  BAC/PACE passwords and the AA/CA private keys. It never appears in a repr.
* :class:`CardData` ties them to a :class:`~macnss_auth.nfc.card.filesystem.FileSystem`.
"""

from __future__ import annotations

import enum
import hashlib

import attrs
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.card.filesystem import FileSystem
from macnss_auth.nfc.chip_auth import CA_VERSIONS, CaAlgorithm, DhPrivateKey
from macnss_auth.nfc.eckeys import EcPrivateKey
from macnss_auth.nfc.pki import HashAlgorithm
from macnss_auth.nfc.securityinfos import PaceOid

__all__ = [
    "AaKeyKind",
    "CardData",
    "CardProfile",
    "CardQuirks",
    "ChipSecrets",
    "DocumentKind",
    "PasswordKind",
]


class DocumentKind(enum.Enum):
    """The MRZ format of the document (ICAO 9303-5 TD1 ID card, 9303-4 TD3 passport)."""

    TD1 = "TD1"
    TD3 = "TD3"


class PasswordKind(enum.IntEnum):
    """PACE password references (ICAO 9303-11 §9.5.1, MSE:Set AT tag 83)."""

    MRZ = 1
    CAN = 2
    PIN = 3
    PUK = 4


class AaKeyKind(enum.Enum):
    """Active Authentication key types (ICAO 9303-11 §6.1)."""

    RSA = "RSA"
    ECDSA = "ECDSA"


@attrs.frozen
class CardQuirks:
    """Field behaviours of real chips, off by default (see :mod:`macnss_auth.nfc.card.quirks`).

    Chip behaviour:
        refuse_extended_length: announce extended length in EF.ATR/INFO, then answer
            an extended-length command with a plain ``6700`` and end secure messaging.
        max_read: answer at most this many bytes per READ BINARY, with ``6282``
            when Le asked for more.
        wrong_le: answer ``6Cxx`` (xx: the bytes left) when Le reaches past the end of a file.
        get_response_chunk: send answers longer than this in pieces, ``61xx``
            then GET RESPONSE (in plain; the pieces joined are the protected answer).
        drop_session_on_refusal: end secure messaging after refusing a guarded
            file (DG3/DG4 without Terminal Authentication, ``6982``).
        pace_requires_parameter_id / pace_refuses_parameter_id: MSE:Set AT for
            PACE without / with DO'84' is answered ``6A80``.
        ca_requires_key_reference / ca_refuses_key_reference: MSE for Chip
            Authentication without / with DO'84' is answered ``6A80``.
        aa_der_signature: an ECDSA Active Authentication signature as DER
            (X9.62) instead of plain ``r || s``.
        aa_unsupported: INTERNAL AUTHENTICATE is answered ``6D00`` although DG15 is there.
        plain_errors: inside secure messaging, answer an error status word in
            plain (no DO'99', no MAC) and end the session.
        aa_without_info: DG14 has no ActiveAuthenticationInfo naming the ECDSA hash.

    Personalization:
        missing_data_groups: listed in EF.COM, absent on the chip (and from EF.SOD).
        eac_data_groups: DG3 and DG4 present (hashed in EF.SOD, listed in EF.COM)
            behind Terminal Authentication.
        extra_pace_infos: EF.CardAccess also offers PACEInfos the chip cannot run
            or ranks lower, a CardInfoLocator and a PrivilegedTerminalInfo.
        decoy_ca_key: DG14 lists a second CA key (key id 1) whose private key the
            chip does not hold; the real one gets key id 2.
        sod_hash / sod_signature_hash: the hash of the data groups and the digest
            of the CMS signature (signed attributes), when they differ from SHA-256.
        sod_without_certificate: EF.SOD does not carry the document signer certificate.
    """

    refuse_extended_length: bool = False
    max_read: int | None = None
    wrong_le: bool = False
    get_response_chunk: int | None = None
    drop_session_on_refusal: bool = False
    pace_requires_parameter_id: bool = False
    pace_refuses_parameter_id: bool = False
    ca_requires_key_reference: bool = False
    ca_refuses_key_reference: bool = False
    aa_der_signature: bool = False
    aa_unsupported: bool = False
    plain_errors: bool = False
    aa_without_info: bool = False
    missing_data_groups: frozenset[int] = frozenset()
    eac_data_groups: bool = False
    extra_pace_infos: bool = False
    decoy_ca_key: bool = False
    sod_hash: HashAlgorithm = HashAlgorithm.SHA256
    sod_signature_hash: HashAlgorithm | None = None
    sod_without_certificate: bool = False

    def to_dict(self) -> dict[str, object]:
        """The quirks that differ from the defaults, JSON-ready."""
        out: dict[str, object] = {}
        for field in attrs.fields(CardQuirks):
            value = getattr(self, field.name)
            if value == field.default:
                continue
            if isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, HashAlgorithm):
                value = value.value
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> CardQuirks:
        """The inverse of :meth:`to_dict`.

        Raises:
            ConfigurationError: an unknown quirk or a value of the wrong kind.
        """
        known = {field.name: field for field in attrs.fields(CardQuirks)}
        values: dict[str, object] = {}
        for name, value in raw.items():
            if name not in known:
                raise ConfigurationError(f"unknown card quirk {name!r}")
            if name == "missing_data_groups" and isinstance(value, list):
                values[name] = frozenset(int(v) for v in value)
            elif name in ("sod_hash", "sod_signature_hash") and isinstance(value, str):
                values[name] = HashAlgorithm(value)
            else:
                values[name] = value
        try:
            return cls(**values)  # type: ignore[arg-type]  # checked by the card as it runs
        except TypeError as exc:
            raise ConfigurationError(f"bad card quirks: {exc}") from exc


@attrs.frozen
class CardProfile:
    """How one kind of card behaves.

    Attributes:
        name: ``passport-bac``, ``cnie``, ``pace-im``, ``pace-cam``, ``legacy-dh`` or your own.
        document: TD1 (ID card) or TD3 (passport) MRZ.
        bac: whether the chip answers BAC (GET CHALLENGE + EXTERNAL AUTHENTICATE).
        pace_protocol: the PACE protocol OID offered (mapping, group family and
            cipher in one), or ``None`` for a BAC-only chip.
        pace_parameter_id: the standardized domain parameter id (ICAO 9303-11
            §9.5.1: 1 = 2048-bit MODP with 224-bit subgroup, 13 = brainpoolP256r1, ...).
        pace_passwords: which password references MSE:Set AT may name.
        password_retries: tries before the CAN-style password blocks (``None``: unlimited).
        pin_retries: the PIN's retry counter when full (BSI TR-03110-2 §3.5: 3).
        puk_uses: how many PACE runs with the PUK the card allows in its life.
        active_authentication: the AA key type, or ``None`` without AA.
        chip_authentication: the Chip Authentication protocol (DG14's
            ChipAuthenticationInfo), or ``None`` without CA.
        extended_length: whether the chip accepts extended-length APDUs.
        chip_authentication_parameter_id: the standardized domain parameter id
            of the Chip Authentication key (any of ICAO 9303-11 §9.5.1, e.g. 11
            = brainpoolP224r1 as on the BSI 2008 specimen, 0-2 for CA with DH);
            ``None``: the PACE curve, else brainpoolP256r1.
        active_authentication_parameter_id: the standardized domain parameter id
            of an ECDSA Active Authentication key (``None``: brainpoolP256r1).
        quirks: field behaviours of real chips (:class:`CardQuirks`).
        chip_authentication_version: the Chip Authentication version DG14's
            ChipAuthenticationInfo announces and the chip speaks: 1 (ICAO 9303-11
            §6.2, ``7C 00``) or 2 (BSI TR-03110-2 §3.4.2: nonce and token,
            keys from ``K || r_PICC``, MSE:Set AT + GENERAL AUTHENTICATE only).
    """

    name: str
    document: DocumentKind
    bac: bool
    pace_protocol: PaceOid | None = None
    pace_parameter_id: int | None = None
    pace_passwords: frozenset[PasswordKind] = frozenset({PasswordKind.MRZ, PasswordKind.CAN})
    password_retries: int | None = None
    pin_retries: int = 3
    puk_uses: int = 10
    active_authentication: AaKeyKind | None = None
    chip_authentication: CaAlgorithm | None = None
    extended_length: bool = False
    chip_authentication_parameter_id: int | None = None
    active_authentication_parameter_id: int | None = None
    quirks: CardQuirks = CardQuirks()
    chip_authentication_version: int = attrs.field(default=1)

    @chip_authentication_version.validator
    def _check_version(self, _attribute: object, value: object) -> None:
        if type(value) is not int or value not in CA_VERSIONS:
            raise ConfigurationError(f"Chip Authentication version {value!r} is not 1 or 2")


def _redact(_value: object) -> str:
    return "<redacted>"


@attrs.frozen
class ChipSecrets:
    """The chip's protected memory: passwords and private keys.

    Attributes:
        mrz_information: document number, date of birth and date of expiry, each
            followed by its check digit (the BAC/PACE-MRZ key seed input).
        can: the card access number (6 digits), if the card has one.
        pin: the holder's PIN (digits), if the card has one.
        puk: the PUK that unblocks the PIN, if the card has one.
        aa_key: the Active Authentication private key (absent on a clone).
        ca_key: the Chip Authentication private key, EC or DH (absent on a clone).
        ca_key_id: the key id DG14 names for ``ca_key``, if any.
    """

    mrz_information: str = attrs.field(repr=_redact)
    can: str | None = attrs.field(default=None, repr=_redact)
    pin: str | None = attrs.field(default=None, repr=_redact)
    puk: str | None = attrs.field(default=None, repr=_redact)
    aa_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | EcPrivateKey | None = attrs.field(
        default=None, repr=_redact
    )
    # cryptography keys where it has the curve; our own on the others, and DH.
    ca_key: ec.EllipticCurvePrivateKey | EcPrivateKey | DhPrivateKey | None = attrs.field(
        default=None, repr=_redact
    )
    ca_key_id: int | None = None

    def mrz_key_seed(self) -> bytes:
        """``SHA-1(MRZ information)``: BAC key seed (first 16 bytes), PACE-MRZ password."""
        return hashlib.sha1(self.mrz_information.encode("ascii")).digest()  # noqa: S324 (9303)


@attrs.frozen
class CardData:
    """A personalized card: everything needed to emulate it."""

    profile: CardProfile
    files: FileSystem
    secrets: ChipSecrets

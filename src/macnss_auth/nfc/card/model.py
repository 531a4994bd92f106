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

from macnss_auth.nfc.card.filesystem import FileSystem
from macnss_auth.nfc.chip_auth import CaAlgorithm, DhPrivateKey
from macnss_auth.nfc.eckeys import EcPrivateKey
from macnss_auth.nfc.securityinfos import PaceOid

__all__ = [
    "AaKeyKind",
    "CardData",
    "CardProfile",
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
    """

    name: str
    document: DocumentKind
    bac: bool
    pace_protocol: PaceOid | None = None
    pace_parameter_id: int | None = None
    pace_passwords: frozenset[PasswordKind] = frozenset({PasswordKind.MRZ, PasswordKind.CAN})
    password_retries: int | None = None
    active_authentication: AaKeyKind | None = None
    chip_authentication: CaAlgorithm | None = None
    extended_length: bool = False
    chip_authentication_parameter_id: int | None = None
    active_authentication_parameter_id: int | None = None


def _redact(_value: object) -> str:
    return "<redacted>"


@attrs.frozen
class ChipSecrets:
    """The chip's protected memory: passwords and private keys.

    Attributes:
        mrz_information: document number, date of birth and date of expiry, each
            followed by its check digit (the BAC/PACE-MRZ key seed input).
        can: the card access number (6 digits), if the card has one.
        aa_key: the Active Authentication private key (absent on a clone).
        ca_key: the Chip Authentication private key (absent on a clone).
        ca_key_id: the key id DG14 names for ``ca_key``, if any.
    """

    mrz_information: str = attrs.field(repr=_redact)
    can: str | None = attrs.field(default=None, repr=_redact)
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

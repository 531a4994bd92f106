"""eID over NFC: the sans-I/O ICAO 9303 protocol core, transports, and verification.

The protocol objects here never touch a reader: each takes response bytes and
produces command bytes (see :mod:`macnss_auth.nfc.protocol`), and
:func:`~macnss_auth.nfc.protocol.run` drives one over any
:class:`~macnss_auth.nfc.protocol.Transport`. Submodules:

* :mod:`~macnss_auth.nfc.apdu`, :mod:`~macnss_auth.nfc.tlv`: wire formats.
* :mod:`~macnss_auth.nfc.mrz`: MRZ parsing, check digits, BAC/PACE passwords.
* :mod:`~macnss_auth.nfc.bac`, :mod:`~macnss_auth.nfc.sm`: Basic Access Control
  and secure messaging (3DES and AES).
* :mod:`~macnss_auth.nfc.files`: SELECT and whole-file READ BINARY as protocol
  objects (short file ids, chunking, odd INS, the chips' fallbacks).
* :mod:`~macnss_auth.nfc.chip_auth`, :mod:`~macnss_auth.nfc.active_auth`: chip
  and active authentication (the commands; verification lives in ``verify``).
* :mod:`~macnss_auth.nfc.eckeys`: EC keys on every standardized curve
  (cryptography where it has the curve, :mod:`~macnss_auth.nfc.ec` otherwise).
* ``pace``, ``lds``, ``verify``, ``card``, ``transports``: see their own docs.

The guide is ``docs/eid-protocols.md``.
"""

from macnss_auth.nfc.active_auth import ActiveAuthentication, ActiveAuthResult
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU, StatusWord
from macnss_auth.nfc.bac import BacProtocol, BacResult, derive_bac_keys
from macnss_auth.nfc.chip_auth import (
    CaAlgorithm,
    CaCommands,
    ChipAuthentication,
    ChipAuthResult,
    DhPublicKey,
)
from macnss_auth.nfc.eckeys import EcPrivateKey, EcPublicKey
from macnss_auth.nfc.files import (
    ReadFile,
    ReadProgress,
    ReadSessionEnded,
    SelectApplication,
    SelectMasterFile,
)
from macnss_auth.nfc.mrz import CAN, PIN, PUK, Mrz, MrzKey, parse_mrz
from macnss_auth.nfc.protocol import Transport, run
from macnss_auth.nfc.sm import CardSecureChannel, SecureChannel, SessionKeys
from macnss_auth.nfc.tlv import Tlv

__all__ = [
    "CAN",
    "PIN",
    "PUK",
    "ActiveAuthResult",
    "ActiveAuthentication",
    "BacProtocol",
    "BacResult",
    "CaAlgorithm",
    "CaCommands",
    "CardSecureChannel",
    "ChipAuthResult",
    "ChipAuthentication",
    "CommandAPDU",
    "DhPublicKey",
    "EcPrivateKey",
    "EcPublicKey",
    "Mrz",
    "MrzKey",
    "ReadFile",
    "ReadProgress",
    "ReadSessionEnded",
    "ResponseAPDU",
    "SecureChannel",
    "SelectApplication",
    "SelectMasterFile",
    "SessionKeys",
    "StatusWord",
    "Tlv",
    "Transport",
    "derive_bac_keys",
    "parse_mrz",
    "run",
]

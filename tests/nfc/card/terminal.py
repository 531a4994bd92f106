"""A minimal scripted terminal: the library's reader-side protocol objects driving a card.

What it is: a test driver for the virtual card (``macnss_auth.nfc.card``),
the way h11 tests a server with its own client. It sequences the library's
terminal-side objects (BacProtocol, PaceTerminal, ChipAuthentication,
SecureChannel) over a transport as a reader application would, and gives the
card tests raw APDU access (``plain``, ``protected``) that DocumentReader does
not.

What it is not: an independent oracle. The card and these objects share the
library's arithmetic (``nfc.pace.primitives``, ``nfc.sm``, ``nfc.bac``), so a
session opening here shows that the two roles compose, not that either is
what ICAO 9303-11 says. That evidence comes from outside the library:
``test_worked_examples.py`` (the card answers the ICAO 9303-11 Appendix D, G
and H worked examples byte for byte), ``tests/nfc/pace/published.py`` and
``test_pace_vectors.py`` (the terminal against the same examples and recorded
chips), and ``tests/nfc/pace/test_pace_openpace.py`` (libeac's terminal against
this card). Only the Active Authentication check below is written from the
spec (ICAO 9303-11 §6.1: ISO/IEC 9796-2 scheme 1 with SHA-1 for RSA, plain
``r || s`` ECDSA) with ``cryptography`` instead of ``nfc.active_auth``.

From the card package it imports the personalization record (``CardData``,
``PasswordKind``) to know the MRZ and the profile, none of the card's protocol
code.
"""

from __future__ import annotations

import hashlib
import hmac

import attrs
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from macnss_auth.clock import RandomSource
from macnss_auth.errors import MacnssAuthError, RemoteProtocolError
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.bac import BacProtocol
from macnss_auth.nfc.card import CardData, PasswordKind
from macnss_auth.nfc.chip_auth import CaAlgorithm, ChipAuthentication, chip_public_key
from macnss_auth.nfc.lds import parse_card_access, parse_dg14, parse_dg15
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pace.terminal import PaceResult, PaceTerminal, select_pace_info
from macnss_auth.nfc.protocol import Transport, run
from macnss_auth.nfc.securityinfos import (
    ChipAuthenticationInfo,
    ChipAuthenticationPublicKeyInfo,
)
from macnss_auth.nfc.sm import SecureChannel
from macnss_auth.nfc.tlv import parse_one

LDS1_AID = bytes.fromhex("A0000002471001")
CHUNK = 0xDF  # what readers use under secure messaging with short APDUs


def mrz_key(data: CardData) -> MrzKey:
    """The MRZ key of a card, as a person would type it from the document."""
    info = data.secrets.mrz_information
    return MrzKey(info[0:9], info[10:16], info[17:23])


def plain(transport: Transport, command: CommandAPDU) -> ResponseAPDU:
    """Send a command without secure messaging."""
    return ResponseAPDU.from_bytes(transport.transceive(command.to_bytes()))


def protected(transport: Transport, channel: SecureChannel, command: CommandAPDU) -> ResponseAPDU:
    """Send a command over secure messaging; return the verified plain response."""
    return channel.unprotect(transport.transceive(channel.protect(command)))


def read_plain_file(transport: Transport, fid: int) -> bytes:
    """SELECT a file (at the MF) and READ it without secure messaging."""
    plain(
        transport, CommandAPDU(0x00, 0xA4, 0x02, 0x0C, data=fid.to_bytes(2, "big"))
    ).raise_for_status()
    out = b""
    while True:
        answer = plain(transport, CommandAPDU(0x00, 0xB0, len(out) >> 8, len(out) & 0xFF, ne=CHUNK))
        if answer.sw == 0x6B00:
            return out
        if answer.sw != 0x6282:
            answer.raise_for_status()
        out += answer.data
        if len(answer.data) < CHUNK:
            return out


def read_file(transport: Transport, channel: SecureChannel, fid: int) -> bytes:
    """SELECT a file and READ BINARY it whole, over secure messaging."""
    protected(
        transport, channel, CommandAPDU(0x00, 0xA4, 0x02, 0x0C, data=fid.to_bytes(2, "big"))
    ).raise_for_status()
    out = b""
    while True:
        answer = protected(
            transport, channel, CommandAPDU(0x00, 0xB0, len(out) >> 8, len(out) & 0xFF, ne=CHUNK)
        )
        if answer.sw == 0x6B00:
            return out
        if answer.sw not in (0x9000, 0x6282):
            answer.raise_for_status()
        out += answer.data
        if len(answer.data) < CHUNK:
            return out


@attrs.define
class Session:
    """An open session: how it was opened and the terminal's channel."""

    channel: SecureChannel
    method: str
    pace: PaceResult | None = None


def open_session(
    transport: Transport,
    data: CardData,
    *,
    random: RandomSource,
    password: PasswordKind = PasswordKind.MRZ,
    can: str | None = None,
    mrz: MrzKey | None = None,
) -> Session:
    """PACE when the card offers it (EF.CardAccess), otherwise BAC; then select the LDS app."""
    key = mrz or mrz_key(data)
    channel: SecureChannel
    if data.profile.pace_protocol is not None:
        card_access = read_plain_file(transport, 0x011C)
        info = select_pace_info(parse_card_access(card_access).infos)
        secret: MrzKey | CAN = key if password is PasswordKind.MRZ else CAN(can or "")
        pace = run(PaceTerminal(secret, info, random=random), transport)
        channel = pace.secure_channel()
        method = "PACE"
        answer = protected(transport, channel, CommandAPDU(0x00, 0xA4, 0x04, 0x0C, data=LDS1_AID))
    else:
        plain(transport, CommandAPDU(0x00, 0xA4, 0x04, 0x0C, data=LDS1_AID)).raise_for_status()
        channel = run(BacProtocol(key, random=random), transport).channel
        method = "BAC"
        pace = None
        answer = ResponseAPDU(b"", 0x9000)
    answer.raise_for_status()
    return Session(channel, method, pace)


def chip_authenticate(
    transport: Transport, session: Session, dg14: bytes, *, random: RandomSource
) -> None:
    """Run Chip Authentication with DG14's key; the session continues on the new channel."""
    infos = parse_dg14(dg14).infos
    ca_info = next(i for i in infos if isinstance(i, ChipAuthenticationInfo))
    key_info = next(i for i in infos if isinstance(i, ChipAuthenticationPublicKeyInfo))
    protocol = ChipAuthentication(
        session.channel,
        algorithm=CaAlgorithm.from_oid(ca_info.protocol.value),
        chip_public_key=chip_public_key(key_info),
        key_id=key_info.key_id,
        random=random,
    )
    session.channel = run(protocol, transport).channel
    session.method += "+CA"


def active_authenticate(
    transport: Transport, session: Session, dg15: bytes, challenge: bytes
) -> None:
    """INTERNAL AUTHENTICATE and check the signature against DG15's key.

    Raises:
        RemoteProtocolError: the chip refused, or the signature does not verify.
    """
    answer = protected(
        transport, session.channel, CommandAPDU(0x00, 0x88, 0x00, 0x00, data=challenge, ne=256)
    )
    answer.raise_for_status("INTERNAL AUTHENTICATE")
    parse_dg15(dg15)  # well-formed, RSA or EC
    key = serialization.load_der_public_key(parse_one(dg15)[0].value)
    if not _verify_aa(key, challenge, answer.data):
        raise RemoteProtocolError("Active Authentication signature does not verify")


def _verify_aa(key: object, challenge: bytes, signature: bytes) -> bool:
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        size = (numbers.n.bit_length() + 7) // 8
        f = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(size, "big")
        if f[0] != 0x6A or f[-1] != 0xBC:
            return False
        m1, digest = f[1:-21], f[-21:-1]
        expected = hashlib.sha1(m1 + challenge).digest()  # noqa: S324 (9303 AA)
        return hmac.compare_digest(expected, digest)
    if isinstance(key, ec.EllipticCurvePublicKey):
        half = len(signature) // 2
        der = encode_dss_signature(
            int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
        )
        try:
            key.verify(der, challenge, ec.ECDSA(hashes.SHA256()))
        except Exception:  # noqa: BLE001 (InvalidSignature: any failure means "does not verify")
            return False
        return True
    raise MacnssAuthError("unexpected AA key type")

"""The card's end of ICAO 9303 secure messaging (ICAO 9303-11 §9.8).

A :class:`SecureChannel` holds the session keys and the send sequence counter
(SSC). The card increments the SSC once when it checks a command's MAC and
once more when it protects the response, exactly mirroring the terminal.

Any fault in a protected command (missing or wrong MAC, malformed data
objects, bad padding) makes :meth:`SecureChannel.unprotect` raise
:class:`~macnss_auth.nfc.card.command.CardStatusError` with ``6987``/``6988``
and ``drop_session=True``: a real chip ends the session on the first bad MAC,
so an attacker never gets a second try under the same keys.
"""

from __future__ import annotations

import hmac

import attrs

from macnss_auth.errors import MalformedInput
from macnss_auth.nfc.card.command import CardCommand, CardStatusError
from macnss_auth.nfc.card.status import StatusWord
from macnss_auth.nfc.crypto import (
    SymmetricCipher,
    block_decrypt_cbc,
    block_encrypt_cbc,
    block_encrypt_ecb,
    mac,
    pad,
    unpad,
)
from macnss_auth.nfc.tlv import encode_tlv, parse_all

__all__ = ["SecureChannel"]


def _bad(status: StatusWord = StatusWord.SM_DATA_OBJECTS_INCORRECT) -> CardStatusError:
    return CardStatusError(status, drop_session=True)


@attrs.define(repr=False)
class SecureChannel:
    """Session keys and SSC of one secure-messaging session (card side).

    Attributes:
        cipher: 3DES (BAC, DH/ECDH PACE with 3DES) or AES.
        established_by: ``"BAC"``, ``"PACE"`` or ``"CA"`` (for access decisions).
    """

    cipher: SymmetricCipher
    k_enc: bytes
    k_mac: bytes
    ssc: int
    established_by: str

    def __repr__(self) -> str:
        return f"SecureChannel({self.cipher.value}, by={self.established_by})"

    @property
    def _ssc_bytes(self) -> bytes:
        return self.ssc.to_bytes(self.cipher.block_size, "big")

    def _mac(self, data: bytes) -> bytes:
        # ICAO 9303-11 §9.8.6: the MAC input is padded for both ciphers; crypto.mac pads
        # only for the retail MAC, so pad here for AES-CMAC.
        message = self._ssc_bytes + data
        if self.cipher is SymmetricCipher.AES:
            message = pad(message, 16)
        return mac(self.cipher, self.k_mac, message)

    def _iv(self) -> bytes:
        if self.cipher is SymmetricCipher.AES:
            return block_encrypt_ecb(self.cipher, self.k_enc, self._ssc_bytes)
        return bytes(8)

    def unprotect(self, command: CardCommand) -> CardCommand:
        """Check and decrypt a protected command; return the plain command.

        Raises:
            CardStatusError: ``6987`` (MAC object missing) or ``6988`` (bad MAC,
                bad structure, bad padding), always with ``drop_session``.
        """
        bs = self.cipher.block_size
        try:
            objects = parse_all(command.data)
        except MalformedInput:
            raise _bad() from None
        tags = [o.tag for o in objects]
        if not tags or tags[-1] != 0x8E:
            raise _bad(StatusWord.SM_DATA_OBJECTS_MISSING)
        allowed = [t for t in tags[:-1] if t in (0x85, 0x87, 0x97)]
        if allowed != tags[:-1] or len(set(allowed)) != len(allowed):
            raise _bad()
        body = b"".join(o.to_bytes() for o in objects[:-1])
        self.ssc += 1
        header = pad(bytes([command.cla | 0x0C, command.ins, command.p1, command.p2]), bs)
        expected = self._mac(header + body)
        if not hmac.compare_digest(expected, objects[-1].value):
            raise _bad()
        data = b""
        le: int | None = None
        for obj in objects[:-1]:
            if obj.tag in (0x85, 0x87):
                cryptogram = obj.value
                if obj.tag == 0x87:
                    if not cryptogram or cryptogram[0] != 0x01:
                        raise _bad()
                    cryptogram = cryptogram[1:]
                if not cryptogram or len(cryptogram) % bs:
                    raise _bad()
                try:
                    plain = block_decrypt_cbc(self.cipher, self.k_enc, cryptogram, self._iv())
                    data = unpad(plain)
                except MalformedInput:
                    raise _bad() from None
            else:  # 0x97
                if len(obj.value) not in (1, 2):
                    raise _bad()
                le = int.from_bytes(obj.value, "big") or (256 if len(obj.value) == 1 else 65536)
        return CardCommand(
            command.cla & ~0x0C & 0xFF,
            command.ins,
            command.p1,
            command.p2,
            data,
            le,
            command.extended,
        )

    def protect(self, ins: int, data: bytes, status: bytes) -> bytes:
        """Protect a response: encrypted data (DO87/DO85), status (DO99), MAC (DO8E)."""
        bs = self.cipher.block_size
        self.ssc += 1
        body = b""
        if data:
            cryptogram = block_encrypt_cbc(self.cipher, self.k_enc, pad(data, bs), self._iv())
            # Odd INS (READ BINARY B1) carries BER-TLV data: DO85 without padding indicator.
            body += (
                encode_tlv(0x85, cryptogram) if ins & 1 else encode_tlv(0x87, b"\x01" + cryptogram)
            )
        body += encode_tlv(0x99, status)
        return body + encode_tlv(0x8E, self._mac(body)) + status

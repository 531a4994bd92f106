"""A terminal-side secure-messaging encoder that can also get it wrong on purpose (tests only).

The library's :class:`~macnss_auth.nfc.sm.SecureChannel` only ever builds
well-formed protected commands. To reach the card's checks *behind* the MAC
(padding indicator, padding, DO order, DO'97' length, DO'85' for an even INS)
the fuzzer needs commands whose MAC is right and whose structure is not. This
module builds them from the published layout (ICAO 9303-11 §9.8) with the
library's primitives (``pad``, CBC, the MAC) and a send sequence counter it
keeps itself; it checks answers the same way.
"""

from __future__ import annotations

import hmac

import attrs

from macnss_auth.nfc.crypto import (
    SymmetricCipher,
    block_decrypt_cbc,
    block_encrypt_cbc,
    block_encrypt_ecb,
    mac,
    pad,
    unpad,
)
from macnss_auth.nfc.sm import SessionKeys
from macnss_auth.nfc.tlv import encode_tlv, parse_all


@attrs.frozen
class Defects:
    """How a crafted command departs from ICAO 9303-11 §9.8 (all off: a valid command)."""

    padding_indicator: int = 0x01  # DO'87' starts with this byte
    bad_padding: bool = False  # the plaintext is not ISO/IEC 9797-1 method 2 padded
    le_length: int | None = None  # DO'97' of this many bytes instead of 1 or 2
    odd_tag: bool = False  # DO'85' for an even INS (DO'87' for an odd one)
    swap_order: bool = False  # DO'97' before the cryptogram
    extra_object: bytes = b""  # an unknown data object before DO'8E'
    empty_cryptogram: bool = False  # DO'87' holding the indicator only
    short_mac: bool = False  # a 4-byte DO'8E' (over the right input)
    cryptogram_cut: int = 0  # bytes cut off the end of the cryptogram


class CraftingTerminal:
    """The terminal's end of a session whose keys and SSC the test knows."""

    def __init__(self, keys: SessionKeys, *, ssc: int = 0) -> None:
        self.keys = keys
        self.ssc = ssc
        self._block = keys.cipher.block_size

    def _ssc_bytes(self) -> bytes:
        return self.ssc.to_bytes(self._block, "big")

    def _mac(self, data: bytes) -> bytes:
        message = self._ssc_bytes() + data
        if self.keys.cipher is SymmetricCipher.AES:
            message = pad(message, self._block)
        return mac(self.keys.cipher, self.keys.k_mac, message)

    def _iv(self) -> bytes:
        if self.keys.cipher is SymmetricCipher.AES:
            return block_encrypt_ecb(self.keys.cipher, self.keys.k_enc, self._ssc_bytes())
        return bytes(self._block)

    def command(
        self,
        ins: int,
        p1: int,
        p2: int,
        data: bytes,
        ne: int | None,
        *,
        defects: Defects = Defects(),
        extended: bool = False,
    ) -> bytes:
        """A protected command (SSC moves on by one)."""
        self.ssc += 1
        header = bytes([0x0C, ins, p1, p2])
        objects = b""
        if data or defects.empty_cryptogram:
            plain = data if defects.bad_padding else pad(data, self._block)
            if defects.bad_padding and len(plain) % self._block:
                plain += bytes(self._block - len(plain) % self._block)
            cryptogram = b"" if defects.empty_cryptogram else self._encrypt(plain)
            if defects.cryptogram_cut:
                cryptogram = cryptogram[: -defects.cryptogram_cut]
            odd = bool(ins & 1) != defects.odd_tag
            if odd:
                objects = encode_tlv(0x85, cryptogram)
            else:
                objects = encode_tlv(0x87, bytes([defects.padding_indicator]) + cryptogram)
        trailer = b""
        if ne is not None or defects.le_length is not None:
            natural = 2 if extended or (ne or 0) > 256 else 1
            size = natural if defects.le_length is None else defects.le_length
            trailer = encode_tlv(
                0x97, ((ne or 0) % (1 << (8 * min(size, 8)))).to_bytes(size, "big")
            )
        body = trailer + objects if defects.swap_order else objects + trailer
        body += defects.extra_object
        tag = self._mac(pad(header, self._block) + body)
        body += encode_tlv(0x8E, tag[:4] if defects.short_mac else tag)
        long = extended or len(body) > 255
        if long:
            return header + b"\x00" + len(body).to_bytes(2, "big") + body + b"\x00\x00"
        return header + bytes([len(body)]) + body + b"\x00"

    def _encrypt(self, plain: bytes) -> bytes:
        return block_encrypt_cbc(self.keys.cipher, self.keys.k_enc, plain, self._iv())

    def response(self, answer: bytes) -> tuple[bytes, int] | None:
        """Check a protected answer: (data, authenticated status), or None if it is plain.

        A plain answer (no data objects) means the card refused the command and
        ended the session; the SSC then no longer matters.

        Raises:
            AssertionError: the answer is protected but its MAC or structure is wrong.
        """
        self.ssc += 1
        body = answer[:-2]
        if not body:
            return None
        objects = parse_all(body)
        assert objects[-1].tag == 0x8E, answer.hex()
        covered = body[: len(body) - 10]
        assert hmac.compare_digest(self._mac(covered), objects[-1].value), "response MAC"
        status = next(o.value for o in objects if o.tag == 0x99)
        assert status == answer[-2:], answer.hex()
        data = b""
        for item in objects:
            if item.tag == 0x87:
                assert item.value[:1] == b"\x01"
                plain = block_decrypt_cbc(
                    self.keys.cipher, self.keys.k_enc, item.value[1:], self._iv()
                )
                data = unpad(plain)
        return data, int.from_bytes(status, "big")

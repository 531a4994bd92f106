"""Secure messaging (ICAO 9303-11 §9.8): encrypt-then-MAC around every APDU.

Theory of operation. After BAC, PACE or Chip Authentication both sides hold
two session keys (``KSenc``, ``KSmac``) and a send sequence counter (SSC).
Each protected command and each protected response increments the SSC first,
then:

* the command data, padded (ISO/IEC 9797-1 method 2), is encrypted with
  ``KSenc`` in CBC mode -- IV zero for 3DES, ``IV = AES-ECB(KSenc, SSC)`` for
  AES -- and sent as ``DO'87' = 01 || cryptogram`` (``DO'85'``, without the
  padding-content byte, when INS is odd);
* ``Le``, if any, travels as ``DO'97'`` (one byte short, two bytes extended);
* the MAC (retail MAC for 3DES, AES-CMAC/8 for AES) over
  ``pad(SSC || pad(CLA* INS P1 P2) || DO'85'/'87' || DO'97')`` is ``DO'8E'``;
  ``CLA*`` has bits b4 b3 set (``0C``);
* a response carries ``[DO'87'] DO'99' DO'8E'`` then the plain status word;
  the MAC covers ``pad(SSC || DO'87' || DO'99')``.

Safety rules enforced here:

* A response's MAC is checked (in constant time) before anything in it --
  data or status word -- is looked at. ``DO'99'`` is mandatory; the status
  word returned is the authenticated one.
* Any failure (bad MAC, missing or misordered data objects, bad padding, an
  unprotected error status, a call out of turn) closes the channel: it drops
  its keys and every later call raises :class:`SecureMessagingError`. The
  two sides' SSCs are out of step after a failure anyway; start over with a
  new BAC/PACE.
* Calls alternate: a terminal protects a command, then unprotects its
  response; a card unprotects a command, then protects the response.

:class:`SecureChannel` is the terminal side, :class:`CardSecureChannel` the
card side (the virtual card is built on it). Both work for 3DES and
AES-128/192/256.
"""

from __future__ import annotations

import hmac

import attrs

from macnss_auth.errors import (
    LocalProtocolError,
    MalformedInput,
    SecureMessagingError,
    UnsupportedAlgorithm,
)
from macnss_auth.nfc.apdu import CLA_SECURE_MESSAGING, CommandAPDU, ResponseAPDU
from macnss_auth.nfc.crypto import (
    KDF_ENC,
    KDF_MAC,
    SymmetricCipher,
    block_decrypt_cbc,
    block_encrypt_cbc,
    block_encrypt_ecb,
    derive_key,
    mac,
    pad,
    unpad,
)
from macnss_auth.nfc.tlv import encode_tlv, parse_one

__all__ = [
    "SW_SM_DATA_OBJECTS_INCORRECT",
    "SW_SM_DATA_OBJECTS_MISSING",
    "CardSecureChannel",
    "SecureChannel",
    "SessionKeys",
]

#: What a card answers (unprotected) when SM data objects are missing (ISO/IEC 7816-4).
SW_SM_DATA_OBJECTS_MISSING = 0x6987
#: What a card answers (unprotected) when SM data objects are wrong, e.g. a bad MAC.
SW_SM_DATA_OBJECTS_INCORRECT = 0x6988

_DO_CRYPTOGRAM_ODD = 0x85
_DO_CRYPTOGRAM = 0x87
_DO_LE = 0x97
_DO_STATUS = 0x99
_DO_MAC = 0x8E
_PADDING_INDICATOR = b"\x01"
_MAC_LENGTH = 8
# The orders of data objects that 9303-11 §9.8 allows (DO'8E' last, checked apart).
_RESPONSE_LAYOUTS: tuple[list[int], ...] = (
    [_DO_STATUS],
    [_DO_CRYPTOGRAM, _DO_STATUS],
    [_DO_CRYPTOGRAM_ODD, _DO_STATUS],
)
_COMMAND_LAYOUTS: tuple[list[int], ...] = (
    [],
    [_DO_LE],
    [_DO_CRYPTOGRAM],
    [_DO_CRYPTOGRAM, _DO_LE],
    [_DO_CRYPTOGRAM_ODD],
    [_DO_CRYPTOGRAM_ODD, _DO_LE],
)


def _check_keys(instance: SessionKeys, _attribute: object, _value: bytes) -> None:
    if type(instance.k_enc) is not bytes or type(instance.k_mac) is not bytes:
        raise TypeError("session keys must be bytes")
    if instance.cipher is SymmetricCipher.TDES:
        if len(instance.k_enc) != 16 or len(instance.k_mac) != 16:
            raise UnsupportedAlgorithm("3DES session keys are 16 bytes (two-key 3DES)")
    elif len(instance.k_enc) not in (16, 24, 32) or len(instance.k_mac) != len(instance.k_enc):
        raise UnsupportedAlgorithm("AES session keys are 16, 24 or 32 bytes, both the same")


@attrs.frozen(repr=False, eq=False)
class SessionKeys:
    """The two keys of a secure channel and the cipher family they belong to.

    Attributes:
        cipher: 3DES or AES.
        k_enc: the encryption key ``KSenc``.
        k_mac: the MAC key ``KSmac``.
    """

    cipher: SymmetricCipher = attrs.field(validator=attrs.validators.instance_of(SymmetricCipher))
    k_enc: bytes = attrs.field(validator=_check_keys)
    k_mac: bytes = attrs.field()

    @property
    def key_bits(self) -> int:
        """128/192/256 for AES; 112 for two-key 3DES."""
        if self.cipher is SymmetricCipher.TDES:
            return 112
        return 8 * len(self.k_enc)

    @classmethod
    def derive(cls, shared: bytes, cipher: SymmetricCipher, key_bits: int = 128) -> SessionKeys:
        """Both keys from a shared secret with the KDF of ICAO 9303-11 §9.7.1.

        Raises:
            UnsupportedAlgorithm: a key length the cipher does not have.
        """
        return cls(
            cipher,
            derive_key(shared, KDF_ENC, cipher, key_bits),
            derive_key(shared, KDF_MAC, cipher, key_bits),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionKeys):
            return NotImplemented
        return (
            self.cipher is other.cipher
            and hmac.compare_digest(self.k_enc, other.k_enc)
            and hmac.compare_digest(self.k_mac, other.k_mac)
        )

    def __hash__(self) -> int:
        raise TypeError("SessionKeys are unhashable")

    def __repr__(self) -> str:
        return f"SessionKeys(cipher={self.cipher.value}, key_bits={self.key_bits}, <redacted>)"


# Padding, DO'87' header and DO'8E'/DO'97' must still fit an extended Lc of 65,535 bytes.
_MAX_PROTECTED_DATA = 65_535 - 64


class _Channel:
    """State shared by both sides: keys, SSC, turn, and death."""

    _cipher: SymmetricCipher
    _block: int

    def __init__(self, keys: SessionKeys, *, ssc: int) -> None:
        if not isinstance(keys, SessionKeys):
            raise TypeError("keys must be SessionKeys")
        if type(ssc) is not int:
            raise TypeError("ssc must be an int")
        self._cipher = keys.cipher
        self._block = keys.cipher.block_size
        if not 0 <= ssc < 1 << (8 * self._block):
            raise ValueError("ssc does not fit the block size")
        self._keys: SessionKeys | None = keys
        self._ssc = ssc
        self._awaiting = False

    @property
    def cipher(self) -> SymmetricCipher:
        """The cipher family of this channel."""
        return self._cipher

    @property
    def closed(self) -> bool:
        """Whether the channel failed or was closed; a closed channel never reopens."""
        return self._keys is None

    @property
    def ssc(self) -> bytes:
        """The current send sequence counter (8 bytes for 3DES, 16 for AES)."""
        return self._ssc.to_bytes(self._block, "big")

    def close(self) -> None:
        """Drop the keys; every later call raises. Idempotent."""
        self._keys = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {self._cipher.value} {state}>"

    # -- internals ---------------------------------------------------------------

    def _live_keys(self, *, awaiting: bool) -> SessionKeys:
        keys = self._keys
        if keys is None:
            raise SecureMessagingError("secure channel is closed")
        if self._awaiting is not awaiting:
            self.close()
            raise SecureMessagingError("secure messaging calls out of turn; channel closed")
        return keys

    def _fail(self, message: str, *, status_word: int | None = None) -> SecureMessagingError:
        self.close()
        return SecureMessagingError(message, status_word=status_word)

    def _next_ssc(self) -> bytes:
        self._ssc = (self._ssc + 1) % (1 << (8 * self._block))
        return self.ssc

    def _begin(self, *, awaiting: bool) -> tuple[SessionKeys, bytes]:
        """The live keys and the next SSC for a message; a response ends the wait for it."""
        keys = self._live_keys(awaiting=awaiting)
        if awaiting:
            self._awaiting = False
        return keys, self._next_ssc()

    def _mac(self, keys: SessionKeys, ssc: bytes, data: bytes) -> bytes:
        # Both families MAC the padded input; the 3DES retail MAC pads by itself.
        message = ssc + data
        if self._cipher is SymmetricCipher.AES:
            message = pad(message, self._block)
        return mac(self._cipher, keys.k_mac, message)

    def _iv(self, keys: SessionKeys, ssc: bytes) -> bytes:
        if self._cipher is SymmetricCipher.AES:
            return block_encrypt_ecb(self._cipher, keys.k_enc, ssc)
        return bytes(self._block)

    def _encrypt(self, keys: SessionKeys, ssc: bytes, data: bytes) -> bytes:
        return block_encrypt_cbc(
            self._cipher, keys.k_enc, pad(data, self._block), self._iv(keys, ssc)
        )

    def _decrypt(self, keys: SessionKeys, ssc: bytes, cryptogram: bytes) -> bytes:
        if not cryptogram or len(cryptogram) % self._block:
            raise MalformedInput("cryptogram is not block aligned", field="cryptogram")
        plain = block_decrypt_cbc(self._cipher, keys.k_enc, cryptogram, self._iv(keys, ssc))
        return unpad(plain)

    def _cryptogram_object(self, keys: SessionKeys, ssc: bytes, data: bytes, *, odd: bool) -> bytes:
        """``data`` encrypted in DO'85' (odd INS) or DO'87' (with its padding indicator)."""
        cryptogram = self._encrypt(keys, ssc, data)
        if odd:
            return encode_tlv(_DO_CRYPTOGRAM_ODD, cryptogram)
        return encode_tlv(_DO_CRYPTOGRAM, _PADDING_INDICATOR + cryptogram)

    def _open_cryptogram(self, keys: SessionKeys, ssc: bytes, tag: int, value: bytes) -> bytes:
        """The plain data of a DO'85' or DO'87' (whose padding indicator must be 01)."""
        cryptogram = value
        if tag == _DO_CRYPTOGRAM:
            if value[:1] != _PADDING_INDICATOR:
                raise MalformedInput("DO'87' padding indicator is not 01", field="DO87")
            cryptogram = value[1:]
        return self._decrypt(keys, ssc, cryptogram)

    def _split(self, body: bytes) -> list[tuple[int, bytes, bytes]]:
        """``(tag, value, raw encoding)`` for each data object of ``body``."""
        out: list[tuple[int, bytes, bytes]] = []
        offset = 0
        while offset < len(body):
            tlv, end = parse_one(body, offset)
            out.append((tlv.tag, tlv.value, body[offset:end]))
            offset = end
        return out

    def _verify_mac(
        self, keys: SessionKeys, ssc: bytes, objects: list[tuple[int, bytes, bytes]]
    ) -> bytes:
        """Check the trailing DO'8E' over everything before it; return that covered data."""
        if not objects or objects[-1][0] != _DO_MAC:
            raise MalformedInput("DO'8E' missing or not last", field="DO8E")
        received = objects[-1][1]
        covered = b"".join(raw for _, _, raw in objects[:-1])
        expected = self._mac(keys, ssc, covered)
        if len(received) != _MAC_LENGTH or not hmac.compare_digest(received, expected):
            raise _MacMismatch
        return covered


class _MacMismatch(Exception):
    """Internal signal: the MAC did not verify (turned into SecureMessagingError)."""


class SecureChannel(_Channel):
    """The terminal side of a secure channel.

    >>> from macnss_auth.nfc.crypto import SymmetricCipher
    >>> keys = SessionKeys(SymmetricCipher.AES, bytes(16), bytes(range(16)))
    >>> channel = SecureChannel(keys, ssc=0)
    >>> protected = channel.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=4))
    >>> protected[:5].hex()
    '0cb000000d'

    Args:
        keys: the session keys.
        ssc: the initial send sequence counter (BAC derives it from the
            nonces; PACE and Chip Authentication start at 0).
    """

    def __init__(self, keys: SessionKeys, *, ssc: int = 0) -> None:
        super().__init__(keys, ssc=ssc)

    def protect(self, command: CommandAPDU) -> bytes:
        """Wrap a plain command; returns the bytes to send.

        Raises:
            SecureMessagingError: the channel is closed, or a response is still due.
        """
        if not isinstance(command, CommandAPDU):
            raise TypeError("command must be a CommandAPDU")
        keys = self._live_keys(awaiting=False)
        if command.cla & CLA_SECURE_MESSAGING:
            raise self._fail("command CLA already indicates secure messaging")
        # Checked before the SSC moves: a refused command must leave the channel in step.
        if len(command.data) > _MAX_PROTECTED_DATA:
            raise LocalProtocolError("command data too long to protect in one APDU")
        ssc = self._next_ssc()
        cla = command.cla | CLA_SECURE_MESSAGING
        header = bytes([cla, command.ins, command.p1, command.p2])
        objects = b""
        if command.data:
            objects += self._cryptogram_object(keys, ssc, command.data, odd=bool(command.ins & 1))
        extended = command.is_extended
        if command.ne is not None:
            size = 2 if extended else 1
            objects += encode_tlv(_DO_LE, (command.ne % (1 << (8 * size))).to_bytes(size, "big"))
        checksum = self._mac(keys, ssc, pad(header, self._block) + objects)
        body = objects + encode_tlv(_DO_MAC, checksum)
        extended = extended or len(body) > 255
        protected = CommandAPDU(
            cla,
            command.ins,
            command.p1,
            command.p2,
            data=body,
            ne=65536 if extended else 256,
            extended=extended,
        )
        self._awaiting = True
        return protected.to_bytes()

    def unprotect(self, response: bytes) -> ResponseAPDU:
        """Verify and decrypt a protected response.

        The MAC is verified before the data or the status word is used.

        Returns:
            The plain response, with the authenticated status word from ``DO'99'``.

        Raises:
            SecureMessagingError: bad MAC, bad structure, an unprotected
                response (its unauthenticated status word is on
                ``status_word``), or a call out of turn. The channel is then closed.
        """
        if type(response) is not bytes:
            raise TypeError("response must be bytes")
        keys, ssc = self._begin(awaiting=True)
        if len(response) < 2:
            raise self._fail("response shorter than a status word")
        body, outer_sw = response[:-2], int.from_bytes(response[-2:], "big")
        if not body:
            # Cards answer SM errors (6987, 6988) in plain: the status is not authenticated.
            raise self._fail(
                f"unprotected response, status {outer_sw:04X} (not authenticated)",
                status_word=outer_sw,
            )
        try:
            objects = self._split(body)
            self._verify_mac(keys, ssc, objects)
            data, sw = self._read_response_objects(keys, ssc, objects[:-1])
        except _MacMismatch:
            raise self._fail("response MAC does not verify") from None
        except MalformedInput as exc:
            raise self._fail(f"malformed protected response: {exc}") from exc
        return ResponseAPDU(data, sw)

    def _read_response_objects(
        self, keys: SessionKeys, ssc: bytes, objects: list[tuple[int, bytes, bytes]]
    ) -> tuple[bytes, int]:
        tags = [tag for tag, _, _ in objects]
        if tags not in (
            [_DO_STATUS],
            [_DO_CRYPTOGRAM, _DO_STATUS],
            [_DO_CRYPTOGRAM_ODD, _DO_STATUS],
        ):
            raise MalformedInput("unexpected data objects in protected response", field="DO99")
        status = objects[-1][1]
        if len(status) != 2:
            raise MalformedInput("DO'99' must hold two bytes", field="DO99")
        data = b""
        if len(objects) == 2:
            tag, value, _ = objects[0]
            data = self._open_cryptogram(keys, ssc, tag, value)
        return data, int.from_bytes(status, "big")


class CardSecureChannel(_Channel):
    """The card side of a secure channel (for the virtual card).

    A failed :meth:`unprotect_command` raises :class:`SecureMessagingError`
    whose ``status_word`` is what the card should answer, unprotected
    (``6987`` or ``6988``); the channel is then closed.
    """

    def __init__(self, keys: SessionKeys, *, ssc: int = 0) -> None:
        super().__init__(keys, ssc=ssc)

    def unprotect_command(self, command: bytes) -> CommandAPDU:
        """Verify and decrypt a protected command.

        Raises:
            SecureMessagingError: bad MAC or structure, or a call out of turn.
        """
        if type(command) is not bytes:
            raise TypeError("command must be bytes")
        keys, ssc = self._begin(awaiting=False)
        try:
            apdu = CommandAPDU.from_bytes(command)
        except MalformedInput as exc:
            raise self._fail("malformed command APDU", status_word=0x6700) from exc
        if not apdu.secure_messaging or not apdu.data:
            raise self._fail("command is not protected", status_word=SW_SM_DATA_OBJECTS_MISSING)
        header = apdu.header
        try:
            objects = self._split(apdu.data)
            self._verify_mac_over_header(keys, ssc, header, objects)
            plain = self._read_command_objects(keys, ssc, apdu, objects[:-1])
        except _MacMismatch:
            raise self._fail(
                "command MAC does not verify", status_word=SW_SM_DATA_OBJECTS_INCORRECT
            ) from None
        except MalformedInput as exc:
            raise self._fail(
                f"malformed protected command: {exc}", status_word=SW_SM_DATA_OBJECTS_INCORRECT
            ) from exc
        self._awaiting = True
        return plain

    def protect_response(self, response: ResponseAPDU) -> bytes:
        """Wrap a plain response; returns the bytes to send back.

        Raises:
            SecureMessagingError: the channel is closed, or no command is being answered.
        """
        if not isinstance(response, ResponseAPDU):
            raise TypeError("response must be a ResponseAPDU")
        keys, ssc = self._begin(awaiting=True)
        objects = b""
        if response.data:
            objects += self._cryptogram_object(keys, ssc, response.data, odd=False)
        objects += encode_tlv(_DO_STATUS, response.sw.to_bytes(2, "big"))
        checksum = self._mac(keys, ssc, objects)
        return objects + encode_tlv(_DO_MAC, checksum) + response.sw.to_bytes(2, "big")

    def _verify_mac_over_header(
        self,
        keys: SessionKeys,
        ssc: bytes,
        header: bytes,
        objects: list[tuple[int, bytes, bytes]],
    ) -> bytes:
        padded_header = pad(header, self._block)
        with_header = [(0, b"", padded_header), *objects]
        return self._verify_mac(keys, ssc, with_header)

    def _read_command_objects(
        self,
        keys: SessionKeys,
        ssc: bytes,
        apdu: CommandAPDU,
        objects: list[tuple[int, bytes, bytes]],
    ) -> CommandAPDU:
        tags = [tag for tag, _, _ in objects]
        if tags not in _COMMAND_LAYOUTS:
            raise MalformedInput("unexpected data objects in protected command", field="DO87")
        data = b""
        ne: int | None = None
        extended = False
        for tag, value, _ in objects:
            if tag == _DO_LE:
                if len(value) == 1:
                    ne = value[0] or 256
                elif len(value) == 2:
                    ne = int.from_bytes(value, "big") or 65536
                    # Only an Ne that short encoding could carry needs the explicit flag.
                    extended = ne <= 256
                else:
                    raise MalformedInput("DO'97' must hold one or two bytes", field="DO97")
            else:
                if (tag == _DO_CRYPTOGRAM_ODD) != bool(apdu.ins & 1):
                    raise MalformedInput("DO'85' is for odd INS, DO'87' for even", field="DO87")
                data = self._open_cryptogram(keys, ssc, tag, value)
                if len(data) > 65535:
                    raise MalformedInput("command data too long", field="DO87")
        return CommandAPDU(
            apdu.cla & ~CLA_SECURE_MESSAGING & 0xFF,
            apdu.ins,
            apdu.p1,
            apdu.p2,
            data=data,
            ne=ne,
            extended=extended,
        )

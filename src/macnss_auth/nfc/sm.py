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

One implementation serves both ends, parameterised by :class:`Role` (as h11's
``Connection(our_role=...)``): a command and a response are sealed by the same
code (``_seal``: cryptogram, trailer ``DO'97'`` or ``DO'99'``, MAC) and opened
by the same code (``_open``: MAC first, then the layout, then decryption); the
role only says which of the two messages of an exchange this end seals.
:class:`SecureChannel` defaults to the terminal; :class:`CardSecureChannel`
is the same class with the card's role (the virtual card is built on it).
Both work for 3DES and AES-128/192/256.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Sequence
from typing import Final

import attrs

from macnss_auth.errors import (
    LocalProtocolError,
    MalformedInput,
    SecureMessagingError,
    UnsupportedAlgorithm,
)
from macnss_auth.nfc.apdu import CLA_SECURE_MESSAGING, CommandAPDU, ResponseAPDU, StatusCode
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
    "Role",
    "SecureChannel",
    "SessionKeys",
]

#: What a card answers (unprotected) when SM data objects are missing (ISO/IEC 7816-4).
SW_SM_DATA_OBJECTS_MISSING = StatusCode.SM_DATA_OBJECTS_MISSING
#: What a card answers (unprotected) when SM data objects are wrong, e.g. a bad MAC.
SW_SM_DATA_OBJECTS_INCORRECT = StatusCode.SM_DATA_OBJECTS_INCORRECT

_DO_CRYPTOGRAM_ODD = 0x85
_DO_CRYPTOGRAM = 0x87
_DO_LE = 0x97
_DO_STATUS = 0x99
_DO_MAC = 0x8E
_PADDING_INDICATOR = b"\x01"
_MAC_LENGTH = 8
# The orders of data objects that 9303-11 §9.8 allows (DO'8E' last, checked apart).
# A response always carries its status (DO'99'); a command its Le (DO'97') if any.
_RESPONSE_LAYOUTS: tuple[tuple[int, ...], ...] = (
    (_DO_STATUS,),
    (_DO_CRYPTOGRAM, _DO_STATUS),
    (_DO_CRYPTOGRAM_ODD, _DO_STATUS),
)
_COMMAND_LAYOUTS: tuple[tuple[int, ...], ...] = (
    (),
    (_DO_LE,),
    (_DO_CRYPTOGRAM,),
    (_DO_CRYPTOGRAM, _DO_LE),
    (_DO_CRYPTOGRAM_ODD,),
    (_DO_CRYPTOGRAM_ODD, _DO_LE),
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


class Role(enum.Enum):
    """Which end of a secure channel an object is."""

    TERMINAL = "terminal"  # protects commands, unprotects responses
    CARD = "card"  # unprotects commands, protects responses


class _Message(enum.Enum):
    COMMAND = "command"
    RESPONSE = "response"


# The protocol table, one for both roles: every exchange is a command then its
# response; each role seals one of the two and opens the other.
_SEALS: dict[Role, _Message] = {Role.TERMINAL: _Message.COMMAND, Role.CARD: _Message.RESPONSE}
# Lengths the plain trailer objects may have: DO'97' is a short or extended Le.
_TRAILER_LENGTHS: dict[int, tuple[int, ...]] = {_DO_LE: (1, 2), _DO_STATUS: (2,)}

# Padding, DO'87' header and DO'8E'/DO'97' must still fit an extended Lc of 65,535 bytes.
_MAX_PROTECTED_DATA = 65_535 - 64

_Objects = list[tuple[int, bytes, bytes]]


class _MacMismatch(Exception):
    """Internal signal: the MAC did not verify (turned into SecureMessagingError)."""


class SecureChannel:
    """One end of a secure channel: the terminal's by default, the card's with ``role=Role.CARD``.

    The terminal calls :meth:`protect` (:meth:`protect_command`) then
    :meth:`unprotect` (:meth:`unprotect_response`); the card calls
    :meth:`unprotect_command` then :meth:`protect_response`. A call its role
    does not make, or out of turn, closes the channel.

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
        role: which end this object is.
        alternatives: card side only: other session keys the terminal may
            hold (Chip Authentication over DH: a terminal may have hashed K
            without its leading zero octets). The first command's MAC picks
            the set the channel keeps.

    Raises:
        ValueError: an SSC that does not fit the block, or alternatives on the terminal side.
    """

    def __init__(
        self,
        keys: SessionKeys,
        *,
        ssc: int = 0,
        role: Role = Role.TERMINAL,
        alternatives: Sequence[SessionKeys] = (),
    ) -> None:
        if not isinstance(role, Role):
            raise TypeError("role must be a Role")
        if not all(isinstance(item, SessionKeys) for item in (keys, *alternatives)):
            raise TypeError("keys must be SessionKeys")
        if type(ssc) is not int:
            raise TypeError("ssc must be an int")
        if alternatives and role is not Role.CARD:
            raise ValueError("only the card, which opens first, can choose between session keys")
        if any(other.cipher is not keys.cipher for other in alternatives):
            raise ValueError("alternative session keys must use the same cipher")
        #: Which end of the channel this object is (h11's ``our_role``).
        self.role: Final = role
        self._cipher = keys.cipher
        self._block = keys.cipher.block_size
        if not 0 <= ssc < 1 << (8 * self._block):
            raise ValueError("ssc does not fit the block size")
        self._keys: SessionKeys | None = keys
        self._candidates: tuple[SessionKeys, ...] = (keys, *alternatives)
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
        self._candidates = ()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {self.role.value} {self._cipher.value} {state}>"

    # -- the four halves of an exchange -------------------------------------------------

    def protect_command(self, command: CommandAPDU) -> bytes:
        """Terminal: wrap a plain command; returns the bytes to send.

        Raises:
            SecureMessagingError: the channel is closed, a response is still
                due, or this is the card's end.
            LocalProtocolError: the command data is too long to protect (the
                channel stays usable).
        """
        if not isinstance(command, CommandAPDU):
            raise TypeError("command must be a CommandAPDU")
        keys = self._turn(_Message.COMMAND, sealing=True)
        if command.cla & CLA_SECURE_MESSAGING:
            raise self._fail("command CLA already indicates secure messaging")
        # Checked before the SSC moves: a refused command must leave the channel in step.
        if len(command.data) > _MAX_PROTECTED_DATA:
            raise LocalProtocolError("command data too long to protect in one APDU")
        ssc = self._next_ssc()
        cla = command.cla | CLA_SECURE_MESSAGING
        extended = command.is_extended
        trailer = b""
        if command.ne is not None:
            size = 2 if extended else 1
            trailer = encode_tlv(_DO_LE, (command.ne % (1 << (8 * size))).to_bytes(size, "big"))
        header = bytes([cla, command.ins, command.p1, command.p2])
        body = self._seal(
            keys,
            ssc,
            pad(header, self._block),
            command.data,
            odd=bool(command.ins & 1),
            trailer=trailer,
        )
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

    def unprotect_response(self, response: bytes) -> ResponseAPDU:
        """Terminal: verify and decrypt a protected response.

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
        self._turn(_Message.RESPONSE, sealing=False)
        ssc = self._next_ssc()
        self._awaiting = False
        if len(response) < 2:
            raise self._fail("response shorter than a status word")
        body, outer_sw = response[:-2], int.from_bytes(response[-2:], "big")
        if not body:
            # Cards answer SM errors (6987, 6988) in plain: the status is not authenticated.
            raise self._fail(
                f"unprotected response, status {outer_sw:04X} (not authenticated)",
                status_word=outer_sw,
            )
        data, trailer = self._open(
            ssc, b"", body, layouts=_RESPONSE_LAYOUTS, odd=None, what="response", status_word=None
        )
        return ResponseAPDU(data, int.from_bytes(trailer[_DO_STATUS], "big"))

    def unprotect_command(self, command: bytes) -> CommandAPDU:
        """Card: verify and decrypt a protected command.

        Raises:
            SecureMessagingError: bad MAC or structure, or a call out of turn;
                ``status_word`` is what the card answers, unprotected
                (``6987``, ``6988`` or ``6700``). The channel is then closed.
        """
        if type(command) is not bytes:
            raise TypeError("command must be bytes")
        self._turn(_Message.COMMAND, sealing=False)
        ssc = self._next_ssc()
        try:
            apdu = CommandAPDU.from_bytes(command)
        except MalformedInput as exc:
            raise self._fail("malformed command APDU", status_word=StatusCode.WRONG_LENGTH) from exc
        if not apdu.secure_messaging or not apdu.data:
            raise self._fail("command is not protected", status_word=SW_SM_DATA_OBJECTS_MISSING)
        data, trailer = self._open(
            ssc,
            pad(apdu.header, self._block),
            apdu.data,
            layouts=_COMMAND_LAYOUTS,
            odd=bool(apdu.ins & 1),
            what="command",
            status_word=SW_SM_DATA_OBJECTS_INCORRECT,
        )
        ne: int | None = None
        extended = False
        le = trailer.get(_DO_LE)
        if le is not None:
            ne = int.from_bytes(le, "big") or (256 if len(le) == 1 else 65536)
            # Only an Ne that short encoding could carry needs the explicit flag.
            extended = len(le) == 2 and ne <= 256
        self._awaiting = True
        return CommandAPDU(
            apdu.cla & ~CLA_SECURE_MESSAGING & 0xFF,
            apdu.ins,
            apdu.p1,
            apdu.p2,
            data=data,
            ne=ne,
            extended=extended,
        )

    def protect_response(self, response: ResponseAPDU) -> bytes:
        """Card: wrap a plain response; returns the bytes to send back.

        Raises:
            SecureMessagingError: the channel is closed, no command is being
                answered, or this is the terminal's end.
        """
        if not isinstance(response, ResponseAPDU):
            raise TypeError("response must be a ResponseAPDU")
        keys = self._turn(_Message.RESPONSE, sealing=True)
        ssc = self._next_ssc()
        self._awaiting = False
        status = response.sw.to_bytes(2, "big")
        trailer = encode_tlv(_DO_STATUS, status)
        return self._seal(keys, ssc, b"", response.data, odd=False, trailer=trailer) + status

    #: The terminal's names for its two halves.
    protect = protect_command
    unprotect = unprotect_response

    # -- one sealing and one opening for commands and responses alike --------------------

    def _turn(self, message: _Message, *, sealing: bool) -> SessionKeys:
        """The live keys, if ``message`` is this role's to seal (or open) and its turn."""
        keys = self._keys
        if keys is None:
            raise SecureMessagingError("secure channel is closed")
        if (_SEALS[self.role] is message) is not sealing:
            self.close()
            action = "protect" if sealing else "unprotect"
            raise SecureMessagingError(
                f"the {self.role.value} does not {action} {message.value}s; channel closed"
            )
        if self._awaiting is not (message is _Message.RESPONSE):
            self.close()
            raise SecureMessagingError("secure messaging calls out of turn; channel closed")
        return keys

    def _seal(
        self,
        keys: SessionKeys,
        ssc: bytes,
        header: bytes,
        data: bytes,
        *,
        odd: bool,
        trailer: bytes,
    ) -> bytes:
        """``[DO'85'/'87'] trailer DO'8E'``; the MAC also covers ``header`` (commands)."""
        objects = b""
        if data:
            cryptogram = self._encrypt(keys, ssc, data)
            if odd:
                objects = encode_tlv(_DO_CRYPTOGRAM_ODD, cryptogram)
            else:
                objects = encode_tlv(_DO_CRYPTOGRAM, _PADDING_INDICATOR + cryptogram)
        objects += trailer
        return objects + encode_tlv(_DO_MAC, self._mac(keys, ssc, header + objects))

    def _open(
        self,
        ssc: bytes,
        header: bytes,
        body: bytes,
        *,
        layouts: tuple[tuple[int, ...], ...],
        odd: bool | None,
        what: str,
        status_word: int | None,
    ) -> tuple[bytes, dict[int, bytes]]:
        """The plain data and the plain trailer objects of a sealed ``body``.

        The MAC (over ``header`` and every object before DO'8E') is checked
        before anything else is read. ``odd`` is the INS parity a command's
        cryptogram object must match (``None`` for a response). Any failure
        closes the channel with ``status_word``.
        """
        try:
            objects = self._split(body)
            keys = self._verify_mac(ssc, header, objects)
            data, trailer = self._read(keys, ssc, objects[:-1], layouts=layouts, odd=odd, what=what)
        except _MacMismatch:
            raise self._fail(f"{what} MAC does not verify", status_word=status_word) from None
        except MalformedInput as exc:
            raise self._fail(f"malformed protected {what}: {exc}", status_word=status_word) from exc
        # The first message opened fixes the keys (see ``alternatives``).
        self._keys, self._candidates = keys, (keys,)
        return data, trailer

    def _read(
        self,
        keys: SessionKeys,
        ssc: bytes,
        objects: _Objects,
        *,
        layouts: tuple[tuple[int, ...], ...],
        odd: bool | None,
        what: str,
    ) -> tuple[bytes, dict[int, bytes]]:
        """The data objects before DO'8E', checked against ``layouts``, decrypted."""
        if tuple(tag for tag, _, _ in objects) not in layouts:
            raise MalformedInput(f"unexpected data objects in protected {what}", field="DO8E")
        data = b""
        trailer: dict[int, bytes] = {}
        for tag, value, _ in objects:
            if tag in _TRAILER_LENGTHS:
                if len(value) not in _TRAILER_LENGTHS[tag]:
                    raise MalformedInput(f"DO'{tag:02X}' has a wrong length", field=f"DO{tag:02X}")
                trailer[tag] = value
                continue
            if odd is not None and (tag == _DO_CRYPTOGRAM_ODD) != odd:
                raise MalformedInput("DO'85' is for odd INS, DO'87' for even", field="DO87")
            data = self._open_cryptogram(keys, ssc, tag, value)
        return data, trailer

    # -- cryptography ----------------------------------------------------------------------

    def _fail(self, message: str, *, status_word: int | None = None) -> SecureMessagingError:
        self.close()
        return SecureMessagingError(
            message, status_word=None if status_word is None else int(status_word)
        )

    def _next_ssc(self) -> bytes:
        self._ssc = (self._ssc + 1) % (1 << (8 * self._block))
        return self.ssc

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

    def _open_cryptogram(self, keys: SessionKeys, ssc: bytes, tag: int, value: bytes) -> bytes:
        """The plain data of a DO'85' or DO'87' (whose padding indicator must be 01)."""
        cryptogram = value
        if tag == _DO_CRYPTOGRAM:
            if value[:1] != _PADDING_INDICATOR:
                raise MalformedInput("DO'87' padding indicator is not 01", field="DO87")
            cryptogram = value[1:]
        if not cryptogram or len(cryptogram) % self._block:
            raise MalformedInput("cryptogram is not block aligned", field="cryptogram")
        plain = block_decrypt_cbc(self._cipher, keys.k_enc, cryptogram, self._iv(keys, ssc))
        return unpad(plain)

    @staticmethod
    def _split(body: bytes) -> _Objects:
        """``(tag, value, raw encoding)`` for each data object of ``body``."""
        out: _Objects = []
        offset = 0
        while offset < len(body):
            tlv, end = parse_one(body, offset)
            out.append((tlv.tag, tlv.value, body[offset:end]))
            offset = end
        return out

    def _verify_mac(self, ssc: bytes, header: bytes, objects: _Objects) -> SessionKeys:
        """The keys whose MAC over ``header`` and the objects matches the trailing DO'8E'."""
        if not objects or objects[-1][0] != _DO_MAC:
            raise MalformedInput("DO'8E' missing or not last", field="DO8E")
        received = objects[-1][1]
        covered = header + b"".join(raw for _, _, raw in objects[:-1])
        matched: SessionKeys | None = None
        # Every candidate is computed (no early exit); usually there is one.
        for keys in self._candidates:
            expected = self._mac(keys, ssc, covered)
            if hmac.compare_digest(received, expected) and matched is None:
                matched = keys
        if matched is None or len(received) != _MAC_LENGTH:
            raise _MacMismatch
        return matched


class CardSecureChannel(SecureChannel):
    """The card's end of a secure channel: :class:`SecureChannel` with ``role=Role.CARD``.

    A failed :meth:`unprotect_command` raises :class:`SecureMessagingError`
    whose ``status_word`` is what the card should answer, unprotected
    (``6987`` or ``6988``); the channel is then closed.
    """

    def __init__(
        self, keys: SessionKeys, *, ssc: int = 0, alternatives: Sequence[SessionKeys] = ()
    ) -> None:
        super().__init__(keys, ssc=ssc, role=Role.CARD, alternatives=alternatives)

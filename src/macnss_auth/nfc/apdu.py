"""Command and response APDUs (ISO/IEC 7816-4 §5.1), short and extended length.

A command is ``CLA INS P1 P2`` then, depending on its case, ``Lc`` and data
and/or ``Le``. ``Nc`` (the data length) and ``Ne`` (the maximum response length
expected) choose the case:

========  ====================  ===============================================
case      short encoding        extended encoding
========  ====================  ===============================================
1         header only           header only
2         Le (1 byte, 00=256)   00 Le1 Le2 (0000 = 65536)
3         Lc (1 byte) data      00 Lc1 Lc2 data
4         Lc data Le            00 Lc1 Lc2 data Le1 Le2
========  ====================  ===============================================

Types are strict: header bytes are ``int`` in 0..255, data is ``bytes``, and
nothing is coerced from ``str``. A response is its data followed by the two
status bytes SW1 SW2.
"""

from __future__ import annotations

import enum

import attrs

from macnss_auth.errors import MalformedInput, RemoteProtocolError

__all__ = [
    "CLA_CHAINING",
    "CLA_SECURE_MESSAGING",
    "MAX_EVEN_OFFSET",
    "CommandAPDU",
    "ResponseAPDU",
    "StatusCode",
    "StatusWord",
    "read_binary_at",
    "retries_left",
    "status_meaning",
]

#: CLA bit b5: more commands of this chain follow (ISO/IEC 7816-4 §5.1.1.1).
CLA_CHAINING = 0x10
#: CLA bits b4 b3 = 11: secure messaging with an authenticated header (ISO/IEC 7816-4 §5.1.1).
CLA_SECURE_MESSAGING = 0x0C

_SHORT_NE_MAX = 256
_EXTENDED_NE_MAX = 65536
_SHORT_NC_MAX = 255
_EXTENDED_NC_MAX = 65535


def _byte(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if type(value) is not int:
        raise TypeError(f"{attribute.name} must be an int")
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{attribute.name} must be in 0..255")


def _status_word(_instance: object, _attribute: attrs.Attribute[int], value: object) -> None:
    if type(value) is not int:
        raise TypeError("status word must be an int")
    if not 0 <= value <= 0xFFFF:
        raise ValueError("status word must be in 0..0xFFFF")


def _data(_instance: object, _attribute: attrs.Attribute[bytes], value: object) -> None:
    if type(value) is not bytes:
        raise TypeError("data must be bytes")
    if len(value) > _EXTENDED_NC_MAX:
        raise ValueError("command data longer than 65535 bytes")


def _ne(_instance: object, _attribute: attrs.Attribute[int | None], value: object) -> None:
    if value is None:
        return
    if type(value) is not int:
        raise TypeError("ne must be an int or None")
    if not 1 <= value <= _EXTENDED_NE_MAX:
        raise ValueError("ne must be in 1..65536 (None: no response data expected)")


@attrs.frozen
class CommandAPDU:
    """A command APDU.

    Attributes:
        cla: class byte.
        ins: instruction byte.
        p1: parameter 1.
        p2: parameter 2.
        data: the command data (``Nc`` bytes, possibly empty).
        ne: maximum number of response data bytes expected; ``None`` when no
            ``Le`` field is sent, 256 (short) or 65536 (extended) for "all".
        extended: force extended length even when short would fit.
    """

    cla: int = attrs.field(validator=_byte)
    ins: int = attrs.field(validator=_byte)
    p1: int = attrs.field(validator=_byte)
    p2: int = attrs.field(validator=_byte)
    data: bytes = attrs.field(default=b"", validator=_data, repr=False)
    ne: int | None = attrs.field(default=None, validator=_ne)
    extended: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    @property
    def is_extended(self) -> bool:
        """Whether :meth:`to_bytes` uses extended length fields."""
        return (
            self.extended
            or len(self.data) > _SHORT_NC_MAX
            or (self.ne is not None and self.ne > _SHORT_NE_MAX)
        )

    @property
    def chained(self) -> bool:
        """Whether the chaining bit is set: more commands of the chain follow."""
        return bool(self.cla & CLA_CHAINING)

    @property
    def secure_messaging(self) -> bool:
        """Whether CLA announces secure messaging with an authenticated header."""
        return self.cla & CLA_SECURE_MESSAGING == CLA_SECURE_MESSAGING

    @property
    def header(self) -> bytes:
        """``CLA INS P1 P2``."""
        return bytes([self.cla, self.ins, self.p1, self.p2])

    def with_chaining(self, chained: bool = True) -> CommandAPDU:
        """The same command with the chaining bit set (or cleared)."""
        cla = self.cla | CLA_CHAINING if chained else self.cla & ~CLA_CHAINING
        return attrs.evolve(self, cla=cla)

    def to_bytes(self) -> bytes:
        """The encoded command, short unless a length needs (or ``extended`` asks for) extended."""
        out = self.header
        extended = self.is_extended
        if self.data:
            if extended:
                out += b"\x00" + len(self.data).to_bytes(2, "big")
            else:
                out += bytes([len(self.data)])
            out += self.data
        if self.ne is not None:
            if extended:
                le = (self.ne % _EXTENDED_NE_MAX).to_bytes(2, "big")
                # Case 2E carries its own 00 marker; case 4E's was sent with Lc.
                out += le if self.data else b"\x00" + le
            else:
                out += bytes([self.ne % _SHORT_NE_MAX])
        return out

    @classmethod
    def from_bytes(cls, raw: bytes) -> CommandAPDU:
        """Parse an encoded command (the card side of a transport).

        Raises:
            MalformedInput: the bytes are not one of the seven valid encodings.
        """
        if type(raw) is not bytes:
            raise TypeError("raw must be bytes")
        if len(raw) < 4:
            raise MalformedInput("command APDU shorter than its header", field="header")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        n = len(body)
        if n == 0:
            return cls(cla, ins, p1, p2)
        if n == 1:
            return cls(cla, ins, p1, p2, ne=body[0] or _SHORT_NE_MAX)
        if body[0] != 0:
            # Short case 3 or 4: Lc is one non-zero byte.
            nc = body[0]
            if n == 1 + nc:
                return cls(cla, ins, p1, p2, data=body[1:])
            if n == 2 + nc:
                return cls(cla, ins, p1, p2, data=body[1 : 1 + nc], ne=body[-1] or _SHORT_NE_MAX)
            raise MalformedInput("Lc does not match the command length", field="lc")
        # Extended: a zero byte then two length bytes.
        if n == 3:
            le = int.from_bytes(body[1:3], "big")
            return cls(cla, ins, p1, p2, ne=le or _EXTENDED_NE_MAX, extended=True)
        if n < 3:
            raise MalformedInput("truncated extended length", field="lc")
        nc = int.from_bytes(body[1:3], "big")
        if nc == 0:
            raise MalformedInput("extended Lc of zero", field="lc")
        if n == 3 + nc:
            return cls(cla, ins, p1, p2, data=body[3:], extended=True)
        if n == 5 + nc:
            le = int.from_bytes(body[-2:], "big")
            return cls(
                cla,
                ins,
                p1,
                p2,
                data=body[3 : 3 + nc],
                ne=le or _EXTENDED_NE_MAX,
                extended=True,
            )
        raise MalformedInput("extended Lc does not match the command length", field="lc")

    def __repr__(self) -> str:
        # Command data can carry keys or personal data: show lengths only.
        return (
            f"CommandAPDU(cla={self.cla:#04x}, ins={self.ins:#04x}, p1={self.p1:#04x}, "
            f"p2={self.p2:#04x}, nc={len(self.data)}, ne={self.ne})"
        )


# ISO/IEC 7816-4 §5.1.3 and ICAO 9303-11 (BAC, PACE, SM) status words.
_MEANINGS: dict[int, str] = {
    0x9000: "success",
    0x6282: "end of file reached before reading Ne bytes",
    0x6283: "selected file deactivated",
    0x6300: "verification failed",
    0x6581: "memory failure",
    0x6700: "wrong length",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6883: "last command of the chain expected",
    0x6884: "command chaining not supported",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "reference data not usable",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed (no current EF)",
    0x6987: "expected secure messaging data objects missing",
    0x6988: "incorrect secure messaging data objects",
    0x6A80: "incorrect parameters in the command data field",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A86: "incorrect parameters P1-P2",
    0x6A88: "referenced data not found",
    0x6B00: "wrong parameters P1-P2 (offset outside the EF)",
    0x6D00: "instruction not supported",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}


def status_meaning(sw: int) -> str:
    """A short English description of a status word (families included: 61XX, 63CX, 6CXX)."""
    if sw in _MEANINGS:
        return _MEANINGS[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return f"{sw2 or 256} more response bytes available"
    if sw1 == 0x6C:
        return f"wrong Le; exact length is {sw2 or 256}"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"verification failed, {sw2 & 0x0F} tries left"
    if sw1 == 0x62:
        return "warning: state of non-volatile memory unchanged"
    if sw1 == 0x63:
        return "warning: state of non-volatile memory changed"
    if sw1 == 0x64:
        return "execution error: memory unchanged"
    if sw1 == 0x65:
        return "execution error: memory changed"
    return "unknown status"


class StatusCode(enum.IntEnum):
    """Named status words (SW1 SW2, ISO/IEC 7816-4 §5.6), for the card and the terminal alike.

    :class:`StatusWord` is any received status with its meaning; these are the
    values that have a name, so neither side writes them as literals.
    """

    OK = 0x9000
    END_OF_FILE = 0x6282  # fewer bytes than Le before the end of the file
    AUTHENTICATION_FAILED = 0x6300  # BAC EXTERNAL AUTHENTICATE, PACE token, CA
    WRONG_LENGTH = 0x6700
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTHENTICATION_METHOD_BLOCKED = 0x6983
    CONDITIONS_NOT_SATISFIED = 0x6985  # command out of sequence
    SM_DATA_OBJECTS_MISSING = 0x6987
    SM_DATA_OBJECTS_INCORRECT = 0x6988  # bad MAC or malformed protected command
    INCORRECT_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    INCORRECT_P1_P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    WRONG_PARAMETERS = 0x6B00  # offset beyond the end of the file
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00

    def encode(self) -> bytes:
        """The two status bytes."""
        return int(self).to_bytes(2, "big")


def retries_left(remaining: int) -> bytes:
    """``63CX``: verification failed, ``X`` tries remain (ISO/IEC 7816-4 §5.6, TR-03110-3 §B.11).

    The family :attr:`StatusWord.remaining_tries` reads back; ``X`` is clamped to 0..15.
    """
    return bytes([0x63, 0xC0 | min(max(remaining, 0), 15)])


@attrs.frozen
class StatusWord:
    """SW1 SW2 as one 16-bit value, with its meaning."""

    value: int = attrs.field(validator=_status_word)

    @property
    def sw1(self) -> int:
        """The first status byte."""
        return self.value >> 8

    @property
    def sw2(self) -> int:
        """The second status byte."""
        return self.value & 0xFF

    @property
    def is_success(self) -> bool:
        """Whether the status is 9000."""
        return self.value == 0x9000

    @property
    def is_warning(self) -> bool:
        """Whether SW1 is 62 or 63 (processing completed with a warning)."""
        return self.sw1 in (0x62, 0x63)

    @property
    def remaining_tries(self) -> int | None:
        """The retry counter of a ``63CX`` status, else ``None``."""
        if self.sw1 == 0x63 and self.sw2 & 0xF0 == 0xC0:
            return self.sw2 & 0x0F
        return None

    @property
    def meaning(self) -> str:
        """A short English description."""
        return status_meaning(self.value)

    @property
    def code(self) -> StatusCode | None:
        """The named status, when this value has a name."""
        try:
            return StatusCode(self.value)
        except ValueError:
            return None

    def __str__(self) -> str:
        return f"{self.value:04X} ({self.meaning})"

    def __repr__(self) -> str:
        return f"StatusWord({self.value:#06x}: {self.meaning})"


@attrs.frozen
class ResponseAPDU:
    """A response APDU: data then SW1 SW2.

    Attributes:
        data: the response data (possibly empty).
        sw: the status word as one integer (``0x9000``).
    """

    data: bytes = attrs.field(validator=attrs.validators.instance_of(bytes), repr=False)
    sw: int = attrs.field(validator=_status_word)

    @property
    def status(self) -> StatusWord:
        """The status word with its meaning."""
        return StatusWord(self.sw)

    @property
    def sw1(self) -> int:
        """The first status byte."""
        return self.status.sw1

    @property
    def sw2(self) -> int:
        """The second status byte."""
        return self.status.sw2

    @property
    def ok(self) -> bool:
        """Whether the status is 9000."""
        return self.status.is_success

    def to_bytes(self) -> bytes:
        """``data || SW1 SW2``."""
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseAPDU:
        """Split response bytes into data and status word.

        Raises:
            MalformedInput: fewer than the two status bytes.
        """
        if type(raw) is not bytes:
            raise TypeError("raw must be bytes")
        if len(raw) < 2:
            raise MalformedInput("response APDU without status word", field="sw")
        return cls(raw[:-2], int.from_bytes(raw[-2:], "big"))

    def raise_for_status(self, what: str = "command") -> None:
        """Raise unless the status is 9000.

        Raises:
            RemoteProtocolError: carrying ``status_word``.
        """
        if not self.ok:
            raise RemoteProtocolError(f"{what} failed: {self.status}", status_word=self.sw)

    def __repr__(self) -> str:
        return f"ResponseAPDU(length={len(self.data)}, sw={self.sw:#06x})"


#: The largest offset an even-INS READ BINARY can carry in P1-P2 (ISO 7816-4 §11.2.3).
MAX_EVEN_OFFSET = 0x7FFF


def read_binary_at(offset: int, size: int) -> CommandAPDU:
    """READ BINARY of ``size`` bytes at ``offset`` in the selected file.

    Up to :data:`MAX_EVEN_OFFSET` the offset travels in P1-P2 (INS B0). Beyond it
    the odd INS B1 carries the offset in DO'54' and the chip answers in DO'53',
    whose header is four bytes more to expect (ISO 7816-4 §11.2.3).
    """
    if offset <= MAX_EVEN_OFFSET:
        return CommandAPDU(0x00, 0xB0, offset >> 8, offset & 0xFF, ne=size, extended=size > 256)
    length = (offset.bit_length() + 7) // 8
    return CommandAPDU(
        0x00,
        0xB1,
        0x00,
        0x00,
        data=bytes([0x54, length]) + offset.to_bytes(length, "big"),
        ne=size + 4,
        extended=size > 250,
    )

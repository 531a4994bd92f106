"""SMS length awareness: GSM-7 or UCS-2, and how many segments a text costs.

An SMS carries 140 octets of user data (3GPP TS 23.040 §9.2.3.24). Text that
fits the GSM 7-bit default alphabet (3GPP TS 23.038 §6.2.1) packs 160
characters in one message; characters of its extension table (``^{}[]~|\\€``
and form feed) take two septets each. Anything else (Arabic, most emoji,
``ç``) forces UCS-2: 70 UTF-16 code units. A longer text is split into
concatenated segments, each losing 6 octets to the user-data header: 153
septets or 67 UTF-16 units per segment. Every segment is billed, so the
templates aim for one segment in French and English and at most two in
Arabic.

Splitting never cuts an escape sequence or a surrogate pair in half.
"""

from __future__ import annotations

import enum

import attrs

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "SmsEncoding",
    "SmsLength",
    "encode_segments",
    "sms_length",
]

# 3GPP TS 23.038 §6.2.1, the default alphabet in code order (0x1B is the escape).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# 3GPP TS 23.038 §6.2.1.1, the default extension table: character -> code after 0x1B.
GSM7_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_BASIC_INDEX = {char: code for code, char in enumerate(GSM7_BASIC) if code != 0x1B}

_SINGLE = {"gsm7": 160, "ucs2": 70}
_PART = {"gsm7": 153, "ucs2": 67}


class SmsEncoding(str, enum.Enum):
    """The data coding of an SMS."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"

    @property
    def data_coding(self) -> int:
        """The SMPP ``data_coding`` value (SMPP 3.4 §5.2.19): 0 default, 8 UCS-2."""
        return 0 if self is SmsEncoding.GSM7 else 8


@attrs.frozen
class SmsLength:
    """How long a text is as an SMS.

    Attributes:
        encoding: GSM-7 if every character fits, else UCS-2.
        units: septets (GSM-7) or UTF-16 code units (UCS-2).
        segments: messages billed.
        per_segment: the limit that applied (160/153 or 70/67).
    """

    encoding: SmsEncoding
    units: int
    segments: int
    per_segment: int


def _gsm7_units(char: str) -> int | None:
    if char in _BASIC_INDEX:
        return 1
    if char in GSM7_EXTENSION:
        return 2
    return None


def _units(text: str) -> tuple[SmsEncoding, list[bytes]]:
    """Each character's encoded bytes (unpacked septets or UTF-16-BE)."""
    gsm: list[bytes] = []
    for char in text:
        if char in _BASIC_INDEX:
            gsm.append(bytes([_BASIC_INDEX[char]]))
        elif char in GSM7_EXTENSION:
            gsm.append(bytes([0x1B, GSM7_EXTENSION[char]]))
        else:
            return SmsEncoding.UCS2, [char.encode("utf-16-be") for char in text]
    return SmsEncoding.GSM7, gsm


def _unit_count(encoding: SmsEncoding, chunk: bytes) -> int:
    return len(chunk) if encoding is SmsEncoding.GSM7 else len(chunk) // 2


def encode_segments(text: str) -> tuple[SmsEncoding, list[bytes]]:
    """Encode ``text`` and split it into segment payloads (without the UDH).

    GSM-7 payloads are unpacked septets, one per octet, as SMPP's default
    data coding expects; UCS-2 payloads are UTF-16-BE.
    """
    encoding, chars = _units(text)
    total = sum(_unit_count(encoding, c) for c in chars)
    if total <= _SINGLE[encoding.value]:
        return encoding, [b"".join(chars)]
    limit = _PART[encoding.value]
    parts: list[bytes] = []
    current: list[bytes] = []
    used = 0
    for chunk in chars:
        size = _unit_count(encoding, chunk)
        if used + size > limit:
            parts.append(b"".join(current))
            current, used = [], 0
        current.append(chunk)
        used += size
    if current:
        parts.append(b"".join(current))
    return encoding, parts


def sms_length(text: str) -> SmsLength:
    """The encoding, length and segment count of ``text`` as an SMS.

    >>> sms_length("Votre code : 123456").segments
    1
    >>> sms_length("a" * 161).segments
    2
    """
    septets = 0
    for char in text:
        if char in _BASIC_INDEX:
            septets += 1
        elif char in GSM7_EXTENSION:
            septets += 2
        else:
            septets = -1
            break
    if 0 <= septets <= _SINGLE["gsm7"]:
        return SmsLength(encoding=SmsEncoding.GSM7, units=septets, segments=1, per_segment=160)
    if septets < 0:
        units = len(text.encode("utf-16-be")) // 2
        if units <= _SINGLE["ucs2"]:
            return SmsLength(encoding=SmsEncoding.UCS2, units=units, segments=1, per_segment=70)
    # Several segments: count them by splitting, as the sender will.
    encoding, parts = encode_segments(text)
    units = sum(_unit_count(encoding, p) for p in parts)
    return SmsLength(
        encoding=encoding, units=units, segments=len(parts), per_segment=_PART[encoding.value]
    )

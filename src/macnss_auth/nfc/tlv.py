"""BER-TLV as ISO/IEC 7816-4 uses it: the data objects of every eID structure.

Theory of operation: a data object is a tag (1 to 4 bytes; the first byte's low
five bits all set mean "more tag bytes follow", and every following byte with
its top bit set means "and more"), a definite length (one byte below 0x80, or
0x81..0x84 followed by 1 to 4 length bytes), then exactly that many value
bytes. Indefinite lengths (0x80) are refused: ICAO 9303 never uses them.

Every parser here is bounded: it reads only inside the buffer it was given,
recursion is limited to :data:`MAX_DEPTH` levels, and anything it cannot read
raises :class:`~macnss_auth.errors.MalformedInput` and nothing else.

Sources: ISO/IEC 7816-4 §5.2 (BER-TLV data objects); ICAO 9303-10 §4 (LDS
encodes its data groups this way).
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from macnss_auth.errors import MalformedInput

__all__ = [
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_LENGTH_BYTES",
    "MAX_TAG_BYTES",
    "Tlv",
    "encode_length",
    "encode_tlv",
    "iter_nested",
    "parse_all",
    "parse_one",
    "read_all",
    "read_exact",
]

#: Longest tag accepted, in bytes (ISO/IEC 7816-4 uses at most 3; one more for leniency).
MAX_TAG_BYTES = 4
#: Longest length field after the 0x8N prefix, in bytes (lengths up to 2**32 - 1).
MAX_LENGTH_BYTES = 4
#: Deepest nesting any recursive helper here follows.
MAX_DEPTH = 16
#: Most data objects :func:`read_all` accepts in one buffer.
MAX_ITEMS = 4096


def _tag_bytes(tag: int) -> bytes:
    """The encoding of ``tag``, checked to be a well-formed BER tag."""
    if type(tag) is not int:
        raise TypeError("tag must be an int")
    if tag < 0 or tag >= 1 << (8 * MAX_TAG_BYTES):
        raise MalformedInput(f"tag {tag:#x} out of range", field="tag")
    size = max(1, (tag.bit_length() + 7) // 8)
    raw = tag.to_bytes(size, "big")
    if size == 1:
        if raw[0] & 0x1F == 0x1F:
            raise MalformedInput(f"tag {tag:#x} announces more tag bytes", field="tag")
        return raw
    if raw[0] & 0x1F != 0x1F:
        raise MalformedInput(f"tag {tag:#x}: multi-byte tag without 0x1F marker", field="tag")
    if any(b & 0x80 == 0 for b in raw[1:-1]) or raw[-1] & 0x80:
        raise MalformedInput(f"tag {tag:#x}: bad continuation bits", field="tag")
    return raw


@attrs.frozen
class Tlv:
    """One BER-TLV data object.

    Attributes:
        tag: the tag as an unsigned big-endian integer of its bytes (``0x5F1F``).
        value: the value bytes (for a constructed object, the encoded children).
    """

    tag: int = attrs.field(validator=attrs.validators.instance_of(int))
    value: bytes = attrs.field(validator=attrs.validators.instance_of(bytes), repr=False)

    def __attrs_post_init__(self) -> None:
        _tag_bytes(self.tag)

    @property
    def constructed(self) -> bool:
        """Whether the tag's first byte has the "constructed" bit (0x20) set."""
        first = _tag_bytes(self.tag)[0]
        return bool(first & 0x20)

    def to_bytes(self) -> bytes:
        """The encoded data object (tag, minimal length, value)."""
        return encode_tlv(self.tag, self.value)

    def children(self) -> list[Tlv]:
        """The data objects inside a constructed object.

        Raises:
            MalformedInput: the object is primitive or its value is not a TLV sequence.
        """
        if not self.constructed:
            raise MalformedInput(f"tag {self.tag:#x} is primitive", field="tag")
        return parse_all(self.value)

    def find(self, tag: int) -> Tlv | None:
        """The first direct child with ``tag``, or ``None``.

        Raises:
            MalformedInput: as :meth:`children`.
        """
        for child in self.children():
            if child.tag == tag:
                return child
        return None

    def __repr__(self) -> str:
        # Values may be keys or personal data; show the tag and the length only.
        return f"Tlv(tag={self.tag:#x}, length={len(self.value)})"


def encode_length(n: int) -> bytes:
    """BER definite length: one byte below 0x80, else 0x81..0x84 and the minimal big-endian bytes.

    Raises:
        MalformedInput: ``n`` is negative or needs more than four bytes.
    """
    if type(n) is not int:
        raise TypeError("length must be an int")
    if n < 0 or n >= 1 << (8 * MAX_LENGTH_BYTES):
        raise MalformedInput(f"length {n} cannot be encoded", field="length")
    if n < 0x80:
        return bytes([n])
    size = (n.bit_length() + 7) // 8
    return bytes([0x80 | size]) + n.to_bytes(size, "big")


def encode_tlv(tag: int, value: bytes) -> bytes:
    """Encode one data object.

    Raises:
        MalformedInput: the tag is not a well-formed BER tag, or the value is too long.
    """
    if not isinstance(value, bytes):
        raise TypeError("value must be bytes")
    return _tag_bytes(tag) + encode_length(len(value)) + value


def parse_one(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """Parse the data object starting at ``offset``.

    Returns:
        The object and the offset just past it.

    Raises:
        MalformedInput: truncated tag, length or value; indefinite or over-long length.
    """
    if not isinstance(data, bytes):
        raise TypeError("data must be bytes")
    end = len(data)
    if type(offset) is not int or offset < 0 or offset >= end:
        raise MalformedInput("no data object at this offset", field="tag")
    pos = offset
    first = data[pos]
    pos += 1
    tag = first
    if first & 0x1F == 0x1F:
        while True:
            if pos >= end:
                raise MalformedInput("truncated tag", field="tag")
            if pos - offset >= MAX_TAG_BYTES:
                raise MalformedInput("tag too long", field="tag")
            byte = data[pos]
            pos += 1
            tag = (tag << 8) | byte
            if not byte & 0x80:
                break
    if pos >= end:
        raise MalformedInput("missing length", field="length")
    length = data[pos]
    pos += 1
    if length == 0x80:
        raise MalformedInput("indefinite length is not allowed", field="length")
    if length > 0x80:
        count = length & 0x7F
        if count > MAX_LENGTH_BYTES:
            raise MalformedInput("length field too long", field="length")
        if pos + count > end:
            raise MalformedInput("truncated length", field="length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if length > end - pos:
        raise MalformedInput("value runs past the end of the data", field="value")
    return Tlv(tag, data[pos : pos + length]), pos + length


def parse_all(data: bytes) -> list[Tlv]:
    """Parse a concatenation of data objects that fills ``data`` exactly.

    Raises:
        MalformedInput: any object is malformed (nothing partial is returned).
    """
    if not isinstance(data, bytes):
        raise TypeError("data must be bytes")
    out: list[Tlv] = []
    offset = 0
    while offset < len(data):
        tlv, offset = parse_one(data, offset)
        out.append(tlv)
    return out


def iter_nested(data: bytes, max_depth: int = MAX_DEPTH) -> Iterator[tuple[int, Tlv]]:
    """Walk every object in ``data`` depth first, descending into constructed ones.

    Yields:
        ``(depth, tlv)`` pairs, depth 0 for the top level.

    Raises:
        MalformedInput: a malformed object, or nesting deeper than ``max_depth``.
    """
    stack: list[tuple[int, list[Tlv]]] = [(0, parse_all(data)[::-1])]
    while stack:
        depth, pending = stack[-1]
        if not pending:
            stack.pop()
            continue
        tlv = pending.pop()
        yield depth, tlv
        if tlv.constructed:
            if depth + 1 > max_depth:
                raise MalformedInput("TLV nesting too deep", field="tag")
            stack.append((depth + 1, parse_all(tlv.value)[::-1]))


def read_all(
    data: bytes,
    *,
    field: str | None = None,
    max_items: int = MAX_ITEMS,
    error: type[MalformedInput] = MalformedInput,
) -> list[Tlv]:
    """Read consecutive data objects filling ``data`` exactly, at most ``max_items``.

    Args:
        data: the buffer (one file, or a constructed object's value).
        field: the structure being parsed, named in the error (``"DG1"``).
        max_items: the most objects accepted (a bound on work per buffer).
        error: the :class:`~macnss_auth.errors.MalformedInput` subclass to raise
            (the LDS parsers raise :class:`~macnss_auth.nfc.lds.LdsFormatError`).

    Raises:
        MalformedInput: (as ``error``) any object is malformed, or there are too many.
    """
    try:
        items = parse_all(bytes(data))
    except MalformedInput as exc:
        raise error(f"{field or 'TLV'}: {exc}", field=field) from exc
    if len(items) > max_items:
        raise error("too many data objects", field=field)
    return items


def read_exact(
    data: bytes,
    tag: int,
    *,
    field: str | None = None,
    error: type[MalformedInput] = MalformedInput,
) -> Tlv:
    """Read one data object with ``tag`` that spans all of ``data``.

    Raises:
        MalformedInput: (as ``error``) malformed, another tag, or bytes after it.
    """
    try:
        item, end = parse_one(bytes(data))
    except MalformedInput as exc:
        raise error(f"{field or 'TLV'}: {exc}", field=field) from exc
    if item.tag != tag:
        raise error(f"expected tag {tag:X}, found {item.tag:X}", field=field)
    if end != len(data):
        raise error(f"{len(data) - end} trailing bytes after {tag:X}", field=field)
    return item

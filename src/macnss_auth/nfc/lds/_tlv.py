"""LDS-flavoured helpers over the shared BER-TLV codec (:mod:`macnss_auth.nfc.tlv`).

Private to :mod:`macnss_auth.nfc.lds`: errors come out as :class:`LdsFormatError`
naming the file being parsed; :func:`read_exact` insists that one object fills
a file; :func:`read_all` caps the number of objects. Parsers walk the tree one
level at a time (recursive walks count their depth against :data:`MAX_DEPTH`).
"""

from __future__ import annotations

from macnss_auth.errors import MalformedInput
from macnss_auth.nfc import tlv
from macnss_auth.nfc.tlv import MAX_DEPTH, Tlv

__all__ = ["MAX_DEPTH", "LdsFormatError", "Tlv", "encode_tlv", "read_all", "read_exact"]


class LdsFormatError(MalformedInput):
    """An LDS file (EF.COM, a data group, EF.SOD) is malformed."""


def read_all(data: bytes, *, field: str | None = None, max_items: int = 4096) -> list[Tlv]:
    """Read consecutive data objects filling ``data`` exactly.

    Raises:
        LdsFormatError: any object is malformed, or there are more than ``max_items``.
    """
    try:
        items = tlv.parse_all(bytes(data))
    except MalformedInput as exc:
        raise LdsFormatError(f"{field or 'LDS'}: {exc}", field=field) from exc
    if len(items) > max_items:
        raise LdsFormatError("too many data objects", field=field)
    return items


def read_exact(data: bytes, tag: int, *, field: str | None = None) -> Tlv:
    """Read one data object with ``tag`` that spans all of ``data``.

    Raises:
        LdsFormatError: malformed, another tag, or bytes after it.
    """
    try:
        item, end = tlv.parse_one(bytes(data))
    except MalformedInput as exc:
        raise LdsFormatError(f"{field or 'LDS'}: {exc}", field=field) from exc
    if item.tag != tag:
        raise LdsFormatError(f"expected tag {tag:X}, found {item.tag:X}", field=field)
    if end != len(data):
        raise LdsFormatError(f"{len(data) - end} trailing bytes after {tag:X}", field=field)
    return item


def encode_tlv(tag: int, value: bytes) -> bytes:
    """Encode one data object (``tag`` as raw tag bytes in an integer)."""
    return tlv.encode_tlv(tag, bytes(value))

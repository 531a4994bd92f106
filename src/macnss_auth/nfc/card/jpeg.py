"""A tiny baseline JPEG encoder for the test face (DG2) and signature (DG7) images.

No imaging library: the picture is drawn as a grid of 8x8 blocks of one grey
level each, so every block is described by its DC coefficient alone and all
AC coefficients are zero (ITU-T T.81 §F.1.2: DC difference coding, then
end-of-block). The file is a valid baseline (SOF0) greyscale JFIF that any
decoder shows as a mosaic portrait -- enough for a test document, and the
bytes are fully determined by the drawing.

Huffman tables are our own (T.81 allows any, §K.2): DC categories 0..11 get
4-bit codes ``0000``..``1011`` and the AC table has the single symbol EOB with
the 1-bit code ``0``. The quantization table is all ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

__all__ = ["encode_greyscale_mosaic", "face_jpeg", "signature_jpeg"]

_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


class _BitWriter:
    def __init__(self) -> None:
        self._out = bytearray()
        self._accumulator = 0
        self._count = 0

    def write(self, value: int, length: int) -> None:
        for shift in range(length - 1, -1, -1):
            self._accumulator = (self._accumulator << 1) | ((value >> shift) & 1)
            self._count += 1
            if self._count == 8:
                self._emit(self._accumulator)
                self._accumulator = self._count = 0

    def _emit(self, byte: int) -> None:
        self._out.append(byte)
        if byte == 0xFF:  # byte stuffing (T.81 §F.1.2.3)
            self._out.append(0x00)

    def flush(self) -> bytes:
        if self._count:
            # Pad the last byte with 1-bits (T.81 §F.1.2.3).
            pad = 8 - self._count
            self._emit((self._accumulator << pad) | ((1 << pad) - 1))
            self._accumulator = self._count = 0
        return bytes(self._out)


def _category(value: int) -> int:
    return abs(value).bit_length()


def encode_greyscale_mosaic(blocks: Sequence[Sequence[int]]) -> bytes:
    """A baseline JPEG whose 8x8 block ``(row, column)`` has grey level ``blocks[row][column]``.

    Levels are 0 (black) to 255 (white).

    Raises:
        ValueError: an empty or ragged grid, or a level outside 0..255.
    """
    rows = len(blocks)
    columns = len(blocks[0]) if rows else 0
    if not rows or not columns or any(len(row) != columns for row in blocks):
        raise ValueError("the block grid must be a non-empty rectangle")
    if any(not 0 <= level <= 255 for row in blocks for level in row):
        raise ValueError("grey levels are 0..255")
    height, width = rows * 8, columns * 8
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\x00" + b"\x01" * 64  # table 0, 8-bit, all ones
    sof0 = (
        b"\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x01" + b"\x01\x11\x00"
    )
    dc_counts = bytes([0, 0, 0, 12] + [0] * 12)  # twelve 4-bit codes
    dht_dc = b"\x00" + dc_counts + bytes(range(12))
    ac_counts = bytes([1] + [0] * 15)  # one 1-bit code
    dht_ac = b"\x10" + ac_counts + b"\x00"
    sos = b"\x01\x01\x00\x00\x3f\x00"
    bits = _BitWriter()
    previous = 0
    for row in blocks:
        for level in row:
            # Level shift by 128, then the DCT of a flat block is 8 * (level - 128).
            dc = 8 * (level - 128)
            diff = dc - previous
            previous = dc
            size = _category(diff)
            bits.write(size, 4)
            if size:
                bits.write(diff if diff > 0 else diff + (1 << size) - 1, size)
            bits.write(0, 1)  # EOB
    return (
        _SOI
        + _segment(0xE0, app0)
        + _segment(0xDB, dqt)
        + _segment(0xC0, sof0)
        + _segment(0xC4, dht_dc)
        + _segment(0xC4, dht_ac)
        + _segment(0xDA, sos)
        + bits.flush()
        + _EOI
    )


def _draw(columns: int, rows: int, shade: Callable[[float, float], int]) -> list[list[int]]:
    return [
        [shade((c + 0.5) / columns, (r + 0.5) / rows) for c in range(columns)] for r in range(rows)
    ]


def face_jpeg(*, columns: int = 24, rows: int = 30, tone: int = 0) -> bytes:
    """A mosaic portrait (ISO/IEC 19794-5 proportions, 3:4), ``tone`` shifts the skin grey."""

    def shade(x: float, y: float) -> int:
        background = 225
        skin = max(60, min(200, 170 + tone))
        hair = 45
        head = ((x - 0.5) / 0.3) ** 2 + ((y - 0.45) / 0.36) ** 2
        if y > 0.86 and abs(x - 0.5) < 0.42:
            return 90  # shoulders
        if head > 1.0:
            return background
        if y < 0.24 or (head > 0.78 and y < 0.5):
            return hair
        if abs(y - 0.42) < 0.035 and 0.08 < abs(x - 0.5) < 0.17:
            return 30  # eyes
        if abs(x - 0.5) < 0.03 and 0.45 < y < 0.58:
            return skin - 35  # nose
        if abs(y - 0.66) < 0.03 and abs(x - 0.5) < 0.1:
            return 110  # mouth
        return skin

    return encode_greyscale_mosaic(_draw(columns, rows, shade))


def signature_jpeg(*, columns: int = 32, rows: int = 8) -> bytes:
    """A mosaic of a handwritten-looking stroke on white (DG7)."""

    def shade(x: float, y: float) -> int:
        stroke = 0.5 + 0.3 * math.sin(x * 11.0) * (1.0 - x * 0.5)
        return 20 if abs(y - stroke) < 0.12 else 250

    return encode_greyscale_mosaic(_draw(columns, rows, shade))

"""Biometric data groups: DG2 (face), DG3 (fingerprints), DG7 (signature image).

DG2 and DG3 follow the CBEFF layout of ICAO 9303-10 §4.7.2: a Biometric
Information Group Template (``7F61``) holding a count and Biometric
Information Templates (``7F60``), each with a header template (``A1``) and a
biometric data block: ``5F2E`` with ISO/IEC 19794-5:2005 (face, binary) or
19794-4 (finger), or ``7F2E`` with ISO/IEC 39794-5 (face, DER-encoded).
Faces come out as the embedded image bytes, unchanged, with their type and
dimensions; fingerprints only as headers (their images are EAC-protected).
"""

from __future__ import annotations

import enum

import attrs

from macnss_auth.nfc.lds.errors import LdsFormatError
from macnss_auth.nfc.tlv import MAX_DEPTH, Tlv, encode_tlv, read_all, read_exact

__all__ = [
    "Dg2",
    "Dg3",
    "Dg7",
    "FaceImage",
    "FingerprintHeader",
    "ImageType",
    "encode_dg2",
    "encode_dg7",
    "image_dimensions",
    "parse_dg2",
    "parse_dg3",
    "parse_dg7",
    "sniff_image_type",
]


class ImageType(str, enum.Enum):
    """Image encodings found in eMRTDs."""

    JPEG = "image/jpeg"
    JPEG2000 = "image/jp2"
    JPEG2000_CODESTREAM = "image/j2k"
    WSQ = "image/x-wsq"
    UNKNOWN = "application/octet-stream"


def sniff_image_type(image: bytes) -> ImageType:
    """The image type from its magic bytes."""
    if image.startswith(b"\xff\xd8\xff"):
        return ImageType.JPEG
    if image.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        return ImageType.JPEG2000
    if image.startswith(b"\xff\x4f\xff\x51"):
        return ImageType.JPEG2000_CODESTREAM
    if image.startswith(b"\xff\xa0"):
        return ImageType.WSQ
    return ImageType.UNKNOWN


def image_dimensions(image: bytes) -> tuple[int, int] | None:
    """(width, height) read from a JPEG SOF marker, a JP2 ``ihdr`` box or a J2K SIZ segment."""
    kind = sniff_image_type(image)
    if kind is ImageType.JPEG:
        pos = 2
        while pos + 4 <= len(image):
            if image[pos] != 0xFF:
                return None
            marker = image[pos + 1]
            length = int.from_bytes(image[pos + 2 : pos + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                if pos + 9 > len(image):
                    return None
                height = int.from_bytes(image[pos + 5 : pos + 7], "big")
                width = int.from_bytes(image[pos + 7 : pos + 9], "big")
                return width, height
            if length < 2:
                return None
            pos += 2 + length
        return None
    if kind is ImageType.JPEG2000:
        index = image.find(b"ihdr", 0, 256)
        if index < 0 or index + 12 > len(image):
            return None
        height = int.from_bytes(image[index + 4 : index + 8], "big")
        width = int.from_bytes(image[index + 8 : index + 12], "big")
        return width, height
    if kind is ImageType.JPEG2000_CODESTREAM and len(image) >= 22:
        # SIZ: Xsiz, Ysiz, XOsiz, YOsiz (ISO/IEC 15444-1 §A.5.1).
        xsiz, ysiz = (int.from_bytes(image[i : i + 4], "big") for i in (8, 12))
        xo, yo = (int.from_bytes(image[i : i + 4], "big") for i in (16, 20))
        return xsiz - xo, ysiz - yo
    return None


@attrs.frozen
class FaceImage:
    """One facial image.

    Attributes:
        image: the embedded image file, byte for byte.
        image_type: from the image's own magic bytes (the header's claim as fallback).
        width / height: read from the image itself (the header's claim as fallback).
        declared_width / declared_height: what the biometric header claims (0 if absent).
        encoding: ``"ISO/IEC 19794-5"`` or ``"ISO/IEC 39794-5"``.
        gender / eye_colour / hair_colour / expression: 19794-5 codes (0 = unspecified).
    """

    image: bytes = attrs.field(repr=lambda v: f"<{len(v)} bytes>")
    image_type: ImageType
    width: int
    height: int
    encoding: str
    declared_width: int = 0
    declared_height: int = 0
    gender: int = 0
    eye_colour: int = 0
    hair_colour: int = 0
    expression: int = 0


@attrs.frozen
class Dg2:
    """DG2: the encoded face(s)."""

    faces: tuple[FaceImage, ...]


@attrs.frozen
class FingerprintHeader:
    """ISO/IEC 19794-4:2005 finger image record header (the image itself is not decoded)."""

    position: int
    view_count: int
    view_number: int
    quality: int
    impression_type: int
    width: int
    height: int
    image_length: int
    compression: int
    horizontal_resolution: int
    vertical_resolution: int


@attrs.frozen
class Dg3:
    """DG3: fingerprint record headers."""

    fingers: tuple[FingerprintHeader, ...]


@attrs.frozen
class Dg7:
    """DG7: displayed signature or usual mark images."""

    images: tuple[bytes, ...] = attrs.field(repr=lambda v: f"<{len(v)} images>")


def _biometric_blocks(data: bytes, tag: int, name: str) -> list[tuple[Tlv | None, Tlv]]:
    """(header template, data block) pairs of a CBEFF data group."""
    outer = read_exact(data, tag, field=name, error=LdsFormatError)
    group = read_exact(outer.value, 0x7F61, field=name, error=LdsFormatError)
    items = read_all(group.value, field=name, error=LdsFormatError)
    if not items or items[0].tag != 0x02 or len(items[0].value) != 1:
        raise LdsFormatError("biometric group lacks its instance count", field=name)
    count = items[0].value[0]
    templates = [i for i in items[1:] if i.tag == 0x7F60]
    if count != len(templates) or count == 0:
        raise LdsFormatError("biometric instance count does not match", field=name)
    blocks = []
    for template in templates:
        header = None
        block = None
        for item in read_all(template.value, field=name, error=LdsFormatError):
            if item.tag == 0xA1:
                header = item
            elif item.tag in (0x5F2E, 0x7F2E):
                block = item
        if block is None:
            raise LdsFormatError("biometric template lacks a data block", field=name)
        blocks.append((header, block))
    return blocks


def _u(data: bytes, offset: int, size: int, name: str) -> int:
    if offset + size > len(data):
        raise LdsFormatError("biometric header truncated", field=name)
    return int.from_bytes(data[offset : offset + size], "big")


def _parse_19794_5(block: bytes) -> list[FaceImage]:
    name = "DG2"
    if not block.startswith(b"FAC\x00") or len(block) < 14:
        raise LdsFormatError("not an ISO/IEC 19794-5 facial record", field=name)
    total = _u(block, 8, 4, name)
    count = _u(block, 12, 2, name)
    if total > len(block) or total < 14:
        raise LdsFormatError("facial record length is wrong", field=name)
    faces = []
    pos = 14
    for _ in range(count):
        length = _u(block, pos, 4, name)
        points = _u(block, pos + 4, 2, name)
        head = 20 + 8 * points + 12
        if length < head or pos + length > total:
            raise LdsFormatError("facial record block length is wrong", field=name)
        info = pos + 20 + 8 * points
        declared = _u(block, info + 1, 1, name)
        image = block[info + 12 : pos + length]
        kind = sniff_image_type(image)
        if kind is ImageType.UNKNOWN:
            kind = {0: ImageType.JPEG, 1: ImageType.JPEG2000}.get(declared, ImageType.UNKNOWN)
        declared_width, declared_height = _u(block, info + 2, 2, name), _u(block, info + 4, 2, name)
        width, height = image_dimensions(image) or (declared_width, declared_height)
        faces.append(
            FaceImage(
                image=image,
                image_type=kind,
                width=width,
                height=height,
                encoding="ISO/IEC 19794-5",
                declared_width=declared_width,
                declared_height=declared_height,
                gender=block[pos + 6],
                eye_colour=block[pos + 7],
                hair_colour=block[pos + 8],
                expression=_u(block, pos + 12, 2, name),
            )
        )
        pos += length
    if not faces:
        raise LdsFormatError("facial record holds no face", field=name)
    return faces


def _der_int(value: bytes, name: str) -> int:
    if not 1 <= len(value) <= 4:
        raise LdsFormatError("integer of unexpected size", field=name)
    return int.from_bytes(value, "big", signed=True)


def _parse_39794_5(block: bytes) -> list[FaceImage]:
    """Find every 2D representation (``[0]`` image + ``[1]`` image information)."""
    name = "DG2"
    faces: list[FaceImage] = []
    budget = [4096]

    def walk(value: bytes, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise LdsFormatError("ISO/IEC 39794-5 nesting too deep", field=name)
        children = read_all(value, field=name, error=LdsFormatError)
        budget[0] -= len(children)
        if budget[0] < 0:
            raise LdsFormatError("ISO/IEC 39794-5 block too complex", field=name)
        tags = {c.tag: c for c in children}
        image = tags.get(0x80)
        info = tags.get(0xA1)
        if (
            image is not None
            and info is not None
            and sniff_image_type(image.value) is not ImageType.UNKNOWN
        ):
            faces.append(_face_39794(image.value, info, name))
            return
        for child in children:
            if child.constructed:
                walk(child.value, depth + 1)

    walk(block, 0)
    if not faces:
        raise LdsFormatError("no face image in the ISO/IEC 39794-5 block", field=name)
    return faces


def _face_39794(image: bytes, info: Tlv, name: str) -> FaceImage:
    width = height = 0
    declared = None
    for item in read_all(info.value, field=name, error=LdsFormatError):
        if item.tag == 0xA0:
            code = next(
                (
                    c
                    for c in read_all(item.value, field=name, error=LdsFormatError)
                    if c.tag == 0x80
                ),
                None,
            )
            if code is not None:
                declared = _der_int(code.value, name)
        elif item.tag == 0xA7:
            for size in read_all(item.value, field=name, error=LdsFormatError):
                if size.tag == 0x80:
                    width = _der_int(size.value, name)
                elif size.tag == 0x81:
                    height = _der_int(size.value, name)
    kind = sniff_image_type(image)
    if kind is ImageType.UNKNOWN:
        kind = {2: ImageType.JPEG, 3: ImageType.JPEG2000, 4: ImageType.JPEG2000}.get(
            declared or 0, ImageType.UNKNOWN
        )
    actual_width, actual_height = image_dimensions(image) or (width, height)
    return FaceImage(
        image,
        kind,
        actual_width,
        actual_height,
        "ISO/IEC 39794-5",
        declared_width=width,
        declared_height=height,
    )


def parse_dg2(data: bytes) -> Dg2:
    """Parse DG2 in either ISO/IEC 19794-5 or 39794-5 encoding.

    Raises:
        LdsFormatError: malformed.
    """
    faces: list[FaceImage] = []
    for _, block in _biometric_blocks(data, 0x75, "DG2"):
        if block.tag == 0x5F2E and block.value.startswith(b"FAC\x00"):
            faces.extend(_parse_19794_5(block.value))
        else:
            faces.extend(_parse_39794_5(block.value))
    return Dg2(tuple(faces))


def parse_dg3(data: bytes) -> Dg3:
    """Parse the ISO/IEC 19794-4 headers of DG3.

    Raises:
        LdsFormatError: malformed.
    """
    name = "DG3"
    fingers = []
    for _, block in _biometric_blocks(data, 0x63, name):
        raw = block.value
        if not raw.startswith(b"FIR\x00") or len(raw) < 32:
            raise LdsFormatError("not an ISO/IEC 19794-4 finger record", field=name)
        total = _u(raw, 8, 6, name)
        if total > len(raw) or total < 32:
            raise LdsFormatError("finger record length is wrong", field=name)
        count = raw[18]
        h_res, v_res = _u(raw, 24, 2, name), _u(raw, 26, 2, name)
        compression = raw[29]
        pos = 32
        for _ in range(count):
            length = _u(raw, pos, 4, name)
            if length < 14 or pos + length > total:
                raise LdsFormatError("finger image record length is wrong", field=name)
            fingers.append(
                FingerprintHeader(
                    position=raw[pos + 4],
                    view_count=raw[pos + 5],
                    view_number=raw[pos + 6],
                    quality=raw[pos + 7],
                    impression_type=raw[pos + 8],
                    width=_u(raw, pos + 9, 2, name),
                    height=_u(raw, pos + 11, 2, name),
                    image_length=length - 14,
                    compression=compression,
                    horizontal_resolution=h_res,
                    vertical_resolution=v_res,
                )
            )
            pos += length
    return Dg3(tuple(fingers))


def parse_dg7(data: bytes) -> Dg7:
    """Parse DG7 (``67 { 02 count, 5F43 image... }``).

    Raises:
        LdsFormatError: malformed.
    """
    outer = read_exact(data, 0x67, field="DG7", error=LdsFormatError)
    items = read_all(outer.value, field="DG7", error=LdsFormatError)
    if not items or items[0].tag != 0x02 or len(items[0].value) != 1:
        raise LdsFormatError("DG7 lacks its image count", field="DG7")
    images = tuple(i.value for i in items[1:] if i.tag == 0x5F43)
    if len(images) != items[0].value[0]:
        raise LdsFormatError("DG7 image count does not match", field="DG7")
    return Dg7(images)


def encode_dg2(
    image: bytes, *, width: int, height: int, image_type: ImageType | None = None
) -> bytes:
    """Encode DG2 with one face as an ISO/IEC 19794-5:2005 record.

    Raises:
        LdsFormatError: an image type 19794-5 cannot carry.
    """
    kind = image_type or sniff_image_type(image)
    if kind not in (ImageType.JPEG, ImageType.JPEG2000):
        raise LdsFormatError("19794-5 carries JPEG or JPEG 2000 images", field="DG2")
    data_type = 0 if kind is ImageType.JPEG else 1
    record = (
        bytes(20 - 4)  # no feature points, unspecified gender/eyes/hair/mask/expression/pose
        + bytes([1, data_type])  # full frontal
        + width.to_bytes(2, "big")
        + height.to_bytes(2, "big")
        + bytes([1, 2])  # colour space sRGB, source: digital still camera
        + bytes(4)  # device type, quality unspecified
        + image
    )
    face = (len(record) + 4).to_bytes(4, "big") + record
    bdb = b"FAC\x00010\x00" + (14 + len(face)).to_bytes(4, "big") + (1).to_bytes(2, "big") + face
    header = encode_tlv(0x87, b"\x01\x01") + encode_tlv(0x88, b"\x00\x08")
    template = encode_tlv(0x7F60, encode_tlv(0xA1, header) + encode_tlv(0x5F2E, bdb))
    return encode_tlv(0x75, encode_tlv(0x7F61, encode_tlv(0x02, b"\x01") + template))


def encode_dg7(images: list[bytes] | tuple[bytes, ...]) -> bytes:
    """Encode DG7 with the displayed signature image(s)."""
    body = encode_tlv(0x02, bytes([len(images)])) + b"".join(encode_tlv(0x5F43, i) for i in images)
    return encode_tlv(0x67, body)

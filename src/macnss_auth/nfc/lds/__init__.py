"""The Logical Data Structure of eMRTDs (ICAO 9303-10): parsing and encoding.

Every parser takes the bytes of one file exactly as read from the chip and
either returns a frozen value or raises :class:`LdsFormatError` (a
:class:`~macnss_auth.errors.MalformedInput`), or
:class:`~macnss_auth.errors.UnsupportedAlgorithm` for a well-formed structure
that uses an algorithm this library does not support. No other exception
escapes, whatever the input (the tests fuzz every parser). Lengths are checked
against their buffers and nesting is bounded.

Parsing proves nothing: a data group is trustworthy only once
:mod:`macnss_auth.nfc.verify` has matched its hash against a verified EF.SOD.

The encoders build the same structures (the virtual card and the test PKI use them).
"""

from __future__ import annotations

from collections.abc import Callable

from macnss_auth.nfc.lds.biometrics import (
    Dg2,
    Dg3,
    Dg7,
    FaceImage,
    FingerprintHeader,
    ImageType,
    encode_dg2,
    encode_dg7,
    image_dimensions,
    parse_dg2,
    parse_dg3,
    parse_dg7,
    sniff_image_type,
)
from macnss_auth.nfc.lds.dg1 import encode_dg1, parse_dg1
from macnss_auth.nfc.lds.errors import LdsFormatError
from macnss_auth.nfc.lds.files import EfCom, LdsFile, encode_com, parse_com
from macnss_auth.nfc.lds.security import (
    CardSecurity,
    Dg15,
    SecurityInfos,
    encode_dg14,
    encode_dg15,
    parse_card_access,
    parse_card_security,
    parse_dg14,
    parse_dg15,
)
from macnss_auth.nfc.lds.sod import (
    SecurityObject,
    encode_lds_security_object,
    encode_sod,
    parse_sod,
)
from macnss_auth.nfc.lds.text import (
    Dg11,
    Dg12,
    Dg13,
    Dg16,
    PersonToNotify,
    encode_dg11,
    encode_dg12,
    parse_dg11,
    parse_dg12,
    parse_dg13,
    parse_dg16,
)
from macnss_auth.nfc.tlv import read_exact as _read_exact

__all__ = [
    "PARSERS",
    "CardSecurity",
    "Dg2",
    "Dg3",
    "Dg7",
    "Dg11",
    "Dg12",
    "Dg13",
    "Dg15",
    "Dg16",
    "EfCom",
    "FaceImage",
    "FingerprintHeader",
    "ImageType",
    "LdsFile",
    "LdsFormatError",
    "PersonToNotify",
    "SecurityInfos",
    "SecurityObject",
    "encode_com",
    "encode_dg1",
    "encode_dg2",
    "encode_dg7",
    "encode_dg11",
    "encode_dg12",
    "encode_dg14",
    "encode_dg15",
    "encode_lds_security_object",
    "encode_sod",
    "image_dimensions",
    "parse_card_access",
    "parse_card_security",
    "parse_com",
    "parse_data_group",
    "parse_dg1",
    "parse_dg2",
    "parse_dg3",
    "parse_dg7",
    "parse_dg11",
    "parse_dg12",
    "parse_dg13",
    "parse_dg14",
    "parse_dg15",
    "parse_dg16",
    "parse_sod",
    "sniff_image_type",
]

#: The parser of each data group this library decodes (number -> parser).
PARSERS: dict[int, Callable[[bytes], object]] = {
    1: parse_dg1,
    2: parse_dg2,
    3: parse_dg3,
    7: parse_dg7,
    11: parse_dg11,
    12: parse_dg12,
    13: parse_dg13,
    14: parse_dg14,
    15: parse_dg15,
    16: parse_dg16,
}


def parse_data_group(number: int, data: bytes) -> object:
    """Parse data group ``number``; groups without a decoder only get their envelope checked.

    Raises:
        LdsFormatError: malformed, or the outer tag is not the data group's.
    """
    parser = PARSERS.get(number)
    if parser is not None:
        return parser(data)
    return _read_exact(
        data, LdsFile.data_group(number).tag, field=f"DG{number}", error=LdsFormatError
    ).value

"""DG1: the machine readable zone (ICAO 9303-10 §4.7.1).

DG1 is ``61 { 5F1F <MRZ characters> }``: 90 characters (TD1), 72 (TD2) or 88
(TD3). The zone is parsed, check digits included, by :mod:`macnss_auth.nfc.mrz`.
"""

from __future__ import annotations

from macnss_auth.errors import MalformedInput
from macnss_auth.nfc.lds.errors import LdsFormatError
from macnss_auth.nfc.mrz import Mrz, parse_mrz
from macnss_auth.nfc.tlv import encode_tlv, read_exact

__all__ = ["Mrz", "encode_dg1", "parse_dg1"]


def parse_dg1(data: bytes) -> Mrz:
    """Parse DG1.

    Raises:
        LdsFormatError: malformed envelope, or an MRZ that does not parse
            (wrong length, characters, or check digits).
    """
    outer = read_exact(data, 0x61, field="DG1", error=LdsFormatError)
    inner = read_exact(outer.value, 0x5F1F, field="DG1", error=LdsFormatError)
    try:
        return parse_mrz(inner.value.decode("ascii"))
    except UnicodeDecodeError:
        raise LdsFormatError("the MRZ is not ASCII", field="DG1") from None
    except MalformedInput as exc:
        raise LdsFormatError(f"DG1: {exc}", field="DG1") from exc


def encode_dg1(mrz: str) -> bytes:
    """Encode DG1 from the MRZ text (lines joined or separated by newlines).

    Raises:
        MalformedInput: the text is not a valid MRZ (check digits included).
    """
    parse_mrz(mrz)
    text = "".join(mrz.split())
    return encode_tlv(0x61, encode_tlv(0x5F1F, text.encode("ascii")))

"""LDS file identities and EF.COM (ICAO 9303-10 §4.6, §4.7).

Each elementary file of the LDS 1.7 application has a file identifier, a
short file identifier and an outer tag; :class:`LdsFile` names them all.
"""

from __future__ import annotations

import enum

import attrs

from macnss_auth.nfc.lds.errors import LdsFormatError
from macnss_auth.nfc.tlv import encode_tlv, read_all, read_exact

__all__ = ["EfCom", "LdsFile", "encode_com", "parse_com"]


class LdsFile(enum.Enum):
    """The elementary files of the eMRTD application: (number, tag, file id)."""

    COM = (0, 0x60, 0x011E)
    DG1 = (1, 0x61, 0x0101)
    DG2 = (2, 0x75, 0x0102)
    DG3 = (3, 0x63, 0x0103)
    DG4 = (4, 0x76, 0x0104)
    DG5 = (5, 0x65, 0x0105)
    DG6 = (6, 0x66, 0x0106)
    DG7 = (7, 0x67, 0x0107)
    DG8 = (8, 0x68, 0x0108)
    DG9 = (9, 0x69, 0x0109)
    DG10 = (10, 0x6A, 0x010A)
    DG11 = (11, 0x6B, 0x010B)
    DG12 = (12, 0x6C, 0x010C)
    DG13 = (13, 0x6D, 0x010D)
    DG14 = (14, 0x6E, 0x010E)
    DG15 = (15, 0x6F, 0x010F)
    DG16 = (16, 0x70, 0x0110)
    SOD = (29, 0x77, 0x011D)

    @property
    def number(self) -> int:
        """The data group number (0 for EF.COM, 29 for EF.SOD)."""
        return self.value[0]

    @property
    def tag(self) -> int:
        """The outer tag of the file's contents."""
        return self.value[1]

    @property
    def file_id(self) -> int:
        """The two-byte file identifier for SELECT."""
        return self.value[2]

    @property
    def short_file_id(self) -> int:
        """The short file identifier (READ BINARY with SFI)."""
        return {0: 0x1E, 29: 0x1D}.get(self.number, self.number)

    @classmethod
    def data_group(cls, number: int) -> LdsFile:
        """The file of data group ``number`` (1..16).

        Raises:
            LdsFormatError: not a data group number.
        """
        if not 1 <= number <= 16:
            raise LdsFormatError(f"no data group {number}", field="data_group")
        return cls[f"DG{number}"]

    @classmethod
    def from_tag(cls, tag: int) -> LdsFile:
        """The file whose outer tag is ``tag``.

        Raises:
            LdsFormatError: unknown tag.
        """
        for item in cls:
            if item.tag == tag:
                return item
        raise LdsFormatError(f"no LDS file has tag {tag:X}", field="tag")


@attrs.frozen
class EfCom:
    """EF.COM: LDS and Unicode versions and the data groups present (ICAO 9303-10 §4.6.1).

    EF.COM is not covered by the SOD: treat its list as a hint, never as proof.
    """

    lds_version: str
    unicode_version: str
    data_groups: tuple[int, ...]


def parse_com(data: bytes) -> EfCom:
    """Parse EF.COM.

    Raises:
        LdsFormatError: malformed.
    """
    outer = read_exact(data, 0x60, field="EF.COM", error=LdsFormatError)
    lds = uni = None
    tags: bytes | None = None
    for item in read_all(outer.value, field="EF.COM", error=LdsFormatError):
        if item.tag == 0x5F01:
            lds = item.value
        elif item.tag == 0x5F36:
            uni = item.value
        elif item.tag == 0x5C:
            tags = item.value
    if lds is None or uni is None or tags is None:
        raise LdsFormatError("EF.COM lacks a version or the tag list", field="EF.COM")
    if not (lds.isdigit() and uni.isdigit()):
        raise LdsFormatError("EF.COM versions are not digits", field="EF.COM")
    groups = []
    for tag in tags:
        try:
            file = LdsFile.from_tag(tag)
        except LdsFormatError:
            raise LdsFormatError(f"EF.COM lists unknown tag {tag:02X}", field="EF.COM") from None
        if not 1 <= file.number <= 16:
            raise LdsFormatError("EF.COM lists a file that is not a data group", field="EF.COM")
        groups.append(file.number)
    return EfCom(lds.decode("ascii"), uni.decode("ascii"), tuple(groups))


def encode_com(
    data_groups: tuple[int, ...] | list[int],
    *,
    lds_version: str = "0107",
    unicode_version: str = "040000",
) -> bytes:
    """Encode EF.COM listing ``data_groups``."""
    tags = bytes(LdsFile.data_group(n).tag for n in data_groups)
    body = (
        encode_tlv(0x5F01, lds_version.encode("ascii"))
        + encode_tlv(0x5F36, unicode_version.encode("ascii"))
        + encode_tlv(0x5C, tags)
    )
    return encode_tlv(0x60, body)

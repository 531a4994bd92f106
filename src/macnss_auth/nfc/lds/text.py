"""Text data groups: DG11, DG12, DG13 and DG16 (ICAO 9303-10 §4.7.11-4.7.16).

DG11 (additional personal details) and DG12 (additional document details)
are a tag list (``5C``) followed by optional UTF-8 fields; national
characters live here, not in the MRZ. Names use ``<<`` between the primary
and secondary identifiers, as in the MRZ. DG13 is issuer-defined and stays
opaque. DG16 lists persons to notify.
"""

from __future__ import annotations

import attrs

from macnss_auth.nfc.lds.errors import LdsFormatError
from macnss_auth.nfc.tlv import Tlv, encode_tlv, read_all, read_exact

__all__ = [
    "Dg11",
    "Dg12",
    "Dg13",
    "Dg16",
    "PersonToNotify",
    "encode_dg11",
    "encode_dg12",
    "parse_dg11",
    "parse_dg12",
    "parse_dg13",
    "parse_dg16",
]


def _text(item: Tlv, name: str) -> str:
    try:
        return item.value.decode("utf-8")
    except UnicodeDecodeError:
        raise LdsFormatError(f"{name} field {item.tag:X} is not UTF-8", field=name) from None


def _split_name(value: str) -> tuple[str, str]:
    primary, _, secondary = value.partition("<<")
    return primary.replace("<", " ").strip(), secondary.replace("<", " ").strip()


def _counted(item: Tlv, tag: int, name: str) -> tuple[str, ...]:
    # A0 { 02 count, tag value... } (ICAO 9303-10 §4.7.11, "other names").
    children = read_all(item.value, field=name, error=LdsFormatError)
    if not children or children[0].tag != 0x02 or len(children[0].value) != 1:
        raise LdsFormatError(f"{name} list lacks its count", field=name)
    values = tuple(_text(c, name) for c in children[1:] if c.tag == tag)
    if len(values) != children[0].value[0]:
        raise LdsFormatError(f"{name} list count does not match", field=name)
    return values


def _date(value: bytes, name: str) -> str:
    # Dates are 8 ASCII digits (YYYYMMDD); some issuers write 4 BCD bytes.
    if len(value) == 4:
        text = value.hex()
        if text.isdigit():
            return text
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        raise LdsFormatError(f"{name} date is not ASCII", field=name) from None
    if not text.isdigit():
        raise LdsFormatError(f"{name} date is not digits", field=name)
    return text


@attrs.frozen
class Dg11:
    """DG11: additional personal details. Absent fields are ``None``."""

    full_name: str | None = None
    primary_identifier: str | None = None
    secondary_identifier: str | None = None
    other_names: tuple[str, ...] = ()
    personal_number: str | None = None
    full_date_of_birth: str | None = None
    place_of_birth: str | None = None
    address: str | None = None
    telephone: str | None = None
    profession: str | None = None
    title: str | None = None
    personal_summary: str | None = None
    proof_of_citizenship: bytes | None = attrs.field(default=None, repr=False)
    other_travel_document_numbers: tuple[str, ...] = ()
    custody_information: str | None = None


_DG11_TEXT = {
    0x5F10: "personal_number",
    0x5F11: "place_of_birth",
    0x5F42: "address",
    0x5F12: "telephone",
    0x5F13: "profession",
    0x5F14: "title",
    0x5F15: "personal_summary",
    0x5F18: "custody_information",
}


def parse_dg11(data: bytes) -> Dg11:
    """Parse DG11.

    Raises:
        LdsFormatError: malformed.
    """
    name = "DG11"
    outer = read_exact(data, 0x6B, field=name, error=LdsFormatError)
    values: dict[str, object] = {}
    others: list[str] = []
    for item in read_all(outer.value, field=name, error=LdsFormatError):
        if item.tag == 0x5F0E:
            primary, secondary = _split_name(_text(item, name))
            values["full_name"] = " ".join(part for part in (primary, secondary) if part)
            values["primary_identifier"], values["secondary_identifier"] = primary, secondary
        elif item.tag == 0xA0:
            others.extend(_counted(item, 0x5F0F, name))
        elif item.tag == 0x5F0F:
            others.append(_text(item, name))
        elif item.tag == 0x5F2B:
            values["full_date_of_birth"] = _date(item.value, name)
        elif item.tag == 0x5F16:
            values["proof_of_citizenship"] = item.value
        elif item.tag == 0x5F17:
            values["other_travel_document_numbers"] = tuple(
                _text(item, name).replace("<", " ").split()
            )
        elif item.tag in _DG11_TEXT:
            text = _text(item, name)
            if item.tag == 0x5F42:
                text = "\n".join(part.strip() for part in text.split("<") if part.strip())
            values[_DG11_TEXT[item.tag]] = text
    return Dg11(other_names=tuple(others), **values)  # type: ignore[arg-type]


def encode_dg11(
    *,
    full_name: str | None = None,
    personal_number: str | None = None,
    full_date_of_birth: str | None = None,
    place_of_birth: str | None = None,
    address: str | None = None,
    telephone: str | None = None,
    profession: str | None = None,
) -> bytes:
    """Encode DG11 from the given fields (UTF-8; ``full_name`` as ``PRIMARY<<SECONDARY``)."""
    fields: list[tuple[int, bytes]] = []
    if full_name is not None:
        fields.append((0x5F0E, full_name.encode("utf-8")))
    if personal_number is not None:
        fields.append((0x5F10, personal_number.encode("utf-8")))
    if full_date_of_birth is not None:
        fields.append((0x5F2B, full_date_of_birth.encode("ascii")))
    if place_of_birth is not None:
        fields.append((0x5F11, place_of_birth.encode("utf-8")))
    if address is not None:
        fields.append((0x5F42, address.replace("\n", "<").encode("utf-8")))
    if telephone is not None:
        fields.append((0x5F12, telephone.encode("utf-8")))
    if profession is not None:
        fields.append((0x5F13, profession.encode("utf-8")))
    tag_list = b"".join(t.to_bytes(2, "big") for t, _ in fields)
    body = encode_tlv(0x5C, tag_list) + b"".join(encode_tlv(t, v) for t, v in fields)
    return encode_tlv(0x6B, body)


@attrs.frozen
class Dg12:
    """DG12: additional document details."""

    issuing_authority: str | None = None
    date_of_issue: str | None = None
    other_persons: tuple[str, ...] = ()
    endorsements: str | None = None
    tax_or_exit_requirements: str | None = None
    image_front: bytes | None = attrs.field(default=None, repr=False)
    image_rear: bytes | None = attrs.field(default=None, repr=False)
    personalization_time: str | None = None
    personalization_device: str | None = None


def parse_dg12(data: bytes) -> Dg12:
    """Parse DG12.

    Raises:
        LdsFormatError: malformed.
    """
    name = "DG12"
    outer = read_exact(data, 0x6C, field=name, error=LdsFormatError)
    values: dict[str, object] = {}
    others: list[str] = []
    for item in read_all(outer.value, field=name, error=LdsFormatError):
        if item.tag == 0x5F19:
            values["issuing_authority"] = _text(item, name)
        elif item.tag == 0x5F26:
            values["date_of_issue"] = _date(item.value, name)
        elif item.tag == 0xA0:
            others.extend(_counted(item, 0x5F1A, name))
        elif item.tag == 0x5F1A:
            others.append(_text(item, name))
        elif item.tag == 0x5F1B:
            values["endorsements"] = _text(item, name)
        elif item.tag == 0x5F1C:
            values["tax_or_exit_requirements"] = _text(item, name)
        elif item.tag == 0x5F1D:
            values["image_front"] = item.value
        elif item.tag == 0x5F1E:
            values["image_rear"] = item.value
        elif item.tag == 0x5F55:
            values["personalization_time"] = _text(item, name)
        elif item.tag == 0x5F56:
            values["personalization_device"] = _text(item, name)
    return Dg12(other_persons=tuple(others), **values)  # type: ignore[arg-type]


def encode_dg12(*, issuing_authority: str | None = None, date_of_issue: str | None = None) -> bytes:
    """Encode DG12 with the issuing authority and date of issue (``YYYYMMDD``)."""
    fields: list[tuple[int, bytes]] = []
    if issuing_authority is not None:
        fields.append((0x5F19, issuing_authority.encode("utf-8")))
    if date_of_issue is not None:
        fields.append((0x5F26, date_of_issue.encode("ascii")))
    tag_list = b"".join(t.to_bytes(2, "big") for t, _ in fields)
    body = encode_tlv(0x5C, tag_list) + b"".join(encode_tlv(t, v) for t, v in fields)
    return encode_tlv(0x6C, body)


@attrs.frozen
class Dg13:
    """DG13: optional details, issuer-defined; kept opaque."""

    content: bytes = attrs.field(repr=lambda v: f"<{len(v)} bytes>")


def parse_dg13(data: bytes) -> Dg13:
    """Parse the DG13 envelope (``6D``).

    Raises:
        LdsFormatError: malformed.
    """
    return Dg13(read_exact(data, 0x6D, field="DG13", error=LdsFormatError).value)


@attrs.frozen
class PersonToNotify:
    """One DG16 entry."""

    date_recorded: str | None
    name: str | None
    telephone: str | None
    address: str | None


@attrs.frozen
class Dg16:
    """DG16: persons to notify."""

    persons: tuple[PersonToNotify, ...]


def parse_dg16(data: bytes) -> Dg16:
    """Parse DG16 (``70 { 02 count, A1 { 5F50 5F51 5F52 5F53 } ... }``).

    Raises:
        LdsFormatError: malformed.
    """
    name = "DG16"
    outer = read_exact(data, 0x70, field=name, error=LdsFormatError)
    items = read_all(outer.value, field=name, error=LdsFormatError)
    if not items or items[0].tag != 0x02 or len(items[0].value) != 1:
        raise LdsFormatError("DG16 lacks its count", field=name)
    persons = []
    for item in items[1:]:
        if not 0xA1 <= item.tag <= 0xBF:
            continue
        fields = {c.tag: c for c in read_all(item.value, field=name, error=LdsFormatError)}
        persons.append(
            PersonToNotify(
                date_recorded=_date(fields[0x5F50].value, name) if 0x5F50 in fields else None,
                name=_text(fields[0x5F51], name) if 0x5F51 in fields else None,
                telephone=_text(fields[0x5F52], name) if 0x5F52 in fields else None,
                address=_text(fields[0x5F53], name) if 0x5F53 in fields else None,
            )
        )
    if len(persons) != items[0].value[0]:
        raise LdsFormatError("DG16 count does not match", field=name)
    return Dg16(tuple(persons))

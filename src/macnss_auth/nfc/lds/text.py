"""Text data groups: DG11, DG12, DG13 and DG16 (ICAO 9303-10 §4.7.11-4.7.16).

DG11 (additional personal details) and DG12 (additional document details)
are a tag list (``5C``) followed by optional UTF-8 fields; national
characters live here, not in the MRZ. Names use ``<<`` between the primary
and secondary identifiers, as in the MRZ. DG13 is issuer-defined and stays
opaque. DG16 lists persons to notify.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

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


def _date_field(item: Tlv, name: str) -> str:
    return _date(item.value, name)


def _raw(item: Tlv, _name: str) -> bytes:
    return item.value


def _address(item: Tlv, name: str) -> str:
    # Address lines are separated by '<' on the chip.
    return "\n".join(part.strip() for part in _text(item, name).split("<") if part.strip())


def _numbers(item: Tlv, name: str) -> tuple[str, ...]:
    return tuple(_text(item, name).replace("<", " ").split())


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


# How each field's value reads: tag -> (attribute, decoder).
_Fields = Mapping[int, tuple[str, Callable[[Tlv, str], object]]]

_DG11_FIELDS: _Fields = {
    0x5F0E: ("full_name", _text),  # PRIMARY<<SECONDARY, split by parse_dg11
    0x5F10: ("personal_number", _text),
    0x5F2B: ("full_date_of_birth", _date_field),
    0x5F11: ("place_of_birth", _text),
    0x5F42: ("address", _address),
    0x5F12: ("telephone", _text),
    0x5F13: ("profession", _text),
    0x5F14: ("title", _text),
    0x5F15: ("personal_summary", _text),
    0x5F16: ("proof_of_citizenship", _raw),
    0x5F17: ("other_travel_document_numbers", _numbers),
    0x5F18: ("custody_information", _text),
}

_DG12_FIELDS: _Fields = {
    0x5F19: ("issuing_authority", _text),
    0x5F26: ("date_of_issue", _date_field),
    0x5F1B: ("endorsements", _text),
    0x5F1C: ("tax_or_exit_requirements", _text),
    0x5F1D: ("image_front", _raw),
    0x5F1E: ("image_rear", _raw),
    0x5F55: ("personalization_time", _text),
    0x5F56: ("personalization_device", _text),
}


def _parse_fields(
    data: bytes, *, tag: int, name: str, fields: _Fields, listed: int
) -> tuple[dict[str, object], tuple[str, ...]]:
    """The known fields of a DG11/DG12 and its list of ``listed`` entries.

    The list comes counted in an ``A0`` template or as bare ``listed`` items
    (ICAO 9303-10 §4.7.11, §4.7.12); unknown tags are skipped.
    """
    outer = read_exact(data, tag, field=name, error=LdsFormatError)
    values: dict[str, object] = {}
    entries: list[str] = []
    for item in read_all(outer.value, field=name, error=LdsFormatError):
        if item.tag == 0xA0:
            entries.extend(_counted(item, listed, name))
        elif item.tag == listed:
            entries.append(_text(item, name))
        elif item.tag in fields:
            attribute, decode = fields[item.tag]
            values[attribute] = decode(item, name)
    return values, tuple(entries)


def _encode_fields(tag: int, fields: Iterable[tuple[int, bytes | None]]) -> bytes:
    """A DG11/DG12: the tag list (``5C``) of the fields given, then those fields."""
    present = [(t, v) for t, v in fields if v is not None]
    tag_list = b"".join(t.to_bytes(2, "big") for t, _ in present)
    body = encode_tlv(0x5C, tag_list) + b"".join(encode_tlv(t, v) for t, v in present)
    return encode_tlv(tag, body)


def _utf8(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8")


def _ascii(value: str | None) -> bytes | None:
    return None if value is None else value.encode("ascii")


def parse_dg11(data: bytes) -> Dg11:
    """Parse DG11.

    Raises:
        LdsFormatError: malformed.
    """
    values, others = _parse_fields(data, tag=0x6B, name="DG11", fields=_DG11_FIELDS, listed=0x5F0F)
    full_name = values.get("full_name")
    if isinstance(full_name, str):
        primary, secondary = _split_name(full_name)
        values["full_name"] = " ".join(part for part in (primary, secondary) if part)
        values["primary_identifier"], values["secondary_identifier"] = primary, secondary
    return Dg11(other_names=others, **values)  # type: ignore[arg-type]


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
    return _encode_fields(
        0x6B,
        [
            (0x5F0E, _utf8(full_name)),
            (0x5F10, _utf8(personal_number)),
            (0x5F2B, _ascii(full_date_of_birth)),
            (0x5F11, _utf8(place_of_birth)),
            (0x5F42, _utf8(None if address is None else address.replace("\n", "<"))),
            (0x5F12, _utf8(telephone)),
            (0x5F13, _utf8(profession)),
        ],
    )


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
    values, others = _parse_fields(data, tag=0x6C, name="DG12", fields=_DG12_FIELDS, listed=0x5F1A)
    return Dg12(other_persons=others, **values)  # type: ignore[arg-type]


def encode_dg12(*, issuing_authority: str | None = None, date_of_issue: str | None = None) -> bytes:
    """Encode DG12 with the issuing authority and date of issue (``YYYYMMDD``)."""
    return _encode_fields(
        0x6C, [(0x5F19, _utf8(issuing_authority)), (0x5F26, _ascii(date_of_issue))]
    )


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

"""MRZ check digits, the three layouts, the long document number rule, and redaction."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.errors import MalformedInput
from macnss_auth.nfc.mrz import (
    CAN,
    MrzCheckDigitError,
    MrzFormat,
    MrzKey,
    bac_key_seed,
    check_digit,
    parse_mrz,
)

from .vectors import appendix_d, load, named

ENTRIES = load("mrz_check_digit_examples.json")["entries"]


def text(name: str) -> str:
    return named(ENTRIES, name).decode("ascii")


def test_check_digit_examples() -> None:
    assert check_digit(text('check digit example: "520727" -> 3')) == 3
    assert check_digit(text('check digit example: "AB2134<<<" -> 5')) == 5
    with pytest.raises(MalformedInput):
        check_digit("ab")


def test_td3_specimen() -> None:
    line1 = text("TD3 specimen line 1")
    line2 = text(
        "TD3 specimen line 2 (doc L898902C3 cd 6, dob 740812 cd 2, expiry 120415 cd 9, "
        "optional ZE184226B cd 1, composite 0)"
    )
    mrz = parse_mrz(f"{line1}\n{line2}\n")
    assert mrz.format is MrzFormat.TD3
    assert (mrz.document_code, mrz.issuing_state, mrz.nationality) == ("P", "UTO", "UTO")
    assert (mrz.primary_identifier, mrz.secondary_identifier) == ("ERIKSSON", "ANNA MARIA")
    assert (mrz.date_of_birth, mrz.sex, mrz.date_of_expiry) == ("740812", "F", "120415")
    assert mrz.optional_data == "ZE184226B<<<<<"
    assert mrz.key.information == named(ENTRIES, "TD3 specimen MRZ information for BAC/PACE key")
    # One concatenated line works too.
    assert parse_mrz(line1 + line2) == mrz


def test_td3_appendix_d_document_gives_appendix_d_seed() -> None:
    line1 = text("older TD3 BAC-example line 1 (MARIX variant used by vsmartcard)")
    line2 = text(
        "older TD3 BAC-example line 2 (doc L898902C< cd 3, dob 690806 cd 1, expiry 940623 "
        "cd 6, optional cd 1, composite 4)"
    )
    key = parse_mrz(line1 + "\n" + line2).key
    bac, _ = appendix_d()
    assert key.information == named(bac, "MRZ_information (docno+cd, dob+cd, doe+cd)")
    assert key.key_seed() == named(bac, "SHA-1(MRZ_information)")
    assert bac_key_seed(key) == named(bac, "Kseed (first 16 bytes)")
    assert key == MrzKey("l898902c", "690806", "940623")


def test_td1_specimen_and_long_document_number() -> None:
    mrz = parse_mrz(text("TD1 specimen (90 chars: 3 x 30)"))
    assert mrz.format is MrzFormat.TD1
    assert mrz.document_number == "D23145890"
    assert mrz.key.information == named(ENTRIES, "TD1 specimen MRZ information")
    long = parse_mrz(
        text(
            'TD1 with long document number (12 chars; pos 15 = "<", remainder + check digit '
            "in optional data)"
        )
    )
    assert long.document_number == "D23145890734"
    assert long.key.information == named(
        ENTRIES, "TD1 long-number MRZ information (BAC/PACE key input)"
    )
    assert (long.primary_identifier, long.secondary_identifier) == ("STEVENSON", "PETER JOHN")


def test_td2_specimen() -> None:
    mrz = parse_mrz(text("TD2 specimen (72 chars)"))
    assert mrz.format is MrzFormat.TD2
    assert mrz.key.information == named(ENTRIES, "TD1 specimen MRZ information")


def test_composite_examples() -> None:
    td3 = text("composite example TD3 line 2 (composite 8)")
    assert parse_mrz("P<YTO" + "<" * 39 + td3 + "8").format is MrzFormat.TD3
    td2 = text("composite example TD2 line 2 (composite 8)")
    assert parse_mrz("I<YTO" + "<" * 31 + td2 + "8").format is MrzFormat.TD2
    td1_1 = text("composite example TD1 line 1 (with line 2 below; composite 2)")
    td1_2 = text("composite example TD1 line 2 (first 29 chars)")
    assert parse_mrz(td1_1 + td1_2 + "2" + "<" * 30).format is MrzFormat.TD1
    with pytest.raises(MrzCheckDigitError) as info:
        parse_mrz(td1_1 + td1_2 + "3" + "<" * 30)
    assert info.value.field == "composite"


def test_openpace_specimen_has_no_composite_digit() -> None:
    # The string as OpenPACE gives it holds "<" where the composite digit goes.
    with pytest.raises(MrzCheckDigitError) as info:
        parse_mrz(text("PACE G.1 MRZ (German ID specimen, TD1) as given in OpenPACE"))
    assert info.value.field == "composite"


@pytest.mark.parametrize(
    ("position", "field"),
    [
        (9, "document_number"),
        (19, "date_of_birth"),
        (27, "date_of_expiry"),
        (42, "personal_number"),
    ],
)
def test_errors_name_the_field_not_the_value(position: int, field: str) -> None:
    line2 = list(
        text(
            "TD3 specimen line 2 (doc L898902C3 cd 6, dob 740812 cd 2, expiry 120415 cd 9, "
            "optional ZE184226B cd 1, composite 0)"
        )
    )
    line2[position] = str((int(line2[position]) + 1) % 10)
    with pytest.raises(MrzCheckDigitError) as info:
        parse_mrz(text("TD3 specimen line 1") + "".join(line2))
    assert info.value.field == field
    assert "L898902C" not in str(info.value)
    assert "ERIKSSON" not in str(info.value)


@pytest.mark.parametrize("bad", ["", "P<UTO", "x" * 88, "P<UTO\n" + "<" * 44, "é" * 90])
def test_wrong_shapes(bad: str) -> None:
    with pytest.raises(MalformedInput):
        parse_mrz(bad)


def test_redaction() -> None:
    mrz = parse_mrz(text("TD1 specimen (90 chars: 3 x 30)"))
    for value in (mrz, mrz.key, CAN("123456")):
        assert "D23145890" not in repr(value)
        assert "ERIKSSON" not in repr(value)
        assert "123456" not in repr(value)
        assert "redacted" in repr(value)


def test_mrz_key_validation() -> None:
    with pytest.raises(MalformedInput) as info:
        MrzKey("L898902C", "6908O6", "940623")
    assert info.value.field == "date_of_birth"
    with pytest.raises(MalformedInput):
        MrzKey("<<<", "690806", "940623")
    with pytest.raises(MalformedInput):
        MrzKey("L89-8902", "690806", "940623")
    with pytest.raises(TypeError):
        hash(MrzKey("L898902C", "690806", "940623"))


def test_can() -> None:
    can = CAN("123456")
    assert can.to_bytes() == b"123456"
    assert can == CAN("123456")
    assert can != CAN("123457")
    fullwidth = "\uff11\uff12\uff13\uff14\uff15\uff16"
    for bad in ("12345", "1234567", "12345a", fullwidth):
        with pytest.raises(MalformedInput):
            CAN(bad)
    with pytest.raises(TypeError):
        CAN(123456)  # type: ignore[arg-type]


def test_key_seed_is_sha1_of_information() -> None:
    key = MrzKey("T22000129", "640812", "101031")
    assert key.key_seed() == hashlib.sha1(key.information).digest()  # noqa: S324 (9303)


@given(st.text(max_size=120))
def test_parser_raises_only_library_errors(raw: str) -> None:
    with contextlib.suppress(MalformedInput):
        parse_mrz(raw)


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<\n", min_size=60, max_size=92))
def test_parser_on_mrz_alphabet(raw: str) -> None:
    with contextlib.suppress(MalformedInput):
        parse_mrz(raw)


ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _field(value: str) -> str:
    return value + str(check_digit(value))


dates = st.from_regex(r"[0-9]{6}", fullmatch=True)


@given(
    st.text(alphabet=ALNUM, min_size=1, max_size=9),
    dates,
    dates,
    st.text(alphabet=ALNUM + "<", min_size=14, max_size=14),
)
def test_generated_td3_round_trips(number: str, birth: str, expiry: str, personal: str) -> None:
    line1 = ("P<UTOERIKSSON<<ANNA" + "<" * 44)[:44]
    number_field = _field(number.ljust(9, "<"))
    personal_field = _field(personal)
    body = number_field + "UTO" + _field(birth) + "F" + _field(expiry) + personal_field
    composite = number_field + _field(birth) + _field(expiry) + personal_field
    mrz = parse_mrz(line1 + "\n" + body + str(check_digit(composite)))
    assert mrz.key == MrzKey(number, birth, expiry)
    assert (mrz.document_number, mrz.optional_data) == (number, personal)


@given(st.text(alphabet=ALNUM, min_size=10, max_size=14), dates, dates)
def test_generated_td1_long_numbers_round_trip(number: str, birth: str, expiry: str) -> None:
    extension = number[9:] + str(check_digit(number))
    line1 = ("I<UTO" + number[:9] + "<" + extension + "<" * 30)[:30]
    line2 = _field(birth) + "M" + _field(expiry) + "UTO" + "<" * 11
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    line3 = ("STEVENSON<<PETER" + "<" * 30)[:30]
    mrz = parse_mrz(f"{line1}\n{line2}{check_digit(composite)}\n{line3}")
    assert mrz.document_number == number
    assert mrz.key.information == (
        f"{number}{check_digit(number)}{_field(birth)}{_field(expiry)}".encode("ascii")
    )

"""Encoders and parsers agree; malformed structures are refused with LdsFormatError."""

from __future__ import annotations

import pytest

from macnss_auth.errors import MalformedInput
from macnss_auth.nfc import lds
from macnss_auth.nfc import securityinfos as si
from macnss_auth.nfc.lds import ImageType, LdsFormatError
from macnss_auth.nfc.pki import HashAlgorithm
from macnss_auth.nfc.tlv import encode_tlv
from macnss_auth.testing.pki import make_td1_mrz, placeholder_jpeg


def test_com_roundtrip() -> None:
    data = lds.encode_com([1, 2, 11, 14, 15])
    com = lds.parse_com(data)
    assert com.data_groups == (1, 2, 11, 14, 15)
    assert com.lds_version == "0107"


def test_com_with_unknown_tag_is_refused() -> None:
    body = (
        encode_tlv(0x5F01, b"0107") + encode_tlv(0x5F36, b"040000") + encode_tlv(0x5C, b"\x61\x99")
    )
    with pytest.raises(LdsFormatError):
        lds.parse_com(encode_tlv(0x60, body))


def test_dg1_roundtrip_td1() -> None:
    mrz = make_td1_mrz(document_number="ZX9876543", surname="EL AMRANI", given_names="YOUSSEF")
    parsed = lds.parse_dg1(lds.encode_dg1(mrz))
    assert parsed.document_number == "ZX9876543"
    assert parsed.primary_identifier == "EL AMRANI"
    assert parsed.secondary_identifier == "YOUSSEF"
    assert parsed.nationality == "MAR"


def test_dg1_with_a_bad_check_digit_is_refused() -> None:
    mrz = make_td1_mrz().replace("AB1234567", "AB1234568", 1)
    with pytest.raises(MalformedInput):
        lds.encode_dg1(mrz)
    text = "".join(mrz.split()).encode("ascii")
    with pytest.raises(LdsFormatError):
        lds.parse_dg1(encode_tlv(0x61, encode_tlv(0x5F1F, text)))


def test_dg2_roundtrip_jpeg() -> None:
    image = placeholder_jpeg(320, 480)
    face = lds.parse_dg2(lds.encode_dg2(image, width=320, height=480)).faces[0]
    assert face.image == image
    assert face.image_type is ImageType.JPEG
    assert (face.width, face.height) == (320, 480)


def test_dg2_refuses_unknown_images() -> None:
    with pytest.raises(LdsFormatError):
        lds.encode_dg2(b"GIF89a", width=1, height=1)


def test_dg2_count_mismatch() -> None:
    data = bytearray(lds.encode_dg2(placeholder_jpeg(), width=240, height=320))
    index = data.index(b"\x02\x01\x01")
    data[index + 2] = 2
    with pytest.raises(LdsFormatError):
        lds.parse_dg2(bytes(data))


def test_dg7_roundtrip() -> None:
    images = (placeholder_jpeg(100, 40), placeholder_jpeg(90, 30))
    assert lds.parse_dg7(lds.encode_dg7(images)).images == images


def test_dg11_national_characters() -> None:
    data = lds.encode_dg11(
        full_name="بناني<<فاطمة الزهراء",
        personal_number="BK123456",
        full_date_of_birth="19900115",
        place_of_birth="Fès",
        address="12 Rue Ibn Sina\nRabat",
        telephone="+212600000000",
        profession="Ingénieure",
    )
    dg11 = lds.parse_dg11(data)
    assert dg11.primary_identifier == "بناني"
    assert dg11.secondary_identifier == "فاطمة الزهراء"
    assert dg11.full_name == "بناني فاطمة الزهراء"
    assert dg11.personal_number == "BK123456"
    assert dg11.full_date_of_birth == "19900115"
    assert dg11.place_of_birth == "Fès"
    assert dg11.address == "12 Rue Ibn Sina\nRabat"
    assert dg11.profession == "Ingénieure"


def test_dg11_other_names_and_bcd_date() -> None:
    others = encode_tlv(0x02, b"\x02") + encode_tlv(0x5F0F, b"A<<B") + encode_tlv(0x5F0F, b"C<<D")
    body = (
        encode_tlv(0x5C, b"\x5f\x0e\x5f\x2b")
        + encode_tlv(0x5F0E, b"X<<Y")
        + encode_tlv(0xA0, others)
        + encode_tlv(0x5F2B, bytes.fromhex("19900115"))
    )
    dg11 = lds.parse_dg11(encode_tlv(0x6B, body))
    assert dg11.other_names == ("A<<B", "C<<D")
    assert dg11.full_date_of_birth == "19900115"


def test_dg11_invalid_utf8() -> None:
    with pytest.raises(LdsFormatError):
        lds.parse_dg11(encode_tlv(0x6B, encode_tlv(0x5F0E, b"\xff\xfe")))


def test_dg12_roundtrip() -> None:
    dg12 = lds.parse_dg12(lds.encode_dg12(issuing_authority="DGSN", date_of_issue="20250101"))
    assert dg12.issuing_authority == "DGSN"
    assert dg12.date_of_issue == "20250101"


def test_dg13_is_opaque() -> None:
    assert lds.parse_dg13(encode_tlv(0x6D, b"\x01\x02")).content == b"\x01\x02"


def test_dg16_persons() -> None:
    person = encode_tlv(0x5F50, b"20240101") + encode_tlv(0x5F51, b"BENANI<<SAID")
    person += encode_tlv(0x5F52, b"+212500000000") + encode_tlv(0x5F53, b"Rabat")
    dg16 = lds.parse_dg16(encode_tlv(0x70, encode_tlv(0x02, b"\x01") + encode_tlv(0xA1, person)))
    assert dg16.persons[0].name == "BENANI<<SAID"
    assert dg16.persons[0].date_recorded == "20240101"


def test_dg14_and_card_access_roundtrip() -> None:
    infos = si.encode_security_infos([si.PaceInfo(si.PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)])
    assert lds.parse_card_access(infos).pace[0].parameter_id == 13
    assert lds.parse_dg14(lds.encode_dg14(infos)).der == infos


@pytest.mark.parametrize("padding", [b"\x00" * 7, b"\xff" * 30, b"\x90\x00"])
def test_card_access_read_in_blocks_keeps_its_padding_out(padding: bytes) -> None:
    # Some chips pad EF.CardAccess and readers fetch whole blocks: the one parser
    # (used by the reader, the dump loader and verification) reads the first object.
    infos = si.encode_security_infos([si.PaceInfo(si.PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)])
    parsed = lds.parse_card_access(infos + padding)
    assert parsed.der == infos
    assert parsed.pace[0].parameter_id == 13


def test_card_access_without_a_security_infos_at_the_start_is_refused() -> None:
    with pytest.raises(LdsFormatError):
        lds.parse_card_access(b"\x31\x85")
    with pytest.raises(LdsFormatError):
        lds.parse_card_access(b"")


def test_dg14_refuses_bytes_after_its_object() -> None:
    infos = si.encode_security_infos([si.PaceInfo(si.PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)])
    with pytest.raises(LdsFormatError):
        lds.parse_dg14(lds.encode_dg14(infos) + b"\x00")


def test_sod_v1_roundtrip_structure() -> None:
    content = lds.encode_lds_security_object(
        HashAlgorithm.SHA256, {1: b"a", 2: b"b"}, lds_version="0108", unicode_version="040000"
    )
    assert content.startswith(b"\x30")


@pytest.mark.parametrize(
    ("parser", "data"),
    [
        (lds.parse_com, b""),
        (lds.parse_com, b"\x60\x05\x5f\x01\x02"),  # truncated
        (lds.parse_dg1, b"\x61\x80\x00\x00"),  # indefinite length
        (lds.parse_dg1, b"\x61\x00\x00"),  # trailing byte
        (lds.parse_dg2, b"\x61\x00"),  # wrong tag
        (lds.parse_dg15, b"\x6f\x03\x30\x01\x00"),  # not a key
        (lds.parse_sod, b"\x77\x02\x30\x00"),  # not CMS
        (lds.parse_sod, b"\x77\x84\xff\xff\xff\xff"),  # length beyond the buffer
        (lds.parse_card_security, b"\x30\x00"),
    ],
)
def test_malformed(parser: object, data: bytes) -> None:
    assert callable(parser)
    with pytest.raises(LdsFormatError):
        parser(data)


def test_truncated_bsi_files_are_refused() -> None:
    from pathlib import Path  # noqa: PLC0415 (local to this test)

    root = Path(__file__).resolve().parents[2] / "vectors" / "bsi2008"
    for name, parser in [
        ("EF_SOD.bin", lds.parse_sod),
        ("Datagroup2.bin", lds.parse_dg2),
        ("Datagroup14.bin", lds.parse_dg14),
    ]:
        data = (root / name).read_bytes()
        for cut in (1, 2, 10, len(data) // 2, len(data) - 1):
            with pytest.raises(LdsFormatError):
                parser(data[:cut])

"""Issuer, profiles, the JPEG face, save/load and the ``macnss-auth card`` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from macnss_auth.cli import main
from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.card import (
    PROFILES,
    DocumentKind,
    Person,
    clone_card,
    forge_card,
    issue_card,
    load_card,
    profile,
    save_card,
)
from macnss_auth.nfc.card.issuer import make_td3_mrz, mrz_information
from macnss_auth.nfc.card.jpeg import encode_greyscale_mosaic, face_jpeg, signature_jpeg
from macnss_auth.nfc.lds import (
    ImageType,
    parse_card_access,
    parse_card_security,
    parse_dg1,
    parse_dg2,
    parse_dg7,
    parse_dg11,
    parse_dg12,
    parse_dg14,
    parse_sod,
    sniff_image_type,
)
from macnss_auth.nfc.mrz import MrzFormat, check_digit, parse_mrz
from macnss_auth.testing import FixedClock

from .conftest import NOW, issued

APP = "A0000002471001"


def _decode_mosaic(jpeg: bytes) -> list[list[int]]:
    """A minimal baseline decoder for DC-only greyscale JPEGs (T.81 Annex C and F.2).

    It builds the Huffman codes from the file's own DHT segments, so it checks
    that the encoder's table specifications and its bit stream agree.
    """
    assert jpeg[:2] == b"\xff\xd8"
    assert jpeg[-2:] == b"\xff\xd9"
    offset = 2
    tables: dict[int, dict[tuple[int, int], int]] = {}
    height = width = 0
    scan = b""
    while offset < len(jpeg) - 2:
        assert jpeg[offset] == 0xFF
        marker = jpeg[offset + 1]
        length = int.from_bytes(jpeg[offset + 2 : offset + 4], "big")
        payload = jpeg[offset + 4 : offset + 2 + length]
        if marker == 0xC0:
            assert payload[0] == 8  # baseline precision
            height = int.from_bytes(payload[1:3], "big")
            width = int.from_bytes(payload[3:5], "big")
            assert payload[5] == 1  # one component (greyscale)
        elif marker == 0xC4:
            counts, symbols = payload[1:17], payload[17:]
            code = 0
            table: dict[tuple[int, int], int] = {}
            index = 0
            for size, count in enumerate(counts, start=1):
                for _ in range(count):
                    table[(size, code)] = symbols[index]
                    index += 1
                    code += 1
                code <<= 1
            tables[payload[0]] = table
        elif marker == 0xDA:
            scan = jpeg[offset + 2 + length : -2].replace(b"\xff\x00", b"\xff")
            break
        offset += 2 + length
    bits = "".join(f"{byte:08b}" for byte in scan)
    position = 0

    def symbol(table: dict[tuple[int, int], int]) -> int:
        nonlocal position
        for size in range(1, 17):
            code = int(bits[position : position + size], 2)
            if (size, code) in table:
                position += size
                return table[(size, code)]
        raise AssertionError("no Huffman code matches")

    levels: list[list[int]] = []
    dc = 0
    for _ in range(height // 8):
        row = []
        for _ in range(width // 8):
            size = symbol(tables[0x00])
            diff = 0
            if size:
                raw = int(bits[position : position + size], 2)
                position += size
                diff = raw if raw >> (size - 1) else raw - (1 << size) + 1
            dc += diff
            assert symbol(tables[0x10]) == 0x00  # EOB
            row.append(dc // 8 + 128)
        levels.append(row)
    return levels


@settings(max_examples=50)
@given(
    st.lists(
        st.lists(st.integers(0, 255), min_size=3, max_size=3),
        min_size=1,
        max_size=4,
    )
)
def test_mosaic_jpeg_round_trips_through_a_decoder(blocks: list[list[int]]) -> None:
    assert _decode_mosaic(encode_greyscale_mosaic(blocks)) == blocks


def test_face_and_signature_images() -> None:
    face = face_jpeg()
    assert sniff_image_type(face) is ImageType.JPEG
    levels = _decode_mosaic(face)
    assert len(levels) == 30
    assert len(levels[0]) == 24
    assert levels[0][0] == 225  # background
    assert len({level for row in levels for level in row}) >= 5  # hair, skin, eyes, mouth...
    assert _decode_mosaic(signature_jpeg())[0][0] == 250
    with pytest.raises(ValueError, match="rectangle"):
        encode_greyscale_mosaic([[1, 2], [3]])
    with pytest.raises(ValueError, match=r"0\.\.255"):
        encode_greyscale_mosaic([[256]])


def test_td3_mrz_is_valid() -> None:
    mrz = parse_mrz(make_td3_mrz(Person()))
    assert mrz.format is MrzFormat.TD3
    digits = [check_digit(field) for field in ("AB1234567", "900115", "350101")]
    assert mrz_information(Person()) == "AB1234567{}900115{}350101{}".format(*digits)
    assert make_td3_mrz(Person()).splitlines()[1].startswith(f"AB1234567{digits[0]}MAR900115")


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_issued_cards_hold_what_the_profile_promises(name: str) -> None:
    card = issued(name)
    files = card.data.files.files()
    groups = {int(p.rsplit("DG", 1)[1]): f.data for p, f in files.items() if "/DG" in p}
    mrz = parse_dg1(groups[1])
    expected = MrzFormat.TD1 if PROFILES[name].document is DocumentKind.TD1 else MrzFormat.TD3
    assert mrz.format is expected
    face = parse_dg2(groups[2]).faces[0]
    assert face.image == face_jpeg()
    assert parse_dg7(groups[7]).images
    dg11 = parse_dg11(groups[11])
    assert dg11.primary_identifier == "BENANI"
    assert dg11.other_names == ("بناني<<فاطمة الزهراء",)
    assert parse_dg12(groups[12]).issuing_authority == "DGSN"
    infos = parse_dg14(groups[14])
    assert bool(infos.chip_authentication) == (PROFILES[name].chip_authentication is not None)
    assert (15 in groups) == (PROFILES[name].active_authentication is not None)
    sod = parse_sod(files[f"{APP}/EF.SOD"].data)
    assert set(sod.hashes) == set(groups)
    if PROFILES[name].pace_protocol is not None:
        access = parse_card_access(files["MF/EF.CardAccess"].data)
        assert access.pace[0].protocol is PROFILES[name].pace_protocol
        security = parse_card_security(files["MF/EF.CardSecurity"].data)
        assert security.security_infos.pace
    else:
        assert "MF/EF.CardAccess" not in files


def test_clone_and_forgery() -> None:
    card = issued("cnie").data
    clone = clone_card(card)
    assert clone.secrets.aa_key is None
    assert clone.secrets.ca_key is None
    assert clone.files == card.files
    forged = forge_card(card)
    path = f"{APP}/DG1"
    assert forged.files.files()[path].data != card.files.files()[path].data
    assert "FORGED" in str(parse_dg1(forged.files.files()[path].data).primary_identifier)
    other = forge_card(card, data_group=11)
    assert other.files.files()[f"{APP}/DG11"].data != card.files.files()[f"{APP}/DG11"].data
    with pytest.raises(ConfigurationError):
        forge_card(issued("pace-im").data, data_group=15)


def test_unknown_profile_and_bad_can() -> None:
    with pytest.raises(ConfigurationError, match="unknown card profile"):
        profile("passport")
    with pytest.raises(ConfigurationError):
        issue_card("cnie", clock=FixedClock.at(NOW), can="12345")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    card = issued("cnie")
    save_card(card, tmp_path / "card")
    loaded = load_card(tmp_path / "card")
    assert loaded.profile == card.data.profile
    assert loaded.files == card.data.files
    assert loaded.secrets.mrz_information == card.data.secrets.mrz_information
    assert loaded.secrets.can == card.data.secrets.can
    assert isinstance(loaded.secrets.aa_key, ec.EllipticCurvePrivateKey)
    original = card.data.secrets.aa_key
    assert isinstance(original, ec.EllipticCurvePrivateKey)
    assert loaded.secrets.aa_key.private_numbers() == original.private_numbers()
    assert (tmp_path / "card" / "trust" / "csca.der").read_bytes() == card.csca
    assert (tmp_path / "card" / "trust" / "masterlist.ml").read_bytes() == card.master_list
    assert (tmp_path / "card" / "keys" / "aa.pem").stat().st_mode & 0o077 == 0
    # A clone saved over it loses the keys.
    save_card(clone_card(card.data), tmp_path / "card")
    assert not (tmp_path / "card" / "keys" / "aa.pem").exists()
    assert load_card(tmp_path / "card").secrets.aa_key is None


def test_load_refuses_broken_directories(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        load_card(tmp_path)
    save_card(issued("passport-bac"), tmp_path / "c")
    assert isinstance(load_card(tmp_path / "c").secrets.aa_key, rsa.RSAPrivateKey)
    text = (tmp_path / "c" / "card.json").read_text("utf-8")
    (tmp_path / "c" / "card.json").write_text(text.replace('"format": 1', '"format": 99'))
    with pytest.raises(ConfigurationError, match="format"):
        load_card(tmp_path / "c")
    (tmp_path / "c" / "card.json").write_text("{")
    with pytest.raises(ConfigurationError):
        load_card(tmp_path / "c")


def test_cli_issue_then_emulate(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "card"
    result = runner.invoke(
        main, ["card", "issue", "--profile", "passport-bac", "--out", str(out), "--mode", "clone"]
    )
    assert result.exit_code == 0, result.output
    assert "passport-bac" in result.output
    assert (out / "trust" / "masterlist.ml").exists()
    assert not (out / "keys" / "aa.pem").exists()
    result = runner.invoke(main, ["card", "emulate", str(out), "--duration", "0.2"])
    assert result.exit_code == 0, result.output
    assert "udp:127.0.0.1:" in result.output
    result = runner.invoke(main, ["card", "emulate", str(out), "--udp", "0.0.0.0:45678"])
    assert result.exit_code == 2
    assert "loopback" in result.output
    result = runner.invoke(main, ["card", "emulate", str(out), "--udp", "a", "--vpcd", "b"])
    assert result.exit_code == 2


def test_cli_issue_with_can_and_mrz_fields(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cnie"
    result = runner.invoke(
        main,
        [
            "card",
            "issue",
            "--profile",
            "cnie",
            "--can",
            "654321",
            "--out",
            str(out),
            "--document-number",
            "ZZ9876543",
            "--mode",
            "forgery",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "654321" in result.output
    data = load_card(out)
    assert data.secrets.can == "654321"
    assert data.secrets.mrz_information.startswith("ZZ9876543")
    result = runner.invoke(main, ["card", "issue", "--can", "12", "--out", str(out)])
    assert result.exit_code == 2


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=100)
@given(_json, st.booleans())
@example(document="DEEP", keep_format=False)
def test_load_card_raises_only_configuration_errors(document: object, keep_format: bool) -> None:
    import json  # noqa: PLC0415 (local to this test)
    import tempfile  # noqa: PLC0415

    if keep_format and isinstance(document, dict):
        document["format"] = 1
    with tempfile.TemporaryDirectory() as directory:
        # "DEEP": arrays nested past the JSON parser's recursion limit (was RecursionError).
        text = "[" * 100_000 if document == "DEEP" else json.dumps(document)
        Path(directory, "card.json").write_text(text)
        with pytest.raises(ConfigurationError):
            load_card(directory)

"""Dumps: files read from a chip, written and served again (issue 16 items 4 and 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.card import (
    DumpFiles,
    VirtualCard,
    card_from_dump,
    issue_card,
    read_dump,
    write_dump,
)
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.reader import DocumentRead, DocumentReader
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.nfc.verify import CheckStatus
from macnss_auth.testing import FixedClock, FixedRandom

from .conftest import NOW, issued

SPECIMEN = Path(__file__).resolve().parents[2] / "vectors" / "bsi2008"


def read(card: VirtualCard, password: MrzKey | CAN) -> DocumentRead:
    reader = DocumentReader(MemoryTransport(card), random=FixedRandom(2))
    return reader.read(password, active_auth_challenge=bytes(range(8)))


def test_the_specimen_is_found_under_its_names() -> None:
    dump = read_dump(SPECIMEN)
    assert sorted(dump.data_groups) == [1, 2, 3, 4, 14, 15]
    assert dump.sod == (SPECIMEN / "EF_SOD.bin").read_bytes()
    assert dump.com == (SPECIMEN / "EF_COM.bin").read_bytes()
    assert dump.card_access is None


@pytest.mark.parametrize("name", ["DG1.bin", "ef_dg1.bin", "Datagroup1.dat", "EF.DG1.BIN"])
def test_naming_variants(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"\x61\x00")
    (tmp_path / "SOD.bin").write_bytes(b"\x77\x00")
    (tmp_path / "EF_CardAccess.bin").write_bytes(b"\x31\x00")
    (tmp_path / "notes.txt").write_text("ignored")
    dump = read_dump(tmp_path)
    assert dump.data_groups == {1: b"\x61\x00"}
    assert dump.card_access == b"\x31\x00"


def test_two_files_for_one_data_group_are_refused(tmp_path: Path) -> None:
    (tmp_path / "DG1.bin").write_bytes(b"a")
    (tmp_path / "Datagroup1.bin").write_bytes(b"b")
    with pytest.raises(ConfigurationError, match="two files for DG1"):
        read_dump(tmp_path)


def test_a_dump_without_sod_or_dg1_cannot_be_served(tmp_path: Path) -> None:
    (tmp_path / "DG1.bin").write_bytes((SPECIMEN / "Datagroup1.bin").read_bytes())
    with pytest.raises(ConfigurationError, match=r"DG1 and EF\.SOD"):
        card_from_dump(tmp_path)
    with pytest.raises(ConfigurationError, match="BAC or PACE"):
        card_from_dump(SPECIMEN, pace=False, bac=False)
    with pytest.raises(ConfigurationError, match="six digits"):
        card_from_dump(SPECIMEN, can="12")


def test_a_read_written_and_served_again_is_a_clone(tmp_path: Path) -> None:
    """What `card read --save` writes serves back byte for byte -- without the chip's keys."""
    card = issued("cnie")
    first = read(VirtualCard(card.data, random=FixedRandom(1)), CAN("123456"))
    assert first.active_auth_challenge is not None
    written = write_dump(
        tmp_path,
        DumpFiles(
            first.data_groups,
            sod=first.files["SOD"],
            com=first.files["COM"],
            card_access=first.card_access,
            aa_challenge=first.active_auth_challenge,
            aa_signature=first.active_auth_signature,
        ),
    )
    assert {p.name for p in written} >= {"CardAccess.bin", "AA_challenge.bin", "DG15.bin"}
    again = read_dump(tmp_path)
    assert again.aa_signature == first.active_auth_signature
    served = card_from_dump(again)
    assert served.profile.pace_protocol is not None  # CardAccess.bin: PACE
    second = read(VirtualCard(served, random=FixedRandom(3)), CAN("123456"))
    assert dict(second.files) == dict(first.files)
    store = TrustStore()
    store.load_master_list(card.master_list, trust_as_is=True)
    result = second.verify(store, clock=FixedClock.at(NOW))
    assert result.status("dg1_hash") is CheckStatus.PASSED
    assert result.status("sod_signature") is CheckStatus.PASSED
    assert not result.genuine
    assert result.check("chip_authentication").status_word == 0x6A88
    assert result.check("active_authentication").status_word == 0x6A88


def _flip(data: bytes, position: int, bit: int) -> bytes:
    out = bytearray(data)
    if out:
        out[position % len(out)] ^= 1 << bit
    return bytes(out)


@pytest.mark.slow
@given(
    which=st.sampled_from(["DG1", "SOD", "COM", "card_access"]),
    position=st.integers(0, 2000),
    bit=st.integers(0, 7),
    cut=st.none() | st.integers(0, 100),
    can=st.sampled_from(["123456", "²²²²²²", "١٢٣٤٥٦", None]),
)
def test_a_damaged_dump_serves_a_card_or_is_a_configuration_error(
    which: str, position: int, bit: int, cut: int | None, can: str | None
) -> None:
    dump = read_dump(SPECIMEN)
    files = {"DG1": dump.data_groups[1], "SOD": dump.sod or b"", "COM": dump.com or b"",
             "card_access": b"\x31\x00"}  # fmt: skip
    damaged = _flip(files[which], position, bit)
    files[which] = damaged[:cut] if cut is not None else damaged
    groups = {**dump.data_groups, 1: files["DG1"]}
    edited = DumpFiles(groups, sod=files["SOD"], com=files["COM"], card_access=files["card_access"])
    try:
        data = card_from_dump(edited, can=can)
    except ConfigurationError:
        return
    VirtualCard(data, random=FixedRandom(1))


@pytest.mark.parametrize("can", ["²²²²²²", "١٢٣٤٥٦"])
def test_a_can_of_non_ascii_digits_is_a_configuration_error(can: str) -> None:
    # isdigit() admits them, and the card's PACE encoded the CAN as ASCII (UnicodeEncodeError).
    with pytest.raises(ConfigurationError, match="six digits"):
        card_from_dump(SPECIMEN, can=can)
    with pytest.raises(ConfigurationError, match="six digits"):
        issue_card("cnie", clock=FixedClock.at(NOW), can=can)
    with pytest.raises(ConfigurationError, match="PIN"):
        issue_card("eid-pin", clock=FixedClock.at(NOW), pin="١٢٣٤٥٦")

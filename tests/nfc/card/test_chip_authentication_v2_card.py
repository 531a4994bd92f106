"""Issuing a virtual card with Chip Authentication version 2, saving it, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from macnss_auth.cli import main
from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.card import VirtualCard, issue_card, load_card, save_card
from macnss_auth.nfc.card.profiles import profile
from macnss_auth.nfc.lds import parse_dg14
from macnss_auth.nfc.mrz import CAN
from macnss_auth.nfc.reader import DocumentReader
from macnss_auth.nfc.securityinfos import ChipAuthenticationInfo
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.testing import FixedClock, FixedRandom

from .conftest import NOW


def dg14_versions(data_files: dict[str, bytes]) -> list[int]:
    infos = parse_dg14(data_files["DG14"]).infos
    return [i.version for i in infos if isinstance(i, ChipAuthenticationInfo)]


def files_by_name(card: object) -> dict[str, bytes]:
    return {f.name: f.data for f in card.data.files.files().values()}  # type: ignore[attr-defined]


def test_the_issuer_option_and_the_profile_field_give_the_same_card_shape() -> None:
    clock = FixedClock.at(NOW)
    by_option = issue_card("cnie", clock=clock, chip_authentication_version=2)
    by_profile = issue_card(
        attrs.evolve(profile("cnie"), chip_authentication_version=2), clock=clock
    )
    for card in (by_option, by_profile):
        assert card.data.profile.chip_authentication_version == 2
        assert dg14_versions(files_by_name(card)) == [2]
    default = issue_card("cnie", clock=clock)
    assert dg14_versions(files_by_name(default)) == [1]


def test_a_v2_card_survives_save_and_load(tmp_path: Path) -> None:
    card = issue_card("ca-dh", clock=FixedClock.at(NOW), chip_authentication_version=2)
    save_card(card, tmp_path)
    loaded = load_card(tmp_path)
    assert loaded.profile == card.data.profile
    assert loaded.profile.chip_authentication_version == 2
    transport = MemoryTransport(VirtualCard(loaded, random=FixedRandom(1)))
    document = DocumentReader(transport, random=FixedRandom(2)).read(CAN("123456"))
    assert document.chip_authentication_proved


def test_cards_saved_before_ca_v2_load_as_version_1(tmp_path: Path) -> None:
    save_card(issue_card("cnie", clock=FixedClock.at(NOW)), tmp_path)
    (card_json,) = tmp_path.glob("card.json")
    raw = json.loads(card_json.read_text())
    del raw["profile"]["chip_authentication_version"]
    card_json.write_text(json.dumps(raw))
    assert load_card(tmp_path).profile.chip_authentication_version == 1


@pytest.mark.parametrize("version", [0, 3, True, "2"])
def test_an_unknown_version_is_a_configuration_error(version: object) -> None:
    with pytest.raises(ConfigurationError):
        attrs.evolve(profile("cnie"), chip_authentication_version=version)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        issue_card("cnie", clock=FixedClock.at(NOW), chip_authentication_version=version)  # type: ignore[arg-type]


def test_a_profile_without_chip_authentication_takes_no_version() -> None:
    with pytest.raises(ConfigurationError, match="no Chip Authentication"):
        issue_card("pace-im", clock=FixedClock.at(NOW), chip_authentication_version=2)


def test_after_the_read_the_chip_talks_under_the_ca_v2_keys() -> None:
    card = issue_card("ca-dh", clock=FixedClock.at(NOW), chip_authentication_version=2)
    virtual = VirtualCard(card.data, random=FixedRandom(1))
    document = DocumentReader(MemoryTransport(virtual), random=FixedRandom(2)).read(CAN("123456"))
    assert document.chip_authentication == "CA"
    assert virtual.session == "CA"


def test_cli_issues_a_ca_v2_card(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "card"
    result = runner.invoke(
        main, ["card", "issue", "--profile", "ca-dh", "--ca-version", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert load_card(out).profile.chip_authentication_version == 2
    refused = runner.invoke(
        main, ["card", "issue", "--profile", "pace-im", "--ca-version", "2", "--out", str(out)]
    )
    assert refused.exit_code == 2
    assert "no Chip Authentication" in refused.output

"""`macnss-auth card read` and `macnss-auth kiosk` as a person runs them, over nfcpy's udp link."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from macnss_auth.clock import SystemClock
from macnss_auth.nfc.card import VirtualCard, forge_card, issue_card, load_card, save_card
from macnss_auth.nfc.lds import parse_dg2
from macnss_auth.nfc.serve import UdpCardServer
from macnss_auth.testing import FixedRandom

CLI = [sys.executable, "-m", "macnss_auth"]


@pytest.fixture(scope="module")
def card_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("card")
    save_card(issue_card("cnie", clock=SystemClock(), can="123456"), directory)
    return directory


@pytest.fixture
def served(card_dir: Path) -> Iterator[str]:
    card = VirtualCard(load_card(card_dir), random=FixedRandom(1))
    with UdpCardServer(card) as server:
        yield server.device_path


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_card_read_json_is_genuine(served: str, card_dir: Path, tmp_path: Path) -> None:
    face = tmp_path / "face.jpg"
    done = run(
        "card", "read", "--device", served, "--can", "123456",
        "--trust", str(card_dir / "trust"), "--json", "--face", str(face),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["genuine"] is True
    assert summary["dg1"]["document_number"].rstrip("<") == "AB1234567"
    assert summary["dg1"]["surname"].rstrip("<") == "BENANI"
    card = load_card(card_dir)
    dg2 = next(ef.data for ef in card.files.files().values() if ef.name == "DG2")
    assert face.read_bytes() == parse_dg2(dg2).faces[0].image


def test_card_read_of_a_forgery_exits_1(card_dir: Path, tmp_path: Path) -> None:
    forged_dir = tmp_path / "forged"
    save_card(forge_card(load_card(card_dir)), forged_dir)
    card = VirtualCard(load_card(forged_dir), random=FixedRandom(1))
    with UdpCardServer(card) as server:
        done = run(
            "card", "read", "--device", server.device_path, "--can", "123456",
            "--trust", str(card_dir / "trust"),
        )  # fmt: skip
    assert done.returncode == 1
    assert "NOT GENUINE" in done.stdout
    assert "dg1_hash" in done.stdout


def test_kiosk_verifies_then_exits(served: str, card_dir: Path) -> None:
    done = run(
        "kiosk", "--device", served, "--trust", str(card_dir / "trust"), "--once",
        stdin="123456\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Card verified" in done.stdout
    assert "Carte vérifiée" in done.stdout
    assert "FATIMA ZAHRA BENANI" in done.stdout


def test_kiosk_offers_fallbacks_after_a_wrong_can(served: str, card_dir: Path) -> None:
    done = run(
        "kiosk", "--device", served, "--trust", str(card_dir / "trust"), "--once",
        stdin="000000\n",
    )  # fmt: skip
    assert done.returncode == 1
    assert "Wrong number" in done.stdout
    assert "You can also sign in with: totp, sms, email" in done.stdout


def test_card_read_refuses_two_passwords(served: str) -> None:
    done = run("card", "read", "--device", served, "--can", "123456", "--mrz", "A:1:2")
    assert done.returncode == 2
    assert "exactly one of --can and --mrz" in done.stderr


def test_card_read_asks_for_the_can_without_echo(served: str, card_dir: Path) -> None:
    done = run(
        "card", "read", "--device", served, "--trust", str(card_dir / "trust"), "--json",
        stdin="123456\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "CAN (6 digits, printed on the card):" in done.stderr
    assert "card): 123456" not in done.stderr

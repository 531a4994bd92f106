"""`macnss-auth card read --pin`: the PIN is asked without echo and never printed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from macnss_auth.clock import SystemClock
from macnss_auth.nfc.card import VirtualCard, issue_card, load_card, save_card
from macnss_auth.nfc.serve import UdpCardServer
from macnss_auth.testing import FixedRandom

CLI = [sys.executable, "-m", "macnss_auth"]
PIN_DIGITS = "482916"


@pytest.fixture(scope="module")
def card_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pin-card")
    save_card(issue_card("eid-pin", clock=SystemClock(), pin=PIN_DIGITS), directory)
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


def test_card_read_with_the_pin(served: str, card_dir: Path) -> None:
    done = run(
        "card", "read", "--device", served, "--pin", "--trust", str(card_dir / "trust"),
        stdin=PIN_DIGITS + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "GENUINE" in done.stdout
    assert "PIN" in done.stderr  # the prompt
    assert PIN_DIGITS not in done.stdout + done.stderr  # hidden input is not echoed


def test_card_read_with_a_wrong_pin_says_how_many_tries_are_left(served: str) -> None:
    done = run("card", "read", "--device", served, "--pin", stdin="111111\n")
    assert done.returncode == 1
    assert "AccessDenied" in done.stderr
    assert "2 tries left" in done.stderr
    assert "111111" not in done.stdout + done.stderr


def test_card_read_refuses_a_pin_with_another_password(served: str) -> None:
    done = run("card", "read", "--device", served, "--pin", "--can", "123456")
    assert done.returncode == 2
    assert "--pin" in done.stderr


def test_card_read_refuses_a_malformed_pin(served: str) -> None:
    done = run("card", "read", "--device", served, "--pin", stdin="12a\n")
    assert done.returncode == 2
    assert "12a" not in done.stdout + done.stderr


def test_kiosk_with_the_pin(served: str, card_dir: Path) -> None:
    done = run(
        "kiosk", "--device", served, "--trust", str(card_dir / "trust"), "--once", "--pin",
        stdin=PIN_DIGITS + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Enter your PIN" in done.stdout + done.stderr  # getpass prompts on the tty or stderr
    assert "Card verified" in done.stdout
    assert PIN_DIGITS not in done.stdout + done.stderr

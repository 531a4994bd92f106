"""`macnss-auth card read` and `macnss-auth kiosk` as a person runs them, over nfcpy's udp link."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from macnss_auth.clock import SystemClock
from macnss_auth.nfc.card import VirtualCard, forge_card, issue_card, load_card, save_card
from macnss_auth.nfc.lds import parse_dg2
from macnss_auth.nfc.serve import UdpCardServer, free_udp_port
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
    # The fallbacks by their names in each language, never raw method names.
    assert (
        "You can also sign in with: Code from an authenticator app, Code by SMS, Code by e-mail"
        in done.stdout
    )
    assert "totp" not in done.stdout


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


SPECIMEN = Path(__file__).resolve().parents[1] / "vectors" / "bsi2008"


@contextlib.contextmanager
def emulating(*args: str) -> Iterator[tuple[str, str]]:
    """``macnss-auth card emulate ARGS`` on a free loopback port; yields the path and its output."""
    port = free_udp_port()
    with subprocess.Popen(
        [*CLI, "card", "emulate", *args, "--udp", f"127.0.0.1:{port}", "--duration", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline()]
            while lines[-1] and "emulating" not in lines[-1]:
                lines.append(process.stdout.readline())
            assert "emulating" in lines[-1], lines
            yield f"udp:127.0.0.1:{port}", "".join(lines)
        finally:
            process.terminate()
            process.communicate(timeout=30)


@pytest.mark.parametrize(
    ("access", "password"),
    [
        ("pace", ["--can", "123456"]),
        ("pace", ["--mrz", "C11T002JM:960812:131031"]),
        ("bac", ["--mrz", "C11T002JM:960812:131031"]),
    ],
)
def test_the_bsi_specimen_served_from_files_reads_to_a_verdict(
    access: str, password: list[str], tmp_path: Path
) -> None:
    """Issue 16 item 4: a real issuer's files, served with their own SOD, never an exception."""
    face = tmp_path / "face.jp2"
    with emulating("--files", str(SPECIMEN), "--access", access) as (device, _):
        done = run("card", "read", "--device", device, *password, "--json", "--face", str(face))
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert summary["genuine"] is False
    assert summary["access"] == access.upper()
    assert summary["dg1"]["surname"] == "MUSTERMANN"
    assert summary["dg1"]["given_names"].rstrip("<") == "ERIKA"
    checks = {c["name"]: c for c in summary["checks"]}
    assert checks["dg1_hash"]["status"] == "passed"
    assert checks["dg2_hash"]["status"] == "passed"
    assert checks["chain"]["status"] == "failed"
    assert "CSCA BDR TEST" in checks["chain"]["reason"]
    ca = checks["chip_authentication"]
    assert ca["status"] in ("failed", "not-performed")
    # Nobody has the key: this library lacks the curve, or the card (a dump) refuses (6A88).
    assert "brainpoolP224r1" in ca["reason"] or ca.get("status_word") == "6A88"
    # The JPEG 2000 face: its header decodes to the image's real size.
    assert summary["face"]["type"] == "image/jp2"
    assert (summary["face"]["width"], summary["face"]["height"]) == (413, 531)
    specimen_face = parse_dg2((SPECIMEN / "Datagroup2.bin").read_bytes()).faces[0].image
    assert face.read_bytes() == specimen_face
    with Image.open(face) as decoded:  # OpenJPEG decodes the whole codestream
        decoded.load()
        assert decoded.size == (413, 531)
        assert decoded.mode == "RGB"


def test_card_emulate_needs_a_card_or_files() -> None:
    done = run("card", "emulate", "--duration", "0")
    assert done.returncode == 2
    assert "--files" in done.stderr


def test_card_emulate_a_quirk_profile_by_name(tmp_path: Path) -> None:
    """A quirk profile served by name (wrong Le answered 6Cxx) reads genuine."""
    with emulating("--profile", "wrong-le-6cxx", "--trust-out", str(tmp_path)) as (device, out):
        mrz = out.split("MRZ key ")[1].split()[0]
        done = run(
            "card", "read", "--device", device, "--mrz", mrz,
            "--trust", str(tmp_path / "trust"), "--json",
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["genuine"] is True


def test_card_read_save_then_document_verify(served: str, card_dir: Path, tmp_path: Path) -> None:
    """Issue 16 item 8: a dump written by `card read --save` is what `document verify` takes."""
    saved = tmp_path / "dump"
    done = run(
        "card", "read", "--device", served, "--can", "123456",
        "--trust", str(card_dir / "trust"), "--json", "--save", str(saved),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = {p.name for p in saved.iterdir()}
    assert {"EF_COM.bin", "EF_SOD.bin", "DG1.bin", "DG2.bin", "DG14.bin", "DG15.bin"} <= names
    assert {"CardAccess.bin", "AA_challenge.bin", "AA_signature.bin"} <= names
    verified = run(
        "document", "verify", str(saved), "--csca", str(card_dir / "trust"),
        "--masterlist", str(card_dir / "trust" / "masterlist.ml"), "--json",
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "master list masterlist.ml: signer chains to a --csca" in verified.stderr
    body = json.loads(verified.stdout)
    assert body["genuine"] is True
    checks = {c["name"]: c["status"] for c in body["checks"]}
    assert checks["active_authentication"] == "passed"
    assert body["dg1"] == json.loads(done.stdout)["dg1"]
    text = run(
        "document", "verify", str(saved), "--masterlist", str(card_dir / "trust" / "masterlist.ml"),
        "--trust-as-is",
    )  # fmt: skip
    assert "FATIMA ZAHRA BENANI" in text.stdout
    assert "GENUINE" in text.stdout

"""``macnss-auth totp``: enroll, confirm and verify on the default SQLite store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner

from macnss_auth.cli import main
from macnss_auth.cli.home import HOME_ENV, KEY_ENV


def _secret(output: str) -> str:
    match = re.search(r"^Secret: ([A-Z2-7 ]+)$", output, re.MULTILINE)
    assert match is not None, output
    return match.group(1).replace(" ", "")


def _code(secret: str, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(int(time.time()) + 30 * steps)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv(HOME_ENV, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)
    return CliRunner()


def test_enroll_confirm_verify(runner: CliRunner, tmp_path: Path) -> None:
    home = ["--home", str(tmp_path)]
    svg, png = tmp_path / "qr.svg", tmp_path / "qr.png"
    enrolled = runner.invoke(
        main,
        [
            "totp",
            "enroll",
            "alice",
            *home,
            "--issuer",
            "CNSS",
            "--svg",
            str(svg),
            "--png",
            str(png),
        ],
    )
    assert enrolled.exit_code == 0, enrolled.output
    assert "█" in enrolled.output  # the QR code, drawn in the terminal
    assert "otpauth://totp/CNSS:alice?secret=" in enrolled.output
    secret = _secret(enrolled.output)
    assert f"secret={secret}&" in enrolled.output
    assert svg.read_text().lstrip().startswith("<svg")
    assert png.read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "state.sqlite3").exists()
    # The audit log lives in the store's file: one commit per verification.
    assert not (tmp_path / "audit.sqlite3").exists()
    assert (tmp_path / "keyring.key").stat().st_mode & 0o077 == 0

    # Not confirmed yet: verification fails.
    refused = runner.invoke(main, ["totp", "verify", "alice", _code(secret), *home])
    assert refused.exit_code == 1
    assert "invalid_code" in refused.output

    confirmed = runner.invoke(main, ["totp", "confirm", "alice", _code(secret, -1), *home])
    assert confirmed.exit_code == 0, confirmed.output
    again = runner.invoke(main, ["totp", "confirm", "alice", _code(secret), *home])
    assert again.exit_code == 1
    assert "not_enrolled" in again.output

    code = _code(secret, 1)
    accepted = runner.invoke(main, ["totp", "verify", "alice", code[:3] + " " + code[3:], *home])
    assert accepted.exit_code == 0, accepted.output
    assert "accepted: alice" in accepted.output
    replayed = runner.invoke(main, ["totp", "verify", "alice", code, *home])
    assert replayed.exit_code == 1
    assert "replayed" in replayed.output

    malformed = runner.invoke(main, ["totp", "verify", "alice", "12a456", *home])
    assert malformed.exit_code == 2
    assert "only digits" in malformed.output
    unknown = runner.invoke(main, ["totp", "verify", "nobody", "123456", *home])
    assert unknown.exit_code == 1


def test_options_are_checked(runner: CliRunner, tmp_path: Path) -> None:
    home = ["--home", str(tmp_path)]
    result = runner.invoke(main, ["totp", "enroll", "alice", *home, "--digits", "9"])
    assert result.exit_code == 2
    result = runner.invoke(main, ["totp", "enroll", "alice", *home, "--account", "a:b"])
    assert result.exit_code == 2
    result = runner.invoke(
        main,
        ["totp", "enroll", "alice", *home, "--no-qr", "--algorithm", "sha256", "--digits", "8"],
    )
    assert result.exit_code == 0
    assert "█" not in result.output
    assert "algorithm=SHA256&digits=8" in result.output


def test_subprocess_with_the_home_from_the_environment(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("macnss-auth")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "macnss_auth.cli"]
    env = {k: v for k, v in os.environ.items() if k not in (HOME_ENV, KEY_ENV)}
    env[HOME_ENV] = str(tmp_path / "home")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, "totp", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    enrolled = run("enroll", "bob", "--no-qr")
    assert enrolled.returncode == 0, enrolled.stderr
    secret = _secret(enrolled.stdout)
    assert (tmp_path / "home" / "state.sqlite3").exists()
    assert run("confirm", "bob", _code(secret)).returncode == 0
    wrong = f"{(int(_code(secret, 1)) + 1) % 1_000_000:06d}"
    failed = run("verify", "bob", wrong)
    assert failed.returncode == 1
    assert "refused: invalid_code" in failed.stderr
    assert run("verify", "bob", _code(secret, 1)).returncode == 0

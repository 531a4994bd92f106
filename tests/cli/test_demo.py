"""`make demo` runs `macnss-auth demo`: the whole journey must work on a clean directory, twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end_and_again(tmp_path: Path) -> None:
    home = tmp_path / "demo-data"
    for _ in range(2):  # a second run starts from fresh state with the same keys
        done = subprocess.run(
            [sys.executable, "-m", "macnss_auth", "demo", "--home", str(home)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        assert "FATIMA ZAHRA BENANI: HIGH assurance" in out
        # Her own phone: the server ran Chip Authentication through it (split mode).
        assert "fatima: HIGH assurance (active_authentication,chip_authentication_remote)" in out
        assert "karim: SUBSTANTIAL assurance by passkey" in out
        assert "youssef: LOW assurance by sms" in out
        assert "amina: SUBSTANTIAL assurance by totp" in out
        assert "refused (replayed)" in out
        assert "next method for Fatima: totp" in out
        assert "hash chain intact" in out
    # The audit log lives in the store's file (one commit per decision).
    assert not (home / "audit.sqlite3").exists()
    verify = subprocess.run(
        [sys.executable, "-m", "macnss_auth", "audit", "verify", str(home / "state.sqlite3")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_demo_without_the_passkey_extra_says_so_and_runs_the_rest(tmp_path: Path) -> None:
    # None in sys.modules makes `import macnss_auth.passkey` raise ImportError, as a
    # venv without py_webauthn does.
    script = (
        "import sys; sys.modules['macnss_auth.passkey'] = None; "
        "from macnss_auth.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "demo", "--home", str(tmp_path / "demo-data")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "policy order: eid > totp > sms > email" in done.stdout
    assert "skipped: install the passkey extra" in done.stdout
    assert "amina: SUBSTANTIAL assurance by totp" in done.stdout
    assert "hash chain intact" in done.stdout

"""The core installs without the card-reader extras, and works.

A fresh virtual environment gets the project as its wheel (built from this
tree) with only the core dependencies from PyPI (pip's cache makes reruns
fast); then a TOTP enrollment and sign-in run in it, and both transports say
which extra they need. This is what a server that only checks codes installs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.store.services import unavailable

ROOT = Path(__file__).resolve().parents[1]

# pip's words for "PyPI cannot be reached" (not for a packaging mistake, which must fail).
_OFFLINE = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable")

_SCRIPT = textwrap.dedent(
    """
    import base64, importlib.util

    import pyotp

    import macnss_auth
    from macnss_auth import MemoryStore, MissingExtra, TotpAuthenticator
    from macnss_auth.audit import MemoryAuditLog
    from macnss_auth.nfc.transports import NfcpyTransport, PcscTransport
    from macnss_auth.testing import FixedClock, FixedRandom

    assert importlib.util.find_spec("nfc") is None, "nfcpy came with the core"
    assert importlib.util.find_spec("smartcard") is None, "pyscard came with the core"
    assert macnss_auth.__file__.startswith(__import__("sys").prefix), macnss_auth.__file__

    clock = FixedClock.at(1_800_000_000)
    totp = TotpAuthenticator(
        store=MemoryStore(), audit=MemoryAuditLog(), clock=clock, random=FixedRandom(1)
    )
    seed = b"12345678901234567890"
    totp.enroll("alice", secret=seed)
    code = pyotp.TOTP(base64.b32encode(seed).decode()).at(clock.now())
    totp.confirm("alice", code)
    clock.advance(30)
    challenge = totp.begin("alice")
    code = pyotp.TOTP(base64.b32encode(seed).decode()).at(clock.now())
    assert totp.verify(challenge, code).subject == "alice"

    transports = ((NfcpyTransport("usb", timeout=0.1), "nfc"), (PcscTransport(0), "pcsc"))
    for transport, extra in transports:
        try:
            transport.connect()
        except MissingExtra as exc:
            assert exc.extra == extra, exc.extra
            assert f"macnss-auth[{extra}]" in str(exc), str(exc)
        else:
            raise AssertionError(f"{transport!r} connected without its extra")
    print("core-ok")
    """
)


def _run(*args: str | Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_core_installs_without_nfcpy_and_verifies_a_totp_code(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    # The outer pip installs into the new environment (no pip bootstrap inside it).
    installed = _run(
        sys.executable, "-m", "pip", "--python", python, "install", "-q",
        "--disable-pip-version-check", ROOT,
    )  # fmt: skip
    if installed.returncode != 0 and any(word in installed.stderr for word in _OFFLINE):
        unavailable("PyPI is unreachable: cannot install the core dependencies")
    assert installed.returncode == 0, installed.stderr[-3000:]
    listed = _run(sys.executable, "-m", "pip", "--python", python, "list", "--format=freeze")
    names = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert "macnss-auth" in names
    assert not names & {"nfcpy", "pyscard", "pyusb", "pyserial", "libusb1", "ndeflib"}, names
    ran = _run(python, "-I", "-c", _SCRIPT, timeout=60)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.strip() == "core-ok"
    # The command line loads every command group without the extras.
    helped = _run(venv / "bin" / "macnss-auth", "--help", timeout=60)
    assert helped.returncode == 0, helped.stderr[-3000:]
    assert "totp" in helped.stdout

"""The three serving paths as context managers that yield a reader-side Transport.

* ``memory``: :class:`~macnss_auth.nfc.serve.MemoryTransport`.
* ``udp``: the card as an ISO 14443-4 target on nfcpy's udp link; the reader is
  the library's :class:`~macnss_auth.nfc.transports.nfcpy.NfcpyTransport`
  (``nfc.ContactlessFrontend('udp:...')`` and ``Type4Tag.transceive``).
* ``vpcd``: the card connected to pcscd's vpcd driver; the reader is the library's
  :class:`~macnss_auth.nfc.transports.pcsc.PcscTransport` (pyscard).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from macnss_auth.nfc.card import FaultPlan, VirtualCard
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.serve import VPCD_PORT, MemoryTransport, UdpCardServer, VpcdCardClient
from macnss_auth.nfc.serve.vpcd import ABSENCE_AFTER_FAULT
from macnss_auth.nfc.transports.nfcpy import NfcpyTransport
from macnss_auth.nfc.transports.pcsc import PcscTransport

VPCD_READER = "Virtual PCD 00 00"
#: The card tests use vpcd's second slot (port 35964), so that they do not share a slot
#: with other suites that use the first one, should two test runs overlap on one machine.
CARD_TESTS_READER = "Virtual PCD 00 01"
CARD_TESTS_PORT = VPCD_PORT + 1
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")


def _readers() -> list[str]:
    try:
        from smartcard.System import readers  # noqa: PLC0415 (needs pcscd; imported when used)
    except ImportError:
        skip_or_fail("pyscard is not installed (the pcsc extra)")
        return []
    try:
        return [str(r) for r in readers()]
    except Exception:  # noqa: BLE001 (pyscard raises its own hierarchy; none means no pcscd)
        return []


class PcscdService:
    """pcscd for the tests: reuse a running one, or start ``pcscd -f`` and stop it after."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if VPCD_READER in _readers():
            return
        pcscd = shutil.which("pcscd")
        if pcscd is None or not VPCD_DRIVER.exists():
            skip_or_fail(
                "pcscd and vsmartcard-vpcd are needed (apt-get install pcscd vsmartcard-vpcd)"
            )
        self.process = subprocess.Popen(
            [str(pcscd), "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if VPCD_READER in _readers():
                return
            time.sleep(0.05)
        self.stop()
        skip_or_fail("pcscd started but the Virtual PCD reader did not appear")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - pcscd ignores SIGTERM
                process.kill()
                process.wait(timeout=10)


def skip_or_fail(reason: str) -> None:
    """Skip, unless MACNSS_REQUIRE_SERVICES=1 makes a missing service a failure."""
    if os.environ.get("MACNSS_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@contextlib.contextmanager
def serve(path: str, card: VirtualCard, *, faults: FaultPlan | None = None) -> Iterator[Transport]:
    """Serve ``card`` over ``path`` and yield a connected reader-side transport."""
    if path == "memory":
        yield MemoryTransport(card, faults=faults)
        return
    if path == "udp":
        with (
            UdpCardServer(card, faults=faults) as server,
            NfcpyTransport(server.device_path, timeout=5.0) as reader,
        ):
            yield reader
        return
    if path == "vpcd":
        client = VpcdCardClient(card, port=CARD_TESTS_PORT, faults=faults).start()
        try:
            if not client.wait_connected(5.0):
                skip_or_fail(f"could not connect to vpcd on 127.0.0.1:{CARD_TESTS_PORT}")
            with PcscTransport(CARD_TESTS_READER, timeout=4.0) as pcsc:
                yield pcsc
        finally:
            client.stop()
            if faults is not None and not faults.none:
                # A link broken mid-command: pcscd must see the slot empty at one of its
                # presence polls before it powers up the next card (see VpcdCardClient).
                time.sleep(ABSENCE_AFTER_FAULT)
        return
    raise ValueError(path)

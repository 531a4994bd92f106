"""The three serving paths as context managers that yield a reader-side Transport.

* ``memory``: :class:`~macnss_auth.nfc.serve.MemoryTransport`.
* ``udp``: the card as an ISO 14443-4 target on nfcpy's udp link; the reader is
  the library's :class:`~macnss_auth.nfc.transports.nfcpy.NfcpyTransport`
  (``nfc.ContactlessFrontend('udp:...')`` and ``Type4Tag.transceive``).
* ``vpcd``: the card connected to pcscd's vpcd driver; the reader is pyscard.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from macnss_auth.errors import TransportError
from macnss_auth.nfc.card import FaultPlan, VirtualCard
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.serve import VPCD_PORT, MemoryTransport, UdpCardServer, VpcdCardClient
from macnss_auth.nfc.serve.vpcd import ABSENCE_AFTER_FAULT
from macnss_auth.nfc.transports.nfcpy import NfcpyTransport

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


class PyscardTransport:
    """A minimal pyscard reader: connect to the card in one reader, transmit APDUs."""

    def __init__(self, reader: str, *, timeout: float = 4.0) -> None:
        from smartcard.System import readers  # noqa: PLC0415 (needs pcscd)

        self._connection: Any = None
        deadline = time.monotonic() + timeout
        target = next(r for r in readers() if str(r) == reader)
        connection = target.createConnection()
        while True:
            try:
                connection.connect()
                break
            except Exception as error:
                if time.monotonic() > deadline:
                    connection.release()
                    raise TransportError("no card in the Virtual PCD reader") from error
                time.sleep(0.05)
        self._connection = connection

    def transceive(self, command: bytes) -> bytes:
        if self._connection is None:
            raise TransportError("not connected")
        try:
            data, sw1, sw2 = self._connection.transmit(list(command))
        except Exception as error:
            raise TransportError("the card stopped answering") from error
        return bytes(data) + bytes([sw1, sw2])

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.disconnect()
            # Release the PC/SC context now: pyscard's destructor would otherwise try later,
            # after pcscd may have stopped, and raise inside __del__.
            with contextlib.suppress(Exception):
                connection.release()


@contextlib.contextmanager
def serve(path: str, card: VirtualCard, *, faults: FaultPlan | None = None) -> Iterator[Transport]:
    """Serve ``card`` over ``path`` and yield a connected reader-side transport."""
    if path == "memory":
        yield MemoryTransport(card, faults=faults)
        return
    if path == "udp":
        with UdpCardServer(card, faults=faults) as server:
            reader = NfcpyTransport(server.device_path, timeout=5.0)
            reader.connect()
            try:
                yield reader
            finally:
                reader.close()
        return
    if path == "vpcd":
        client = VpcdCardClient(card, port=CARD_TESTS_PORT, faults=faults).start()
        try:
            if not client.wait_connected(5.0):
                skip_or_fail(f"could not connect to vpcd on 127.0.0.1:{CARD_TESTS_PORT}")
            pyscard = PyscardTransport(CARD_TESTS_READER)
            try:
                yield pyscard
            finally:
                pyscard.close()
        finally:
            client.stop()
            if faults is not None and not faults.none:
                # A link broken mid-command: pcscd must see the slot empty at one of its
                # presence polls before it powers up the next card (see VpcdCardClient).
                time.sleep(ABSENCE_AFTER_FAULT)
        return
    raise ValueError(path)

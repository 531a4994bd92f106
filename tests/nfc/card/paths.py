"""The three serving paths as context managers that yield a reader-side Transport.

* ``memory``: :class:`~macnss_auth.nfc.serve.MemoryTransport`.
* ``udp``: the card as an ISO 14443-4 target on nfcpy's udp link; the reader is
  the library's :class:`~macnss_auth.nfc.transports.nfcpy.NfcpyTransport`
  (``nfc.ContactlessFrontend('udp:...')`` and ``Type4Tag.transceive``).
* ``vpcd``: the card linked to pcscd's vpcd driver; the reader is the library's
  :class:`~macnss_auth.nfc.transports.pcsc.PcscTransport` (pyscard). See
  :class:`PcscdService` for which pcscd, and which end of the link listens.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.card import FaultPlan, VirtualCard
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.serve import (
    VPCD_PORT,
    MemoryTransport,
    UdpCardServer,
    VpcdCardClient,
    VpcdCardServer,
)
from macnss_auth.nfc.serve.vpcd import ABSENCE_AFTER_FAULT
from macnss_auth.nfc.transports.nfcpy import NfcpyTransport
from macnss_auth.nfc.transports.pcsc import PcscTransport
from macnss_auth.testing import FixedRandom

VPCD_READER = "Virtual PCD 00 00"
#: The card tests use vpcd's second slot, so that they do not share a slot with other
#: suites that use the first one, should two test runs overlap on one machine.
CARD_TESTS_READER = "Virtual PCD 00 01"
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
#: A reused pcscd (forward mode): vpcd listens on its packaged ports, 35963 and 35964.
FORWARD_SLOTS = {VPCD_READER: VPCD_PORT, CARD_TESTS_READER: VPCD_PORT + 1}
#: Our own pcscd (reverse mode): our card servers listen, on ports below Linux's ephemeral
#: range (32768-60999). vpcd's usual 35963 lies inside it, so any outgoing connection of
#: the machine (a test's PostgreSQL client, say) may hold it as its local port, and the
#: listener then fails with "Address already in use" (seen once in a loaded run).
REVERSE_PORT = 29663
REVERSE_SLOTS = {VPCD_READER: REVERSE_PORT, CARD_TESTS_READER: REVERSE_PORT + 1}

#: reader.conf.d entry for vpcd in reverse mode: vpcd connects to 127.0.0.1 (REVERSE_PORT,
#: then the next port for its second slot) instead of listening on every address.
REVERSE_MODE_CONF = f"""FRIENDLYNAME "Virtual PCD"
DEVICENAME   127.0.0.1:0x{REVERSE_PORT:X}
LIBPATH      {VPCD_DRIVER}
CHANNELID    0x{REVERSE_PORT:X}
"""


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
    """pcscd for the tests: reuse a running one, or run one of our own on loopback only.

    * A pcscd already showing the Virtual PCD reader (a system pcscd, vpcd in
      Debian's forward mode) is reused: cards connect to it with
      :class:`VpcdCardClient`.
    * Otherwise the tests run ``pcscd -f -c DIR`` with a temporary
      reader.conf.d holding :data:`REVERSE_MODE_CONF`: vpcd connects to
      :class:`VpcdCardServer` on 127.0.0.1 and nothing listens elsewhere.
      vsmartcard 3.3 (Debian 12) aborts pcscd once a reverse link is lost
      (a fault, a stopped card), so each link gets its own pcscd, started
      after both slots listen and stopped before they close (about 0.2 s).
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.conf_dir: Path | None = None
        self.started = False

    @property
    def slots(self) -> dict[str, int]:
        """Reader name -> the port of its link, for the mode in use."""
        return REVERSE_SLOTS if self.owned else FORWARD_SLOTS

    @property
    def owned(self) -> bool:
        """Whether the tests run pcscd themselves (reverse mode) rather than reuse one."""
        return self.conf_dir is not None

    def start(self) -> None:
        if self.started:
            return
        if VPCD_READER not in _readers():
            pcscd = shutil.which("pcscd")
            if pcscd is None or not VPCD_DRIVER.exists():
                skip_or_fail(
                    "pcscd and vsmartcard-vpcd are needed (apt-get install pcscd vsmartcard-vpcd)"
                )
            self.conf_dir = Path(tempfile.mkdtemp(prefix="macnss-reader.conf.d-"))
            (self.conf_dir / "vpcd").write_text(REVERSE_MODE_CONF)
        self.started = True
        _services.append(self)

    def stop(self) -> None:
        self._stop_pcscd()
        conf_dir, self.conf_dir = self.conf_dir, None
        if conf_dir is not None:
            shutil.rmtree(conf_dir, ignore_errors=True)
        if self in _services:
            _services.remove(self)
        self.started = False

    def _start_pcscd(self) -> None:
        assert self.conf_dir is not None
        pcscd = shutil.which("pcscd")
        assert pcscd is not None
        self.process = subprocess.Popen(
            [pcscd, "-f", "-c", str(self.conf_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if VPCD_READER in _readers():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self._stop_pcscd()
        skip_or_fail("pcscd started but the Virtual PCD reader did not appear (another pcscd?)")

    def _stop_pcscd(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - pcscd ignores SIGTERM
                process.kill()
                process.wait(timeout=10)

    @contextlib.contextmanager
    def link(
        self, card: VirtualCard, *, reader: str, faults: FaultPlan | None = None
    ) -> Iterator[str]:
        """``card`` in vpcd's slot ``reader``, as long as the block runs; yields the reader name."""
        port = self.slots[reader]
        if not self.owned:
            client = VpcdCardClient(card, port=port, faults=faults).start()
            try:
                if not client.wait_connected(5.0):
                    skip_or_fail(f"could not connect to vpcd on 127.0.0.1:{port}")
                yield reader
            finally:
                client.stop()
                if faults is not None and not faults.none:
                    # A link broken mid-command: pcscd must see the slot empty at one of its
                    # presence polls before it powers up the next card (see VpcdCardClient).
                    time.sleep(ABSENCE_AFTER_FAULT)
            return
        # vpcd connects to both slots when pcscd starts: the other one gets a card of its own.
        spare = VirtualCard(card.data, random=FixedRandom(0))
        servers = [VpcdCardServer(card, port=port, faults=faults)] + [
            VpcdCardServer(spare, port=other)
            for name, other in self.slots.items()
            if name != reader
        ]
        try:
            try:
                for server in servers:
                    server.start()
            except ConfigurationError as error:  # a port is taken: another test run?
                skip_or_fail(str(error))
            self._start_pcscd()
            yield reader
        finally:
            self._stop_pcscd()
            for server in servers:
                server.stop()


_services: list[PcscdService] = []


def vpcd_card(
    card: VirtualCard, *, reader: str = VPCD_READER, faults: FaultPlan | None = None
) -> contextlib.AbstractContextManager[str]:
    """``card`` in vpcd's slot ``reader`` through the started :class:`PcscdService`.

    Forward mode (a reused pcscd): a :class:`VpcdCardClient`; reverse mode (our own
    pcscd): a :class:`VpcdCardServer`. Yields the reader name for PcscTransport.
    """
    if not _services:
        skip_or_fail("no PcscdService started (use the pcscd fixture)")
    return _services[-1].link(card, reader=reader, faults=faults)


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
        with (
            vpcd_card(card, reader=CARD_TESTS_READER, faults=faults) as name,
            PcscTransport(name, timeout=4.0) as pcsc,
        ):
            yield pcsc
        return
    raise ValueError(path)

"""Serve a virtual card to nfcpy's ``udp`` driver, as an ISO 14443-4 Type A target.

nfcpy's simulated link (``nfc.ContactlessFrontend('udp:127.0.0.1:PORT')``)
sends each frame as one UDP datagram ``b"106A <hex>"`` and ends a session
with ``b"RFOFF"``. A reader on that path runs nfcpy's genuine code: sense,
anticollision, RATS, and ``Type4Tag.transceive`` over its ISO-DEP initiator
(chaining, R(ACK)/R(NAK) retries, WTX). This module is the card end of that
link: it speaks the same datagrams on its own socket, bound to loopback only
(nfcpy's own listener would bind ``0.0.0.0``).

nfcpy quirk: its driver turns the port into a service name with
``getnameinfo`` (without ``NI_NUMERICSERV``), so a port listed in
/etc/services crashes the reader. :func:`free_udp_port` picks a port that
has no service name, and :class:`UdpCardServer` refuses one that does.

Each APDU runs in a worker thread while the server keeps the link alive with
S(WTX) requests, as a real chip does when it computes longer than the frame
waiting time.

Whatever arrives on the socket, the server keeps serving. A datagram that is
not nfcpy's format (no ``106A``, a frame not in hex or cut in the middle of a
byte), a frame longer than the 256 bytes the card announces in its ATS, or a
block the card refuses (CID/NAD, a chained command longer than any APDU) is
dropped with one warning on this module's logger -- its size and the reason,
never its bytes -- and the card stays silent, as a chip does on a frame it
cannot receive. Frames of other bit rates and types (``106B``, ``212F``: a
reader polling for other cards) are not for this card and are ignored quietly.
"""

from __future__ import annotations

import binascii
import contextlib
import logging
import re
import select
import socket
import threading
import time

from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.card.chip import ATR_HISTORICAL_BYTES, VirtualCard
from macnss_auth.nfc.card.faults import FaultInjector, FaultPlan, FrameFault
from macnss_auth.nfc.serve._lifecycle import ServingThread, card_answer, require_loopback
from macnss_auth.nfc.serve.isodep import IsoDepCard, Kind

__all__ = ["UdpCardServer", "free_udp_port", "port_has_service_name"]

_log = logging.getLogger(__name__)
_BRTY = b"106A"
#: nfcpy's other bit rates and types: ``106B``, ``212F``, ``424F``...
_OTHER_BRTY = re.compile(rb"\d{3}[A-Z]")
#: The largest frame the card takes: FSC 256 (FSCI 8 in the ATS).
_MAX_FRAME = 256
#: Large enough for any UDP datagram, so that none is silently truncated by recvfrom.
_DATAGRAM_BUFFER = 65_536


def port_has_service_name(port: int) -> bool:
    """Whether ``port`` is named in the services database (nfcpy's udp driver would crash).

    nfcpy calls ``getnameinfo`` without ``NI_DGRAM``, which looks the port up as
    TCP: 8080 (``http-alt``, TCP only in /etc/services) breaks it too.
    """
    for protocol in ("tcp", "udp"):
        try:
            socket.getservbyport(port, protocol)
        except OSError:
            continue
        return True
    return False


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A currently free loopback UDP port that has no service name."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if not port_has_service_name(port):
            return port
    raise ConfigurationError("no free UDP port without a service name")  # pragma: no cover


class UdpCardServer(ServingThread):
    """A virtual card listening on nfcpy's udp link, tap after tap, until stopped.

    Args:
        card: the card to serve.
        host: a loopback address.
        port: the UDP port (0: pick one with :func:`free_udp_port`).
        faults: faults to inject (a plan, or an injector shared with a test).
        uid: the 4-byte UID answered in anticollision.
        fwi: the frame waiting time integer announced in the ATS. The default, 11
            (about 0.62 s), is within what passports announce and leaves room for a
            loaded host: a garbage collection or a busy CPU can pause this thread for
            longer than FWI 9's 0.15 s, and the reader would then time out on a card
            that was fine (seen in CI).
    """

    _thread_name = "udp-card"

    def __init__(
        self,
        card: VirtualCard,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | FaultInjector | None = None,
        uid: bytes = bytes.fromhex("08A1B2C3"),
        fwi: int = 11,
    ) -> None:
        require_loopback(host, "the virtual card serves on loopback only (127.0.0.1 or ::1)")
        if port and port_has_service_name(port):
            raise ConfigurationError(
                f"port {port} has a service name in /etc/services; nfcpy's udp driver "
                "would crash on it: choose another"
            )
        super().__init__()
        self.card = card
        self.host = host
        self.port = port or free_udp_port(host)
        self.faults = faults if isinstance(faults, FaultInjector) else FaultInjector(faults)
        self._picc = IsoDepCard(uid=uid, fwi=fwi, historical=ATR_HISTORICAL_BYTES)
        self._socket: socket.socket | None = None
        self.taps = 0
        #: Datagrams and frames refused so far (logged one by one).
        self.refused = 0

    def __repr__(self) -> str:
        return f"UdpCardServer({self.device_path!r})"

    @property
    def device_path(self) -> str:
        """What to pass to ``nfc.ContactlessFrontend``: ``udp:HOST:PORT``."""
        return f"udp:{self.host}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------

    def _open(self) -> None:
        """Bind the socket."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError as error:
            sock.close()
            raise ConfigurationError(f"cannot bind {self.host}:{self.port}: {error}") from error
        self._socket = sock

    def _close(self) -> None:
        """Close the socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    # -- the link ----------------------------------------------------------------------

    def _send(self, frame: bytes, addr: tuple[str, int]) -> None:
        sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):  # closed by stop(), or the reader went away
                sock.sendto(_BRTY + b" " + binascii.hexlify(frame), addr)

    def _receive(self, timeout: float) -> tuple[bytes | None, tuple[str, int]] | None:
        """One datagram: (frame, sender), (None, sender) for RFOFF, or None on timeout."""
        sock = self._socket
        if sock is None:
            return None
        ready, _, _ = select.select([sock], [], [], timeout)
        if not ready:
            return None
        try:
            datagram, addr = sock.recvfrom(_DATAGRAM_BUFFER)
        except OSError:
            return None
        if datagram.startswith(b"RFOFF"):
            return None, addr
        parts = datagram.split()
        if len(parts) == 2 and parts[0] != _BRTY and _OTHER_BRTY.fullmatch(parts[0]):
            return b"", addr  # other bit rates and types: not for a Type A card
        if len(parts) != 2 or parts[0] != _BRTY:
            return self._refuse(addr, f"datagram of {len(datagram)} bytes is not '106A <hex>'")
        try:
            frame = binascii.unhexlify(parts[1])
        except binascii.Error:
            return self._refuse(addr, "frame is not in hex, or cut in the middle of a byte")
        if len(frame) > _MAX_FRAME:
            return self._refuse(addr, f"frame of {len(frame)} bytes, more than {_MAX_FRAME}")
        return frame, addr

    def _refuse(self, addr: tuple[str, int], reason: str) -> tuple[bytes, tuple[str, int]]:
        """Drop what came from ``addr``: one warning (the reason, never the bytes), then silence."""
        self.refused += 1
        _log.warning("virtual card (udp): refused from %s:%s: %s", addr[0], addr[1], reason)
        return b"", addr

    def _run(self) -> None:
        while not self._stop.is_set():
            got = self._receive(0.2)
            if got is None:
                continue
            frame, addr = got
            if frame is None:  # RFOFF: the reader switched the field off
                self._picc.power_off()
                self.card.reset()
                continue
            if self.faults.removed:
                continue  # gone from the field: silence
            action = self._picc.receive(frame)
            if action.refused:
                self._refuse(addr, action.refused)
            if action.kind is Kind.RESET:
                self._new_tap(action.frame, addr)
            elif action.kind is Kind.SEND:
                self._send(action.frame, addr)
            elif action.kind is Kind.EXECUTE:
                self._execute(action.apdu, addr)

    def _new_tap(self, atqa: bytes, addr: tuple[str, int]) -> None:
        self.taps += 1
        self.card.reset()
        self._send(atqa, addr)

    def _execute(self, apdu: bytes, addr: tuple[str, int]) -> None:
        try:
            number = self.faults.admit()
        except FrameFault:
            self._picc.power_off()
            return
        result: list[bytes] = []
        worker = threading.Thread(
            target=lambda: result.append(card_answer(self.card, apdu)),
            name="card-apdu",
            daemon=True,
        )
        worker.start()
        plan = self.faults.plan
        deadline = time.monotonic() + plan.delay
        storm = plan.wtx_storm
        fwt = self._picc.fwt
        while True:
            worker.join(timeout=fwt / 2)
            late = time.monotonic() < deadline
            if not worker.is_alive() and not late and storm == 0:
                break
            if late and not plan.wtx_on_delay and not worker.is_alive():
                # A slow chip that does not ask for more time: the reader times out.
                self._stop.wait(max(0.0, deadline - time.monotonic()))
                break
            if self._stop.is_set():
                return
            storm = max(0, storm - 1)
            self._send(self._picc.wtx_request(1), addr)
            if not self._await_wtx_response(addr, timeout=fwt * 4):
                if self._picc.busy:  # no answer at all: the reader is gone
                    self._picc.power_off()
                return
        if not self._picc.busy:  # pragma: no cover - the link was reset meanwhile
            return
        response = result[0] if result else b"\x6f\x00"
        frame = self._picc.respond(response)
        try:
            answer = self.faults.answer(number, response)
        except FrameFault:
            return  # the answer is "lost": the reader's R(NAK) will get it retransmitted
        if answer != response:
            frame = frame[:1] + answer[: len(frame) - 1]
        self._send(frame, addr)

    def _await_wtx_response(self, addr: tuple[str, int], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while self._picc.waiting_for_wtx and time.monotonic() < end:
            got = self._receive(max(0.0, end - time.monotonic()))
            if got is None:
                continue
            frame, sender = got
            if frame is None:
                self._picc.power_off()
                self.card.reset()
                return False
            action = self._picc.receive(frame)
            if action.kind is Kind.RESET:  # the reader gave up and polls again: a new tap
                self._new_tap(action.frame, sender)
                return False
        return self._picc.busy and not self._picc.waiting_for_wtx

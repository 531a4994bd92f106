"""Serve a virtual card to PC/SC through vsmartcard's ``vpcd`` driver.

pcscd loads vpcd (Debian package ``vsmartcard-vpcd``) as the reader "Virtual
PCD"; vpcd listens on TCP port 35963 and a virtual card *connects to it*.
The wire protocol is a stream of messages, each a 2-byte big-endian length
then the payload. A 1-byte payload is a control: ``00`` power off, ``01``
power on, ``02`` reset, ``04`` get ATR (answered with the ATR); anything
longer is a command APDU, answered with the response APDU. Once connected,
pyscard sees a card in the "Virtual PCD" reader and runs its genuine code
path (SCardConnect, SCardTransmit, T=0/T=1 handling in pcscd).

:class:`VpcdCardClient` keeps that connection up tap after tap until stopped:
when vpcd or pcscd goes away it reconnects. Faults: a delay sleeps before the
answer; a dropped or removed answer closes the connection (pcscd reports
the card removed, pyscard raises), since vpcd would otherwise wait forever.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.card.faults import FaultInjector, FaultPlan, FrameFault
from macnss_auth.nfc.serve._lifecycle import ServingThread, require_loopback

__all__ = ["VPCD_PORT", "VpcdCardClient"]

_log = logging.getLogger(__name__)

#: vpcd's default port (0x8C7B; ``CHANNELID`` in /etc/reader.conf.d/vpcd).
VPCD_PORT = 35963

#: Seconds a card stays away after a fault broke the link (see :meth:`VpcdCardClient._run`).
ABSENCE_AFTER_FAULT = 1.0

_POWER_OFF, _POWER_ON, _RESET, _GET_ATR = 0, 1, 2, 4


class _Closed(Exception):
    """The vpcd connection ended."""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise _Closed
        out += chunk
    return out


class VpcdCardClient(ServingThread):
    """Connects a virtual card to vpcd and answers it until stopped.

    Args:
        card: the card to serve.
        host: vpcd's address (loopback only).
        port: vpcd's port.
        faults: faults to inject.
        reconnect_interval: pause between connection attempts, in seconds.
    """

    _thread_name = "vpcd-card"

    def __init__(
        self,
        card: VirtualCard,
        *,
        host: str = "127.0.0.1",
        port: int = VPCD_PORT,
        faults: FaultPlan | FaultInjector | None = None,
        reconnect_interval: float = 0.2,
    ) -> None:
        require_loopback(host, "the virtual card connects to a loopback vpcd only")
        super().__init__()
        self.card = card
        self.host = host
        self.port = port
        self.faults = faults if isinstance(faults, FaultInjector) else FaultInjector(faults)
        self.reconnect_interval = reconnect_interval
        self._connected = threading.Event()
        self._socket: socket.socket | None = None
        self.sessions = 0

    def __repr__(self) -> str:
        return f"VpcdCardClient({self.host}:{self.port})"

    @property
    def connected(self) -> bool:
        """Whether the card is currently connected to vpcd ("in the reader")."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected to vpcd (or ``timeout`` seconds pass)."""
        return self._connected.wait(timeout)

    def _interrupt(self) -> None:
        self._disconnect()

    def _disconnect(self) -> None:
        self._connected.clear()
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.faults.removed:
                self._stop.wait(self.reconnect_interval)
                continue
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError:
                self._stop.wait(self.reconnect_interval)
                continue
            sock.settimeout(0.5)
            self._socket = sock
            self._connected.set()
            self.sessions += 1
            self.card.reset()
            faulted = False
            try:
                faulted = self._serve(sock)
            except (_Closed, OSError):
                pass
            finally:
                self._disconnect()
                self.card.reset()
            # After a link broken mid-command pcscd must see the slot empty at one of its
            # presence polls (about every 0.4 s), or it never powers the card up again.
            self._stop.wait(max(self.reconnect_interval, ABSENCE_AFTER_FAULT if faulted else 0.0))

    def _read_message(self, sock: socket.socket) -> bytes | None:
        try:
            header = sock.recv(2)
        except TimeoutError:
            return None
        if not header:
            raise _Closed
        if len(header) == 1:
            header += _recv_exact(sock, 1)
        sock.settimeout(5.0)
        try:
            return _recv_exact(sock, int.from_bytes(header, "big"))
        finally:
            sock.settimeout(0.5)

    def _send_message(self, sock: socket.socket, payload: bytes) -> None:
        sock.sendall(len(payload).to_bytes(2, "big") + payload)

    def _serve(self, sock: socket.socket) -> bool:
        """Answer vpcd until stopped or disconnected; True if a fault broke the link."""
        while not self._stop.is_set():
            message = self._read_message(sock)
            if message is None:
                continue
            if len(message) == 1:
                control = message[0]
                if control in (_POWER_OFF, _POWER_ON, _RESET):
                    self.card.reset()
                elif control == _GET_ATR:
                    self._send_message(sock, self.card.atr)
                continue
            if not message:
                continue
            try:
                number = self.faults.admit()
            except FrameFault:
                return True  # removed: drop the connection, pcscd sees the card go
            response = self.card.process(message)
            if self.faults.plan.delay:
                time.sleep(self.faults.plan.delay)
            try:
                answer = self.faults.answer(number, response)
            except FrameFault:
                return True  # vpcd would wait forever for a lost answer; break the link instead
            self._send_message(sock, answer)
        return False

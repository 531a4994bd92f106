"""Serve a virtual card to PC/SC through vsmartcard's ``vpcd`` driver.

pcscd loads vpcd (Debian package ``vsmartcard-vpcd``) as the reader "Virtual
PCD". The wire protocol is a stream of messages, each a 2-byte big-endian
length then the payload. A 1-byte payload is a control: ``00`` power off,
``01`` power on, ``02`` reset, ``04`` get ATR (answered with the ATR);
anything longer is a command APDU, answered with the response APDU. Once
the link is up, pyscard sees a card in the "Virtual PCD" reader and runs
its genuine code path (SCardConnect, SCardTransmit, T=0/T=1 in pcscd).

Who connects to whom depends on vpcd's ``DEVICENAME`` in reader.conf.d:

* forward mode, Debian's default ``DEVICENAME /dev/null:0x8C7B``: vpcd
  *listens* on TCP 35963 (35964 for its second slot) -- on every address,
  ``0.0.0.0`` -- and :class:`VpcdCardClient` connects to it;
* reverse mode, ``DEVICENAME 127.0.0.1:0x8C7B``: vpcd *connects* to
  127.0.0.1:35963 (and 35964), where :class:`VpcdCardServer` listens on
  loopback only. Nothing listens on a public address.

Both ends run one implementation of the protocol (:class:`_VpcdLink`). In
forward mode a fault that loses an answer (a removed card, a dropped answer,
for which vpcd would otherwise wait forever) closes the connection; the card
then stays away :data:`ABSENCE_AFTER_FAULT` seconds so that pcscd sees the
slot empty at one of its presence polls.

vsmartcard 3.3 (Debian 12) quirk, reverse mode: once its connection is gone,
vpcd's reconnect passes an invalid descriptor (-1) to ``FD_SET`` and pcscd
aborts at its next presence poll; the same happens when nothing listens as
pcscd starts. With that version a reverse-mode link must last as long as
pcscd: start the server (both slots: ports 35963 and 35964) before pcscd,
stop pcscd before the server; :class:`VpcdCardServer` therefore answers a
lost answer with an invalid one rather than closing the link (``break_link``).

Whatever the peer sends, the card keeps serving: an empty message or an
unknown control byte is refused with a warning on this module's logger and
the link goes on; a message cut short (the peer closes, or the rest does not
come within :data:`MESSAGE_TIMEOUT` seconds) is logged and ends that link
only -- the server accepts the next one, the client reconnects. Log lines give
sizes and reasons, never the bytes. The card itself answers every command
APDU (an internal error is ``6F00``, see :mod:`macnss_auth.nfc.card.chip`).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import ClassVar

from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.card.faults import FaultInjector, FaultPlan, FrameFault
from macnss_auth.nfc.serve._lifecycle import ServingThread, card_answer, require_loopback

__all__ = [
    "ABSENCE_AFTER_FAULT",
    "MESSAGE_TIMEOUT",
    "VPCD_PORT",
    "VpcdCardClient",
    "VpcdCardServer",
]

_log = logging.getLogger(__name__)

#: vpcd's default port (0x8C7B; ``CHANNELID`` in reader.conf.d); the second slot is port + 1.
VPCD_PORT = 35963

#: Seconds a card stays away after a fault broke the link.
ABSENCE_AFTER_FAULT = 1.0

_POWER_OFF, _POWER_ON, _RESET, _GET_ATR = 0, 1, 2, 4
#: What a reverse-mode card answers for a lost answer: too short to be a response APDU.
_MUTE = b"\x00"
#: How often a blocked read or accept wakes up to look at the stop flag.
_POLL = 0.5
#: Seconds the rest of a message may take once its length has arrived.
MESSAGE_TIMEOUT = 5.0


class _Closed(Exception):
    """The vpcd connection ended."""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    """``n`` bytes from ``sock``; a message cut short is logged and ends the link.

    Raises:
        _Closed: the peer closed, or the rest did not come in time.
    """
    out = b""
    while len(out) < n:
        try:
            chunk = sock.recv(n - len(out))
        except TimeoutError:
            chunk = None
        if not chunk:
            why = "timed out" if chunk is None else "closed"
            _log.warning(
                "virtual card (vpcd): message cut short, %d of %d bytes (peer %s); link ended",
                len(out),
                n,
                why,
            )
            raise _Closed
        out += chunk
    return out


class _VpcdLink(ServingThread):
    """The card's end of the vpcd protocol, whoever opened the TCP connection.

    A subclass implements :meth:`_run`: obtain a connected socket and hand it
    to :meth:`_session`, again and again until stopped; it says why the host
    must be loopback (``_loopback_reason``), its default pause between links
    and whether a lost answer breaks the link by default.
    """

    _loopback_reason: ClassVar[str]
    _default_interval: ClassVar[float]
    _default_break_link: ClassVar[bool]

    def __init__(
        self,
        card: VirtualCard,
        *,
        host: str = "127.0.0.1",
        port: int = VPCD_PORT,
        faults: FaultPlan | FaultInjector | None = None,
        reconnect_interval: float | None = None,
        break_link: bool | None = None,
    ) -> None:
        require_loopback(host, self._loopback_reason)
        if reconnect_interval is None:
            reconnect_interval = self._default_interval
        super().__init__()
        self.break_link = self._default_break_link if break_link is None else break_link
        self.card = card
        self.host = host
        self.port = port
        self.faults = faults if isinstance(faults, FaultInjector) else FaultInjector(faults)
        self.reconnect_interval = reconnect_interval
        self._connected = threading.Event()
        self._socket: socket.socket | None = None
        self.sessions = 0
        #: Messages refused so far (logged one by one).
        self.refused = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.host}:{self.port})"

    @property
    def connected(self) -> bool:
        """Whether vpcd is currently linked to the card ("a card in the reader")."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until vpcd is linked to the card (or ``timeout`` seconds pass)."""
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

    def _session(self, sock: socket.socket) -> None:
        """Answer vpcd on ``sock`` until stopped or disconnected, then wait out any absence."""
        sock.settimeout(_POLL)
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
        self._stay_away(max(self.reconnect_interval, ABSENCE_AFTER_FAULT if faulted else 0.0))

    def _stay_away(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _read_message(self, sock: socket.socket) -> bytes | None:
        try:
            header = sock.recv(2)
        except TimeoutError:
            return None
        if not header:
            raise _Closed
        sock.settimeout(MESSAGE_TIMEOUT)
        try:
            if len(header) == 1:
                header += _recv_exact(sock, 1)
            return _recv_exact(sock, int.from_bytes(header, "big"))
        finally:
            sock.settimeout(_POLL)

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
                else:
                    self._refuse(f"unknown control byte {control:02X}")
                continue
            if not message:
                self._refuse("empty message")
                continue
            try:
                number = self.faults.admit()
            except FrameFault:
                if self._link_lost(sock):
                    return True  # removed: drop the connection, pcscd sees the card go
                continue
            response = card_answer(self.card, message)
            if self.faults.plan.delay:
                time.sleep(self.faults.plan.delay)
            try:
                answer = self.faults.answer(number, response)
            except FrameFault:
                # vpcd would wait forever for a lost answer: break the link instead.
                if self._link_lost(sock):
                    return True
                continue
            self._send_message(sock, answer)
        return False

    def _refuse(self, reason: str) -> None:
        self.refused += 1
        _log.warning("virtual card (vpcd): refused: %s", reason)

    def _link_lost(self, sock: socket.socket) -> bool:
        """A fault lost the answer: True breaks the link, else the answer is a mute message."""
        if self.break_link:
            return True
        self._send_message(sock, _MUTE)
        return False


class VpcdCardClient(_VpcdLink):
    """Forward mode: connects a virtual card to a listening vpcd and answers it until stopped.

    When vpcd or pcscd goes away it reconnects.

    Args:
        card: the card to serve.
        host: vpcd's address (loopback only).
        port: vpcd's port.
        faults: faults to inject.
        reconnect_interval: pause between connection attempts, in seconds (default 0.2).
        break_link: let a fault that loses an answer close the connection (default);
            ``False`` answers with a one-byte message instead, as :class:`VpcdCardServer`.

    Raises:
        ConfigurationError: ``host`` is not a loopback address.
    """

    _thread_name = "vpcd-card"
    _loopback_reason = "the virtual card connects to a loopback vpcd only"
    _default_interval = 0.2
    _default_break_link = True

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
            self._session(sock)


class VpcdCardServer(_VpcdLink):
    """Reverse mode: listens on loopback for vpcd (``DEVICENAME 127.0.0.1:PORT``) until stopped.

    vpcd connects once per link; after a link ends (a fault, an eject) it may
    connect again, and the server accepts one connection at a time for as
    long as it runs. While the card is away (removed by a fault) a connection
    is accepted and closed at once, so pcscd sees an empty slot.

    Args:
        card: the card to serve.
        host: the loopback address to listen on (127.0.0.1, as in ``DEVICENAME``).
        port: the port vpcd connects to (:data:`VPCD_PORT`; + 1 for vpcd's second slot).
        faults: faults to inject.
        reconnect_interval: least pause between two links, in seconds (default 0).
        break_link: let a fault that loses an answer (a removed card, a dropped
            answer) close the connection, as :class:`VpcdCardClient` does. Off by
            default: vsmartcard 3.3 aborts pcscd when a reverse link is lost (see the
            module notes), so the server keeps the link and answers such a command
            with a one-byte message, which is no response APDU: pcscd passes it on and
            the PC/SC client fails the transmit (pyscard: "no valid response"). A
            removed card stays mute until the server restarts.

    Raises:
        ConfigurationError: ``host`` is not a loopback address (at :meth:`start`: the
            port cannot be listened on).
    """

    _thread_name = "vpcd-card-server"
    _loopback_reason = "the virtual card listens for vpcd on loopback only"
    _default_interval = 0.0
    _default_break_link = False
    _listener: socket.socket | None = None  # the listening socket while started

    def _open(self) -> None:
        """Bind and listen, so that vpcd can connect as soon as pcscd starts."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(1)
        except OSError as error:
            listener.close()
            raise ConfigurationError(
                f"cannot listen for vpcd on {self.host}:{self.port}: {error.strerror}"
            ) from None
        listener.settimeout(_POLL)
        self._listener = listener

    def _close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def _accept(self) -> socket.socket | None:
        listener = self._listener
        if listener is None:
            return None
        try:
            sock, _ = listener.accept()
        except (TimeoutError, OSError):
            return None
        return sock

    def _stay_away(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._turn_away(min(_POLL, deadline - time.monotonic()))

    def _turn_away(self, seconds: float) -> None:
        """For ``seconds``, close every connection at once: vpcd sees no card."""
        listener = self._listener
        if listener is None:
            self._stop.wait(seconds)
            return
        listener.settimeout(max(seconds, 0.01))
        try:
            sock, _ = listener.accept()
        except (TimeoutError, OSError):
            return
        finally:
            with contextlib.suppress(OSError):
                listener.settimeout(_POLL)
        sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.faults.removed:
                self._turn_away(_POLL)
                continue
            sock = self._accept()
            if sock is not None:
                self._session(sock)

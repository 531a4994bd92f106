"""The background thread that serves a virtual card, shared by the udp and vpcd links (private)."""

from __future__ import annotations

import ipaddress
import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from macnss_auth.errors import ConfigurationError

if TYPE_CHECKING:
    from macnss_auth.nfc.card.chip import VirtualCard

__all__ = ["ServingThread", "card_answer", "require_loopback"]

_log = logging.getLogger("macnss_auth.nfc.serve")

_Server = TypeVar("_Server", bound="ServingThread")


def require_loopback(host: str, message: str) -> None:
    """Refuse a host that is not a loopback address (or ``localhost``).

    Raises:
        ConfigurationError: with ``message``.
    """
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConfigurationError(message)


def card_answer(card: VirtualCard, apdu: bytes) -> bytes:
    """The card's answer to ``apdu``; ``6F00`` if a card built to raise did.

    A :class:`VirtualCard` answers every command itself; only one made with
    ``raise_internal_errors=True`` raises, and a server must not die of it.
    """
    try:
        return card.process(apdu)
    except Exception as error:  # noqa: BLE001 (the card logged it; the link goes on)
        _log.warning("virtual card raised %s; the server answered 6F00", type(error).__name__)
        return b"\x6f\x00"


class ServingThread:
    """Start, stop and context-manager plumbing around one serving thread.

    A subclass names the thread, implements :meth:`_run` (which returns once
    ``self._stop`` is set) and may hook :meth:`_open` (before the thread
    starts; may raise), :meth:`_interrupt` (after the stop is asked for,
    to unblock the thread) and :meth:`_close` (after the thread has ended).
    """

    _thread_name = "card-server"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self: _Server) -> _Server:
        """Serve in a background thread (once; later calls do nothing)."""
        if self._thread is None:
            self._open()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the link."""
        self._stop.set()
        self._interrupt()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._close()

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` (from another thread) or Ctrl-C."""
        self.start()
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _open(self) -> None:
        """Acquire what the thread serves on."""

    def _interrupt(self) -> None:
        """Wake the thread from a blocking wait."""

    def _close(self) -> None:
        """Release what :meth:`_open` acquired."""

    def _run(self) -> None:
        raise NotImplementedError

"""A transport over nfcpy: USB readers (PN533, RC-S380, ACR122U), serial, or the ``udp`` driver.

Why ``Type4Tag.transceive`` and not ``send_apdu``: nfcpy 1.0.4's ``send_apdu``
refuses extended-length APDUs and raises on any status word other than 9000,
which would hide protected (secure-messaging) status words from the caller.
``transceive`` sends raw bytes through ISO-DEP (chaining handles any length)
and returns the response with its status word.

nfcpy logs every APDU in hex at DEBUG on ``nfc.tag.tt4``; this transport does
not change logging, see docs/security.md.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from macnss_auth.errors import ConfigurationError, MissingExtra, TransportError
from macnss_auth.nfc.transports._base import ConnectingTransport

__all__ = ["NfcpyTransport"]

FrontendFactory = Callable[[str], Any]


def _open_frontend(device: str) -> Any:
    try:
        import nfc  # noqa: PLC0415 (nfcpy pulls in USB libraries; import only when used)
    except ImportError as exc:
        raise MissingExtra("the nfcpy transport", extra="nfc") from exc
    return nfc.ContactlessFrontend(device)


class NfcpyTransport(ConnectingTransport):
    """Talks to one ISO 14443-4 (Type 4) card through nfcpy.

    Args:
        device: an nfcpy path: ``usb``, ``usb:VID:PID``, ``tty:USB0``, ``udp:127.0.0.1:PORT``.
        timeout: seconds to wait for a card in :meth:`connect`.
        apdu_timeout: seconds to wait for each response (None: nfcpy's, from the ATS).
        cancel: an event that, once set, stops waiting for a card.
    """

    def __init__(
        self,
        device: str = "usb",
        *,
        timeout: float = 10.0,
        apdu_timeout: float | None = None,
        cancel: threading.Event | None = None,
        frontend_factory: FrontendFactory = _open_frontend,
    ) -> None:
        self.device = device
        self.timeout = timeout
        self.apdu_timeout = apdu_timeout
        self._cancel = cancel or threading.Event()
        self._factory = frontend_factory
        self._clf: Any = None
        self._tag: Any = None

    def __repr__(self) -> str:
        return f"NfcpyTransport(device={self.device!r}, connected={self._tag is not None})"

    def connect(self) -> None:
        """Open the reader and wait for a Type 4 card.

        Raises:
            MissingExtra: nfcpy is not installed (``pip install 'macnss-auth[nfc]'``).
            ConfigurationError: the device path cannot be opened.
            TransportError: no card within ``timeout``, cancelled, or not a Type 4 card.
        """
        if self._clf is None:
            try:
                self._clf = self._factory(self.device)
            except MissingExtra:
                raise
            except OSError as exc:
                raise ConfigurationError(f"cannot open NFC device {self.device!r}: {exc}") from exc
            except Exception as exc:
                raise ConfigurationError(f"cannot open NFC device {self.device!r}") from exc
        deadline = time.monotonic() + self.timeout

        def give_up() -> bool:
            return self._cancel.is_set() or time.monotonic() > deadline

        try:
            tag = self._clf.connect(
                rdwr={
                    "targets": ["106A", "106B"],
                    "on-connect": lambda _tag: False,
                    # Short polling rounds so that the timeout and cancel are checked often.
                    "iterations": 1,
                    "interval": 0.1,
                },
                terminate=give_up,
            )
        except Exception as exc:
            raise TransportError("the NFC reader failed while polling", retryable=True) from exc
        if not tag:
            reason = "cancelled" if self._cancel.is_set() else "no card within the timeout"
            raise TransportError(reason, retryable=True)
        if getattr(tag, "type", None) != "Type4Tag":
            raise TransportError(
                f"the card is not an ISO 14443-4 chip ({getattr(tag, 'type', '?')})",
                retryable=False,
            )
        self._tag = tag

    def transceive(self, command: bytes) -> bytes:
        """Send one command APDU and return the response including SW1 SW2.

        Raises:
            TransportError: not connected, card removed, or link failure (retryable).
        """
        if self._tag is None:
            raise TransportError("no card connected", retryable=True)
        try:
            response = self._tag.transceive(command, timeout=self.apdu_timeout)
        except Exception as exc:
            self._tag = None
            raise TransportError("the card stopped answering (removed?)", retryable=True) from exc
        if not isinstance(response, (bytes, bytearray)) or len(response) < 2:
            self._tag = None
            raise TransportError("the card sent a response without a status word", retryable=True)
        return bytes(response)

    @property
    def connected(self) -> bool:
        """Whether a card is connected."""
        return self._tag is not None

    def wait_for_removal(self, timeout: float = 30.0) -> bool:
        """Block until the card is taken away; True if it was within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._cancel.is_set():
            tag = self._tag
            if tag is None:
                return True
            try:
                present = bool(tag.is_present)
            except Exception:  # noqa: BLE001 (a failing presence check means the card is gone)
                present = False
            if not present:
                self._tag = None
                return True
            time.sleep(0.1)
        return False

    def close(self) -> None:
        """Release the reader."""
        self._tag = None
        clf, self._clf = self._clf, None
        if clf is not None:
            # Closing a dead reader must not mask the original error.
            with contextlib.suppress(Exception):
                clf.close()

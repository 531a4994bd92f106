"""A transport over PC/SC (pyscard): the desktop contact and contactless readers of kiosks.

Install the ``pcsc`` extra (``pip install macnss-auth[pcsc]``); pyscard builds
against libpcsclite (Debian: ``swig libpcsclite-dev``) and talks to ``pcscd``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from macnss_auth.errors import ConfigurationError, MissingExtra, TransportError
from macnss_auth.nfc.transports._base import ConnectingTransport

__all__ = ["PcscTransport", "list_readers"]

# The largest response an extended-length APDU can carry, plus its status word.
_MAX_RESPONSE = 65_538


def _smartcard() -> Any:
    try:
        import smartcard.Exceptions  # noqa: PLC0415 (optional extra)
        import smartcard.System  # noqa: PLC0415
    except ImportError as exc:
        raise MissingExtra("PC/SC", extra="pcsc") from exc
    return smartcard


def list_readers() -> list[str]:
    """Names of the PC/SC readers pcscd knows.

    Raises:
        TransportError: pcscd is not running or refuses.
    """
    smartcard = _smartcard()
    try:
        return [str(reader) for reader in smartcard.System.readers()]
    except smartcard.Exceptions.ListReadersException as exc:
        raise TransportError("pcscd is not reachable", retryable=True) from exc
    except Exception as exc:
        raise TransportError("pcscd is not reachable", retryable=True) from exc


class PcscTransport(ConnectingTransport):
    """Talks to the card in one PC/SC reader.

    Args:
        reader: an index into :func:`list_readers`, or a substring of a reader's name.
        timeout: seconds to wait for a card in :meth:`connect`.
    """

    def __init__(self, reader: int | str = 0, *, timeout: float = 10.0) -> None:
        self.reader = reader
        self.timeout = timeout
        self._connection: Any = None

    def __repr__(self) -> str:
        return f"PcscTransport(reader={self.reader!r}, connected={self._connection is not None})"

    def _pick_reader(self) -> Any:
        smartcard = _smartcard()
        try:
            available = smartcard.System.readers()
        except Exception as exc:
            raise TransportError("pcscd is not reachable", retryable=True) from exc
        if isinstance(self.reader, int):
            if not 0 <= self.reader < len(available):
                raise ConfigurationError(
                    f"no PC/SC reader #{self.reader}; readers: {[str(r) for r in available]}"
                )
            return available[self.reader]
        for candidate in available:
            if self.reader in str(candidate):
                return candidate
        raise ConfigurationError(
            f"no PC/SC reader named like {self.reader!r}; readers: {[str(r) for r in available]}"
        )

    def connect(self) -> None:
        """Wait for a card in the chosen reader and connect to it.

        Polls every 50 ms: a card that was just inserted may still be powering up.

        Raises:
            ConfigurationError: no such reader.
            TransportError: no card within ``timeout``.
        """
        reader = self._pick_reader()
        deadline = time.monotonic() + self.timeout
        while True:
            connection = reader.createConnection()
            try:
                connection.connect()
            except Exception as exc:
                # Release now: pyscard's destructor would try later, perhaps after pcscd is gone.
                with contextlib.suppress(Exception):
                    connection.release()
                if time.monotonic() >= deadline:
                    raise TransportError("no card within the timeout", retryable=True) from exc
                time.sleep(0.05)
                continue
            self._connection = connection
            return

    def transceive(self, command: bytes) -> bytes:
        """Send one command APDU and return the response including SW1 SW2.

        Handles the T=0 conventions: ``61xx`` (more data: GET RESPONSE) and
        ``6Cxx`` (wrong Le: resend with the right one).

        Raises:
            TransportError: not connected, card removed, or reader failure.
        """
        response = self._transmit(command)
        if response[-2] == 0x6C and len(command) >= 5:
            response = self._transmit(command[:-1] + response[-1:])
        data = bytearray(response[:-2])
        while response[-2] == 0x61:
            # A card that keeps saying "more data" must not keep us here forever.
            if len(data) > _MAX_RESPONSE:
                raise TransportError(
                    "the card sends more than 64 KiB for one command", retryable=False
                )
            response = self._transmit(bytes([command[0] & 0x03, 0xC0, 0, 0, response[-1]]))
            data += response[:-2]
        return bytes(data) + response[-2:]

    def _transmit(self, command: bytes) -> bytes:
        if self._connection is None:
            raise TransportError("no card connected", retryable=True)
        try:
            data, sw1, sw2 = self._connection.transmit(list(command))
        except Exception as exc:
            # Disconnect and release now, as close() does: the exception's traceback keeps
            # pyscard's connection alive, holding its PC/SC handle until the error is gone.
            self.close()
            raise TransportError("the card stopped answering (removed?)", retryable=True) from exc
        return bytes(data) + bytes([sw1, sw2])

    @property
    def connected(self) -> bool:
        """Whether a card is connected."""
        return self._connection is not None

    def close(self) -> None:
        """Disconnect from the card and release the PC/SC context."""
        connection, self._connection = self._connection, None
        if connection is not None:
            # Closing a dead link must not mask the original error.
            with contextlib.suppress(Exception):
                connection.disconnect()
            # Release now: pyscard's destructor would try later, perhaps after pcscd is gone.
            with contextlib.suppress(Exception):
                connection.release()

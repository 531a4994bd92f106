"""What every reader transport shares (private)."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

__all__ = ["ConnectingTransport"]

_Transport = TypeVar("_Transport", bound="ConnectingTransport")


class ConnectingTransport:
    """A transport used as a context manager: ``with`` connects, leaving it closes."""

    def connect(self) -> None:
        """Wait for a card and connect to it."""
        raise NotImplementedError

    def close(self) -> None:
        """Disconnect and release the reader."""
        raise NotImplementedError

    def __enter__(self: _Transport) -> _Transport:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""Development channels: print messages to a stream, or append them to a file.

For the demo and local development only: the text contains the code. The
header shows the masked destination, never the full one, so a screen share
does not leak a phone number.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import ClassVar, TextIO

from macnss_auth.delivery.base import (
    ChannelKind,
    DeliveryReceipt,
    DeliveryUnavailable,
    OutboundMessage,
)
from macnss_auth.delivery.segments import sms_length

__all__ = ["ConsoleChannel", "FileChannel", "format_message"]


def format_message(message: OutboundMessage) -> str:
    """A readable block: kind, masked destination, subject, text, SMS length."""
    lines = [f"--- {message.kind.value} to {message.hint or '(hidden)'} [{message.language}] ---"]
    if message.subject:
        lines.append(f"Subject: {message.subject}")
    lines.append(message.text.rstrip("\n"))
    if message.kind is ChannelKind.SMS:
        length = sms_length(message.text)
        lines.append(
            f"--- {length.encoding.value}, {length.units} units, {length.segments} segment(s) ---"
        )
    else:
        lines.append("---")
    return "\n".join(lines) + "\n"


class _TextChannel:
    """What the development channels share: a kind, one writer at a time, the receipt."""

    name: ClassVar[str]

    def __init__(self, kind: ChannelKind) -> None:
        self._kind = kind
        self._lock = threading.Lock()

    @property
    def kind(self) -> ChannelKind:
        return self._kind

    def _receipt(self, message: OutboundMessage) -> DeliveryReceipt:
        segments = sms_length(message.text).segments if message.kind is ChannelKind.SMS else 1
        return DeliveryReceipt(channel=self.name, segments=segments)


class ConsoleChannel(_TextChannel):
    """Writes each message to a text stream (standard output by default)."""

    name: ClassVar[str] = "console"

    def __init__(self, kind: ChannelKind, *, stream: TextIO | None = None) -> None:
        super().__init__(kind)
        self._stream = stream

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        stream = self._stream if self._stream is not None else sys.stdout
        with self._lock:
            stream.write(format_message(message))
            stream.flush()
        return self._receipt(message)

    def __repr__(self) -> str:
        return f"ConsoleChannel({self._kind.value!r})"


def _open_private(path: Path) -> TextIO:
    """Open ``path`` for appending, readable by its owner only: it holds codes."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)  # A file that was already there (umask, earlier versions).
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


class FileChannel(_TextChannel):
    """Appends each message to a UTF-8 text file (a development mailbox)."""

    name: ClassVar[str] = "file"

    def __init__(self, kind: ChannelKind, *, path: str | Path) -> None:
        super().__init__(kind)
        self._path = Path(path)

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        try:
            with self._lock, _open_private(self._path) as handle:
                handle.write(format_message(message))
        except OSError as exc:
            raise DeliveryUnavailable(f"cannot append to the message file: {exc.strerror}") from exc
        return self._receipt(message)

    def __repr__(self) -> str:
        return f"FileChannel({self._kind.value!r}, path={str(self._path)!r})"

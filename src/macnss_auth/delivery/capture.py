"""A capturing channel for tests: keeps messages in memory and can be told to fail.

Re-exported by :mod:`macnss_auth.testing` for users' own tests.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from macnss_auth.delivery.base import ChannelKind, DeliveryReceipt, OutboundMessage
from macnss_auth.errors import DeliveryError

__all__ = ["CapturingChannel", "find_code"]


def find_code(text: str, *, length: int = 6, alphabet: str = "0123456789") -> str:
    """The first run of exactly ``length`` characters of ``alphabet`` in ``text``.

    Raises:
        LookupError: no such run (the message did not carry a code).
    """
    chars = re.escape(alphabet)
    match = re.search(rf"(?<![{chars}])[{chars}]{{{length}}}(?![{chars}])", text)
    if match is None:
        raise LookupError("no code in the message")
    return match.group(0)


class CapturingChannel:
    """Records every message sent; optionally raises scripted failures first."""

    def __init__(self, kind: ChannelKind, *, name: str = "capture") -> None:
        self._kind = kind
        self._name = name
        self._lock = threading.Lock()
        self._messages: list[OutboundMessage] = []
        self._failures: list[DeliveryError] = []
        self.attempts = 0

    @property
    def kind(self) -> ChannelKind:
        return self._kind

    @property
    def name(self) -> str:
        return self._name

    def fail_with(self, errors: Iterable[DeliveryError]) -> None:
        """Raise these errors, one per send, before delivering normally again."""
        with self._lock:
            self._failures.extend(errors)

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        with self._lock:
            self.attempts += 1
            if self._failures:
                raise self._failures.pop(0)
            self._messages.append(message)
            return DeliveryReceipt(channel=self._name, message_id=str(len(self._messages)))

    @property
    def messages(self) -> tuple[OutboundMessage, ...]:
        """Every delivered message, oldest first."""
        with self._lock:
            return tuple(self._messages)

    def last(self, to: str | None = None) -> OutboundMessage:
        """The latest message (to ``to``, if given).

        Raises:
            LookupError: nothing was delivered (there).
        """
        for message in reversed(self.messages):
            if to is None or message.to == to:
                return message
        raise LookupError("no message was delivered")

    def last_code(
        self, to: str | None = None, *, length: int = 6, alphabet: str = "0123456789"
    ) -> str:
        """The code in the latest message (see :func:`find_code`)."""
        return find_code(self.last(to).text, length=length, alphabet=alphabet)

    def clear(self) -> None:
        """Forget captured messages."""
        with self._lock:
            self._messages.clear()

    def __repr__(self) -> str:
        return f"CapturingChannel({self._kind.value!r}, messages={len(self._messages)})"

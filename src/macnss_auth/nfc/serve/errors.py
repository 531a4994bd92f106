"""Typed transport errors raised by the serving paths when a fault is injected or a link breaks."""

from __future__ import annotations

from macnss_auth.errors import TransportError

__all__ = ["CardRemovedError", "LinkTimeoutError"]


class CardRemovedError(TransportError):
    """The card left the field; a new tap (and a new session) may succeed."""

    def __init__(self, message: str = "card removed from the field") -> None:
        super().__init__(message, retryable=True)


class LinkTimeoutError(TransportError):
    """No answer within the time allowed (dropped frame, slow card, broken link)."""

    def __init__(self, message: str = "no answer from the card in time") -> None:
        super().__init__(message, retryable=True)

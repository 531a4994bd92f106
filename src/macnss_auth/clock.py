"""Injectable time and randomness.

Every component takes a :class:`Clock` and a :class:`RandomSource` as
keyword-only collaborators. Production code uses :class:`SystemClock` and
:class:`SystemRandom`; tests and worked examples use the deterministic ones in
:mod:`macnss_auth.testing`. Nothing reads the wall clock or ``os.urandom``
directly, so published vectors replay exactly and verifiers never trust a
time that came from a client.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "RandomSource", "SystemClock", "SystemRandom", "utc"]


def utc(timestamp: float) -> dt.datetime:
    """An aware UTC datetime from a POSIX timestamp."""
    return dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc)


@runtime_checkable
class Clock(Protocol):
    """A trusted source of the current time."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware, in UTC."""
        ...


@runtime_checkable
class RandomSource(Protocol):
    """A source of unpredictable bytes (a CSPRNG in production)."""

    def token_bytes(self, n: int) -> bytes:
        """Return ``n`` random bytes."""
        ...


class SystemClock:
    """The operating system's clock, in UTC."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    def __repr__(self) -> str:
        return "SystemClock()"


class SystemRandom:
    """The operating system's CSPRNG (``os.urandom`` through :mod:`secrets`)."""

    def token_bytes(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("n must be non-negative")
        return secrets.token_bytes(n) if n else b""

    def __repr__(self) -> str:
        return "SystemRandom()"

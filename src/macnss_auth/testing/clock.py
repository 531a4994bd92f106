"""Deterministic time and randomness for tests, notebooks and worked examples."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading

__all__ = ["FixedClock", "FixedRandom", "ScriptedRandom"]


class FixedClock:
    """A clock that only moves when told to.

    >>> clock = FixedClock.at(59)
    >>> clock.advance(1).timestamp()
    60.0
    """

    def __init__(self, now: dt.datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = now.astimezone(dt.timezone.utc)
        self._lock = threading.Lock()

    @classmethod
    def at(cls, timestamp: float) -> FixedClock:
        """A clock set to a POSIX timestamp."""
        return cls(dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc))

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> dt.datetime:
        """Move forward by ``seconds`` and return the new time."""
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)
            return self._now

    def set(self, now: dt.datetime) -> None:
        """Jump to ``now`` (backwards too, to test clock skew)."""
        with self._lock:
            self._now = now.astimezone(dt.timezone.utc)

    def __repr__(self) -> str:
        return f"FixedClock({self._now.isoformat()})"


class FixedRandom:
    """A reproducible byte stream: SHA-256 in counter mode over a seed.

    Never use outside tests: anyone who knows the seed knows every value.
    """

    def __init__(self, seed: bytes | int = 0) -> None:
        self._seed = seed.to_bytes(8, "big") if isinstance(seed, int) else seed
        self._counter = 0
        self._buffer = b""
        self._lock = threading.Lock()

    def token_bytes(self, n: int) -> bytes:
        with self._lock:
            while len(self._buffer) < n:
                block = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
                self._buffer += block
                self._counter += 1
            out, self._buffer = self._buffer[:n], self._buffer[n:]
            return out

    def __repr__(self) -> str:
        return "FixedRandom(<seeded>)"


class ScriptedRandom:
    """Returns exactly the byte strings it was given, in order.

    Used to inject the nonces and ephemeral keys of published worked examples.
    A request whose length differs from the next scripted value is a test bug
    and raises ``AssertionError``-free ``LookupError`` so it cannot pass silently.
    """

    def __init__(self, *values: bytes) -> None:
        self._values = list(values)

    def token_bytes(self, n: int) -> bytes:
        if not self._values:
            raise LookupError("ScriptedRandom ran out of scripted values")
        value = self._values.pop(0)
        if len(value) != n:
            raise LookupError(f"scripted value has {len(value)} bytes, {n} requested")
        return value

    @property
    def remaining(self) -> int:
        """Scripted values not yet used."""
        return len(self._values)

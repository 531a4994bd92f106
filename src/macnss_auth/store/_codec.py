"""How the persistent stores write times and integers (shared, private)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Final

from macnss_auth.errors import ConfigurationError, StoreError

__all__ = ["instant", "int64", "micros", "window_micros"]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICROSECOND: Final = dt.timedelta(microseconds=1)
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


def micros(when: dt.datetime) -> int:
    """Integer microseconds since the Unix epoch: exact comparisons and round trips.

    Raises:
        ConfigurationError: a naive datetime (whose zone would be a guess).
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ConfigurationError("store times must be timezone-aware datetimes")
    return (when - _EPOCH) // _MICROSECOND


def instant(value: int) -> dt.datetime:
    """The aware UTC datetime of :func:`micros` output."""
    return _EPOCH + dt.timedelta(microseconds=value)


def window_micros(window: float) -> int:
    """A window in microseconds, rounded exactly as ``MemoryStore`` rounds it.

    Raises:
        ConfigurationError: not a positive finite number of seconds.
    """
    if not math.isfinite(window) or window <= 0:
        raise ConfigurationError("a counter window must be a positive number of seconds")
    return dt.timedelta(seconds=window) // _MICROSECOND


def int64(value: int) -> int:
    """``value`` if it fits a signed 64-bit integer.

    Raises:
        StoreError: it does not.
    """
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise StoreError("monotonic counters are signed 64-bit integers")
    return value

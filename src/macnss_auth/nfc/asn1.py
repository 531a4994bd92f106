"""The one place that turns asn1crypto's decoding failures into library errors.

asn1crypto has no exception hierarchy of its own: malformed input surfaces as
``ValueError``, ``TypeError``, ``KeyError``, ``IndexError``, ``AttributeError``
or ``OverflowError`` from deep inside its lazy parsers. Every decoder of the
library wraps its asn1crypto calls in :func:`decoding`, so a caller sees one
typed :class:`~macnss_auth.errors.MalformedInput` (or the subclass the decoder
names) and library errors raised inside pass through unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from macnss_auth.errors import MacnssAuthError, MalformedInput

__all__ = ["ASN1_ERRORS", "decoding", "int_repr", "malformed"]

#: What asn1crypto raises on malformed input.
ASN1_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
)


def malformed(
    what: str,
    exc: BaseException,
    *,
    error: type[MalformedInput] = MalformedInput,
    field: str | None = None,
) -> MalformedInput:
    """The library error for ``exc`` raised while decoding ``what`` (names the type only)."""
    return error(f"malformed {what}: {type(exc).__name__}", field=field or what)


@contextlib.contextmanager
def decoding(
    what: str, *, error: type[MalformedInput] = MalformedInput, field: str | None = None
) -> Iterator[None]:
    """Decode ``what`` inside this block: asn1crypto failures become ``error``.

    Library errors (:class:`~macnss_auth.errors.MacnssAuthError`, some of which
    are also ``ValueError``) pass through unchanged.
    """
    try:
        yield
    except MacnssAuthError:
        raise
    except ASN1_ERRORS as exc:
        raise malformed(what, exc, error=error, field=field) from exc


def int_repr(value: int | None) -> str:
    """The repr of an INTEGER read from DER, shortened when it is huge.

    A DER INTEGER can hold thousands of digits, and ``str()`` of an int past
    4300 digits raises ``ValueError``: a repr or message that names one must
    not fail (nor fill a log).
    """
    if value is None or value.bit_length() <= 256:
        return repr(value)
    return f"<{value.bit_length()}-bit integer>"

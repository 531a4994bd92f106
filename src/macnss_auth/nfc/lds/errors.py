"""The one error the LDS parsers raise for a malformed file."""

from __future__ import annotations

from macnss_auth.errors import MalformedInput

__all__ = ["LdsFormatError"]


class LdsFormatError(MalformedInput):
    """An LDS file (EF.COM, a data group, EF.SOD) is malformed."""

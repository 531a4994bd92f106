"""Status words the virtual card answers with (ISO/IEC 7816-4 §5.6, ICAO 9303-11, BSI TR-03110-3).

The card answers like a real chip rather than with one generic error, so a
reader's error handling meets the same words in tests as in the field. The
names are the one enum both sides share, :class:`macnss_auth.nfc.apdu.StatusCode`.
"""

from __future__ import annotations

from macnss_auth.nfc.apdu import StatusCode

__all__ = ["StatusCode", "StatusWord", "retries_left"]

# The name the card modules used before the enum moved to apdu (still imported
# by nfc/card/pace.py): the same class, not a second enum.
StatusWord = StatusCode


def retries_left(remaining: int) -> bytes:
    """``63Cx``: verification failed, ``x`` tries remain (ISO/IEC 7816-4 §5.6, TR-03110-3 §B.11)."""
    return bytes([0x63, 0xC0 | min(max(remaining, 0), 15)])

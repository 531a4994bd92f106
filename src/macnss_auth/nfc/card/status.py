"""Status words the virtual card answers with (ISO/IEC 7816-4 §5.6, ICAO 9303-11, BSI TR-03110-3).

The card answers like a real chip rather than with one generic error, so a
reader's error handling meets the same words in tests as in the field.
"""

from __future__ import annotations

import enum

__all__ = ["StatusWord", "retries_left"]


class StatusWord(enum.IntEnum):
    """The status words (SW1 SW2) this card uses, named as in ISO/IEC 7816-4."""

    OK = 0x9000
    END_OF_FILE = 0x6282  # fewer bytes than Le before the end of the file
    AUTHENTICATION_FAILED = 0x6300  # BAC EXTERNAL AUTHENTICATE, PACE token, CA
    WRONG_LENGTH = 0x6700
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTHENTICATION_METHOD_BLOCKED = 0x6983
    CONDITIONS_NOT_SATISFIED = 0x6985  # command out of sequence
    SM_DATA_OBJECTS_MISSING = 0x6987
    SM_DATA_OBJECTS_INCORRECT = 0x6988  # bad MAC or malformed protected command
    INCORRECT_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    INCORRECT_P1_P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    WRONG_PARAMETERS = 0x6B00  # offset beyond the end of the file
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00

    def encode(self) -> bytes:
        """The two status bytes."""
        return int(self).to_bytes(2, "big")


def retries_left(remaining: int) -> bytes:
    """``63Cx``: verification failed, ``x`` tries remain (ISO/IEC 7816-4 §5.6, TR-03110-3 §B.11)."""
    return bytes([0x63, 0xC0 | min(max(remaining, 0), 15)])

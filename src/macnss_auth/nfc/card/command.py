"""Card-side parsing of command APDUs, with the status words a real chip answers.

Parsing itself is :meth:`macnss_auth.nfc.apdu.CommandAPDU.from_bytes` (the same
code the reader uses); the card only turns its failures into ``6700`` and
carries status words out of deep handlers with :class:`CardStatusError`.
"""

from __future__ import annotations

from macnss_auth.errors import MalformedInput
from macnss_auth.nfc.apdu import CommandAPDU, StatusCode

__all__ = ["CardStatusError", "parse_command"]


class CardStatusError(Exception):
    """Internal signal: stop processing this command and answer ``status``.

    Attributes:
        status: the two status bytes to answer.
        drop_session: whether the secure-messaging session ends with this answer.
    """

    def __init__(self, status: StatusCode | bytes, *, drop_session: bool = False) -> None:
        self.status = status.encode() if isinstance(status, StatusCode) else status
        self.drop_session = drop_session
        super().__init__(self.status.hex())


def parse_command(raw: bytes) -> CommandAPDU:
    """Parse one of the seven encodings of ISO/IEC 7816-4 §5.1.

    Raises:
        CardStatusError: ``6700`` for any length field that does not match the bytes.
    """
    try:
        return CommandAPDU.from_bytes(raw)
    except MalformedInput:
        raise CardStatusError(StatusCode.WRONG_LENGTH) from None

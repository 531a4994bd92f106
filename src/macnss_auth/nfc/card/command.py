"""Card-side parsing of command APDUs (ISO/IEC 7816-4 §5.1).

The card needs more than a parser: every malformed input must become the
status word a real chip would answer, so parsing raises :class:`CardStatusError`
carrying that word instead of a reader-side exception.
"""

from __future__ import annotations

import attrs

from macnss_auth.nfc.card.status import StatusWord

__all__ = ["CardCommand", "CardStatusError", "parse_command"]


class CardStatusError(Exception):
    """Internal signal: stop processing this command and answer ``status``.

    Attributes:
        status: the two status bytes to answer.
        drop_session: whether the secure-messaging session ends with this answer.
    """

    def __init__(self, status: StatusWord | bytes, *, drop_session: bool = False) -> None:
        self.status = status.encode() if isinstance(status, StatusWord) else status
        self.drop_session = drop_session
        super().__init__(self.status.hex())


@attrs.frozen
class CardCommand:
    """A parsed command APDU.

    Attributes:
        le: the expected response length (``256``/``65536`` for an encoded zero),
            or ``None`` when the command has no Le field.
        extended: whether the command used extended length fields.
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")
    le: int | None = None
    extended: bool = False

    @property
    def secure_messaging(self) -> bool:
        """Whether CLA announces ISO secure messaging with an authenticated header (``x C``)."""
        return self.cla & 0x0C == 0x0C

    @property
    def chained(self) -> bool:
        """Whether CLA has the command-chaining bit (more steps follow)."""
        return bool(self.cla & 0x10)

    def header(self) -> bytes:
        """CLA INS P1 P2."""
        return bytes([self.cla, self.ins, self.p1, self.p2])

    def encode(self) -> bytes:
        """Re-encode the command (short form unless it was extended or needs to be)."""
        out = self.header()
        extended = self.extended or len(self.data) > 255 or (self.le or 0) > 256
        if self.data:
            if extended:
                out += b"\x00" + len(self.data).to_bytes(2, "big")
            else:
                out += bytes([len(self.data)])
            out += self.data
        if self.le is not None:
            if extended:
                le = b"" if self.data else b"\x00"
                out += le + (self.le % 65536).to_bytes(2, "big")
            else:
                out += bytes([self.le % 256])
        return out


def parse_command(raw: bytes) -> CardCommand:
    """Parse the four cases of ISO/IEC 7816-4 §5.1, short and extended.

    Raises:
        CardStatusError: ``6700`` for any length field that does not match the bytes.
    """
    if len(raw) < 4:
        raise CardStatusError(StatusWord.WRONG_LENGTH)
    cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
    body = raw[4:]
    if not body:  # case 1
        return CardCommand(cla, ins, p1, p2, b"")
    if len(body) == 1:  # case 2 short
        return CardCommand(cla, ins, p1, p2, b"", body[0] or 256)
    if body[0] != 0:  # case 3 or 4 short
        lc = body[0]
        if len(body) == 1 + lc:
            return CardCommand(cla, ins, p1, p2, body[1:])
        if len(body) == 2 + lc:
            return CardCommand(cla, ins, p1, p2, body[1 : 1 + lc], body[-1] or 256)
        raise CardStatusError(StatusWord.WRONG_LENGTH)
    # Extended forms start with a zero byte.
    if len(body) == 3:  # case 2 extended
        return CardCommand(
            cla, ins, p1, p2, b"", int.from_bytes(body[1:], "big") or 65536, extended=True
        )
    if len(body) < 3:
        raise CardStatusError(StatusWord.WRONG_LENGTH)
    lc = int.from_bytes(body[1:3], "big")
    if lc == 0:
        raise CardStatusError(StatusWord.WRONG_LENGTH)
    if len(body) == 3 + lc:
        return CardCommand(cla, ins, p1, p2, body[3:], None, extended=True)
    if len(body) == 5 + lc:
        le = int.from_bytes(body[-2:], "big") or 65536
        return CardCommand(cla, ins, p1, p2, body[3 : 3 + lc], le, extended=True)
    raise CardStatusError(StatusWord.WRONG_LENGTH)

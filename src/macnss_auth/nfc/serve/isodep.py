"""The card (PICC) side of ISO/IEC 14443-3 Type A activation and the ISO-DEP block protocol.

Sans-I/O: :meth:`IsoDepCard.receive` takes one frame from the reader and
returns what to do -- send a frame, run an APDU, reset the chip, or nothing.
The UDP driver in :mod:`macnss_auth.nfc.serve.udp` moves the bytes.

Covered (ISO/IEC 14443-3 §6, 14443-4 §5 and §7):

* REQA/WUPA -> ATQA, anticollision cascade level 1 (4-byte UID), SELECT -> SAK
  ``20`` (ISO 14443-4 compliant), RATS -> ATS announcing FSCI, FWI and the
  historical bytes.
* I-blocks with chaining in both directions, R(ACK)/R(NAK) with the block
  number rules C-E and 11-13 (retransmit the last block when the reader
  missed it; acknowledge when the reader's block never arrived), S(WTX)
  requests while the chip computes, S(DESELECT).

No CID, no NAD, 106 kbit/s only (nfcpy negotiates nothing else).

A reader can chain I-blocks without end; the card collects at most
:data:`MAX_COMMAND_APDU` bytes (the longest command APDU ISO/IEC 7816-4 can
encode). Past that it keeps acknowledging the chain, discards its data and
answers the whole chain ``6700`` (wrong length) without running it; the
:class:`Action` says why in ``refused``, for the driver to log.
"""

from __future__ import annotations

import enum
import operator
from functools import reduce

import attrs

from macnss_auth.errors import ConfigurationError

__all__ = ["MAX_COMMAND_APDU", "Action", "IsoDepCard", "Kind"]

#: The longest command APDU: header, extended Lc (3), 65,535 data bytes, extended Le (2).
MAX_COMMAND_APDU = 4 + 3 + 65_535 + 2

# ISO/IEC 14443-4 §5.2.4: FSDI/FSCI -> frame size.
_FRAME_SIZES = (16, 24, 32, 40, 48, 64, 96, 128, 256)


class Kind(enum.Enum):
    """What the driver must do after :meth:`IsoDepCard.receive`."""

    NOTHING = "nothing"  # stay silent
    SEND = "send"  # send ``frame``
    EXECUTE = "execute"  # run ``apdu`` on the chip, then call respond()
    RESET = "reset"  # a new tap: power-cycle the chip, then send ``frame``


@attrs.frozen
class Action:
    """One instruction to the driver.

    Attributes:
        kind: what to do.
        frame: the frame to send (``SEND``, ``RESET``).
        apdu: the command APDU to run (``EXECUTE``).
        refused: why the card refused what it received, if it did (for the log).
    """

    kind: Kind
    frame: bytes = b""
    apdu: bytes = b""
    refused: str = ""


class _State(enum.Enum):
    IDLE = "idle"
    READY = "ready"
    ACTIVE = "active"  # selected at layer 3, waiting for RATS
    PROTOCOL = "protocol"  # ISO-DEP
    BUSY = "busy"  # an APDU is running
    HALT = "halt"


class IsoDepCard:
    """The PICC state machine of one contactless card.

    Args:
        uid: the 4-byte single-size UID (random UIDs start with ``08``).
        fsci: the card's frame size index (8 = 256 bytes).
        fwi: frame waiting time integer; FWT = 256 * 16 / fc * 2**FWI (9 = 155 ms).
        historical: historical bytes for the ATS.
    """

    def __init__(self, *, uid: bytes, fsci: int = 8, fwi: int = 9, historical: bytes = b"") -> None:
        if len(uid) != 4:
            raise ConfigurationError("only single-size (4-byte) UIDs are supported")
        if not 0 <= fsci <= 8 or not 0 <= fwi <= 14:
            raise ConfigurationError("FSCI must be 0..8 and FWI 0..14")
        self._uid = uid
        self._fsci = fsci
        self.fwi = fwi
        self._historical = historical
        self._state = _State.IDLE
        self._fsd = 256
        self._block = 1
        self._rx = b""
        self._overflow = False
        self._tx: list[bytes] = []
        self._last = b""
        self._wtx_pending = False

    def __repr__(self) -> str:
        return f"IsoDepCard(state={self._state.value})"

    @property
    def fwt(self) -> float:
        """The frame waiting time in seconds (ISO/IEC 14443-4 §7.2)."""
        return 256 * 16 / 13.56e6 * (1 << self.fwi)

    @property
    def active(self) -> bool:
        """Whether the ISO-DEP layer is up."""
        return self._state in (_State.PROTOCOL, _State.BUSY)

    @property
    def ats(self) -> bytes:
        """TL T0 TA TB TC and the historical bytes (no CID/NAD support, 106 kbit/s only)."""
        body = bytes([0x70 | self._fsci, 0x00, (self.fwi << 4) | 0x00, 0x00]) + self._historical
        return bytes([len(body) + 1]) + body

    def power_off(self) -> None:
        """The field went away."""
        self._state = _State.IDLE
        self._tx, self._rx, self._last = [], b"", b""
        self._overflow = False
        self._wtx_pending = False

    def _sdd_res(self) -> bytes:
        return self._uid + bytes([reduce(operator.xor, self._uid)])

    def receive(self, frame: bytes) -> Action:
        """Handle one frame from the reader."""
        if not frame:
            return Action(Kind.NOTHING)
        if frame in (b"\x26", b"\x52"):  # REQA / WUPA: a (new) tap
            if frame == b"\x26" and self._state is _State.HALT:
                return Action(Kind.NOTHING)
            self.power_off()
            self._state = _State.READY
            return Action(
                Kind.RESET, frame=b"\x04\x00"
            )  # ATQA: single UID, bit-frame anticollision
        if self._state is _State.READY:
            if frame == b"\x93\x20":
                return Action(Kind.SEND, frame=self._sdd_res())
            if frame == b"\x93\x70" + self._sdd_res():
                self._state = _State.ACTIVE
                return Action(Kind.SEND, frame=b"\x20")  # SAK: complete, ISO 14443-4
            return Action(Kind.NOTHING)
        if self._state is _State.ACTIVE:
            if len(frame) == 2 and frame[0] == 0xE0:  # RATS
                self._fsd = _FRAME_SIZES[min(frame[1] >> 4, 8)]
                self._state = _State.PROTOCOL
                self._block = 1  # rule C
                self._last = self.ats
                return Action(Kind.SEND, frame=self.ats)
            if frame[:2] == b"\x50\x00":  # HLTA
                self._state = _State.HALT
            return Action(Kind.NOTHING)
        if self._state is _State.BUSY:
            if frame[0] & 0xFE == 0xF2 and self._wtx_pending:  # S(WTX) response
                self._wtx_pending = False
                return Action(Kind.NOTHING)
            return Action(Kind.NOTHING)  # the reader must wait; we are computing
        if self._state is _State.PROTOCOL:
            return self._block_frame(frame)
        return Action(Kind.NOTHING)

    def _send(self, frame: bytes) -> Action:
        self._last = frame
        return Action(Kind.SEND, frame=frame)

    def _block_frame(self, frame: bytes) -> Action:
        pcb = frame[0]
        if pcb & 0xE2 == 0x02:  # I-block
            if pcb & 0x0C:  # CID or NAD: not supported, stay silent
                return Action(Kind.NOTHING, refused="I-block with CID or NAD")
            self._block ^= 1  # rule D
            self._rx += frame[1:]
            if len(self._rx) > MAX_COMMAND_APDU:
                # Collecting more cannot make a command: keep the chain going, drop its data.
                self._rx, self._overflow = b"", True
            if pcb & 0x10:  # reader chaining: acknowledge, keep collecting
                return self._send(bytes([0xA2 | self._block]))
            apdu, self._rx = self._rx, b""
            self._state = _State.BUSY
            if self._overflow:
                self._overflow = False
                return Action(
                    Kind.SEND,
                    frame=self.respond(b"\x67\x00"),
                    refused=f"chained command longer than {MAX_COMMAND_APDU} bytes",
                )
            return Action(Kind.EXECUTE, apdu=apdu)
        if pcb & 0xE6 == 0xA2:  # R-block
            number = pcb & 0x01
            nak = bool(pcb & 0x10)
            if number == self._block:  # rules 11/12: the reader missed our last block
                return self._send(self._last)
            if nak:  # rule 12: the reader's block never arrived
                return self._send(bytes([0xA2 | self._block]))
            if self._tx:  # rule 13: ACK of our chained block, send the next one
                self._block ^= 1
                return self._send(self._next_chunk())
            return Action(Kind.NOTHING)
        if pcb & 0xF7 == 0xC2:  # S(DESELECT)
            self._state = _State.HALT
            return Action(Kind.SEND, frame=b"\xc2")
        return Action(Kind.NOTHING)

    def _next_chunk(self) -> bytes:
        chunk = self._tx.pop(0)
        pcb = 0x02 | self._block | (0x10 if self._tx else 0)
        return bytes([pcb]) + chunk

    def wtx_request(self, multiplier: int = 1) -> bytes:
        """The S(WTX) request frame to send while an APDU is still running."""
        if self._state is not _State.BUSY:
            raise ConfigurationError("WTX only while an APDU runs")
        self._wtx_pending = True
        return bytes([0xF2, max(1, min(multiplier, 59))])

    @property
    def busy(self) -> bool:
        """Whether an APDU is running (between EXECUTE and :meth:`respond`)."""
        return self._state is _State.BUSY

    @property
    def waiting_for_wtx(self) -> bool:
        """Whether a WTX request is still unanswered."""
        return self._wtx_pending

    def respond(self, response: bytes) -> bytes:
        """The first frame of the answer to the APDU that is running (chaining the rest)."""
        if self._state is not _State.BUSY:
            raise ConfigurationError("no APDU is running")
        size = self._fsd - 3  # PCB and two CRC bytes
        self._tx = [response[i : i + size] for i in range(0, len(response), size)] or [b""]
        self._state = _State.PROTOCOL
        self._wtx_pending = False
        frame = self._next_chunk()
        self._last = frame
        return frame

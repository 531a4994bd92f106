"""The virtual chip: one APDU in, one APDU out, with a real chip's access control.

Theory of operation. :meth:`VirtualCard.process` parses the command, then:

1. With a secure-messaging session open, a plain command answers ``6982`` and a
   protected command that fails its MAC or structure check answers ``6988``
   (``6987`` without a MAC); both end the session, so every later command must
   start over with BAC or PACE. A good protected command is unwrapped,
   dispatched, and its answer (even an error status) is protected.
2. Without a session, a protected command answers ``6988``; a plain one is
   dispatched.
3. Dispatch by INS: SELECT (``A4``), READ BINARY (``B0``, ``B1``), GET
   CHALLENGE (``84``), EXTERNAL AUTHENTICATE (``82``, BAC), MSE (``22``) and
   GENERAL AUTHENTICATE (``86``) for PACE and Chip Authentication, INTERNAL
   AUTHENTICATE (``88``, Active Authentication); anything else ``6D00``.

Files are checked at READ time: LDS files need a session (``6982`` otherwise),
EF.CardSecurity needs a PACE session, DG3/DG4 are never readable. Protocols
that change keys (PACE, CA) protect their last answer under the old keys (or
plain), then switch.

Quirks (:class:`~macnss_auth.nfc.card.model.CardQuirks` on the profile, see
:mod:`macnss_auth.nfc.card.quirks`) bend this behaviour the way real chips
do: answers in pieces with ``61xx`` and GET RESPONSE, ``6Cxx`` for a wrong Le,
short reads, extended length refused after announcing it, refusals in plain,
DO'84' required or refused, DER Active Authentication signatures.

:meth:`VirtualCard.reset` is a new tap: it forgets the session, the selected
files and every half-run protocol. The password retry counter survives (it
lives in the chip's persistent memory), as does nothing else.

Two ways a command can fail. A handler that refuses raises
:class:`~macnss_auth.nfc.card.command.CardStatusError` with the status word
a real chip answers (``6982``, ``6A80``...): that is the card's intended
behaviour, inside secure messaging the refusal is protected, and the session
goes on unless the error says otherwise. Any *other* exception out of the
card's code is an internal error (a bug, or input no handler foresaw): like a
real chip, :meth:`VirtualCard.process` then answers ``6F00`` ("no precise
diagnosis") in plain, drops the secure-messaging session and every half-run
protocol (BAC, PACE, CA, a pending GET RESPONSE), logs the exception's type
name and where it was raised -- never its message or arguments, which may
hold key material -- and answers the next command as usual. So no input can
stop a serving loop. Tests that want the traceback pass
``raise_internal_errors=True``: the card still drops its state, then re-raises.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections.abc import Callable

from macnss_auth.clock import RandomSource
from macnss_auth.errors import MalformedInput
from macnss_auth.nfc.apdu import CommandAPDU, StatusCode
from macnss_auth.nfc.card.bac import BacResponder
from macnss_auth.nfc.card.channel import CardSession
from macnss_auth.nfc.card.chip_auth import ChipAuthResponder, active_authentication_signature
from macnss_auth.nfc.card.command import CardStatusError, parse_command
from macnss_auth.nfc.card.filesystem import Access, Application, ElementaryFile
from macnss_auth.nfc.card.model import CardData
from macnss_auth.nfc.card.pace import PaceResponder
from macnss_auth.nfc.tlv import encode_length, encode_tlv, parse_all

__all__ = ["ATR_HISTORICAL_BYTES", "VirtualCard", "atr_from_historical_bytes"]

_log = logging.getLogger(__name__)

#: Historical bytes of the ATS/ATR: category 80, card service data (31 xx)... kept short.
ATR_HISTORICAL_BYTES = bytes.fromhex("8031B8738401E0")


def atr_from_historical_bytes(historical: bytes) -> bytes:
    """The ATR a PC/SC reader reports for a contactless ISO 14443-4 card (PC/SC part 3 §3.1.3.2.3).

    ``3B 8n 80 01 <historical bytes> TCK`` where TCK makes the XOR of T0..TCK zero.
    """
    body = bytes([0x80 | len(historical), 0x80, 0x01]) + historical
    tck = 0
    for byte in body:
        tck ^= byte
    return b"\x3b" + body + bytes([tck])


class VirtualCard:
    """An emulated eMRTD / eID chip.

    Thread-safe: a lock serializes :meth:`process` and :meth:`reset`, so a
    server thread and a test may share one card.

    Args:
        data: the card's personalization.
        random: the chip's randomness (challenges, nonces, ephemeral keys).
        raise_internal_errors: re-raise an internal error (any exception other
            than a refused command) after dropping the session, instead of
            answering ``6F00``. Off by default, so that a serving loop never
            dies; tests and fuzzers switch it on to see the traceback.
    """

    def __init__(
        self, data: CardData, *, random: RandomSource, raise_internal_errors: bool = False
    ) -> None:
        self._data = data
        self._raise_internal_errors = raise_internal_errors
        self._internal_errors = 0
        self._random = random
        self._lock = threading.RLock()
        self._bac = BacResponder(data.secrets.mrz_key_seed(), random=random)
        self._channel: CardSession | None = None
        self._pending_channel: CardSession | None = None
        self._df: Application = data.files.mf
        self._ef: ElementaryFile | None = None
        profile = data.profile
        self._pace = (
            PaceResponder(profile, data.secrets, random=random)
            if profile.pace_protocol is not None
            else None
        )
        self._quirks = profile.quirks
        self._ca = ChipAuthResponder(
            profile.chip_authentication,
            data.secrets,
            profile.quirks,
            version=profile.chip_authentication_version,
            random=random,
        )
        self._pace_done = False
        #: The rest of an answer sent in pieces (61xx), for GET RESPONSE.
        self._pending_answer = b""
        self._drop_after = False
        self._authenticating: str | None = None

    def __repr__(self) -> str:
        return f"VirtualCard(profile={self._data.profile.name!r})"

    @property
    def data(self) -> CardData:
        """The card's personalization."""
        return self._data

    @property
    def atr(self) -> bytes:
        """The ATR for PC/SC."""
        return atr_from_historical_bytes(ATR_HISTORICAL_BYTES)

    @property
    def session(self) -> str | None:
        """Who opened the secure-messaging session (``BAC``/``PACE``/``CA``), if any."""
        return None if self._channel is None else self._channel.established_by

    @property
    def internal_errors(self) -> int:
        """How many commands ended in an internal error (answered ``6F00``) so far."""
        return self._internal_errors

    @property
    def remaining_password_tries(self) -> int | None:
        """Tries left before the CAN-style password blocks, if the profile counts them."""
        return None if self._pace is None else self._pace.remaining_tries

    def reset(self) -> bytes:
        """Power cycle (a new tap): drop every volatile state; return the ATR."""
        with self._lock:
            self._drop_session()
            self._df = self._data.files.mf
            self._ef = None
            return self.atr

    def _drop_session(self) -> None:
        self._pending_answer = b""
        self._drop_after = False
        self._authenticating = None
        self._channel = None
        self._pending_channel = None
        self._bac.forget()
        if self._pace is not None:
            self._pace.abort()
        self._ca.abort()
        self._pace_done = False

    # -- the one entry point -----------------------------------------------------

    def process(self, raw: bytes) -> bytes:
        """Answer one command APDU (bytes in, response APDU bytes out).

        Every byte string gets a response: data and a two-byte status word. An
        internal error answers ``6F00`` and ends the session (see the module notes).

        Raises:
            TypeError: ``raw`` is not bytes (a caller's bug, not the card's).
            Exception: only with ``raise_internal_errors``: the internal error.
        """
        if type(raw) is not bytes:
            raise TypeError("a command APDU is bytes")
        with self._lock:
            try:
                return self._process_in_pieces(raw)
            except Exception as error:  # noqa: BLE001 (every bug answers 6F00, like a chip)
                return self._internal_error(error)

    def _internal_error(self, error: Exception) -> bytes:
        """6F00 in plain, every volatile state dropped; one log line without the message."""
        self._internal_errors += 1
        self._drop_session()
        frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
        where = (
            f"{os.path.basename(frame.filename)}:{frame.lineno} ({frame.name})"
            if frame is not None
            else "unknown"
        )
        kind = type(error)
        name = (
            kind.__qualname__
            if kind.__module__ == "builtins"
            else f"{kind.__module__}.{kind.__qualname__}"
        )
        # The type and the place only: an exception's message may carry keys or the MRZ.
        _log.warning(
            "virtual card: internal error %s in %s; answered 6F00 and dropped the session",
            name,
            where,
        )
        if self._raise_internal_errors:
            raise error
        return StatusCode.NO_PRECISE_DIAGNOSIS.encode()

    def _process_in_pieces(self, raw: bytes) -> bytes:
        with self._lock:
            chunk = self._quirks.get_response_chunk
            if chunk is None:
                return self._process(raw)
            if raw[:2] == b"\x00\xc0" and self._pending_answer:
                # GET RESPONSE travels in plain even inside secure messaging.
                answer, self._pending_answer = self._pending_answer, b""
            else:
                self._pending_answer = b""
                answer = self._process(raw)
            return self._in_pieces(answer, chunk)

    def _in_pieces(self, answer: bytes, chunk: int) -> bytes:
        """The first ``chunk`` bytes and ``61xx`` if more is left (ISO/IEC 7816-4 §5.3.4)."""
        body, status = answer[:-2], answer[-2:]
        if len(body) <= chunk:
            return answer
        self._pending_answer = body[chunk:] + status
        left = len(body) - chunk
        return body[:chunk] + bytes([0x61, left if left < 256 else 0])

    def _process(self, raw: bytes) -> bytes:
        with self._lock:
            try:
                command = parse_command(raw)
            except CardStatusError as error:
                if self._channel is not None:
                    self._drop_session()
                return error.status
            if command.cla & 0x80 or command.cla & 0x60:
                # Proprietary classes and further interindustry classes are not ours.
                return StatusCode.CLA_NOT_SUPPORTED.encode()
            if command.is_extended and self._quirks.refuse_extended_length:
                # The chip announced extended length but its SM layer cannot take it.
                self._drop_session()
                return StatusCode.WRONG_LENGTH.encode()
            if command.is_extended and not self._data.profile.extended_length:
                return StatusCode.WRONG_LENGTH.encode()
            channel = self._channel
            if channel is None:
                if command.secure_messaging:
                    return StatusCode.SM_DATA_OBJECTS_INCORRECT.encode()
                data, status = self._dispatch_safely(command)
                self._apply_pending()
                return data + status
            if not command.secure_messaging:
                self._drop_session()
                return StatusCode.SECURITY_STATUS_NOT_SATISFIED.encode()
            try:
                inner = channel.unprotect(raw)
            except CardStatusError as error:
                self._drop_session()
                return error.status
            data, status = self._dispatch_safely(inner)
            if self._quirks.plain_errors and status[:1] not in (b"\x90", b"\x62", b"\x61"):
                # Some chips refuse in plain and forget the session.
                self._drop_session()
                return status
            response = channel.protect(data, status)
            self._apply_pending()
            return response

    def _apply_pending(self) -> None:
        if self._drop_after:
            self._drop_session()
        elif self._pending_channel is not None:
            self._channel, self._pending_channel = self._pending_channel, None

    def _dispatch_safely(self, command: CommandAPDU) -> tuple[bytes, bytes]:
        try:
            data = self._dispatch(command)
        except CardStatusError as error:
            if error.drop_session:
                # The answer still goes out (protected if it came in so); the session ends after it.
                self._drop_after = True
            return b"", error.status
        if isinstance(data, tuple):
            return data
        return data, StatusCode.OK.encode()

    def _dispatch(self, command: CommandAPDU) -> bytes | tuple[bytes, bytes]:
        handlers: dict[int, Callable[[CommandAPDU], bytes | tuple[bytes, bytes]]] = {
            0xA4: self._select,
            0xB0: self._read_binary,
            0xB1: self._read_binary_odd,
            0x84: self._get_challenge,
            0x82: self._external_authenticate,
            0x22: self._manage_security_environment,
            0x86: self._general_authenticate,
            0x88: self._internal_authenticate,
            0x2C: self._reset_retry_counter,
        }
        handler = handlers.get(command.ins)
        if handler is None:
            raise CardStatusError(StatusCode.INS_NOT_SUPPORTED)
        return handler(command)

    # -- files -------------------------------------------------------------------

    def _select(self, command: CommandAPDU) -> bytes:
        p1, p2 = command.p1, command.p2
        # P2: first occurrence only (b2 b1 = 00); b4 b3 = 00 FCI, 01 FCP, 10 FMD, 11 nothing.
        if p2 & 0xF3:
            raise CardStatusError(StatusCode.INCORRECT_P1_P2)
        files = self._data.files
        if p1 == 0x04:  # by DF name (AID)
            app = files.application(command.data) if command.data else None
            if app is None:
                raise CardStatusError(StatusCode.FILE_NOT_FOUND)
            self._df, self._ef = app, None
            return b""
        if p1 in (0x00, 0x01, 0x02):
            if p1 == 0x00 and command.data in (b"", b"\x3f\x00"):
                self._df, self._ef = files.mf, None
                return b""
            if len(command.data) != 2:
                raise CardStatusError(StatusCode.WRONG_LENGTH)
            ef = self._df.by_fid(int.from_bytes(command.data, "big"))
            if ef is None:
                raise CardStatusError(StatusCode.FILE_NOT_FOUND)
            self._ef = ef
            if p2 & 0x0C == 0x0C:
                return b""
            return _fcp(ef)
        raise CardStatusError(StatusCode.INCORRECT_P1_P2)

    def _check_access(self, ef: ElementaryFile) -> None:
        channel = self._channel
        if ef.access is Access.ALWAYS:
            return
        if ef.access is Access.NEVER and channel is not None:
            raise CardStatusError(
                StatusCode.SECURITY_STATUS_NOT_SATISFIED,
                drop_session=self._quirks.drop_session_on_refusal,
            )
        if ef.access is Access.NEVER or channel is None:
            raise CardStatusError(StatusCode.SECURITY_STATUS_NOT_SATISFIED)
        if ef.access is Access.PACE and not self._pace_done:
            raise CardStatusError(StatusCode.SECURITY_STATUS_NOT_SATISFIED)

    def _read(self, ef: ElementaryFile, offset: int, le: int | None) -> tuple[bytes, bytes]:
        self._check_access(ef)
        if le is None:
            raise CardStatusError(StatusCode.WRONG_LENGTH)
        if offset >= len(ef.data):
            raise CardStatusError(StatusCode.WRONG_PARAMETERS)
        left = len(ef.data) - offset
        if self._quirks.wrong_le and le > left:
            # "Wrong Le: SW2 gives the exact length" (ISO/IEC 7816-4 §5.6).
            raise CardStatusError(bytes([0x6C, left if left < 256 else 0]))
        short = self._quirks.max_read is not None and le > self._quirks.max_read
        if self._quirks.max_read is not None:
            le = min(le, self._quirks.max_read)
        chunk = ef.data[offset : offset + le]
        status = StatusCode.OK if len(chunk) == le and not short else StatusCode.END_OF_FILE
        return chunk, status.encode()

    def _read_binary(self, command: CommandAPDU) -> tuple[bytes, bytes]:
        if command.p1 & 0x80:  # short file identifier in P1, offset in P2
            if command.p1 & 0x60:
                raise CardStatusError(StatusCode.INCORRECT_P1_P2)
            ef = self._df.by_sfi(command.p1 & 0x1F)
            if ef is None:
                raise CardStatusError(StatusCode.FILE_NOT_FOUND)
            self._ef = ef
            offset = command.p2
        else:
            if self._ef is None:
                raise CardStatusError(StatusCode.CONDITIONS_NOT_SATISFIED)
            ef = self._ef
            offset = (command.p1 << 8) | command.p2
        return self._read(ef, offset, command.ne)

    def _read_binary_odd(self, command: CommandAPDU) -> tuple[bytes, bytes]:
        # ISO/IEC 7816-4 §11.2.3: P1-P2 = file id (0000: current EF); offset in DO54.
        fid = (command.p1 << 8) | command.p2
        if fid == 0:
            if self._ef is None:
                raise CardStatusError(StatusCode.CONDITIONS_NOT_SATISFIED)
            ef = self._ef
        elif fid & 0xFFE0 == 0:
            found = self._df.by_sfi(fid & 0x1F)
            if found is None:
                raise CardStatusError(StatusCode.FILE_NOT_FOUND)
            ef = found
        else:
            found = self._df.by_fid(fid)
            if found is None:
                raise CardStatusError(StatusCode.FILE_NOT_FOUND)
            ef = found
        self._ef = ef
        try:
            objects = parse_all(command.data)
        except MalformedInput:
            raise CardStatusError(StatusCode.INCORRECT_DATA) from None
        if len(objects) != 1 or objects[0].tag != 0x54 or not 1 <= len(objects[0].value) <= 3:
            raise CardStatusError(StatusCode.INCORRECT_DATA)
        offset = int.from_bytes(objects[0].value, "big")
        if command.ne is None:
            raise CardStatusError(StatusCode.WRONG_LENGTH)
        # The answer is DO53 around the data; Le bounds the whole data object.
        chunk, status = self._read(ef, offset, _fit_in_do53(command.ne))
        return encode_tlv(0x53, chunk), status

    # -- challenge and BAC -----------------------------------------------------------

    def _get_challenge(self, command: CommandAPDU) -> bytes:
        if command.p1 or command.p2:
            raise CardStatusError(StatusCode.INCORRECT_P1_P2)
        if command.ne is None or command.data or command.ne > 256:
            raise CardStatusError(StatusCode.WRONG_LENGTH)
        return self._bac.challenge(command.ne)

    def _external_authenticate(self, command: CommandAPDU) -> bytes:
        if not self._data.profile.bac:
            raise CardStatusError(StatusCode.INS_NOT_SUPPORTED)
        if self._channel is not None:
            raise CardStatusError(StatusCode.CONDITIONS_NOT_SATISFIED)
        response, channel = self._bac.external_authenticate(command.data)
        self._pending_channel = channel
        return response

    # -- PACE, CA, AA (filled in by their modules) -----------------------------------

    def _manage_security_environment(self, command: CommandAPDU) -> bytes | tuple[bytes, bytes]:
        reference = (command.p1 << 8) | command.p2
        if reference == 0xC1A4:  # Set AT for PACE (mutual authentication)
            if self._pace is None:
                raise CardStatusError(StatusCode.FUNCTION_NOT_SUPPORTED)
            self._check_parameter_reference(command.data)
            status = self._pace.set_at(command.data)
            self._authenticating = "PACE"
            return b"", status
        if reference in (0x41A4, 0x41A6):  # Chip Authentication: Set AT, Set KAT
            if self._channel is None:
                raise CardStatusError(StatusCode.SECURITY_STATUS_NOT_SATISFIED)
            if reference == 0x41A6:
                self._pending_channel = self._ca.set_kat(command.data)
                return b""
            self._ca.set_at(command.data)
            self._authenticating = "CA"
            return b""
        raise CardStatusError(StatusCode.INCORRECT_P1_P2)

    def _check_parameter_reference(self, data: bytes) -> None:
        """Quirks: DO'84' (domain parameter id) in MSE:Set AT required, or refused."""
        quirks = self._quirks
        if not (quirks.pace_requires_parameter_id or quirks.pace_refuses_parameter_id):
            return
        try:
            tags = {item.tag for item in parse_all(data)}
        except MalformedInput:
            raise CardStatusError(StatusCode.INCORRECT_DATA) from None
        if (0x84 in tags and quirks.pace_refuses_parameter_id) or (
            0x84 not in tags and quirks.pace_requires_parameter_id
        ):
            raise CardStatusError(StatusCode.INCORRECT_DATA)

    def _general_authenticate(self, command: CommandAPDU) -> bytes:
        if command.p1 or command.p2:
            raise CardStatusError(StatusCode.INCORRECT_P1_P2)
        if self._authenticating == "PACE" and self._pace is not None:
            try:
                answer, channel = self._pace.general_authenticate(command)
            except CardStatusError:
                self._authenticating = None
                raise
            if channel is not None:
                self._authenticating = None
                self._pending_channel = channel
                self._pace_done = True
            return answer
        if self._authenticating == "CA":
            self._authenticating = None
            answer, channel = self._ca.general_authenticate(command.data)
            self._pending_channel = channel
            return answer
        raise CardStatusError(StatusCode.CONDITIONS_NOT_SATISFIED)

    def _reset_retry_counter(self, command: CommandAPDU) -> bytes:
        # PIN unblock/change (BSI TR-03110-3 B.11.4): only inside secure messaging.
        if self._pace is None:
            raise CardStatusError(StatusCode.INS_NOT_SUPPORTED)
        if self._channel is None:
            raise CardStatusError(StatusCode.SECURITY_STATUS_NOT_SATISFIED)
        self._pace.reset_retry_counter(command.p1, command.p2, command.data)
        return b""

    def _internal_authenticate(self, command: CommandAPDU) -> bytes:
        if self._data.profile.active_authentication is None or self._quirks.aa_unsupported:
            raise CardStatusError(StatusCode.INS_NOT_SUPPORTED)
        if command.p1 or command.p2:
            raise CardStatusError(StatusCode.INCORRECT_P1_P2)
        if self._channel is None:
            raise CardStatusError(StatusCode.SECURITY_STATUS_NOT_SATISFIED)
        if len(command.data) != 8 or command.ne is None:
            raise CardStatusError(StatusCode.WRONG_LENGTH)
        key = self._data.secrets.aa_key
        if key is None:  # a clone: the key never leaves a genuine chip
            raise CardStatusError(StatusCode.REFERENCED_DATA_NOT_FOUND)
        return active_authentication_signature(key, command.data, der=self._quirks.aa_der_signature)


def _fit_in_do53(ne: int) -> int:
    """The most file bytes whose DO53 (tag, length, value) fits in ``ne`` bytes."""
    for header in (2, 3, 4):
        n = ne - header
        if n >= 0 and 1 + len(encode_length(n)) == header:
            return n
    return max(ne - 4, 0)


def _fcp(ef: ElementaryFile) -> bytes:
    """A minimal FCP template: file size (80), descriptor (82: transparent EF), id (83)."""
    body = (
        encode_tlv(0x80, len(ef.data).to_bytes(2, "big"))
        + encode_tlv(0x82, b"\x01")
        + encode_tlv(0x83, ef.fid.to_bytes(2, "big"))
    )
    return encode_tlv(0x62, body)

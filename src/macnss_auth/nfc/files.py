"""Selecting applications and reading files, as sans-I/O protocol objects.

Theory of operation. Reading an elementary file is a small conversation
with rules of its own (ISO/IEC 7816-4 §11.2.3, ICAO 9303-10 §3.6):

* The first READ BINARY names the file by its short file identifier
  (``P1 = 80 | SFI``), which selects it without a SELECT round trip, and
  asks for a whole chunk. The file is one BER-TLV object: the tag and
  length in those first bytes announce how long the whole file is
  (:func:`announced_length`).
* The rest comes at offsets. Up to 32767 the offset travels in P1-P2 (even
  INS ``B0``); beyond, the odd INS ``B1`` carries it in DO'54' and the chip
  answers in DO'53' (:func:`unwrap_odd_read`, strict: exactly one DO'53' and
  nothing else).
* Chips do not all take every chunk size. ``6Cxx`` says "ask again with Le
  = xx"; ``6700`` (or a ``6Cxx`` that is no smaller) means "smaller, please":
  the chunk is halved, down to :data:`MIN_CHUNK`. ``6282`` ("end of file
  before Ne bytes") still carries data: some chips answer every READ BINARY
  with at most a few bytes and ``6282``.
* Inside secure messaging, a chip that answers in plain ends the session. A
  plain ``6700`` to an extended-length command (the chip announced extended
  length and does not take it after all) or a plain ``6Cxx`` raise
  :class:`ReadSessionEnded`, which says what to do in the next session
  (short chunks, or that Le).
* A read that breaks (the link, the session, the caller's deadline) keeps
  what it had: :attr:`ReadFile.progress`. A new :class:`ReadFile` given that
  progress (``resume=``) SELECTs the file by its file identifier -- a new
  session has nothing selected -- and goes on at the offset.

Hostile answers are typed errors, never a foreign exception: a header that
announces more than ``max_length``, an answer longer than the Le it answers,
a file that ends before its announced length, a DO'53' with anything around
it, a status word out of place.

:class:`SelectApplication` and :class:`SelectMasterFile` are the two SELECTs
around access control. The objects here never talk to a reader:
:func:`~macnss_auth.nfc.protocol.run` drives them over a transport.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Set

import attrs

from macnss_auth.errors import (
    ConfigurationError,
    MacnssAuthError,
    MalformedInput,
    RemoteProtocolError,
    SecureMessagingError,
)
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU, read_binary_at
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.lds.files import LdsFile
from macnss_auth.nfc.protocol import Event, ProtocolMachine
from macnss_auth.nfc.sm import SecureChannel
from macnss_auth.nfc.tlv import parse_all

__all__ = [
    "ATR_INFO_SFI",
    "CARD_ACCESS_SFI",
    "EMRTD_AID",
    "EXTENDED_CHUNK",
    "MAX_CARD_ACCESS_BYTES",
    "MAX_FILE_BYTES",
    "MIN_CHUNK",
    "SHORT_CHUNK",
    "ReadFile",
    "ReadProgress",
    "ReadSessionEnded",
    "ReadState",
    "SelectApplication",
    "SelectMasterFile",
    "SelectState",
    "announced_length",
    "announced_response_size",
    "read_chunk_size",
    "unwrap_odd_read",
]

#: The eMRTD LDS1 application identifier (ICAO 9303-10 §3.10).
EMRTD_AID = bytes.fromhex("A0000002471001")
#: The largest file a chip may announce (a DG2 or DG3 of real documents is far smaller).
MAX_FILE_BYTES = 1 << 20
#: Plain bytes per protected short response: DO'87' (padding + cryptogram), DO'99', DO'8E'
#: and the status word must fit 256 bytes.
SHORT_CHUNK = {SymmetricCipher.AES: 223, SymmetricCipher.TDES: 231}
#: The chunk for extended-length reads when the chip announces room for it.
EXTENDED_CHUNK = 4096
#: The smallest chunk halving goes down to before a read gives up.
MIN_CHUNK = 16
#: Short file identifiers in the master file (ICAO 9303-10 §3.11): EF.CardAccess, EF.ATR/INFO.
CARD_ACCESS_SFI = 0x1C
ATR_INFO_SFI = 0x01
#: The largest EF.CardAccess a chip may announce.
MAX_CARD_ACCESS_BYTES = 4096
#: Plain reads before secure messaging ask for short answers.
_PLAIN_CHUNK = 256
#: Tries per chunk (6Cxx, halving) before a read gives up.
_MAX_TRIES = 16
_SHORT_NE = 256
_OK, _END_OF_FILE, _WRONG_LENGTH = 0x9000, 0x6282, 0x6700
_DATA_STATUS = (_OK, _END_OF_FILE)


def announced_length(head: bytes, *, name: str = "the file") -> int:
    """The whole file's length from the BER-TLV header in its first bytes.

    Raises:
        RemoteProtocolError: fewer bytes than a tag and its length.
        MalformedInput: a length this reader does not take (indefinite, or
            more than three length bytes).
    """
    if len(head) < 2:
        raise RemoteProtocolError(f"{name} is too short to hold a TLV header")
    offset = 1
    if head[0] & 0x1F == 0x1F:
        # Multi-byte tag: continuation bytes have b8 set (ISO/IEC 8825-1 §8.1.2.4).
        while offset < len(head) and head[offset] & 0x80:
            offset += 1
        offset += 1
    if offset >= len(head):
        raise RemoteProtocolError(f"{name} has a truncated TLV header")
    first = head[offset]
    if first < 0x80:
        return offset + 1 + first
    count = first & 0x7F
    if count == 0 or count > 3 or offset + 1 + count > len(head):
        raise MalformedInput(f"{name} has an unusable length", field=name)
    return offset + 1 + count + int.from_bytes(head[offset + 1 : offset + 1 + count], "big")


def unwrap_odd_read(data: bytes) -> bytes:
    """The file bytes of an odd-INS READ BINARY answer: the value of its one DO'53'.

    ISO/IEC 7816-4 §11.2.3: the answer to ``B1`` is a discretionary data object
    DO'53' holding the bytes read. Anything else -- another tag, a second
    object, trailing bytes, a truncated length -- is refused.

    Raises:
        RemoteProtocolError: the answer is not exactly one DO'53'.
    """
    try:
        objects = parse_all(data)
    except MalformedInput as exc:
        raise RemoteProtocolError(f"READ BINARY (B1) answered a malformed DO'53': {exc}") from exc
    if len(objects) != 1 or objects[0].tag != 0x53:
        raise RemoteProtocolError("READ BINARY (B1) answered without DO'53'")
    return objects[0].value


def announced_response_size(atr_info: bytes) -> int | None:
    """The largest response EF.ATR/INFO announces (DO'7F66', ISO/IEC 7816-4 §12.7.1), if above 256.

    An unreadable announcement means no extended length: ``None``.
    """
    try:
        for item in parse_all(atr_info):
            if item.tag == 0x7F66:
                limits = [int.from_bytes(i.value, "big") for i in parse_all(item.value)]
                if len(limits) == 2 and limits[1] > _SHORT_NE:
                    return limits[1]
    except MacnssAuthError:
        return None
    return None


def read_chunk_size(cipher: SymmetricCipher, *, extended: bool, announced: int | None) -> int:
    """The plain bytes one protected READ BINARY should ask for.

    Args:
        cipher: the secure channel's cipher (the padding differs).
        extended: whether to use extended length.
        announced: the response size EF.ATR/INFO announces, if any; with
            extended length and no announcement, :data:`EXTENDED_CHUNK`.
    """
    chunk = SHORT_CHUNK[cipher]
    if extended:
        # DO'87' padding and header, DO'99', DO'8E' and the status word must fit the
        # announced response size; with no announcement, trust the caller's choice.
        room = announced if announced is not None else EXTENDED_CHUNK + 64
        chunk = max(chunk, min(EXTENDED_CHUNK, (room - 21) // 16 * 16 - 1))
    return chunk


def _send(command: CommandAPDU, channel: SecureChannel | None) -> bytes:
    # A closed channel raises SecureMessagingError itself: the session is gone.
    return command.to_bytes() if channel is None else channel.protect(command)


def _receive(response: bytes, channel: SecureChannel | None) -> ResponseAPDU:
    return ResponseAPDU.from_bytes(response) if channel is None else channel.unprotect(response)


def _check_channel(channel: object) -> None:
    if channel is not None and not isinstance(channel, SecureChannel):
        raise TypeError("channel must be a SecureChannel or None")


# -- SELECT ------------------------------------------------------------------------------


class SelectState(enum.Enum):
    """States of :class:`SelectApplication` and :class:`SelectMasterFile`."""

    START = "start"
    AWAIT_ANSWER = "await_answer"
    DONE = "done"
    FAILED = "failed"


_SELECT_TABLE: Mapping[tuple[enum.Enum, Event], Set[enum.Enum]] = {
    (SelectState.START, Event.COMMAND): {SelectState.AWAIT_ANSWER},
    (SelectState.AWAIT_ANSWER, Event.RESPONSE): {SelectState.DONE},
}


class SelectApplication(ProtocolMachine[SelectState, bytes]):
    """SELECT an application by its AID (``00 A4 04 0C``), in plain or protected.

    The result is the answer's data (empty: P2 ``0C`` asks for no FCI).

    Args:
        aid: the application identifier; the eMRTD application by default.
        channel: the secure channel to send it in; ``None`` sends it in plain.

    :meth:`receive_response` raises :class:`~macnss_auth.errors.RemoteProtocolError`
    (with ``status_word``) unless the chip answers ``9000``, and
    :class:`~macnss_auth.errors.SecureMessagingError` for a protected answer
    that fails its checks.
    """

    FAILED = SelectState.FAILED
    DONE = SelectState.DONE
    TRANSITIONS = _SELECT_TABLE

    def __init__(self, aid: bytes = EMRTD_AID, *, channel: SecureChannel | None) -> None:
        super().__init__(SelectState.START)
        if type(aid) is not bytes or not 5 <= len(aid) <= 16:
            raise ConfigurationError("an AID is 5 to 16 bytes")
        _check_channel(channel)
        self._apdu = CommandAPDU(0x00, 0xA4, 0x04, 0x0C, data=aid)
        self._channel = channel
        self._label = "eMRTD application" if aid == EMRTD_AID else f"application {aid.hex()}"

    def _command(self, state: SelectState) -> tuple[bytes, SelectState]:
        return _send(self._apdu, self._channel), SelectState.AWAIT_ANSWER

    def _response(self, state: SelectState, response: bytes) -> SelectState:
        answer = _receive(response, self._channel)
        answer.raise_for_status(f"SELECT {self._label}")
        self._set_result(answer.data)
        return SelectState.DONE


class SelectMasterFile(ProtocolMachine[SelectState, int]):
    """SELECT the master file (``00 A4 00 0C 02 3F00``) in plain, where PACE starts.

    The result is the status word, whatever it is: a chip still holding a
    secure-messaging session may refuse this plain command and end that
    session, and the caller decides whether to ask again.
    """

    FAILED = SelectState.FAILED
    DONE = SelectState.DONE
    TRANSITIONS = _SELECT_TABLE

    def __init__(self) -> None:
        super().__init__(SelectState.START)

    def _command(self, state: SelectState) -> tuple[bytes, SelectState]:
        command = CommandAPDU(0x00, 0xA4, 0x00, 0x0C, data=b"\x3f\x00")
        return command.to_bytes(), SelectState.AWAIT_ANSWER

    def _response(self, state: SelectState, response: bytes) -> SelectState:
        self._set_result(ResponseAPDU.from_bytes(response).sw)
        return SelectState.DONE


# -- READ BINARY ---------------------------------------------------------------------------


class ReadSessionEnded(SecureMessagingError):
    """The chip answered a protected READ BINARY in plain and so ended secure messaging.

    Not tampering: the chip says what it wants. Open a new session and resume
    (``ReadFile(..., resume=read.progress)``) with what this error says.

    Attributes:
        status_word: the plain status word.
        extended_length_refused: a plain ``6700`` to an extended-length command:
            read in short chunks from now on.
        le: a plain ``6Cxx``: the Le the chip asks for (pass it as ``le_hint``).
    """

    def __init__(
        self,
        message: str,
        *,
        status_word: int,
        extended_length_refused: bool = False,
        le: int | None = None,
    ) -> None:
        super().__init__(message, status_word=status_word)
        self.extended_length_refused = extended_length_refused
        self.le = le


def _data_repr(value: bytes) -> str:
    return f"<{len(value)} bytes>"


@attrs.frozen
class ReadProgress:
    """How much of a file has arrived; what a broken read hands to the next one.

    Attributes:
        data: the file's bytes so far.
        total: the announced length, once the first chunk is in (else ``None``).
    """

    data: bytes = attrs.field(default=b"", repr=_data_repr)
    total: int | None = None

    def __attrs_post_init__(self) -> None:
        if type(self.data) is not bytes:
            raise TypeError("data must be bytes")
        if self.total is None:
            if self.data:
                raise ConfigurationError("bytes read without a known length")
            return
        _check_int("total", self.total, 1, MAX_FILE_BYTES)
        if len(self.data) > self.total:
            raise ConfigurationError("more bytes read than the file holds")

    @property
    def complete(self) -> bool:
        """Whether the whole file is in."""
        return self.total is not None and len(self.data) >= self.total


class ReadState(enum.Enum):
    """States of :class:`ReadFile`."""

    SELECT = "select"
    AWAIT_SELECT = "await_select"
    READ = "read"
    AWAIT_CHUNK = "await_chunk"
    DONE = "done"
    FAILED = "failed"


#: (done, total) after each chunk; raising from it stops the read (progress is kept).
ChunkCallback = Callable[[int, int], None]


class ReadFile(ProtocolMachine[ReadState, bytes]):
    """Read one elementary file whole; the result is its bytes (exactly the announced length).

    Args:
        name: the file's name in messages (``"DG2"``, ``"CardAccess"``).
        short_file_id: read the first chunk by short file identifier (1..30).
        file_id: SELECT the file by this identifier first: needed without a
            short file identifier and to resume in a new session.
        channel: the secure channel; ``None`` reads in plain.
        chunk: plain bytes per READ BINARY (see :func:`read_chunk_size`);
            above 256, extended length. Halved when the chip refuses a size;
            the last value is :attr:`chunk`.
        max_length: the largest length a header may announce.
        resume: the :attr:`progress` of a read that broke; the file is SELECTed
            by ``file_id`` and read on from the offset.
        le_hint: the Le a chip asked for (``ReadSessionEnded.le``) in the
            session before: the next READ BINARY asks for no more.
        length_from_header: ``False`` for a file that is not one TLV object
            (EF.ATR/INFO): the file is what the first READ BINARY answers.
        on_chunk: called as ``on_chunk(done, total)`` after each chunk.

    :meth:`receive_response` raises :class:`~macnss_auth.errors.RemoteProtocolError`
    (with ``status_word`` when the chip gave one) for a refusal or a
    misbehaving chip, :class:`ReadSessionEnded` when the chip ends secure
    messaging in a way a new session can work around, and
    :class:`~macnss_auth.errors.SecureMessagingError` for a protected answer
    that fails its checks (tampering).
    """

    FAILED = ReadState.FAILED
    DONE = ReadState.DONE
    TRANSITIONS = {  # noqa: RUF012 (the table is read only)
        (ReadState.SELECT, Event.COMMAND): {ReadState.AWAIT_SELECT},
        (ReadState.AWAIT_SELECT, Event.RESPONSE): {ReadState.READ},
        (ReadState.READ, Event.COMMAND): {ReadState.AWAIT_CHUNK},
        (ReadState.AWAIT_CHUNK, Event.RESPONSE): {ReadState.READ, ReadState.DONE},
    }

    def __init__(
        self,
        *,
        name: str,
        short_file_id: int | None = None,
        file_id: int | None = None,
        channel: SecureChannel | None,
        chunk: int,
        max_length: int = MAX_FILE_BYTES,
        resume: ReadProgress | None = None,
        le_hint: int | None = None,
        length_from_header: bool = True,
        on_chunk: ChunkCallback | None = None,
    ) -> None:
        _check_channel(channel)
        _check_int("chunk", chunk, 1, 65536)
        _check_int("max_length", max_length, 1, MAX_FILE_BYTES)
        if short_file_id is not None:
            _check_int("short_file_id", short_file_id, 1, 30)
        if file_id is not None:
            _check_int("file_id", file_id, 0, 0xFFFF)
        if le_hint is not None:
            _check_int("le_hint", le_hint, 1, 65536)
        progress = resume if resume is not None else ReadProgress()
        if not isinstance(progress, ReadProgress):
            raise TypeError("resume must be a ReadProgress")
        # Half-way through a file, a new session has nothing selected: SELECT by file id.
        select = file_id is not None and (short_file_id is None or progress.total is not None)
        if short_file_id is None and file_id is None:
            raise ConfigurationError("a file to read needs a short file id or a file id")
        if progress.total is not None and file_id is None:
            raise ConfigurationError("resuming a read needs the file id to SELECT it again")
        if not length_from_header and progress.total is not None:
            raise ConfigurationError("a file without a TLV header cannot be resumed")
        if progress.complete or (progress.total is not None and progress.total > max_length):
            raise ConfigurationError("nothing to resume: the file is whole, or longer than allowed")
        super().__init__(ReadState.SELECT if select else ReadState.READ)
        self._name = name
        self._sfi = short_file_id
        self._file_id = file_id
        self._channel = channel
        self._chunk = chunk
        self._max_length = max_length
        self._data = bytearray(progress.data)
        self._total = progress.total
        self._hint = le_hint
        self._header = length_from_header
        self._on_chunk = on_chunk
        # The READ BINARY in flight: the bytes wanted, its Ne (DO'53' header included for
        # odd INS), whether it was odd INS; and this chunk's tries.
        self._size = 0
        self._ne = 0
        self._odd = False
        self._retry: int | None = None
        self._tries = 0

    @classmethod
    def lds(
        cls,
        ef: LdsFile,
        *,
        channel: SecureChannel | None,
        chunk: int,
        max_length: int = MAX_FILE_BYTES,
        resume: ReadProgress | None = None,
        le_hint: int | None = None,
        on_chunk: ChunkCallback | None = None,
    ) -> ReadFile:
        """A read of an LDS elementary file: its name, short file id and file id."""
        return cls(
            name=ef.name,
            short_file_id=ef.short_file_id,
            file_id=ef.file_id,
            channel=channel,
            chunk=chunk,
            max_length=max_length,
            resume=resume,
            le_hint=le_hint,
            on_chunk=on_chunk,
        )

    @classmethod
    def card_access(cls) -> ReadFile:
        """The plain read of EF.CardAccess (the PACE parameters), before access control."""
        return cls._plain("CardAccess", CARD_ACCESS_SFI, max_length=MAX_CARD_ACCESS_BYTES)

    @classmethod
    def atr_info(cls) -> ReadFile:
        """The plain read of EF.ATR/INFO (see :func:`announced_response_size`): one answer."""
        return cls._plain("ATR/INFO", ATR_INFO_SFI, length_from_header=False)

    @classmethod
    def _plain(
        cls,
        name: str,
        sfi: int,
        *,
        max_length: int = MAX_FILE_BYTES,
        length_from_header: bool = True,
    ) -> ReadFile:
        return cls(
            name=name,
            short_file_id=sfi,
            channel=None,
            chunk=_PLAIN_CHUNK,
            max_length=max_length,
            length_from_header=length_from_header,
        )

    @property
    def progress(self) -> ReadProgress:
        """What has arrived so far; kept when the read fails, for ``resume=``."""
        return ReadProgress(bytes(self._data), self._total)

    @property
    def chunk(self) -> int:
        """The chunk size now (after any halving): a good start for the next file."""
        return self._chunk

    def __repr__(self) -> str:
        return (
            f"<ReadFile {self._name} state={self.state.name} read={len(self._data)}/{self._total}>"
        )

    # -- commands ------------------------------------------------------------------

    def _command(self, state: ReadState) -> tuple[bytes, ReadState]:
        if state is ReadState.SELECT:
            assert self._file_id is not None  # noqa: S101 (the constructor chose SELECT for it)
            select = CommandAPDU(0x00, 0xA4, 0x02, 0x0C, data=self._file_id.to_bytes(2, "big"))
            return _send(select, self._channel), ReadState.AWAIT_SELECT
        size = self._retry if self._retry is not None else self._next_size()
        self._size = size
        offset = len(self._data)
        if self._total is None and self._sfi is not None:
            command = CommandAPDU(
                0x00, 0xB0, 0x80 | self._sfi, 0x00, ne=size, extended=size > _SHORT_NE
            )
        else:
            command = read_binary_at(offset, size)
        self._odd = bool(command.ins & 1)
        self._ne = command.ne or size
        return _send(command, self._channel), ReadState.AWAIT_CHUNK

    def _next_size(self) -> int:
        size = self._chunk
        if self._total is not None:
            size = min(size, self._total - len(self._data))
        if self._hint is not None:
            size, self._hint = min(size, self._hint), None
        return size

    # -- responses ------------------------------------------------------------------

    def _response(self, state: ReadState, response: bytes) -> ReadState:
        if state is ReadState.AWAIT_SELECT:
            _receive(response, self._channel).raise_for_status(f"SELECT {self._name}")
            return ReadState.READ
        size = self._size
        try:
            answer = _receive(response, self._channel)
        except SecureMessagingError as exc:
            ended = self._session_ended(exc, size)
            if ended is None:
                raise
            raise ended from exc
        data = answer.data
        if len(data) > self._ne:
            raise RemoteProtocolError(
                f"{self._name}: {len(data)} bytes in answer to a READ BINARY of {self._ne}",
                status_word=answer.sw,
            )
        if self._odd and answer.sw in _DATA_STATUS and data:
            data = unwrap_odd_read(data)
        if answer.sw1 == 0x6C and (answer.sw2 or 256) < size:
            # ISO/IEC 7816-4 §5.6: ask again with exactly xx.
            return self._try_again(answer.sw, answer.sw2 or 256)
        if answer.sw == _WRONG_LENGTH or answer.sw1 == 0x6C:
            if size <= MIN_CHUNK:
                raise RemoteProtocolError("the chip refuses every read size", status_word=answer.sw)
            self._chunk = max(MIN_CHUNK, self._chunk // 2)
            return self._try_again(answer.sw, max(MIN_CHUNK, size // 2))
        if answer.sw not in _DATA_STATUS:
            answer.raise_for_status(f"READ BINARY {self._name}")
        self._retry, self._tries = None, 0
        return self._take(data, answer.sw)

    def _session_ended(self, exc: SecureMessagingError, size: int) -> ReadSessionEnded | None:
        word = exc.status_word
        if word is None:
            return None  # a protected answer that fails its checks: tampering
        if size > _SHORT_NE and word == _WRONG_LENGTH:
            return ReadSessionEnded(
                f"READ BINARY {self._name}: the chip refuses extended length (6700 in plain)",
                status_word=word,
                extended_length_refused=True,
            )
        if word >> 8 == 0x6C and (word & 0xFF or 256) < size:
            return ReadSessionEnded(
                f"READ BINARY {self._name}: the chip asks for Le {word & 0xFF or 256} in plain",
                status_word=word,
                le=word & 0xFF or 256,
            )
        return None

    def _try_again(self, word: int, size: int) -> ReadState:
        self._tries += 1
        if self._tries >= _MAX_TRIES:
            raise RemoteProtocolError("the chip refuses every read size", status_word=word)
        self._retry = size
        return ReadState.READ

    def _take(self, data: bytes, word: int) -> ReadState:
        if self._total is None:
            if not self._header:
                self._total = len(data)
            else:
                total = announced_length(data, name=self._name)
                if total > self._max_length:
                    raise RemoteProtocolError(
                        f"{self._name} announces {total} bytes: not plausible", status_word=word
                    )
                self._total = total
            # A chip may pad a file past its TLV object: the object is the file.
            self._data += data[: self._total]
        else:
            if not data:
                raise RemoteProtocolError(
                    f"{self._name} ended before its announced length", status_word=word
                )
            self._data += data[: self._total - len(self._data)]
        if self._on_chunk is not None:
            self._on_chunk(len(self._data), self._total)
        if len(self._data) < self._total:
            return ReadState.READ
        self._set_result(bytes(self._data))
        return ReadState.DONE


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int")
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be in {low}..{high}")

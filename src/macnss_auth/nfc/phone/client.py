"""The reference phone client: what a Kotlin or Swift app does, in Python.

:class:`ReferencePhone` is sans-I/O on the network side (``start()`` and
``handle(message)`` return the messages to send) and talks to the card
through any :class:`~macnss_auth.nfc.protocol.Transport` (on a phone:
``IsoDep.transceive`` / ``NFCISO7816Tag.sendCommand``). The tests and the
docs drive it against :class:`~macnss_auth.nfc.phone.server.PhoneSession`
in memory and over a real WebSocket.

What the phone does, per mode:

* split: after ``welcome``, PACE (or BAC) with the password the person typed,
  read EF.COM, EF.SOD and the data groups, INTERNAL AUTHENTICATE over the
  server's nonce when DG15 is present, then ``upload``. On ``commands``: each
  ``wrap: true`` step is protected with the phone's own secure messaging and
  its unprotected answer returned; each ``wrap: false`` step is sent as it is
  and its raw answer returned. The phone never runs Chip Authentication
  itself and never sees the keys that follow it.
* relay: send every ``commands`` step raw; on ``reconnect``, wait for the card
  and answer ``card_ready``; a card that leaves the field during a command is
  ``card_lost``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from macnss_auth.clock import RandomSource
from macnss_auth.errors import AccessDenied, MacnssAuthError, TransportError
from macnss_auth.nfc.access import open_chip
from macnss_auth.nfc.active_auth import ActiveAuthentication
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.files import (
    ReadFile,
    SelectMasterFile,
    announced_response_size,
    read_chunk_size,
)
from macnss_auth.nfc.lds.files import LdsFile, parse_com
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.phone.messages import (
    Abort,
    CardLost,
    CardReady,
    Commands,
    ErrorMessage,
    Hello,
    PhoneMessage,
    PhoneMode,
    Reconnect,
    Responses,
    ResultMessage,
    Resume,
    Upload,
    Welcome,
)
from macnss_auth.nfc.protocol import Transport, run
from macnss_auth.nfc.sm import SecureChannel

__all__ = ["PhoneCardSession", "ReferencePhone"]

_MAX_FILE = 1 << 17


class PhoneCardSession:
    """The phone's own access to the card: PACE/BAC, reads, AA, wrapped commands.

    Args:
        transport: the NFC link.
        password: the CAN or MRZ the person typed.
        random: PACE/BAC nonces and keys.
        data_groups: the data groups to read when EF.COM lists them.
        extended_length: read in large chunks when the card announces extended
            length in EF.ATR/INFO (and the phone's NFC stack can send them).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        password: CAN | MrzKey,
        random: RandomSource,
        data_groups: Iterable[int] = (1, 2, 7, 11, 12, 14, 15),
        extended_length: bool = False,
    ) -> None:
        self._transport = transport
        self._extended = extended_length
        self._announced: int | None = None
        self._password = password
        self._random = random
        self._wanted = sorted(set(data_groups))
        self._channel: SecureChannel | None = None
        self.pace_protocol: str | None = None

    def __repr__(self) -> str:
        return f"PhoneCardSession(open={self._channel is not None})"

    def open(self) -> None:
        """PACE with the password when EF.CardAccess offers it, else BAC; select the eMRTD."""
        self.close()
        if run(SelectMasterFile(), self._transport) != 0x9000:
            # A plain command ends a secure-messaging session the chip still held: ask again.
            run(SelectMasterFile(), self._transport)
        self._announced = self._announced_response_size() if self._extended else None
        try:
            card_access: bytes | None = run(ReadFile.card_access(), self._transport)
        except MacnssAuthError:
            card_access = None  # no EF.CardAccess, or an unreadable one: no PACE
        opened = open_chip(self._password, card_access, self._transport, random=self._random)
        self.pace_protocol = None if opened.pace is None else opened.pace.protocol.value
        self._channel = opened.channel

    def _announced_response_size(self) -> int | None:
        """The largest response EF.ATR/INFO announces (DO'7F66'), if above 256."""
        try:
            return announced_response_size(run(ReadFile.atr_info(), self._transport))
        except MacnssAuthError:
            return None

    def close(self) -> None:
        """Forget the session keys."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def secure(self, command: CommandAPDU) -> ResponseAPDU:
        """Send ``command`` under the phone's secure messaging."""
        if self._channel is None:
            raise MacnssAuthError("no session with the card")
        return self._channel.unprotect(self._transport.transceive(self._channel.protect(command)))

    def read_file(self, ef: LdsFile) -> bytes:
        """One file, by short file identifier then by offset (odd INS past 32767).

        Raises:
            RemoteProtocolError: the chip refused or misbehaved (see
                :class:`~macnss_auth.nfc.files.ReadFile`).
            MacnssAuthError: no session with the card.
        """
        if self._channel is None:
            raise MacnssAuthError("no session with the card")
        # The announcement is kept only when the phone's NFC stack sends extended APDUs.
        extended = self._announced is not None
        chunk = read_chunk_size(self._channel.cipher, extended=extended, announced=self._announced)
        read = ReadFile.lds(ef, channel=self._channel, chunk=chunk, max_length=_MAX_FILE)
        return run(read, self._transport)

    def read_upload(self, nonce: bytes) -> Upload:
        """Read the document and sign ``nonce`` (AA) when DG15 is present."""
        files = {"COM": self.read_file(LdsFile.COM), "SOD": self.read_file(LdsFile.SOD)}
        listed = set(parse_com(files["COM"]).data_groups)
        for number in self._wanted:
            if number in listed:
                files[f"DG{number}"] = self.read_file(LdsFile.data_group(number))
        signature = None
        if "DG15" in files and self._channel is not None:
            try:
                signature = run(
                    ActiveAuthentication(nonce, channel=self._channel), self._transport
                ).signature
            except MacnssAuthError:
                # The chip refused AA: the server decides; the session must be re-opened.
                signature = None
                self.open()
        return Upload(files=files, aa_signature=signature, pace_protocol=self.pace_protocol)

    def run_steps(self, commands: Commands) -> Responses:
        """Run a ``commands`` batch: wrapped steps under the phone's keys, the rest raw."""
        if commands.reestablish:
            self.open()
        answers: list[bytes] = []
        for step in commands.steps:
            if step.wrap:
                try:
                    plain = self.secure(CommandAPDU.from_bytes(step.apdu))
                except MacnssAuthError:
                    break
                answers.append(plain.to_bytes())
                if plain.sw != 0x9000:
                    break
            else:
                answers.append(self._transport.transceive(step.apdu))
        # After Chip Authentication the chip uses keys the phone does not have.
        self.close()
        if not answers:
            answers.append(b"\x6f\x00")
        return Responses(batch=commands.batch, responses=tuple(answers))


class ReferencePhone:
    """A phone app's protocol logic, for tests and as the model for mobile teams.

    Args:
        transport: the NFC link to the card.
        challenge_id: from the service's ``begin``.
        mode: split or relay.
        password: the CAN or MRZ the person typed.
        random: PACE/BAC randomness (split mode).
        tap: waits until the card is on the phone again (relay ``reconnect``,
            split ``reestablish``); default: nothing to wait for.
        extended_length: whether the phone's NFC stack sends extended APDUs.
        nonce: the challenge's nonce (``challenge.data["nonce"]``), when the app
            has it: split mode then reads the card first and sends ``hello``
            and ``upload`` together, saving a network round trip.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        challenge_id: str,
        mode: PhoneMode,
        password: CAN | MrzKey,
        random: RandomSource,
        tap: Callable[[], None] | None = None,
        extended_length: bool = False,
        nonce: bytes | None = None,
    ) -> None:
        self._transport = transport
        self._challenge_id = challenge_id
        self.mode = mode
        self._password = password
        self._tap = tap or (lambda: None)
        self._extended = extended_length
        self.card = PhoneCardSession(
            transport, password=password, random=random, extended_length=extended_length
        )
        self.session: str | None = None
        self.token: bytes | None = None
        self.result: ResultMessage | None = None
        self.error: ErrorMessage | None = None
        self.sent = 0
        self._nonce = nonce
        self._uploaded = False

    def __repr__(self) -> str:
        return f"ReferencePhone(mode={self.mode.value})"

    def start(self) -> list[PhoneMessage]:
        """The first message: ``hello`` (relay mode carries the password)."""
        password: dict[str, str] | None = None
        if self.mode is PhoneMode.RELAY:
            if isinstance(self._password, CAN):
                password = {"can": self._password.value}
            else:
                key = self._password
                fields = (key.document_number.rstrip("<"), key.date_of_birth, key.date_of_expiry)
                password = {"mrz": ":".join(fields)}
        hello = Hello(self._challenge_id, self.mode, self._extended, password)
        if self.mode is PhoneMode.SPLIT and self._nonce is not None:
            return self._out([hello, self._read(self._nonce)])
        return self._out([hello])

    def _read(self, nonce: bytes) -> PhoneMessage:
        self._uploaded = True
        try:
            self.card.open()
            return self.card.read_upload(nonce)
        except AccessDenied:
            return Abort("access_denied")
        except MacnssAuthError:
            return Abort("card_error")

    def resume(self) -> list[PhoneMessage]:
        """The first message on a new connection after a lost one."""
        if self.session is None or self.token is None:
            raise MacnssAuthError("no session to resume")
        return self._out([Resume(self.session, self.token)])

    def handle(self, message: PhoneMessage) -> list[PhoneMessage]:
        """React to one server message; return the messages to send."""
        if isinstance(message, Welcome):
            self.session, self.token = message.session, message.token
            if self.mode is PhoneMode.SPLIT and not self._uploaded:
                return self._out([self._read(message.nonce)])
            return []
        if isinstance(message, Commands):
            if self.mode is PhoneMode.SPLIT:
                if message.reestablish:
                    self._tap()
                return self._out([self.card.run_steps(message)])
            try:
                answers = tuple(self._transport.transceive(s.apdu) for s in message.steps)
            except TransportError:
                return self._out([CardLost()])
            return self._out([Responses(message.batch, answers)])
        if isinstance(message, Reconnect):
            self._tap()
            return self._out([CardReady()])
        if isinstance(message, ResultMessage):
            self.result = message
        elif isinstance(message, ErrorMessage):
            self.error = message
        return []

    def _out(self, messages: list[PhoneMessage]) -> list[PhoneMessage]:
        self.sent += len(messages)
        return messages

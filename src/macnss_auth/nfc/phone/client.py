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
from macnss_auth.nfc.active_auth import ActiveAuthentication
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU, read_binary_at
from macnss_auth.nfc.bac import BacProtocol
from macnss_auth.nfc.lds.files import LdsFile, parse_com
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pace import PaceTerminal, select_pace_info
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
from macnss_auth.nfc.securityinfos import PaceInfo, parse_security_infos
from macnss_auth.nfc.sm import SecureChannel
from macnss_auth.nfc.tlv import parse_all

__all__ = ["PhoneCardSession", "ReferencePhone"]

_EMRTD_AID = bytes.fromhex("A0000002471001")
_CHUNK = 223  # plain bytes per protected short READ BINARY answer with AES (231 with 3DES)
_EXTENDED_CHUNK = 4096
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
        self._chunk = _CHUNK
        self._password = password
        self._random = random
        self._wanted = sorted(set(data_groups))
        self._channel: SecureChannel | None = None
        self.pace_protocol: str | None = None

    def __repr__(self) -> str:
        return f"PhoneCardSession(open={self._channel is not None})"

    def _plain(self, command: CommandAPDU) -> ResponseAPDU:
        return ResponseAPDU.from_bytes(self._transport.transceive(command.to_bytes()))

    def open(self) -> None:
        """PACE with the password when EF.CardAccess offers it, else BAC; select the eMRTD."""
        self.close()
        select_mf = CommandAPDU(0x00, 0xA4, 0x00, 0x0C, data=b"\x3f\x00")
        if self._plain(select_mf).sw != 0x9000:
            # A plain command ends a secure-messaging session the chip still held: ask again.
            self._plain(select_mf)
        self._chunk = _CHUNK
        if self._extended:
            announced = self._announced_response_size()
            if announced is not None:
                # DO'87' padding and header, DO'99', DO'8E' and the status word must fit.
                self._chunk = max(_CHUNK, min(_EXTENDED_CHUNK, (announced - 21) // 16 * 16 - 1))
        access = self._plain(CommandAPDU(0x00, 0xB0, 0x9C, 0x00, ne=256))
        infos: tuple[object, ...] = ()
        if access.sw in (0x9000, 0x6282) and access.data:
            try:
                infos = tuple(parse_security_infos(self._read_rest_plain(access.data)))
            except MacnssAuthError:
                infos = ()
        if any(isinstance(i, PaceInfo) for i in infos):
            pace = run(
                PaceTerminal(self._password, select_pace_info(infos), random=self._random),
                self._transport,
            )
            self.pace_protocol = pace.protocol.value
            self._channel = pace.secure_channel()
            self.secure(CommandAPDU(0x00, 0xA4, 0x04, 0x0C, data=_EMRTD_AID)).raise_for_status(
                "SELECT eMRTD"
            )
            return
        if not isinstance(self._password, MrzKey):
            raise MacnssAuthError("this card has no PACE: type the MRZ")
        self._plain(CommandAPDU(0x00, 0xA4, 0x04, 0x0C, data=_EMRTD_AID)).raise_for_status(
            "SELECT eMRTD"
        )
        self._channel = run(
            BacProtocol(self._password, random=self._random), self._transport
        ).channel

    def _announced_response_size(self) -> int | None:
        """The largest response EF.ATR/INFO announces (DO'7F66'), if above 256."""
        info = self._plain(CommandAPDU(0x00, 0xB0, 0x81, 0x00, ne=256))
        if info.sw not in (0x9000, 0x6282):
            return None
        try:
            for item in parse_all(info.data):
                if item.tag == 0x7F66:
                    limits = [int.from_bytes(i.value, "big") for i in parse_all(item.value)]
                    if len(limits) == 2 and limits[1] > 256:
                        return limits[1]
        except MacnssAuthError:
            return None
        return None

    def _read_rest_plain(self, head: bytes) -> bytes:
        total = _total_length(head)
        data = head
        while len(data) < total:
            offset = len(data)
            more = self._plain(
                CommandAPDU(0x00, 0xB0, offset >> 8, offset & 0xFF, ne=min(256, total - offset))
            )
            if not more.data:
                break
            data += more.data
        return data[:total]

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
        """One file, by short file identifier then by offset."""
        size = self._chunk
        first = self.secure(
            CommandAPDU(0x00, 0xB0, 0x80 | ef.short_file_id, 0x00, ne=size, extended=size > 256)
        )
        if first.sw not in (0x9000, 0x6282):
            first.raise_for_status(f"READ BINARY {ef.name}")
        total = _total_length(first.data)
        if total > _MAX_FILE:
            raise MacnssAuthError(f"{ef.name} is implausibly large")
        data = bytearray(first.data[:total])
        while len(data) < total:
            offset = len(data)
            size = min(self._chunk, total - offset)
            chunk = self._read_at(offset, size)
            if chunk.sw not in (0x9000, 0x6282) or not chunk.data:
                chunk.raise_for_status(f"READ BINARY {ef.name}")
                raise MacnssAuthError(f"{ef.name} ended early")
            data += chunk.data[: total - offset]
        return bytes(data)

    def _read_at(self, offset: int, size: int) -> ResponseAPDU:
        command = read_binary_at(offset, size)
        if command.ins == 0xB0:
            return self.secure(command)
        # Beyond 32767 the offset travels in DO'54' with odd INS B1; the data in DO'53'.
        answer = self.secure(command)
        if answer.sw not in (0x9000, 0x6282) or not answer.data:
            return answer
        wrapped = parse_all(answer.data)
        if len(wrapped) != 1 or wrapped[0].tag != 0x53:
            raise MacnssAuthError("READ BINARY (B1) answered without DO'53'")
        return ResponseAPDU(wrapped[0].value, answer.sw)

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


def _total_length(head: bytes) -> int:
    if len(head) < 2:
        raise MacnssAuthError("too short for a TLV header")
    offset = 1 if head[0] & 0x1F != 0x1F else 2
    first = head[offset]
    if first < 0x80:
        return offset + 1 + first
    count = first & 0x7F
    if not 0 < count <= 3 or offset + 1 + count > len(head):
        raise MacnssAuthError("unusable TLV length")
    return offset + 1 + count + int.from_bytes(head[offset + 1 : offset + 1 + count], "big")


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

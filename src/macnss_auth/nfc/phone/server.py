"""The server side of a phone session: split mode and relay mode, one state table.

Theory of operation. A :class:`PhoneSession` is bound to one single-use
challenge of :meth:`~macnss_auth.nfc.eid.EidAuthenticator.begin` (its id and
its nonce). It takes the phone's messages (:meth:`PhoneSession.receive`) and
returns the messages to send back; it never touches a socket.

*Split mode* (the default). The phone runs PACE (or BAC) with the CAN/MRZ the
person typed, reads the files, signs the nonce with Active Authentication when
the chip can, and uploads everything (``upload``). When DG14 offers Chip
Authentication, the server then runs it *through* the phone:

1. it draws a fresh ephemeral key on DG14's domain parameters and sends one
   ``commands`` batch: ``MSE:Set AT`` + ``GENERAL AUTHENTICATE`` (or
   ``MSE:Set KAT`` for 3DES) with ``wrap: true`` -- the phone protects them
   with its own secure messaging, which the chip requires -- followed by
   ``READ BINARY`` of DG1, already protected by the server under the new
   Chip Authentication keys, with ``wrap: false`` -- the phone relays it raw;
2. the server alone derives those keys (it alone knows the ephemeral private
   key; the phone sees only public keys) and checks the MAC of the chip's
   answer to the READ BINARY and that it carries the uploaded DG1.

With CA version 2 the new keys depend on a nonce the chip sends with a token
in its GENERAL AUTHENTICATE answer: the first batch is the key agreement only,
the server checks the token, then reads DG1 under the new keys in a second batch.

A correct MAC under keys that only the holder of DG14's private key can
derive, answering a key drawn for this session, proves that a chip holding
that key took part now; verification then requires DG14 (and DG1) to pass
passive authentication under a trusted signer. The phone can forge neither:
it can lie about the wrapped steps' answers, but then the raw answer fails.

*Relay mode*. The server is the whole terminal: a
:class:`~macnss_auth.nfc.reader.DocumentReader` runs over a transport whose
every APDU is one ``commands`` message with one raw step; a card that slipped
(``card_lost``) or a lost connection (``resume``) makes the reader re-run
PACE/CA after the phone presents the card again (``reconnect`` /
``card_ready``) and continue with the files not yet read. The reader is a
blocking loop, so the session runs it as a coroutine on a private thread:
exactly one of the two runs at any time, and the reader's only I/O is the
hand-over to :meth:`PhoneSession.receive`.

The state table is :data:`TRANSITIONS`. Any message it does not allow,
anything malformed, oversized, too many messages or a passed deadline (from
the injected clock) moves the session to FAILED: keys are dropped, the relay
reader is stopped, and every later call raises
:class:`~macnss_auth.nfc.phone.messages.PhoneSessionFailed`.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hmac
import queue
import threading
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from macnss_auth.clock import Clock, RandomSource
from macnss_auth.errors import (
    AccessDenied,
    MacnssAuthError,
    SecureMessagingError,
    TransportError,
)
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.chip_auth import (
    CA_VERSIONS,
    CaAlgorithm,
    DhPrivateKey,
    chip_authentication_token,
    encode_public_key,
    shared_secret,
)

# The reader's own ephemeral-key draw: the server's CA key is made exactly as a kiosk's,
# on whatever key types and curves chip_auth supports.
from macnss_auth.nfc.chip_auth import _ephemeral_key as ephemeral_key
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.lds.security import parse_dg14
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.phone.messages import (
    Abort,
    CardLost,
    CardReady,
    Commands,
    Hello,
    PhoneFailure,
    PhoneLimits,
    PhoneMessage,
    PhoneMode,
    PhoneSessionFailed,
    Reconnect,
    Responses,
    Resume,
    Step,
    Upload,
    Welcome,
    decode_message,
    encode_message,
)
from macnss_auth.nfc.reader import DocumentRead, DocumentReader, chip_public_key
from macnss_auth.nfc.securityinfos import (
    ChipAuthenticationInfo,
    ChipAuthenticationPublicKeyInfo,
)
from macnss_auth.nfc.sm import SecureChannel, SessionKeys
from macnss_auth.nfc.tlv import encode_tlv, parse_all
from macnss_auth.nfc.verify import ChipAuthenticationOutcome

__all__ = ["TRANSITIONS", "PhoneEvidence", "PhoneSession", "SessionState"]


class SessionState(enum.Enum):
    """Where a :class:`PhoneSession` is."""

    START = "start"
    AWAIT_UPLOAD = "await_upload"
    AWAIT_CA = "await_chip_authentication"
    RELAY_AWAIT_RESPONSE = "relay_await_response"
    RELAY_AWAIT_CARD = "relay_await_card"
    DONE = "done"
    FAILED = "failed"


_S = SessionState
#: (state, message type) -> the states the handler may move to. Nothing else is allowed.
TRANSITIONS: Mapping[tuple[SessionState, str], frozenset[SessionState]] = MappingProxyType(
    {
        (_S.START, "hello"): frozenset({_S.AWAIT_UPLOAD, _S.RELAY_AWAIT_RESPONSE}),
        (_S.AWAIT_UPLOAD, "upload"): frozenset({_S.AWAIT_CA, _S.DONE}),
        (_S.AWAIT_UPLOAD, "resume"): frozenset({_S.AWAIT_UPLOAD}),
        (_S.AWAIT_CA, "responses"): frozenset({_S.AWAIT_CA, _S.DONE}),
        (_S.AWAIT_CA, "resume"): frozenset({_S.AWAIT_CA}),
        (_S.RELAY_AWAIT_RESPONSE, "responses"): frozenset(
            {_S.RELAY_AWAIT_RESPONSE, _S.RELAY_AWAIT_CARD, _S.DONE}
        ),
        (_S.RELAY_AWAIT_RESPONSE, "card_lost"): frozenset({_S.RELAY_AWAIT_CARD}),
        (_S.RELAY_AWAIT_RESPONSE, "resume"): frozenset({_S.RELAY_AWAIT_CARD}),
        (_S.RELAY_AWAIT_CARD, "card_ready"): frozenset(
            {_S.RELAY_AWAIT_RESPONSE, _S.RELAY_AWAIT_CARD, _S.DONE}
        ),
        (_S.RELAY_AWAIT_CARD, "resume"): frozenset({_S.RELAY_AWAIT_CARD}),
    }
)

#: Plain bytes one protected short READ BINARY answer holds (as the reader uses).
_SHORT_CHUNK = {SymmetricCipher.AES: 223, SymmetricCipher.TDES: 231}
_DG1_SFI = 0x01
#: How long the server waits for its own relay reader to produce the next APDU (CPU only).
_WORKER_SECONDS = 60.0


@attrs.frozen
class PhoneEvidence:
    """What a finished phone session proves, for :meth:`EidAuthenticator.verify`.

    Built only by :class:`PhoneSession` in this process: its Chip
    Authentication outcome is the server's own result. Never build one from
    data a client sent.

    Attributes:
        challenge_id / challenge: the challenge and nonce the session was bound to.
        mode: split or relay.
        data_groups / sod / aa_signature: what the verifier checks.
        chip_authentication: the server's CA (or, in relay mode, PACE-CAM) outcome.
    """

    challenge_id: str
    challenge: bytes = attrs.field(repr=False)
    mode: PhoneMode
    data_groups: Mapping[int, bytes] = attrs.field(repr=False)
    sod: bytes = attrs.field(repr=False)
    aa_signature: bytes | None = attrs.field(repr=False)
    chip_authentication: ChipAuthenticationOutcome | None


@attrs.define(repr=False)
class _CaPlan:
    """One Chip Authentication through the phone, waiting for its answers.

    CA v1: one batch (the key agreement, wrapped, then the DG1 read under the
    new keys, raw). CA v2: the new keys depend on the chip's nonce, so the
    first batch is the key agreement only; its answer carries the chip's
    token, and a second batch reads DG1 under the new keys.
    """

    steps: tuple[Step, ...]
    key_info: ChipAuthenticationPublicKeyInfo
    algorithm: CaAlgorithm
    uses_ga: bool
    #: The terminal's ephemeral public key as sent (the CA v2 token covers it).
    public: bytes
    channel: SecureChannel | None = None
    #: CA v2 only, until the chip's nonce arrives: the key-agreement secret.
    shared: bytes | None = None

    def forget(self) -> None:
        self.shared = None
        if self.channel is not None:
            self.channel.close()


class _Relay:
    """The relay reader on its thread, and the hand-over in both directions."""

    def __init__(self, deadline_seconds: float) -> None:
        self.to_reader: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.to_server: queue.Queue[tuple[str, object]] = queue.Queue()
        self._wait = deadline_seconds + _WORKER_SECONDS
        self.thread: threading.Thread | None = None

    # The reader's side (its thread).
    def transceive(self, command: bytes) -> bytes:
        self.to_server.put(("apdu", command))
        return self._answer()

    def reconnect(self) -> None:
        self.to_server.put(("reconnect", b""))
        self._answer(expect="card_ready")

    def _answer(self, expect: str = "response") -> bytes:
        try:
            kind, data = self.to_reader.get(timeout=self._wait)
        except queue.Empty:
            raise TransportError("the phone session ended", retryable=False) from None
        if kind == expect:
            return data
        if kind == "lost":
            raise TransportError("the card left the phone's field", retryable=True)
        raise TransportError("the phone session ended", retryable=False)

    # The server's side.
    def send(self, kind: str, data: bytes = b"") -> tuple[str, object]:
        self.to_reader.put((kind, data))
        return self.next()

    def next(self) -> tuple[str, object]:
        try:
            return self.to_server.get(timeout=_WORKER_SECONDS)
        except queue.Empty:
            return ("error", TransportError("the relay reader stalled", retryable=False))

    def stop(self) -> None:
        # Never blocks (the queue is unbounded): the reader may be finishing, not waiting.
        self.to_reader.put_nowait(("stop", b""))


def _password(hello: Hello) -> MrzKey | CAN:
    given = dict(hello.password or {})
    try:
        if "can" in given:
            return CAN(given["can"])
        document, birth, expiry = given["mrz"].split(":")
        return MrzKey(document, birth, expiry)
    except (KeyError, ValueError, MacnssAuthError) as exc:
        raise PhoneSessionFailed(
            PhoneFailure.MALFORMED_MESSAGE, "relay mode needs a valid CAN or MRZ"
        ) from exc


class PhoneSession:
    """One phone's attempt at one challenge; see the module docstring.

    Create it with :meth:`EidAuthenticator.phone_session`, which checks the
    challenge is live. Keyword-only collaborators: ``clock`` gives the
    deadline, ``random`` the ephemeral keys and the session's identifiers.
    """

    def __init__(
        self,
        *,
        challenge_id: str,
        nonce: bytes,
        expires_at: dt.datetime,
        clock: Clock,
        random: RandomSource,
        limits: PhoneLimits | None = None,
        relay_data_groups: tuple[int, ...] = (1, 2, 7, 11, 12, 14, 15),
    ) -> None:
        self.limits = limits or PhoneLimits()
        self._challenge_id = challenge_id
        self._nonce: bytes | None = nonce
        self._clock = clock
        self._random = random
        now = clock.now()
        self._deadline = min(expires_at, now + dt.timedelta(seconds=self.limits.session_seconds))
        self.id = base64.b32encode(random.token_bytes(10)).decode().lower()
        self._token: bytes | None = random.token_bytes(16)
        self._relay_groups = relay_data_groups
        self._state = SessionState.START
        self._mode: PhoneMode | None = None
        self._messages = 0
        self._reconnects = 0
        self._batch = 0
        self._upload: Upload | None = None
        self._plan: _CaPlan | None = None
        self._relay: _Relay | None = None
        self._evidence: PhoneEvidence | None = None
        self.failure: PhoneFailure | None = None

    def __repr__(self) -> str:
        mode = self._mode.value if self._mode else "-"
        return f"<PhoneSession {self.id} mode={mode} state={self._state.name}>"

    # -- public surface ------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """The current state."""
        return self._state

    @property
    def challenge_id(self) -> str:
        """The challenge this session answers."""
        return self._challenge_id

    @property
    def mode(self) -> PhoneMode | None:
        """Split or relay, once the phone said hello."""
        return self._mode

    @property
    def finished(self) -> bool:
        """Whether :attr:`evidence` is ready."""
        return self._state is SessionState.DONE

    @property
    def evidence(self) -> PhoneEvidence:
        """What the session proved.

        Raises:
            PhoneSessionFailed: the session failed (its own reason) or is not finished.
        """
        if self._evidence is None:
            raise PhoneSessionFailed(self.failure or PhoneFailure.UNEXPECTED_MESSAGE)
        return self._evidence

    def check_token(self, token: bytes) -> bool:
        """Whether ``token`` is this live session's resumption token (constant time)."""
        mine = self._token
        return mine is not None and hmac.compare_digest(token, mine)

    def seconds_left(self) -> float:
        """Seconds until the deadline (from the injected clock); 0 when passed."""
        return max(0.0, (self._deadline - self._clock.now()).total_seconds())

    def check_deadline(self) -> None:
        """Fail the session if its deadline passed (call it when the phone is silent).

        Raises:
            PhoneSessionFailed: ``timeout``, or the session already ended.
        """
        self._alive()
        if self._clock.now() > self._deadline:
            self._fail(PhoneFailure.TIMEOUT)
            raise PhoneSessionFailed(PhoneFailure.TIMEOUT, "the phone took too long")

    def receive(self, raw: str | bytes) -> list[str]:
        """Decode and handle one message; return the encoded messages to send back.

        Raises:
            PhoneSessionFailed: with the reason the phone should be told; the
                session is then FAILED and every later call raises.
        """
        self._alive()
        try:
            message = decode_message(raw, limits=self.limits)
        except PhoneSessionFailed as exc:
            self._fail(exc.failure)
            raise
        return [encode_message(m) for m in self.handle(message)]

    def handle(self, message: PhoneMessage) -> list[PhoneMessage]:
        """Handle one decoded message (see :meth:`receive`)."""
        self._alive()
        try:
            new_state, out = self._step(message)
        except PhoneSessionFailed as exc:
            self._fail(exc.failure)
            raise
        except BaseException:
            self._fail(PhoneFailure.SESSION_CLOSED)
            raise
        self._state = new_state
        if new_state is SessionState.DONE:
            self._drop_secrets()
        return out

    def _step(self, message: PhoneMessage) -> tuple[SessionState, list[PhoneMessage]]:
        """Check ``message`` against the limits and the table, then handle it."""
        self._messages += 1
        if self._messages > self.limits.max_messages:
            raise PhoneSessionFailed(PhoneFailure.TOO_MANY_MESSAGES)
        self.check_deadline()
        if isinstance(message, Abort):
            raise PhoneSessionFailed(PhoneFailure.PHONE_ABORTED, "the phone gave up")
        targets = TRANSITIONS.get((self._state, message.TYPE))
        if targets is None:
            raise PhoneSessionFailed(
                PhoneFailure.UNEXPECTED_MESSAGE,
                f"{message.TYPE} is not allowed in state {self._state.value}",
            )
        try:
            new_state, out = self._dispatch(message)
        except PhoneSessionFailed:
            raise
        except MacnssAuthError as exc:
            # Bytes from the phone that a parser refused (a TLV, an APDU): typed, not a crash.
            raise PhoneSessionFailed(PhoneFailure.MALFORMED_MESSAGE, str(exc)) from exc
        if new_state not in targets:
            raise PhoneSessionFailed(PhoneFailure.UNEXPECTED_MESSAGE, "transition not allowed")
        return new_state, out

    def abort(self, failure: PhoneFailure = PhoneFailure.SESSION_CLOSED) -> None:
        """End the session now (the server gives up); idempotent."""
        if self._state not in (SessionState.DONE, SessionState.FAILED):
            self._fail(failure)

    # -- machinery -----------------------------------------------------------------

    def _alive(self) -> None:
        if self._state is SessionState.FAILED:
            raise PhoneSessionFailed(self.failure or PhoneFailure.SESSION_CLOSED, "session failed")
        if self._state is SessionState.DONE:
            raise PhoneSessionFailed(PhoneFailure.SESSION_CLOSED, "session finished")

    def _fail(self, failure: PhoneFailure) -> None:
        self._state = SessionState.FAILED
        self.failure = self.failure or failure
        self._evidence = None
        self._drop_secrets()

    def _drop_secrets(self) -> None:
        # Python cannot wipe memory; drop every reference to keys and the nonce.
        if self._plan is not None:
            self._plan.forget()
            self._plan = None
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        self._upload = None
        self._token = None
        self._nonce = None

    def _dispatch(self, message: PhoneMessage) -> tuple[SessionState, list[PhoneMessage]]:
        if isinstance(message, Hello):
            return self._on_hello(message)
        if isinstance(message, Resume):
            return self._on_resume(message)
        if isinstance(message, Upload):
            return self._on_upload(message)
        if isinstance(message, Responses):
            if self._mode is PhoneMode.RELAY:
                return self._on_relay_response(message)
            return self._on_ca_responses(message)
        if isinstance(message, CardLost):
            return self._relay_event("lost")
        if isinstance(message, CardReady):
            return self._relay_event("card_ready")
        raise PhoneSessionFailed(PhoneFailure.UNEXPECTED_MESSAGE)

    def _nonce_bytes(self) -> bytes:
        if self._nonce is None:
            raise PhoneSessionFailed(PhoneFailure.SESSION_CLOSED)
        return self._nonce

    def _on_hello(self, hello: Hello) -> tuple[SessionState, list[PhoneMessage]]:
        if not hmac.compare_digest(hello.challenge.encode(), self._challenge_id.encode()):
            raise PhoneSessionFailed(PhoneFailure.CHALLENGE_UNUSABLE, "another challenge")
        self._mode = hello.mode
        welcome = Welcome(
            session=self.id,
            token=self._token or b"",
            nonce=self._nonce_bytes(),
            mode=hello.mode,
            seconds=int(self.seconds_left()),
            limits=self.limits.to_json(),
        )
        if hello.mode is PhoneMode.SPLIT:
            if hello.password is not None:
                # Split mode never needs the CAN: refuse to receive a secret for nothing.
                raise PhoneSessionFailed(
                    PhoneFailure.MALFORMED_MESSAGE, "split mode takes no password"
                )
            return SessionState.AWAIT_UPLOAD, [welcome]
        first = self._start_relay(hello)
        return first[0], [welcome, *first[1]]

    def _on_resume(self, resume: Resume) -> tuple[SessionState, list[PhoneMessage]]:
        token = self._token
        if token is None or not hmac.compare_digest(resume.token, token):
            raise PhoneSessionFailed(PhoneFailure.UNEXPECTED_MESSAGE, "bad resumption token")
        if resume.session != self.id:
            raise PhoneSessionFailed(PhoneFailure.UNEXPECTED_MESSAGE, "another session")
        self._count_reconnect()
        if self._state is SessionState.AWAIT_UPLOAD:
            return SessionState.AWAIT_UPLOAD, []
        if self._state is SessionState.AWAIT_CA:
            # The chip's state is unknown: a new key, and the phone re-runs PACE first.
            upload = self._upload
            if upload is None or self._plan is None:
                raise PhoneSessionFailed(PhoneFailure.SESSION_CLOSED)
            self._plan.forget()
            commands = self._plan_chip_authentication(upload, reestablish=True)
            if commands is None:
                raise PhoneSessionFailed(PhoneFailure.SESSION_CLOSED)
            return SessionState.AWAIT_CA, [commands]
        if self._state is SessionState.RELAY_AWAIT_CARD:
            return SessionState.RELAY_AWAIT_CARD, [Reconnect()]
        # Relay, a command outstanding: treat it as lost; the reader re-runs PACE after a tap.
        return self._relay_event("lost")

    def _count_reconnect(self) -> None:
        self._reconnects += 1
        if self._reconnects > self.limits.max_reconnects:
            raise PhoneSessionFailed(PhoneFailure.CARD_LOST, "too many reconnections")

    # -- split mode ----------------------------------------------------------------

    def _on_upload(self, upload: Upload) -> tuple[SessionState, list[PhoneMessage]]:
        if "SOD" not in upload.files or "DG1" not in upload.files:
            raise PhoneSessionFailed(PhoneFailure.MALFORMED_MESSAGE, "EF.SOD and DG1 are required")
        self._upload = upload
        commands = self._plan_chip_authentication(upload, reestablish=False)
        if commands is not None:
            return SessionState.AWAIT_CA, [commands]
        if self._cam_only(upload.files.get("DG14")) and upload.aa_signature is None:
            # PACE-CAM ran in the phone's own session: nothing in it is fresh for the
            # server, and the chip offers no Chip Authentication to run through the phone.
            raise PhoneSessionFailed(
                PhoneFailure.RELAY_REQUIRED, "this chip proves itself only in relay mode"
            )
        self._evidence = self._split_evidence(upload, None)
        return SessionState.DONE, []

    @staticmethod
    def _cam_only(dg14: bytes | None) -> bool:
        if dg14 is None:
            return False
        try:
            infos = parse_dg14(dg14).infos
        except MacnssAuthError:
            return False
        return any(isinstance(i, ChipAuthenticationPublicKeyInfo) for i in infos)

    def _plan_chip_authentication(self, upload: Upload, *, reestablish: bool) -> Commands | None:
        """The ``commands`` batch for CA through the phone, or None when DG14 offers no CA."""
        dg14 = upload.files.get("DG14")
        if dg14 is None:
            return None
        try:
            infos = parse_dg14(dg14).infos
            keys = [i for i in infos if isinstance(i, ChipAuthenticationPublicKeyInfo)]
            # CA v1 and v2 run through the phone (v3 is another protocol); v2 first.
            protocols = [
                i
                for i in infos
                if isinstance(i, ChipAuthenticationInfo) and i.version in CA_VERSIONS
            ]
            if not keys or not protocols:
                return None
            key_info = keys[0]
            matching = [p for p in protocols if p.key_id == key_info.key_id] or protocols
            info = max(matching, key=lambda p: p.version)
            algorithm = CaAlgorithm.from_oid(info.protocol.value)
            chip_key = chip_public_key(key_info)
        except MacnssAuthError:
            # A DG14 we cannot use for CA; if it was forged, passive authentication says so.
            return None
        ephemeral = ephemeral_key(chip_key, self._random)
        public = encode_public_key(
            ephemeral.public if isinstance(ephemeral, DhPrivateKey) else ephemeral.public_key()
        )
        # KA(ephemeral private, chip static public): the secret the chip derives too.
        shared = shared_secret(ephemeral, chip_key)
        del ephemeral
        reference = b""
        if key_info.key_id is not None:
            size = max(1, (key_info.key_id.bit_length() + 7) // 8)
            reference = encode_tlv(0x84, key_info.key_id.to_bytes(size, "big"))
        uses_ga = algorithm.cipher is SymmetricCipher.AES or info.version >= 2
        if uses_ga:
            wrapped = [
                CommandAPDU(
                    0x00, 0x22, 0x41, 0xA4, data=encode_tlv(0x80, algorithm.oid_bytes) + reference
                ),
                CommandAPDU(
                    0x00, 0x86, 0x00, 0x00, data=encode_tlv(0x7C, encode_tlv(0x80, public)), ne=256
                ),
            ]
        else:
            wrapped = [
                CommandAPDU(0x00, 0x22, 0x41, 0xA6, data=encode_tlv(0x91, public) + reference)
            ]
        agreement = tuple(Step(c.to_bytes(), wrap=True) for c in wrapped)
        plan = _CaPlan(agreement, key_info, algorithm, uses_ga, public)
        if info.version >= 2:
            plan.shared = shared
        else:
            new_keys = SessionKeys.derive(shared, algorithm.cipher, algorithm.key_bits)
            plan.steps = (*agreement, self._dg1_read(plan, new_keys))
        self._plan = plan
        self._batch += 1
        return Commands(batch=self._batch, steps=plan.steps, reestablish=reestablish)

    @staticmethod
    def _dg1_read(plan: _CaPlan, keys: SessionKeys) -> Step:
        """READ BINARY of DG1, protected under the new keys (SSC 0): the phone relays it raw."""
        plan.channel = SecureChannel(keys, ssc=0)
        chunk = _SHORT_CHUNK[plan.algorithm.cipher]
        command = CommandAPDU(0x00, 0xB0, 0x80 | _DG1_SFI, 0x00, ne=chunk)
        return Step(plan.channel.protect(command), wrap=False)

    def _token_keys(self, plan: _CaPlan, answer: bytes) -> SessionKeys:
        """CA v2: the chip's nonce and token from GENERAL AUTHENTICATE; the new keys.

        ``KS = KDF(K || r_PICC, c)`` and ``T_PICC = MAC(KSmac, 7F49{06 OID, 86/84 PK_PCD})``
        (BSI TR-03110-3 A.2.3.2, A.2.4.2, D.3.4): only a chip holding DG14's private key
        computes a token that verifies for the key this server drew.
        """
        shared = plan.shared
        plain = ResponseAPDU.from_bytes(answer)
        outer = parse_all(plain.data)
        if shared is None or len(outer) != 1 or outer[0].tag != 0x7C:
            raise PhoneSessionFailed(
                PhoneFailure.CHIP_AUTHENTICATION_FAILED, "unexpected GENERAL AUTHENTICATE answer"
            )
        inner = {item.tag: item.value for item in parse_all(outer[0].value)}
        nonce, token = inner.get(0x81), inner.get(0x82)
        if nonce is None or token is None or not 0 < len(nonce) <= 64:
            raise PhoneSessionFailed(
                PhoneFailure.CHIP_AUTHENTICATION_FAILED, "no Chip Authentication token"
            )
        keys = SessionKeys.derive(shared + nonce, plan.algorithm.cipher, plan.algorithm.key_bits)
        # The kiosk's ChipAuthentication(version=2) checks the same token.
        expected = chip_authentication_token(plan.algorithm, keys, plan.public)
        if not hmac.compare_digest(expected, token):
            raise PhoneSessionFailed(
                PhoneFailure.CHIP_AUTHENTICATION_FAILED, "the Chip Authentication token is wrong"
            )
        return keys

    def _on_ca_responses(self, message: Responses) -> tuple[SessionState, list[PhoneMessage]]:
        plan, upload = self._plan, self._upload
        if plan is None or upload is None:
            raise PhoneSessionFailed(PhoneFailure.UNEXPECTED_MESSAGE)
        if message.batch != self._batch or len(message.responses) > len(plan.steps):
            raise PhoneSessionFailed(PhoneFailure.UNEXPECTED_MESSAGE, "answers to another batch")
        if len(message.responses) < len(plan.steps):
            raise PhoneSessionFailed(
                PhoneFailure.CHIP_AUTHENTICATION_FAILED, "the chip refused Chip Authentication"
            )
        wrapped = [a for a, step in zip(message.responses, plan.steps, strict=True) if step.wrap]
        # The wrapped answers come from the phone and prove nothing by themselves.
        for item in wrapped:
            if ResponseAPDU.from_bytes(item).sw != 0x9000:
                raise PhoneSessionFailed(
                    PhoneFailure.CHIP_AUTHENTICATION_FAILED, "the chip refused Chip Authentication"
                )
        if plan.shared is not None:
            # CA v2: the token proves the key; then DG1 is read under the new keys.
            keys = self._token_keys(plan, wrapped[-1])
            plan.shared = None
            plan.steps = (self._dg1_read(plan, keys),)
            self._batch += 1
            return SessionState.AWAIT_CA, [Commands(batch=self._batch, steps=plan.steps)]
        if plan.uses_ga and wrapped:
            objects = parse_all(ResponseAPDU.from_bytes(wrapped[-1]).data)
            if len(objects) != 1 or objects[0].tag != 0x7C or objects[0].value:
                # DG14 announced CA v1; a chip answering otherwise is not the one signed for.
                raise PhoneSessionFailed(
                    PhoneFailure.CHIP_AUTHENTICATION_FAILED,
                    "unexpected GENERAL AUTHENTICATE answer",
                )
        channel = plan.channel
        if channel is None:
            raise PhoneSessionFailed(PhoneFailure.UNEXPECTED_MESSAGE)
        try:
            answer = channel.unprotect(message.responses[-1])
        except SecureMessagingError as exc:
            raise PhoneSessionFailed(
                PhoneFailure.CHIP_AUTHENTICATION_FAILED,
                "the answer is not protected under the Chip Authentication keys",
            ) from exc
        dg1 = upload.files["DG1"]
        expected = dg1[: len(answer.data)]
        complete = len(answer.data) == min(len(dg1), _SHORT_CHUNK[channel.cipher])
        if (
            answer.sw not in (0x9000, 0x6282)
            or not complete
            or not hmac.compare_digest(answer.data, expected)
        ):
            raise PhoneSessionFailed(
                PhoneFailure.DATA_MISMATCH, "the chip's DG1 differs from the uploaded DG1"
            )
        outcome = ChipAuthenticationOutcome(
            public_key=plan.key_info.subject_public_key_info,
            completed=True,
            key_id=plan.key_info.key_id,
        )
        self._evidence = self._split_evidence(upload, outcome)
        return SessionState.DONE, []

    def _split_evidence(
        self, upload: Upload, outcome: ChipAuthenticationOutcome | None
    ) -> PhoneEvidence:
        groups = {
            int(name[2:]): data for name, data in upload.files.items() if name.startswith("DG")
        }
        return PhoneEvidence(
            challenge_id=self._challenge_id,
            challenge=self._nonce_bytes(),
            mode=PhoneMode.SPLIT,
            data_groups=MappingProxyType(groups),
            sod=upload.files["SOD"],
            aa_signature=upload.aa_signature,
            chip_authentication=outcome,
        )

    # -- relay mode ----------------------------------------------------------------

    def _start_relay(self, hello: Hello) -> tuple[SessionState, list[PhoneMessage]]:
        password = _password(hello)
        relay = _Relay(self.seconds_left())
        clock = self._clock
        reader = DocumentReader(
            relay,
            random=self._random,
            data_groups=self._relay_groups,
            extended_length=None if hello.extended_length else False,
            reconnect=relay.reconnect,
            session_budget=self.seconds_left(),
            monotonic=lambda: clock.now().timestamp(),
        )
        nonce = self._nonce_bytes()

        def work() -> None:
            try:
                read = reader.read(password, active_auth_challenge=nonce)
            except BaseException as exc:  # noqa: BLE001 (handed to the server's thread)
                relay.to_server.put(("error", exc))
            else:
                relay.to_server.put(("done", read))

        self._relay = relay
        relay.thread = threading.Thread(target=work, name=f"phone-relay-{self.id}", daemon=True)
        relay.thread.start()
        return self._relay_output(relay.next())

    def _relay_event(self, kind: str, data: bytes = b"") -> tuple[SessionState, list[PhoneMessage]]:
        relay = self._relay
        if relay is None:
            raise PhoneSessionFailed(PhoneFailure.UNEXPECTED_MESSAGE)
        return self._relay_output(relay.send(kind, data))

    def _on_relay_response(self, message: Responses) -> tuple[SessionState, list[PhoneMessage]]:
        if message.batch != self._batch or len(message.responses) != 1:
            raise PhoneSessionFailed(PhoneFailure.UNEXPECTED_MESSAGE, "answers to another batch")
        return self._relay_event("response", message.responses[0])

    def _relay_output(self, output: tuple[str, object]) -> tuple[SessionState, list[PhoneMessage]]:
        kind, value = output
        if kind == "apdu" and isinstance(value, bytes):
            if len(value) > self.limits.max_apdu_bytes:
                raise PhoneSessionFailed(PhoneFailure.CARD_ERROR, "command too large")
            self._batch += 1
            step = Step(value, wrap=False)
            return SessionState.RELAY_AWAIT_RESPONSE, [Commands(self._batch, (step,))]
        if kind == "reconnect":
            self._count_reconnect()
            return SessionState.RELAY_AWAIT_CARD, [Reconnect()]
        if kind == "done" and isinstance(value, DocumentRead):
            self._evidence = self._relay_evidence(value)
            return SessionState.DONE, []
        if isinstance(value, AccessDenied):
            raise PhoneSessionFailed(PhoneFailure.ACCESS_DENIED, "the card refused the password")
        if isinstance(value, TransportError):
            raise PhoneSessionFailed(PhoneFailure.CARD_LOST, "the card did not come back")
        if isinstance(value, MacnssAuthError):
            raise PhoneSessionFailed(PhoneFailure.CARD_ERROR, f"the card misbehaved: {value}")
        if isinstance(value, BaseException):
            raise value
        raise PhoneSessionFailed(PhoneFailure.SESSION_CLOSED)

    def _relay_evidence(self, read: DocumentRead) -> PhoneEvidence:
        if read.challenge is None or not hmac.compare_digest(read.challenge, self._nonce_bytes()):
            raise PhoneSessionFailed(PhoneFailure.SESSION_CLOSED)
        return PhoneEvidence(
            challenge_id=self._challenge_id,
            challenge=self._nonce_bytes(),
            mode=PhoneMode.RELAY,
            data_groups=MappingProxyType(read.data_groups),
            sod=read.files.get("SOD", b""),
            aa_signature=read.active_auth_signature,
            chip_authentication=read.chip_authentication_outcome(),
        )

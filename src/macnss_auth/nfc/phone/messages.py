"""The phone protocol's messages: versioned JSON, bytes as base64url, every field checked.

Wire format. One message is one JSON object (one WebSocket text frame, or one
element of an HTTP batch) with an explicit version and type::

    {"v": 1, "type": "upload", ...fields...}

Bytes travel as unpadded base64url strings. A decoder accepts exactly the
fields its type declares: an unknown field, a missing field, a wrong JSON
type, a string too long or a list too long is :attr:`PhoneFailure.MALFORMED_MESSAGE`;
another version is :attr:`PhoneFailure.UNSUPPORTED_VERSION`; a message larger
than :attr:`PhoneLimits.max_message_bytes` is rejected before it is parsed.

The messages from the phone (:data:`PHONE_MESSAGES`) and from the server
(:data:`SERVER_MESSAGES`) are disjoint: a server decodes only the first
set and the reference phone client only the second.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any, ClassVar, TypeVar

import attrs

from macnss_auth.errors import AuthenticationFailed, Reason

__all__ = [
    "PHONE_MESSAGES",
    "PROTOCOL_VERSION",
    "SERVER_MESSAGES",
    "Abort",
    "CardLost",
    "CardReady",
    "Commands",
    "ErrorMessage",
    "Hello",
    "PhoneFailure",
    "PhoneLimits",
    "PhoneMessage",
    "PhoneMode",
    "PhoneSessionFailed",
    "Reconnect",
    "Responses",
    "ResultMessage",
    "Resume",
    "Step",
    "Upload",
    "Welcome",
    "decode_message",
    "encode_message",
]

#: The one version this code speaks; a message with another ``v`` is refused.
PROTOCOL_VERSION = 1

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FILE_NAME = re.compile(r"^(COM|SOD|CardAccess|DG([1-9]|1[0-6]))$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class PhoneMode(str, enum.Enum):
    """Who runs the terminal side."""

    #: The phone runs PACE and reads; the server runs Chip Authentication through it.
    SPLIT = "split"
    #: The server is the whole terminal; the phone forwards APDUs.
    RELAY = "relay"


class PhoneFailure(str, enum.Enum):
    """Why a phone session failed: stable strings, sent to the phone and audited."""

    UNSUPPORTED_VERSION = "unsupported_version"
    MALFORMED_MESSAGE = "malformed_message"
    MESSAGE_TOO_LARGE = "message_too_large"
    TOO_MANY_MESSAGES = "too_many_messages"
    UNEXPECTED_MESSAGE = "unexpected_message"
    TIMEOUT = "timeout"
    CHALLENGE_UNUSABLE = "challenge_unusable"
    CHALLENGE_IN_USE = "challenge_in_use"
    ACCESS_DENIED = "access_denied"
    CHIP_AUTHENTICATION_FAILED = "chip_authentication_failed"
    DATA_MISMATCH = "data_mismatch"
    CARD_LOST = "card_lost"
    CARD_ERROR = "card_error"
    RELAY_REQUIRED = "relay_required"
    PHONE_ABORTED = "phone_aborted"
    SESSION_CLOSED = "session_closed"

    @property
    def reason(self) -> Reason:
        """The authenticator-level reason this failure is audited under."""
        if self is PhoneFailure.ACCESS_DENIED:
            return Reason.ACCESS_DENIED
        if self in (PhoneFailure.CHIP_AUTHENTICATION_FAILED, PhoneFailure.DATA_MISMATCH):
            return Reason.DOCUMENT_NOT_GENUINE
        if self is PhoneFailure.CHALLENGE_UNUSABLE:
            return Reason.CHALLENGE_USED
        return Reason.MALFORMED_RESPONSE


class PhoneSessionFailed(AuthenticationFailed):
    """A phone session ended without evidence.

    Attributes:
        failure: the stable :class:`PhoneFailure` (what the phone is told).
        reason: the :class:`~macnss_auth.errors.Reason` it is audited under.
    """

    default_reason = Reason.MALFORMED_RESPONSE

    def __init__(self, failure: PhoneFailure, message: str | None = None) -> None:
        super().__init__(message or failure.value, reason=failure.reason)
        self.failure = failure


@attrs.frozen
class PhoneLimits:
    """Bounds on one session; every one is enforced by the server.

    Attributes:
        max_message_bytes: the largest message, in bytes of JSON text.
        max_file_bytes: the largest uploaded file (a DG2 of 20-60 KB fits).
        max_upload_bytes: all uploaded files together.
        max_messages: messages a phone may send in one session.
        max_steps: APDUs in one batch.
        max_apdu_bytes: one command or response APDU.
        max_reconnects: card re-presentations (relay) or resumptions.
        session_seconds: the session's lifetime, capped by the challenge's expiry.
    """

    max_message_bytes: int = 400_000
    max_file_bytes: int = 96 * 1024
    max_upload_bytes: int = 256 * 1024
    max_messages: int = 2_000
    max_steps: int = 8
    max_apdu_bytes: int = 8_192
    max_reconnects: int = 5
    session_seconds: float = 120.0

    def to_json(self) -> dict[str, int | float]:
        """The limits a phone needs to know, for the ``welcome`` message."""
        return {
            "max_message_bytes": self.max_message_bytes,
            "max_file_bytes": self.max_file_bytes,
            "max_messages": self.max_messages,
            "max_apdu_bytes": self.max_apdu_bytes,
        }


# -- field codecs --------------------------------------------------------------------


def _bad(message: str) -> PhoneSessionFailed:
    return PhoneSessionFailed(PhoneFailure.MALFORMED_MESSAGE, message)


def b64encode(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(value: object, name: str, limit: int) -> bytes:
    if not isinstance(value, str) or not _B64URL.match(value):
        raise _bad(f"{name} must be unpadded base64url text")
    if len(value) > (limit * 4 + 2) // 3:
        raise PhoneSessionFailed(PhoneFailure.MESSAGE_TOO_LARGE, f"{name} is too large")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise _bad(f"{name} is not valid base64url") from exc


def _text(value: object, name: str, pattern: re.Pattern[str] = _ID) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise _bad(f"{name} is not a valid identifier")
    return value


def _int(value: object, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _bad(f"{name} must be an integer in [{low}, {high}]")
    return value


def _bool(value: object, name: str) -> bool:
    if type(value) is not bool:
        raise _bad(f"{name} must be true or false")
    return value


# -- messages ------------------------------------------------------------------------


@attrs.frozen
class Step:
    """One APDU of a ``commands`` batch.

    ``wrap``: the phone protects the plain ``apdu`` with its own secure
    messaging and answers the unprotected response; otherwise it sends the
    bytes as they are and answers the raw response.
    """

    apdu: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    wrap: bool = False


class PhoneMessage:
    """Base of every message; ``TYPE`` is its ``type`` field."""

    TYPE: ClassVar[str]

    def fields(self) -> dict[str, Any]:
        """The JSON fields besides ``v`` and ``type``."""
        raise NotImplementedError

    @classmethod
    def parse(cls, body: Mapping[str, Any], limits: PhoneLimits) -> PhoneMessage:
        """Build from the JSON fields (``v`` and ``type`` removed)."""
        raise NotImplementedError


def _exact(
    body: Mapping[str, Any], required: AbstractSet[str], optional: AbstractSet[str] = frozenset()
) -> None:
    keys = set(body)
    if not required <= keys or not keys <= required | optional:
        raise _bad("unexpected or missing fields")


_Empty = TypeVar("_Empty", bound="_EmptyMessage")


class _EmptyMessage(PhoneMessage):
    """A message that is its type alone (no fields besides ``v`` and ``type``)."""

    def fields(self) -> dict[str, Any]:
        return {}

    @classmethod
    def parse(cls: type[_Empty], body: Mapping[str, Any], limits: PhoneLimits) -> _Empty:
        _exact(body, set())
        return cls()


@attrs.frozen
class Hello(PhoneMessage):
    """Phone -> server, first: which challenge, which mode, what the phone can do.

    ``password`` is needed in relay mode only (the server runs PACE/BAC):
    ``{"can": "123456"}`` or ``{"mrz": "DOCNUMBER:YYMMDD:YYMMDD"}``.
    """

    TYPE: ClassVar[str] = "hello"
    challenge: str
    mode: PhoneMode
    extended_length: bool = False
    password: Mapping[str, str] | None = attrs.field(default=None, repr=False)

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "challenge": self.challenge,
            "mode": self.mode.value,
            "extended_length": self.extended_length,
        }
        if self.password is not None:
            out["password"] = dict(self.password)
        return out

    @classmethod
    def parse(cls, body: Mapping[str, Any], limits: PhoneLimits) -> Hello:
        _exact(body, {"challenge", "mode"}, {"extended_length", "password"})
        try:
            mode = PhoneMode(body["mode"])
        except (ValueError, TypeError) as exc:
            raise _bad("mode must be split or relay") from exc
        password = body.get("password")
        if password is not None and (
            not isinstance(password, dict)
            or len(password) != 1
            or not set(password) <= {"can", "mrz"}
            or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in password.values())
        ):
            raise _bad("password must be {'can': ...} or {'mrz': ...}")
        return cls(
            _text(body["challenge"], "challenge"),
            mode,
            _bool(body.get("extended_length", False), "extended_length"),
            password,
        )


@attrs.frozen
class Upload(PhoneMessage):
    """Phone -> server (split mode): what the phone read, and AA over the nonce if it could."""

    TYPE: ClassVar[str] = "upload"
    files: Mapping[str, bytes] = attrs.field(repr=lambda f: f"<{', '.join(sorted(f))}>")
    aa_signature: bytes | None = attrs.field(default=None, repr=False)
    pace_protocol: str | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "files": {name: b64encode(data) for name, data in self.files.items()},
            "aa_signature": b64encode(self.aa_signature) if self.aa_signature else None,
            "pace_protocol": self.pace_protocol,
        }

    @classmethod
    def parse(cls, body: Mapping[str, Any], limits: PhoneLimits) -> Upload:
        _exact(body, {"files"}, {"aa_signature", "pace_protocol"})
        raw = body["files"]
        if not isinstance(raw, dict) or not 0 < len(raw) <= 20:
            raise _bad("files must be an object of at most 20 files")
        files: dict[str, bytes] = {}
        total = 0
        for name, value in raw.items():
            _text(name, "file name", _FILE_NAME)
            files[name] = _b64decode(value, name, limits.max_file_bytes)
            if not files[name]:
                raise _bad(f"{name} is empty")
            total += len(files[name])
        if total > limits.max_upload_bytes:
            raise PhoneSessionFailed(PhoneFailure.MESSAGE_TOO_LARGE, "the upload is too large")
        signature = body.get("aa_signature")
        protocol = body.get("pace_protocol")
        if protocol is not None:
            _text(protocol, "pace_protocol", re.compile(r"^[0-9.]{1,64}$"))
        return cls(
            files,
            None if signature is None else _b64decode(signature, "aa_signature", 1024),
            protocol,
        )


@attrs.frozen
class Responses(PhoneMessage):
    """Phone -> server: the answers to batch ``batch``, in order (fewer if a step failed)."""

    TYPE: ClassVar[str] = "responses"
    batch: int
    responses: tuple[bytes, ...] = attrs.field(repr=lambda r: f"<{len(r)} responses>")

    def fields(self) -> dict[str, Any]:
        return {"batch": self.batch, "responses": [b64encode(r) for r in self.responses]}

    @classmethod
    def parse(cls, body: Mapping[str, Any], limits: PhoneLimits) -> Responses:
        _exact(body, {"batch", "responses"})
        items = body["responses"]
        if not isinstance(items, list) or not 0 < len(items) <= limits.max_steps:
            raise _bad("responses must be a non-empty list, at most max_steps long")
        answers = tuple(_b64decode(r, "response", limits.max_apdu_bytes) for r in items)
        if any(len(a) < 2 for a in answers):
            raise _bad("a response APDU has at least a status word")
        return cls(_int(body["batch"], "batch", 1, 1 << 30), answers)


@attrs.frozen
class CardReady(_EmptyMessage):
    """Phone -> server (relay): the card is (again) on the phone, at the master file."""

    TYPE: ClassVar[str] = "card_ready"


@attrs.frozen
class CardLost(_EmptyMessage):
    """Phone -> server (relay): the card left the field before it answered."""

    TYPE: ClassVar[str] = "card_lost"


@attrs.frozen
class Resume(PhoneMessage):
    """Phone -> server, first on a new connection: continue session ``session``."""

    TYPE: ClassVar[str] = "resume"
    session: str
    token: bytes = attrs.field(repr=False)

    def fields(self) -> dict[str, Any]:
        return {"session": self.session, "token": b64encode(self.token)}

    @classmethod
    def parse(cls, body: Mapping[str, Any], limits: PhoneLimits) -> Resume:
        _exact(body, {"session", "token"})
        return cls(_text(body["session"], "session"), _b64decode(body["token"], "token", 64))


@attrs.frozen
class Abort(PhoneMessage):
    """Phone -> server: the phone gives up (the person cancelled, a wrong CAN...)."""

    TYPE: ClassVar[str] = "abort"
    reason: str

    def fields(self) -> dict[str, Any]:
        return {"reason": self.reason}

    @classmethod
    def parse(cls, body: Mapping[str, Any], limits: PhoneLimits) -> Abort:
        _exact(body, {"reason"})
        return cls(_text(body["reason"], "reason"))


@attrs.frozen
class Welcome(PhoneMessage):
    """Server -> phone: the session, its resumption token, the nonce for AA, the limits."""

    TYPE: ClassVar[str] = "welcome"
    session: str
    token: bytes = attrs.field(repr=False)
    nonce: bytes
    mode: PhoneMode
    seconds: int
    limits: Mapping[str, int | float] = attrs.field(factory=dict)

    def fields(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "token": b64encode(self.token),
            "nonce": b64encode(self.nonce),
            "mode": self.mode.value,
            "seconds": self.seconds,
            "limits": dict(self.limits),
        }

    @classmethod
    def parse(cls, body: Mapping[str, Any], limits: PhoneLimits) -> Welcome:
        _exact(body, {"session", "token", "nonce", "mode", "seconds", "limits"})
        try:
            mode = PhoneMode(body["mode"])
        except (ValueError, TypeError) as exc:
            raise _bad("bad mode") from exc
        announced = body["limits"]
        if not isinstance(announced, dict) or not all(
            isinstance(k, str) and type(v) in (int, float) for k, v in announced.items()
        ):
            raise _bad("bad limits")
        return cls(
            _text(body["session"], "session"),
            _b64decode(body["token"], "token", 64),
            _b64decode(body["nonce"], "nonce", 64),
            mode,
            _int(body["seconds"], "seconds", 0, 3600),
            announced,
        )


@attrs.frozen
class Commands(PhoneMessage):
    """Server -> phone: run these steps in order, answer with ``responses`` for ``batch``.

    ``reestablish``: first run PACE/BAC again (the chip's session state is unknown).
    """

    TYPE: ClassVar[str] = "commands"
    batch: int
    steps: tuple[Step, ...]
    reestablish: bool = False

    def fields(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "steps": [{"apdu": b64encode(s.apdu), "wrap": s.wrap} for s in self.steps],
            "reestablish": self.reestablish,
        }

    @classmethod
    def parse(cls, body: Mapping[str, Any], limits: PhoneLimits) -> Commands:
        _exact(body, {"batch", "steps", "reestablish"})
        items = body["steps"]
        if not isinstance(items, list) or not 0 < len(items) <= limits.max_steps:
            raise _bad("steps must be a non-empty list")
        steps = []
        for item in items:
            if not isinstance(item, dict):
                raise _bad("a step is an object")
            _exact(item, {"apdu", "wrap"})
            steps.append(
                Step(
                    _b64decode(item["apdu"], "apdu", limits.max_apdu_bytes),
                    _bool(item["wrap"], "wrap"),
                )
            )
        return cls(
            _int(body["batch"], "batch", 1, 1 << 30),
            tuple(steps),
            _bool(body["reestablish"], "reestablish"),
        )


@attrs.frozen
class Reconnect(_EmptyMessage):
    """Server -> phone (relay): present the card again and answer ``card_ready``."""

    TYPE: ClassVar[str] = "reconnect"


@attrs.frozen
class ResultMessage(PhoneMessage):
    """Server -> phone, last: the verdict of the authenticator."""

    TYPE: ClassVar[str] = "result"
    authenticated: bool
    assurance: str = ""
    proof: str = ""
    reason: str = ""
    #: The signed assertion for the calling service (HTTP service only), else empty.
    assertion: str = attrs.field(default="", repr=False)

    def fields(self) -> dict[str, Any]:
        return {
            "authenticated": self.authenticated,
            "assurance": self.assurance,
            "proof": self.proof,
            "reason": self.reason,
            "assertion": self.assertion,
        }

    @classmethod
    def parse(cls, body: Mapping[str, Any], limits: PhoneLimits) -> ResultMessage:
        _exact(body, {"authenticated", "assurance", "proof", "reason", "assertion"})
        texts = [body[k] for k in ("assurance", "proof", "reason")]
        if not all(isinstance(t, str) and len(t) <= 200 for t in texts):
            raise _bad("bad result fields")
        if not isinstance(body["assertion"], str) or len(body["assertion"]) > 8192:
            raise _bad("bad assertion")
        return cls(
            authenticated=_bool(body["authenticated"], "authenticated"),
            assurance=body["assurance"],
            proof=body["proof"],
            reason=body["reason"],
            assertion=body["assertion"],
        )


@attrs.frozen
class ErrorMessage(PhoneMessage):
    """Server -> phone, last: the session failed for ``reason`` (a :class:`PhoneFailure`)."""

    TYPE: ClassVar[str] = "error"
    reason: PhoneFailure
    message: str = ""

    def fields(self) -> dict[str, Any]:
        return {"reason": self.reason.value, "message": self.message}

    @classmethod
    def parse(cls, body: Mapping[str, Any], limits: PhoneLimits) -> ErrorMessage:
        _exact(body, {"reason", "message"})
        try:
            reason = PhoneFailure(body["reason"])
        except (ValueError, TypeError) as exc:
            raise _bad("unknown failure reason") from exc
        if not isinstance(body["message"], str) or len(body["message"]) > 500:
            raise _bad("bad message")
        return cls(reason, body["message"])


PHONE_MESSAGES: Mapping[str, type[PhoneMessage]] = {
    m.TYPE: m for m in (Hello, Upload, Responses, CardReady, CardLost, Resume, Abort)
}
SERVER_MESSAGES: Mapping[str, type[PhoneMessage]] = {
    m.TYPE: m for m in (Welcome, Commands, Reconnect, ResultMessage, ErrorMessage)
}


def encode_message(message: PhoneMessage) -> str:
    """The JSON text of ``message``."""
    body = {"v": PROTOCOL_VERSION, "type": message.TYPE, **message.fields()}
    return json.dumps(body, separators=(",", ":"))


def decode_message(
    raw: str | bytes,
    *,
    accept: Mapping[str, type[PhoneMessage]] = PHONE_MESSAGES,
    limits: PhoneLimits | None = None,
) -> PhoneMessage:
    """Parse and validate one message.

    Raises:
        PhoneSessionFailed: too large (``message_too_large``), another version
            (``unsupported_version``), or anything malformed (``malformed_message``).
    """
    limits = limits or PhoneLimits()
    if not isinstance(raw, str | bytes):
        raise _bad("a message is JSON text")
    if len(raw) > limits.max_message_bytes:
        raise PhoneSessionFailed(PhoneFailure.MESSAGE_TOO_LARGE, "the message is too large")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise _bad("not JSON") from exc
    if not isinstance(body, dict):
        raise _bad("a message is a JSON object")
    version = body.pop("v", None)
    if type(version) is not int:
        raise _bad("missing version")
    if version != PROTOCOL_VERSION:
        raise PhoneSessionFailed(PhoneFailure.UNSUPPORTED_VERSION, f"version {version}")
    kind = body.pop("type", None)
    if not isinstance(kind, str) or kind not in accept:
        raise _bad("unknown message type")
    return accept[kind].parse(body, limits)

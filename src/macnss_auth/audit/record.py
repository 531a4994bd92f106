"""The stored form of an audit event, and its canonical serialization.

A record is a flat JSON object (format version 1)::

    {"v": 1, "seq": 7, "at": "2026-11-28T13:29:23.123456+00:00",
     "action": "verify", "method": "totp", "outcome": "failure",
     "subject": "ps:3f2a...", "reason": "invalid_code", "channel": null,
     "client": {"client_id": "kiosk-12", "ip": "10.0.0.7", "user_agent": null},
     "details": {"drift": "-1"}, "kid": "9c1e...", "prev": "<64 hex>", "hash": "<64 hex>"}

*Canonical JSON* is what gets hashed: the record without ``hash``, keys
sorted, no whitespace, UTF-8, no floats (every value is text, an integer,
null or an object of those). For such values this is the RFC 8785 (JCS)
encoding except that keys sort by code point rather than UTF-16 unit, which
differs only for keys outside the Basic Multilingual Plane.

Subjects are either stored as given or pseudonymized: ``"ps:"`` followed by
the first 128 bits of HMAC-SHA256 under the pseudonym key, in hex. Anyone
with the records can group by person; only the key holder can tell who a
pseudonym is (by computing :func:`pseudonymize` for a candidate subject).
A plain hash would not do: national ids are short enough to enumerate.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from macnss_auth.audit.errors import AuditEventRejected, AuditFormatError
from macnss_auth.audit.events import AuditEvent
from macnss_auth.secret import Secret

__all__ = [
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "MAX_SEQUENCE",
    "PSEUDONYM_PREFIX",
    "canonical_json",
    "check_event",
    "decode_record",
    "event_body",
    "parse_record",
    "pseudonymize",
]

FORMAT_VERSION = 1
GENESIS_HASH = "0" * 64
"""The ``prev`` of the first record: there is nothing before it."""
PSEUDONYM_PREFIX = "ps:"
MAX_SEQUENCE = 2**63 - 1
"""The largest sequence number: SQLite's INTEGER (and every real log) stays below it."""

_PSEUDONYM_LABEL = b"macnss-auth/audit/subject/v1\x00"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KID = re.compile(r"[0-9a-f]{16}")
_TEXT_FIELDS = ("at", "action", "method", "outcome")
_OPTIONAL_TEXT_FIELDS = ("subject", "reason", "channel")
_CLIENT_FIELDS = ("client_id", "ip", "user_agent")
_FIELDS = frozenset(
    {"v", "seq", "kid", "prev", "hash", "client", "details"}
    | set(_TEXT_FIELDS)
    | set(_OPTIONAL_TEXT_FIELDS)
)


# One encoder for every record: json.dumps with options builds a new one per call.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes that get hashed."""
    return _CANONICAL.encode(value).encode("utf-8")


def pseudonymize(subject: str, key: bytes | Secret) -> str:
    """The pseudonym a log keyed with ``key`` stores for ``subject``.

    >>> pseudonymize("alice", b"k" * 32)[:3]
    'ps:'
    """
    raw = key.reveal() if isinstance(key, Secret) else key
    mac = hmac.new(raw, _PSEUDONYM_LABEL + subject.encode("utf-8"), hashlib.sha256)
    return PSEUDONYM_PREFIX + mac.hexdigest()[:32]


def _text(value: object, field: str) -> str:
    # The common case first: a plain ASCII str (ASCII holds no lone surrogate).
    if type(value) is str and value.isascii():
        return value
    # str-valued enums (Reason, AuditAction) are stored as their value, never as "Reason.X".
    if isinstance(value, enum.Enum):
        value = value.value
    if not isinstance(value, str):
        raise AuditEventRejected("must be text", field=field)
    if value.isascii():
        return str.__str__(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise AuditEventRejected(
            "must be valid Unicode (no lone surrogates)", field=field
        ) from None
    return str.__str__(value)


def _optional_text(value: object, field: str) -> str | None:
    return None if value is None else _text(value, field)


_UTC = dt.timezone.utc


def _utc_text(at: object) -> str:
    if not isinstance(at, dt.datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise AuditEventRejected("must be a timezone-aware datetime", field="at")
    return at.astimezone(_UTC).isoformat(timespec="microseconds")


def check_event(event: AuditEvent, *, details_checked: bool = False) -> None:
    """Refuse what :func:`event_body` would refuse, without building the body.

    Sinks that build records later (:class:`~macnss_auth.audit.MemoryAuditLog`
    seals when the chain is read) call this at :meth:`record` time, so that a
    bad event is refused when it is recorded, as in every other sink.

    ``details_checked``: the caller already knows every detail key and value is ASCII
    text (:meth:`SecretScreen.passes_quickly` said so).

    Raises:
        AuditEventRejected: a naive time, or a field that is not text.
    """
    at: object = event.at
    if not isinstance(at, dt.datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise AuditEventRejected("must be a timezone-aware datetime", field="at")
    # One fast test for the common case (every field plain ASCII text, hence valid text);
    # field by field, with _text saying why, only when it fails. Callers may be untyped:
    # the annotations promise text, checked here at run time.
    action: object = event.action
    method: object = event.method
    outcome: object = event.outcome
    if not (
        isinstance(action, str)
        and isinstance(method, str)
        and isinstance(outcome, str)
        and action.isascii()
        and method.isascii()
        and outcome.isascii()
    ):
        _text(action, "action")
        _text(method, "method")
        _text(outcome, "outcome")
    subject, reason, channel = event.subject, event.reason, event.channel
    if subject is not None and not (type(subject) is str and subject.isascii()):
        _text(subject, "subject")
    if reason is not None and not (type(reason) is str and reason.isascii()):
        _text(reason, "reason")
    if channel is not None and not (type(channel) is str and channel.isascii()):
        _text(channel, "channel")
    if event.client is not None:
        for name in _CLIENT_FIELDS:
            _optional_text(getattr(event.client, name), f"client.{name}")
    if details_checked:
        return
    details: Iterable[tuple[object, object]] = event.details.items()
    for key, text in details:
        if not (type(key) is str and type(text) is str and key.isascii() and text.isascii()):
            _text(key, "details")
            _text(text, f"details.{key}")


def event_body(event: AuditEvent, *, pseudonym_key: Secret | None) -> dict[str, Any]:
    """The record fields that describe ``event`` (no ``v``, ``seq``, ``kid``, ``prev``, ``hash``).

    Raises:
        AuditEventRejected: a naive time, or a field that is not text.
    """
    at_text = _utc_text(event.at)
    subject = _optional_text(event.subject, "subject")
    if subject is not None and pseudonym_key is not None:
        subject = pseudonymize(subject, pseudonym_key)
    client = None
    if event.client is not None:
        client = {
            name: _optional_text(getattr(event.client, name), f"client.{name}")
            for name in _CLIENT_FIELDS
        }
    return {
        "at": at_text,
        "action": _text(event.action, "action"),
        "method": _text(event.method, "method"),
        "outcome": _text(event.outcome, "outcome"),
        "subject": subject,
        "reason": _optional_text(event.reason, "reason"),
        "channel": _optional_text(event.channel, "channel"),
        "client": client,
        "details": {
            _text(key, "details"): _text(value, f"details.{key}")
            for key, value in event.details.items()
        },
    }


def _fail(message: str, field: str, position: int | None) -> AuditFormatError:
    return AuditFormatError(message, field=field, position=position)


def parse_record(value: object, *, position: int | None = None) -> dict[str, Any]:
    """Check that ``value`` (parsed JSON) is a version-1 audit record and return it.

    Only the shape is checked here; whether the chain holds is
    :func:`macnss_auth.audit.chain.verify_records`'s job.

    Raises:
        AuditFormatError: anything missing, extra or ill-typed.
    """
    if not isinstance(value, dict):
        raise _fail("a record must be a JSON object", "record", position)
    keys = set(value)
    if keys != _FIELDS:
        missing = sorted(_FIELDS - keys)
        if missing:
            raise _fail(f"record lacks {', '.join(missing)}", missing[0], position)
        raise _fail("record has unknown fields", sorted(keys - _FIELDS)[0], position)
    if value["v"] != FORMAT_VERSION or isinstance(value["v"], bool):
        raise _fail(f"unsupported record version (this code reads {FORMAT_VERSION})", "v", position)
    seq = value["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= MAX_SEQUENCE:
        raise _fail("seq must be a positive 64-bit integer", "seq", position)
    for field in _TEXT_FIELDS:
        if not isinstance(value[field], str):
            raise _fail(f"{field} must be text", field, position)
    for field in _OPTIONAL_TEXT_FIELDS:
        if value[field] is not None and not isinstance(value[field], str):
            raise _fail(f"{field} must be text or null", field, position)
    try:
        at = dt.datetime.fromisoformat(value["at"])
    except ValueError:
        raise _fail("at must be an ISO 8601 time", "at", position) from None
    if at.tzinfo is None:
        raise _fail("at must carry a timezone", "at", position)
    client = value["client"]
    if client is not None and (
        not isinstance(client, dict)
        or set(client) != set(_CLIENT_FIELDS)
        or not all(v is None or isinstance(v, str) for v in client.values())
    ):
        raise _fail("client must map client_id, ip, user_agent to text or null", "client", position)
    details = value["details"]
    if not isinstance(details, dict) or not all(isinstance(v, str) for v in details.values()):
        raise _fail("details must map text to text", "details", position)
    kid = value["kid"]
    if kid is not None and (not isinstance(kid, str) or not _KID.fullmatch(kid)):
        raise _fail("kid must be 16 hex digits or null", "kid", position)
    for field in ("prev", "hash"):
        if not isinstance(value[field], str) or not _HEX64.fullmatch(value[field]):
            raise _fail(f"{field} must be 64 lowercase hex digits", field, position)
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            # Parsers disagree on which duplicate wins; a verifier must not.
            raise ValueError("duplicate key")
        out[name] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_record(raw: bytes, *, position: int | None = None) -> dict[str, Any]:
    """Parse one stored record (a JSON Lines line without its newline, or an SQLite row).

    The bytes must be exactly the record's canonical JSON: anything else
    (extra spaces, duplicate keys, other escapes) was not written by this
    library and is refused, so every reader sees the same record.

    Raises:
        AuditFormatError: not JSON, not a record, or not canonical.
    """
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors; deep nesting is a RecursionError.
        raise _fail(f"not a JSON record ({type(exc).__name__})", "record", position) from None
    record = parse_record(value, position=position)
    try:
        canonical = canonical_json(record)
    except ValueError:
        raise _fail("record cannot be serialized canonically", "record", position) from None
    if canonical != raw:
        raise _fail("record is not in canonical form", "record", position)
    return record

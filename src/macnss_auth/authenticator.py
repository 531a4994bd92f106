"""The one interface every authentication method implements.

A method is a two-step exchange. ``begin(subject)`` creates a
:class:`Challenge` (stored server-side, safe to send to the client) and, for
out-of-band methods, sends a code. ``verify(challenge, response)`` either
returns a frozen :class:`AuthResult` or raises an
:class:`~macnss_auth.errors.AuthenticationFailed` subclass: it never returns a
boolean that a caller could forget to check.

The server never trusts what the client sends back about a challenge: only its
id is used, and the stored record decides subject, method and expiry.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs

from macnss_auth.clock import RandomSource
from macnss_auth.errors import MalformedInput

__all__ = [
    "AssuranceLevel",
    "AuthResult",
    "Authenticator",
    "Challenge",
    "ClientContext",
]


def _frozen_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


class AssuranceLevel(enum.IntEnum):
    """How much confidence a successful authentication gives.

    The levels follow eIDAS (Regulation (EU) 910/2014, Implementing Regulation
    2015/1502) and map to NIST SP 800-63B authenticator assurance levels:

    ========  ================  ========  ==========================================
    level     eIDAS LoA         NIST AAL  given by
    ========  ================  ========  ==========================================
    LOW       low               AAL1      SMS codes (a *restricted* authenticator in
                                          SP 800-63B) and e-mail codes (e-mail is not
                                          an authenticator at all under SP 800-63B;
                                          it is accepted here for inclusion only)
    SUBSTANTIAL substantial     AAL2*     TOTP/HOTP apps, recovery codes
                                          (*AAL2 only combined with a second factor)
    HIGH      high              AAL3-ish  an eID chip proven genuine (passive + active
                                          or chip authentication) and bound to the
                                          subject: possession of a hardware token whose
                                          key cannot be copied
    ========  ================  ========  ==========================================

    Integers so that policies can compare: ``result.assurance >= SUBSTANTIAL``.
    """

    LOW = 1
    SUBSTANTIAL = 2
    HIGH = 3

    @property
    def eidas(self) -> str:
        """The eIDAS level of assurance name."""
        return self.name.lower()

    @property
    def nist_aal(self) -> int:
        """The closest NIST SP 800-63B authenticator assurance level."""
        return int(self)


@attrs.frozen
class ClientContext:
    """What the calling service knows about the client, for audit and throttling.

    Attributes:
        client_id: a kiosk id, app installation id or similar; throttles count
            per (subject, client) as well as per subject, so an attacker far
            away cannot lock the real person out as easily.
        ip: the client's IP address as the service saw it.
        user_agent: the client's self-description.
    """

    client_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None


@attrs.frozen
class Challenge:
    """A pending authentication, safe to serialize and send to the client.

    Never contains a secret: codes, MRZ and keys stay in the store.

    Attributes:
        id: an unguessable identifier (URL-safe text).
        subject: who is authenticating, as the caller named them.
        method: the authenticator's stable method name (``"totp"``, ``"sms"``, ...).
        created_at / expires_at: aware UTC datetimes from the server's clock.
        hint: something to show the person, e.g. a masked phone number
            ``+212 6•• ••• •12``; never the full destination.
        data: method-specific public data, e.g. the eID nonce in hex.
    """

    id: str
    subject: str
    method: str
    created_at: dt.datetime
    expires_at: dt.datetime
    hint: str | None = None
    data: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)

    @staticmethod
    def new_id(random: RandomSource) -> str:
        """A fresh unguessable challenge id: 128 random bits in lower-case base32 (26 chars).

        Letters and digits only: an id never starts with ``-``, so it can be
        typed as a command-line argument, and it survives URLs and file names.
        """
        return base64.b32encode(random.token_bytes(16)).rstrip(b"=").decode().lower()

    def is_expired(self, now: dt.datetime) -> bool:
        """Whether the challenge is over at ``now``."""
        return now >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.id,
            "subject": self.subject,
            "method": self.method,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "hint": self.hint,
            "data": dict(self.data),
        }

    def to_json(self) -> str:
        """Compact JSON text."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Challenge:
        """Parse :meth:`to_dict` output.

        Raises:
            MalformedInput: missing or ill-typed fields.
        """
        try:
            data = value.get("data") or {}
            if not isinstance(data, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()
            ):
                raise MalformedInput("challenge data must map text to text", field="data")
            hint = value.get("hint")
            if hint is not None and not isinstance(hint, str):
                raise MalformedInput("hint must be text", field="hint")
            texts = {k: value[k] for k in ("id", "subject", "method")}
            for key, text in texts.items():
                if not isinstance(text, str):
                    raise MalformedInput(f"{key} must be text", field=key)
            created = dt.datetime.fromisoformat(str(value["created_at"]))
            expires = dt.datetime.fromisoformat(str(value["expires_at"]))
        except KeyError as exc:
            raise MalformedInput(
                f"challenge lacks {exc.args[0]!r}", field=str(exc.args[0])
            ) from None
        except (ValueError, TypeError, AttributeError) as exc:
            if isinstance(exc, MalformedInput):
                raise
            raise MalformedInput("challenge is not well formed") from exc
        if created.tzinfo is None or expires.tzinfo is None:
            raise MalformedInput("challenge times must carry a timezone")
        return cls(
            id=texts["id"],
            subject=texts["subject"],
            method=texts["method"],
            created_at=created,
            expires_at=expires,
            hint=hint,
            data=data,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Challenge:
        """Parse :meth:`to_json` output.

        Raises:
            MalformedInput: not JSON, or not a challenge.
        """
        try:
            value = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            # RecursionError: arrays or objects nested past the interpreter's limit.
            raise MalformedInput("challenge is not JSON") from exc
        if not isinstance(value, Mapping):
            raise MalformedInput("challenge must be a JSON object")
        return cls.from_dict(value)


@attrs.frozen
class AuthResult:
    """A successful authentication. Only ever constructed on success.

    Attributes:
        subject: who authenticated.
        method: which method they used.
        authenticated_at: the server's time of the decision.
        assurance: the :class:`AssuranceLevel` reached.
        claims: verified attributes (for eID: names, document number, birth date...).
        audit_event_id: the id of the audit record of this decision, if audited.
        details: non-secret facts about the decision (e.g. TOTP drift in steps).
    """

    subject: str
    method: str
    authenticated_at: dt.datetime
    assurance: AssuranceLevel
    # Claims are personal data (document number + birth date + expiry open a BAC chip):
    # the repr names them but never shows their values.
    claims: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen_mapping, repr=lambda c: f"<{', '.join(sorted(c))}>"
    )
    audit_event_id: str | None = None
    details: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)


ResponseT_contra = TypeVar("ResponseT_contra", contravariant=True)


@runtime_checkable
class Authenticator(Protocol[ResponseT_contra]):
    """What every authentication method implements.

    ``ResponseT`` is what the person (or their device) answers with: a code
    string for OTP methods, document evidence for eID.
    """

    @property
    def method(self) -> str:
        """A stable method name: ``"totp"``, ``"hotp"``, ``"sms"``, ``"email"``, ``"eid"``."""
        ...

    def begin(self, subject: str, *, context: ClientContext | None = None) -> Challenge:
        """Start an authentication for ``subject`` and return its public challenge."""
        ...

    def verify(
        self,
        challenge: Challenge | str,
        response: ResponseT_contra,
        *,
        context: ClientContext | None = None,
    ) -> AuthResult:
        """Decide. Return a success record or raise ``AuthenticationFailed``.

        Raises:
            AuthenticationFailed: in a subclass naming the reason.
            MalformedInput: when the response cannot be parsed at all.
        """
        ...

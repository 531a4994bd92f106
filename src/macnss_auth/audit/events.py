"""What an audit record says, and the interface every audit sink offers.

An :class:`AuditEvent` never carries a secret, a code, an MRZ or a full phone
number: strategies put only masked or non-secret facts in ``details``. Every
sink in this package runs :class:`~macnss_auth.audit.screen.SecretScreen` on
each event and refuses (``AuditEventRejected``) the ones that look otherwise.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import attrs

from macnss_auth.authenticator import ClientContext
from macnss_auth.errors import Reason

__all__ = ["AuditAction", "AuditEvent", "AuditLog", "Outcome", "record_event"]


def _frozen_details(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


class AuditAction(str, enum.Enum):
    """What happened. Stable strings: notebooks group by them."""

    ENROLL = "enroll"
    CONFIRM = "confirm"
    BEGIN = "begin"
    VERIFY = "verify"
    LOCKOUT = "lockout"
    DELIVER = "deliver"
    RESYNC = "resync"
    RECOVERY = "recovery"
    REVOKE = "revoke"
    ROTATE_KEYS = "rotate_keys"
    """``macnss-auth keys rotate``: a new primary key, secrets re-sealed (method ``keyring``)."""
    RETIRE_KEYS = "retire_keys"
    """``macnss-auth keys retire``: secrets re-sealed, the old keys removed (method ``keyring``)."""
    CHECKPOINT = "checkpoint"
    """Written by the log itself: an Ed25519 signature over the chain so far."""


class Outcome(str, enum.Enum):
    """How it ended."""

    SUCCESS = "success"
    FAILURE = "failure"
    INFO = "info"


@attrs.frozen
class AuditEvent:
    """One thing that happened, as a strategy reports it to the audit log.

    Attributes:
        at: the server's time of the event.
        action: see :class:`AuditAction`.
        method: the authenticator's method name.
        outcome: see :class:`Outcome`.
        subject: who it concerns; the log may pseudonymize it with a keyed hash.
        reason: a :class:`~macnss_auth.errors.Reason` value on failures.
        channel: the delivery channel (``"sms"``, ``"email"``) or reader, if any.
        client: what the caller knows about the client (kiosk id, IP).
        details: further non-secret facts (a masked destination, a drift).
    """

    at: dt.datetime
    action: AuditAction
    method: str
    outcome: Outcome
    subject: str | None = None
    reason: str | None = None
    channel: str | None = None
    client: ClientContext | None = None
    details: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_details)


@runtime_checkable
class AuditLog(Protocol):
    """An append-only sink of audit events."""

    def record(self, event: AuditEvent) -> str:
        """Append ``event`` and return its id (unique within the log)."""
        ...


def record_event(
    audit: AuditLog,
    *,
    at: dt.datetime,
    action: AuditAction,
    method: str,
    outcome: Outcome,
    subject: str | None = None,
    client: ClientContext | None = None,
    reason: Reason | str | None = None,
    channel: str | None = None,
    details: Mapping[str, str] | None = None,
) -> str:
    """Build an :class:`AuditEvent` and append it to ``audit``; return its id.

    The one place where authenticators turn what happened into an event:
    a :class:`~macnss_auth.errors.Reason` is stored as its stable string, and
    missing ``details`` as an empty mapping.
    """
    return audit.record(
        AuditEvent(
            at=at,
            action=action,
            method=method,
            outcome=outcome,
            subject=subject,
            reason=reason.value if isinstance(reason, Reason) else reason,
            channel=channel,
            client=client,
            details=details or {},
        )
    )

"""What every method records about an attempt: its audit events and its throttle refusals.

The one place where an authenticator (eID, TOTP/HOTP and recovery codes,
SMS/e-mail codes, passkeys) turns a step into an audit event of its method:
:class:`MethodEvents` is bound to the method's audit log, clock and name, so a
method writes ``events.record(action, outcome, subject, context, ...)`` and
every event carries the same fields, timed by the injected clock.

Two steps repeat in every method, so they live here too: counting an attempt
before it is checked (:meth:`MethodEvents.throttle_step`: a throttle refusal is
audited with its ``retry_after`` before it propagates) and auditing a response
that cannot even be read (:meth:`MethodEvents.malformed`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TypeVar

import attrs

from macnss_auth.audit.events import AuditAction, AuditLog, Outcome, record_event
from macnss_auth.authenticator import ClientContext
from macnss_auth.clock import Clock
from macnss_auth.errors import MalformedInput, Reason, VerificationThrottled
from macnss_auth.store.base import Store

__all__ = ["MethodEvents", "commit_group_of", "grouped"]

_Counted = TypeVar("_Counted")  # what the throttle step returns: an Attempt or an Admission


def commit_group_of(
    store: Store, audit: AuditLog
) -> Callable[[], AbstractContextManager[None]] | None:
    """``store.commit_group`` if ``audit`` keeps its records in ``store``'s database, else None.

    Only then is one transaction all it takes: with the audit log elsewhere,
    grouping the store's writes would put the audit commit first and turn the
    documented crash window around.
    """
    shared = getattr(audit, "store", None)
    if shared is None or shared is not store:
        return None
    group: Callable[[], AbstractContextManager[None]] | None = getattr(store, "commit_group", None)
    return group


def grouped(
    group: Callable[[], AbstractContextManager[None]] | None,
) -> AbstractContextManager[None]:
    """``group()`` (from :func:`commit_group_of`), or a block that groups nothing."""
    return contextlib.nullcontext() if group is None else group()


@attrs.frozen
class MethodEvents:
    """The audit events of one method.

    Attributes:
        audit: where the events go.
        clock: the time of an event unless the caller names it (``at``).
        method: the method every event names.
        channel: the channel events name when the caller names none (SMS, e-mail).
    """

    audit: AuditLog
    clock: Clock
    method: str
    channel: str | None = None

    def record(
        self,
        action: AuditAction,
        outcome: Outcome,
        subject: str | None,
        context: ClientContext | None = None,
        *,
        at: dt.datetime | None = None,
        reason: Reason | None = None,
        details: Mapping[str, str] | None = None,
        channel: str | None = None,
    ) -> str:
        """Append one event of this method; return its id."""
        return record_event(
            self.audit,
            at=at or self.clock.now(),
            action=action,
            method=self.method,
            outcome=outcome,
            subject=subject,
            client=context,
            reason=reason,
            channel=channel or self.channel,
            details=details,
        )

    def throttle_step(
        self,
        step: Callable[..., _Counted],
        subject: str,
        context: ClientContext | None,
        action: AuditAction,
        *,
        at: dt.datetime | None = None,
        generation: int | None = None,
    ) -> _Counted:
        """Run a throttle's ``acquire`` (count the attempt before it is checked) or ``admit``;
        audit and re-raise a refusal.

        ``step`` is :meth:`FailureThrottle.acquire` or, for a decision made in
        one serializable transaction, :meth:`FailureThrottle.admit` (the attempt
        is let through uncounted; count it with ``Admission.count`` only if it fails).

        Raises:
            VerificationThrottled: too soon after the last failures
                (``LockedOut`` when locked out), audited with ``retry_after``.
        """
        # try/except rather than a context manager: that would cost more than the
        # rest of an in-memory acquire.
        try:
            return step(subject, context, generation=generation)
        except VerificationThrottled as exc:
            retry = exc.retry_after
            self.record(
                action,
                Outcome.FAILURE,
                subject,
                context,
                at=at,
                reason=exc.reason,
                details={"retry_after": f"{retry:.0f}"} if retry else {},
            )
            raise

    @contextlib.contextmanager
    def malformed(
        self,
        action: AuditAction,
        subject: str | None,
        context: ClientContext | None,
        *,
        reason: Reason,
        at: dt.datetime | None = None,
        name_the_field: bool = False,
    ) -> Iterator[None]:
        """Audit a :class:`~macnss_auth.errors.MalformedInput` raised inside, and let it go on.

        ``name_the_field`` adds the unreadable field's name (never its value) to the event.
        """
        try:
            yield
        except MalformedInput as exc:
            details = {"field": exc.field or "response"} if name_the_field else None
            self.record(
                action, Outcome.FAILURE, subject, context, at=at, reason=reason, details=details
            )
            raise

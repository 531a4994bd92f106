"""The flow every code method shares: challenge, throttle, audit around one check.

:class:`CodeAuthenticatorBase` is the base of every method that checks a
code a person types (TOTP, HOTP, recovery codes). It opens a challenge
without reading any enrollment (so ``begin`` reveals nothing), classifies a
stored challenge with the shared gate (:func:`~macnss_auth.challenges.challenge_failure`),
counts every attempt *before* it is checked with a
:class:`~macnss_auth.throttle.FailureThrottle` (growing delays, then an
expiring lockout; cleared on success), so parallel guessing cannot check
more codes than the policy allows, and audits each outcome. Subclasses
implement the check itself in ``_check``.

One commit per decision: when the audit log lives in the store's own
database (:meth:`SQLiteAuditLog.in_store <macnss_auth.audit.SQLiteAuditLog.in_store>`),
``begin``, ``verify`` and ``verify_code`` run inside the store's
``commit_group``: the reads, the counted attempt, the spent code or
challenge and the audit record are one transaction, committed (durably)
before the call returns or raises. Inside it no other attempt is decided, so
an attempt is admitted first and counted only if it fails (see ``_acquire``).
Otherwise each store call and each audit append commits on its own, as before
(see docs/security.md for the crash window of that layout).

Authenticator-app codes add enrollment and the replay guard on top: see
:mod:`macnss_auth.otp.otp_flow`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import ClassVar, TypedDict

import attrs

from macnss_auth.attempts import MethodEvents, commit_group_of, grouped
from macnss_auth.audit.events import AuditAction, AuditLog, Outcome
from macnss_auth.authenticator import AssuranceLevel, AuthResult, Challenge, ClientContext
from macnss_auth.challenges import challenge_failure, challenge_id_of, subject_of
from macnss_auth.clock import Clock, RandomSource, SystemClock, SystemRandom
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeUsed,
    ConfigurationError,
    Reason,
)
from macnss_auth.store.base import ChallengeRecord, Enrollment, Store
from macnss_auth.throttle import Admission, Attempt, FailureThrottle, ThrottlePolicy

__all__ = ["CodeAuthenticatorBase", "CodeSettings"]


class CodeSettings(TypedDict, total=False):
    """The keyword-only settings every code method takes (see :class:`CodeAuthenticatorBase`).

    Subclass constructors take them as ``**settings`` and pass them on, so the
    list and its defaults live in one place.
    """

    clock: Clock | None
    random: RandomSource | None
    throttle_policy: ThrottlePolicy | None
    challenge_ttl: float
    challenge_attempts: int


@attrs.frozen
class _Trial:
    """One counted attempt to authenticate: what a failure or success is recorded against.

    Attributes:
        subject: who is trying.
        context: the client, for the throttle and the audit log.
        now: the server's time of the attempt.
        action: what the attempt is audited as (verify, confirm, resync, recovery).
        counted: the throttle's count, for ``remaining_attempts`` and the lockout; or,
            inside a commit group, the admission that a failure counts (see ``_acquire``).
    """

    subject: str
    context: ClientContext | None
    now: dt.datetime
    action: AuditAction
    counted: Attempt | Admission

    def failure_count(self) -> Attempt:
        """The count a failure reports: counted now if it was only admitted."""
        counted = self.counted
        return counted if isinstance(counted, Attempt) else counted.count()


@attrs.frozen
class _Request:
    """One code to decide, as the caller handed it in.

    Attributes:
        subject: who is trying.
        code: what they typed (never in repr).
        context: the client, for the throttle and the audit log.
        now: the server's time of the attempt.
        enrollment: the subject's enrollment, or None (unknown subjects do the same work).
        action: what the attempt is audited as.
        challenge_id: the challenge answered, if any (charged a wrong attempt on failure).
    """

    subject: str
    code: str = attrs.field(repr=False)
    context: ClientContext | None
    now: dt.datetime
    enrollment: Enrollment | None
    action: AuditAction = AuditAction.VERIFY
    challenge_id: str | None = None


class CodeAuthenticatorBase:
    """Challenges, throttling and audit around a code check: what OTP methods share.

    ``begin`` opens a challenge without reading any enrollment; ``verify``
    checks the stored challenge and hands the code to :meth:`_check`, which
    subclasses implement; ``verify_code`` is the same check without a
    challenge. Not meant to be used directly.
    """

    _method: ClassVar[str]
    assurance: ClassVar[AssuranceLevel] = AssuranceLevel.SUBSTANTIAL

    def __init__(
        self,
        *,
        store: Store,
        audit: AuditLog,
        clock: Clock | None = None,
        random: RandomSource | None = None,
        throttle_policy: ThrottlePolicy | None = None,
        challenge_ttl: float = 300.0,
        challenge_attempts: int = 5,
    ) -> None:
        if challenge_ttl <= 0 or challenge_attempts < 1:
            raise ConfigurationError("the challenge TTL and attempts must be positive")
        self._store = store
        self._audit = audit
        self._clock = clock or SystemClock()
        self._events = MethodEvents(audit=audit, clock=self._clock, method=self._method)
        self._random = random or SystemRandom()
        self._challenge_ttl = dt.timedelta(seconds=challenge_ttl)
        self._challenge_attempts = challenge_attempts
        self._throttle = FailureThrottle(
            store=store, clock=self._clock, namespace=self._method, policy=throttle_policy
        )
        self._group = commit_group_of(store, audit)

    # Introspection -------------------------------------------------------------
    @property
    def method(self) -> str:
        """The stable method name."""
        return self._method

    @property
    def throttle_policy(self) -> ThrottlePolicy:
        """The throttle's numbers."""
        return self._throttle.policy

    def is_enrolled(self, subject: str) -> bool:
        """Whether ``subject`` has a *confirmed* enrollment (for administrators).

        Public-facing flows should not expose this: see :meth:`begin`.
        """
        return self._store.get_enrollment(subject, self._method) is not None

    # Authentication --------------------------------------------------------------
    def begin(self, subject: str, *, context: ClientContext | None = None) -> Challenge:
        """Open a challenge for ``subject``.

        The challenge has the same shape whether or not ``subject`` is enrolled,
        and nothing is read from the enrollment, so it reveals nothing. Several
        challenges of one subject may be live at once (a phone and a kiosk);
        the time step or counter, not the challenge, prevents replay.

        Raises:
            MalformedInput: ``subject`` is not a usable subject id.
        """
        subject = subject_of(subject)
        now = self._clock.now()
        challenge = Challenge(
            id=Challenge.new_id(self._random),
            subject=subject,
            method=self._method,
            created_at=now,
            expires_at=now + self._challenge_ttl,
        )
        record = ChallengeRecord(
            challenge=challenge,
            slot=f"{self._method}:{subject}:{challenge.id}",
            max_attempts=self._challenge_attempts,
        )
        with self._grouped():
            self._store.create_challenge(record)
            self._record(AuditAction.BEGIN, Outcome.INFO, subject, context=context, now=now)
        return challenge

    def verify(
        self,
        challenge: Challenge | str,
        response: str,
        *,
        context: ClientContext | None = None,
    ) -> AuthResult:
        """Check ``response`` for a challenge from :meth:`begin`.

        Only the challenge id is used; subject and expiry come from the store.

        Raises:
            ChallengeNotFound: unknown id, or a challenge of another method.
            ChallengeExpired: the challenge's lifetime is over.
            ChallengeUsed: already used, or burnt by too many wrong codes.
            InvalidCode: the code is wrong (or the subject is not enrolled).
            TokenReplayed: the code (its time step or counter) was already used.
            VerificationThrottled: wait ``retry_after`` seconds (``LockedOut`` when locked).
            MalformedInput: the code has characters other than digits, spaces and dashes.
        """
        challenge_id = challenge_id_of(challenge)
        now = self._clock.now()
        # The reads join the decision's transaction: one snapshot, one commit.
        with self._grouped():
            record = self._store.get_challenge(challenge_id)
            failure = challenge_failure(record, self._method, now)
            if failure is not None:
                subject = record.challenge.subject if record is not None else None
                self._refused(AuditAction.VERIFY, subject, context, now, failure.reason)
                raise failure
            assert record is not None  # noqa: S101 (narrowing for mypy; every None path raised above)
            subject = record.challenge.subject
            enrollment = self._store.get_enrollment(subject, self._method)
            return self._check(
                _Request(subject, response, context, now, enrollment, challenge_id=challenge_id)
            )

    def verify_code(
        self, subject: str, code: str, *, context: ClientContext | None = None
    ) -> AuthResult:
        """Check a code for ``subject`` without a challenge (one-request logins, the CLI).

        Same throttling, replay protection and audit as :meth:`verify`.

        Raises:
            InvalidCode: the code is wrong (or the subject is not enrolled).
            TokenReplayed: the code (its time step or counter) was already used.
            VerificationThrottled: wait ``retry_after`` seconds (``LockedOut`` when locked).
            MalformedInput: the code has characters other than digits, spaces and dashes,
                or ``subject`` is not a usable subject id.
        """
        subject = subject_of(subject)
        now = self._clock.now()
        if self._group is None:  # the hot path of the separate layouts: no context at all
            enrollment = self._store.get_enrollment(subject, self._method)
            return self._check(_Request(subject, code, context, now, enrollment))
        with self._group():
            enrollment = self._store.get_enrollment(subject, self._method)
            return self._check(_Request(subject, code, context, now, enrollment))

    def _grouped(self) -> AbstractContextManager[None]:
        return grouped(self._group)

    def _check(self, request: _Request) -> AuthResult:
        """Decide ``request``: count it, check the code, audit the outcome."""
        raise NotImplementedError

    def _acquire(
        self,
        subject: str,
        context: ClientContext | None,
        now: dt.datetime,
        action: AuditAction,
        *,
        generation: int | None = None,
    ) -> _Trial:
        """Count one attempt before checking it (see the module docstring), or refuse it.

        In a commit group (every caller runs inside :meth:`_grouped`) the whole
        decision is one ``BEGIN IMMEDIATE`` transaction, so no other attempt
        is decided meanwhile: the attempt is admitted now and counted only if
        it fails (:meth:`_failed`). A success then writes no throttle counter:
        one write and one page fewer in the commit.
        """
        throttle = self._throttle
        step: Callable[..., Attempt | Admission] = (
            throttle.acquire if self._group is None else throttle.admit
        )
        counted = self._events.throttle_step(
            step, subject, context, action, at=now, generation=generation
        )
        return _Trial(subject=subject, context=context, now=now, action=action, counted=counted)

    @contextlib.contextmanager
    def _malformed_audited(
        self,
        subject: str,
        context: ClientContext | None,
        now: dt.datetime,
        action: AuditAction,
    ) -> Iterator[None]:
        """Audit a :class:`MalformedInput` raised inside the block, and let it propagate."""
        with self._events.malformed(action, subject, context, reason=Reason.MALFORMED_CODE, at=now):
            yield

    def _failed(
        self,
        kind: type[AuthenticationFailed],
        trial: _Trial,
        *,
        challenge_id: str | None,
    ) -> AuthenticationFailed:
        """Audit a failed attempt (and a lockout it caused); return the error to raise.

        ``challenge_id``, if given, is charged one wrong attempt.
        """
        attempt = trial.failure_count()
        error = kind(remaining_attempts=attempt.remaining_attempts)
        if challenge_id is not None:
            self._store.count_attempt(challenge_id)
        self._refused(trial.action, trial.subject, trial.context, trial.now, error.reason)
        if attempt.remaining_attempts == 0:
            policy = self._throttle.policy
            self._record(
                AuditAction.LOCKOUT,
                Outcome.INFO,
                trial.subject,
                context=trial.context,
                now=trial.now,
                details={
                    "attempts": str(attempt.count),
                    "duration": f"{policy.lockout_duration:.0f}",
                },
                reason=Reason.LOCKED_OUT,
            )
        return error

    def _consume_challenge(self, trial: _Trial, challenge_id: str | None) -> None:
        """Use up the challenge, if any; a racing request that used it first wins.

        Raises:
            ChallengeUsed: the challenge was used meanwhile.
        """
        if (
            challenge_id is not None
            and self._store.consume_challenge(challenge_id, trial.now) is None
        ):
            raise self._failed(ChallengeUsed, trial, challenge_id=None)

    def _revoked(self, subject: str, removed: bool, context: ClientContext | None) -> bool:
        """Audit a revocation (a success if there was something to remove); return ``removed``."""
        self._record(
            AuditAction.REVOKE,
            Outcome.SUCCESS if removed else Outcome.INFO,
            subject,
            context=context,
            now=self._clock.now(),
        )
        return removed

    def _succeeded(self, trial: _Trial, details: Mapping[str, str]) -> AuthResult:
        """Audit an accepted attempt and return its result."""
        event_id = self._record(
            trial.action,
            Outcome.SUCCESS,
            trial.subject,
            context=trial.context,
            now=trial.now,
            details=details,
        )
        return AuthResult(
            subject=trial.subject,
            method=self._method,
            authenticated_at=trial.now,
            assurance=self.assurance,
            audit_event_id=event_id,
            details=details,
        )

    def _refused(
        self,
        action: AuditAction,
        subject: str | None,
        context: ClientContext | None,
        now: dt.datetime,
        reason: Reason,
        *,
        details: Mapping[str, str] | None = None,
    ) -> None:
        """Audit a refused attempt: a failure and why."""
        self._record(
            action,
            Outcome.FAILURE,
            subject,
            context=context,
            now=now,
            details=details,
            reason=reason,
        )

    def _enrolled(
        self,
        subject: str,
        context: ClientContext | None,
        now: dt.datetime,
        details: Mapping[str, str],
    ) -> str:
        """Audit a new (or pending) enrollment; return the record's id."""
        return self._record(
            AuditAction.ENROLL, Outcome.SUCCESS, subject, context=context, now=now, details=details
        )

    def _record(
        self,
        action: AuditAction,
        outcome: Outcome,
        subject: str | None,
        *,
        context: ClientContext | None,
        now: dt.datetime,
        details: Mapping[str, str] | None = None,
        reason: Reason | None = None,
    ) -> str:
        return self._events.record(
            action, outcome, subject, context, at=now, reason=reason, details=details
        )

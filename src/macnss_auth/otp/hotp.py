"""HOTP (RFC 4226) authenticator, and the machinery TOTP (RFC 6238) shares with it.

Theory of operation. An OTP authenticator checks a code against a small set
of *candidate* counters (HOTP: the next counter and a bounded look-ahead;
TOTP: the current time step and a drift window). Codes come from pyotp; the
person's input is normalized (:mod:`macnss_auth.otp.codes`) and compared with
the candidates, nearest first, as strings in constant time, so leading zeros
matter and timing says nothing about how close a wrong guess was (a wrong
code always costs every candidate).

What makes a match an acceptance is one atomic call to the store:
``Store.advance(key, value)``, a monotonic compare-and-set. For HOTP the
value is the matched counter plus one; for TOTP the matched time step. Two
threads, processes or service instances that match the same code race on
that call and exactly one wins; the other gets
:class:`~macnss_auth.errors.TokenReplayed`. Reads of the counter (to place the
HOTP look-ahead window) are advisory only.

Every attempt is *counted before it is checked* by a
:class:`~macnss_auth.throttle.FailureThrottle` (growing delays, then an
expiring lockout; cleared on success), so parallel guessing cannot check more
codes than the policy allows.

Enrollment is two-step. :meth:`enroll` stores a *pending* enrollment (its
secret sealed by the store) and returns a
:class:`~macnss_auth.otp.enrollment.Provisioning` with the otpauth:// URI and
QR codes; :meth:`confirm` with a first valid code promotes it. An existing
confirmed enrollment keeps working until then, so re-enrolling a new phone
cannot lock anyone out. Unconfirmed enrollments expire.

Each enrollment has a random *generation* id that names its counters in the
store, so a new enrollment starts with fresh counters without any reset
that a concurrent verification could race with.

Unknown subjects: :meth:`begin` behaves exactly as for an enrolled subject,
and verification does the same work (throttle, HMACs over a dummy secret)
before failing with :class:`~macnss_auth.errors.InvalidCode`.

Layers: :class:`CodeAuthenticatorBase` holds the challenge flow, throttling
and audit that recovery codes share too; :class:`BaseOtpAuthenticator` adds
enrollment, confirmation and the candidate search with the replay guard;
:class:`HotpAuthenticator` and
:class:`~macnss_auth.otp.totp.TotpAuthenticator` define the candidates.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

import attrs
import pyotp

from macnss_auth.audit.events import AuditAction, AuditLog, Outcome, record_event
from macnss_auth.authenticator import AssuranceLevel, AuthResult, Challenge, ClientContext
from macnss_auth.challenges import challenge_failure, challenge_id_of, subject_of
from macnss_auth.clock import Clock, RandomSource, SystemClock, SystemRandom
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeUsed,
    ConfigurationError,
    InvalidCode,
    MalformedInput,
    NotEnrolled,
    Reason,
    TokenReplayed,
    VerificationThrottled,
)
from macnss_auth.otp.codes import codes_equal, normalize_code
from macnss_auth.otp.enrollment import (
    MIN_SECRET_BYTES,
    OtpAlgorithm,
    OtpParameters,
    Provisioning,
    decode_base32_secret,
    generate_secret,
    provisioning_uri,
)
from macnss_auth.secret import Secret
from macnss_auth.store.base import ChallengeRecord, Enrollment, Store
from macnss_auth.throttle import Attempt, FailureThrottle, ThrottlePolicy

__all__ = [
    "DEFAULT_LOOK_AHEAD",
    "DEFAULT_RESYNC_WINDOW",
    "MAX_LOOK_AHEAD",
    "MAX_RESYNC_WINDOW",
    "REPLAY_LOOK_BEHIND",
    "BaseOtpAuthenticator",
    "CodeAuthenticatorBase",
    "HotpAuthenticator",
]

#: Counters checked beyond the expected one at each verification (RFC 4226 §7.4).
DEFAULT_LOOK_AHEAD = 10
#: Upper bound of the look-ahead: each extra counter multiplies a guesser's odds.
MAX_LOOK_AHEAD = 50
#: Counters searched by :meth:`HotpAuthenticator.resync` (two consecutive codes).
DEFAULT_RESYNC_WINDOW = 100
#: Upper bound of the resynchronization window.
MAX_RESYNC_WINDOW = 1000
#: Counters just behind the expected one whose codes are reported as replayed.
REPLAY_LOOK_BEHIND = 3

_PENDING = ":pending"
_MAX_SECRET_BYTES = 1024
# Every length an enrollment may have (OtpParameters accepts 6 to 8 digits).
_MIN_DIGITS = 6
_MAX_DIGITS = 8


class _PyOtp(pyotp.OTP):
    """pyotp's HOTP core over raw secret bytes.

    pyotp keeps secrets as base32 text and decodes them for every code; we
    hold the bytes already (opened from the store), so ``byte_secret`` returns
    them directly. Code generation itself (HMAC, RFC 4226 §5.3 dynamic
    truncation, zero-padding) is pyotp's.
    """

    def __init__(self, secret: bytes, parameters: OtpParameters) -> None:
        self._raw = secret
        super().__init__("", digits=parameters.digits, digest=parameters.algorithm.digest)

    def byte_secret(self) -> bytes:
        return self._raw


@attrs.frozen
class _Match:
    """A candidate counter whose code equals the input.

    Attributes:
        value: what ``Store.advance`` must accept for the match to count.
        details: non-secret facts for the result and the audit record.
        replayed: the code belongs to a counter already passed; refuse it
            as replayed without touching the store.
    """

    value: int
    details: Mapping[str, str]
    replayed: bool = False


@attrs.frozen
class _Trial:
    """One counted attempt to authenticate: what a failure or success is recorded against.

    Attributes:
        subject: who is trying.
        context: the client, for the throttle and the audit log.
        now: the server's time of the attempt.
        action: what the attempt is audited as (verify, confirm, resync, recovery).
        attempt: the throttle's count, for ``remaining_attempts`` and the lockout.
    """

    subject: str
    context: ClientContext | None
    now: dt.datetime
    action: AuditAction
    attempt: Attempt


def _normalize_any_length(code: object) -> str:
    """Digits of any length an enrollment may have (6 to 8), else MalformedInput.

    The length is *not* checked against the subject's enrollment: a code of
    the wrong length fails as a wrong code (InvalidCode), for enrolled and
    unknown subjects alike, or the error type would tell an 8-digit
    enrollment from no enrollment.

    Not cached: the argument is whatever the client sent (a list is not
    hashable), and a cache of recent codes is a store of secrets.
    """
    digits = normalize_code(code)
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
        raise MalformedInput(
            f"the code must have {_MIN_DIGITS} to {_MAX_DIGITS} digits", field="code"
        )
    return digits


@functools.lru_cache(maxsize=64)
def _parameters(algorithm: str, digits: int, period: int) -> OtpParameters:
    # Stored parameters repeat; validating them once per combination is enough.
    return OtpParameters(algorithm=OtpAlgorithm.parse(algorithm), digits=digits, period=period)


def _as_secret(secret: Secret | bytes | str) -> Secret:
    if isinstance(secret, Secret):
        value = secret
    elif isinstance(secret, bytes):
        value = Secret(secret)
    elif isinstance(secret, str):
        value = decode_base32_secret(secret)
    else:
        raise ConfigurationError("a given secret must be Secret, bytes or base32 text")
    if not MIN_SECRET_BYTES <= len(value) <= _MAX_SECRET_BYTES:
        raise ConfigurationError("an OTP secret must be 16 to 1024 bytes (RFC 4226 §4)")
    return value


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
        self._random = random or SystemRandom()
        self._challenge_ttl = dt.timedelta(seconds=challenge_ttl)
        self._challenge_attempts = challenge_attempts
        self._throttle = FailureThrottle(
            store=store, clock=self._clock, namespace=self._method, policy=throttle_policy
        )

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
        self._store.create_challenge(
            ChallengeRecord(
                challenge=challenge,
                slot=f"{self._method}:{subject}:{challenge.id}",
                max_attempts=self._challenge_attempts,
            )
        )
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
        record = self._store.get_challenge(challenge_id)
        failure = challenge_failure(record, self._method, now)
        if failure is not None:
            subject = record.challenge.subject if record is not None else None
            self._record(
                AuditAction.VERIFY,
                Outcome.FAILURE,
                subject,
                context=context,
                now=now,
                reason=failure.reason,
            )
            raise failure
        assert record is not None  # noqa: S101 (narrowing for mypy; every None path raised above)
        subject = record.challenge.subject
        enrollment = self._store.get_enrollment(subject, self._method)
        return self._check(subject, response, context, now, enrollment, challenge_id=challenge_id)

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
        enrollment = self._store.get_enrollment(subject, self._method)
        return self._check(subject, code, context, now, enrollment)

    def _check(
        self,
        subject: str,
        code: str,
        context: ClientContext | None,
        now: dt.datetime,
        enrollment: Enrollment | None,
        *,
        action: AuditAction = AuditAction.VERIFY,
        challenge_id: str | None = None,
    ) -> AuthResult:
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
        """Count one attempt before checking it (see the module docstring), or refuse it."""
        try:
            attempt = self._throttle.acquire(subject, context, generation=generation)
        except VerificationThrottled as exc:
            details = {"retry_after": f"{exc.retry_after:.0f}"} if exc.retry_after else {}
            self._record(
                action,
                Outcome.FAILURE,
                subject,
                context=context,
                now=now,
                details=details,
                reason=exc.reason,
            )
            raise
        return _Trial(subject=subject, context=context, now=now, action=action, attempt=attempt)

    @contextlib.contextmanager
    def _malformed_audited(
        self,
        subject: str,
        context: ClientContext | None,
        now: dt.datetime,
        action: AuditAction,
    ) -> Iterator[None]:
        """Audit a :class:`MalformedInput` raised inside the block, and let it propagate."""
        try:
            yield
        except MalformedInput:
            self._record(
                action,
                Outcome.FAILURE,
                subject,
                context=context,
                now=now,
                reason=Reason.MALFORMED_CODE,
            )
            raise

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
        attempt = trial.attempt
        error = kind(remaining_attempts=attempt.remaining_attempts)
        if challenge_id is not None:
            self._store.count_attempt(challenge_id)
        self._record(
            trial.action,
            Outcome.FAILURE,
            trial.subject,
            context=trial.context,
            now=trial.now,
            reason=error.reason,
        )
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
        return record_event(
            self._audit,
            at=now,
            action=action,
            method=self._method,
            outcome=outcome,
            subject=subject,
            client=context,
            reason=reason,
            details=details,
        )


class BaseOtpAuthenticator(CodeAuthenticatorBase):
    """What TOTP and HOTP share: enrollment and confirmation, candidate search, replay.

    Subclasses define ``_method`` and the candidate search in :meth:`_match`.
    Not meant to be used directly.
    """

    def __init__(
        self,
        *,
        store: Store,
        audit: AuditLog,
        clock: Clock | None = None,
        random: RandomSource | None = None,
        throttle_policy: ThrottlePolicy | None = None,
        issuer: str = "macnss-auth",
        parameters: OtpParameters | None = None,
        challenge_ttl: float = 300.0,
        pending_ttl: float = 900.0,
        challenge_attempts: int = 5,
    ) -> None:
        if not issuer or ":" in issuer:
            raise ConfigurationError("the issuer must be non-empty and contain no colon")
        if pending_ttl <= 0:
            raise ConfigurationError("pending_ttl must be positive")
        super().__init__(
            store=store,
            audit=audit,
            clock=clock,
            random=random,
            throttle_policy=throttle_policy,
            challenge_ttl=challenge_ttl,
            challenge_attempts=challenge_attempts,
        )
        self._issuer = issuer
        self._parameters = parameters or OtpParameters()
        self._pending_ttl = dt.timedelta(seconds=pending_ttl)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(issuer={self._issuer!r}, parameters={self._parameters!r})"

    @property
    def parameters(self) -> OtpParameters:
        """Parameters of new enrollments."""
        return self._parameters

    # Enrollment ----------------------------------------------------------------
    def _enroll(
        self,
        subject: str,
        *,
        account: str | None,
        secret: Secret | bytes | str | None,
        parameters: OtpParameters | None,
        counter: int,
        context: ClientContext | None,
    ) -> Provisioning:
        subject = subject_of(subject)
        params = parameters or self._parameters
        now = self._clock.now()
        migrated = secret is not None
        shared = (
            _as_secret(secret)
            if secret is not None
            else generate_secret(params.algorithm, random=self._random)
        )
        account_name = account if account is not None else subject
        uri = provisioning_uri(
            method=self._method,
            secret=shared,
            issuer=self._issuer,
            account=account_name,
            parameters=params,
            counter=counter,
        )
        expires = now + self._pending_ttl
        generation = self._random.token_bytes(16).hex()
        self._store.put_enrollment(
            Enrollment(
                subject=subject,
                method=self._method + _PENDING,
                secret=shared,
                params={
                    "algorithm": params.algorithm.value,
                    "digits": params.digits,
                    "period": params.period,
                    "counter": counter,
                    "issuer": self._issuer,
                    "account": account_name,
                    "generation": generation,
                },
                confirmed=False,
                created_at=now,
                expires_at=expires,
            )
        )
        event_id = self._record(
            AuditAction.ENROLL,
            Outcome.SUCCESS,
            subject,
            context=context,
            now=now,
            details={
                "algorithm": params.algorithm.value,
                "digits": str(params.digits),
                "period": str(params.period),
                "provenance": "given" if migrated else "generated",
                "state": "pending",
            },
        )
        return Provisioning(
            subject=subject,
            method=self._method,
            parameters=params,
            issuer=self._issuer,
            account=account_name,
            secret=shared,
            uri=uri,
            expires_at=expires,
            counter=counter,
            audit_event_id=event_id,
        )

    def confirm(
        self, subject: str, code: str, *, context: ClientContext | None = None
    ) -> AuthResult:
        """Prove a pending enrollment with a first valid code and make it the active one.

        Throttled, replay-protected and audited like a verification.

        Raises:
            NotEnrolled: no pending enrollment, or it expired (enroll again).
            InvalidCode: the code is wrong.
            TokenReplayed: the code was already used.
            VerificationThrottled: wait ``retry_after`` seconds (``LockedOut`` when locked).
            MalformedInput: the code has characters other than digits, spaces and dashes.
        """
        subject = subject_of(subject)
        now = self._clock.now()
        pending = self._store.get_enrollment(subject, self._method + _PENDING)
        if pending is None or not pending.is_usable(now):
            self._record(
                AuditAction.CONFIRM,
                Outcome.FAILURE,
                subject,
                context=context,
                now=now,
                reason=Reason.NOT_ENROLLED,
            )
            raise NotEnrolled("no pending enrollment to confirm (it may have expired)")
        return self._check(subject, code, context, now, pending, action=AuditAction.CONFIRM)

    def unenroll(self, subject: str, *, context: ClientContext | None = None) -> bool:
        """Remove the confirmed and any pending enrollment; True if there was one."""
        subject = subject_of(subject)
        removed = self._store.delete_enrollment(subject, self._method)
        removed = self._store.delete_enrollment(subject, self._method + _PENDING) or removed
        return self._revoked(subject, removed, context)

    # The decision ---------------------------------------------------------------
    def _check(
        self,
        subject: str,
        code: str,
        context: ClientContext | None,
        now: dt.datetime,
        enrollment: Enrollment | None,
        *,
        action: AuditAction = AuditAction.VERIFY,
        challenge_id: str | None = None,
    ) -> AuthResult:
        params = self._parameters_of(enrollment) if enrollment else self._parameters
        with self._malformed_audited(subject, context, now, action):
            digits = _normalize_any_length(code)
        # An unknown subject goes through the same steps on a dummy enrollment:
        # the same store reads (its counter key is one nobody advances), the
        # same HMACs, then the same answer. Only the outcome is forced.
        target = enrollment if enrollment is not None else self._dummy(params)
        # Attempts are counted per value of the replay counter: the success below
        # advances it, which starts a fresh count without a write of its own.
        generation = str(target.params["generation"])
        mark = self._store.current(self._counter_key(generation))
        trial = self._acquire(
            subject, context, now, action, generation=-1 if mark is None else mark
        )
        match = self._match(target, params, digits, now)
        if enrollment is None or match is None:
            raise self._failed(InvalidCode, trial, challenge_id=challenge_id)
        if match.replayed:
            raise self._failed(TokenReplayed, trial, challenge_id=challenge_id)
        self._consume_challenge(trial, challenge_id)
        if not self._store.advance(self._counter_key(generation), match.value):
            raise self._failed(TokenReplayed, trial, challenge_id=None)
        self._accepted(enrollment, match, now)
        if action is AuditAction.CONFIRM:
            self._store.put_enrollment(
                attrs.evolve(enrollment, method=self._method, confirmed=True, expires_at=None)
            )
            self._store.delete_enrollment(subject, self._method + _PENDING)
        return self._succeeded(trial, match.details)

    # Hooks -----------------------------------------------------------------------
    def _match(
        self, enrollment: Enrollment, params: OtpParameters, digits: str, now: dt.datetime
    ) -> _Match | None:
        raise NotImplementedError

    def _accepted(self, enrollment: Enrollment, match: _Match, now: dt.datetime) -> None:
        """Called once a match won the store's compare-and-set."""

    # Helpers ---------------------------------------------------------------------
    def _counter_key(self, generation: str) -> str:
        return f"otp:{self._method}:{generation}"

    @staticmethod
    def _parameters_of(enrollment: Enrollment) -> OtpParameters:
        params = enrollment.params
        return _parameters(str(params["algorithm"]), int(params["digits"]), int(params["period"]))

    def _dummy(self, params: OtpParameters) -> Enrollment:
        return Enrollment(
            subject="",
            method=self._method,
            secret=Secret(bytes(params.algorithm.secret_bytes)),
            # Counter 3 so that an HOTP dummy also computes the look-behind codes.
            params={"counter": REPLAY_LOOK_BEHIND, "generation": "0" * 32},
            created_at=dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc),
        )

    @staticmethod
    def _find(
        secret: Secret, params: OtpParameters, digits: str, counters: Sequence[int]
    ) -> int | None:
        """The index of the first counter in ``counters`` whose code equals ``digits``.

        Each comparison is constant-time; the search stops at the first match.
        That reveals only *which* candidate matched, to someone who already
        knows the code was right; a wrong code always costs every candidate.
        """
        otp = _PyOtp(secret.reveal(), params)
        for index, counter in enumerate(counters):
            if codes_equal(otp.generate_otp(counter), digits):
                return index
        return None


class HotpAuthenticator(BaseOtpAuthenticator):
    """Counter-based one-time codes (RFC 4226) from an authenticator app or token.

    >>> from macnss_auth.audit import MemoryAuditLog
    >>> from macnss_auth.store import MemoryStore
    >>> from macnss_auth.testing import FixedClock
    >>> hotp = HotpAuthenticator(store=MemoryStore(), audit=MemoryAuditLog(),
    ...                          clock=FixedClock.at(0))
    >>> p = hotp.enroll("alice", secret=b"12345678901234567890")
    >>> hotp.confirm("alice", "755224").details["counter"]   # RFC 4226 Appendix D
    '0'
    >>> hotp.verify_code("alice", "359152").details["counter"]  # counter 1 skipped
    '2'

    Args (besides the shared collaborators, all keyword-only):
        look_ahead: counters checked beyond the expected one (default 10, at
            most :data:`MAX_LOOK_AHEAD`).
        resync_window: counters searched by :meth:`resync` (default 100, at
            most :data:`MAX_RESYNC_WINDOW`).
    """

    _method = "hotp"

    def __init__(
        self,
        *,
        store: Store,
        audit: AuditLog,
        clock: Clock | None = None,
        random: RandomSource | None = None,
        throttle_policy: ThrottlePolicy | None = None,
        issuer: str = "macnss-auth",
        parameters: OtpParameters | None = None,
        challenge_ttl: float = 300.0,
        pending_ttl: float = 900.0,
        challenge_attempts: int = 5,
        look_ahead: int = DEFAULT_LOOK_AHEAD,
        resync_window: int = DEFAULT_RESYNC_WINDOW,
    ) -> None:
        if not 0 <= look_ahead <= MAX_LOOK_AHEAD:
            raise ConfigurationError(f"look_ahead must be 0 to {MAX_LOOK_AHEAD}")
        if not look_ahead <= resync_window <= MAX_RESYNC_WINDOW:
            raise ConfigurationError(f"resync_window must be look_ahead to {MAX_RESYNC_WINDOW}")
        super().__init__(
            store=store,
            audit=audit,
            clock=clock,
            random=random,
            throttle_policy=throttle_policy,
            issuer=issuer,
            parameters=parameters,
            challenge_ttl=challenge_ttl,
            pending_ttl=pending_ttl,
            challenge_attempts=challenge_attempts,
        )
        self.look_ahead = look_ahead
        self.resync_window = resync_window

    def enroll(
        self,
        subject: str,
        *,
        account: str | None = None,
        secret: Secret | bytes | str | None = None,
        parameters: OtpParameters | None = None,
        counter: int = 0,
        context: ClientContext | None = None,
    ) -> Provisioning:
        """Create a pending HOTP enrollment and return its provisioning data.

        Args:
            subject: who enrolls.
            account: the account name the app shows (default: ``subject``).
            secret: a *known* secret, for migrations from another system and for
                tests (bytes, :class:`~macnss_auth.secret.Secret` or base32
                text; at least 128 bits). Default: a fresh secret from the
                random source, as long as the hash output (160 bits for SHA1).
            parameters: algorithm and digits (default: the authenticator's).
            counter: the token's next counter (for migrated hardware tokens).
            context: the client, for the audit log.

        Raises:
            ConfigurationError: a bad secret or a colon in the account name.
            MalformedInput: ``secret`` is text but not base32.
        """
        if counter < 0:
            raise ConfigurationError("the HOTP counter must be non-negative")
        return self._enroll(
            subject,
            account=account,
            secret=secret,
            parameters=parameters,
            counter=counter,
            context=context,
        )

    def counter(self, subject: str) -> int | None:
        """The next counter expected from ``subject``'s token, or None if not enrolled."""
        enrollment = self._store.get_enrollment(subject, self._method)
        if enrollment is None:
            return None
        return self._next_counter(enrollment)

    def _next_counter(self, enrollment: Enrollment) -> int:
        stored = self._store.current(self._counter_key(str(enrollment.params["generation"])))
        return stored if stored is not None else int(enrollment.params["counter"])

    def _match(
        self, enrollment: Enrollment, params: OtpParameters, digits: str, now: dt.datetime
    ) -> _Match | None:
        base = self._next_counter(enrollment)
        counters = range(base, base + self.look_ahead + 1)
        index = self._find(enrollment.secret, params, digits, counters)
        if index is not None:
            matched = counters[index]
            return _Match(
                value=matched + 1, details={"counter": str(matched), "skipped": str(index)}
            )
        # A code of one of the last few counters was just used (or lost a race):
        # report it as replayed, never accept it.
        behind = range(max(base - REPLAY_LOOK_BEHIND, 0), base)
        index = self._find(enrollment.secret, params, digits, behind)
        if index is None:
            return None
        return _Match(
            value=behind[index] + 1, details={"counter": str(behind[index])}, replayed=True
        )

    def resync(
        self,
        subject: str,
        first: str,
        second: str,
        *,
        context: ClientContext | None = None,
    ) -> AuthResult:
        """Resynchronize a token that ran ahead, with two consecutive codes (RFC 4226 §7.4).

        Searches ``resync_window`` counters past the expected one for ``first``
        immediately followed by ``second``, and moves the counter past both.
        Counts as one throttled attempt; audited as ``resync``.

        Raises:
            InvalidCode: no such pair in the window (or not enrolled).
            TokenReplayed: another verification moved the counter meanwhile.
            VerificationThrottled: wait ``retry_after`` seconds (``LockedOut`` when locked).
            MalformedInput: a code has characters other than digits, spaces and dashes.
        """
        subject = subject_of(subject)
        now = self._clock.now()
        action = AuditAction.RESYNC
        enrollment = self._store.get_enrollment(subject, self._method)
        params = self._parameters_of(enrollment) if enrollment else self._parameters
        with self._malformed_audited(subject, context, now, action):
            codes = [_normalize_any_length(c) for c in (first, second)]
        trial = self._acquire(subject, context, now, action)
        target = enrollment if enrollment is not None else self._dummy(params)
        # The dummy's counter is read too: unknown subjects cost the same store calls.
        base = self._next_counter(target)
        otp = _PyOtp(target.secret.reveal(), params)
        window = [otp.generate_otp(c) for c in range(base, base + self.resync_window + 2)]
        found: int | None = None
        for index in range(self.resync_window + 1):
            pair = codes_equal(window[index], codes[0]) & codes_equal(window[index + 1], codes[1])
            if pair and found is None:
                found = index
        if enrollment is None or found is None:
            raise self._failed(InvalidCode, trial, challenge_id=None)
        key = self._counter_key(str(enrollment.params["generation"]))
        if not self._store.advance(key, base + found + 2):
            raise self._failed(TokenReplayed, trial, challenge_id=None)
        self._throttle.release(subject, context)
        return self._succeeded(trial, {"counter": str(base + found + 1), "skipped": str(found)})

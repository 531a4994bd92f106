"""What TOTP and HOTP share: enrollment, confirmation, and the replay guard.

The decision whether a code matches is pure (:mod:`macnss_auth.otp.matching`);
what makes a match an acceptance is one atomic call to the store:
``Store.advance(key, value)``, a monotonic compare-and-set. For HOTP the
value is the matched counter plus one; for TOTP the matched time step. Two
threads, processes or service instances that match the same code race on
that call and exactly one wins; the other gets
:class:`~macnss_auth.errors.TokenReplayed`. Reads of the counter (to place the
HOTP look-ahead window) are advisory only.

Enrollment is two-step. ``enroll`` stores a *pending* enrollment (its
secret sealed by the store) and returns a
:class:`~macnss_auth.otp.enrollment.Provisioning` with the otpauth:// URI and
QR codes; :meth:`BaseOtpAuthenticator.confirm` with a first valid code
promotes it. An existing confirmed enrollment keeps working until then, so
re-enrolling a new phone cannot lock anyone out. Unconfirmed enrollments expire.

Each enrollment has a random *generation* id that names its counters in the
store, so a new enrollment starts with fresh counters without any reset
that a concurrent verification could race with.

Unknown subjects: ``begin`` behaves exactly as for an enrolled subject,
and verification does the same work (throttle, store reads, HMACs over a
dummy secret) before failing with :class:`~macnss_auth.errors.InvalidCode`.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING, TypedDict

import attrs

from macnss_auth.audit.events import AuditAction, AuditLog
from macnss_auth.authenticator import AuthResult, ClientContext
from macnss_auth.challenges import subject_of
from macnss_auth.errors import (
    ConfigurationError,
    InvalidCode,
    MalformedInput,
    NotEnrolled,
    Reason,
    TokenReplayed,
)
from macnss_auth.otp.code_flow import CodeAuthenticatorBase, CodeSettings, _Request
from macnss_auth.otp.enrollment import (
    MIN_SECRET_BYTES,
    OtpAlgorithm,
    OtpParameters,
    Provisioning,
    decode_base32_secret,
    generate_secret,
    provisioning_uri,
)
from macnss_auth.otp.matching import REPLAY_LOOK_BEHIND, CodeMatch, normalize_otp_code
from macnss_auth.secret import Secret
from macnss_auth.store.base import Enrollment, Store

if TYPE_CHECKING:
    # Only for the type checker (PEP 692 on Python 3.10): nothing imports it at run time.
    from typing_extensions import Unpack

__all__ = ["BaseOtpAuthenticator", "OtpSettings"]


class OtpSettings(CodeSettings, total=False):
    """The keyword-only settings TOTP and HOTP share (see :class:`BaseOtpAuthenticator`)."""

    issuer: str
    parameters: OtpParameters | None
    pending_ttl: float


class _EnrollOptions(TypedDict, total=False):
    """The keyword-only options of :meth:`BaseOtpAuthenticator.enroll`, listed once.

    HOTP's ``enroll`` takes them as ``**options`` beside its ``counter``, as the
    constructors take :class:`OtpSettings`.
    """

    account: str | None
    secret: Secret | bytes | str | None
    parameters: OtpParameters | None
    context: ClientContext | None


_PENDING = ":pending"
_MAX_SECRET_BYTES = 1024


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
        issuer: str = "macnss-auth",
        parameters: OtpParameters | None = None,
        pending_ttl: float = 900.0,
        **settings: Unpack[CodeSettings],
    ) -> None:
        if not issuer or ":" in issuer:
            raise ConfigurationError("the issuer must be non-empty and contain no colon")
        if pending_ttl <= 0:
            raise ConfigurationError("pending_ttl must be positive")
        super().__init__(store=store, audit=audit, **settings)
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
    def enroll(self, subject: str, **options: Unpack[_EnrollOptions]) -> Provisioning:
        """Create a pending enrollment and return its provisioning data.

        The enrollment becomes active once :meth:`confirm` sees a valid code;
        until then any earlier confirmed enrollment keeps working. Unconfirmed,
        it expires after ``pending_ttl`` seconds.

        Args:
            subject: who enrolls.
            account: the account name the app shows (default: ``subject``).
            secret: a *known* secret, for migrations from another system and for
                tests (bytes, :class:`~macnss_auth.secret.Secret` or base32
                text; at least 128 bits). Default: a fresh secret from the
                random source, as long as the hash output (160 bits for SHA1).
            parameters: algorithm, digits and period (default: the authenticator's;
                HOTP has no use for the period).
            context: the client, for the audit log.

        Raises:
            ConfigurationError: a bad secret or a colon in the account name.
            MalformedInput: ``secret`` is text but not base32.
        """
        return self._enroll(subject, counter=0, **options)

    def _enroll(
        self,
        subject: str,
        *,
        counter: int,
        account: str | None = None,
        secret: Secret | bytes | str | None = None,
        parameters: OtpParameters | None = None,
        context: ClientContext | None = None,
    ) -> Provisioning:
        """:meth:`enroll`, with the token's first counter (HOTP; 0 for TOTP)."""
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
        with self._grouped():
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
            event_id = self._enrolled(
                subject,
                context,
                now,
                {
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
        with self._grouped():
            pending = self._store.get_enrollment(subject, self._method + _PENDING)
            if pending is None or not pending.is_usable(now):
                self._refused(AuditAction.CONFIRM, subject, context, now, Reason.NOT_ENROLLED)
                raise NotEnrolled("no pending enrollment to confirm (it may have expired)")
            return self._check(_Request(subject, code, context, now, pending, AuditAction.CONFIRM))

    def unenroll(self, subject: str, *, context: ClientContext | None = None) -> bool:
        """Remove the confirmed and any pending enrollment; True if there was one."""
        subject = subject_of(subject)
        with self._grouped():
            removed = self._store.delete_enrollment(subject, self._method)
            removed = self._store.delete_enrollment(subject, self._method + _PENDING) or removed
            return self._revoked(subject, removed, context)

    # The decision ---------------------------------------------------------------
    def _check(self, request: _Request) -> AuthResult:
        subject, context, now = request.subject, request.context, request.now
        action, enrollment, challenge_id = request.action, request.enrollment, request.challenge_id
        params = self._parameters_of(enrollment) if enrollment else self._parameters
        # Inline rather than _malformed_audited: a context manager per check costs
        # more than the rest of this method.
        try:
            digits = normalize_otp_code(request.code)
        except MalformedInput:
            self._refused(action, subject, context, now, Reason.MALFORMED_CODE)
            raise
        # An unknown subject goes through the same steps on a dummy enrollment:
        # the same store reads (its counter key is one nobody advances), the
        # same HMACs, then the same answer. Only the outcome is forced.
        target = enrollment if enrollment is not None else self._dummy(params)
        # Attempts are counted per value of the replay counter: the success below
        # advances it, which starts a fresh count without a write of its own.
        counter_key = self._counter_key(str(target.params["generation"]))
        mark = self._store.current(counter_key)
        trial = self._acquire(
            subject, context, now, action, generation=-1 if mark is None else mark
        )
        match = self._match(target, params, digits, now)
        if enrollment is None or match is None:
            raise self._failed(InvalidCode, trial, challenge_id=challenge_id)
        if match.replayed:
            raise self._failed(TokenReplayed, trial, challenge_id=challenge_id)
        self._consume_challenge(trial, challenge_id)
        if not self._store.advance(counter_key, match.advance_to):
            raise self._failed(TokenReplayed, trial, challenge_id=None)
        self._accepted(enrollment, match, now)
        if action is AuditAction.CONFIRM:
            self._store.put_enrollment(
                attrs.evolve(enrollment, method=self._method, confirmed=True, expires_at=None)
            )
            self._store.delete_enrollment(subject, self._method + _PENDING)
        return self._succeeded(trial, match.details())

    # Hooks -----------------------------------------------------------------------
    def _match(
        self, enrollment: Enrollment, params: OtpParameters, digits: str, now: dt.datetime
    ) -> CodeMatch | None:
        """The pure decision (see :mod:`macnss_auth.otp.matching`) for this method."""
        raise NotImplementedError

    def _accepted(self, enrollment: Enrollment, match: CodeMatch, now: dt.datetime) -> None:
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

"""One-time codes sent by SMS or e-mail ("out-of-band" codes).

Theory of operation
-------------------
``begin(subject)`` draws a code from the injected CSPRNG (default: 6 digits,
uniform by rejection sampling), stores only
``HMAC-SHA256(pepper, method || purpose || challenge id || code)`` in a
:class:`~macnss_auth.store.ChallengeRecord` whose ``slot`` is one per subject
and channel (creating it retires the previous code: a resend replaces it),
sends the code through a :class:`~macnss_auth.delivery.DeliveryChannel`, and
returns a :class:`~macnss_auth.Challenge` with the expiry and a masked
destination. The pepper is an application secret kept out of the store, so a
stolen database does not give the codes away (a 6-digit code is otherwise
trivial to brute-force from its hash). Lifetimes default to 5 minutes and
are never allowed above 10 (NIST SP 800-63B §5.1.3.2).

``verify(challenge, code)`` looks the record up by id only (the client's copy
of the challenge is never trusted), counts the attempt in a
:class:`~macnss_auth.throttle.FailureThrottle` per subject (and per client),
compares keyed hashes in constant time, and on a match calls the store's
atomic ``consume_challenge``: of two service instances verifying the same
code at the same moment exactly one succeeds. A wrong code adds an attempt
atomically; after ``max_attempts`` wrong codes the challenge is burnt. Every
guess is also counted atomically *before* its comparison, so parallel
guesses at one challenge never get more than ``max_attempts`` comparisons. Every
failure raises with a distinct ``reason`` (for the audit log) but the same
``str(exc)`` (for the person), so a caller that shows the message reveals
nothing.

**Resends** are throttled per subject and per destination (a cooldown that
doubles with each send, and a daily cap), and globally per destination across
subjects plus per number prefix or e-mail domain per hour: SMS pumping fraud
triggers thousands of messages to premium ranges through sign-up and login
forms, and these caps bound what it can cost. Login and enrollment codes
have separate cooldowns (logging in right after confirming a number is the
normal flow); prefix and global caps count both.

**Enumeration resistance.** ``begin`` for an unknown subject, or one without
a *confirmed* destination, does the same work: same checks and rate-limit
counters (against a decoy destination derived from the subject with the
pepper, so repeated calls show the same hint), same code generation, same
hashing, same store insert, same message rendering, and returns a challenge
of the same shape; only the delivery is replaced by nothing, and the stored
verifier is random bytes of the same length, which no code matches. A delivery to
nobody must cost what a real one costs, so delivery goes through a
:class:`Dispatcher`:

* :class:`BackgroundDispatcher` (the default) hands the delivery to a worker
  thread and returns at once, known subject or not: ``begin`` never waits for
  the SMTP server or the SMS gateway, so its duration cannot depend on
  whether anything is sent, and a slow or failing gateway does not slow the
  login page. Failures are handled in the worker (the code is burnt, the
  failure audited, the fallback channel tried).
* :class:`InlineDispatcher` delivers before ``begin`` returns and then pads
  ``begin`` to ``min_duration`` seconds; delivery failures are raised to the
  caller as :class:`CodeNotDelivered`. This suits the CLI and tests. It only
  hides timing if ``min_duration`` exceeds the slowest delivery, and a
  failure reveals that the subject had a destination, so public endpoints
  should use the background dispatcher.

We chose asynchronous delivery as the default because padding to a fixed
minimum either makes every login slow (the pad must exceed the worst-case
gateway latency, seconds) or leaks whenever the gateway is slower than the
pad, whereas handing off to a worker costs microseconds in both cases.

**Failed delivery** (after retries with backoff within the retry policy's
deadline) burns the code, so no valid code is left behind that might arrive
late or sit in a mail queue; the failure is audited; if a fallback channel is
configured and the subject has a confirmed destination for it, the same code
is sent there instead (SMS failed -> e-mail) and stays valid.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ClassVar, Protocol

import attrs
import phonenumbers

from macnss_auth.audit.events import AuditAction, AuditLog, Outcome, record_event
from macnss_auth.authenticator import AssuranceLevel, AuthResult, Challenge, ClientContext
from macnss_auth.challenges import challenge_id_of, subject_of
from macnss_auth.clock import Clock, RandomSource, SystemClock, SystemRandom
from macnss_auth.delivery.base import (
    ChannelKind,
    DeliveryChannel,
    DeliveryError,
    OutboundMessage,
    RetryPolicy,
    deliver,
)
from macnss_auth.delivery.templates import failure_message, render_code_message
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeExpired,
    ChallengeNotFound,
    ChallengeUsed,
    ConfigurationError,
    InvalidCode,
    MalformedInput,
    RateLimited,
    Reason,
    VerificationThrottled,
)
from macnss_auth.otp.codes import MAX_CODE_INPUT, normalize_code
from macnss_auth.otp.contacts import (
    DEFAULT_REGION,
    Destination,
    confirmed_destination,
    mask_national,
    parse_destination,
    promote_pending,
    put_pending,
    validate_destination,
)
from macnss_auth.secret import Secret
from macnss_auth.store._codec import micros
from macnss_auth.store.base import ChallengeRecord, Store
from macnss_auth.throttle import FailureThrottle, ThrottlePolicy

__all__ = [
    "DIGITS",
    "GENERIC_FAILURE",
    "SAFE_ALPHANUMERIC",
    "BackgroundDispatcher",
    "CodeNotDelivered",
    "CodePolicy",
    "Dispatcher",
    "EmailCodeAuthenticator",
    "InlineDispatcher",
    "OutOfBandAuthenticator",
    "ResendPolicy",
    "SMSCodeAuthenticator",
    "generate_code",
    "normalize_oob_code",
]

_log = logging.getLogger(__name__)

DIGITS = "0123456789"
#: Upper-case letters and digits without vowels (no words, rude or otherwise)
#: and without look-alikes (0/O, 1/I/L): 28 symbols, 4.8 bits each.
SAFE_ALPHANUMERIC = "23456789BCDFGHJKMNPQRSTVWXYZ"

#: What ``str(exc)`` says for every failed verification, whatever the reason.
GENERIC_FAILURE = failure_message("en")

_MAX_LIFETIME = 600.0  # NIST SP 800-63B §5.1.3.2: out-of-band secrets live 10 minutes at most.
_LOGIN = "login"
_ENROLL = "enroll"
_DASHES = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
_ARABIC_DIGITS = {0x0660 + i: ord("0") + i for i in range(10)} | {
    0x06F0 + i: ord("0") + i for i in range(10)
}
_DECOY_EMAIL_DOMAINS = (
    "gmail.com",
    "outlook.com",
    "hotmail.com",
    "yahoo.fr",
    "yahoo.com",
    "hotmail.fr",
    "outlook.fr",
    "menara.ma",
)


class CodeNotDelivered(DeliveryError):
    """The code could not be delivered; it was burnt and can never be used.

    Attributes:
        challenge_id: the challenge whose code was lost.
        retryable: whether asking for a new code later may succeed.
    """

    def __init__(self, message: str, *, challenge_id: str, retryable: bool) -> None:
        super().__init__(message, retryable=retryable)
        self.challenge_id = challenge_id


@attrs.frozen
class CodePolicy:
    """The codes themselves.

    Attributes:
        length: characters per code (4-12).
        alphabet: the characters codes are drawn from (:data:`DIGITS` or
            :data:`SAFE_ALPHANUMERIC`, or your own: at least 10 distinct
            characters, no spaces or dashes).
        lifetime: seconds a code stays valid (at most 600).
        max_attempts: wrong codes allowed before a code is burnt (1-10).
    """

    length: int = 6
    alphabet: str = DIGITS
    lifetime: float = 300.0
    max_attempts: int = 5

    def __attrs_post_init__(self) -> None:
        if not 4 <= self.length <= 12:
            raise ConfigurationError("codes must have 4 to 12 characters")
        chars = set(self.alphabet)
        if len(chars) != len(self.alphabet) or len(chars) < 10:
            raise ConfigurationError("the alphabet needs at least 10 distinct characters")
        if any(c.isspace() or c in _DASHES or not c.isprintable() for c in chars):
            raise ConfigurationError("the alphabet may not contain spaces or dashes")
        if not 0 < self.lifetime <= _MAX_LIFETIME:
            raise ConfigurationError("a code lives more than 0 and at most 600 seconds")
        if not 1 <= self.max_attempts <= 10:
            raise ConfigurationError("max_attempts must be between 1 and 10")

    @property
    def numeric(self) -> bool:
        """Whether codes are plain digits."""
        return set(self.alphabet) <= set(DIGITS)


@attrs.frozen
class ResendPolicy:
    """How often codes may be sent.

    Attributes:
        cooldown: seconds between the first and second send to a subject or
            destination; each further send doubles it.
        max_cooldown: the longest cooldown.
        daily_per_subject: sends per subject and channel per ``window``.
        daily_per_destination: sends per destination per ``window``, across
            all subjects (one number cannot be flooded through many accounts).
        hourly_per_prefix: sends per hour to one number prefix (country code
            and first national digits, see ``prefix_digits``) or e-mail
            domain, across all subjects: the SMS-pumping brake. None: no cap.
        hourly_global: sends per hour in all, per channel. None: no cap.
        prefix_digits: digits of the E.164 number (country code included)
            that form a prefix.
        window: the length of the "daily" windows, in seconds.
    """

    cooldown: float = 30.0
    max_cooldown: float = 900.0
    daily_per_subject: int = 10
    daily_per_destination: int = 10
    hourly_per_prefix: int | None = 500
    hourly_global: int | None = None
    prefix_digits: int = 6
    window: float = 86_400.0

    def __attrs_post_init__(self) -> None:
        if self.cooldown < 0 or self.max_cooldown < self.cooldown:
            raise ConfigurationError("cooldowns must be >= 0 and max_cooldown >= cooldown")
        caps = (self.daily_per_subject, self.daily_per_destination)
        if min(caps) < 1 or self.window <= 0:
            raise ConfigurationError("daily caps must be >= 1 and the window positive")

    def cooldown_after(self, sends: int) -> float:
        """Seconds that must pass after the ``sends``-th send before the next one."""
        if sends <= 0 or self.cooldown == 0:
            return 0.0
        return float(min(self.cooldown * 2 ** (sends - 1), self.max_cooldown))


def generate_code(random: RandomSource, policy: CodePolicy) -> str:
    """A uniformly random code: rejection sampling over random bytes (no modulo bias)."""
    size = len(policy.alphabet)
    limit = 256 - 256 % size
    out: list[str] = []
    while len(out) < policy.length:
        for byte in random.token_bytes(policy.length * 2):
            if byte < limit:
                out.append(policy.alphabet[byte % size])
                if len(out) == policy.length:
                    break
    return "".join(out)


def normalize_oob_code(text: object, policy: CodePolicy) -> str:
    """Normalize what a person typed into the policy's alphabet.

    Digit codes go through :func:`macnss_auth.otp.codes.normalize_code`.
    Other alphabets get the same treatment (spaces and dashes removed,
    Arabic-Indic digits mapped) plus upper-casing when the alphabet has no
    lower-case letters.

    Raises:
        MalformedInput: (``field="code"``) not text, a character outside the
            alphabet, or the wrong length.
    """
    if policy.numeric:
        code = normalize_code(text, length=policy.length)
        if not set(code) <= set(policy.alphabet):
            raise MalformedInput("the code has a character it cannot contain", field="code")
        return code
    if not isinstance(text, str):
        raise MalformedInput("the code must be text", field="code")
    if len(text) > MAX_CODE_INPUT:
        raise MalformedInput("the code is too long", field="code")
    upper = policy.alphabet == policy.alphabet.upper()
    chars: list[str] = []
    for char in text.translate(_ARABIC_DIGITS):
        if char.isspace() or char in _DASHES:
            continue
        mapped = char.upper() if upper and char.isascii() else char
        if mapped not in policy.alphabet:
            raise MalformedInput("the code has a character it cannot contain", field="code")
        chars.append(mapped)
    if len(chars) != policy.length:
        raise MalformedInput(f"the code must have {policy.length} characters", field="code")
    return "".join(chars)


class Dispatcher(Protocol):
    """Runs a delivery job on behalf of ``begin`` (see the module docstring)."""

    def dispatch(self, job: Callable[[], None], *, started: float) -> None:
        """Run or schedule ``job``; ``started`` is ``begin``'s monotonic start time."""
        ...


class InlineDispatcher:
    """Delivers before ``begin`` returns, then pads ``begin`` to ``min_duration`` seconds.

    Delivery failures propagate (as :class:`CodeNotDelivered`) after the pad.
    """

    def __init__(
        self,
        *,
        min_duration: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if min_duration < 0:
            raise ConfigurationError("min_duration must be >= 0")
        self.min_duration = min_duration
        self._sleep = sleep
        self._monotonic = monotonic

    def dispatch(self, job: Callable[[], None], *, started: float) -> None:
        try:
            job()
        finally:
            rest = self.min_duration - (self._monotonic() - started)
            if rest > 0:
                self._sleep(rest)

    def __repr__(self) -> str:
        return f"InlineDispatcher(min_duration={self.min_duration})"


class BackgroundDispatcher:
    """Delivers in worker threads; ``begin`` returns without waiting.

    Call :meth:`close` (or use it as a context manager) to wait for pending
    deliveries at shutdown; :meth:`drain` waits without closing.
    """

    def __init__(self, *, max_workers: int = 4) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="macnss-auth-delivery"
        )
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()

    def dispatch(self, job: Callable[[], None], *, started: float) -> None:
        future = self._executor.submit(job)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
        error = future.exception()
        if isinstance(error, CodeNotDelivered):
            # Already burnt and audited by the job; log for operators only.
            _log.warning(
                "code for challenge %s not delivered (retryable=%s)",
                error.challenge_id,
                error.retryable,
            )
        elif error is not None:
            _log.error("delivery job failed: %s", type(error).__name__)

    def drain(self, timeout: float | None = None) -> None:
        """Wait until every delivery scheduled so far has finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return
            for future in pending:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                future.exception(timeout=remaining)

    def close(self) -> None:
        """Finish pending deliveries and stop the workers."""
        self._executor.shutdown(wait=True)

    def __enter__(self) -> BackgroundDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "BackgroundDispatcher()"


@attrs.frozen
class _Outgoing:
    """A code on its way out; lives only inside the delivery job."""

    record: ChallengeRecord
    subject: str
    code: str = attrs.field(repr=False)
    message: OutboundMessage
    language: str
    context: ClientContext | None


class OutOfBandAuthenticator:
    """Codes by SMS or e-mail behind the :class:`~macnss_auth.Authenticator` interface.

    Args:
        channel: the delivery channel (its ``kind`` must match).
        store: where challenges, destinations and counters live.
        pepper: the application key for code hashes (at least 32 bytes);
            keep it outside the store (environment, secrets manager).
        clock / random: injectable time and randomness.
        audit: where events go, if anywhere.
        codes / resend / throttle / retry: the policies (see each class).
        fallback: a channel of the other kind to try when delivery fails.
        dispatcher: how deliveries run (default: a :class:`BackgroundDispatcher`
            owned and closed by this authenticator).
        service_name: the name people know, used in messages.
        language: default message language (``"ar"``, ``"fr"``, ``"en"``).
        origin: a web domain for WebOTP lines in SMS (optional).
        region: the default region for phone numbers and decoy hints.
        monotonic: the clock for durations (padding, retry deadlines).
        sleep: how to wait between delivery retries.
        kind: SMS or e-mail (fixed by :class:`SMSCodeAuthenticator` and
            :class:`EmailCodeAuthenticator`); it is also the method name.
    """

    #: The kind used when ``kind`` is not given (set by the SMS and e-mail subclasses).
    default_kind: ClassVar[ChannelKind | None] = None

    def __init__(
        self,
        *,
        channel: DeliveryChannel,
        store: Store,
        pepper: Secret,
        clock: Clock | None = None,
        random: RandomSource | None = None,
        audit: AuditLog | None = None,
        codes: CodePolicy | None = None,
        resend: ResendPolicy | None = None,
        throttle: ThrottlePolicy | None = None,
        retry: RetryPolicy | None = None,
        fallback: DeliveryChannel | None = None,
        dispatcher: Dispatcher | None = None,
        service_name: str = "macnss",
        language: str = "fr",
        origin: str | None = None,
        region: str = DEFAULT_REGION,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        kind: ChannelKind | None = None,
    ) -> None:
        kind = kind or self.default_kind
        if kind is None:
            raise ConfigurationError("say which kind of channel: SMS or e-mail")
        if channel.kind is not kind:
            raise ConfigurationError(f"the channel sends {channel.kind.value}, not {kind.value}")
        if fallback is not None and fallback.kind is kind:
            raise ConfigurationError("the fallback channel must be of the other kind")
        if len(pepper) < 32:
            raise ConfigurationError("the pepper must be at least 32 bytes")
        failure_message(language)  # Refuse an unknown language now, not at the first send.
        if not service_name.isprintable() or not service_name.strip():
            # It goes into e-mail headers and SMS: no line breaks or control characters.
            raise ConfigurationError("the service name must be printable text")
        self._kind = kind
        self._channel = channel
        self._store = store
        self._pepper = pepper
        self._clock = clock or SystemClock()
        self._random = random or SystemRandom()
        self._audit = audit
        self.codes = codes or CodePolicy()
        self.resend = resend or ResendPolicy()
        self.retry = retry or RetryPolicy(deadline=min(20.0, self.codes.lifetime / 4))
        self._fallback = fallback
        self._owns_dispatcher = dispatcher is None
        self._dispatcher: Dispatcher = dispatcher or BackgroundDispatcher()
        self.service_name = service_name
        self.language = language
        self.origin = origin
        self.region = region
        self._monotonic = monotonic
        self._sleep = sleep
        self._throttle = FailureThrottle(
            store=store, clock=self._clock, namespace=f"oob-{kind.value}", policy=throttle
        )

    # Public interface ---------------------------------------------------------
    @property
    def method(self) -> str:
        """``"sms"`` or ``"email"``."""
        return self._kind.value

    @property
    def kind(self) -> ChannelKind:
        """The channel kind."""
        return self._kind

    @property
    def dispatcher(self) -> Dispatcher:
        """How deliveries run."""
        return self._dispatcher

    def __repr__(self) -> str:
        return f"{type(self).__name__}(channel={self._channel!r}, store={self._store!r})"

    def close(self) -> None:
        """Wait for pending deliveries and stop the dispatcher this object created."""
        if self._owns_dispatcher and isinstance(self._dispatcher, BackgroundDispatcher):
            self._dispatcher.close()

    def __enter__(self) -> OutOfBandAuthenticator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def begin(
        self,
        subject: str,
        *,
        context: ClientContext | None = None,
        language: str | None = None,
    ) -> Challenge:
        """Send a login code to the subject's confirmed destination.

        Unknown subjects and subjects without a confirmed destination get a
        challenge of the same shape, in the same time, and nothing is sent.

        Raises:
            RateLimited: too many codes for this subject, destination, prefix
                or in all; ``retry_after`` says when to try again.
            CodeNotDelivered: (inline dispatcher only) delivery failed; the
                code was burnt.
            MalformedInput: ``subject`` is not a usable subject id.
        """
        started = self._monotonic()
        subject = subject_of(subject)
        now = self._clock.now()
        destination = confirmed_destination(self._store, subject, self._kind)
        target = destination if destination is not None else self._decoy(subject)
        outgoing = self._prepare(
            subject,
            target,
            _LOGIN,
            now=now,
            context=context,
            language=language,
            decoy=destination is None,
        )
        self._record(
            AuditAction.BEGIN,
            Outcome.INFO,
            now,
            subject=subject,
            context=context,
            details={
                "hint": target.hint,
                "purpose": _LOGIN,
                "destination": "confirmed" if destination is not None else "none",
            },
        )
        job = self._job(outgoing) if destination is not None else _nothing
        self._dispatcher.dispatch(job, started=started)
        return outgoing.record.challenge

    def verify(
        self,
        challenge: Challenge | str,
        response: str,
        *,
        context: ClientContext | None = None,
    ) -> AuthResult:
        """Check a login code. Single use.

        Raises:
            MalformedInput: the response is not a code of the configured format.
            ChallengeNotFound: no such login challenge for this method.
            ChallengeExpired: the code's lifetime is over.
            ChallengeUsed: already used, replaced by a resend, burnt after a
                failed delivery, or out of attempts (``reason`` tells which).
            InvalidCode: wrong code; ``remaining_attempts`` says how many are left.
            VerificationThrottled: too many attempts for the subject lately.
        """
        record = self._check(challenge, response, _LOGIN, context)
        now = self._clock.now()
        subject = record.challenge.subject
        self._throttle.release(subject, context)
        event_id = self._record(
            AuditAction.VERIFY,
            Outcome.SUCCESS,
            now,
            subject=subject,
            context=context,
            details={"hint": record.challenge.hint or ""},
        )
        return AuthResult(
            subject=subject,
            method=self.method,
            authenticated_at=now,
            assurance=AssuranceLevel.LOW,
            audit_event_id=event_id,
            details={"channel": self.method, "hint": record.challenge.hint or ""},
        )

    def enroll(
        self,
        subject: str,
        destination: str | Destination,
        *,
        context: ClientContext | None = None,
        language: str | None = None,
    ) -> Challenge:
        """Start adding (or replacing) the subject's destination: send it a code.

        The destination becomes usable for logins only after :meth:`confirm`.
        Call this only for a subject the caller has authenticated.

        Raises:
            MalformedInput: the destination is not a valid phone number / address.
            RateLimited: too many codes for this subject or destination.
            CodeNotDelivered: (inline dispatcher only) delivery failed.
        """
        started = self._monotonic()
        subject = subject_of(subject)
        now = self._clock.now()
        if isinstance(destination, str):
            target = parse_destination(self._kind, destination, region=self.region)
        else:
            target = validate_destination(destination)
        if target.kind is not self._kind:
            raise ConfigurationError(f"this authenticator enrolls {self._kind.value} destinations")
        outgoing = self._prepare(
            subject, target, _ENROLL, now=now, context=context, language=language
        )
        challenge = outgoing.record.challenge
        put_pending(
            self._store,
            subject,
            target,
            now=now,
            challenge_id=challenge.id,
            expires_at=challenge.expires_at,
        )
        self._record(
            AuditAction.ENROLL,
            Outcome.INFO,
            now,
            subject=subject,
            context=context,
            details={"hint": target.hint, "purpose": _ENROLL},
        )
        self._dispatcher.dispatch(self._job(outgoing), started=started)
        return challenge

    def confirm(
        self,
        challenge: Challenge | str,
        response: str,
        *,
        context: ClientContext | None = None,
    ) -> Destination:
        """Confirm a destination with the code it received; return it.

        Raises:
            MalformedInput / ChallengeNotFound / ChallengeExpired / ChallengeUsed /
            InvalidCode / VerificationThrottled: as for :meth:`verify`.
        """
        record = self._check(challenge, response, _ENROLL, context)
        now = self._clock.now()
        subject = record.challenge.subject
        destination = promote_pending(
            self._store, subject, self._kind, challenge_id=record.id, now=now
        )
        if destination is None:
            # A newer enrollment replaced this one between the code and now.
            raise self._failure(
                ChallengeNotFound, AuditAction.CONFIRM, now, subject=subject, context=context
            )
        self._throttle.release(subject, context)
        self._record(
            AuditAction.CONFIRM,
            Outcome.SUCCESS,
            now,
            subject=subject,
            context=context,
            details={"hint": destination.hint},
        )
        return destination

    # Issuing ------------------------------------------------------------------
    def _prepare(
        self,
        subject: str,
        target: Destination,
        purpose: str,
        *,
        now: dt.datetime,
        context: ClientContext | None,
        language: str | None,
        decoy: bool = False,
    ) -> _Outgoing:
        language = language or self.language
        failure_message(language)
        self._acquire_send(subject, target, purpose, now, context, decoy=decoy)
        challenge_id = Challenge.new_id(self._random)
        code = generate_code(self._random, self.codes)
        challenge = Challenge(
            id=challenge_id,
            subject=subject,
            method=self.method,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=self.codes.lifetime),
            hint=target.hint,
            data={
                "purpose": purpose,
                "length": str(self.codes.length),
                "format": "numeric" if self.codes.numeric else "alphanumeric",
            },
        )
        verifier = self._verifier(challenge_id, purpose, code)
        if decoy:
            # Same work, but a verifier no code matches: nobody was sent this
            # code, so it must not log anyone in if it is guessed or leaks.
            verifier = self._random.token_bytes(len(verifier))
        record = ChallengeRecord(
            challenge=challenge,
            slot=f"oob:{self.method}:{purpose}:{subject}",
            verifier=verifier,
            max_attempts=self.codes.max_attempts,
        )
        self._store.create_challenge(record)
        return _Outgoing(
            record=record,
            subject=subject,
            code=code,
            message=self._message(self._kind, target, code, language),
            language=language,
            context=context,
        )

    def _message(
        self, kind: ChannelKind, target: Destination, code: str, language: str
    ) -> OutboundMessage:
        """The code message for ``target``, rendered in ``language``."""
        rendered = render_code_message(
            kind,
            code=code,
            lifetime=self.codes.lifetime,
            service=self.service_name,
            language=language,
            origin=self.origin,
        )
        return OutboundMessage(
            kind=kind,
            to=target.address,
            text=rendered.text,
            subject=rendered.subject,
            language=language,
            hint=target.hint,
        )

    def _verifier(self, challenge_id: str, purpose: str, code: str) -> bytes:
        data = b"\x00".join(
            (
                b"macnss-auth/oob/v1",
                self.method.encode(),
                purpose.encode(),
                challenge_id.encode(),
                code.encode("utf-8"),
            )
        )
        return hmac.new(self._pepper.reveal(), data, hashlib.sha256).digest()

    def _keyed(self, label: str, value: str) -> bytes:
        data = b"macnss-auth/oob/" + label.encode() + b"\x00" + value.encode("utf-8")
        return hmac.new(self._pepper.reveal(), data, hashlib.sha256).digest()

    def _decoy(self, subject: str) -> Destination:
        """A plausible destination for a subject without one: stable, never contacted."""
        seed = self._keyed(f"decoy-{self._kind.value}", subject)
        if self._kind is ChannelKind.EMAIL:
            letter = "abcdefghijklmnopqrstuvwxyz"[seed[0] % 26]
            domain = _DECOY_EMAIL_DOMAINS[seed[1] % len(_DECOY_EMAIL_DOMAINS)]
            return Destination(
                kind=ChannelKind.EMAIL, address=f"{letter}.{seed.hex()[:8]}@{domain}"
            )
        national, country = _mobile_example(self.region)
        digits = "".join(str(b % 10) for b in seed[2 : 2 + len(national)])
        decoy = f"{national[0]}{digits[1 : len(national)]}"
        # The hint is built directly, as a stored destination's hint is read, not parsed.
        return Destination(
            kind=ChannelKind.SMS,
            address=f"+{country}{decoy}",
            hint=mask_national(country, decoy),
        )

    def _prefix(self, target: Destination) -> str:
        if target.kind is ChannelKind.EMAIL:
            return target.address.rpartition("@")[2].lower()
        return target.address[: 1 + self.resend.prefix_digits]

    def _acquire_send(
        self,
        subject: str,
        target: Destination,
        purpose: str,
        now: dt.datetime,
        context: ClientContext | None,
        *,
        decoy: bool = False,
    ) -> None:
        """Count one send against every limit, or refuse it (count-before-check).

        Cooldowns and daily caps count logins and enrollments apart (logging
        in right after confirming a number is normal); prefix and global caps
        count every message. Decoys (unknown subjects) do the same counting,
        but their prefix and global counters are apart: a flood of unknown
        subjects costs nothing and must not exhaust real people's caps. A
        decoy is still refused when the real counters are full, as a real
        subject would be.

        The cooldown is decided atomically. Reading a counter and then
        counting let every request of a parallel burst pass the same cooldown
        (8 at once sent up to 8 SMS). Each send instead *claims* its place:
        the send that follows the ``n``-th one of a window is named by the
        window's start and ``n``, and claiming it is one atomic ``Store.hit``
        on that name. Requests that saw the same state name the same place and
        exactly one gets it; a request that comes after the winner counted its
        send sees the new state, whose cooldown refuses it. A claim lasts one
        cooldown, so a winner that crashed before counting its send holds the
        subject back for one cooldown at most.

        Real and decoy requests make the same store calls in the same order
        (only the keys differ), so the calls tell nothing about who is enrolled.
        """
        policy = self.resend
        base = f"oob-send:{self.method}"
        graded = [
            (f"{base}:{purpose}:subject:{subject}", policy.daily_per_subject),
            (
                f"{base}:{purpose}:dest:{self._keyed('dest', target.address).hex()[:32]}",
                policy.daily_per_destination,
            ),
        ]
        caps: list[tuple[str, int]] = []
        if policy.hourly_per_prefix is not None:
            caps.append((f":prefix:{self._prefix(target)}", policy.hourly_per_prefix))
        if policy.hourly_global is not None:
            caps.append((":global", policy.hourly_global))
        wait = 0.0
        claims: list[tuple[str, float]] = []
        for key, cap in graded:
            state = self._store.peek(key, now, policy.window)
            sent = 0 if state is None else state.count
            if state is not None:
                if state.count >= cap:
                    ends = state.first_at + dt.timedelta(seconds=policy.window)
                    wait = max(wait, (ends - now).total_seconds())
                ready = state.last_at + dt.timedelta(seconds=policy.cooldown_after(state.count))
                wait = max(wait, (ready - now).total_seconds())
            opened = 0 if state is None else micros(state.first_at)
            claims.append((f"{key}:claim:{opened}:{sent}", policy.cooldown_after(sent + 1)))
        # Both the real and the decoy hourly counters are read, whoever asks; a
        # decoy acts on both (once the real ones are full, real subjects are
        # refused, and unknown ones must be refused alike), a real subject on its own.
        for suffix, cap in caps:
            for key, applies in ((base + suffix, True), (f"{base}:decoy{suffix}", decoy)):
                state = self._store.peek(key, now, 3600.0)
                if applies and state is not None and state.count >= cap:
                    ends = state.first_at + dt.timedelta(seconds=3600.0)
                    wait = max(wait, (ends - now).total_seconds())
        if wait > 0:
            self._fail_rate(now, subject, context, wait)
        if policy.cooldown > 0:
            # The subject's place first, then the destination's, stopping at the
            # first one lost: claiming both at once would let two racers each win
            # one and neither send. Of the requests for one subject exactly one
            # reaches the destination's claim.
            for claim, span in claims:
                if self._store.hit(claim, now, span).count > 1:
                    self._fail_rate(now, subject, context, span)
        shared = f"{base}:decoy" if decoy else base
        over = False
        for key, cap in graded:
            over |= self._store.hit(key, now, policy.window).count > cap
        for suffix, cap in caps:
            over |= self._store.hit(shared + suffix, now, 3600.0).count > cap
        if over:
            # Parallel requests raced past a cap: the later ones are refused.
            self._fail_rate(now, subject, context, policy.cooldown or 1.0)

    def _fail_rate(
        self, now: dt.datetime, subject: str, context: ClientContext | None, wait: float
    ) -> None:
        self._record(
            AuditAction.BEGIN,
            Outcome.FAILURE,
            now,
            subject=subject,
            context=context,
            reason=Reason.RATE_LIMITED,
            details={"retry_after": f"{wait:.0f}"},
        )
        raise RateLimited("too many codes were requested; try again later", retry_after=wait)

    # Delivery -----------------------------------------------------------------
    def _job(self, outgoing: _Outgoing) -> Callable[[], None]:
        def run() -> None:
            self._deliver(outgoing)

        return run

    def _deliver(self, outgoing: _Outgoing) -> None:
        record = outgoing.record
        try:
            self._send(self._channel, outgoing.message, outgoing, fallback=False)
        except Exception as exc:
            # Any exception, not only DeliveryError: a channel bug or a bad
            # header must not leave a valid code behind either.
            if self._deliver_fallback(outgoing):
                return
            # Burn the code: it may still arrive later (a timeout after DATA),
            # and a code nobody is known to have received must not stay valid.
            self._store.consume_challenge(record.id, self._clock.now())
            retryable = isinstance(exc, DeliveryError) and exc.retryable
            raise CodeNotDelivered(
                "the code could not be delivered", challenge_id=record.id, retryable=retryable
            ) from exc

    def _deliver_fallback(self, outgoing: _Outgoing) -> bool:
        """Send the same code through the fallback channel; False if that is not possible."""
        fallback = self._fallback
        if fallback is None:
            return False
        try:
            destination = confirmed_destination(self._store, outgoing.subject, fallback.kind)
            if destination is None:
                return False
            message = self._message(fallback.kind, destination, outgoing.code, outgoing.language)
            self._send(fallback, message, outgoing, fallback=True)
        except Exception:  # noqa: BLE001 (any failure means: burn the code, in _deliver)
            return False
        return True

    def _send(
        self,
        channel: DeliveryChannel,
        message: OutboundMessage,
        outgoing: _Outgoing,
        *,
        fallback: bool,
    ) -> None:
        """Deliver ``message`` (with retries) and audit the outcome.

        Raises:
            DeliveryError: delivery failed for good (audited before it propagates);
                any other exception from the channel is wrapped in one.
        """
        try:
            receipt = deliver(
                channel, message, policy=self.retry, sleep=self._sleep, monotonic=self._monotonic
            )
        except Exception as raised:
            exc = (
                raised
                if isinstance(raised, DeliveryError)
                else DeliveryError(
                    f"the {channel.name} channel failed: {type(raised).__name__}",
                    retryable=False,
                )
            )
            # A fallback's failure is marked as such; the primary's says whether to retry.
            marks = {"fallback": "true"} if fallback else {"retryable": str(exc.retryable).lower()}
            self._record(
                AuditAction.DELIVER,
                Outcome.FAILURE,
                self._clock.now(),
                subject=outgoing.subject,
                context=outgoing.context,
                reason=Reason.DELIVERY_FAILED,
                channel=channel.name,
                details={"error": type(raised).__name__, **marks, "hint": message.hint},
            )
            if exc is raised:
                raise
            raise exc from raised
        if fallback:
            details = {"fallback": "true", "attempts": str(receipt.attempts)}
        else:
            details = {"attempts": str(receipt.attempts), "segments": str(receipt.segments)}
        self._record(
            AuditAction.DELIVER,
            Outcome.SUCCESS,
            self._clock.now(),
            subject=outgoing.subject,
            context=outgoing.context,
            channel=receipt.channel,
            details={**details, "hint": message.hint},
        )

    # Verification ---------------------------------------------------------------
    def _check(
        self,
        challenge: Challenge | str,
        response: str,
        purpose: str,
        context: ClientContext | None,
    ) -> ChallengeRecord:
        """Decide a code for ``purpose``; return the consumed record or raise."""
        action = AuditAction.VERIFY if purpose == _LOGIN else AuditAction.CONFIRM
        challenge_id = challenge_id_of(challenge)
        now = self._clock.now()
        record = self._store.get_challenge(challenge_id)
        if (
            record is None
            or record.challenge.method != self.method
            or record.challenge.data.get("purpose") != purpose
        ):
            raise self._failure(ChallengeNotFound, action, now, subject=None, context=context)
        subject = record.challenge.subject
        try:
            code = normalize_oob_code(response, self.codes)
        except MalformedInput:
            self._record(
                action,
                Outcome.FAILURE,
                now,
                subject=subject,
                context=context,
                reason=Reason.MALFORMED_CODE,
            )
            raise
        try:
            self._throttle.acquire(subject, context)
        except VerificationThrottled as exc:
            raise self._failure(
                type(exc),
                action,
                now,
                subject=subject,
                context=context,
                reason=exc.reason,
                retry_after=exc.retry_after,
                remaining_attempts=exc.remaining_attempts,
            ) from None
        self._refuse_if_dead(record, now, action, context)
        # Count the guess before comparing (an atomic counter): parallel
        # guesses all read the record before any wrong one is counted, so the
        # record's attempts alone would let more than max_attempts through.
        # (Not count_attempt: the store refuses to consume a record whose
        # attempts reached the maximum, which would fail a right last guess.)
        guesses = self._store.hit(
            f"oob-guess:{self.method}:{challenge_id}", now, self.codes.lifetime
        ).count
        if guesses > record.max_attempts:
            raise self._failure(
                ChallengeUsed,
                action,
                now,
                subject=subject,
                context=context,
                reason=Reason.ATTEMPTS_EXHAUSTED,
                remaining_attempts=0,
            )
        expected = record.verifier
        if hmac.compare_digest(self._verifier(challenge_id, purpose, code), expected):
            won = self._store.consume_challenge(challenge_id, now)
            if won is not None:
                return won
            # Someone else consumed it first, or it died meanwhile: say why.
            latest = self._store.get_challenge(challenge_id) or attrs.evolve(record, consumed=True)
            self._refuse_if_dead(latest, now, action, context)
            raise self._failure(ChallengeUsed, action, now, subject=subject, context=context)
        count = self._store.count_attempt(challenge_id)
        remaining = max(0, record.max_attempts - (count or record.max_attempts))
        raise self._failure(
            InvalidCode,
            action,
            now,
            subject=subject,
            context=context,
            remaining_attempts=remaining,
        )

    def _refuse_if_dead(
        self,
        record: ChallengeRecord,
        now: dt.datetime,
        action: AuditAction,
        context: ClientContext | None,
    ) -> None:
        subject = record.challenge.subject
        if record.attempts >= record.max_attempts:
            raise self._failure(
                ChallengeUsed,
                action,
                now,
                subject=subject,
                context=context,
                reason=Reason.ATTEMPTS_EXHAUSTED,
                remaining_attempts=0,
            )
        if record.consumed:
            raise self._failure(ChallengeUsed, action, now, subject=subject, context=context)
        if record.challenge.is_expired(now):
            raise self._failure(ChallengeExpired, action, now, subject=subject, context=context)

    def _failure(
        self,
        error: type[AuthenticationFailed],
        action: AuditAction,
        now: dt.datetime,
        *,
        subject: str | None,
        context: ClientContext | None,
        reason: Reason | None = None,
        remaining_attempts: int | None = None,
        retry_after: float | None = None,
    ) -> AuthenticationFailed:
        """Audit a failure and build the exception to raise (generic message)."""
        reason = reason or error.default_reason
        self._record(action, Outcome.FAILURE, now, subject=subject, context=context, reason=reason)
        return error(
            GENERIC_FAILURE,
            reason=reason,
            remaining_attempts=remaining_attempts,
            retry_after=retry_after,
        )

    # Audit ----------------------------------------------------------------------
    def _record(
        self,
        action: AuditAction,
        outcome: Outcome,
        at: dt.datetime,
        *,
        subject: str | None,
        context: ClientContext | None,
        reason: Reason | None = None,
        channel: str | None = None,
        details: dict[str, str] | None = None,
    ) -> str | None:
        if self._audit is None:
            return None
        return record_event(
            self._audit,
            at=at,
            action=action,
            method=self.method,
            outcome=outcome,
            subject=subject,
            client=context,
            reason=reason,
            channel=channel or self.method,
            details=details,
        )


@functools.lru_cache(maxsize=64)
def _mobile_example(region: str) -> tuple[str, int]:
    """A region's example mobile number (national digits, country code), for decoys."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return "612345678", 212
    return phonenumbers.national_significant_number(example), example.country_code or 212


def _nothing() -> None:
    """The delivery to nobody: unknown subjects get no message."""


class SMSCodeAuthenticator(OutOfBandAuthenticator):
    """Codes by SMS (method ``"sms"``, assurance LOW). See :class:`OutOfBandAuthenticator`."""

    default_kind = ChannelKind.SMS


class EmailCodeAuthenticator(OutOfBandAuthenticator):
    """Codes by e-mail (method ``"email"``, assurance LOW). See :class:`OutOfBandAuthenticator`."""

    default_kind = ChannelKind.EMAIL

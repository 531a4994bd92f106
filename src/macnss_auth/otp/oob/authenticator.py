"""The out-of-band authenticators: SMS and e-mail codes behind the Authenticator interface.

``begin`` counts the send against the limits (:mod:`.limits`), draws a code
(:mod:`.codes`), stores only its keyed hash in a challenge record, and hands
the delivery to a dispatcher (:mod:`.dispatch`). ``verify`` classifies the
stored challenge with the shared gate
(:func:`~macnss_auth.challenges.challenge_failure`), counts the guess, compares
keyed hashes in constant time and consumes the record atomically. See
:mod:`macnss_auth.otp.oob` for the theory of operation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import ClassVar

import attrs

from macnss_auth.attempts import MethodEvents, commit_group_of, grouped
from macnss_auth.audit.events import AuditAction, AuditLog, Outcome
from macnss_auth.authenticator import AssuranceLevel, AuthResult, Challenge, ClientContext
from macnss_auth.challenges import challenge_failure, challenge_id_of, subject_of
from macnss_auth.clock import Clock, RandomSource, SystemClock, SystemRandom
from macnss_auth.delivery._deadline import budget_left, retry_budget
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
    ChallengeNotFound,
    ChallengeUsed,
    ConfigurationError,
    InvalidCode,
    RateLimited,
    Reason,
    VerificationThrottled,
)
from macnss_auth.failures import check_language
from macnss_auth.otp.contacts import (
    DEFAULT_REGION,
    Destination,
    confirmed_destination,
    parse_destination,
    promote_pending,
    put_pending,
    validate_destination,
)
from macnss_auth.otp.oob.codes import CodePolicy, generate_code, normalize_oob_code
from macnss_auth.otp.oob.dispatch import (
    BackgroundDispatcher,
    CodeNotDelivered,
    Dispatcher,
    nothing,
)
from macnss_auth.otp.oob.limits import ResendPolicy, count_send, decoy_destination
from macnss_auth.secret import Secret
from macnss_auth.store.base import ChallengeRecord, Store
from macnss_auth.throttle import FailureThrottle, ThrottlePolicy

__all__ = [
    "GENERIC_FAILURE",
    "EmailCodeAuthenticator",
    "OutOfBandAuthenticator",
    "SMSCodeAuthenticator",
]

#: What ``str(exc)`` says for every failed verification, whatever the reason.
GENERIC_FAILURE = failure_message("en")

_LOGIN = "login"
_ENROLL = "enroll"


@attrs.frozen
class _Outgoing:
    """A code on its way out; lives only inside the delivery job."""

    record: ChallengeRecord
    subject: str
    code: str = attrs.field(repr=False)
    message: OutboundMessage
    language: str
    context: ClientContext | None
    #: A shared sending limit is full: answered as a send, but nothing goes out.
    dropped: bool = False


class OutOfBandAuthenticator:
    """Codes by SMS or e-mail behind the :class:`~macnss_auth.Authenticator` interface.

    Args:
        channel: the delivery channel (its ``kind`` must match).
        store: where challenges, destinations and counters live.
        pepper: the application key for code hashes (at least 32 bytes);
            keep it outside the store (environment, secrets manager).
        clock / random: injectable time and randomness.
        audit: where events go; required, as for every other method (each
            begin, delivery, verification and confirmation is an event).
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
        audit: AuditLog,
        clock: Clock | None = None,
        random: RandomSource | None = None,
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
        self._group = commit_group_of(store, audit)
        self._pepper = pepper
        self._clock = clock or SystemClock()
        self._random = random or SystemRandom()
        self._audit = audit
        self._events = MethodEvents(
            audit=audit, clock=self._clock, method=self.method, channel=self.method
        )
        self.codes = codes or CodePolicy()
        self.resend = resend or ResendPolicy()
        self.retry = retry or RetryPolicy(deadline=min(20.0, self.codes.lifetime / 4))
        self._fallback = fallback
        # Past a shared SMS cap the code may still go by e-mail (no pumping there);
        # never the other way round, which would send SMS past the SMS caps.
        self._mail_on_drop = fallback is not None and fallback.kind is ChannelKind.EMAIL
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
        So does a subject whose destination, number prefix or channel is at
        its sending cap (shared with other people, so a refusal would tell
        who is enrolled): the message is dropped and the drop audited (with
        an e-mail ``fallback``, an SMS code goes to the subject's confirmed
        e-mail address instead).

        Raises:
            RateLimited: too many codes for this subject (its cooldown or
                daily cap); ``retry_after`` says when to try again.
            CodeNotDelivered: (inline dispatcher only) delivery failed; the
                code was burnt.
            UnsupportedLanguage: no catalog for ``language`` (a
                ``MalformedInput``, like :meth:`Policy.begin <macnss_auth.policy.Policy.begin>`'s);
                nothing was counted or sent.
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
            quiet=True,
        )
        self._events.record(
            AuditAction.BEGIN,
            Outcome.INFO,
            subject,
            context,
            at=now,
            details={
                "hint": target.hint,
                "purpose": _LOGIN,
                "destination": "confirmed" if destination is not None else "none",
            },
        )
        if destination is None:
            job = nothing
        elif outgoing.dropped:
            job = self._dropped_job(outgoing)
        else:
            job = self._job(outgoing)
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
        # One commit for the counted guess, the used code and the record (see code_flow).
        with grouped(self._group):
            record = self._check(challenge, response, _LOGIN, context)
            now = self._clock.now()
            subject = record.challenge.subject
            self._throttle.release(subject, context)
            event_id = self._events.record(
                AuditAction.VERIFY,
                Outcome.SUCCESS,
                subject,
                context,
                at=now,
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
            UnsupportedLanguage: no catalog for ``language``.
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
        self._events.record(
            AuditAction.ENROLL,
            Outcome.INFO,
            subject,
            context,
            at=now,
            details={"hint": target.hint, "purpose": _ENROLL},
        )
        self._dispatcher.dispatch(self._job(outgoing), started=started)
        return challenge

    def confirm(
        self,
        challenge: Challenge | str,
        response: str,
        *,
        subject: str | None = None,
        context: ClientContext | None = None,
    ) -> Destination:
        """Confirm a destination with the code it received; return it.

        Args:
            challenge: the challenge from :meth:`enroll` (or its id).
            response: the code.
            subject: when given, the enrollment must be this subject's (a web
                layer passes the subject its caller is authorized for); another
                subject's challenge is refused as not found, before any count.

        Raises:
            MalformedInput / ChallengeNotFound / ChallengeExpired / ChallengeUsed /
            InvalidCode / VerificationThrottled: as for :meth:`verify`.
        """
        # One commit here too; sending (begin) stays outside: no network under the write lock.
        with grouped(self._group):
            record = self._check(challenge, response, _ENROLL, context, owner=subject)
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
            self._events.record(
                AuditAction.CONFIRM,
                Outcome.SUCCESS,
                subject,
                context,
                at=now,
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
        quiet: bool = False,
    ) -> _Outgoing:
        # A language asked for per request is the client's choice: a client error,
        # raised before anything is counted or sent (the constructor's is a setup error).
        language = self.language if language is None else check_language(language)
        # Count the send against every limit first (count-before-check); a refusal is audited.
        try:
            sent = count_send(
                self._store,
                policy=self.resend,
                method=self.method,
                purpose=purpose,
                subject=subject,
                target=target,
                destination_id=self._keyed("dest", target.address).hex()[:32],
                now=now,
                decoy=decoy,
                quiet=quiet,
            )
        except RateLimited as refused:
            self._events.record(
                AuditAction.BEGIN,
                Outcome.FAILURE,
                subject,
                context,
                at=now,
                reason=Reason.RATE_LIMITED,
                details={"retry_after": f"{refused.retry_after or 0:.0f}"},
            )
            raise
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
        if decoy or not (sent or self._mail_on_drop):
            # Same work, but a verifier no code matches: nobody was sent this
            # code, so it must not log anyone in if it is guessed or leaks.
            # (A dropped send that may go by e-mail keeps its code: unsent, it
            # is no easier to guess than one sent, and it answers verify alike.)
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
            dropped=not sent,
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
        return decoy_destination(seed, self._kind, self.region)

    # Delivery -----------------------------------------------------------------
    def _job(self, outgoing: _Outgoing) -> Callable[[], None]:
        def run() -> None:
            self._deliver(outgoing)

        return run

    def _dropped_job(self, outgoing: _Outgoing) -> Callable[[], None]:
        def run() -> None:
            # Audited by the job, not by begin: begin's work stays the same as a
            # send's; operators see every drop (alert on them: people wait in vain).
            self._delivery_recorded(
                outgoing,
                outgoing.message,
                Outcome.FAILURE,
                channel=self._channel.name,
                details={"dropped": "send_cap"},
                reason=Reason.RATE_LIMITED,
            )
            if self._mail_on_drop:
                with retry_budget(self.retry.deadline):
                    self._deliver_dropped(outgoing)

        return run

    def _deliver_dropped(self, outgoing: _Outgoing) -> None:
        """Send a dropped SMS's code to the subject's confirmed e-mail address, if any."""
        fallback = self._fallback
        if fallback is None:
            return
        destination = confirmed_destination(self._store, outgoing.subject, fallback.kind)
        if destination is None:
            # Nobody to tell. Not burnt: a burnt challenge would answer verify
            # unlike an unknown subject's, and this code went nowhere.
            return
        message = self._message(fallback.kind, destination, outgoing.code, outgoing.language)
        try:
            self._send(fallback, message, outgoing, fallback=True)
        except Exception as exc:
            # As for any failed delivery: the message may still arrive later.
            self._store.consume_challenge(outgoing.record.id, self._clock.now())
            retryable = isinstance(exc, DeliveryError) and exc.retryable
            raise CodeNotDelivered(
                "the code could not be delivered",
                challenge_id=outgoing.record.id,
                retryable=retryable,
            ) from exc

    def _deliver(self, outgoing: _Outgoing) -> None:
        # One budget for every channel: a fallback gets what the primary left, never a
        # fresh deadline of its own, so begin() ends within retry.deadline whatever fails.
        with retry_budget(self.retry.deadline):
            self._deliver_within_budget(outgoing)

    def _deliver_within_budget(self, outgoing: _Outgoing) -> None:
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
        if fallback is None or not budget_left():
            return False  # no fallback, or the primary used the whole budget
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
            self._delivery_recorded(
                outgoing,
                message,
                Outcome.FAILURE,
                channel=channel.name,
                details={"error": type(raised).__name__, **marks},
                reason=Reason.DELIVERY_FAILED,
            )
            if exc is raised:
                raise
            raise exc from raised
        if fallback:
            details = {"fallback": "true", "attempts": str(receipt.attempts)}
        else:
            details = {"attempts": str(receipt.attempts), "segments": str(receipt.segments)}
        self._delivery_recorded(
            outgoing, message, Outcome.SUCCESS, channel=receipt.channel, details=details
        )

    def _delivery_recorded(
        self,
        outgoing: _Outgoing,
        message: OutboundMessage,
        outcome: Outcome,
        *,
        channel: str,
        details: dict[str, str],
        reason: Reason | None = None,
    ) -> None:
        """Audit how a delivery went, naming the masked destination it was for."""
        self._events.record(
            AuditAction.DELIVER,
            outcome,
            outgoing.subject,
            outgoing.context,
            at=self._clock.now(),
            reason=reason,
            channel=channel,
            details={**details, "hint": message.hint},
        )

    # Verification ---------------------------------------------------------------
    def _check(
        self,
        challenge: Challenge | str,
        response: str,
        purpose: str,
        context: ClientContext | None,
        *,
        owner: str | None = None,
    ) -> ChallengeRecord:
        """Decide a code for ``purpose``; return the consumed record or raise.

        ``owner``: when given, a challenge of another subject is not found.
        """
        action = AuditAction.VERIFY if purpose == _LOGIN else AuditAction.CONFIRM
        challenge_id = challenge_id_of(challenge)
        now = self._clock.now()
        record = self._store.get_challenge(challenge_id)
        # The shared gate decides; an unknown challenge is refused before
        # anything else, a dead one only once the attempt is counted (below).
        failure = challenge_failure(record, self.method, now, purpose=purpose)
        foreign = record is not None and owner is not None and record.challenge.subject != owner
        if record is None or foreign or isinstance(failure, ChallengeNotFound):
            raise self._failure(ChallengeNotFound, action, now, subject=None, context=context)
        subject = record.challenge.subject
        with self._events.malformed(action, subject, context, reason=Reason.MALFORMED_CODE, at=now):
            code = normalize_oob_code(response, self.codes)
        try:
            self._events.throttle_step(self._throttle.acquire, subject, context, action, at=now)
        except VerificationThrottled as exc:
            # Audited; refused with the one generic message, like every failed code.
            raise type(exc)(
                GENERIC_FAILURE,
                reason=exc.reason,
                retry_after=exc.retry_after,
                remaining_attempts=exc.remaining_attempts,
            ) from None
        self._refuse_if_dead(record, purpose, now, action, context)
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
            self._refuse_if_dead(latest, purpose, now, action, context)
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
        purpose: str,
        now: dt.datetime,
        action: AuditAction,
        context: ClientContext | None,
    ) -> None:
        """Raise (audited, with the generic message) if the gate says ``record`` is dead."""
        failure = challenge_failure(record, self.method, now, purpose=purpose)
        if failure is None:
            return
        exhausted = failure.reason is Reason.ATTEMPTS_EXHAUSTED
        raise self._failure(
            type(failure),
            action,
            now,
            subject=record.challenge.subject,
            context=context,
            reason=failure.reason,
            remaining_attempts=0 if exhausted else None,
        )

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
        self._events.record(action, Outcome.FAILURE, subject, context, at=now, reason=reason)
        return error(
            GENERIC_FAILURE,
            reason=reason,
            remaining_attempts=remaining_attempts,
            retry_after=retry_after,
        )


class SMSCodeAuthenticator(OutOfBandAuthenticator):
    """Codes by SMS (method ``"sms"``, assurance LOW). See :class:`OutOfBandAuthenticator`."""

    default_kind = ChannelKind.SMS


class EmailCodeAuthenticator(OutOfBandAuthenticator):
    """Codes by e-mail (method ``"email"``, assurance LOW). See :class:`OutOfBandAuthenticator`."""

    default_kind = ChannelKind.EMAIL

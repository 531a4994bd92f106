"""Which methods a service offers, in what order, with fallback and cross-method limits.

A :class:`Policy` composes authenticators. It never lets a service become
"NFC only": unless told otherwise it refuses a configuration in which every
method needs hardware that many people lack. It offers methods in the
configured order, filtered by what the client says it can do, and tells the
caller which method to fall back to when one fails or cannot be used.

On top of each method's own throttle, a policy counts failures across *all*
methods per subject, so an attacker cannot multiply their guesses by cycling
through SMS, e-mail and TOTP.

Everything a client sends (a method name, a language, a challenge id, a code)
is refused with a typed error that carries a stable reason
(:class:`~macnss_auth.errors.MethodNotOffered`,
:class:`~macnss_auth.errors.UnsupportedLanguage`,
:class:`~macnss_auth.errors.ChallengeNotFound`,
:class:`~macnss_auth.errors.MalformedInput`), never with a
:class:`~macnss_auth.errors.ConfigurationError`: a web layer answers the
former with a 4xx and only the latter with a 500. Failures carry the method
they came from, so :meth:`Policy.explain` words them for what the person did.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import inspect
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs

from macnss_auth.authenticator import (
    AssuranceLevel,
    Authenticator,
    AuthResult,
    Challenge,
    ClientContext,
)
from macnss_auth.challenges import challenge_id_of, subject_of
from macnss_auth.clock import Clock
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeNotFound,
    ConfigurationError,
    MethodNotOffered,
    Reason,
)
from macnss_auth.failures import MESSAGE_LANGUAGES, check_language, failure_text
from macnss_auth.store.base import Store
from macnss_auth.throttle import FailureThrottle, ThrottlePolicy

__all__ = ["REQUIREMENTS", "Capability", "MethodOffer", "Policy"]


class Capability(str, enum.Enum):
    """What a client device can do."""

    NFC = "nfc"  # can read an eID chip (phone with NFC, or a kiosk reader)
    APP = "app"  # can run an authenticator app (any smartphone)
    SMS = "sms"  # can receive SMS (any mobile phone)
    EMAIL = "email"  # can read e-mail
    PASSKEY = "passkey"  # a smartphone or computer with a passkey (WebAuthn platform authenticator)


# The capability each standard method needs; methods not listed need nothing special.
REQUIREMENTS: dict[str, Capability] = {
    "eid": Capability.NFC,
    "totp": Capability.APP,
    "hotp": Capability.APP,
    "sms": Capability.SMS,
    "email": Capability.EMAIL,
    "passkey": Capability.PASSKEY,
}

# Cross-method failures allowed per subject before the policy itself locks out.
_DEFAULT_CROSS_METHOD = ThrottlePolicy(
    free_failures=5, base_delay=2.0, max_delay=600.0, lockout_after=20, lockout_duration=1800.0
)


@attrs.frozen
class MethodOffer:
    """One method a client may use now.

    Attributes:
        method: the method name.
        assurance: the level a success with it reaches.
        needs: the capability it requires, if any.
    """

    method: str
    assurance: AssuranceLevel
    needs: Capability | None


class Policy:
    """Offers methods in order, with fallback and cross-method throttling.

    Args:
        authenticators: in order of preference; each method name once, with
            the assurance level its successes reach.
        store, clock: collaborators for the cross-method throttle.
        minimum_assurance: successes below it are refused.
        throttle_policy: numbers of the cross-method throttle.
        allow_hardware_only: accept a configuration where every method needs
            an NFC reader (default False: nobody may be shut out).
        language: the language of messages when a request names none
            (``"ar"``, ``"fr"`` or ``"en"``).

    Raises:
        ConfigurationError: no authenticator, a method twice, none reaching
            the minimum assurance, only NFC methods, or an unknown ``language``.
    """

    def __init__(
        self,
        *,
        authenticators: Sequence[tuple[Authenticator[Any], AssuranceLevel]],
        store: Store,
        clock: Clock,
        minimum_assurance: AssuranceLevel = AssuranceLevel.LOW,
        throttle_policy: ThrottlePolicy = _DEFAULT_CROSS_METHOD,
        allow_hardware_only: bool = False,
        language: str = "fr",
    ) -> None:
        if language not in MESSAGE_LANGUAGES:
            raise ConfigurationError(f"no messages in language {language!r}")
        self.language = language
        if not authenticators:
            raise ConfigurationError("a policy needs at least one authenticator")
        by_method: dict[str, tuple[Authenticator[Any], AssuranceLevel]] = {}
        for authenticator, level in authenticators:
            if authenticator.method in by_method:
                raise ConfigurationError(f"method {authenticator.method!r} is configured twice")
            by_method[authenticator.method] = (authenticator, level)
        usable = [m for m, (_, level) in by_method.items() if level >= minimum_assurance]
        if not usable:
            raise ConfigurationError("no configured method reaches the minimum assurance")
        if not allow_hardware_only and all(REQUIREMENTS.get(m) is Capability.NFC for m in usable):
            raise ConfigurationError(
                "every usable method needs NFC: add a fallback (TOTP, SMS, e-mail) so that "
                "people without NFC phones are not shut out"
            )
        self._store = store
        self._methods = by_method
        self._order = tuple(usable)
        self.minimum_assurance = minimum_assurance
        self._throttle = FailureThrottle(
            store=store, clock=clock, namespace="policy", policy=throttle_policy
        )
        # Username-less attempts, counted per client id (the "subject" of this namespace).
        self._anonymous = FailureThrottle(
            store=store, clock=clock, namespace="policy-anonymous", policy=throttle_policy
        )

    @property
    def store(self) -> Store:
        """The store of the cross-method throttle (the HTTP service keeps its sign-outs there)."""
        return self._store

    @property
    def methods(self) -> tuple[str, ...]:
        """Usable methods in order of preference."""
        return self._order

    def authenticator(self, method: str) -> Authenticator[Any]:
        """The configured authenticator of ``method`` (for enrollment and similar calls).

        Raises:
            MethodNotOffered: the method is not configured (the name may come from a client).
        """
        return self._methods[_named(method, self._methods)][0]

    def offer(
        self, capabilities: Iterable[Capability] | None = None, *, exclude: Iterable[str] = ()
    ) -> list[MethodOffer]:
        """Methods the client can use, best first.

        ``capabilities=None`` means unknown: every method is offered. The
        answer depends only on the configuration and the client, never on the
        subject, so it reveals nothing about who is enrolled.
        """
        have = None if capabilities is None else frozenset(capabilities)
        skip = frozenset(exclude)
        offers = []
        for method in self._order:
            needs = REQUIREMENTS.get(method)
            if method in skip or (have is not None and needs is not None and needs not in have):
                continue
            offers.append(MethodOffer(method, self._methods[method][1], needs))
        return offers

    def fallback(
        self, failed: str, capabilities: Iterable[Capability] | None = None
    ) -> MethodOffer | None:
        """The next method to offer after ``failed`` could not be used, if any.

        Raises:
            MethodNotOffered: ``failed`` is not one of :attr:`methods` (a client may name it).
        """
        failed = _named(failed, self._order)
        offers = self.offer(capabilities, exclude=[failed])
        after = [o for o in offers if self._order.index(o.method) > self._order.index(failed)]
        candidates = after or offers
        return candidates[0] if candidates else None

    def begin(
        self,
        subject: str,
        method: str,
        *,
        context: ClientContext | None = None,
        language: str | None = None,
    ) -> Challenge:
        """Start ``method`` for ``subject``.

        Args:
            subject: who authenticates.
            method: one of :attr:`methods`.
            context: the client, for throttling and audit.
            language: the person's language (``"ar"``, ``"fr"``, ``"en"``) for
                methods whose ``begin`` sends a message (SMS, e-mail codes);
                checked for every method, used by those.

        Raises:
            MethodNotOffered: the method is not configured or below the minimum.
            UnsupportedLanguage: no messages in ``language``.
            VerificationThrottled: the subject is locked out across methods
                (``method`` set on it, like on every failure of the method).
            MalformedInput: ``subject`` is not a usable subject id.
        """
        subject = subject_of(subject)
        authenticator = self._authenticator(method)
        if language is not None:
            language = check_language(language)
        with _tagged(method):
            if self._throttle.locked_out(subject, context):
                self._throttle.acquire(subject, context)  # raises LockedOut with retry_after
            if language is not None and _takes_language(type(authenticator)):
                begin: Any = authenticator.begin
                challenge: Challenge = begin(subject, context=context, language=language)
                return challenge
            return authenticator.begin(subject, context=context)

    def verify(
        self,
        challenge: Challenge | str,
        response: object,
        *,
        context: ClientContext | None = None,
    ) -> AuthResult:
        """Verify with the method the challenge names, counting failures across methods.

        Only the challenge id is taken from the client: the method, subject and
        expiry come from the stored record, so a client cannot dodge (or aim)
        the cross-method count by renaming the subject. Unknown ids are
        refused before anything is counted. A challenge without a subject
        (a username-less passkey login) is counted per client id until the
        method names the subject; then that subject's count applies too.

        Raises:
            AuthenticationFailed: in the subclass the method raised, or
                ``LockedOut`` / ``VerificationThrottled`` from the cross-method
                limit; ``method`` names the challenge's method (for :meth:`explain`).
            ChallengeNotFound: the id names no pending challenge of this policy.
            MalformedInput: the id is not text, or the response cannot be read.
        """
        # Route and count by the stored challenge, never by what the client sent back.
        record = self._store.get_challenge(challenge_id_of(challenge))
        if record is None or record.challenge.method not in self._methods:
            raise ChallengeNotFound()
        stored = record.challenge
        authenticator, level = self._methods[stored.method]
        if level < self.minimum_assurance:
            raise ChallengeNotFound()
        named = stored.subject
        with _tagged(stored.method):
            if named:
                self._throttle.acquire(named, context)
            else:
                # Username-less (a discoverable passkey): nobody is known before the
                # method has checked the answer, so only the client's attempts are
                # counted; a shared "" bucket would let one failure lock everyone out.
                self._anonymous_acquire(context)
            result = authenticator.verify(stored.id, response, context=context)
            if not named:
                # The answer named its subject: their cross-method lockout applies too.
                self._throttle.acquire(result.subject, context)
            if result.assurance < self.minimum_assurance:
                raise AuthenticationFailed(reason=Reason.ACCESS_DENIED)
        self._throttle.release(result.subject, context)
        if not named:
            self._anonymous_release(context)
        return result

    def _anonymous_acquire(self, context: ClientContext | None) -> None:
        if context is not None and context.client_id:
            self._anonymous.acquire(context.client_id)

    def _anonymous_release(self, context: ClientContext | None) -> None:
        if context is not None and context.client_id:
            self._anonymous.release(context.client_id)

    def explain(self, failure: BaseException, *, language: str | None = None) -> str:
        """The sentence to show the person for a failure of :meth:`begin` or :meth:`verify`.

        Worded for the failed method (a card reading is not "a code"), in
        ``language`` (a client's choice; default: the policy's language).

        Raises:
            UnsupportedLanguage: no messages in ``language``.
        """
        return failure_text(failure, language=language or self.language)

    def _authenticator(self, method: str) -> Authenticator[Any]:
        return self._methods[_named(method, self._order)][0]


def _named(method: object, known: Iterable[str]) -> str:
    """``method`` if it is one of ``known`` (a client may send anything, even a list)."""
    if isinstance(method, str) and method in known:
        return method
    raise MethodNotOffered(method)


@contextlib.contextmanager
def _tagged(method: str) -> Iterator[None]:
    """Name ``method`` on any authentication failure raised inside (unless one is named)."""
    try:
        yield
    except AuthenticationFailed as exc:
        if exc.method is None:
            exc.method = method
        raise


@functools.cache
def _takes_language(kind: type) -> bool:
    """Whether ``kind.begin`` has a ``language`` keyword (the message-sending methods)."""
    try:
        return "language" in inspect.signature(kind.begin).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError, AttributeError):
        return False

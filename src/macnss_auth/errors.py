"""One exception hierarchy, rooted at :class:`MacnssAuthError`.

Branches follow what the caller does next, not where the error was raised:

* :class:`ConfigurationError` / :class:`UnsupportedAlgorithm`: fix the setup.
* :class:`MalformedInput`: the input cannot be understood or used (a code with
  letters, a broken TLV, a method or language this service does not offer);
  tell the user or the client to resend. It carries a :class:`Reason` too, so
  a web layer answers 4xx with a stable string: a client's mistake is never a
  :class:`ConfigurationError` (which a web layer rightly turns into a 500).
* :class:`AuthenticationFailed`: the person did not prove who they are. Every
  subclass carries a :class:`Reason` (a stable string that is safe to show and
  to log), and where it applies ``remaining_attempts`` and ``retry_after``.
* :class:`ProtocolError`: a card protocol went wrong. ``LocalProtocolError`` is
  our side misusing a protocol object; ``RemoteProtocolError`` is the chip
  misbehaving (``SecureMessagingError`` means tampering or a broken link).
* :class:`TransportError`, :class:`DeliveryError`, :class:`StoreError`:
  infrastructure; ``retryable`` says whether trying again may help.

Data always lives on attributes, never only in the message; third-party
exceptions are wrapped with ``raise ... from``. Messages never contain secrets.
"""

from __future__ import annotations

import enum

__all__ = [
    "AccessDenied",
    "AuthenticationFailed",
    "ChallengeExpired",
    "ChallengeNotFound",
    "ChallengeUsed",
    "ConfigurationError",
    "DeliveryError",
    "DocumentNotGenuine",
    "InvalidCode",
    "LocalProtocolError",
    "LockedOut",
    "MacnssAuthError",
    "MalformedInput",
    "MethodNotOffered",
    "MissingExtra",
    "NotEnrolled",
    "PasswordBlocked",
    "PasswordSuspended",
    "ProtocolError",
    "RateLimited",
    "Reason",
    "RemoteProtocolError",
    "SchemaVersionError",
    "SecretKeyError",
    "SecureMessagingError",
    "StoreError",
    "TokenReplayed",
    "TransportError",
    "UnsupportedAlgorithm",
    "UnsupportedLanguage",
    "VerificationThrottled",
]


class Reason(str, enum.Enum):
    """Why an authentication failed: stable strings, safe to show and to audit.

    The values never change once released; dashboards and notebooks key on them.
    """

    INVALID_CODE = "invalid_code"
    MALFORMED_CODE = "malformed_code"
    REPLAYED = "replayed"
    THROTTLED = "throttled"
    LOCKED_OUT = "locked_out"
    RATE_LIMITED = "rate_limited"
    NOT_ENROLLED = "not_enrolled"
    CHALLENGE_NOT_FOUND = "challenge_not_found"
    CHALLENGE_EXPIRED = "challenge_expired"
    CHALLENGE_USED = "challenge_used"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    ACCESS_DENIED = "access_denied"
    DOCUMENT_NOT_GENUINE = "document_not_genuine"
    DOCUMENT_MISMATCH = "document_mismatch"
    DELIVERY_FAILED = "delivery_failed"
    MALFORMED_RESPONSE = "malformed_response"
    # Passkeys (WebAuthn): what a browser's response got wrong, per ceremony step.
    ORIGIN_MISMATCH = "origin_mismatch"
    RP_ID_MISMATCH = "rp_id_mismatch"
    CHALLENGE_MISMATCH = "challenge_mismatch"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    INVALID_SIGNATURE = "invalid_signature"
    USER_NOT_PRESENT = "user_not_present"
    USER_NOT_VERIFIED = "user_not_verified"
    SIGN_COUNT_REGRESSED = "sign_count_regressed"
    BACKUP_STATE_INVALID = "backup_state_invalid"
    ATTESTATION_UNTRUSTED = "attestation_untrusted"
    CREDENTIAL_EXISTS = "credential_exists"
    CREDENTIAL_LIMIT = "credential_limit"
    METHOD_NOT_OFFERED = "method_not_offered"
    UNSUPPORTED_LANGUAGE = "unsupported_language"


class MacnssAuthError(Exception):
    """Root of every error this library raises on purpose."""


class ConfigurationError(MacnssAuthError):
    """The library was set up wrongly (bad parameter, missing key, bad policy)."""


class UnsupportedAlgorithm(ConfigurationError):
    """An algorithm, curve or mapping is recognised but not supported."""


class MissingExtra(ConfigurationError):
    """A feature needs an optional extra that is not installed.

    Attributes:
        extra: the extra to install (``pip install 'macnss-auth[EXTRA]'``).
    """

    def __init__(self, feature: str, *, extra: str) -> None:
        super().__init__(f"{feature} needs the optional extra: pip install 'macnss-auth[{extra}]'")
        self.extra = extra


class _DefaultReason:
    # ``class X(Base, reason=Reason.Y)`` sets ``X.default_reason``: each error kind
    # below names its reason on its class line instead of repeating the assignment.
    default_reason: Reason

    def __init_subclass__(cls, *, reason: Reason | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if reason is not None:
            cls.default_reason = reason


class MalformedInput(MacnssAuthError, ValueError, _DefaultReason):
    """Input that cannot be parsed or used: a code with letters, truncated TLV, bad DER.

    Attributes:
        field: which field or structure was malformed, when known.
        reason: a stable :class:`Reason`: ``malformed_code`` for the ``code``
            field, the class's ``default_reason`` otherwise.
    """

    default_reason: Reason = Reason.MALFORMED_RESPONSE

    def __init__(
        self, message: str, *, field: str | None = None, reason: Reason | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        if reason is None:
            reason = Reason.MALFORMED_CODE if field == "code" else self.default_reason
        self.reason = reason


def _shown(value: object) -> str:
    # A client's value, bounded and quoted: the message must not carry a megabyte of input.
    text = value if isinstance(value, str) else type(value).__name__
    return repr(text[:40] + "..." if len(text) > 40 else text)


class MethodNotOffered(MalformedInput, reason=Reason.METHOD_NOT_OFFERED):
    """A client named a method this policy does not offer (reason ``method_not_offered``).

    Attributes:
        method: the name, if it was text (else ``None``).
    """

    def __init__(self, method: object) -> None:
        super().__init__(f"method {_shown(method)} is not offered", field="method")
        self.method = method if isinstance(method, str) else None


class UnsupportedLanguage(MalformedInput, reason=Reason.UNSUPPORTED_LANGUAGE):
    """A client asked for a language with no messages (reason ``unsupported_language``).

    Attributes:
        language: the code asked for, if it was text (else ``None``).
        supported: the language codes that are available.
    """

    def __init__(self, language: object, *, supported: tuple[str, ...]) -> None:
        super().__init__(
            f"language {_shown(language)} is not one of {', '.join(supported)}", field="language"
        )
        self.language = language if isinstance(language, str) else None
        self.supported = supported


class AuthenticationFailed(MacnssAuthError, _DefaultReason):
    """The claimant did not authenticate.

    Attributes:
        reason: a :class:`Reason`; distinct for audit, generic enough to show.
        remaining_attempts: attempts left before a lockout or a burnt code, if known.
        retry_after: seconds to wait before the next attempt is considered, if any.
        method: the method that failed (``"eid"``, ``"totp"``...), when known;
            :class:`~macnss_auth.policy.Policy` fills it in, so that the
            message shown matches what the person did (a card, a code, a passkey).
    """

    default_reason: Reason = Reason.INVALID_CODE

    def __init__(
        self,
        message: str | None = None,
        *,
        reason: Reason | None = None,
        remaining_attempts: int | None = None,
        retry_after: float | None = None,
        method: str | None = None,
    ) -> None:
        self.reason = reason if reason is not None else self.default_reason
        self.remaining_attempts = remaining_attempts
        self.retry_after = retry_after
        self.method = method
        super().__init__(message or self.reason.value)


class InvalidCode(AuthenticationFailed, reason=Reason.INVALID_CODE):
    """The code, signature or response was wrong."""


class TokenReplayed(AuthenticationFailed, reason=Reason.REPLAYED):
    """The code was valid once but has already been used."""


class VerificationThrottled(AuthenticationFailed, reason=Reason.THROTTLED):
    """Too many recent failures; wait ``retry_after`` seconds."""


class LockedOut(VerificationThrottled, reason=Reason.LOCKED_OUT):
    """Hard lockout after too many failures; ``retry_after`` says until when."""


class RateLimited(VerificationThrottled, reason=Reason.RATE_LIMITED):
    """A rate limit (resends, deliveries per destination) was reached."""


class NotEnrolled(AuthenticationFailed, reason=Reason.NOT_ENROLLED):
    """No usable enrollment for this subject and method.

    Only raised where revealing it is harmless (an administrator's tool);
    public-facing ``begin`` calls avoid telling who is enrolled.
    """


class ChallengeNotFound(AuthenticationFailed, reason=Reason.CHALLENGE_NOT_FOUND):
    """No pending challenge with this id (never issued, or already purged)."""


class ChallengeExpired(AuthenticationFailed, reason=Reason.CHALLENGE_EXPIRED):
    """The challenge's lifetime is over."""


class ChallengeUsed(AuthenticationFailed, reason=Reason.CHALLENGE_USED):
    """The challenge was already consumed (single use) or burnt."""


class AccessDenied(AuthenticationFailed, reason=Reason.ACCESS_DENIED):
    """The card refused the password (wrong MRZ, CAN or PIN).

    Attributes:
        status_word: the card's status word, when a card answered.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        status_word: int | None = None,
        remaining_attempts: int | None = None,
    ) -> None:
        super().__init__(message, remaining_attempts=remaining_attempts)
        self.status_word = status_word


class PasswordSuspended(AccessDenied):
    """The PIN has one try left and the card takes it only after a PACE with the CAN.

    BSI TR-03110-2 §3.5.1 (the resume procedure): run PACE with the CAN, then
    PACE with the PIN inside that secure channel. ``remaining_attempts`` is 1.
    """


class PasswordBlocked(AccessDenied):
    """The password has no tries left (``63C0`` or ``6983``): a PIN needs the PUK.

    ``remaining_attempts`` is 0. A blocked PUK cannot be unblocked.
    """


class DocumentNotGenuine(AuthenticationFailed, reason=Reason.DOCUMENT_NOT_GENUINE):
    """The document failed verification under the configured policy."""


class ProtocolError(MacnssAuthError):
    """A card protocol (BAC, PACE, secure messaging, CA, AA) went wrong."""


class LocalProtocolError(ProtocolError):
    """Our side used a protocol object wrongly (out-of-order call, dead object)."""


class RemoteProtocolError(ProtocolError):
    """The chip misbehaved or answered with an error status.

    Attributes:
        status_word: the status word, when there was one.
    """

    def __init__(self, message: str, *, status_word: int | None = None) -> None:
        super().__init__(message)
        self.status_word = status_word


class SecureMessagingError(RemoteProtocolError):
    """A protected response failed its MAC or structure check: tampering or a broken link."""


class TransportError(MacnssAuthError):
    """The link to the card failed.

    Attributes:
        retryable: whether re-establishing the session may succeed.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class DeliveryError(MacnssAuthError):
    """An SMS or e-mail could not be delivered.

    Attributes:
        retryable: whether a later attempt may succeed (timeouts, 4xx SMTP replies).
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class StoreError(MacnssAuthError):
    """The state store failed or holds data we cannot use.

    Attributes:
        retryable: whether the same call may succeed later (a lost connection,
            a server starting or failing over, a deadlock). A retryable failure
            of a deciding call (``consume_challenge``, ``advance``...) leaves
            its outcome unknown: it may have been applied, so a retry can see
            "already used" and must be treated as a refusal.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable

    def __reduce__(self) -> tuple[object, ...]:
        # Keeps ``retryable`` across processes (the default pickling passes args only).
        return (_store_error, (type(self), str(self), self.retryable))


class SecretKeyError(StoreError):
    """A secret at rest cannot be decrypted: wrong, missing or rotated-out key."""


class SchemaVersionError(StoreError):
    """The store's schema is newer than this code understands."""


def _store_error(cls: type[StoreError], message: str, retryable: bool) -> StoreError:
    error = cls(message)
    error.retryable = retryable
    return error

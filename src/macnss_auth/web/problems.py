"""Errors as RFC 9457 problem details (``application/problem+json``).

Every failure the API reports is one JSON object::

    {"type": "urn:macnss-auth:problem:invalid_code", "title": "...", "status": 401,
     "reason": "invalid_code", "remaining_attempts": 2}

``reason`` is the library's stable :class:`~macnss_auth.errors.Reason` string
when the library decided, or one of the web layer's own (:class:`WebReason`)
when the request never reached it. ``retry_after`` and ``remaining_attempts``
are copied from the exception's attributes; a ``Retry-After`` header repeats
the former. Nothing else is ever copied: no message, no input, no stack trace.
An unexpected exception becomes a bare 500 problem and is logged server-side.
"""

from __future__ import annotations

import enum
import logging
import math
import traceback
from collections.abc import Mapping

from starlette.responses import JSONResponse

from macnss_auth.errors import (
    AuthenticationFailed,
    ConfigurationError,
    DeliveryError,
    MacnssAuthError,
    MalformedInput,
    Reason,
    StoreError,
    VerificationThrottled,
)

__all__ = [
    "MEDIA_TYPE",
    "PROBLEM_TYPE_PREFIX",
    "ProblemError",
    "WebReason",
    "problem_for",
    "problem_response",
]

_log = logging.getLogger("macnss_auth.web")

#: Problem types are URNs ending with the reason (RFC 9457 §3.1.1 allows any URI).
PROBLEM_TYPE_PREFIX = "urn:macnss-auth:problem:"
MEDIA_TYPE = "application/problem+json"


class WebReason(str, enum.Enum):
    """Reasons the web layer gives when the library was not asked (stable strings)."""

    INVALID_REQUEST = "invalid_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    METHOD_NOT_OFFERED = "method_not_offered"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"
    INTERNAL_ERROR = "internal_error"


_STATUS: Mapping[str, int] = {
    Reason.INVALID_CODE: 401,
    Reason.MALFORMED_CODE: 422,
    Reason.REPLAYED: 401,
    Reason.THROTTLED: 429,
    Reason.LOCKED_OUT: 429,
    Reason.RATE_LIMITED: 429,
    Reason.NOT_ENROLLED: 409,
    Reason.CHALLENGE_NOT_FOUND: 404,
    Reason.CHALLENGE_EXPIRED: 410,
    Reason.CHALLENGE_USED: 410,
    Reason.ATTEMPTS_EXHAUSTED: 410,
    Reason.ACCESS_DENIED: 403,
    Reason.DOCUMENT_NOT_GENUINE: 401,
    Reason.DOCUMENT_MISMATCH: 401,
    Reason.DELIVERY_FAILED: 503,
    Reason.MALFORMED_RESPONSE: 422,
    # Passkeys: a refused assertion or registration is a failed authentication (401),
    # except a registration the account cannot take (409).
    Reason.ORIGIN_MISMATCH: 401,
    Reason.RP_ID_MISMATCH: 401,
    Reason.CHALLENGE_MISMATCH: 401,
    Reason.UNKNOWN_CREDENTIAL: 401,
    Reason.INVALID_SIGNATURE: 401,
    Reason.USER_NOT_PRESENT: 401,
    Reason.USER_NOT_VERIFIED: 401,
    Reason.SIGN_COUNT_REGRESSED: 401,
    Reason.BACKUP_STATE_INVALID: 401,
    Reason.ATTESTATION_UNTRUSTED: 401,
    Reason.CREDENTIAL_EXISTS: 409,
    Reason.CREDENTIAL_LIMIT: 409,
    Reason.UNSUPPORTED_LANGUAGE: 422,
    WebReason.INVALID_REQUEST: 422,
    WebReason.UNAUTHORIZED: 401,
    WebReason.FORBIDDEN: 403,
    WebReason.METHOD_NOT_OFFERED: 404,
    WebReason.NOT_FOUND: 404,
    WebReason.UNAVAILABLE: 503,
    WebReason.INTERNAL_ERROR: 500,
}

_TITLES: Mapping[str, str] = {
    Reason.INVALID_CODE: "The code is not valid",
    Reason.MALFORMED_CODE: "The code is not well formed",
    Reason.REPLAYED: "The code was already used",
    Reason.THROTTLED: "Too many attempts; wait before trying again",
    Reason.LOCKED_OUT: "Too many attempts; locked for a while",
    Reason.RATE_LIMITED: "Too many requests; wait before trying again",
    Reason.NOT_ENROLLED: "Nothing to confirm",
    Reason.CHALLENGE_NOT_FOUND: "No such challenge",
    Reason.CHALLENGE_EXPIRED: "The challenge expired",
    Reason.CHALLENGE_USED: "The challenge was already used",
    Reason.ATTEMPTS_EXHAUSTED: "No attempts left for this challenge",
    Reason.ACCESS_DENIED: "Access denied",
    Reason.DOCUMENT_NOT_GENUINE: "The document could not be verified",
    Reason.DOCUMENT_MISMATCH: "The document does not belong to this person",
    Reason.DELIVERY_FAILED: "The code could not be sent",
    Reason.MALFORMED_RESPONSE: "The response is not well formed",
    Reason.ORIGIN_MISMATCH: "The passkey was used on another site",
    Reason.RP_ID_MISMATCH: "The passkey belongs to another site",
    Reason.CHALLENGE_MISMATCH: "The passkey answered another challenge",
    Reason.UNKNOWN_CREDENTIAL: "This passkey is not registered",
    Reason.INVALID_SIGNATURE: "The passkey signature is not valid",
    Reason.USER_NOT_PRESENT: "The device did not confirm your presence",
    Reason.USER_NOT_VERIFIED: "The device did not verify you (PIN or biometrics)",
    Reason.SIGN_COUNT_REGRESSED: "This passkey may have been copied",
    Reason.BACKUP_STATE_INVALID: "The passkey reported an impossible backup state",
    Reason.ATTESTATION_UNTRUSTED: "This device model is not accepted",
    Reason.CREDENTIAL_EXISTS: "This passkey is registered already",
    Reason.CREDENTIAL_LIMIT: "Too many passkeys; remove one first",
    Reason.UNSUPPORTED_LANGUAGE: "This language is not available",
    WebReason.INVALID_REQUEST: "The request is not valid",
    WebReason.UNAUTHORIZED: "Authentication required",
    WebReason.FORBIDDEN: "Not allowed",
    WebReason.METHOD_NOT_OFFERED: "This method is not offered",
    WebReason.NOT_FOUND: "Not found",
    WebReason.UNAVAILABLE: "The service is unavailable; try again later",
    WebReason.INTERNAL_ERROR: "Internal Server Error",
}


class ProblemError(Exception):
    """Raised by the web layer's own checks; rendered as a problem.

    Attributes:
        reason: the stable reason string.
        errors: for ``invalid_request``, the locations of the invalid fields.
    """

    def __init__(
        self,
        reason: WebReason | Reason,
        *,
        errors: list[str] | None = None,
        status: int | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.errors = errors
        self.status = status
        self.title = title


def problem_for(exc: BaseException) -> dict[str, object]:
    """The problem object for ``exc`` (library errors carry their reason; others are 500)."""
    reason: str
    extra: dict[str, object] = {}
    if isinstance(exc, ProblemError):
        reason = exc.reason.value
        if exc.errors:
            extra["errors"] = exc.errors
    elif isinstance(exc, AuthenticationFailed):
        reason = exc.reason.value
        if exc.retry_after is not None:
            extra["retry_after"] = math.ceil(exc.retry_after)
        if exc.remaining_attempts is not None:
            extra["remaining_attempts"] = exc.remaining_attempts
    elif isinstance(exc, MalformedInput):
        reason = exc.reason.value  # malformed_code/_response, method_not_offered, ...
        if exc.field:
            extra["field"] = exc.field
    elif isinstance(exc, DeliveryError):
        reason = Reason.DELIVERY_FAILED.value
    elif isinstance(exc, ConfigurationError):
        # A request that names something the configuration lacks (a method, a destination kind).
        reason = WebReason.METHOD_NOT_OFFERED.value
    elif isinstance(exc, StoreError | MacnssAuthError):
        reason = WebReason.UNAVAILABLE.value
    else:
        reason = WebReason.INTERNAL_ERROR.value
    status = _STATUS.get(reason, 500)
    title = _TITLES.get(reason, "Error")
    if isinstance(exc, ProblemError):
        status = exc.status or status
        title = exc.title or title
    if reason == WebReason.INTERNAL_ERROR.value:
        # RFC 9457 §4.2: "about:blank" with the status phrase; nothing about the bug.
        return {"type": "about:blank", "title": _TITLES[reason], "status": status}
    return {
        "type": PROBLEM_TYPE_PREFIX + reason,
        "title": title,
        "status": status,
        "reason": reason,
        **extra,
    }


def _causes(exc: BaseException) -> list[str]:
    """The type names of the exceptions ``exc`` wraps, nearest first."""
    names: list[str] = []
    seen = {id(exc)}
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen and len(names) < 10:
        seen.add(id(cause))
        names.append(type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return names


def problem_response(exc: BaseException) -> JSONResponse:
    """An ``application/problem+json`` response for ``exc``."""
    body = problem_for(exc)
    status = int(str(body["status"]))
    if status == 500:
        _log.error("unexpected error in a request", exc_info=exc)
    elif status == 503:
        # Infrastructure (store, delivery): operators need the cause, clients do not. The
        # library's own exception in full, but of what it wraps only the types: a foreign
        # exception (a delivery channel's) may quote the message it failed to send, code
        # and phone number included, which the library took care to leave out.
        _log.warning(
            "request failed: %s (caused by: %s)\n%s",
            type(exc).__name__,
            ", ".join(_causes(exc)) or "-",
            "".join(traceback.format_exception(exc, chain=False)).rstrip(),
        )
    headers = {"Cache-Control": "no-store"}
    if isinstance(exc, VerificationThrottled) and exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)

"""What to tell a person after a failure: in their language, about what they did.

A failure has a stable :class:`~macnss_auth.errors.Reason`; the words shown
depend on the reason *and* on the method. "The code is not valid" is right
after a mistyped SMS code and wrong after a card reading (nothing was typed)
or a passkey prompt, so each reason has a text per kind of method:

* ``card``: the eID card (``eid``), read by a phone or a kiosk;
* ``code``: a typed code (``totp``, ``hotp``, ``sms``, ``email``, ``recovery``);
* ``passkey``: a passkey or security key (``passkey``, ``webauthn``);
* ``other``: any other method a service plugs in (neutral wording).

The texts never say more than the reason does (a wrong code and an unknown
account read alike where the method already hides the difference), never
repeat the input, and give the waiting time from ``retry_after``. The texts
themselves live in the gettext catalogs (:mod:`macnss_auth.catalogs`): the
tables below hold the English source and where each sentence is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from macnss_auth.catalogs import N_, available_languages, pgettext
from macnss_auth.errors import (
    AuthenticationFailed,
    MacnssAuthError,
    MalformedInput,
    Reason,
    UnsupportedLanguage,
)

__all__ = [
    "MESSAGE_LANGUAGES",
    "METHOD_KINDS",
    "check_language",
    "failure_text",
    "method_kind",
]

#: Languages every failure text exists in: those with a shipped catalog.
MESSAGE_LANGUAGES = available_languages()

#: The kind of each standard method; other methods are ``"other"``.
METHOD_KINDS: Mapping[str, str] = {
    "eid": "card",
    "totp": "code",
    "hotp": "code",
    "sms": "code",
    "email": "code",
    "recovery": "code",
    "passkey": "passkey",
    "webauthn": "passkey",
}

# kind ("*" for all) -> the English text, marked for the catalogs (macnss_auth.catalogs).
_Texts = Mapping[str, tuple[str, str]]

_WAIT: _Texts = {
    "*": N_("failure:wait:*", "Too many attempts. Try again in {minutes} min."),
}
_OVER: _Texts = {
    "card": N_(
        "failure:over:card",
        "This sign-in attempt is over. Start again and hold your card to the reader.",
    ),
    "code": N_(
        "failure:over:code", "This code has expired or was already used. Ask for a new code."
    ),
    "*": N_("failure:over:*", "This sign-in attempt is over. Please start again."),
}
_TEXTS: Mapping[Reason, _Texts] = {
    Reason.INVALID_CODE: {
        "code": N_(
            "failure:invalid_code:code", "The code is not valid. Check it and type it again."
        ),
        "passkey": N_(
            "failure:invalid_code:passkey",
            "The passkey was not accepted. Try again or use another way.",
        ),
        "card": N_(
            "failure:invalid_code:card", "The card reading was not accepted. Read the card again."
        ),
    },
    Reason.REPLAYED: {
        "code": N_("failure:replayed:code", "This code was already used. Wait for the next one."),
        "card": N_(
            "failure:replayed:card", "This card reading was already used. Read the card again."
        ),
        "passkey": N_(
            "failure:replayed:passkey", "This passkey answer was already used. Try again."
        ),
    },
    Reason.MALFORMED_CODE: {
        "*": N_("failure:malformed_code:*", "A code has only digits. Check it and type it again."),
    },
    Reason.MALFORMED_RESPONSE: {
        "card": N_(
            "failure:malformed_response:card",
            "The card reading could not be understood. Read the card again.",
        ),
        "*": N_(
            "failure:malformed_response:*", "The answer could not be understood. Please try again."
        ),
    },
    Reason.THROTTLED: _WAIT,
    Reason.LOCKED_OUT: _WAIT,
    Reason.RATE_LIMITED: _WAIT,
    Reason.CHALLENGE_NOT_FOUND: _OVER,
    Reason.CHALLENGE_EXPIRED: _OVER,
    Reason.CHALLENGE_USED: _OVER,
    Reason.ATTEMPTS_EXHAUSTED: _OVER,
    Reason.NOT_ENROLLED: {
        "*": N_(
            "failure:not_enrolled:*",
            "This way of signing in is not set up for you. Choose another way.",
        ),
    },
    Reason.ACCESS_DENIED: {
        "card": N_(
            "failure:access_denied:card",
            "The card refused the number. Check the number printed on the card.",
        ),
        "*": N_("failure:access_denied:*", "Access denied."),
    },
    Reason.DOCUMENT_NOT_GENUINE: {
        "*": N_(
            "failure:document_not_genuine:*",
            "The card could not be verified. Read it again or use another way.",
        ),
    },
    Reason.DOCUMENT_MISMATCH: {
        "*": N_(
            "failure:document_mismatch:*", "This card does not belong to the person signing in."
        ),
    },
    Reason.DELIVERY_FAILED: {
        "*": N_(
            "failure:delivery_failed:*",
            "The code could not be sent. Try again later or use another way.",
        ),
    },
    Reason.METHOD_NOT_OFFERED: {
        "*": N_(
            "failure:method_not_offered:*",
            "This way of signing in is not available. Choose another way.",
        ),
    },
    Reason.UNSUPPORTED_LANGUAGE: {
        "*": N_("failure:unsupported_language:*", "This language is not available."),
    },
    # Passkeys: only a passkey ceremony gives these reasons.
    Reason.ORIGIN_MISMATCH: {
        "*": N_(
            "failure:origin_mismatch:*",
            "The passkey was used on another site. Open this service's own page and try again.",
        ),
    },
    Reason.RP_ID_MISMATCH: {
        "*": N_(
            "failure:rp_id_mismatch:*",
            "This passkey belongs to another site. Use the passkey made for this service.",
        ),
    },
    Reason.CHALLENGE_MISMATCH: {
        "*": N_(
            "failure:challenge_mismatch:*",
            "The passkey answered another sign-in attempt. Please start again.",
        ),
    },
    Reason.UNKNOWN_CREDENTIAL: {
        "*": N_(
            "failure:unknown_credential:*",
            "This passkey is not (or no longer) registered. Use another way.",
        ),
    },
    Reason.INVALID_SIGNATURE: {
        "*": N_(
            "failure:invalid_signature:*",
            "The passkey's signature is not valid. Try again or use another way.",
        ),
    },
    Reason.USER_NOT_PRESENT: {
        "*": N_(
            "failure:user_not_present:*",
            "Your device did not confirm that you were there. Try again.",
        ),
    },
    Reason.USER_NOT_VERIFIED: {
        "*": N_(
            "failure:user_not_verified:*",
            "Your device did not check your fingerprint, face or screen lock. Try again.",
        ),
    },
    Reason.SIGN_COUNT_REGRESSED: {
        "*": N_(
            "failure:sign_count_regressed:*",
            "This passkey may have been copied, so it was refused. Use another way and contact us.",
        ),
    },
    Reason.BACKUP_STATE_INVALID: {
        "*": N_(
            "failure:backup_state_invalid:*",
            "Your device answered in a way that is not possible. Use another way.",
        ),
    },
    Reason.ATTESTATION_UNTRUSTED: {
        "*": N_(
            "failure:attestation_untrusted:*",
            "This kind of device is not accepted for passkeys here. Use another device.",
        ),
    },
    Reason.CREDENTIAL_EXISTS: {
        "*": N_("failure:credential_exists:*", "This passkey is already registered."),
    },
    Reason.CREDENTIAL_LIMIT: {
        "*": N_(
            "failure:credential_limit:*", "You have the most passkeys allowed. Remove one first."
        ),
    },
}
_GENERIC = N_("failure:generic", "That did not work. Please try again or use another way.")


def method_kind(method: str | None) -> str:
    """``"card"``, ``"code"``, ``"passkey"`` or ``"other"`` for ``method``."""
    return METHOD_KINDS.get(method or "", "other")


def check_language(language: object) -> str:
    """``language`` if failure texts exist in it.

    Raises:
        UnsupportedLanguage: any other value (a client's choice, never a setup error).
    """
    if not isinstance(language, str) or language not in MESSAGE_LANGUAGES:
        raise UnsupportedLanguage(language, supported=MESSAGE_LANGUAGES)
    return language


def failure_text(failure: BaseException, *, language: str = "fr", method: str | None = None) -> str:
    """The sentence to show a person for ``failure``.

    Args:
        failure: what :meth:`~macnss_auth.policy.Policy.begin` or
            :meth:`~macnss_auth.policy.Policy.verify` raised (any exception:
            unexpected ones get the neutral text).
        language: ``"ar"``, ``"fr"`` or ``"en"``.
        method: the method the person used; by default the failure's own
            ``method`` (which :class:`~macnss_auth.policy.Policy` fills in).

    Raises:
        UnsupportedLanguage: no texts in ``language``.
    """
    language = check_language(language)
    reason: Reason | None = None
    if isinstance(failure, AuthenticationFailed):
        reason = failure.reason
        method = method or failure.method
    elif isinstance(failure, MalformedInput):
        reason = failure.reason
    texts = _TEXTS.get(reason) if reason is not None else None
    if texts is None or not isinstance(failure, MacnssAuthError):
        return pgettext(language, _GENERIC)
    marked = texts.get(method_kind(method)) or texts.get("*") or _GENERIC
    retry_after = failure.retry_after if isinstance(failure, AuthenticationFailed) else None
    minutes = max(1, math.ceil((retry_after or 0.0) / 60))
    return pgettext(language, marked).format(minutes=minutes)

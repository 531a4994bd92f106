"""The login page's words in Arabic, French and English.

The words live in the gettext catalogs (:mod:`macnss_auth.catalogs`), one
per language, every message translated in each (a test checks it); this module
holds the English source and builds one table per shipped language. Arabic is
written right to left: the page sets ``dir="rtl"`` and its style sheet uses
logical properties only (``margin-inline-start``...), so the layout mirrors
by itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from macnss_auth.catalogs import N_, available_languages, direction, language_name, pgettext

__all__ = ["DIRECTIONS", "LANGUAGES", "MESSAGES", "pick_language"]

LANGUAGES = available_languages()
DIRECTIONS: Mapping[str, str] = {code: direction(code) for code in LANGUAGES}
NAMES: Mapping[str, str] = {code: language_name(code) for code in LANGUAGES}

# The page's words: key -> the English text, marked for the catalogs.
_SOURCE: Mapping[str, tuple[str, str]] = {
    "title": N_("web:title", "Sign in"),
    "service": N_("web:service", "Sign in to your account"),
    "language": N_("web:language", "Language"),
    "subject": N_("web:subject", "Your identifier"),
    "subject_help": N_(
        "web:subject_help", "The identifier the service gave you (for example your member number)."
    ),
    "have": N_("web:have", "What do you have with you?"),
    "have_help": N_(
        "web:have_help", "Tick everything you have. We will offer the ways that work for you."
    ),
    "have_nfc": N_("web:have_nfc", "A phone with NFC and my ID card"),
    "have_app": N_("web:have_app", "A smartphone with an authenticator app"),
    "have_sms": N_("web:have_sms", "A mobile phone that receives SMS"),
    "have_email": N_("web:have_email", "Access to my e-mail"),
    "continue": N_("web:continue", "Continue"),
    "choose": N_("web:choose", "Choose how to sign in"),
    "no_methods": N_(
        "web:no_methods", "No way to sign in matches what you have. Try ticking more options."
    ),
    "no_nfc": N_("web:no_nfc", "No NFC phone? Here are other ways"),
    "no_nfc_help": N_("web:no_nfc_help", "You never need an NFC phone: any of these works too."),
    "method_eid": N_("web:method_eid", "ID card on an NFC phone"),
    "method_totp": N_("web:method_totp", "Code from an authenticator app"),
    "method_hotp": N_("web:method_hotp", "Code from a hardware token"),
    "method_sms": N_("web:method_sms", "Code by SMS"),
    "method_email": N_("web:method_email", "Code by e-mail"),
    "method_recovery": N_("web:method_recovery", "Recovery code"),
    "level_low": N_("web:level_low", "basic assurance"),
    "level_substantial": N_("web:level_substantial", "substantial assurance"),
    "level_high": N_("web:level_high", "high assurance"),
    "code": N_("web:code", "Code"),
    "code_help_totp": N_(
        "web:code_help_totp", "Open your authenticator app and type the 6-digit code it shows."
    ),
    "code_help_hotp": N_(
        "web:code_help_hotp", "Press your token's button and type the code it shows."
    ),
    "code_help_sms": N_(
        "web:code_help_sms", "We sent a code by SMS to {hint}. It is valid for a few minutes."
    ),
    "code_help_email": N_(
        "web:code_help_email", "We sent a code by e-mail to {hint}. It is valid for a few minutes."
    ),
    "code_help_recovery": N_(
        "web:code_help_recovery", "Type one of the recovery codes you saved. Each works once."
    ),
    "verify": N_("web:verify", "Sign in"),
    "other_way": N_("web:other_way", "Use another way"),
    "eid_help": N_(
        "web:eid_help",
        "Open the app on your NFC phone, choose ‘Sign in with my ID card’ and "
        "hold the card against the back of the phone. This code links the app to this page:",
    ),
    "eid_waiting": N_("web:eid_waiting", "When the app says it is done, press Continue."),
    "success": N_("web:success", "You are signed in"),
    "success_as": N_("web:success_as", "Signed in as {subject} ({level})."),
    "to_service": N_("web:to_service", "Continue to the service"),
    "account": N_("web:account", "Your sign-in methods"),
    "add_totp": N_("web:add_totp", "Add an authenticator app"),
    "scan": N_(
        "web:scan", "Scan this QR code with your authenticator app, then type the code it shows."
    ),
    "manual_key": N_("web:manual_key", "Or type this key into the app:"),
    "confirm": N_("web:confirm", "Confirm"),
    "totp_added": N_(
        "web:totp_added", "Your authenticator app is ready. Next time you can sign in with it."
    ),
    "sign_out": N_("web:sign_out", "Sign out"),
    "start_again": N_("web:start_again", "Start again"),
    "session_expired": N_("web:session_expired", "Your session has expired. Please sign in again."),
    "error_invalid_code": N_("web:error_invalid_code", "That code is not right. {remaining}"),
    "error_remaining": N_("web:error_remaining", "Attempts left: {count}."),
    "error_malformed_code": N_(
        "web:error_malformed_code", "A code has only digits. Please check and type it again."
    ),
    "error_replayed": N_(
        "web:error_replayed", "That code was already used. Wait for the next one."
    ),
    "error_throttled": N_(
        "web:error_throttled", "Too many attempts. Try again in {seconds} seconds."
    ),
    "error_locked_out": N_(
        "web:error_locked_out",
        "Too many attempts: signing in is blocked for {minutes} minutes. "
        "You can use another way below.",
    ),
    "error_rate_limited": N_(
        "web:error_rate_limited", "Too many codes were requested. Try again in {minutes} minutes."
    ),
    "error_challenge_expired": N_(
        "web:error_challenge_expired", "The code has expired. Ask for a new one."
    ),
    "error_challenge_used": N_(
        "web:error_challenge_used", "This sign-in attempt is over. Please start again."
    ),
    "error_attempts_exhausted": N_(
        "web:error_attempts_exhausted", "Too many wrong codes for this attempt. Ask for a new code."
    ),
    "error_challenge_not_found": N_(
        "web:error_challenge_not_found", "This sign-in attempt is over. Please start again."
    ),
    "error_generic": N_(
        "web:error_generic", "That did not work. Please try again or use another way."
    ),
    "error_form": N_("web:error_form", "The form expired. Please try again."),
    "error_sign_out": N_(
        "web:error_sign_out",
        "You are signed out on this device, but the server could not confirm it: "
        "your session ends by itself within {minutes} minutes.",
    ),
    "error_subject": N_("web:error_subject", "Please type your identifier."),
    "have_passkey": N_(
        "web:have_passkey", "A phone or computer with a passkey (fingerprint, face or screen lock)"
    ),
    "method_passkey": N_("web:method_passkey", "Passkey on this device"),
    "add_passkey": N_("web:add_passkey", "Add a passkey on this device"),
    "passkey_help": N_(
        "web:passkey_help",
        "Your device asks for your fingerprint, face or screen lock. "
        "Nothing is sent but a signature.",
    ),
    "passkey_use": N_("web:passkey_use", "Use my passkey"),
    "passkey_again": N_("web:passkey_again", "Try the passkey again"),
    "passkey_no_identifier": N_(
        "web:passkey_no_identifier", "Sign in with a passkey, without typing an identifier"
    ),
    "passkey_no_identifier_help": N_(
        "web:passkey_no_identifier_help",
        "Your device shows the passkeys it holds for this service: choose yours.",
    ),
    "device_name": N_("web:device_name", "Name of this device (for example: my phone)"),
    "passkey_create_help": N_(
        "web:passkey_create_help",
        "Your device asks for your fingerprint, face or screen lock, then creates a passkey "
        "for this service. Your fingerprint and face never leave the device.",
    ),
    "passkey_create": N_("web:passkey_create", "Create the passkey"),
    "passkey_added": N_(
        "web:passkey_added",
        "Your passkey is ready. Next time you can sign in with it, "
        "even without typing your identifier.",
    ),
    "passkeys_yours": N_("web:passkeys_yours", "Your passkeys"),
    # The standalone /passkey page (web/passkey.py), the browser side of the JSON API.
    "passkey_page_title": N_("web:passkey_page_title", "Passkeys"),
    "passkey_page_add_help": N_(
        "web:passkey_page_add_help",
        "After signing in by another method (ID card, app, code): paste the sign-in "
        "assertion, or leave it empty to use this browser's session.",
    ),
    "passkey_page_assertion": N_("web:passkey_page_assertion", "Sign-in assertion (optional)"),
    "passkey_page_result": N_("web:passkey_page_result", "Result"),
    "passkey_item": N_("web:passkey_item", "{name} (added on {date})"),
    "passkey_unnamed": N_("web:passkey_unnamed", "Passkey without a name"),
    "passkey_remove": N_("web:passkey_remove", "Remove"),
    "passkey_removed": N_(
        "web:passkey_removed", "The passkey was removed: it can no longer be used to sign in."
    ),
    "error_passkey_cancelled": N_(
        "web:error_passkey_cancelled",
        "Your device gave no answer (cancelled or too slow). Try again or use another way.",
    ),
    "error_credential_limit": N_(
        "web:error_credential_limit",
        "You already have as many passkeys as allowed. Remove one first.",
    ),
    "error_credential_exists": N_(
        "web:error_credential_exists", "This device already holds a passkey for your account."
    ),
    "error_unknown_credential": N_(
        "web:error_unknown_credential",
        "This passkey is not (or no longer) registered. Please use another way.",
    ),
    "error_user_not_verified": N_(
        "web:error_user_not_verified",
        "Your device did not check your fingerprint, face or screen lock.",
    ),
    "error_sign_count_regressed": N_(
        "web:error_sign_count_regressed",
        "This passkey may have been copied; it was refused. Please use another way and contact us.",
    ),
}

MESSAGES: Mapping[str, Mapping[str, str]] = {
    code: {key: pgettext(code, marked) for key, marked in _SOURCE.items()} for code in LANGUAGES
}


def pick_language(requested: str | None, cookie: str | None, accept: str | None) -> str:
    """The page's language: an explicit choice, then the cookie, then Accept-Language, then fr."""
    for candidate in (requested, cookie):
        if candidate in LANGUAGES:
            return candidate
    for part in (accept or "").split(","):
        # The primary subtag, whatever its length ("zgh-Tfng" -> "zgh", "fr_FR" -> "fr").
        tag = part.split(";")[0].strip().lower().replace("_", "-").split("-")[0]
        if tag in LANGUAGES:
            return tag
    return "fr"

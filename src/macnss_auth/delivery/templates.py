"""Code messages in every shipped language (Arabic, French, English), for SMS and e-mail.

The words live in the gettext catalogs (:mod:`macnss_auth.catalogs`); this
module holds their English source and fills in the values.

Each message gives the code, its lifetime, the service name and a warning
never to share the code (most account take-overs by SMS code are a phone call
from a fake "agent" asking for it).

**Right-to-left text.** In an Arabic sentence a run of digits is laid out by
the Unicode bidirectional algorithm (UAX #9) together with its neighbours:
``123456`` next to punctuation or a Latin service name can come out
reordered or glued to the wrong word. The code is therefore wrapped in a
LEFT-TO-RIGHT ISOLATE (U+2066) ... POP DIRECTIONAL ISOLATE (U+2069) pair, and
the service name, whose direction is unknown, in FIRST STRONG ISOLATE
(U+2068) ... U+2069. The code does this for every language whose catalog
says it is written right to left, so translators never type invisible
characters. Isolates cost two UTF-16 units each; Arabic text is
UCS-2 anyway (see :mod:`macnss_auth.delivery.segments`).

French and English SMS texts stay inside the GSM-7 alphabet (no ``ç``, ``ê``
or typographic quotes) so that they cost one segment; a test checks it.
"""

from __future__ import annotations

import math

import attrs

from macnss_auth.catalogs import N_, NP_, available_languages, direction, ngettext, pgettext
from macnss_auth.delivery.base import ChannelKind
from macnss_auth.errors import ConfigurationError

__all__ = [
    "FSI",
    "LANGUAGES",
    "LRI",
    "PDI",
    "RenderedMessage",
    "failure_message",
    "isolate_ltr",
    "render_code_message",
]

LRI = "\u2066"
FSI = "\u2068"
PDI = "\u2069"

#: The languages with a shipped catalog.
LANGUAGES = available_languages()


def isolate_ltr(text: str) -> str:
    """Wrap ``text`` in a left-to-right isolate, for digits inside Arabic."""
    return f"{LRI}{text}{PDI}"


def _isolate_auto(text: str) -> str:
    return f"{FSI}{text}{PDI}"


@attrs.frozen
class RenderedMessage:
    """A rendered message: the e-mail subject (empty for SMS) and the text."""

    subject: str
    text: str = attrs.field(repr=False)


def _minutes(lifetime: float) -> int:
    return max(1, math.ceil(lifetime / 60))


# The English source of every message, marked for the catalogs (macnss_auth.catalogs).
# TRANSLATORS: {n} is a number of minutes; in an SMS, keep it short.
_SMS_DURATION = NP_("sms duration", "{n} min", "{n} min")
_EMAIL_DURATION = NP_("email duration", "{n} minutes", "{n} minutes")
# TRANSLATORS: keep SMS texts in the GSM-7 alphabet where the language allows it (one segment).
_SMS = N_(
    "sms",
    "{code} is your {service} code. It expires in {duration}. "
    "Never share it with anyone, not even {service} staff.",
)
_SUBJECT = N_("email subject", "Your {service} code")
_EMAIL = N_(
    "email",
    "Your {service} verification code is:\n\n"
    "    {code}\n\n"
    "It expires in {duration} and works only once.\n\n"
    "Never share this code with anyone, not even {service} staff: "
    "we will never ask you for it.\n"
    "If you did not ask for a code, ignore this message.\n",
)
_FAILURE = N_("code failure", "The code is not valid or has expired. Ask for a new code.")


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ConfigurationError(f"no message templates for language {language!r}")


def _duration(language: str, marked: tuple[str, str, str], n: int) -> str:
    number = isolate_ltr(str(n)) if direction(language) == "rtl" else str(n)
    return ngettext(language, marked, n).format(n=number)


def render_code_message(
    kind: ChannelKind,
    *,
    code: str,
    lifetime: float,
    service: str,
    language: str = "fr",
    origin: str | None = None,
) -> RenderedMessage:
    """Render the message that carries ``code``.

    Args:
        kind: SMS (short text) or e-mail (subject and body).
        code: the one-time code.
        lifetime: seconds the code stays valid (shown rounded up to minutes).
        service: the service name people know.
        language: a shipped catalog's code (``"ar"``, ``"fr"``, ``"en"``...).
        origin: a web domain to add a WebOTP line (``@domain #code``) to SMS,
            so browsers autofill the code only on that site.

    Raises:
        ConfigurationError: unknown language.
    """
    _check_language(language)
    n = _minutes(lifetime)
    rtl = direction(language) == "rtl"
    values = {
        "code": isolate_ltr(code) if rtl else code,
        "service": _isolate_auto(service) if rtl else service,
    }
    if kind is ChannelKind.SMS:
        duration = _duration(language, _SMS_DURATION, n)
        text = pgettext(language, _SMS).format(duration=duration, **values)
        if origin:
            text += f"\n\n@{origin} #{code}"
        return RenderedMessage(subject="", text=text)
    duration = _duration(language, _EMAIL_DURATION, n)
    return RenderedMessage(
        subject=pgettext(language, _SUBJECT).format(**values),
        text=pgettext(language, _EMAIL).format(duration=duration, **values),
    )


def failure_message(language: str = "fr") -> str:
    """The one message to show a person for every failed code, whatever the reason.

    Raises:
        ConfigurationError: unknown language.
    """
    _check_language(language)
    return pgettext(language, _FAILURE)

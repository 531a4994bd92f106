"""Code messages in Arabic, French and English, for SMS and e-mail.

Each message gives the code, its lifetime, the service name and a warning
never to share the code (most account take-overs by SMS code are a phone call
from a fake "agent" asking for it).

**Right-to-left text.** In an Arabic sentence a run of digits is laid out by
the Unicode bidirectional algorithm (UAX #9) together with its neighbours:
``123456`` next to punctuation or a Latin service name can come out
reordered or glued to the wrong word. The code is therefore wrapped in a
LEFT-TO-RIGHT ISOLATE (U+2066) ... POP DIRECTIONAL ISOLATE (U+2069) pair, and
the service name, whose direction is unknown, in FIRST STRONG ISOLATE
(U+2068) ... U+2069. Isolates cost two UTF-16 units each; Arabic text is
UCS-2 anyway (see :mod:`macnss_auth.delivery.segments`).

French and English SMS texts stay inside the GSM-7 alphabet (no ``ç``, ``ê``
or typographic quotes) so that they cost one segment; a test checks it.
"""

from __future__ import annotations

import math

import attrs

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

LANGUAGES = ("ar", "fr", "en")


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


def _arabic_minutes(n: int) -> str:
    # Arabic counts nouns by number: singular, dual, plural for 3-10,
    # singular accusative from 11 up.
    if n == 1:
        return "دقيقة واحدة"
    if n == 2:
        return "دقيقتين"
    if n <= 10:
        return f"{isolate_ltr(str(n))} دقائق"
    return f"{isolate_ltr(str(n))} دقيقة"


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ConfigurationError(f"no message templates for language {language!r}")


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
        language: ``"ar"``, ``"fr"`` or ``"en"``.
        origin: a web domain to add a WebOTP line (``@domain #code``) to SMS,
            so browsers autofill the code only on that site.

    Raises:
        ConfigurationError: unknown language.
    """
    _check_language(language)
    n = _minutes(lifetime)
    if kind is ChannelKind.SMS:
        text = _sms(language, code, n, service)
        if origin:
            text += f"\n\n@{origin} #{code}"
        return RenderedMessage(subject="", text=text)
    return RenderedMessage(
        subject=_subject(language, service), text=_email(language, code, n, service)
    )


def _sms(language: str, code: str, n: int, service: str) -> str:
    if language == "en":
        return (
            f"{code} is your {service} code. It expires in {n} min. "
            f"Never share it with anyone, not even {service} staff."
        )
    if language == "fr":
        return (
            f"{code} est votre code {service}. Il expire dans {n} min. "
            f"Ne le donnez jamais à personne, y compris à un agent {service}."
        )
    svc = _isolate_auto(service)
    return (
        f"{isolate_ltr(code)} هو رمز {svc} الخاص بك، صالح لمدة {_arabic_minutes(n)}. "
        f"لا تشاركه مع أي أحد ولو كان موظفا في {svc}."
    )


def _subject(language: str, service: str) -> str:
    if language == "en":
        return f"Your {service} code"
    if language == "fr":
        return f"Votre code {service}"
    return f"رمز التحقق الخاص بـ {_isolate_auto(service)}"


def _email(language: str, code: str, n: int, service: str) -> str:
    if language == "en":
        return (
            f"Your {service} verification code is:\n\n"
            f"    {code}\n\n"
            f"It expires in {n} minutes and works only once.\n\n"
            f"Never share this code with anyone, not even {service} staff: "
            f"we will never ask you for it.\n"
            f"If you did not ask for a code, ignore this message.\n"
        )
    if language == "fr":
        return (
            f"Votre code de vérification {service} est :\n\n"
            f"    {code}\n\n"
            f"Il expire dans {n} minutes et ne sert qu'une fois.\n\n"
            f"Ne communiquez jamais ce code à personne, même pas à un agent {service} : "
            f"nous ne vous le demanderons jamais.\n"
            f"Si vous n'avez pas demandé de code, ignorez ce message.\n"
        )
    svc = _isolate_auto(service)
    return (
        f"رمز التحقق الخاص بك في {svc} هو:\n\n"
        f"    {isolate_ltr(code)}\n\n"
        f"تنتهي صلاحيته بعد {_arabic_minutes(n)} ولا يُستعمل إلا مرة واحدة.\n\n"
        f"لا تشارك هذا الرمز مع أي أحد، ولو كان موظفا في {svc}: لن نطلبه منك أبدا.\n"
        f"إذا لم تطلب رمزا، فتجاهل هذه الرسالة.\n"
    )


_FAILURE = {
    "en": "The code is not valid or has expired. Ask for a new code.",
    "fr": "Le code est invalide ou a expiré. Demandez un nouveau code.",
    "ar": "الرمز غير صالح أو انتهت صلاحيته. اطلب رمزا جديدا.",
}


def failure_message(language: str = "fr") -> str:
    """The one message to show a person for every failed code, whatever the reason.

    Raises:
        ConfigurationError: unknown language.
    """
    _check_language(language)
    return _FAILURE[language]

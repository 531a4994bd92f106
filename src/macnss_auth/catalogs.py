"""Every sentence shown to a person, in gettext catalogs: one per language.

Theory of operation. The English text is written in the source, wrapped in
the markers :func:`N_` (one sentence) or :func:`NP_` (a sentence that
depends on a number), each with a *context* naming where it is used
(``"web:title"``, ``"failure:replayed:card"``, ``"sms"``...). The markers
only return what they are given; Babel's extractor reads them to build the
template ``locale/macnss_auth.pot``, and each language has
``locale/<code>/LC_MESSAGES/macnss_auth.po`` (what translators edit) and its
compiled ``.mo`` (what runs). At run time only the standard library's
:mod:`gettext` reads the ``.mo`` files, so Babel is a development tool, never
a dependency of people who install the library.

A language is available when its catalog is shipped: adding Tamazight is
adding ``locale/zgh/LC_MESSAGES/macnss_auth.po`` and compiling it (see
``docs/languages.md``). Each catalog also says its own name (context
``language``, ``"English"``) and its writing direction (context
``language``, ``"ltr"``), so pages and messages lay it out without a table in
the code.
"""

from __future__ import annotations

import functools
import gettext
from pathlib import Path

from macnss_auth.errors import UnsupportedLanguage

__all__ = [
    "DOMAIN",
    "LOCALE_DIR",
    "NP_",
    "N_",
    "available_languages",
    "direction",
    "language_name",
    "ngettext",
    "pgettext",
]

#: The gettext domain: the catalogs' file name.
DOMAIN = "macnss_auth"
#: Where the catalogs ship, inside the package (hatchling packages them with the code).
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

# The service's own order (Arabic first), then any other shipped catalog by code.
_PREFERRED = ("ar", "fr", "en")


def N_(context: str, message: str) -> tuple[str, str]:  # noqa: N802 (the gettext marker name)
    """Mark ``message`` for translation under ``context`` (extracted by Babel)."""
    return (context, message)


def NP_(  # noqa: N802 (the gettext marker name)
    context: str, singular: str, plural: str
) -> tuple[str, str, str]:
    """Mark a number-dependent message for translation (extracted by Babel)."""
    return (context, singular, plural)


@functools.cache
def available_languages() -> tuple[str, ...]:
    """The language codes with a compiled catalog, Arabic, French and English first."""
    found = {
        path.parent.parent.name
        for path in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo")
        if path.is_file()
    }
    first = tuple(code for code in _PREFERRED if code in found)
    return first + tuple(sorted(found - set(first)))


@functools.cache
def _translation(language: str) -> gettext.GNUTranslations:
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    with path.open("rb") as file:
        return gettext.GNUTranslations(file)


def _catalog(language: str) -> gettext.GNUTranslations:
    if language not in available_languages():
        raise UnsupportedLanguage(language, supported=available_languages())
    return _translation(language)


def pgettext(language: str, marked: tuple[str, str]) -> str:
    """The text of a :func:`N_`-marked message in ``language``.

    Raises:
        UnsupportedLanguage: no catalog for ``language``.
    """
    context, message = marked
    return _catalog(language).pgettext(context, message)


def ngettext(language: str, marked: tuple[str, str, str], n: int) -> str:
    """The form of a :func:`NP_`-marked message for the number ``n``, in ``language``.

    Raises:
        UnsupportedLanguage: no catalog for ``language``.
    """
    context, singular, plural = marked
    return _catalog(language).npgettext(context, singular, plural, n)


# TRANSLATORS: the language's own name, as shown in a language menu ("Français").
_NAME = N_("language", "English")
# TRANSLATORS: the writing direction: "ltr" (left to right) or "rtl" (right to left).
_DIRECTION = N_("language", "ltr")


def language_name(language: str) -> str:
    """The language's own name (``"العربية"`` for ``"ar"``).

    Raises:
        UnsupportedLanguage: no catalog for ``language``.
    """
    return pgettext(language, _NAME)


def direction(language: str) -> str:
    """``"rtl"`` or ``"ltr"``, as the catalog declares.

    Raises:
        UnsupportedLanguage: no catalog for ``language``.
    """
    return "rtl" if pgettext(language, _DIRECTION) == "rtl" else "ltr"

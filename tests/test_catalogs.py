"""The gettext catalogs: complete in every shipped language, in step with the code, reproducible.

Babel (a development tool) reads the source the way ``make catalogs`` does and
compiles each ``.po`` in memory; the runtime only ever reads the committed
``.mo`` files through the standard library.
"""

from __future__ import annotations

import io
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from macnss_auth import catalogs
from macnss_auth.catalogs import DOMAIN, LOCALE_DIR, available_languages

PACKAGE = LOCALE_DIR.parent
# The same keywords as `make catalogs` (pybabel extract -k N_:1c,2 -k NP_:1c,2,3).
KEYWORDS = {"N_": ((1, "c"), 2), "NP_": ((1, "c"), 2, 3)}
SHIPPED = ("ar", "fr", "en")


def _po(language: str) -> Catalog:
    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as file:
        return read_po(file, locale=language)


def _key(message: Message) -> tuple[str | None, object]:
    return (message.context, message.id)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _source_messages() -> dict[tuple[str | None, object], tuple[str, ...]]:
    found: dict[tuple[str | None, object], tuple[str, ...]] = {}
    for _file, _line, message, _comments, context in extract_from_dir(
        PACKAGE, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)
    ):
        msgid = message if isinstance(message, str) else message[0]
        key = (context, msgid if isinstance(message, str) else tuple(message))
        found[key] = (message,) if isinstance(message, str) else tuple(message)
    return found


def test_the_shipped_languages_are_those_with_a_catalog() -> None:
    assert available_languages() == SHIPPED
    for language in SHIPPED:
        assert (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file()
    assert catalogs.direction("ar") == "rtl"
    assert catalogs.direction("fr") == catalogs.direction("en") == "ltr"
    assert catalogs.language_name("fr") == "Français"


def test_the_template_and_every_catalog_hold_exactly_the_messages_in_the_code() -> None:
    source = {(context, msgid) for context, msgid in _source_messages()}
    assert len(source) > 100  # the web page, failures, code messages and kiosk prompts
    with (LOCALE_DIR / f"{DOMAIN}.pot").open("rb") as file:
        template = {_key(m) for m in read_po(file) if m.id}
    assert template == source, "run `make catalogs`"
    for language in SHIPPED:
        assert {_key(m) for m in _po(language) if m.id} == source, language
        assert not _po(language).obsolete, language


@pytest.mark.parametrize("language", SHIPPED)
def test_every_message_is_translated_and_keeps_its_placeholders(language: str) -> None:
    catalog = _po(language)
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, (language, message.context)
        if isinstance(message.id, str):
            assert isinstance(message.string, str)
            assert message.string.strip(), (language, message.context, message.id)
            assert _fields(message.string) == _fields(message.id), (language, message.context)
            continue
        # A plural: one string per form of the language. A form may leave the number out
        # (Arabic says "two minutes" in one word) but never invents a placeholder.
        forms = message.string
        assert isinstance(forms, tuple)
        assert len(forms) == catalog.num_plurals, (language, message.context)
        allowed = _fields(message.id[0]) | _fields(message.id[1])
        for form in forms:
            assert form.strip(), (language, message.context)
            assert _fields(form) <= allowed, (language, message.context, form)
        assert any(_fields(form) == allowed for form in forms), (language, message.context)


@pytest.mark.parametrize("language", SHIPPED)
def test_the_committed_mo_is_the_compiled_po(language: str) -> None:
    """The .mo that runs is exactly `pybabel compile` of the .po that people review."""
    compiled = io.BytesIO()
    write_mo(compiled, _po(language), use_fuzzy=False)
    committed = (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo").read_bytes()
    assert compiled.getvalue() == committed, f"{language}: run `make catalogs`"


def test_arabic_counts_minutes_with_its_own_plural_forms() -> None:
    marked = catalogs.NP_("sms duration", "{n} min", "{n} min")
    assert catalogs.ngettext("ar", marked, 1) == "دقيقة واحدة"
    assert catalogs.ngettext("ar", marked, 2) == "دقيقتين"
    assert catalogs.ngettext("ar", marked, 5) == "{n} دقائق"
    assert catalogs.ngettext("ar", marked, 11) == "{n} دقيقة"
    assert catalogs.ngettext("en", marked, 1) == "{n} min"


def test_adding_a_language_is_adding_a_catalog(tmp_path: Path) -> None:
    """docs/languages.md: a Tamazight catalog, compiled, and every layer speaks it."""
    package = tmp_path / "macnss_auth"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    catalog = _po("en")
    catalog.locale = None  # Babel has no Tamazight plural rule: keep the English forms.
    for message in catalog:
        if message.context == "language" and message.id == "English":
            message.string = "ⵜⴰⵎⴰⵣⵉⵖⵜ"
        if message.context == "failure:generic":
            message.string = "ⵓⵔ ⵜⵜⵡⴰⵙⴽⴰⵔ. ⴰⵍⵙ ⵜⴰⵔⵎⵉⵜ."
    target = package / "locale" / "zgh" / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / f"{DOMAIN}.po").open("wb") as file:
        write_po(file, catalog)
    with (target / f"{DOMAIN}.mo").open("wb") as file:
        write_mo(file, catalog)
    script = (
        "from macnss_auth.failures import MESSAGE_LANGUAGES, failure_text\n"
        "from macnss_auth.web.i18n import NAMES, pick_language\n"
        "from macnss_auth.delivery import LANGUAGES\n"
        "print(MESSAGE_LANGUAGES, LANGUAGES == MESSAGE_LANGUAGES)\n"
        "print(NAMES['zgh'])\n"
        "print(failure_text(ValueError(), language='zgh'))\n"
        "print(pick_language(None, None, 'zgh-Tfng-MA, fr;q=0.8'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines() == [
        "('ar', 'fr', 'en', 'zgh') True",
        "ⵜⴰⵎⴰⵣⵉⵖⵜ",
        "ⵓⵔ ⵜⵜⵡⴰⵙⴽⴰⵔ. ⴰⵍⵙ ⵜⴰⵔⵎⵉⵜ.",
        "zgh",  # the login page picks it from Accept-Language (a three-letter primary subtag)
    ]

"""The standalone /passkey page in Arabic, French and English; the passkey routes after sign-out."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from macnss_auth.web.i18n import DIRECTIONS, LANGUAGES, MESSAGES
from tests.passkey.test_web import SUBJECT, csrf_of, first_login
from tests.passkey.web_service import PasskeyService

# The page's buttons (by id) and the catalogue entries they show.
BUTTONS = {"login": "passkey_use", "login-discoverable": "passkey_no_identifier",
           "register": "passkey_create"}  # fmt: skip
WORDS = ("passkey_page_title", "title", "subject", "add_passkey", "passkey_page_add_help",
         "passkey_page_assertion", "device_name", "passkey_page_result")  # fmt: skip


def shown(html: str, lang: str, key: str) -> bool:
    return str(escape(MESSAGES[lang][key])) in html


@pytest.mark.parametrize("lang", ["ar", "fr", "en"])
def test_the_page_speaks_each_language_of_the_login_page(client: TestClient, lang: str) -> None:
    page = client.get(f"/passkey?lang={lang}")
    assert page.status_code == 200
    text = page.text
    assert f'<html lang="{lang}" dir="{DIRECTIONS[lang]}">' in text
    assert DIRECTIONS["ar"] == "rtl"
    for button, key in BUTTONS.items():
        label = escape(MESSAGES[lang][key])
        assert f'<button id="{button}" type="button">{label}</button>' in text, button
    for key in WORDS:
        assert shown(text, lang, key), key
    # Nothing left over from another language (the old page was English only, with glosses).
    for other in set(LANGUAGES) - {lang}:
        assert not any(shown(text, other, key) for key in BUTTONS.values()), other
    assert page.headers["content-language"] == lang
    # The choice holds, as on the login page (and on it: one cookie for both).
    assert client.cookies.get("macnss_lang") == lang
    # Each language's page keeps its style block allowed by its hash, and nothing inline.
    policy = page.headers["content-security-policy"]
    (block,) = re.findall(r"<style>(.*?)</style>", text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}';" in policy
    assert "style=" not in text
    # The language menu stays on this page.
    for code in LANGUAGES:
        assert f'href="/passkey?lang={code}"' in text


def test_the_language_is_chosen_as_the_login_page_chooses_it(client: TestClient) -> None:
    def lang_of(**headers: str) -> str:
        found = re.search(r'<html lang="(\w+)"', client.get("/passkey", headers=headers).text)
        assert found is not None
        return found.group(1)

    assert lang_of() == "fr"  # the login page's default
    assert lang_of(**{"Accept-Language": "ar-MA,fr;q=0.8"}) == "ar"
    client.get("/login?lang=en")  # chosen on the login page...
    assert lang_of(**{"Accept-Language": "ar"}) == "en"  # ...holds here, over the browser's
    assert client.get("/passkey?lang=xx").status_code == 200  # an unknown one is ignored
    assert lang_of() == "en"


def test_a_signed_out_session_no_longer_authorizes_the_passkey_routes(
    service: PasskeyService, client: TestClient
) -> None:
    token = first_login(service, client)
    client.cookies.set("macnss_session", token)
    assert client.post("/v1/passkeys/registrations", json={}).status_code == 201
    copy = TestClient(service.app)
    copy.cookies.set("macnss_session", token)
    out = client.post("/logout", data={"csrf": csrf_of(client.get("/login?lang=en").text)},
                      follow_redirects=False)  # fmt: skip
    assert out.status_code == 303
    # The copy, as the cookie (with or without a subject) and as a bearer token.
    for body in ({}, {"subject": SUBJECT}):
        refused = copy.post("/v1/passkeys/registrations", json=body)
        assert (refused.status_code, refused.json()["reason"]) == (401, "unauthorized"), body
    bearer = {"Authorization": f"Bearer {token}"}
    calls: list[tuple[str, dict[str, object]]] = [
        ("/v1/passkeys/registrations", {"subject": SUBJECT}),
        ("/v1/passkeys/registrations/abc", {"subject": SUBJECT, "credential": {}}),
        ("/v1/passkeys/list", {"subject": SUBJECT}),
        ("/v1/passkeys/remove", {"subject": SUBJECT, "credential_id": "AAAA"}),
    ]
    for path, payload in calls:
        refused = copy.post(path, json=payload, headers=bearer)
        assert (refused.status_code, refused.json()["reason"]) == (401, "unauthorized"), path
    # The account page's passkey form answers as to an expired session.
    csrf = csrf_of(copy.get("/login?lang=en").text)
    page = copy.post("/account/passkey?lang=en", data={"csrf": csrf, "name": "phone"})
    assert page.status_code == 401
    assert MESSAGES["en"]["session_expired"] in page.text

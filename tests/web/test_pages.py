"""The login page without a browser: forms, CSRF, headers, catalogs."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from macnss_auth.web.i18n import LANGUAGES, MESSAGES, pick_language

from .helpers import AUDIENCE, PHONE, build


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="(\w+)"', html)
    assert match is not None
    return match.group(1)


def test_every_catalog_has_the_same_keys_and_placeholders() -> None:
    english = MESSAGES["en"]
    for lang in LANGUAGES:
        assert set(MESSAGES[lang]) == set(english), lang
        for key, text in MESSAGES[lang].items():
            assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", english[key]))


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected"),
    [("ar", None, "en", "ar"), (None, "en", "fr", "en"), (None, None, "ar-MA,fr;q=0.8", "ar"),
     ("xx", "yy", "de", "fr")],
)  # fmt: skip
def test_language_choice(query: str | None, cookie: str | None, accept: str, expected: str) -> None:
    assert pick_language(query, cookie, accept) == expected


def test_pages_have_no_script_and_strict_headers() -> None:
    client = TestClient(build().app)
    response = client.get("/login")
    assert response.status_code == 200
    assert "<script" not in response.text
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    css = client.get("/static/login.css")
    assert css.headers["content-type"].startswith("text/css")
    # Logical properties only, so that the right-to-left page mirrors.
    assert not re.search(
        r"(margin|padding|border)-(left|right)|text-align:\s*(left|right)", css.text
    )


def test_a_post_without_the_csrf_cookie_is_refused() -> None:
    service = build()
    enrolling = service.sms_auth.enroll("youssef", PHONE)
    service.sms_auth.confirm(enrolling, service.sms_code())
    stranger = TestClient(service.app)
    response = stranger.post("/login/begin", data={"csrf": "a" * 32, "subject": "youssef",
                                                    "method": "sms"})  # fmt: skip
    assert response.status_code == 403
    assert len(service.sms.messages) == 1  # only the enrollment's: no login code was sent


def test_a_full_login_by_plain_form_posts_hands_the_token_to_the_service() -> None:
    service = build(return_urls={AUDIENCE: AUDIENCE + "/signed-in"})
    enrolling = service.sms_auth.enroll("youssef", PHONE)
    service.sms_auth.confirm(enrolling, service.sms_code())
    client = TestClient(service.app)
    csrf = csrf_of(client.get(f"/login?lang=en&audience={AUDIENCE}&nonce=n1").text)
    common = {"csrf": csrf, "subject": "youssef", "audience": AUDIENCE, "nonce": "n1"}
    step = client.post("/login/begin", data={**common, "method": "sms"})
    assert service.sms.last().language == "en"  # the page's language
    challenge_id = re.search(r'name="challenge_id" value="(\w+)"', step.text)
    assert challenge_id is not None
    done = client.post("/login/verify", data={**common, "method": "sms", "code": service.sms_code(),
                                              "challenge_id": challenge_id.group(1)})  # fmt: skip
    assert done.status_code == 200
    assert f'action="{AUDIENCE}/signed-in"' in done.text
    token = re.search(r'name="assertion" value="([\w.-]+)"', done.text)
    assert token is not None
    claims = service.issuer.verify(token.group(1), audience=AUDIENCE, nonce="n1")
    assert claims["sub"] == "youssef"
    assert AUDIENCE + "/signed-in" in done.headers["content-security-policy"]
    session = done.cookies.get("macnss_session") or client.cookies.get("macnss_session")
    assert session
    assert "httponly" in done.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/account"), ("post", "/account/totp"), ("post", "/account/totp/confirm")],
)
def test_the_account_pages_need_a_session(method: str, path: str) -> None:
    client = TestClient(build().app)
    response = client.request(method, f"{path}?lang=en", data={"code": "123456"})
    assert response.status_code == 401
    assert MESSAGES["en"]["session_expired"] in response.text


def test_without_totp_its_account_forms_answer_as_to_an_expired_session() -> None:
    service = build(order=("sms",))
    enrolling = service.sms_auth.enroll("youssef", PHONE)
    service.sms_auth.confirm(enrolling, service.sms_code())
    client = TestClient(service.app)
    csrf = csrf_of(client.get("/login?lang=en").text)
    common = {"csrf": csrf, "subject": "youssef", "method": "sms", "audience": "", "nonce": ""}
    step = client.post("/login/begin", data=common)
    challenge_id = re.search(r'name="challenge_id" value="(\w+)"', step.text)
    assert challenge_id is not None
    done = client.post("/login/verify", data={**common, "code": service.sms_code(),
                                              "challenge_id": challenge_id.group(1)})  # fmt: skip
    assert done.status_code == 200
    assert client.cookies.get("macnss_session")
    assert 'href="/account"' not in done.text  # nothing to enroll there
    account = client.get("/account")
    assert account.status_code == 200
    assert 'action="/account/totp"' not in account.text
    for path in ("/account/totp", "/account/totp/confirm"):
        response = client.post(path, data={"csrf": csrf, "code": "123456"})
        assert response.status_code == 401, path
        assert MESSAGES["en"]["session_expired"] in response.text


def test_no_passkey_entry_where_the_policy_offers_no_passkeys() -> None:
    client = TestClient(build().app)
    start = client.get("/login?lang=en")
    assert 'action="/login/passkey"' not in start.text
    assert MESSAGES["en"]["passkey_no_identifier"] not in start.text
    csrf = csrf_of(start.text)
    for path in ("/login/passkey", "/account/passkey", "/account/passkey/finish"):
        assert client.post(path, data={"csrf": csrf}).status_code == 404, path
    assert client.get("/static/passkey.js").status_code == 404

"""The login page's passkey routes by plain form posts, with the virtual authenticator.

What the page's script does in a browser (tests/passkey/test_browser.py) is done
here by hand: read the options from the form's ``data-options``, answer with the
virtual device, post the credential JSON in ``response``.
"""

from __future__ import annotations

import html
import json
import re

import pytest
from fastapi.testclient import TestClient

from macnss_auth.audit.events import AuditAction
from macnss_auth.passkey.virtual import VirtualAuthenticator
from macnss_auth.web.i18n import MESSAGES
from tests.passkey.web_service import AUDIENCE, PasskeyService

from .conftest import ORIGIN
from .test_web import SUBJECT, first_login, register

EN, FR, AR = MESSAGES["en"], MESSAGES["fr"], MESSAGES["ar"]


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, pattern
    return html.unescape(match.group(1))


def csrf_of(page: str) -> str:
    return found(r'name="csrf" value="(\w+)"', page)


def discoverable_begins(service: PasskeyService) -> int:
    return sum(
        1
        for e in service.audit.events
        if e.action is AuditAction.BEGIN and e.details.get("ceremony") == "discoverable"
    )


def test_the_start_page_offers_a_username_less_passkey_sign_in(
    service: PasskeyService, client: TestClient
) -> None:
    phone = VirtualAuthenticator(origin=ORIGIN)
    register(client, first_login(service, client), phone)
    start = client.get(f"/login?lang=en&audience={AUDIENCE}&nonce=n1")
    assert 'action="/login/passkey"' in start.text
    assert EN["passkey_no_identifier"] in start.text
    assert "<script" not in start.text  # the start page stays script-free
    csrf = csrf_of(start.text)
    step = client.post("/login/passkey", data={"csrf": csrf, "audience": AUDIENCE, "nonce": "n1"})
    assert step.status_code == 200
    assert '<script src="/static/passkey.js">' in step.text
    assert found(r'name="subject" value="([^"]*)"', step.text) == ""
    # The calling service's audience and nonce travel on to the assertion.
    assert found(r'name="audience" value="([^"]*)"', step.text) == AUDIENCE
    assert found(r'name="nonce" value="([^"]*)"', step.text) == "n1"
    options = json.loads(found(r'data-options="([^"]+)"', step.text))
    assert options.get("allowCredentials", []) == []  # the device offers what it holds
    answer = phone.get(options)
    done = client.post(
        "/login/verify",
        data={
            "csrf": csrf,
            "subject": "",
            "method": "passkey",
            "challenge_id": found(r'name="challenge_id" value="(\w+)"', step.text),
            "response": json.dumps(answer),
            "audience": AUDIENCE,
            "nonce": "n1",
        },
    )
    assert done.status_code == 200
    assert found(r'id="signed-in">([^<]+)<', done.text).startswith(f"Signed in as {SUBJECT} ")
    assert client.cookies.get("macnss_session")  # the account page may now add a passkey
    # The page's script is served by the login page itself.
    script = client.get("/static/passkey.js")
    assert "parseCreationOptionsFromJSON" in script.text


def test_the_username_less_begin_checks_the_csrf_token(
    service: PasskeyService, client: TestClient
) -> None:
    refused = client.post("/login/passkey?lang=en", data={"csrf": "a" * 32})
    assert refused.status_code == 403
    assert EN["error_form"] in refused.text
    assert discoverable_begins(service) == 0
    csrf = csrf_of(client.get("/login").text)
    wrong = client.post("/login/passkey", data={"csrf": "b" * 32})
    assert wrong.status_code == 403
    assert client.post("/login/passkey", data={"csrf": csrf}).status_code == 200
    assert discoverable_begins(service) == 1


def test_a_username_less_failure_is_explained_with_the_other_ways(
    service: PasskeyService, client: TestClient
) -> None:
    phone = VirtualAuthenticator(origin=ORIGIN)
    token = first_login(service, client)
    registered = register(client, token, phone)
    csrf = csrf_of(client.get("/login?lang=fr").text)

    def attempt(*, answered: bool) -> tuple[int, str]:
        step = client.post("/login/passkey", data={"csrf": csrf})
        options = found(r'data-options="([^"]+)"', step.text)
        done = client.post(
            "/login/verify",
            data={
                "csrf": csrf,
                "subject": "",
                "method": "passkey",
                "challenge_id": found(r'name="challenge_id" value="(\w+)"', step.text),
                "response": json.dumps(phone.get(options)) if answered else "",
            },
        )
        return done.status_code, done.text

    # Cancelled on the device (the script posts nothing): a new username-less attempt.
    status, text = attempt(answered=False)
    assert status == 401
    assert html.escape(FR["error_passkey_cancelled"]) in text
    assert 'action="/login/passkey" class="card" id="passkey-again"' in text
    # The lost phone's passkey is removed: refused, said why, and every other way is shown.
    assert service.passkeys.remove_credential(SUBJECT, registered["credential_id"])
    status, text = attempt(answered=True)
    assert status == 401
    assert html.escape(FR["error_unknown_credential"]) in text
    assert 'id="passkey-discoverable"' in text
    assert 'action="/login/methods"' in text
    others = found(r'<section class="other-ways"[^>]*>(.*?)</section>', text.replace("\n", " "))
    assert FR["method_totp"] in html.unescape(others)


def session(service: PasskeyService, client: TestClient, subject: str = SUBJECT) -> str:
    """A fresh login's session cookie (as the success page sets it); the page's CSRF token."""
    client.cookies.set("macnss_session", first_login(service, client, subject))
    return csrf_of(client.get("/account?lang=ar").text)


def test_a_passkey_is_added_and_removed_on_the_account_page(
    service: PasskeyService, client: TestClient
) -> None:
    csrf = session(service, client)
    account = client.get("/account?lang=ar")
    assert 'dir="rtl"' in account.text
    assert 'action="/account/passkey"' in account.text
    assert 'href="/passkey"' not in account.text  # no detour through the English-only page
    step = client.post("/account/passkey", data={"csrf": csrf, "name": "هاتفي"})
    assert step.status_code == 200
    assert 'dir="rtl"' in step.text
    assert html.escape(AR["passkey_create"]) in step.text
    assert '<script src="/static/passkey.js">' in step.text
    options = found(r'data-options="([^"]+)"', step.text)
    assert json.loads(options)["user"]["name"] == SUBJECT  # the session's subject
    phone = VirtualAuthenticator(origin=ORIGIN)
    created = phone.create(options)
    done = client.post(
        "/account/passkey/finish",
        data={
            "csrf": csrf,
            "challenge_id": found(r'name="challenge_id" value="(\w+)"', step.text),
            "name": found(r'name="name" value="([^"]*)"', step.text),
            "response": json.dumps(created),
        },
    )
    assert done.status_code == 200
    assert AR["passkey_added"] in done.text
    (credential,) = service.passkeys.credentials(SUBJECT)
    assert credential.name == "هاتفي"
    assert "هاتفي" in done.text  # listed, with a button to remove it
    # It signs in without an identifier.
    begun = client.post("/login/passkey", data={"csrf": csrf})
    answer = phone.get(found(r'data-options="([^"]+)"', begun.text))
    signed_in = client.post(
        "/login/verify",
        data={
            "csrf": csrf,
            "method": "passkey",
            "challenge_id": found(r'name="challenge_id" value="(\w+)"', begun.text),
            "response": json.dumps(answer),
        },
    )
    assert SUBJECT in found(r'id="signed-in">([^<]+)<', signed_in.text)
    # A lost phone: removed from the account page, then refused.
    removed = client.post(
        "/account/passkey/remove",
        data={"csrf": csrf, "credential_id": found(r'name="credential_id" value="([\w-]+)"',
                                                   done.text)},
    )  # fmt: skip
    assert removed.status_code == 200
    assert AR["passkey_removed"] in removed.text
    assert service.passkeys.credentials(SUBJECT) == []


def test_a_cancelled_or_foreign_registration_is_refused_in_the_persons_language(
    service: PasskeyService, client: TestClient
) -> None:
    other = VirtualAuthenticator(origin=ORIGIN)
    someone = register(client, first_login(service, client, "someone-else"), other, "someone-else")
    csrf = session(service, client)
    step = client.post("/account/passkey?lang=fr", data={"csrf": csrf, "name": "phone"})
    challenge_id = found(r'name="challenge_id" value="(\w+)"', step.text)
    cancelled = client.post(
        "/account/passkey/finish?lang=fr",
        data={"csrf": csrf, "challenge_id": challenge_id, "name": "phone", "response": ""},
    )
    assert cancelled.status_code == 401
    assert html.escape(FR["error_passkey_cancelled"]) in cancelled.text
    assert 'action="/account/passkey"' in cancelled.text  # the form to try again
    # A registration begun for someone else cannot be finished under this session.
    foreign = service.passkeys.begin_registration("someone-else")
    created = VirtualAuthenticator(origin=ORIGIN).create(foreign.data["options"])
    refused = client.post(
        "/account/passkey/finish",
        data={"csrf": csrf, "challenge_id": foreign.id, "response": json.dumps(created)},
    )
    assert refused.status_code == 401
    assert service.passkeys.credentials(SUBJECT) == []
    assert len(service.passkeys.credentials("someone-else")) == 1
    # Nor can this session remove someone else's passkey.
    stolen = client.post(
        "/account/passkey/remove?lang=en",
        data={"csrf": csrf, "credential_id": someone["credential_id"]},
    )
    assert stolen.status_code == 404
    assert EN["error_unknown_credential"] in stolen.text
    assert len(service.passkeys.credentials("someone-else")) == 1


@pytest.mark.parametrize(
    "path", ["/account/passkey", "/account/passkey/finish", "/account/passkey/remove"]
)
def test_the_account_passkey_routes_need_a_session_and_the_csrf_token(
    service: PasskeyService, client: TestClient, path: str
) -> None:
    no_session = client.post(f"{path}?lang=en", data={"name": "phone"})
    assert no_session.status_code == 401
    assert EN["session_expired"] in no_session.text
    session(service, client)
    forged = client.post(f"{path}?lang=en", data={"csrf": "f" * 32, "name": "phone"})
    assert forged.status_code == 401
    assert EN["session_expired"] in forged.text
    assert not [e for e in service.audit.events if e.details.get("ceremony") == "register"]


def test_one_passkey_too_many_is_said_on_the_account_page(
    service: PasskeyService, client: TestClient
) -> None:
    service.passkeys.max_credentials = 1
    register(client, first_login(service, client), VirtualAuthenticator(origin=ORIGIN))
    csrf = session(service, client)
    refused = client.post("/account/passkey?lang=fr", data={"csrf": csrf, "name": "laptop"})
    assert refused.status_code == 409
    assert html.escape(FR["error_credential_limit"]) in refused.text
    assert 'id="passkey-register"' not in refused.text

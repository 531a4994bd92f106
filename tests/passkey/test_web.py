"""The passkey routes of the HTTP service, driven with the virtual authenticator."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from fastapi.testclient import TestClient

from macnss_auth.passkey._wire import b64url_decode
from macnss_auth.passkey.virtual import VirtualAuthenticator
from macnss_auth.web import verify_assertion
from tests.passkey.web_service import AUDIENCE, ISSUER, PasskeyService

from .conftest import ORIGIN

SUBJECT = "citizen-web"


def first_login(service: PasskeyService, client: TestClient, subject: str = SUBJECT) -> str:
    """Log in with TOTP; return the assertion that authorizes adding a passkey."""
    app = service.enroll_totp(subject)
    challenge = client.post("/v1/challenges", json={"subject": subject, "method": "totp"})
    assert challenge.status_code == 201
    code = app.at(service.clock.now().timestamp())
    done = client.post(
        f"/v1/challenges/{challenge.json()['id']}/verify", json={"code": code, "audience": ISSUER}
    )
    assert done.status_code == 200, done.json()
    return str(done.json()["assertion"])


def register(
    client: TestClient, token: str, device: VirtualAuthenticator, subject: str = SUBJECT
) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    begun = client.post("/v1/passkeys/registrations", json={"subject": subject}, headers=auth)
    assert begun.status_code == 201, begun.json()
    created = device.create(begun.json()["data"]["options"])
    finished = client.post(
        f"/v1/passkeys/registrations/{begun.json()['id']}",
        json={"subject": subject, "credential": created, "name": "phone"},
        headers=auth,
    )
    assert finished.status_code == 201, finished.json()
    return dict(finished.json())


def login(
    client: TestClient, device: VirtualAuthenticator, subject: str | None, **bend: Any
) -> Any:
    body = {"subject": subject} if subject else {}
    begun = client.post("/v1/passkeys/challenges", json=body)
    assert begun.status_code == 201
    credential = device.get(begun.json()["data"]["options"], **bend)
    return client.post(
        f"/v1/passkeys/challenges/{begun.json()['id']}/verify",
        json={"credential": credential, "audience": AUDIENCE},
    )


def test_register_after_a_first_login_then_log_in(
    service: PasskeyService, client: TestClient
) -> None:
    token = first_login(service, client)
    phone = VirtualAuthenticator(origin=ORIGIN)
    registered = register(client, token, phone)
    assert registered["device_bound"] is True
    assert registered["name"] == "phone"
    for subject in (SUBJECT, None):
        done = login(client, phone, subject)
        assert done.status_code == 200, done.json()
        body = done.json()
        assert (body["subject"], body["method"], body["assurance"]) == (
            SUBJECT,
            "passkey",
            "substantial",
        )
        claims = verify_assertion(
            body["assertion"],
            keys=client.get("/.well-known/jwks.json").json(),
            issuer=ISSUER,
            audience=AUDIENCE,
            now=service.clock.now(),
        )
        assert claims["sub"] == SUBJECT


def test_the_generic_challenge_routes_serve_passkeys_too(
    service: PasskeyService, client: TestClient
) -> None:
    phone = VirtualAuthenticator(origin=ORIGIN)
    register(client, first_login(service, client), phone)
    methods = client.get("/v1/methods", params={"capabilities": "passkey"}).json()["methods"]
    assert [(m["method"], m["needs"]) for m in methods] == [("passkey", "passkey")]
    begun = client.post("/v1/challenges", json={"subject": SUBJECT, "method": "passkey"}).json()
    credential = phone.get(begun["data"]["options"])
    done = client.post(f"/v1/challenges/{begun['id']}/verify", json={"evidence": credential})
    assert done.status_code == 200, done.json()


def test_registration_needs_a_fresh_login_of_the_same_subject(
    service: PasskeyService, client: TestClient
) -> None:
    no_token = client.post("/v1/passkeys/registrations", json={"subject": SUBJECT})
    assert no_token.json()["reason"] == "unauthorized"
    token = first_login(service, client, "someone-else")
    other = client.post(
        "/v1/passkeys/registrations",
        json={"subject": SUBJECT},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (other.status_code, other.json()["reason"]) == (403, "forbidden")


def test_refusals_are_problems_with_the_reason(service: PasskeyService, client: TestClient) -> None:
    phone = VirtualAuthenticator(origin=ORIGIN)
    token = first_login(service, client)
    registered = register(client, token, phone)
    wrong_site = login(client, phone, SUBJECT, origin="https://evil.example")
    assert (wrong_site.status_code, wrong_site.json()["reason"]) == (401, "origin_mismatch")
    assert wrong_site.headers["content-type"] == "application/problem+json"
    # Remove it (a lost phone): refused from then on, with and without a username.
    auth = {"Authorization": f"Bearer {token}"}
    listed = client.post("/v1/passkeys/list", json={"subject": SUBJECT}, headers=auth).json()
    assert [p["credential_id"] for p in listed["passkeys"]] == [registered["credential_id"]]
    removed = client.post(
        "/v1/passkeys/remove",
        json={"subject": SUBJECT, "credential_id": registered["credential_id"]},
        headers=auth,
    )
    assert removed.status_code == 200
    # The named options now list decoys (nothing is left to list): the phone answers
    # with the removed passkey anyway, as a copied one would.
    removed_id = b64url_decode(registered["credential_id"], field="credential_id")
    for subject in (SUBJECT, None):
        refused = login(client, phone, subject, credential_id=removed_id)
        assert (refused.status_code, refused.json()["reason"]) == (401, "unknown_credential")
    again = client.post(
        "/v1/passkeys/remove",
        json={"subject": SUBJECT, "credential_id": registered["credential_id"]},
        headers=auth,
    )
    assert again.json()["reason"] == "unknown_credential"


def test_malformed_credentials_and_unknown_challenges(
    service: PasskeyService, client: TestClient
) -> None:
    begun = client.post("/v1/passkeys/challenges", json={}).json()
    bad = client.post(
        f"/v1/passkeys/challenges/{begun['id']}/verify", json={"credential": {"id": "x"}}
    )
    assert (bad.status_code, bad.json()["reason"]) == (422, "malformed_response")
    missing = client.post("/v1/passkeys/challenges/nope/verify", json={"credential": {}})
    assert (missing.status_code, missing.json()["reason"]) == (404, "challenge_not_found")
    # A TOTP challenge cannot be answered on the passkey route.
    service.enroll_totp(SUBJECT)
    totp = client.post("/v1/challenges", json={"subject": SUBJECT, "method": "totp"}).json()
    routed = client.post(f"/v1/passkeys/challenges/{totp['id']}/verify", json={"credential": {}})
    assert routed.json()["reason"] == "challenge_not_found"


def test_the_page_is_served_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/passkey")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self';" in policy  # no inline script
    assert '<script src="/static/passkey.js">' in page.text
    script = client.get("/static/passkey.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "parseRequestOptionsFromJSON" in script.text


def test_the_login_pages_session_authorizes_its_own_subject_only(
    service: PasskeyService, client: TestClient
) -> None:
    token = first_login(service, client, "someone-else")
    client.cookies.set("macnss_session", token)
    other = client.post("/v1/passkeys/registrations", json={"subject": SUBJECT})
    assert (other.status_code, other.json()["reason"]) == (403, "forbidden")
    own = client.post("/v1/passkeys/registrations", json={})
    assert own.status_code == 201
    assert own.json()["data"]["options"].count('"name": "someone-else"') == 1
    client.cookies.set("macnss_session", "not-a-token")
    forged = client.post("/v1/passkeys/registrations", json={})
    assert (forged.status_code, forged.json()["reason"]) == (401, "unauthorized")


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="(\w+)"', html)
    assert match is not None
    return match.group(1)


def test_the_login_pages_passkey_step_by_form_posts(
    service: PasskeyService, client: TestClient
) -> None:
    phone = VirtualAuthenticator(origin=ORIGIN)
    register(client, first_login(service, client), phone)
    csrf = csrf_of(client.get("/login?lang=fr").text)
    common = {"csrf": csrf, "subject": SUBJECT, "audience": "", "nonce": ""}
    offered = client.post("/login/methods", data={**common, "have": "passkey"})
    assert 'data-method="passkey"' in offered.text
    assert "Clé d\u2019accès sur cet appareil" in offered.text
    step = client.post("/login/begin", data={**common, "method": "passkey"})
    assert '<script src="/static/passkey.js">' in step.text
    assert "script-src 'self'" in step.headers["content-security-policy"]
    match = re.search(r'name="challenge_id" value="(\w+)"', step.text)
    options = re.search(r'data-options="([^"]+)"', step.text)
    assert match is not None
    assert options is not None
    # Without JavaScript the form posts no response: the server offers a new attempt.
    blank = client.post(
        "/login/verify",
        data={**common, "method": "passkey", "challenge_id": match.group(1), "response": ""},
    )
    assert 'id="passkey-again"' in blank.text
    # With the device's answer (what the script posts), the person is signed in.
    again = client.post("/login/begin", data={**common, "method": "passkey"})
    challenge_id = re.search(r'name="challenge_id" value="(\w+)"', again.text)
    options = re.search(r'data-options="([^"]+)"', again.text)
    assert challenge_id is not None
    assert options is not None
    answer = phone.get(html.unescape(options.group(1)))
    done = client.post(
        "/login/verify",
        data={
            **common,
            "method": "passkey",
            "challenge_id": challenge_id.group(1),
            "response": json.dumps(answer),
        },
    )
    assert 'id="signed-in"' in done.text
    assert SUBJECT in done.text


def test_the_passkey_routes_are_documented_with_their_problems(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    paths = {p: ops for p, ops in document["paths"].items() if p.startswith("/v1/passkeys")}
    assert set(paths) == {
        "/v1/passkeys/challenges",
        "/v1/passkeys/challenges/{challenge_id}/verify",
        "/v1/passkeys/registrations",
        "/v1/passkeys/registrations/{challenge_id}",
        "/v1/passkeys/list",
        "/v1/passkeys/remove",
    }
    for operations in paths.values():
        for operation in operations.values():
            assert "application/problem+json" in operation["responses"]["401"]["content"]
            assert "application/problem+json" in operation["responses"]["422"]["content"]
    assert "/passkey" not in document["paths"]

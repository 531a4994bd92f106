"""The passkey routes under attack: page headers, hostile requests, account oracles."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from fastapi.testclient import TestClient

from macnss_auth.passkey.virtual import VirtualAuthenticator
from tests.passkey.test_web import first_login, register
from tests.passkey.web_service import PasskeyService

from .conftest import ORIGIN


def test_the_page_allows_its_own_style_block_only(client: TestClient) -> None:
    page = client.get("/passkey")
    policy = page.headers["content-security-policy"]
    assert "unsafe-inline" not in policy
    # The browser hashes the exact text between <style> and </style>.
    blocks = re.findall(r"<style>(.*?)</style>", page.text, re.DOTALL)
    assert blocks
    for block in blocks:
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "style=" not in page.text  # style attributes would need 'unsafe-inline'
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/passkeys/challenges", {"subject": "amina\nsubject=admin"}),
        ("/v1/passkeys/registrations", {"subject": "amina\x1b[31m"}),
        ("/v1/passkeys/list", {"subject": "amina\x00"}),
        ("/v1/passkeys/remove", {"subject": "amina\r", "credential_id": "AAAA"}),
    ],
)
def test_subjects_with_control_characters_are_refused(
    service: PasskeyService, client: TestClient, path: str, body: dict[str, str]
) -> None:
    # As on the other routes: a control character never reaches a store key or the audit log.
    before = len(service.audit.events)
    response = client.post(path, json=body, headers={"Authorization": "Bearer x"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == ["body.subject"]
    assert len(service.audit.events) == before


@pytest.mark.parametrize(
    "path", ["/v1/passkeys/challenges/{}/verify", "/v1/passkeys/registrations/{}"]
)
def test_an_overlong_challenge_id_is_refused_before_the_store(
    client: TestClient, path: str
) -> None:
    response = client.post(path.format("A" * 65), json={"credential": {}},
                           headers={"Authorization": "Bearer x"})  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == ["path.challenge_id"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_the_session_cookie_is_not_enough_for_a_simple_cross_site_request(
    service: PasskeyService, client: TestClient, content_type: str | None
) -> None:
    # A page on a sibling subdomain is same-site: the SameSite=Strict session cookie
    # goes along. What it can send without a CORS preflight (no content type, text/plain,
    # a form) must not start a registration: the routes read JSON bodies only.
    token = first_login(service, client, "amina")
    client.cookies.set("macnss_session", token)
    before = len(service.audit.events)
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/v1/passkeys/registrations", content=b"{}", headers=headers)
    assert response.status_code == 422, response.text
    assert len(service.audit.events) == before
    # The same body as JSON (which needs a preflight cross-origin) is accepted.
    assert client.post("/v1/passkeys/registrations", json={}).status_code == 201


def test_a_named_passkey_begin_does_not_tell_who_has_passkeys(
    service: PasskeyService, client: TestClient
) -> None:
    token = first_login(service, client, "amina")
    register(client, token, VirtualAuthenticator(origin=ORIGIN), "amina")
    service.enroll_totp("youssef")  # enrolled, but without passkeys
    seen = {}
    for subject in ("amina", "youssef", "nobody"):
        begun = client.post("/v1/passkeys/challenges", json={"subject": subject})
        options = json.loads(begun.json()["data"]["options"])
        allowed = options["allowCredentials"]
        seen[subject] = (begun.status_code, sorted(options), sorted(begun.headers.keys()))
        assert 1 <= len(allowed) <= 2, subject
        assert all(set(c) == {"id", "type", "transports"} for c in allowed)
    assert seen["amina"] == seen["youssef"] == seen["nobody"]

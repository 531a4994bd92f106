"""The passkey ceremonies in a real browser: Chromium, driven by Playwright, with the
DevTools virtual authenticator (CTAP2, internal transport, resident keys, user
verification) through the service's passkey page.

Skips when Playwright or Chromium is missing, unless MACNSS_REQUIRE_SERVICES=1.
The page runs on http://localhost:PORT (a secure context; the RP id is
"localhost"), served by uvicorn bound to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from macnss_auth.audit.events import AuditAction, Outcome
from tests.passkey.web_service import ISSUER, PasskeyService, build_service, free_port, serve
from tests.store.services import unavailable

pytestmark = pytest.mark.services

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
CHROMIUM = os.environ.get("MACNSS_CHROMIUM", "/usr/bin/chromium")
SUBJECT = "citizen-browser"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional test tool
    except ImportError:
        unavailable("playwright is not installed")
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        unavailable(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        # localhost must reach the server bound to 127.0.0.1, never ::1.
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--host-resolver-rules=MAP localhost 127.0.0.1"]
        )
        yield launched
        launched.close()


@pytest.fixture
def site() -> Iterator[tuple[PasskeyService, str]]:
    port = free_port()
    origin = f"http://localhost:{port}"
    service = build_service(origin=origin, challenge_ttl=20.0)
    with serve(service.app, port):
        yield service, origin


class Device:
    """A browser context with its own virtual authenticator, on the passkey page."""

    def __init__(self, browser: Any, origin: str, *, synced: bool = False) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.cdp = self.context.new_cdp_session(self.page)
        self.cdp.send("WebAuthn.enable")
        options: dict[str, Any] = {
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": True,
            "hasUserVerification": True,
            "isUserVerified": True,
            "automaticPresenceSimulation": True,
        }
        if synced:
            options |= {"defaultBackupEligibility": True, "defaultBackupState": True}
        added = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
        self.authenticator_id = added["authenticatorId"]
        self.page.goto(origin + "/passkey")

    def press(self, button: str, *, subject: str = "", token: str = "") -> dict[str, Any]:
        page = self.page
        page.fill("#subject", subject)
        page.fill("#token", token)
        page.evaluate("document.getElementById('status').dataset.state = ''")
        page.click(button)
        page.wait_for_selector("#status[data-state='ok'], #status[data-state='failed']")
        return dict(json.loads(page.text_content("#status") or "{}"))

    def credentials(self) -> list[dict[str, Any]]:
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id})
        return list(found["credentials"])

    def close(self) -> None:
        self.context.close()


def first_login(service: PasskeyService, origin: str) -> str:
    """Log in with an authenticator app (the other method); return the fresh assertion."""
    app = service.enroll_totp(SUBJECT)
    with httpx.Client(base_url=origin.replace("localhost", "127.0.0.1")) as client:
        begun = client.post("/v1/challenges", json={"subject": SUBJECT, "method": "totp"})
        done = client.post(
            f"/v1/challenges/{begun.json()['id']}/verify",
            json={"code": app.now(), "audience": ISSUER},
        )
    assert done.status_code == 200, done.text
    return str(done.json()["assertion"])


def remove(origin: str, token: str, credential_id: str) -> None:
    with httpx.Client(base_url=origin.replace("localhost", "127.0.0.1")) as client:
        done = client.post(
            "/v1/passkeys/remove",
            json={"subject": SUBJECT, "credential_id": credential_id},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert done.status_code == 200, done.text


def test_register_then_log_in_with_and_without_a_username(
    browser: Any, site: tuple[PasskeyService, str]
) -> None:
    service, origin = site
    token = first_login(service, origin)
    phone = Device(browser, origin)
    try:
        registered = phone.press("#register", subject=SUBJECT, token=token)
        assert registered["ok"], registered
        assert registered["device_bound"] is True
        assert registered["attestation"] == "none"
        (held,) = phone.credentials()
        assert held["isResidentCredential"] is True
        assert (
            held["credentialId"].rstrip("=").replace("+", "-").replace("/", "_")
            == (registered["credential_id"])
        )
        named = phone.press("#login", subject=SUBJECT)
        assert named["ok"], named
        assert (named["subject"], named["method"], named["assurance"]) == (
            SUBJECT,
            "passkey",
            "substantial",
        )
        anonymous = phone.press("#login-discoverable")
        assert anonymous["ok"], anonymous
        assert anonymous["subject"] == SUBJECT
        successes = [
            e
            for e in service.audit.events
            if (e.method, e.action, e.outcome) == ("passkey", AuditAction.VERIFY, Outcome.SUCCESS)
        ]
        assert [e.details["discoverable"] for e in successes] == ["false", "true"]
        assert successes[-1].details["user_verified"] == "true"
        # The authenticator's counter moved on with each signature, and the server followed it.
        counters = [int(e.details["counter"]) for e in successes]
        assert counters[0] < counters[1] == phone.credentials()[0]["signCount"]
    finally:
        phone.close()


def test_a_second_device_and_a_removed_credential(
    browser: Any, site: tuple[PasskeyService, str]
) -> None:
    service, origin = site
    token = first_login(service, origin)
    phone = Device(browser, origin)
    laptop = Device(browser, origin, synced=True)
    try:
        first = phone.press("#register", subject=SUBJECT, token=token)
        second = laptop.press("#register", subject=SUBJECT, token=token)
        assert first["ok"], first
        assert second["ok"], second
        assert second["device_bound"] is False  # BE set: a synced passkey
        assert {c.id_b64url for c in service.passkeys.credentials(SUBJECT)} == {
            first["credential_id"],
            second["credential_id"],
        }
        for device in (phone, laptop):
            assert device.press("#login-discoverable")["subject"] == SUBJECT
        # The phone is lost: its passkey is removed and refused from then on.
        remove(origin, token, first["credential_id"])
        refused = phone.press("#login-discoverable")
        assert refused == {"ok": False, "reason": "unknown_credential"}
        # Named: the server no longer lists the phone's passkey, so the browser has
        # nothing to offer; if it answered anyway, the server would refuse it.
        named = phone.press("#login", subject=SUBJECT)
        assert named["ok"] is False
        assert named["reason"] in ("NotAllowedError", "unknown_credential")
        still = laptop.press("#login", subject=SUBJECT)
        assert still["ok"], still
        assert still["subject"] == SUBJECT
    finally:
        phone.close()
        laptop.close()


def test_a_cloned_passkey_is_caught_by_its_counter(
    browser: Any, site: tuple[PasskeyService, str]
) -> None:
    service, origin = site
    token = first_login(service, origin)
    phone = Device(browser, origin)
    clone = Device(browser, origin)
    try:
        assert phone.press("#register", subject=SUBJECT, token=token)["ok"]
        # Someone copies the key out of the phone (private key and all)...
        (original,) = phone.credentials()
        copied = {**original, "signCount": original["signCount"]}
        clone.cdp.send(
            "WebAuthn.addCredential",
            {"authenticatorId": clone.authenticator_id, "credential": copied},
        )
        # ...the owner keeps using the phone, so the copy's counter falls behind.
        for _ in range(2):
            assert phone.press("#login-discoverable")["ok"]
        cloned = clone.press("#login-discoverable")
        assert cloned == {"ok": False, "reason": "sign_count_regressed"}
        assert phone.press("#login", subject=SUBJECT)["ok"]
    finally:
        phone.close()
        clone.close()


def page_login(device: Device, origin: str, have: str, lang: str = "en") -> None:
    """The login page's first two steps: identifier and what the person has."""
    page = device.page
    page.goto(f"{origin}/login?lang={lang}")
    page.fill("#subject", SUBJECT)
    page.check(f"#have-{have}")
    page.click("form[action='/login/methods'] button[type=submit]")


def test_through_the_login_page(browser: Any, site: tuple[PasskeyService, str]) -> None:
    service, origin = site
    app = service.enroll_totp(SUBJECT)
    phone = Device(browser, origin)
    page = phone.page
    try:
        # 1. A first login by another method: the authenticator app.
        page_login(phone, origin, "app")
        page.click(".methods button[data-method=totp]")
        page.fill("#code", app.now())
        page.click("form[action='/login/verify'] button[type=submit]")
        assert SUBJECT in page.locator("#signed-in").inner_text()
        # 2. Add a passkey from the account page: the session authorizes it.
        page.goto(f"{origin}/account")
        page.click("#add-passkey")
        page.wait_for_url("**/passkey")
        page.fill("#device-name", "phone")
        registered = phone.press("#register")
        assert registered["ok"], registered
        assert [c.name for c in service.passkeys.credentials(SUBJECT)] == ["phone"]
        page.goto(f"{origin}/account")
        page.click("form[action='/logout'] button")
        # 3. Next time: "a phone with a passkey" offers the passkey, which signs in.
        page_login(phone, origin, "passkey")
        offered = page.locator(".methods button").evaluate_all(
            "bs => bs.map(b => b.dataset.method)"
        )
        assert offered == ["passkey"]
        page.click(".methods button[data-method=passkey]")
        page.click("#passkey-use")
        signed_in = page.locator("#signed-in").inner_text()
        assert SUBJECT in signed_in
        assert "substantial" in signed_in
        # 4. In Arabic, the step speaks Arabic and is laid out right to left.
        page_login(phone, origin, "passkey", lang="ar")
        page.click(".methods button[data-method=passkey]")
        assert page.get_attribute("html", "dir") == "rtl"
        assert page.locator("#passkey-use").inner_text() == "استعمال مفتاح المرور"
        page.screenshot(path=str(IMAGES / "passkey-step-ar.png"), full_page=True)
        # 5. The passkey is removed (a lost phone): the page refuses it and says why.
        (credential,) = service.passkeys.credentials(SUBJECT)
        assert service.passkeys.remove_credential(SUBJECT, credential.credential_id)
        page_login(phone, origin, "passkey")
        page.click(".methods button[data-method=passkey]")
        page.click("#passkey-use")
        alert = page.locator("[role=alert]").inner_text()
        assert alert.startswith("This passkey is not (or no longer) registered")
        assert page.locator(".other-ways button[data-method=totp]").is_visible()
    finally:
        phone.close()

"""The passkey ceremonies in a real browser: Chromium, driven by Playwright, with the
DevTools virtual authenticator (CTAP2, internal transport, resident keys, user
verification) through the pages a person uses: the login page (named and
username-less) and the account page (adding and removing passkeys). One test
drives the standalone /passkey page, the browser side of the JSON API.

Skips when Playwright or Chromium is missing, unless MACNSS_REQUIRE_SERVICES=1.
The page runs on http://localhost:PORT (a secure context; the RP id is
"localhost"), served by uvicorn bound to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from macnss_auth.audit.events import AuditAction, Outcome
from macnss_auth.web.i18n import DIRECTIONS, MESSAGES
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
    """A browser context (its own cookies) with its own virtual authenticator."""

    def __init__(self, browser: Any, origin: str, *, synced: bool = False) -> None:
        self.origin = origin
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

    def credentials(self) -> list[dict[str, Any]]:
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id})
        return list(found["credentials"])

    # The login page ------------------------------------------------------------------

    def start(self, have: str, lang: str = "en") -> None:
        """The login page's first two steps: identifier and what the person has."""
        page = self.page
        page.goto(f"{self.origin}/login?lang={lang}")
        page.fill("#subject", SUBJECT)
        page.check(f"#have-{have}")
        page.click("form[action='/login/methods'] button[type=submit]")

    def sign_in_with_app(self, code: str) -> None:
        """A first login by another method (the authenticator app): it opens a session."""
        self.start("app")
        self.page.click(".methods button[data-method=totp]")
        self.page.fill("#code", code)
        self.page.click("form[action='/login/verify'] button[type=submit]")
        assert SUBJECT in self.page.locator("#signed-in").inner_text()

    def sign_in_with_passkey(self) -> str:
        """Named: identifier, "a phone with a passkey", the passkey; the outcome's text."""
        self.start("passkey")
        self.page.click(".methods button[data-method=passkey]")
        return self.use_passkey()

    def sign_in_without_identifier(self, lang: str = "en") -> str:
        """Username-less, from the start page; the outcome's text."""
        self.page.goto(f"{self.origin}/login?lang={lang}")
        self.page.click("#passkey-discoverable button[type=submit]")
        return self.use_passkey()

    def use_passkey(self) -> str:
        page = self.page
        page.click("#passkey-use")
        page.wait_for_selector("#signed-in, [role=alert]")
        return str(page.locator("#signed-in, [role=alert]").first.inner_text())

    # The account page ----------------------------------------------------------------

    def add_passkey(self, name: str, lang: str = "en") -> str:
        """From the account page (the session authorizes it); the notice or error shown."""
        page = self.page
        page.goto(f"{self.origin}/account?lang={lang}")
        page.fill("#device-name", name)
        page.click("#add-passkey button[type=submit]")
        page.click("#passkey-create")
        page.wait_for_selector("[role=status], [role=alert]")
        return str(page.locator("[role=status], [role=alert]").first.inner_text())

    def remove_passkey(self, name: str) -> str:
        page = self.page
        page.goto(f"{self.origin}/account?lang=en")
        page.locator(".passkeys li", has_text=name).locator("button").click()
        return str(page.locator("[role=status], [role=alert]").first.inner_text())

    def sign_out(self) -> None:
        self.page.goto(f"{self.origin}/account")
        self.page.click("form[action='/logout'] button")

    def close(self) -> None:
        self.context.close()


def next_code(app: Any) -> str:
    """The app's next code: another device's first login cannot reuse the current one."""
    return str(app.at(time.time() + 30))


def test_add_a_passkey_on_the_account_page_then_sign_in_with_and_without_an_identifier(
    browser: Any, site: tuple[PasskeyService, str]
) -> None:
    service, origin = site
    app = service.enroll_totp(SUBJECT)
    phone = Device(browser, origin)
    try:
        phone.sign_in_with_app(app.now())
        assert phone.add_passkey("phone").startswith("Your passkey is ready.")
        (held,) = phone.credentials()
        assert held["isResidentCredential"] is True
        (registered,) = service.passkeys.credentials(SUBJECT)
        assert registered.name == "phone"
        assert registered.device_bound is True
        assert registered.attestation.value == "none"
        assert held["credentialId"].rstrip("=").replace("+", "-").replace("/", "_") == (
            registered.id_b64url
        )
        assert "phone" in phone.page.locator(".passkeys").inner_text()
        phone.sign_out()
        named = phone.sign_in_with_passkey()
        assert named == f"Signed in as {SUBJECT} (substantial assurance)."
        phone.sign_out()
        anonymous = phone.sign_in_without_identifier()
        assert anonymous == f"Signed in as {SUBJECT} (substantial assurance)."
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
    app = service.enroll_totp(SUBJECT)
    phone = Device(browser, origin)
    laptop = Device(browser, origin, synced=True)
    try:
        phone.sign_in_with_app(app.now())
        assert phone.add_passkey("phone").startswith("Your passkey is ready.")
        laptop.sign_in_with_app(next_code(app))
        assert laptop.add_passkey("laptop").startswith("Your passkey is ready.")
        by_name = {c.name: c for c in service.passkeys.credentials(SUBJECT)}
        assert set(by_name) == {"phone", "laptop"}
        assert by_name["laptop"].device_bound is False  # BE set: a synced passkey
        assert by_name["phone"].device_bound is True
        # The account page lists both, on either device.
        laptop.page.goto(f"{origin}/account?lang=en")
        listed = laptop.page.locator(".passkeys li").all_inner_texts()
        assert [text.split(" (")[0] for text in listed] == ["phone", "laptop"]
        for device in (phone, laptop):
            device.sign_out()
            signed_in = device.sign_in_without_identifier()
            assert signed_in.startswith(f"Signed in as {SUBJECT} ")
        # The phone is lost: its passkey is removed from the laptop's account page...
        assert laptop.remove_passkey("phone").startswith("The passkey was removed")
        assert [c.name for c in service.passkeys.credentials(SUBJECT)] == ["laptop"]
        # ...and refused from then on, with the reason, and the other ways still shown.
        phone.sign_out()
        refused = phone.sign_in_without_identifier()
        assert refused.startswith("This passkey is not (or no longer) registered")
        assert phone.page.locator(".other-ways").is_visible()
        assert phone.page.locator("#passkey-discoverable").is_visible()
        # Named: the server no longer lists the phone's passkey, so the browser has nothing
        # to offer (the page says the device gave no answer); if it answered anyway, the
        # server would refuse it as unknown.
        named = phone.sign_in_with_passkey()
        assert named.startswith(
            ("Your device gave no answer", "This passkey is not (or no longer) registered")
        )
        assert phone.page.locator(".other-ways button[data-method=totp]").is_visible()
        laptop.sign_out()
        assert laptop.sign_in_with_passkey().startswith(f"Signed in as {SUBJECT} ")
    finally:
        phone.close()
        laptop.close()


def test_a_cloned_passkey_is_caught_by_its_counter(
    browser: Any, site: tuple[PasskeyService, str]
) -> None:
    service, origin = site
    app = service.enroll_totp(SUBJECT)
    phone = Device(browser, origin)
    clone = Device(browser, origin)
    try:
        phone.sign_in_with_app(app.now())
        assert phone.add_passkey("phone").startswith("Your passkey is ready.")
        # Someone copies the key out of the phone (private key and all)...
        (original,) = phone.credentials()
        copied = {**original, "signCount": original["signCount"]}
        clone.cdp.send(
            "WebAuthn.addCredential",
            {"authenticatorId": clone.authenticator_id, "credential": copied},
        )
        # ...the owner keeps using the phone, so the copy's counter falls behind.
        for _ in range(2):
            phone.sign_out()
            assert phone.sign_in_without_identifier().startswith("Signed in as")
        cloned = clone.sign_in_without_identifier()
        assert cloned.startswith("This passkey may have been copied")
        phone.sign_out()
        assert phone.sign_in_with_passkey().startswith("Signed in as")
    finally:
        phone.close()
        clone.close()


def test_the_steps_in_arabic_are_right_to_left(
    browser: Any, site: tuple[PasskeyService, str]
) -> None:
    service, origin = site
    app = service.enroll_totp(SUBJECT)
    phone = Device(browser, origin)
    page = phone.page
    try:
        phone.sign_in_with_app(app.now())
        # Adding a passkey, in Arabic: the account page and the creation step.
        page.goto(f"{origin}/account?lang=ar")
        assert page.get_attribute("html", "dir") == "rtl"
        page.fill("#device-name", "هاتفي")
        page.click("#add-passkey button[type=submit]")
        assert page.get_attribute("html", "dir") == "rtl"
        assert page.locator("#passkey-create").inner_text() == "إنشاء مفتاح المرور"
        page.click("#passkey-create")
        notice = page.locator("[role=status]").inner_text()
        assert notice.startswith("مفتاح المرور جاهز")
        assert [c.name for c in service.passkeys.credentials(SUBJECT)] == ["هاتفي"]
        page.screenshot(path=str(IMAGES / "passkey-account-ar.png"), full_page=True)
        phone.sign_out()
        # The username-less entry and its step, in Arabic.
        page.goto(f"{origin}/login?lang=ar")
        assert page.get_attribute("html", "dir") == "rtl"
        entry = page.locator("#passkey-discoverable button")
        assert entry.inner_text() == "الدخول بمفتاح المرور دون كتابة المعرف"
        entry.click()
        assert page.get_attribute("html", "dir") == "rtl"
        assert page.locator("#passkey-use").inner_text() == "استعمال مفتاح المرور"
        page.screenshot(path=str(IMAGES / "passkey-step-ar.png"), full_page=True)
        page.click("#passkey-use")
        assert SUBJECT in page.locator("#signed-in").inner_text()
        # The start page with its username-less entry, in English (for the docs).
        phone.sign_out()
        page.goto(f"{origin}/login?lang=en")
        page.screenshot(path=str(IMAGES / "passkey-no-identifier-en.png"), full_page=True)
    finally:
        phone.close()


def first_login(service: PasskeyService, origin: str) -> str:
    """Log in with an authenticator app by the JSON API; return the fresh assertion."""
    app = service.enroll_totp(SUBJECT)
    with httpx.Client(base_url=origin.replace("localhost", "127.0.0.1")) as client:
        begun = client.post("/v1/challenges", json={"subject": SUBJECT, "method": "totp"})
        done = client.post(
            f"/v1/challenges/{begun.json()['id']}/verify",
            json={"code": app.now(), "audience": ISSUER},
        )
    assert done.status_code == 200, done.text
    return str(done.json()["assertion"])


def press(device: Device, button: str, *, subject: str = "", token: str = "") -> dict[str, Any]:
    """A button of the standalone /passkey page; the JSON it shows."""
    page = device.page
    page.fill("#subject", subject)
    page.fill("#token", token)
    page.evaluate("document.getElementById('status').dataset.state = ''")
    page.click(button)
    page.wait_for_selector("#status[data-state='ok'], #status[data-state='failed']")
    return dict(json.loads(page.text_content("#status") or "{}"))


@pytest.mark.parametrize("lang", ["ar", "fr", "en"])
def test_the_standalone_page_drives_the_json_api(
    browser: Any, site: tuple[PasskeyService, str], lang: str
) -> None:
    """/passkey: what an app's own front end does with /v1/passkeys (bearer assertion),
    in each of the login page's languages."""
    service, origin = site
    token = first_login(service, origin)
    phone = Device(browser, origin)
    page = phone.page
    page.goto(f"{origin}/passkey?lang={lang}")
    try:
        # The style block is allowed by its hash (no 'unsafe-inline'): the browser applied it.
        assert page.evaluate("getComputedStyle(document.body).maxWidth") == "576px"
        words = MESSAGES[lang]
        assert page.get_attribute("html", "lang") == lang
        assert page.evaluate("getComputedStyle(document.body).direction") == DIRECTIONS[lang]
        assert page.locator("h1").inner_text() == words["passkey_page_title"]
        assert page.locator("#login").inner_text() == words["passkey_use"]
        assert page.locator("#login-discoverable").inner_text() == words["passkey_no_identifier"]
        assert page.locator("#register").inner_text() == words["passkey_create"]
        # Labels name their fields (a screen reader reads them; Playwright finds them so).
        assert page.get_by_label(words["passkey_page_assertion"]).get_attribute("id") == "token"
        assert page.get_by_label(words["device_name"]).get_attribute("id") == "device-name"
        if lang == "ar":
            # Right to left: the first button sits right of the second.
            first = page.locator("#login").bounding_box()
            second = page.locator("#login-discoverable").bounding_box()
            assert first is not None
            assert second is not None
            assert first["x"] > second["x"]
            page.screenshot(path=str(IMAGES / "passkey-standalone-ar.png"), full_page=True)
        registered = press(phone, "#register", subject=SUBJECT, token=token)
        assert registered["ok"], registered
        assert registered["device_bound"] is True
        assert registered["attestation"] == "none"
        (held,) = phone.credentials()
        assert (
            held["credentialId"].rstrip("=").replace("+", "-").replace("/", "_")
            == (registered["credential_id"])
        )
        named = press(phone, "#login", subject=SUBJECT)
        assert (named["ok"], named["subject"], named["method"]) == (True, SUBJECT, "passkey")
        anonymous = press(phone, "#login-discoverable")
        assert (anonymous["ok"], anonymous["subject"]) == (True, SUBJECT)
        with httpx.Client(base_url=origin.replace("localhost", "127.0.0.1")) as client:
            removed = client.post(
                "/v1/passkeys/remove",
                json={"subject": SUBJECT, "credential_id": registered["credential_id"]},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert removed.status_code == 200, removed.text
        refused = press(phone, "#login-discoverable")
        assert refused == {"ok": False, "reason": "unknown_credential"}
    finally:
        phone.close()

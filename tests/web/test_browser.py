"""The login page in a real browser: Playwright driving the system Chromium.

Each test starts a real uvicorn on 127.0.0.1 over a complete service (every
method, capturing SMS/e-mail channels, a fixed clock) and uses the page the
way a person would: by keyboard where it matters, without any JavaScript of
ours (the page has none). Screenshots of the page in each language land in
docs/img/, where the guide shows them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from macnss_auth.otp.enrollment import OtpParameters, Provisioning, decode_base32_secret
from macnss_auth.throttle import ThrottlePolicy

from .browser import browser_page
from .helpers import PHONE, Service, build
from .server import live_server

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"


def with_phone(service: Service, subject: str = "youssef") -> None:
    enrolling = service.sms_auth.enroll(subject, PHONE)
    service.sms_auth.confirm(enrolling, service.sms_code())


def start(page: Any, url: str, subject: str, have: list[str], lang: str = "fr") -> None:
    page.goto(f"{url}/login?lang={lang}")
    page.fill("#subject", subject)
    for item in have:
        page.check(f"#have-{item}")
    page.click("form[action='/login/methods'] button[type=submit]")


def sms_login(page: Any, service: Service, url: str, lang: str = "fr") -> None:
    start(page, url, "youssef", ["sms"], lang)
    page.click("button[data-method=sms]")
    page.fill("#code", service.sms_code())
    page.click("form[action='/login/verify'] button[type=submit]")


def test_sms_code_login_by_keyboard() -> None:
    service = build()
    with_phone(service)
    with live_server(service.app) as live, browser_page() as page:
        page.goto(f"{live.url}/login?lang=fr")
        # The identifier field has the focus; everything else is reached with Tab.
        assert page.evaluate("document.activeElement.id") == "subject"
        page.keyboard.type("youssef")
        page.keyboard.press("Tab")  # skips the help text: the NFC box
        page.keyboard.press("Tab")  # the app box
        page.keyboard.press("Tab")  # the SMS box
        assert page.evaluate("document.activeElement.id") == "have-sms"
        page.keyboard.press("Space")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.wait_for_url("**/login/methods")
        offered = page.locator(".methods button").evaluate_all(
            "bs => bs.map(b => b.dataset.method)"
        )
        assert offered == ["sms", "recovery"]
        assert page.locator("#other-ways-title").inner_text().startswith("Pas de téléphone NFC")
        page.click(".methods button[data-method=sms]")
        hint = page.locator("#code-help").inner_text()
        assert "67" in hint
        assert "661234567" not in hint
        assert page.get_attribute("#code", "autocomplete") == "one-time-code"
        page.keyboard.type(service.sms_code())  # the code field has the focus
        page.keyboard.press("Enter")
        assert "youssef" in page.locator("#signed-in").inner_text()
        assert "garantie faible" in page.locator("#signed-in").inner_text()


def test_a_wrong_code_then_a_lockout() -> None:
    service = build(throttle=ThrottlePolicy(free_failures=2, base_delay=1.0, lockout_after=4))
    with_phone(service)
    with live_server(service.app) as live, browser_page(locale="en-GB") as page:
        start(page, live.url, "youssef", ["sms"], "en")
        page.click(".methods button[data-method=sms]")
        wrong = "000000" if service.sms_code() != "000000" else "111111"
        page.fill("#code", wrong)
        page.click("form[action='/login/verify'] button[type=submit]")
        alert = page.locator("[role=alert]")
        assert alert.inner_text() == "That code is not right. Attempts left: 4."
        assert page.get_attribute("#code", "aria-invalid") == "true"
        page.screenshot(path=str(IMAGES / "login-wrong-code-en.png"))
        messages = []
        for _ in range(4):
            service.clock.advance(10)
            page.fill("#code", wrong)
            page.click("form[action='/login/verify'] button[type=submit]")
            messages.append(alert.inner_text())
            if "blocked" in messages[-1]:
                break
        assert messages[-1].startswith("Too many attempts: signing in is blocked for 15 minutes")
        # Locked out of codes, the person still sees every other way.
        assert page.locator(".other-ways button[data-method=totp]").is_visible()
        # Even the right code is refused during the lockout.
        page.click(".other-ways button[data-method=sms]")
        assert "blocked" in page.locator("[role=alert]").inner_text()


def test_totp_enrollment_by_qr_then_login() -> None:
    service = build()
    with_phone(service)
    with live_server(service.app) as live, browser_page(locale="en-GB") as page:
        sms_login(page, service, live.url, "en")
        page.click("a[href='/account']")
        with page.expect_response(lambda r: r.url.endswith("/account/totp")) as served:
            page.click("form[action='/account/totp'] button")
        html = served.value.text()
        key = page.locator("#manual-key").inner_text().replace(" ", "")
        # The QR on the page encodes exactly the otpauth URI of this key.
        expected = Provisioning(
            subject="youssef", method="totp", parameters=OtpParameters(), issuer="CNSS",
            account="youssef", secret=decode_base32_secret(key),
            uri=f"otpauth://totp/CNSS:youssef?secret={key}&issuer=CNSS&algorithm=SHA1"
            "&digits=6&period=30",
            expires_at=service.clock.now(),
        )  # fmt: skip
        assert expected.qr_svg() in html
        assert page.locator("figure.qr svg").is_visible()
        page.screenshot(path=str(IMAGES / "totp-enrollment-en.png"))
        app = pyotp.TOTP(key)
        page.fill("#code", app.at(service.clock.now()))
        page.click("form[action='/account/totp/confirm'] button")
        assert "authenticator app is ready" in page.locator("[role=status]").inner_text()
        page.click("form[action='/logout'] button")
        service.clock.advance(30)
        start(page, live.url, "youssef", ["app"], "en")
        page.click(".methods button[data-method=totp]")
        page.fill("#code", app.at(service.clock.now()))
        page.click("form[action='/login/verify'] button[type=submit]")
        assert "substantial assurance" in page.locator("#signed-in").inner_text()


def test_signing_out_ends_the_session_for_a_copy_of_the_cookie() -> None:
    service = build()
    with_phone(service)
    with live_server(service.app) as live, browser_page(locale="en-GB") as page:
        sms_login(page, service, live.url, "en")
        (session,) = [c["value"] for c in page.context.cookies() if c["name"] == "macnss_session"]
        bearer = {"Authorization": f"Bearer {session}"}
        with httpx.Client(base_url=live.url, cookies={"macnss_session": session}) as copy:
            assert copy.get("/account?lang=en").status_code == 200
            page.click("a[href='/account']")
            page.click("form[action='/logout'] button")
            page.wait_for_url(re.compile(r".*/login\?lang=en$"))
            assert not [c for c in page.context.cookies() if c["name"] == "macnss_session"]
            # The copy made before is refused from then on, as an expired session is.
            refused = copy.get("/account?lang=en")
            assert refused.status_code == 401
            assert "Your session has expired" in refused.text
            api = copy.post("/v1/enrollments/otp", json={"subject": "youssef"}, headers=bearer)
            assert (api.status_code, api.json()["reason"]) == (401, "unauthorized")


@pytest.mark.parametrize("lang", ["ar", "fr", "en"])
def test_language_switch_and_layout_direction(lang: str) -> None:
    service = build()
    with live_server(service.app) as live, browser_page(locale="en-GB") as page:
        page.goto(f"{live.url}/login")
        page.click(f"nav a[hreflang={lang}]")
        page.wait_for_url(re.compile(rf"lang={lang}$"))
        direction = "rtl" if lang == "ar" else "ltr"
        assert page.get_attribute("html", "lang") == lang
        assert page.get_attribute("html", "dir") == direction
        assert page.evaluate("getComputedStyle(document.body).direction") == direction
        # The layout mirrors: in Arabic the box sits right of its label.
        box = page.locator("#have-sms").bounding_box()
        label = page.locator("label[for=have-sms]").bounding_box()
        assert box is not None
        assert label is not None
        if direction == "rtl":
            assert box["x"] > label["x"] + label["width"] - 1
        else:
            assert box["x"] + box["width"] < label["x"] + 1
        # Every input has a label the browser associates with it.
        unlabeled = page.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden])')]"
            ".filter(i => i.labels.length === 0).map(i => i.id)"
        )
        assert unlabeled == []
        # The choice sticks (cookie): the next page is in the same language.
        page.goto(f"{live.url}/login")
        assert page.get_attribute("html", "lang") == lang
        page.screenshot(path=str(IMAGES / f"login-{lang}.png"), full_page=True)

"""The HTTP service under attack: caching of secrets, cookies behind a proxy, hostile bodies."""

from __future__ import annotations

import logging
import re
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.websockets import WebSocketDisconnect

from macnss_auth import AssuranceLevel, ConfigurationError
from macnss_auth.web import TrustedProxies
from macnss_auth.web.context import client_context
from macnss_auth.web.phone import phone_routes

from .helpers import AUDIENCE, ISSUER, PHONE, Service, back_office, build

PROBLEM = "application/problem+json"


def never_cached(response: Any) -> None:
    assert response.headers["cache-control"] == "no-store", response.request.url
    assert response.headers["x-content-type-options"] == "nosniff"


def test_responses_that_carry_secrets_are_never_cached(
    client: TestClient, service: Service
) -> None:
    # A TOTP key and its QR code, recovery codes, an assertion: a shared or browser
    # cache must not keep any of them (RFC 6749 §5.1 asks the same of token responses).
    otp = client.post("/v1/enrollments/otp", json={"subject": "amina"}, headers=back_office())
    assert otp.status_code == 201
    never_cached(otp)
    codes = client.post(
        "/v1/enrollments/recovery-codes", json={"subject": "amina"}, headers=back_office()
    )
    assert codes.status_code == 201
    never_cached(codes)
    started = client.post(
        "/v1/enrollments/destination",
        json={"subject": "amina", "method": "sms", "destination": PHONE},
        headers=back_office(),
    )
    confirm = {"subject": "amina", "method": "sms", "challenge_id": started.json()["id"]}
    client.post("/v1/enrollments/destination/confirm", headers=back_office(),
                json={**confirm, "code": service.sms_code()})  # fmt: skip
    challenge = client.post("/v1/challenges", json={"subject": "amina", "method": "sms"})
    never_cached(challenge)
    answer = client.post(
        f"/v1/challenges/{challenge.json()['id']}/verify", json={"code": service.sms_code()}
    )
    assert answer.status_code == 200
    assert answer.json()["assertion"]
    never_cached(answer)
    # What may be cached says so itself.
    assert client.get("/.well-known/jwks.json").headers["cache-control"].startswith("public")


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="(\w+)"', html)
    assert match is not None
    return match.group(1)


def set_cookies(response: Any) -> dict[str, str]:
    """Each ``Set-Cookie`` header by cookie name (the attributes in lower case)."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        name = header.partition("=")[0]
        found[name] = header.lower()
    return found


def sms_login_by_forms(client: TestClient, service: Service, **headers: str) -> Any:
    """A login through the page's forms; the success page's response."""
    enrolling = service.sms_auth.enroll("youssef", PHONE)
    service.sms_auth.confirm(enrolling, service.sms_code())
    start = client.get("/login?lang=en", headers=headers)
    common = {"csrf": csrf_of(start.text), "subject": "youssef"}
    step = client.post("/login/begin", data={**common, "method": "sms"}, headers=headers)
    challenge_id = re.search(r'name="challenge_id" value="(\w+)"', step.text)
    assert challenge_id is not None, step.text
    answer = {"method": "sms", "code": service.sms_code(), "challenge_id": challenge_id.group(1)}
    done = client.post("/login/verify", data={**common, **answer}, headers=headers)
    assert done.status_code == 200, done.text
    return done


def test_behind_a_tls_proxy_the_cookies_are_secure_and_host_only() -> None:
    # The proxy terminates TLS: the app sees http, the browser used https.
    service = build(trusted_proxies=["127.0.0.1"])
    client = TestClient(service.app, client=("127.0.0.1", 4000))
    start = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    cookies = set_cookies(start)
    assert "; secure" in cookies["__Host-macnss_csrf"]
    assert "path=/" in cookies["__Host-macnss_csrf"]
    assert "domain" not in cookies["__Host-macnss_csrf"]
    # The whole login works with those cookies, and the session is secure too.
    client = TestClient(service.app, base_url="https://testserver", client=("127.0.0.1", 4000))
    done = sms_login_by_forms(client, service, **{"X-Forwarded-Proto": "https"})
    session = set_cookies(done)["__Host-macnss_session"]
    assert "; secure" in session
    assert "httponly" in session
    assert "samesite=strict" in session
    account = client.get("/account?lang=en", headers={"X-Forwarded-Proto": "https"})
    assert account.status_code == 200  # the session is believed (401 without it)
    # Signing out deletes the prefixed cookie (a browser drops it only with Secure set).
    csrf = csrf_of(account.text)
    out = client.post("/logout", data={"csrf": csrf}, headers={"X-Forwarded-Proto": "https"},
                      follow_redirects=False)  # fmt: skip
    deleted = set_cookies(out)["__Host-macnss_session"]
    assert "max-age=0" in deleted
    assert "; secure" in deleted
    assert client.get("/account", headers={"X-Forwarded-Proto": "https"}).status_code == 401


def test_an_untrusted_peer_cannot_claim_https() -> None:
    service = build(trusted_proxies=["10.0.0.0/8"])
    client = TestClient(service.app, client=("127.0.0.1", 4000))
    cookies = set_cookies(client.get("/login", headers={"X-Forwarded-Proto": "https"}))
    assert "secure" not in cookies["macnss_csrf"]


def test_over_tls_a_tossed_csrf_cookie_is_not_believed() -> None:
    # A sibling subdomain can set "macnss_csrf" for the whole site (Domain=.example.ma),
    # but never a "__Host-" cookie: a form whose token matches the tossed cookie is refused.
    service = build()
    enrolling = service.sms_auth.enroll("youssef", PHONE)
    service.sms_auth.confirm(enrolling, service.sms_code())
    client = TestClient(service.app, base_url="https://testserver")
    client.cookies.set("macnss_csrf", "a" * 32)
    sent = len(service.sms.messages)
    refused = client.post("/login/begin", data={"csrf": "a" * 32, "subject": "youssef",
                                                "method": "sms"})  # fmt: skip
    assert refused.status_code == 403
    assert len(service.sms.messages) == sent  # no login code was sent


def test_a_deeply_nested_phone_batch_is_a_problem_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = build(extra_routers=[phone_routes()])
    client = TestClient(service.app, raise_server_exceptions=False)
    nested = '{"messages": [' + "[" * 100_000 + "]" * 100_000 + "]}"
    with caplog.at_level(logging.ERROR, logger="macnss_auth.web"):
        response = client.post("/v1/phone/batch", content=nested)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"] == ["body"]
    assert not caplog.records  # no traceback in the server's log for a hostile body


def test_an_ipv6_client_is_counted_by_its_64() -> None:
    # One subscriber holds a whole /64 and may use a fresh address for every attempt
    # (RFC 8981): the per-client counts must not restart with each one.
    proxies = TrustedProxies(["127.0.0.1"])

    def context_of(forwarded: str) -> Any:
        headers = [(b"x-forwarded-for", forwarded.encode())]
        scope = {"type": "http", "client": ("127.0.0.1", 5000), "headers": headers}
        return client_context(Request(scope), proxies)

    first = context_of("2001:db8:1:2::1")
    second = context_of("2001:db8:1:2:ffff:eeee:dddd:cccc")
    assert first.client_id == second.client_id == "2001:db8:1:2::/64"
    assert first.ip == "2001:db8:1:2::1"  # the audit log keeps the full address
    assert context_of("2001:db8:1:3::1").client_id != first.client_id
    assert context_of("::ffff:198.51.100.7").client_id == "198.51.100.7"
    assert context_of("198.51.100.7").client_id == "198.51.100.7"


def test_enrollment_may_require_a_login_stronger_than_an_sms_code() -> None:
    # Whoever holds only the SIM (a swap) logs in by SMS; with the bar at substantial
    # that login cannot bind an authenticator app or fresh recovery codes.
    service = build(enrollment_min_assurance=AssuranceLevel.SUBSTANTIAL)
    client = TestClient(service.app)
    enrolling = service.sms_auth.enroll("youssef", PHONE)
    service.sms_auth.confirm(enrolling, service.sms_code())
    challenge = client.post("/v1/challenges", json={"subject": "youssef", "method": "sms"})
    answer = client.post(f"/v1/challenges/{challenge.json()['id']}/verify",
                         json={"code": service.sms_code(), "audience": ISSUER})  # fmt: skip
    assert answer.status_code == 200
    own = {"Authorization": f"Bearer {answer.json()['assertion']}"}
    for path in ("/v1/enrollments/otp", "/v1/enrollments/recovery-codes"):
        refused = client.post(path, json={"subject": "youssef"}, headers=own)
        assert refused.status_code == 403, refused.text
        assert refused.json()["reason"] == "forbidden"
    # The back office (who identified the person otherwise) still may.
    allowed = client.post("/v1/enrollments/otp", json={"subject": "youssef"}, headers=back_office())
    assert allowed.status_code == 201
    # A TOTP login reaches substantial: its assertion authorizes enrollment.
    secret = allowed.json()["manual_entry_key"].replace(" ", "")
    client.post("/v1/enrollments/otp/confirm", headers=back_office(),
                json={"subject": "youssef", "code": service.totp_code(secret)})  # fmt: skip
    service.clock.advance(30)
    challenge = client.post("/v1/challenges", json={"subject": "youssef", "method": "totp"})
    answer = client.post(f"/v1/challenges/{challenge.json()['id']}/verify",
                         json={"code": service.totp_code(secret), "audience": ISSUER})  # fmt: skip
    strong = {"Authorization": f"Bearer {answer.json()['assertion']}"}
    codes = client.post("/v1/enrollments/recovery-codes", json={"subject": "youssef"},
                        headers=strong)  # fmt: skip
    assert codes.status_code == 201, codes.text


def test_a_delivery_failure_is_logged_without_what_the_channel_said(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A channel (the service's own code) may quote the message it failed to send in
    # its exception; the library wraps it by type only, and so must the server's log.
    service = build()
    client = TestClient(service.app, raise_server_exceptions=False)
    enrolling = service.sms_auth.enroll("youssef", PHONE)
    service.sms_auth.confirm(enrolling, service.sms_code())

    def leaky(message: Any) -> Any:
        raise RuntimeError(f"refused {message.to}: {message.text}")

    monkeypatch.setattr(service.sms, "send", leaky)
    with caplog.at_level(logging.WARNING, logger="macnss_auth.web"):
        response = client.post("/v1/challenges", json={"subject": "youssef", "method": "sms"})
    assert response.status_code == 503, response.text
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    logged += "\n".join(caplog.text.splitlines())
    assert "DeliveryError" in logged
    assert "RuntimeError" in logged  # the cause's type stays, for the operator
    assert PHONE not in logged
    assert PHONE[-9:] not in logged
    assert "refused +" not in logged  # nor the text, which holds the code


def test_the_pages_ask_for_tls_from_now_on_only_over_tls() -> None:
    service = build(trusted_proxies=["127.0.0.1"])
    behind_tls = TestClient(service.app, client=("127.0.0.1", 4000))
    page = behind_tls.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert page.headers["strict-transport-security"] == "max-age=31536000"
    assert page.headers["cross-origin-opener-policy"] == "same-origin"
    # Over plain HTTP (development on localhost) the header would be ignored anyway.
    plain = TestClient(service.app).get("/login")
    assert "strict-transport-security" not in plain.headers
    assert plain.headers["cross-origin-opener-policy"] == "same-origin"


def test_a_non_ascii_csrf_token_is_refused_not_a_crash() -> None:
    service = build()
    client = TestClient(service.app, raise_server_exceptions=False)
    client.get("/login")  # the CSRF cookie
    response = client.post("/login/begin", data={"csrf": "é" * 32, "subject": "youssef",
                                                 "method": "sms"})  # fmt: skip
    assert response.status_code == 403


def test_huge_headers_are_refused_before_any_route() -> None:
    service = build()
    client = TestClient(service.app, raise_server_exceptions=False)
    token = "a" * 40_000  # a bearer "token" a route would otherwise try to parse
    response = client.post("/v1/enrollments/recovery-codes", json={"subject": "amina"},
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert response.status_code == 431, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"] == ["headers"]
    many = {f"x-h{n}": "1" for n in range(120)}
    assert client.get("/healthz", headers=many).status_code == 431
    assert client.get("/healthz", headers={"x-h": "a" * 8_000}).status_code == 200
    small = build(max_header_bytes=1_000)
    assert TestClient(small.app).get("/healthz", headers={"x-h": "a" * 2_000}).status_code == 431


def test_a_websocket_with_huge_headers_is_never_accepted() -> None:
    service = build(extra_routers=[phone_routes()])
    client = TestClient(service.app)
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/v1/phone/ws", headers={"x-h": "a" * 40_000}),
    ):
        pass
    assert refused.value.code == 1009
    with client.websocket_connect("/v1/phone/ws") as socket:
        socket.send_text("{}")  # an ordinary handshake is accepted
        assert "error" in socket.receive_text()


@pytest.mark.parametrize(
    "url",
    [
        "http://service.example.ma/signed-in",  # the token would cross the network in clear
        "https://service.example.ma/x; script-src *",  # a directive smuggled into the CSP
        "https://service.example.ma/x https://evil.example",  # a second form-action source
        "https://user:pw@service.example.ma/x",
        "javascript:alert(1)",
        "https:///no-host",
    ],
)
def test_a_return_url_that_would_leak_the_token_or_bend_the_csp_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        build(return_urls={AUDIENCE: url})


def test_https_and_local_http_return_urls_are_accepted() -> None:
    for url in ("https://service.example.ma/signed-in", "http://localhost:9000/signed-in",
                "http://127.0.0.1:9000/cb"):  # fmt: skip
        assert build(return_urls={AUDIENCE: url}).app


def shape(response: Any) -> tuple[int, list[str], list[str]]:
    """What does not depend on randomness: status, body keys, header names."""
    body = response.json()
    return response.status_code, sorted(body), sorted(response.headers.keys())


def enroll_known(client: TestClient, service: Service, method: str) -> dict[str, Any]:
    """Enroll subject "known" for ``method``; return a well-formed wrong answer."""
    office = back_office()
    if method in ("totp", "hotp"):
        started = client.post("/v1/enrollments/otp", json={"subject": "known", "method": method},
                              headers=office)  # fmt: skip
        secret = started.json()["manual_entry_key"].replace(" ", "")
        if method == "totp":
            code = pyotp.TOTP(secret).at(service.clock.now())
        else:
            code = pyotp.HOTP(secret).at(0)
        confirm = {"subject": "known", "method": method, "code": code}
        client.post("/v1/enrollments/otp/confirm", json=confirm, headers=office)
        return {"code": "000000" if code != "000000" else "111111"}
    if method in ("sms", "email"):
        where = PHONE if method == "sms" else "amina@example.ma"
        enroll = {"subject": "known", "method": method, "destination": where}
        begun = client.post("/v1/enrollments/destination", json=enroll, headers=office)
        channel = service.sms if method == "sms" else service.email
        confirm = {"subject": "known", "method": method, "challenge_id": begun.json()["id"],
                   "code": channel.last_code()}  # fmt: skip
        client.post("/v1/enrollments/destination/confirm", json=confirm, headers=office)
        return {"code": "000000"}
    if method == "recovery":
        made = client.post("/v1/enrollments/recovery-codes", json={"subject": "known"},
                           headers=office)  # fmt: skip
        code = made.json()["codes"][0]
        return {"code": code[:-1] + ("0" if code[-1] != "0" else "1")}
    client.post("/v1/enrollments/eid", headers=office,
                json={"subject": "known", "document_number": "AB1234567"})  # fmt: skip
    return {"evidence": {}}


@pytest.mark.parametrize("method", ["totp", "hotp", "sms", "email", "recovery", "eid"])
def test_a_known_and_an_unknown_subject_look_alike(method: str) -> None:
    # Status, body fields and header names of begin and of a wrong answer: the same
    # whether the subject is enrolled or unknown (the values are random either way).
    service = build(order=("eid", "totp", "hotp", "sms", "email", "recovery"))
    client = TestClient(service.app)
    wrong = enroll_known(client, service, method)
    seen = {}
    for subject in ("known", "unknown"):
        begun = client.post("/v1/challenges", json={"subject": subject, "method": method})
        verified = client.post(f"/v1/challenges/{begun.json()['id']}/verify", json=wrong)
        seen[subject] = (shape(begun), shape(verified), verified.json().get("reason"))
    assert seen["known"] == seen["unknown"]
    assert seen["known"][1][0] in (401, 422)

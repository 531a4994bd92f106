"""The JSON API end to end through the ASGI app (httpx's in-process transport)."""

from __future__ import annotations

import json
from typing import Any

import pyotp
import pytest
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from macnss_auth.errors import ChallengeExpired
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.mrz import CAN
from macnss_auth.nfc.reader import DocumentReader
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.nfc.verify import encode_bundle
from macnss_auth.testing import FixedRandom
from macnss_auth.throttle import ThrottlePolicy
from macnss_auth.web import InvalidAssertion, verify_assertion

from .helpers import AUDIENCE, EMAIL, ISSUER, PHONE, Service, back_office, build, card

PROBLEM = "application/problem+json"


def problem(response: Any, status: int, reason: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["reason"] == reason
    assert body["status"] == status
    assert body["type"] == f"urn:macnss-auth:problem:{reason}"
    return body


def enroll_phone(client: TestClient, service: Service, subject: str = "youssef") -> None:
    started = client.post(
        "/v1/enrollments/destination",
        json={"subject": subject, "method": "sms", "destination": PHONE},
        headers=back_office(),
    )
    assert started.status_code == 201, started.text
    confirmed = client.post(
        "/v1/enrollments/destination/confirm",
        json={
            "subject": subject,
            "method": "sms",
            "challenge_id": started.json()["id"],
            "code": service.sms_code(),
        },
        headers=back_office(),
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["hint"].endswith("67")


def login(client: TestClient, service: Service, subject: str, **extra: str) -> dict[str, Any]:
    challenge = client.post("/v1/challenges", json={"subject": subject, "method": "sms"})
    assert challenge.status_code == 201, challenge.text
    answer = client.post(
        f"/v1/challenges/{challenge.json()['id']}/verify",
        json={"code": service.sms_code(), **extra},
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_methods_follow_the_clients_capabilities(client: TestClient) -> None:
    def offered(query: str) -> list[str]:
        response = client.get("/v1/methods" + query)
        assert response.status_code == 200
        return [m["method"] for m in response.json()["methods"]]

    assert offered("") == ["eid", "totp", "sms", "email", "recovery"]
    assert offered("?capabilities=sms") == ["sms", "recovery"]
    assert offered("?capabilities=nfc,app") == ["eid", "totp", "recovery"]
    assert offered("?capabilities=nfc,sms&exclude=eid") == ["sms", "recovery"]
    first = client.get("/v1/methods?capabilities=nfc").json()["methods"][0]
    assert first == {
        "method": "eid",
        "assurance": "high",
        "acr": "http://eidas.europa.eu/LoA/high",
        "needs": "nfc",
    }
    problem(client.get("/v1/methods?capabilities=telepathy"), 422, "invalid_request")


def test_sms_login_returns_a_verifiable_assertion(client: TestClient, service: Service) -> None:
    enroll_phone(client, service)
    body = login(client, service, "youssef", nonce="n-123")
    assert body["subject"] == "youssef"
    assert body["assurance"] == "low"
    assert body["acr"] == "http://eidas.europa.eu/LoA/low"
    jwks = client.get("/.well-known/jwks.json")
    assert jwks.headers["content-type"] == "application/jwk-set+json"
    claims = verify_assertion(
        body["assertion"],
        keys=jwks.json(),
        issuer=ISSUER,
        audience=AUDIENCE,
        nonce="n-123",
        now=service.clock.now(),
    )
    assert claims["sub"] == "youssef"
    assert claims["amr"] == ["sms"]
    assert claims["acr"] == "http://eidas.europa.eu/LoA/low"
    assert claims["nist_aal"] == 1
    assert claims["auth_time"] == int(service.clock.now().timestamp())
    assert claims["exp"] - claims["iat"] == 120
    assert len(claims["jti"]) >= 22
    with pytest.raises(InvalidAssertion):
        verify_assertion(
            body["assertion"], keys=jwks.json(), issuer=ISSUER, audience=AUDIENCE, nonce="other",
            now=service.clock.now(),
        )  # fmt: skip


def test_a_wrong_code_and_a_replay_are_problems_with_reasons(
    client: TestClient, service: Service
) -> None:
    enroll_phone(client, service)
    challenge = client.post("/v1/challenges", json={"subject": "youssef", "method": "sms"}).json()
    right = service.sms_code()
    wrong = "000000" if right != "000000" else "111111"
    url = f"/v1/challenges/{challenge['id']}/verify"
    body = problem(client.post(url, json={"code": wrong}), 401, "invalid_code")
    assert body["remaining_attempts"] == 4
    assert client.post(url, json={"code": right}).status_code == 200
    problem(client.post(url, json={"code": right}), 410, "challenge_used")
    problem(client.post("/v1/challenges/nope/verify", json={"code": right}), 404,
            "challenge_not_found")  # fmt: skip
    problem(client.post(url, json={"code": "12ab56"}), 422, "malformed_code")


def test_unknown_method_and_unknown_audience(client: TestClient, service: Service) -> None:
    problem(
        client.post("/v1/challenges", json={"subject": "a", "method": "carrier-pigeon"}),
        404,
        "method_not_offered",
    )
    enroll_phone(client, service)
    challenge = client.post("/v1/challenges", json={"subject": "youssef", "method": "sms"}).json()
    url = f"/v1/challenges/{challenge['id']}/verify"
    code = service.sms_code()
    # The audience is refused before the code is looked at: the code stays usable.
    body = problem(
        client.post(url, json={"code": code, "audience": "https://evil.example"}),
        422,
        "invalid_request",
    )
    assert body["errors"] == ["body.audience"]
    assert client.post(url, json={"code": code, "audience": AUDIENCE}).status_code == 200


def test_validation_errors_never_echo_the_input(client: TestClient) -> None:
    secret_looking = "9" * 65
    response = client.post("/v1/challenges/x/verify", json={"code": secret_looking})
    body = problem(response, 422, "invalid_request")
    assert body["errors"] == ["body.code"]
    assert secret_looking not in response.text
    both = client.post("/v1/challenges/x/verify", json={"code": "123456", "evidence": {}})
    problem(both, 422, "invalid_request")
    problem(client.post("/v1/challenges", content=b"{not json"), 422, "invalid_request")


def test_an_internal_bug_is_a_bare_500(client: TestClient, service: Service,
                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret detail: pepper=abc at line 42")

    monkeypatch.setattr(service.policy, "verify", broken)
    response = client.post("/v1/challenges/abc/verify", json={"code": "123456"})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.json() == {"type": "about:blank", "title": "Internal Server Error",
                               "status": 500}  # fmt: skip
    assert "secret" not in response.text
    assert "Traceback" not in response.text


def test_unknown_routes_and_methods_are_problems(client: TestClient) -> None:
    problem(client.get("/v1/nowhere"), 404, "not_found")
    problem(client.get("/v1/challenges"), 405, "not_found")


def test_a_huge_body_is_refused(client: TestClient) -> None:
    response = client.post("/v1/challenges/x/verify", content=b"x" * (600 * 1024),
                           headers={"content-type": "application/json"})  # fmt: skip
    problem(response, 413, "invalid_request")


def test_a_content_length_of_endless_digits_is_refused(client: TestClient) -> None:
    # 5000 digits are past int()'s limit: the body limit used to answer 500 (ValueError).
    response = client.post("/v1/challenges/x/verify", content=b"{}",
                           headers={"content-type": "application/json",
                                    "content-length": "9" * 5000})  # fmt: skip
    problem(response, 413, "invalid_request")


def test_lockout_is_429_with_retry_after() -> None:
    throttle = ThrottlePolicy(free_failures=1, base_delay=1.0, lockout_after=3)
    service = build(throttle=throttle)
    client = TestClient(service.app)
    enroll_phone(client, service)
    reasons = []
    for _ in range(4):
        challenge = client.post("/v1/challenges", json={"subject": "youssef", "method": "sms"})
        if challenge.status_code != 201:
            reasons.append(challenge.json()["reason"])
            continue
        answer = client.post(
            f"/v1/challenges/{challenge.json()['id']}/verify", json={"code": "000000"}
        )
        reasons.append(answer.json()["reason"])
        if answer.status_code == 429:
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.json()["retry_after"] >= 1
        service.clock.advance(5)
    assert reasons[:2] == ["invalid_code", "invalid_code"]
    assert "locked_out" in reasons[2:]


def test_totp_enrollment_by_api_then_login(client: TestClient, service: Service) -> None:
    problem(client.post("/v1/enrollments/otp", json={"subject": "amina"}), 401, "unauthorized")
    started = client.post(
        "/v1/enrollments/otp", json={"subject": "amina", "account": EMAIL}, headers=back_office()
    )
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["qr_svg"].startswith("<svg")
    assert body["uri"].startswith("otpauth://totp/CNSS:amina@example.ma?")
    secret = body["manual_entry_key"].replace(" ", "")
    confirm = client.post(
        "/v1/enrollments/otp/confirm",
        json={"subject": "amina", "code": service.totp_code(secret)},
        headers=back_office(),
    )
    assert confirm.status_code == 200, confirm.text
    service.clock.advance(30)
    challenge = client.post("/v1/challenges", json={"subject": "amina", "method": "totp"}).json()
    answer = client.post(
        f"/v1/challenges/{challenge['id']}/verify", json={"code": service.totp_code(secret)}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["acr"] == "http://eidas.europa.eu/LoA/substantial"


def test_enrollment_with_the_subjects_own_assertion(client: TestClient, service: Service) -> None:
    enroll_phone(client, service)
    # An assertion for the service's audience does not authorize enrollment...
    for_service = login(client, service, "youssef")["assertion"]
    headers = {"Authorization": f"Bearer {for_service}"}
    problem(client.post("/v1/enrollments/recovery-codes", json={"subject": "youssef"},
                        headers=headers), 401, "unauthorized")  # fmt: skip
    # ...one for this service itself does, for that subject only, while fresh.
    own = login(client, service, "youssef", audience=ISSUER)["assertion"]
    headers = {"Authorization": f"Bearer {own}"}
    problem(client.post("/v1/enrollments/recovery-codes", json={"subject": "fatima"},
                        headers=headers), 403, "forbidden")  # fmt: skip
    codes = client.post("/v1/enrollments/recovery-codes", json={"subject": "youssef"},
                        headers=headers)  # fmt: skip
    assert codes.status_code == 201, codes.text
    assert len(codes.json()["codes"]) == 10
    challenge = client.post("/v1/challenges", json={"subject": "youssef", "method": "recovery"})
    answer = client.post(
        f"/v1/challenges/{challenge.json()['id']}/verify", json={"code": codes.json()["codes"][0]}
    )
    assert answer.status_code == 200, answer.text
    service.clock.advance(601)
    problem(client.post("/v1/enrollments/recovery-codes", json={"subject": "youssef"},
                        headers=headers), 401, "unauthorized")  # fmt: skip


def test_eid_binding_and_upload(client: TestClient, service: Service) -> None:
    bound = client.post("/v1/enrollments/eid",
                        json={"subject": "fatima", "document_number": "AB1234567"},
                        headers=back_office())  # fmt: skip
    assert bound.status_code == 200, bound.text
    challenge = client.post("/v1/challenges", json={"subject": "fatima", "method": "eid"}).json()
    nonce = bytes.fromhex(challenge["data"]["nonce"])
    transport = MemoryTransport(VirtualCard(card().data, random=FixedRandom(3)))
    read = DocumentReader(transport, random=FixedRandom(4)).read(
        CAN("123456"), active_auth_challenge=nonce
    )
    upload = json.loads(
        encode_bundle(read.data_groups, read.files["SOD"], aa_signature=read.active_auth_signature)
    )
    answer = client.post(f"/v1/challenges/{challenge['id']}/verify", json={"evidence": upload})
    assert answer.status_code == 200, answer.text
    assert answer.json()["assurance"] == "high"
    claims = service.issuer.verify(answer.json()["assertion"], audience=AUDIENCE)
    assert claims["amr"] == ["sc", "hwk", "eid"]
    assert claims["nist_aal"] == 3
    # The same upload for a new challenge: the AA signature is over the old nonce.
    again = client.post("/v1/challenges", json={"subject": "fatima", "method": "eid"}).json()
    problem(client.post(f"/v1/challenges/{again['id']}/verify", json={"evidence": upload}),
            401, "document_not_genuine")  # fmt: skip
    nonsense = {"evidence": {"format": "nonsense"}}
    problem(client.post(f"/v1/challenges/{again['id']}/verify", json=nonsense), 410,
            "challenge_used")  # fmt: skip


def test_email_destination_and_login(client: TestClient, service: Service) -> None:
    started = client.post("/v1/enrollments/destination",
                          json={"subject": "amina", "method": "email", "destination": EMAIL},
                          headers=back_office())  # fmt: skip
    assert started.status_code == 201, started.text
    client.post("/v1/enrollments/destination/confirm", headers=back_office(), json={
        "subject": "amina", "method": "email", "challenge_id": started.json()["id"],
        "code": service.email.last_code()})  # fmt: skip
    challenge = client.post("/v1/challenges", json={"subject": "amina", "method": "email"}).json()
    assert challenge["hint"]
    assert EMAIL not in challenge["hint"]
    answer = client.post(f"/v1/challenges/{challenge['id']}/verify",
                         json={"code": service.email.last_code()})  # fmt: skip
    assert answer.status_code == 200, answer.text


def test_a_destination_is_confirmed_only_by_its_own_subject(
    client: TestClient, service: Service
) -> None:
    started = client.post("/v1/enrollments/destination",
                          json={"subject": "amina", "method": "email", "destination": EMAIL},
                          headers=back_office())  # fmt: skip
    code = service.email.last_code()
    enroll_phone(client, service)
    # youssef, authorized for himself only, answers amina's enrollment with its code.
    own = login(client, service, "youssef", audience=ISSUER)["assertion"]
    foreign = client.post("/v1/enrollments/destination/confirm",
                          headers={"Authorization": f"Bearer {own}"}, json={
        "subject": "youssef", "method": "email", "challenge_id": started.json()["id"],
        "code": code})  # fmt: skip
    problem(foreign, 404, "challenge_not_found")
    confirmed = client.post("/v1/enrollments/destination/confirm", headers=back_office(), json={
        "subject": "amina", "method": "email", "challenge_id": started.json()["id"],
        "code": code})  # fmt: skip
    assert confirmed.status_code == 200, confirmed.text


def test_subjects_with_control_characters_are_refused(client: TestClient) -> None:
    response = client.post("/v1/challenges", json={"subject": "alice\u0000x", "method": "sms"})
    assert problem(response, 422, "invalid_request")["errors"] == ["body.subject"]


def test_the_code_message_comes_in_the_requested_language(
    client: TestClient, service: Service
) -> None:
    enroll_phone(client, service)
    for language in ("ar", "en"):
        begun = client.post(
            "/v1/challenges", json={"subject": "youssef", "method": "sms", "language": language}
        )
        assert begun.status_code == 201, begun.text
        assert service.sms.last().language == language
    # TOTP sends nothing and ignores the language.
    assert client.post("/v1/challenges", json={"subject": "youssef", "method": "totp",
                                               "language": "ar"}).status_code == 201  # fmt: skip
    bad = client.post("/v1/challenges", json={"subject": "a", "method": "sms", "language": "de"})
    problem(bad, 422, "invalid_request")


def test_an_overlong_challenge_id_is_refused_before_the_store(client: TestClient) -> None:
    response = client.post("/v1/challenges/" + "a" * 65 + "/verify", json={"code": "123456"})
    assert problem(response, 422, "invalid_request")["errors"] == ["path.challenge_id"]


def test_extra_routers_share_the_app_and_its_problems() -> None:
    router = APIRouter(prefix="/v1/extra")

    @router.get("/threads")
    async def threads(request: Request) -> dict[str, int]:
        runtime = request.app.state.runtime
        return {"max": runtime.max_threads, "sum": await runtime.run(sum, [1, 2, 3])}

    @router.get("/fails")
    async def fails() -> None:
        raise ChallengeExpired()

    async def plain(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("plain")

    service = build(extra_routers=[router, Route("/plain", plain)])
    client = TestClient(service.app)
    assert client.get("/v1/extra/threads").json() == {"max": 8, "sum": 6}
    problem(client.get("/v1/extra/fails"), 410, "challenge_expired")
    assert client.get("/plain").text == "plain"


def test_hotp_enrollment_by_api_then_login() -> None:
    service = build(order=("hotp", "sms"))
    client = TestClient(service.app)
    started = client.post("/v1/enrollments/otp", headers=back_office(),
                          json={"subject": "driss", "method": "hotp"})  # fmt: skip
    assert started.status_code == 201, started.text
    assert started.json()["uri"].startswith("otpauth://hotp/CNSS:driss?")
    token = pyotp.HOTP(started.json()["manual_entry_key"].replace(" ", ""))
    first = {"subject": "driss", "method": "hotp", "code": token.at(0)}
    confirm = client.post("/v1/enrollments/otp/confirm", headers=back_office(), json=first)
    assert confirm.status_code == 200, confirm.text
    challenge = client.post("/v1/challenges", json={"subject": "driss", "method": "hotp"}).json()
    answer = client.post(f"/v1/challenges/{challenge['id']}/verify", json={"code": token.at(1)})
    assert answer.status_code == 200, answer.text
    assert service.issuer.verify(answer.json()["assertion"], audience=AUDIENCE)["amr"] == [
        "otp",
        "hotp",
    ]
    # TOTP is not configured here: its enrollment is not offered.
    refused = client.post("/v1/enrollments/otp", headers=back_office(), json={"subject": "driss"})
    problem(refused, 404, "method_not_offered")

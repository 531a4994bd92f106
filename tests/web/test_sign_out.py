"""Signing out ends the session on the server: a copy of the cookie is refused everywhere after.

The session is an assertion; before, ``POST /logout`` only deleted the cookie,
so whoever had copied it kept a session (account pages, enrollment API) until
it expired. Now the sign-out is kept in the store every instance shares.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import httpx
from fastapi.testclient import TestClient

from macnss_auth.audit.events import AuditAction, AuditEvent, Outcome
from macnss_auth.errors import StoreError
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.store.base import ChallengeRecord
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.web import SigningKeys
from macnss_auth.web.i18n import MESSAGES
from tests.conftest import OpenStore

from .helpers import AUDIENCE, ENROLLMENT_KEY, ISSUER, NOW, PHONE, Service, build

SUBJECT = "youssef"
COOKIE = "macnss_session"
EXPIRED = MESSAGES["en"]["session_expired"]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="(\w+)"', html)
    assert match is not None, html
    return match.group(1)


def enroll(service: Service) -> None:
    enrolling = service.sms_auth.enroll(SUBJECT, PHONE)
    service.sms_auth.confirm(enrolling, service.sms_code())


def log_in(client: TestClient, service: Service) -> str:
    """An SMS login through the page's forms; the session cookie it sets."""
    common = {"csrf": csrf_of(client.get("/login?lang=en").text), "subject": SUBJECT}
    step = client.post("/login/begin", data={**common, "method": "sms"})
    challenge_id = re.search(r'name="challenge_id" value="(\w+)"', step.text)
    assert challenge_id is not None, step.text
    answer = {"method": "sms", "code": service.sms_code(), "challenge_id": challenge_id.group(1)}
    done = client.post("/login/verify", data={**common, **answer})
    assert done.status_code == 200, done.text
    session = client.cookies.get(COOKIE)
    assert isinstance(session, str)
    assert session
    return session


def sign_out(client: TestClient) -> httpx.Response:
    account = client.get("/account?lang=en")
    assert account.status_code == 200, account.text
    out: httpx.Response = client.post(
        "/logout", data={"csrf": csrf_of(account.text)}, follow_redirects=False
    )
    return out


def thief(app: Any, session: str) -> TestClient:
    """Another browser holding a copy of ``session`` (and a CSRF cookie of its own)."""
    other = TestClient(app, raise_server_exceptions=False)
    other.get("/login?lang=en")
    other.cookies.set(COOKIE, session)
    return other


def uses(client: TestClient) -> dict[str, httpx.Response]:
    """Every kind of route that accepts the session, tried with the client's copy."""
    csrf = csrf_of(client.get("/login?lang=en").text)
    bearer = {"Authorization": f"Bearer {client.cookies.get(COOKIE)}"}
    return {
        "account": client.get("/account?lang=en"),
        "account_totp": client.post("/account/totp?lang=en", data={"csrf": csrf}),
        "api_otp": client.post("/v1/enrollments/otp", json={"subject": SUBJECT}, headers=bearer),
        "api_recovery": client.post(
            "/v1/enrollments/recovery-codes", json={"subject": SUBJECT}, headers=bearer
        ),
    }


def assert_refused(responses: dict[str, httpx.Response]) -> None:
    for name in ("account", "account_totp"):
        assert responses[name].status_code == 401, name
        assert EXPIRED in responses[name].text, name
    for name in ("api_otp", "api_recovery"):
        assert responses[name].status_code == 401, name
        assert responses[name].json()["reason"] == "unauthorized", name


def two_instances(open_any_store: OpenStore) -> tuple[Service, Service]:
    """Two instances of the service: one store (a SQLite file, a PostgreSQL schema...), one
    key set, one clock."""
    keys, clock = SigningKeys.generate(), FixedClock.at(NOW)
    one = build(store=open_any_store(), keys=keys, clock=clock)
    return one, build(store=open_any_store(), keys=keys, clock=clock)


def revocations(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    return [e for e in events if (e.action, e.method) == (AuditAction.REVOKE, "session")]


def test_a_copy_of_the_session_is_refused_everywhere_once_signed_out(service: Service) -> None:
    enroll(service)
    person = TestClient(service.app)
    session = log_in(person, service)
    copy = thief(service.app, session)
    before = uses(copy)
    assert [r.status_code for r in before.values()] == [200, 200, 201, 201]
    out = sign_out(person)
    assert out.status_code == 303
    assert "max-age=0" in out.headers["set-cookie"].lower()
    # The old code only deleted the cookie: the copy still opened the account page (200).
    assert_refused(uses(copy))
    # The person's browser no longer has it either.
    assert person.get("/account?lang=en").status_code == 401
    (event,) = revocations(service.audit.events)
    assert (event.subject, event.outcome) == (SUBJECT, Outcome.SUCCESS)
    assert event.details["ended"] == "sign_out"
    assert event.client is not None
    assert event.client.ip == "testclient"
    # No secret in the event: neither the token nor its id.
    jti = service.issuer.verify(session, audience=ISSUER)["jti"]
    text = repr(event)
    assert session not in text
    assert jti not in text


def test_a_signed_out_session_is_answered_as_an_expired_one(service: Service) -> None:
    enroll(service)
    person = TestClient(service.app)
    copy = thief(service.app, log_in(person, service))
    sign_out(person)
    revoked = uses(copy)
    # A session that expired instead: the same answers, word for word.
    copy.cookies.set(COOKIE, log_in(person, service))
    service.clock.advance(600 + 1)  # enrollment_max_age
    expired = uses(copy)
    assert_refused(expired)
    for name, response in revoked.items():
        assert (response.status_code, response.text) == (
            expired[name].status_code,
            expired[name].text,
        ), name


def test_the_revocation_is_no_challenge_and_purges_itself(service: Service) -> None:
    enroll(service)
    person = TestClient(service.app, raise_server_exceptions=False)
    session = log_in(person, service)
    claims = service.issuer.verify(session, audience=ISSUER)
    sign_out(person)
    revoked = service.store.get_challenge(f"revoked-session:{claims['jti']}")
    assert revoked is not None
    # Nobody can answer it as a challenge, on any route.
    answered = person.post(f"/v1/challenges/{revoked.id}/verify", json={"code": "123456"})
    assert (answered.status_code, answered.json()["reason"]) == (404, "challenge_not_found")
    assert service.store.consume_challenge(revoked.id, service.clock.now()) is None
    # It lives as long as the token (and a minute for instances' clocks), then purge drops it.
    assert revoked.challenge.expires_at.timestamp() == claims["exp"] + 60
    service.clock.advance(claims["exp"] - NOW - 1)
    service.store.purge(service.clock.now())
    assert service.store.get_challenge(revoked.id) is not None
    service.clock.advance(62)
    assert service.store.purge(service.clock.now()) >= 1
    assert service.store.get_challenge(revoked.id) is None


def test_signing_out_on_one_instance_ends_the_session_on_the_other(
    open_any_store: OpenStore,
) -> None:
    one, two = two_instances(open_any_store)
    clock = one.clock
    enroll(one)
    person = TestClient(one.app)
    session = log_in(person, one)
    copy = thief(two.app, session)
    assert copy.get("/account?lang=en").status_code == 200  # the other instance believes it
    assert sign_out(person).status_code == 303  # on the first instance
    assert_refused(uses(copy))  # on the second
    # Signing out the copy on the second instance changes nothing, and is not audited twice.
    again = copy.post("/logout", data={"csrf": csrf_of(copy.get("/login").text)},
                      follow_redirects=False)  # fmt: skip
    assert again.status_code == 303
    assert len(revocations(one.audit.events)) == 1
    assert revocations(two.audit.events) == []
    # Once the token would have expired anyway, any instance's purge drops the revocation.
    claims = one.issuer.verify(session, audience=ISSUER)
    revoked = f"revoked-session:{claims['jti']}"
    assert two.store.get_challenge(revoked) is not None
    clock.advance(claims["exp"] - NOW + 61)
    assert two.store.purge(clock.now()) >= 1
    assert one.store.get_challenge(revoked) is None


def test_a_sign_out_reaches_an_instance_whose_clock_runs_behind() -> None:
    store = MemoryStore(keyring=Keyring.generate(random=FixedRandom(9)))
    keys = SigningKeys.generate()
    one = build(store=store, keys=keys, clock=FixedClock.at(NOW))
    two = build(store=store, keys=keys, clock=FixedClock.at(NOW - 30))  # 30 s behind
    enroll(one)
    person = TestClient(one.app)
    copy = thief(two.app, log_in(person, one))
    account = person.get("/account?lang=en")
    for clock in (one.clock, two.clock):
        clock.advance(600 + 10)  # the first instance now sees the session expired...
    assert copy.get("/account?lang=en").status_code == 200  # ...the second does not, yet
    out = person.post("/logout", data={"csrf": csrf_of(account.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert copy.get("/account?lang=en").status_code == 401
    assert len(revocations(one.audit.events)) == 1


def test_a_new_login_ends_the_session_it_replaces(service: Service) -> None:
    enroll(service)
    person = TestClient(service.app)
    first = log_in(person, service)
    copy = thief(service.app, first)
    second = log_in(person, service)  # in the same browser, without signing out
    assert second != first
    assert (
        service.issuer.verify(second, audience=ISSUER)["jti"]
        != (service.issuer.verify(first, audience=ISSUER)["jti"])
    )
    assert person.get("/account?lang=en").status_code == 200
    assert_refused(uses(copy))
    (event,) = revocations(service.audit.events)
    assert event.details["ended"] == "new_login"


def test_a_sign_out_without_the_forms_token_ends_nothing(service: Service) -> None:
    enroll(service)
    person = TestClient(service.app)
    log_in(person, service)
    forged = person.post("/logout", data={"csrf": "a" * 32}, follow_redirects=False)
    assert forged.status_code == 303
    assert person.get("/account?lang=en").status_code == 200
    assert revocations(service.audit.events) == []


class FailingStore(MemoryStore):
    """A store that stops answering about sign-outs when told to."""

    broken = False

    def create_challenge(self, record: ChallengeRecord) -> None:
        if self.broken:
            raise StoreError("the database is gone", retryable=True)
        super().create_challenge(record)

    def get_challenge(self, challenge_id: str) -> ChallengeRecord | None:
        if self.broken and challenge_id.startswith("revoked-session:"):
            raise StoreError("the database is gone", retryable=True)
        return super().get_challenge(challenge_id)


def test_a_store_that_cannot_keep_the_sign_out_is_said_and_refuses_the_session() -> None:
    store = FailingStore(keyring=Keyring.generate(random=FixedRandom(9)))
    service = build(store=store)
    enroll(service)
    person = TestClient(service.app, raise_server_exceptions=False)
    session = log_in(person, service)
    store.broken = True
    account = person.get("/account?lang=en")
    # A session the store cannot vouch for is not believed (fail closed)...
    assert (account.status_code, EXPIRED in account.text) == (401, True)
    api = person.post("/v1/enrollments/otp", json={"subject": SUBJECT},
                      headers={"Authorization": f"Bearer {session}"})  # fmt: skip
    assert (api.status_code, api.json()["reason"]) == (503, "unavailable")
    # ...and a sign-out it could not keep says so (the browser forgets the cookie anyway).
    out = person.post("/logout", data={"csrf": csrf_of(account.text)}, follow_redirects=False)
    assert out.status_code == 503
    assert MESSAGES["en"]["error_sign_out"].format(minutes=10) in out.text
    assert "max-age=0" in out.headers["set-cookie"].lower()
    assert revocations(service.audit.events) == []


def api_session(client: TestClient, service: Service) -> str:
    """An app's session: an SMS login through the JSON API, its assertion for this service."""
    challenge = client.post("/v1/challenges", json={"subject": SUBJECT, "method": "sms"}).json()
    answer = {"code": service.sms_code(), "audience": ISSUER}
    done = client.post(f"/v1/challenges/{challenge['id']}/verify", json=answer)
    assert done.status_code == 200, done.text
    token = done.json()["assertion"]
    assert isinstance(token, str)
    return token


def api_sign_out(client: TestClient, token: str) -> httpx.Response:
    out: httpx.Response = client.post(
        "/v1/sessions/sign-out", headers={"Authorization": f"Bearer {token}"}
    )
    return out


def test_an_apps_session_signs_out_through_the_api_on_every_instance(
    open_any_store: OpenStore,
) -> None:
    one, two = two_instances(open_any_store)
    enroll(one)
    app, copy = TestClient(one.app), TestClient(two.app)
    token = api_session(app, one)
    bearer = {"Authorization": f"Bearer {token}"}
    otp = {"subject": SUBJECT}
    assert copy.post("/v1/enrollments/otp", json=otp, headers=bearer).status_code == 201
    out = api_sign_out(app, token)
    assert (out.status_code, out.json()) == (200, {"status": "ok"})
    # Before this route an app's session could not be ended: the copy kept enrolling.
    for client in (app, copy):
        refused = client.post("/v1/enrollments/otp", json=otp, headers=bearer)
        assert (refused.status_code, refused.json()["reason"]) == (401, "unauthorized")
    # Again, from the other instance: the same answer, recorded once.
    assert api_sign_out(copy, token).json() == {"status": "ok"}
    (event,) = revocations([*one.audit.events, *two.audit.events])
    assert (event.subject, event.details["ended"]) == (SUBJECT, "sign_out")
    assert token not in repr(event)


def test_the_api_sign_out_answers_alike_for_a_token_with_no_session(service: Service) -> None:
    enroll(service)
    client = TestClient(service.app)
    token = api_session(client, service)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    challenge = client.post("/v1/challenges", json={"subject": SUBJECT, "method": "sms"}).json()
    answer = {"code": service.sms_code(), "audience": AUDIENCE}  # a calling service's token
    elsewhere = client.post(f"/v1/challenges/{challenge['id']}/verify", json=answer).json()
    office = ENROLLMENT_KEY.decode()
    for other in (forged, "not-a-token", elsewhere["assertion"], office):
        out = api_sign_out(client, other)
        assert (out.status_code, out.json()) == (200, {"status": "ok"})
    assert revocations(service.audit.events) == []
    # The real session was not touched by any of them.
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.post("/v1/enrollments/otp", json={"subject": SUBJECT},
                       headers=bearer).status_code == 201  # fmt: skip
    # Without credentials at all: unauthorized, as every route that needs them.
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer  "}):
        refused = client.post("/v1/sessions/sign-out", headers=headers)
        assert (refused.status_code, refused.json()["reason"]) == (401, "unauthorized")


def log_in_page(client: TestClient, service: Service, lang: str = "en") -> httpx.Response:
    """An SMS login through the page's forms, in ``lang``; the success page."""
    common = {"csrf": csrf_of(client.get(f"/login?lang={lang}").text), "subject": SUBJECT}
    step = client.post(f"/login/begin?lang={lang}", data={**common, "method": "sms"})
    challenge_id = re.search(r'name="challenge_id" value="(\w+)"', step.text)
    assert challenge_id is not None, step.text
    answer = {"method": "sms", "code": service.sms_code(), "challenge_id": challenge_id.group(1)}
    done: httpx.Response = client.post(f"/login/verify?lang={lang}", data={**common, **answer})
    assert done.status_code == 200, done.text
    return done


def test_the_success_page_signs_out_and_a_copy_is_refused_after(service: Service) -> None:
    # Before, only the account page had the button: someone on a shared computer who
    # signed in to go back to a service had no way to end the session from this page.
    enroll(service)
    person = TestClient(service.app)
    done = log_in_page(person, service)
    form = re.search(r'<form method="post" action="/logout" id="sign-out">(.*?)</form>',
                     done.text, re.DOTALL)  # fmt: skip
    assert form is not None, done.text
    assert MESSAGES["en"]["sign_out"] in form.group(1)
    session = person.cookies.get(COOKIE)
    assert isinstance(session, str)
    copy = thief(service.app, session)
    assert copy.get("/account?lang=en").status_code == 200
    out = person.post("/logout", data={"csrf": csrf_of(form.group(1))}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/login?lang=en"
    assert "max-age=0" in out.headers["set-cookie"].lower()
    assert_refused(uses(copy))
    assert person.get("/account?lang=en").status_code == 401
    (event,) = revocations(service.audit.events)
    assert (event.subject, event.details["ended"]) == (SUBJECT, "sign_out")


def test_the_success_pages_sign_out_speaks_each_language(service: Service) -> None:
    enroll(service)
    for lang in ("ar", "fr", "en"):
        done = log_in_page(TestClient(service.app), service, lang)
        form = re.search(r'action="/logout" id="sign-out">(.*?)</form>', done.text, re.DOTALL)
        assert form is not None, (lang, done.text)
        assert MESSAGES[lang]["sign_out"] in form.group(1), lang
    assert len({MESSAGES[lang]["sign_out"] for lang in ("ar", "fr", "en")}) == 3

"""End to end: uvicorn on 127.0.0.1, the reference phone over a real WebSocket and over HTTP."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from macnss_auth import AssuranceLevel, ChallengeUsed, Policy
from macnss_auth.audit import MemoryAuditLog
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.phone import (
    SERVER_MESSAGES,
    ErrorMessage,
    Hello,
    PhoneFailure,
    PhoneLimits,
    PhoneMessage,
    PhoneMode,
    ReferencePhone,
    ResultMessage,
    Resume,
    Welcome,
    decode_message,
    encode_message,
)
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.web import AssertionIssuer, SigningKeys, create_app, verify_assertion
from macnss_auth.web.phone import PhoneGateway, phone_routes
from tests.web.server import LiveServer, live_server

from .conftest import BINDING_KEY, NOW, PROFILES, SUBJECT, issued, password_for, phone_for

AUDIENCE = "https://service.example.ma"


class Service:
    def __init__(self, limits: PhoneLimits | None = None) -> None:
        self.clock = FixedClock.at(NOW)
        store = MemoryStore(keyring=Keyring.generate(random=FixedRandom(9)))
        self.audit = MemoryAuditLog()
        trust = TrustStore()
        for name in PROFILES:
            trust.add_csca(issued(name).csca)
        self.eid = EidAuthenticator(
            store=store,
            audit=self.audit,
            trust_store=trust,
            binding_key=BINDING_KEY,
            clock=self.clock,
            random=FixedRandom(5),
        )
        self.eid.enroll(SUBJECT, document_number="AB1234567")
        self.policy = policy = Policy(
            authenticators=[(self.eid, AssuranceLevel.HIGH)],
            store=store,
            clock=self.clock,
            allow_hardware_only=True,  # the phone path alone is under test
        )
        self.issuer = AssertionIssuer(
            issuer="https://auth.example.ma",
            keys=SigningKeys.generate(clock=self.clock),
            audiences=[AUDIENCE],
            clock=self.clock,
        )
        self.app = create_app(
            policy=policy,
            assertions=self.issuer,
            clock=self.clock,
            login_page=False,
            extra_routers=[phone_routes(limits=limits)],
        )


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Service, LiveServer]]:
    service = Service()
    with live_server(service.app) as live:
        yield service, live


def ws_url(live: LiveServer) -> str:
    return live.url.replace("http://", "ws://") + "/v1/phone/ws"


def run_socket(
    socket: ClientConnection, phone: ReferencePhone, first: list[PhoneMessage]
) -> tuple[PhoneMessage, int]:
    """Send ``first``, then answer the server until it ends; return the last message and RTs."""
    for message in first:
        socket.send(encode_message(message))
    waits = 0
    while True:
        reply = decode_message(socket.recv(timeout=60), accept=SERVER_MESSAGES)
        waits += 1
        for out in phone.handle(reply):
            socket.send(encode_message(out))
        if isinstance(reply, ResultMessage | ErrorMessage):
            return reply, waits


@pytest.mark.parametrize("mode", [PhoneMode.SPLIT, PhoneMode.RELAY])
@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_over_a_websocket(
    served: tuple[Service, LiveServer], profile: str, mode: PhoneMode
) -> None:
    service, live = served
    card = issued(profile)
    challenge = service.eid.begin(SUBJECT)
    phone, _ = phone_for(card, profile, challenge, mode)
    with connect(ws_url(live)) as socket:
        last, _ = run_socket(socket, phone, phone.start())
    assert isinstance(last, ResultMessage)
    if profile == "pace-im":  # neither AA nor CA: never clone-resistant
        assert not last.authenticated
        assert last.reason == "document_not_genuine"
        return
    assert last.authenticated, last
    assert last.assurance == "high"
    assert "authentication" in last.proof
    claims = verify_assertion(
        last.assertion,
        keys=service.issuer.keys,
        audience=AUDIENCE,
        issuer=service.issuer.issuer,
        now=service.clock.now(),
    )
    assert claims["sub"] == SUBJECT
    assert service.audit.events[-1].details["mode"] == mode.value


def test_split_mode_pipelined_takes_two_round_trips(served: tuple[Service, LiveServer]) -> None:
    service, live = served
    card = issued("cnie")
    challenge = service.eid.begin(SUBJECT)
    phone, link = phone_for(card, "cnie", challenge, PhoneMode.SPLIT)
    phone = ReferencePhone(
        link,
        challenge_id=challenge.id,
        mode=PhoneMode.SPLIT,
        password=password_for(card, "cnie"),
        random=FixedRandom(103),
        nonce=bytes.fromhex(challenge.data["nonce"]),
    )
    with connect(ws_url(live)) as socket:
        last, waits = run_socket(socket, phone, phone.start())
    assert isinstance(last, ResultMessage)
    assert last.authenticated
    assert last.proof == "active_authentication,chip_authentication_remote"
    # welcome + commands come back to [hello, upload]; result to [responses].
    assert waits == 3


def test_relay_resumes_on_a_new_connection(served: tuple[Service, LiveServer]) -> None:
    service, live = served
    card = issued("cnie")
    challenge = service.eid.begin(SUBJECT)
    phone, _ = phone_for(card, "cnie", challenge, PhoneMode.RELAY)
    with connect(ws_url(live)) as socket:
        for message in phone.start():
            socket.send(encode_message(message))
        for _ in range(12):  # part of the way, then the connection drops
            reply = decode_message(socket.recv(timeout=60), accept=SERVER_MESSAGES)
            for out in phone.handle(reply):
                socket.send(encode_message(out))
        socket.recv(timeout=60)  # a command that will never be answered
    with connect(ws_url(live)) as socket:
        last, _ = run_socket(socket, phone, phone.resume())
    assert isinstance(last, ResultMessage)
    assert last.authenticated, last


def test_second_session_on_the_same_challenge_is_refused(
    served: tuple[Service, LiveServer],
) -> None:
    service, live = served
    challenge = service.eid.begin(SUBJECT)
    with connect(ws_url(live)) as first, connect(ws_url(live)) as second:
        first.send(encode_message(Hello(challenge.id, PhoneMode.SPLIT)))
        assert isinstance(decode_message(first.recv(timeout=60), accept=SERVER_MESSAGES), Welcome)
        second.send(encode_message(Hello(challenge.id, PhoneMode.SPLIT)))
        refused = decode_message(second.recv(timeout=60), accept=SERVER_MESSAGES)
    assert isinstance(refused, ErrorMessage)
    assert refused.reason is PhoneFailure.CHALLENGE_IN_USE


def test_garbage_over_the_socket_gets_a_typed_error(served: tuple[Service, LiveServer]) -> None:
    _, live = served
    with connect(ws_url(live)) as socket:
        socket.send("x" * 100)
        refused = decode_message(socket.recv(timeout=60), accept=SERVER_MESSAGES)
        assert isinstance(refused, ErrorMessage)
        assert refused.reason is PhoneFailure.MALFORMED_MESSAGE


def post(client: httpx.Client, messages: list[PhoneMessage], headers: dict[str, str]) -> Any:
    body = {"messages": [json.loads(encode_message(m)) for m in messages]}
    response = client.post("/v1/phone/batch", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("mode", [PhoneMode.SPLIT, PhoneMode.RELAY])
def test_http_fallback(served: tuple[Service, LiveServer], mode: PhoneMode) -> None:
    service, live = served
    card = issued("cnie")
    challenge = service.eid.begin(SUBJECT)
    phone, link = phone_for(card, "cnie", challenge, mode)
    if mode is PhoneMode.SPLIT:
        phone = ReferencePhone(
            link,
            challenge_id=challenge.id,
            mode=mode,
            password=password_for(card, "cnie"),
            random=FixedRandom(103),
            nonce=bytes.fromhex(challenge.data["nonce"]),
        )
    headers: dict[str, str] = {}
    pending = phone.start()
    posts = 0
    last: PhoneMessage | None = None
    with httpx.Client(base_url=live.url, timeout=60) as client:
        while pending:
            answer = post(client, pending, headers)
            posts += 1
            pending = []
            for item in answer["messages"]:
                last = decode_message(json.dumps(item), accept=SERVER_MESSAGES)
                if isinstance(last, Welcome):
                    token = encode_message(last)  # the token, as base64url, from the JSON
                    headers = {
                        "X-Phone-Session": last.session,
                        "Authorization": "Bearer " + json.loads(token)["token"],
                    }
                pending.extend(phone.handle(last))
        # A stranger who knows the session id but not the token is refused.
        stolen = client.post(
            "/v1/phone/batch",
            json={"messages": [{"v": 1, "type": "card_ready"}]},
            headers={"X-Phone-Session": headers["X-Phone-Session"]},
        )
        assert stolen.status_code == 401
    assert isinstance(last, ResultMessage)
    assert last.authenticated
    if mode is PhoneMode.SPLIT:
        assert posts == 2  # [hello, upload] then [responses]


def test_stalled_phone_is_timed_out() -> None:
    service = Service(limits=PhoneLimits(session_seconds=1))
    card = issued("cnie")
    with live_server(service.app) as live:
        challenge = service.eid.begin(SUBJECT)
        phone, _ = phone_for(card, "cnie", challenge, PhoneMode.RELAY)
        with connect(ws_url(live)) as socket:
            socket.send(encode_message(phone.start()[0]))
            decode_message(socket.recv(timeout=60), accept=SERVER_MESSAGES)  # welcome
            decode_message(socket.recv(timeout=60), accept=SERVER_MESSAGES)  # first command
            service.clock.advance(5)  # the phone says nothing more
            refused = decode_message(socket.recv(timeout=60), accept=SERVER_MESSAGES)
        assert isinstance(refused, ErrorMessage)
        assert refused.reason is PhoneFailure.TIMEOUT
        # The challenge is burnt and the failure audited with the mode.
        assert service.audit.events[-1].details["session_failure"] == "timeout"


def test_resume_with_a_wrong_token_does_not_end_the_real_session(
    served: tuple[Service, LiveServer],
) -> None:
    service, live = served
    card = issued("cnie")
    challenge = service.eid.begin(SUBJECT)
    phone, _ = phone_for(card, "cnie", challenge, PhoneMode.RELAY)
    with connect(ws_url(live)) as socket:
        for message in phone.start():
            socket.send(encode_message(message))
        welcome = decode_message(socket.recv(timeout=60), accept=SERVER_MESSAGES)
        assert isinstance(welcome, Welcome)
        phone.handle(welcome)
        first_command = decode_message(socket.recv(timeout=60), accept=SERVER_MESSAGES)
        with connect(ws_url(live)) as intruder:
            intruder.send(encode_message(Resume(welcome.session, bytes(16))))
            refused = decode_message(intruder.recv(timeout=60), accept=SERVER_MESSAGES)
        assert isinstance(refused, ErrorMessage)
        assert refused.reason is PhoneFailure.SESSION_CLOSED
        # The real phone carries on.
        first = phone.handle(first_command)
        last, _ = run_socket(socket, phone, first)
    assert isinstance(last, ResultMessage)
    assert last.authenticated


@pytest.mark.parametrize(
    "body",
    # "[" * 100_000 nests past the JSON parser's recursion limit (was a 500).
    [
        b"not json",
        b'{"messages": []}',
        b'{"messages": "x"}',
        b"[]",
        pytest.param(b"[" * 100_000, id="deep"),
    ],
)
def test_http_fallback_refuses_bad_bodies(served: tuple[Service, LiveServer], body: bytes) -> None:
    _, live = served
    with httpx.Client(base_url=live.url, timeout=60) as client:
        response = client.post(
            "/v1/phone/batch", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["reason"] == "invalid_request"


def test_http_fallback_garbage_message_gets_a_typed_error(
    served: tuple[Service, LiveServer],
) -> None:
    _, live = served
    with httpx.Client(base_url=live.url, timeout=60) as client:
        answer = client.post("/v1/phone/batch", json={"messages": [{"v": 1, "type": "nope"}]})
    assert answer.status_code == 200
    assert answer.json()["closed"] is True
    (error,) = answer.json()["messages"]
    assert error["type"] == "error"
    assert error["reason"] == "malformed_message"


def test_abandoned_sessions_are_swept_and_burnt() -> None:
    service = Service()
    gateway = PhoneGateway(
        policy=service.policy, assertions=service.issuer, limits=PhoneLimits(session_seconds=10)
    )
    first, second = service.eid.begin(SUBJECT), service.eid.begin(SUBJECT)
    opened = gateway.exchange(None, [encode_message(Hello(first.id, PhoneMode.SPLIT))], None)
    assert not opened.closed  # ... and the phone is never heard from again
    service.clock.advance(11)
    gateway.exchange(None, [encode_message(Hello(second.id, PhoneMode.SPLIT))], None)
    with pytest.raises(ChallengeUsed):
        service.eid.phone_session(first)
    swept = [e for e in service.audit.events if e.details.get("session_failure") == "timeout"]
    assert len(swept) == 1
    assert swept[0].client is None


def test_macnss_auth_serve_mounts_the_phone_endpoints(tmp_path: Path) -> None:
    from starlette.testclient import TestClient  # noqa: PLC0415 (this test only)

    from macnss_auth.cli.serve import build_service  # noqa: PLC0415 (this test only)

    home = tmp_path / "home"
    home.mkdir()  # the serve command creates it before building the service
    app = build_service(
        home,
        issuer="https://auth.example.ma",
        audiences=[AUDIENCE],
        stream=io.StringIO(),
    )
    with TestClient(app) as client:
        challenge = client.post("/v1/challenges", json={"subject": "amina", "method": "eid"})
        assert challenge.status_code == 201, challenge.text
        with client.websocket_connect("/v1/phone/ws") as socket:
            socket.send_text(encode_message(Hello(challenge.json()["id"], PhoneMode.SPLIT)))
            welcome = decode_message(socket.receive_text(), accept=SERVER_MESSAGES)
    assert isinstance(welcome, Welcome)
    assert welcome.mode is PhoneMode.SPLIT

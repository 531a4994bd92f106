"""The client context: X-Forwarded-For is believed only from configured proxies."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from macnss_auth import ConfigurationError
from macnss_auth.web import TrustedProxies
from macnss_auth.web.context import client_context

from .helpers import Service, back_office, build


def request(peer: str, *forwarded: str, agent: str = "app/1.0") -> Request:
    headers = [(b"x-forwarded-for", f.encode()) for f in forwarded]
    headers.append((b"user-agent", agent.encode()))
    return Request({"type": "http", "client": (peer, 5000), "headers": headers})


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    context = client_context(request("203.0.113.9", "198.51.100.1"), proxies)
    assert context.ip == "203.0.113.9"
    assert context.client_id == "203.0.113.9"
    assert context.user_agent == "app/1.0"


def test_the_rightmost_untrusted_hop_is_the_client() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "127.0.0.1"])
    # The client wrote a fake first hop; the proxies appended what they saw.
    seen = request("127.0.0.1", "1.2.3.4, 198.51.100.7", "10.1.2.3")
    assert client_context(seen, proxies).ip == "198.51.100.7"
    garbled = request("127.0.0.1", "1.2.3.4, not-an-address, 10.1.2.3")
    assert client_context(garbled, proxies).ip == "10.1.2.3"
    only_proxies = request("127.0.0.1", "10.9.9.9")
    assert client_context(only_proxies, proxies).ip == "10.9.9.9"
    assert client_context(request("127.0.0.1"), TrustedProxies()).ip == "127.0.0.1"


def test_control_characters_in_the_user_agent_are_dropped() -> None:
    context = client_context(request("192.0.2.1", agent="evil\x1b[31m"), TrustedProxies())
    assert context.user_agent is None


def test_bad_proxy_configuration_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        TrustedProxies(["example.org"])


@pytest.mark.parametrize(
    ("proxies", "expected"), [((), "testclient"), (("0.0.0.0/0", "::/0"), "198.51.100.23")]
)
def test_the_audit_log_sees_the_believed_address(proxies: tuple[str, ...], expected: str) -> None:
    service: Service = build(trusted_proxies=["127.0.0.1"])
    client = TestClient(service.app, client=("127.0.0.1", 4000))
    if not proxies:
        client = TestClient(service.app)
    client.post("/v1/enrollments/eid", headers=back_office(),
                json={"subject": "s", "document_number": "X1"})  # fmt: skip
    client.post(
        "/v1/challenges",
        json={"subject": "s", "method": "totp"},
        headers={"X-Forwarded-For": "198.51.100.23"},
    )
    begin = [r for r in service.audit.records() if r["method"] == "totp"][-1]
    assert begin["client"]["ip"] == expected
    assert begin["client"]["client_id"] == expected

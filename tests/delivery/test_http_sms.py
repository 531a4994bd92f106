"""The HTTP SMS gateway against a real HTTP server (http.server) on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from macnss_auth.delivery import (
    ChannelKind,
    DeliveryRejected,
    DeliveryTimeout,
    DeliveryUnavailable,
    HttpSmsGateway,
    OutboundMessage,
    RetryPolicy,
    deliver,
    find_code,
)
from macnss_auth.errors import ConfigurationError
from macnss_auth.secret import Secret
from tests.delivery.conftest import free_port

API_KEY = Secret(b"Bearer test-api-key")


class Gateway(BaseHTTPRequestHandler):
    """A fake operator gateway: records requests, answers from a script."""

    requests: ClassVar[list[dict[str, Any]]] = []
    script: ClassVar[list[tuple[int, float]]] = []
    reply: ClassVar[bytes | None] = None  # a body to answer instead of {"id": ...}

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length).decode("utf-8")
        status, delay = self.script.pop(0) if self.script else (200, 0.0)
        self.requests.append(
            {
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "type": self.headers.get("Content-Type"),
                "body": body,
            }
        )
        if delay:
            time.sleep(delay)
        answer = self.reply or json.dumps({"id": f"msg-{len(self.requests)}"}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
        except OSError:
            pass  # The client gave up (timeout test).

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
        """Keep test output quiet."""


@pytest.fixture
def gateway() -> Iterator[str]:
    Gateway.requests = []
    Gateway.script = []
    Gateway.reply = None
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/sms"
    server.shutdown()
    server.server_close()


def sms(text: str = "123456 is your CNSS code.") -> OutboundMessage:
    return OutboundMessage(kind=ChannelKind.SMS, to="+212612345678", text=text, language="en")


def test_json_request_from_template(gateway: str) -> None:
    channel = HttpSmsGateway(
        gateway,
        body={"from": "${sender}", "to": ["${to}"], "content": "${text}", "parts": "${segments}"},
        sender="CNSS",
        auth_header=("Authorization", API_KEY),
        message_id_field="id",
    )
    receipt = channel.send(sms())
    channel.close()
    [request] = Gateway.requests
    assert request["path"] == "/v1/sms"
    assert request["auth"] == "Bearer test-api-key"
    assert request["type"] == "application/json"
    body = json.loads(request["body"])
    assert body == {
        "from": "CNSS",
        "to": ["+212612345678"],
        "content": "123456 is your CNSS code.",
        "parts": "1",
    }
    assert find_code(body["content"]) == "123456"
    assert receipt.message_id == "msg-1"
    assert receipt.segments == 1
    assert "test-api-key" not in repr(channel)


def test_a_reply_nested_too_deep_still_counts_as_sent(gateway: str) -> None:
    # The SMS left; only its message id is unreadable (it was a RecursionError).
    Gateway.reply = b"[" * 100_000
    channel = HttpSmsGateway(gateway, body={"to": "${to}"}, message_id_field="id")
    receipt = channel.send(sms())
    channel.close()
    assert receipt.message_id is None
    assert len(Gateway.requests) == 1


def test_form_request_keeps_arabic_text(gateway: str) -> None:
    text = "\u2066123456\u2069 هو رمزك"
    channel = HttpSmsGateway(
        gateway, body={"dst": "${to}", "msg": "${text}", "coding": "${encoding}"}, encoding="form"
    )
    channel.send(sms(text))
    [request] = Gateway.requests
    assert request["type"] == "application/x-www-form-urlencoded"
    fields = urllib.parse.parse_qs(request["body"])
    assert fields == {"dst": ["+212612345678"], "msg": [text], "coding": ["ucs2"]}


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (429, DeliveryUnavailable, True),
        (503, DeliveryUnavailable, True),
        (400, DeliveryRejected, False),
        (401, DeliveryRejected, False),
    ],
)
def test_statuses_are_typed(
    gateway: str, status: int, error: type[Exception], retryable: bool
) -> None:
    Gateway.script = [(status, 0.0)]
    channel = HttpSmsGateway(gateway, body={"to": "${to}", "text": "${text}"})
    with pytest.raises(error) as info:
        channel.send(sms())
    assert getattr(info.value, "retryable", None) is retryable


def test_transient_failures_are_retried_with_backoff(gateway: str) -> None:
    Gateway.script = [(503, 0.0), (429, 0.0), (200, 0.0)]
    channel = HttpSmsGateway(gateway, body={"to": "${to}", "text": "${text}"})
    pauses: list[float] = []
    receipt = deliver(
        channel, sms(), policy=RetryPolicy(max_attempts=4, base_delay=1.0), sleep=pauses.append
    )
    assert receipt.attempts == 3
    assert pauses == [1.0, 2.0]
    assert len(Gateway.requests) == 3


def test_slow_gateway_times_out(gateway: str) -> None:
    Gateway.script = [(200, 1.0)]
    channel = HttpSmsGateway(gateway, body={"to": "${to}", "text": "${text}"}, timeout=0.2)
    with pytest.raises(DeliveryTimeout):
        channel.send(sms())


def test_unreachable_gateway_is_retryable() -> None:
    channel = HttpSmsGateway(
        f"http://127.0.0.1:{free_port()}/sms", body={"to": "${to}", "text": "${text}"}
    )
    with pytest.raises(DeliveryUnavailable):
        channel.send(sms())


def test_bad_template_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        HttpSmsGateway("http://127.0.0.1:1/", body={"to": "${phone}"})

"""Fuzzing request bodies: whatever a client posts, the answer is a response, never a 500.

Every JSON route of the API (read from the app's own OpenAPI document, so
new routes are fuzzed too) gets bodies built from its schema's property
names with hostile values (lone surrogates, 5000-digit numbers, NaN,
nesting past the parser's recursion limit, megabytes of text, wrong types),
and raw bytes that are not JSON at all. The passkey routes get a real
credential with one member replaced. The test client re-raises any
exception a route lets escape, so a foreign exception fails the test even
where a 500 handler would have hidden it. ``HYPOTHESIS_PROFILE=long``
(``make fuzz``) runs them with its budget.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macnss_auth.testing import FixedClock
from tests.passkey.web_service import build_service
from tests.web.helpers import back_office, build

SERVICE = build()
CLIENT = TestClient(SERVICE.app, raise_server_exceptions=True)


def _json_routes() -> list[tuple[str, list[str]]]:
    spec: dict[str, Any] = SERVICE.app.openapi()
    schemas = spec.get("components", {}).get("schemas", {})
    routes = []
    for path, operations in spec["paths"].items():
        body = operations.get("post", {}).get("requestBody", {})
        schema = body.get("content", {}).get("application/json", {}).get("schema", {})
        ref = schema.get("$ref", "")
        properties = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
        routes.append((path.replace("{challenge_id}", "c-1"), sorted(properties)))
    return [(path, fields) for path, fields in routes if fields]


ROUTES = _json_routes()

_HOSTILE: st.SearchStrategy[object] = st.sampled_from(
    [
        "\ud800",
        "",
        "\x00",
        "٣٣٣٣٣٣",
        "²",
        "x" * 70_000,
        "sms",
        "totp",
        "eid",
        "+212661234567",
        "a@b.ma",
        -1,
        2**64,
        1.5,
        True,
        None,
        [],
        {},
    ]
)
_VALUES = st.recursive(
    _HOSTILE | st.text(max_size=12) | st.integers(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=5,
)
# Bodies that no JSON encoder of ours would write: parsed (or refused) by the framework.
_RAW = st.sampled_from(
    [
        b"[" * 100_000,
        b'{"subject": ' + b"9" * 5000 + b"}",
        b'{"subject": NaN, "code": Infinity}',
        b'{"subject": "a", "subject": "b"}',
        b"\xff\xfe\x00",
        b"",
        b"null",
    ]
)


def _encode(body: dict[str, Any]) -> bytes:
    # ensure_ascii: lone surrogates travel as \ud800 escapes, as a hostile client sends them.
    return json.dumps(body).encode()


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    route=st.sampled_from(ROUTES),
    values=st.dictionaries(st.integers(0, 7), _VALUES, max_size=4),
    raw=st.none() | _RAW,
    authorized=st.booleans(),
)
def test_any_body_gets_a_response(
    route: tuple[str, list[str]], values: dict[int, Any], raw: bytes | None, authorized: bool
) -> None:
    path, fields = route
    body = {fields[i % len(fields)]: value for i, value in values.items()}
    headers = {"content-type": "application/json", **(back_office() if authorized else {})}
    response = CLIENT.post(path, content=raw if raw is not None else _encode(body), headers=headers)
    assert response.status_code < 500, (path, response.text[:200])


PASSKEYS = build_service(origin="http://localhost:8443", clock=FixedClock.at(1_800_000_000))
PASSKEY_CLIENT = TestClient(PASSKEYS.app, raise_server_exceptions=True)


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    member=st.sampled_from(["credential", "audience", "subject", "extra"]),
    value=_VALUES,
    inner=st.sampled_from(["id", "rawId", "type", "response", "clientExtensionResults", None]),
)
def test_any_passkey_verification_body_gets_a_response(
    member: str, value: Any, inner: str | None
) -> None:
    begun = PASSKEY_CLIENT.post("/v1/passkeys/challenges", json={})
    assert begun.status_code == 201
    response: dict[str, Any] = {"clientDataJSON": "e30", "authenticatorData": "AAAA",
                                "signature": "AAAA"}  # fmt: skip
    credential: dict[str, Any] = {"id": "AAAA", "rawId": "AAAA", "type": "public-key",
                                  "response": response}  # fmt: skip
    body: dict[str, Any] = {"credential": credential, "audience": "https://service.example.ma"}
    if member == "credential" and inner is not None:
        credential[inner] = value
    else:
        body[member] = value
    answer = PASSKEY_CLIENT.post(
        f"/v1/passkeys/challenges/{begun.json()['id']}/verify",
        content=_encode(body),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code < 500, answer.text[:200]


def test_every_json_route_is_fuzzed() -> None:
    paths = {path for path, _ in ROUTES}
    assert "/v1/challenges" in paths
    assert "/v1/challenges/c-1/verify" in paths
    assert len(paths) >= 6

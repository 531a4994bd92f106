"""``macnss-auth serve`` mounts the passkey method when the passkey extra is installed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("webauthn")

from fastapi.testclient import TestClient

from macnss_auth.cli.serve import build_service


def _service(home: Path, **options: Any) -> TestClient:
    home.mkdir(mode=0o700, exist_ok=True)
    app = build_service(home, issuer="http://127.0.0.1:8123", audiences=["macnss-demo"], **options)
    return TestClient(app)


def _options(client: TestClient) -> dict[str, Any]:
    begun = client.post("/v1/passkeys/challenges", json={})
    assert begun.status_code == 201, begun.text
    options = begun.json()["data"]["options"]
    return options if isinstance(options, dict) else dict(json.loads(options))


def test_serve_offers_passkeys_on_localhost_by_default(tmp_path: Path) -> None:
    with _service(tmp_path / "home") as client:
        assert _options(client)["rpId"] == "localhost"
        assert client.get("/passkey").status_code == 200
        # The policy offers the method too (a named login through /v1/challenges).
        named = client.post("/v1/challenges", json={"subject": "amina", "method": "passkey"})
        assert named.status_code == 201, named.text


def test_serve_takes_the_passkey_origins_it_is_given(tmp_path: Path) -> None:
    origins = ["https://auth.example.ma"]
    with _service(tmp_path / "home", passkey_origins=origins) as client:
        assert _options(client)["rpId"] == "auth.example.ma"


def test_serve_runs_without_passkeys_when_the_extra_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes the import fail as if the extra were not installed.
    monkeypatch.setitem(sys.modules, "macnss_auth.passkey", None)
    monkeypatch.setitem(sys.modules, "macnss_auth.web.passkey", None)
    with _service(tmp_path / "home") as client:
        assert client.post("/v1/passkeys/challenges", json={}).status_code == 404
        named = client.post("/v1/challenges", json={"subject": "amina", "method": "passkey"})
        assert named.status_code not in (200, 201)
        # The other methods are there as before.
        totp = client.post("/v1/challenges", json={"subject": "amina", "method": "totp"})
        assert totp.status_code == 201, totp.text


def _allowed(client: TestClient, subject: str) -> list[str]:
    begun = client.post("/v1/challenges", json={"subject": subject, "method": "passkey"})
    assert begun.status_code == 201, begun.text
    options = begun.json()["data"]["options"]
    options = options if isinstance(options, dict) else json.loads(options)
    return [credential["id"] for credential in options.get("allowCredentials", [])]


def test_an_unknown_subjects_decoy_passkeys_survive_a_restart(tmp_path: Path) -> None:
    # A real subject's list stays the same across restarts and instances; so must a decoy's,
    # or comparing two answers would tell who has passkeys.
    home = tmp_path / "home"
    with _service(home) as client:
        decoys = _allowed(client, "nobody")
    assert decoys
    with _service(home) as client:
        assert _allowed(client, "nobody") == decoys
    assert (home / "passkey-decoy.key").stat().st_mode & 0o777 == 0o600

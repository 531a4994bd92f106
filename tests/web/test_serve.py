"""``macnss-auth serve``: embedded defaults, and several instances on one PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from macnss_auth.delivery import find_code
from macnss_auth.nfc.phone import PhoneLimits
from tests.store.services import postgres_server

from .helpers import PHONE
from .server import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serve(home: Path, *args: str) -> Iterator[tuple[str, Path]]:
    """Run ``macnss-auth serve`` in a subprocess; yield its URL and its console log."""
    port = free_port()
    log = home.parent / f"serve-{port}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-c", "from macnss_auth.cli import main; main()", "serve",
               "--home", str(home), "--port", str(port), *args]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield url, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def back_office(home: Path) -> dict[str, str]:
    return {"Authorization": "Bearer " + (home / "enrollment.key").read_text().strip()}


def sent(log: Path) -> int:
    """SMS messages printed on the console so far."""
    return log.read_text().count("--- sms to ")


def code_after(log: Path, seen: int) -> str:
    """The code of the first SMS after the ``seen`` first (waiting for delivery)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        blocks = log.read_text().split("--- sms to ")[1:]
        if len(blocks) > seen:
            return find_code(blocks[seen])
        time.sleep(0.05)
    raise AssertionError("no code on the console")


def enroll_phone(url: str, home: Path, log: Path) -> None:
    body = {"subject": "youssef", "method": "sms", "destination": PHONE}
    seen = sent(log)
    started = httpx.post(url + "/v1/enrollments/destination", headers=back_office(home), json=body)
    assert started.status_code == 201, started.text
    confirm = {"subject": "youssef", "method": "sms", "challenge_id": started.json()["id"],
               "code": code_after(log, seen)}  # fmt: skip
    confirmed = httpx.post(
        url + "/v1/enrollments/destination/confirm", headers=back_office(home), json=confirm
    )
    assert confirmed.status_code == 200, confirmed.text


def test_serve_on_embedded_defaults(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serve(home) as (url, log):
        assert "login page" in log.read_text()
        assert (home / "state.sqlite3").exists()
        assert (home / "card" / "card.json").exists() or any((home / "card").iterdir())
        assert httpx.get(url + "/login").status_code == 200
        enroll_phone(url, home, log)
        seen = sent(log)
        challenge = httpx.post(url + "/v1/challenges", json={"subject": "youssef", "method": "sms"})
        answer_body = {"code": code_after(log, seen), "audience": "macnss-demo"}
        answer = httpx.post(
            url + f"/v1/challenges/{challenge.json()['id']}/verify", json=answer_body
        )
        assert answer.status_code == 200, answer.text
        kid = httpx.get(url + "/.well-known/jwks.json").json()["keys"][0]["kid"]
    # A restart keeps the keys and the state: the resend cooldown still holds.
    with serve(home) as (url, log):
        assert httpx.get(url + "/.well-known/jwks.json").json()["keys"][0]["kid"] == kid
        challenge = httpx.post(url + "/v1/challenges", json={"subject": "youssef", "method": "sms"})
        assert challenge.status_code == 429
        assert challenge.json()["reason"] == "rate_limited"


def test_serve_can_keep_an_sms_login_from_adding_methods(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serve(home, "--enrollment-min-assurance", "substantial",
               "--issuer", "http://127.0.0.1:1") as (url, log):  # fmt: skip
        enroll_phone(url, home, log)
        seen = sent(log)
        challenge = httpx.post(url + "/v1/challenges", json={"subject": "youssef", "method": "sms"})
        answer = httpx.post(url + f"/v1/challenges/{challenge.json()['id']}/verify",
                            json={"code": code_after(log, seen),
                                  "audience": "http://127.0.0.1:1"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        own = {"Authorization": f"Bearer {answer.json()['assertion']}"}
        refused = httpx.post(url + "/v1/enrollments/otp", json={"subject": "youssef"}, headers=own)
        assert refused.status_code == 403, refused.text


def test_serve_refuses_a_websocket_frame_larger_than_any_phone_message(tmp_path: Path) -> None:
    limit = PhoneLimits().max_message_bytes
    with serve(tmp_path / "home") as (url, _):
        ws = url.replace("http://", "ws://") + "/v1/phone/ws"
        # uvicorn itself closes with 1009 (message too big): the frame never reaches the app.
        with connect(ws, max_size=None) as socket:
            socket.send("x" * (limit + 1))
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009


@pytest.mark.services
def test_two_instances_share_one_postgresql(tmp_path: Path) -> None:
    with postgres_server() as conninfo:
        port = re.search(r"port=(\d+)", conninfo)
        assert port is not None
        database = f"postgresql://postgres@127.0.0.1:{port.group(1)}/postgres"
        home = tmp_path / "home"
        with serve(home, "--database", database) as (first, log_a), \
                serve(home, "--database", database) as (second, log_b):  # fmt: skip
            enroll_phone(first, home, log_a)
            seen = sent(log_a)
            challenge = httpx.post(first + "/v1/challenges",
                                   json={"subject": "youssef", "method": "sms"})  # fmt: skip
            code = code_after(log_a, seen)
            # Verified on the other instance; a replay on the first is refused.
            answer = httpx.post(second + f"/v1/challenges/{challenge.json()['id']}/verify",
                                json={"code": code})  # fmt: skip
            assert answer.status_code == 200, answer.text
            again = httpx.post(first + f"/v1/challenges/{challenge.json()['id']}/verify",
                               json={"code": code})  # fmt: skip
            assert again.json()["reason"] == "challenge_used"
            jwks = [httpx.get(u + "/.well-known/jwks.json").json() for u in (first, second)]
            assert jwks[0] == jwks[1]
            del log_b

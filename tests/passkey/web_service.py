"""A service with TOTP and passkeys behind the HTTP layer, for the passkey web and browser tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pyotp
import uvicorn

from macnss_auth import AssuranceLevel, Policy
from macnss_auth.audit import MemoryAuditLog
from macnss_auth.clock import Clock, SystemClock
from macnss_auth.otp import TotpAuthenticator
from macnss_auth.passkey import PasskeyAuthenticator
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.throttle import ThrottlePolicy
from macnss_auth.web import AssertionIssuer, SigningKeys, create_app
from macnss_auth.web.passkey import passkey_router

ISSUER = "https://auth.example.ma"
AUDIENCE = "https://service.example.ma"
SECRET = b"12345678901234567890"


@attrs.define
class PasskeyService:
    app: Any
    passkeys: PasskeyAuthenticator
    totp: TotpAuthenticator
    audit: MemoryAuditLog
    clock: Clock

    def enroll_totp(self, subject: str) -> pyotp.TOTP:
        """An authenticator app for ``subject``: the "other method" of the first login."""
        self.totp.enroll(subject, secret=SECRET)
        app = pyotp.TOTP(base64.b32encode(SECRET).decode())
        self.totp.confirm(subject, app.at(self.clock.now().timestamp() - 30))
        return app


def build_service(
    *, origin: str, clock: Clock | None = None, challenge_ttl: float = 300.0
) -> PasskeyService:
    clock = clock or SystemClock()
    store = MemoryStore(keyring=Keyring.generate())
    audit = MemoryAuditLog()
    throttle = ThrottlePolicy(free_failures=5, lockout_after=20)
    totp = TotpAuthenticator(store=store, audit=audit, clock=clock, throttle_policy=throttle)
    passkeys = PasskeyAuthenticator(
        store=store,
        audit=audit,
        rp_id="localhost",
        origins=[origin],
        rp_name="CNSS",
        clock=clock,
        throttle_policy=throttle,
        challenge_ttl=challenge_ttl,
    )
    policy = Policy(
        authenticators=[
            (passkeys, AssuranceLevel.SUBSTANTIAL),
            (totp, AssuranceLevel.SUBSTANTIAL),
        ],
        store=store,
        clock=clock,
    )
    issuer = AssertionIssuer(
        issuer=ISSUER, keys=SigningKeys.generate(clock=clock), audiences=[AUDIENCE], clock=clock
    )
    app = create_app(
        policy=policy,
        assertions=issuer,
        clock=clock,
        extra_routers=[passkey_router(passkeys)],
        audit=audit,
    )
    return PasskeyService(app=app, passkeys=passkeys, totp=totp, audit=audit, clock=clock)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serve(app: Any, port: int) -> Iterator[None]:
    """Serve ``app`` with uvicorn on 127.0.0.1:``port`` in a thread until the block ends."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
        )
    )
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve())
        except BaseException as exc:  # noqa: BLE001 (reported below)
            failure.append(exc)

    thread = threading.Thread(target=run, name="uvicorn-passkey", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if failure or not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start: {failure!r}")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=20)

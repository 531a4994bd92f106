"""What the passkey tests share: a configured authenticator and its virtual device."""

from __future__ import annotations

from typing import Any

import attrs

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.audit.events import AuditEvent
from macnss_auth.authenticator import AuthResult
from macnss_auth.passkey import (
    AttestationPolicy,
    PasskeyAuthenticator,
    PasskeyCredential,
    Requirement,
)
from macnss_auth.passkey.virtual import VirtualAuthenticator
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.store.base import Store
from macnss_auth.testing import FixedClock
from macnss_auth.throttle import ThrottlePolicy

RP_ID = "localhost"
ORIGIN = "http://localhost:8443"
NOW = 1_800_000_000


@attrs.define
class Setup:
    """An authenticator, its store and audit log, and a clock they share."""

    passkeys: PasskeyAuthenticator
    store: Store
    audit: MemoryAuditLog
    clock: FixedClock

    def device(self, **options: Any) -> VirtualAuthenticator:
        """A fresh virtual phone on the configured origin."""
        return VirtualAuthenticator(origin=ORIGIN, **options)

    def register(
        self, subject: str, device: VirtualAuthenticator, **create: Any
    ) -> PasskeyCredential:
        challenge = self.passkeys.begin_registration(subject)
        return self.passkeys.finish_registration(
            challenge, device.create(challenge.data["options"], **create)
        )

    def login(self, subject: str | None, device: VirtualAuthenticator, **get: Any) -> AuthResult:
        challenge = self.passkeys.begin(subject)
        return self.passkeys.verify(challenge, device.get(challenge.data["options"], **get))

    def last_event(self) -> AuditEvent:
        return self.audit.events[-1]


def make_setup(
    *,
    store: Store | None = None,
    clock: FixedClock | None = None,
    attestation: AttestationPolicy | None = None,
    user_verification: Requirement = "required",
    throttle_policy: ThrottlePolicy | None = None,
    max_credentials: int = 10,
    origins: tuple[str, ...] = (ORIGIN,),
) -> Setup:
    clock = clock or FixedClock.at(NOW)
    store = store if store is not None else MemoryStore(keyring=Keyring.generate())
    audit = MemoryAuditLog()
    passkeys = PasskeyAuthenticator(
        store=store,
        audit=audit,
        rp_id=RP_ID,
        origins=origins,
        rp_name="CNSS",
        clock=clock,
        attestation=attestation,
        user_verification=user_verification,
        throttle_policy=throttle_policy,
        max_credentials=max_credentials,
    )
    return Setup(passkeys, store, audit, clock)

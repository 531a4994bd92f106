"""A complete service for the web tests: every method, capturing channels, a fixed clock."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import attrs
import pyotp

from macnss_auth import AssuranceLevel, Authenticator, Policy
from macnss_auth.audit import MemoryAuditLog
from macnss_auth.delivery import CapturingChannel, ChannelKind
from macnss_auth.nfc.card import IssuedCard, issue_card
from macnss_auth.nfc.card.issuer import Person
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.otp import (
    EmailCodeAuthenticator,
    HotpAuthenticator,
    RecoveryCodeAuthenticator,
    SMSCodeAuthenticator,
    TotpAuthenticator,
)
from macnss_auth.otp.oob import InlineDispatcher, ResendPolicy
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, MemoryStore, Store
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.throttle import ThrottlePolicy
from macnss_auth.web import AssertionIssuer, SigningKeys, create_app

NOW = 1_800_000_000.0
ISSUER = "https://auth.example.ma"
AUDIENCE = "https://service.example.ma"
ENROLLMENT_KEY = b"back-office-key-0123456789abcdef-0123"
PHONE = "+212661234567"
EMAIL = "amina@example.ma"


@functools.cache
def card() -> IssuedCard:
    return issue_card(
        "cnie", clock=FixedClock.at(NOW), can="123456", person=Person(document_number="AB1234567")
    )


@attrs.define
class Service:
    """What a test needs to drive and inspect the app."""

    app: Any
    clock: FixedClock
    store: Store
    sms: CapturingChannel
    email: CapturingChannel
    totp: TotpAuthenticator
    sms_auth: SMSCodeAuthenticator
    eid: EidAuthenticator
    policy: Policy
    issuer: AssertionIssuer
    audit: MemoryAuditLog

    def sms_code(self) -> str:
        return self.sms.last_code()

    def totp_code(self, secret: str, offset: float = 0.0) -> str:
        return pyotp.TOTP(secret).at(self.clock.now().timestamp() + offset)


def build(
    *,
    store: Store | None = None,
    clock: FixedClock | None = None,
    throttle: ThrottlePolicy | None = None,
    order: Sequence[str] = ("eid", "totp", "sms", "email", "recovery"),
    trusted_proxies: Sequence[str] = (),
    keys: SigningKeys | None = None,
    **app_options: Any,
) -> Service:
    """The service; ``keys``: share one signing key set between instances (default: fresh)."""
    clock = clock or FixedClock.at(NOW)
    store = store or MemoryStore(keyring=Keyring.generate(random=FixedRandom(9)))
    audit = MemoryAuditLog()
    random = FixedRandom(11)
    pepper = Secret(bytes(range(32)))
    sms_channel = CapturingChannel(ChannelKind.SMS)
    email_channel = CapturingChannel(ChannelKind.EMAIL)
    resend = ResendPolicy(cooldown=0, daily_per_subject=1000, daily_per_destination=1000)
    common: dict[str, Any] = {"store": store, "audit": audit, "clock": clock}
    sms = SMSCodeAuthenticator(
        channel=sms_channel, pepper=pepper, random=random, dispatcher=InlineDispatcher(),
        resend=resend, throttle=throttle, **common,
    )  # fmt: skip
    email = EmailCodeAuthenticator(
        channel=email_channel, pepper=pepper, random=random, dispatcher=InlineDispatcher(),
        resend=resend, throttle=throttle, **common,
    )  # fmt: skip
    totp = TotpAuthenticator(random=random, issuer="CNSS", throttle_policy=throttle, **common)
    hotp = HotpAuthenticator(random=random, issuer="CNSS", throttle_policy=throttle, **common)
    recovery = RecoveryCodeAuthenticator(random=random, scrypt_n=2**10, **common)
    trust = TrustStore()
    trust.add_csca(card().csca)
    eid = EidAuthenticator(trust_store=trust, binding_key=bytes(32), random=random, **common)
    methods: dict[str, tuple[Authenticator[Any], AssuranceLevel]] = {
        "eid": (eid, AssuranceLevel.HIGH),
        "totp": (totp, AssuranceLevel.SUBSTANTIAL),
        "hotp": (hotp, AssuranceLevel.SUBSTANTIAL),
        "sms": (sms, AssuranceLevel.LOW),
        "email": (email, AssuranceLevel.LOW),
        "recovery": (recovery, AssuranceLevel.SUBSTANTIAL),
    }
    policy = Policy(
        authenticators=[methods[m] for m in order],
        store=store,
        clock=clock,
        throttle_policy=throttle or ThrottlePolicy(free_failures=5, lockout_after=20),
    )
    issuer = AssertionIssuer(
        issuer=ISSUER,
        keys=keys or SigningKeys.generate(clock=clock),
        audiences=[AUDIENCE],
        clock=clock,
    )
    app = create_app(
        policy=policy,
        assertions=issuer,
        trusted_proxies=trusted_proxies,
        enrollment_key=Secret(ENROLLMENT_KEY),
        clock=clock,
        audit=audit,
        **app_options,
    )
    return Service(
        app=app, clock=clock, store=store, sms=sms_channel, email=email_channel, totp=totp,
        sms_auth=sms, eid=eid, policy=policy, issuer=issuer, audit=audit,
    )  # fmt: skip


def back_office() -> dict[str, str]:
    return {"Authorization": "Bearer " + ENROLLMENT_KEY.decode()}

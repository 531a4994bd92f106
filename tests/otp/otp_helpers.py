"""Shared helpers of the TOTP/HOTP tests (an independent pyotp oracle, builders)."""

from __future__ import annotations

import base64
import datetime as dt

import pyotp

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.otp.enrollment import OtpAlgorithm, OtpParameters
from macnss_auth.otp.hotp import HotpAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.store.base import Store
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.throttle import ThrottlePolicy

__all__ = ["SECRET", "T0", "hotp_code", "make_hotp", "make_totp", "totp_code"]

#: RFC 4226 / RFC 6238 SHA1 seed.
SECRET = b"12345678901234567890"
#: A time well inside a 30 s step (step 56666666, 2023-11-14).
T0 = 1_699_999_990

# Generous default so tests that are not about throttling never hit it.
RELAXED = ThrottlePolicy(free_failures=50, lockout_after=100)


def _oracle_b32(secret: bytes) -> str:
    return base64.b32encode(secret).decode()


def totp_code(
    secret: bytes,
    when: float | dt.datetime,
    *,
    algorithm: str = "SHA1",
    digits: int = 6,
    period: int = 30,
) -> str:
    """The code plain pyotp computes: an oracle independent of our wrapper."""
    stamp = when.timestamp() if isinstance(when, dt.datetime) else when
    totp = pyotp.TOTP(
        _oracle_b32(secret),
        digits=digits,
        digest=OtpAlgorithm(algorithm).digest,
        interval=period,
    )
    return totp.at(int(stamp))


def hotp_code(secret: bytes, counter: int, *, algorithm: str = "SHA1", digits: int = 6) -> str:
    """The HOTP code plain pyotp computes."""
    return pyotp.HOTP(_oracle_b32(secret), digits=digits, digest=OtpAlgorithm(algorithm).digest).at(
        counter
    )


def make_totp(
    clock: FixedClock,
    *,
    store: Store | None = None,
    audit: MemoryAuditLog | None = None,
    policy: ThrottlePolicy | None = RELAXED,
    parameters: OtpParameters | None = None,
    window: int = 1,
) -> TotpAuthenticator:
    """A TOTP authenticator on a keyed MemoryStore with deterministic randomness."""
    return TotpAuthenticator(
        store=store if store is not None else MemoryStore(keyring=Keyring.generate()),
        audit=audit if audit is not None else MemoryAuditLog(),
        clock=clock,
        random=FixedRandom(7),
        throttle_policy=policy,
        issuer="CNSS",
        parameters=parameters,
        window=window,
    )


def make_hotp(
    clock: FixedClock,
    *,
    store: Store | None = None,
    audit: MemoryAuditLog | None = None,
    policy: ThrottlePolicy | None = RELAXED,
    look_ahead: int = 10,
) -> HotpAuthenticator:
    """An HOTP authenticator on a keyed MemoryStore with deterministic randomness."""
    return HotpAuthenticator(
        store=store if store is not None else MemoryStore(keyring=Keyring.generate()),
        audit=audit if audit is not None else MemoryAuditLog(),
        clock=clock,
        random=FixedRandom(8),
        throttle_policy=policy,
        issuer="CNSS",
        look_ahead=look_ahead,
    )

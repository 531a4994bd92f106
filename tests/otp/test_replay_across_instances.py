"""Service instances sharing one store race for one code: exactly one accepts it.

The store-level races (tests/store/test_concurrency.py) check the atomic
operations; these check that the authenticators decide on them, on every
backend (memory, SQLite, and, marked ``services``, PostgreSQL and Redis):
each instance has its own handle on the shared store, as separate processes
would, and all submit the same TOTP code, HOTP code or SMS code at once.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.delivery import CapturingChannel, ChannelKind
from macnss_auth.otp.contacts import parse_phone, put_destination
from macnss_auth.otp.hotp import HotpAuthenticator
from macnss_auth.otp.oob import InlineDispatcher, ResendPolicy, SMSCodeAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.secret import Secret
from macnss_auth.testing import FixedClock
from macnss_auth.testing.races import outcome_name, race_threads
from macnss_auth.throttle import ThrottlePolicy
from tests.conftest import OpenStore
from tests.otp.otp_helpers import SECRET, T0, hotp_code, totp_code

INSTANCES = 4
ROUNDS = 6
# Losers count as failures (docs/security.md, "Race losers"); none of this locks out.
POLICY = ThrottlePolicy(free_failures=50, base_delay=1.0, lockout_after=100)


def _outcomes(calls: Sequence[Callable[[], object]]) -> Counter[str]:
    return Counter(outcome_name(o) for o in race_threads(calls))


def test_a_totp_code_is_accepted_once(open_any_store: OpenStore) -> None:
    clock = FixedClock.at(T0)
    audit = MemoryAuditLog()
    instances = [
        TotpAuthenticator(store=open_any_store(), audit=audit, clock=clock, throttle_policy=POLICY)
        for _ in range(INSTANCES)
    ]
    instances[0].enroll("alice", secret=SECRET)
    instances[0].confirm("alice", totp_code(SECRET, T0))
    for _ in range(ROUNDS):
        clock.advance(30)
        code = totp_code(SECRET, clock.now())
        calls = [functools.partial(i.verify_code, "alice", code) for i in instances]
        assert _outcomes(calls) == {"ok": 1, "TokenReplayed": INSTANCES - 1}


def test_an_hotp_code_is_accepted_once(open_any_store: OpenStore) -> None:
    clock = FixedClock.at(T0)
    audit = MemoryAuditLog()
    instances = [
        HotpAuthenticator(store=open_any_store(), audit=audit, clock=clock, throttle_policy=POLICY)
        for _ in range(INSTANCES)
    ]
    instances[0].enroll("alice", secret=SECRET)
    instances[0].confirm("alice", hotp_code(SECRET, 0))
    for counter in range(1, ROUNDS + 1):
        code = hotp_code(SECRET, counter)
        calls = [functools.partial(i.verify_code, "alice", code) for i in instances]
        assert _outcomes(calls) == {"ok": 1, "TokenReplayed": INSTANCES - 1}


def test_an_sms_code_is_accepted_once(open_any_store: OpenStore) -> None:
    clock = FixedClock.at(T0)
    channel = CapturingChannel(ChannelKind.SMS)
    audit = MemoryAuditLog()
    put_destination(open_any_store(), "alice", parse_phone("+212612345678"), now=clock.now())
    instances = [
        SMSCodeAuthenticator(
            channel=channel,
            store=open_any_store(),
            pepper=Secret(b"an application pepper of 32+ bytes, test only"),
            clock=clock,
            audit=audit,
            dispatcher=InlineDispatcher(),
            resend=ResendPolicy(cooldown=0),
            throttle=POLICY,
        )
        for _ in range(INSTANCES)
    ]
    try:
        for n in range(ROUNDS):
            challenge = instances[n % INSTANCES].begin("alice")
            code = channel.last_code()
            calls = [functools.partial(i.verify, challenge, code) for i in instances]
            assert _outcomes(calls) == {"ok": 1, "ChallengeUsed": INSTANCES - 1}
            clock.advance(1)
    finally:
        for instance in instances:
            instance.close()

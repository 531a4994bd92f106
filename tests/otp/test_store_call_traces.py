"""Unknown subjects cost the same store calls as enrolled ones, asserted on a trace.

Timing tests on a loaded machine are noisy; a trace is exact. A recording
wrapper logs every store call (method and key shape, with the subject,
generation ids, challenge ids and counter values replaced by placeholders)
while an enrolled subject and an unknown one each fail a verification. The
two traces must be equal: a store read or write that only one of them makes
is a timing difference an attacker can measure (issue 18: one read fewer
for unknown TOTP/HOTP subjects classified them 93-98 % right on PostgreSQL).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.authenticator import ClientContext
from macnss_auth.delivery import CapturingChannel, ChannelKind
from macnss_auth.errors import AuthenticationFailed
from macnss_auth.otp.contacts import parse_phone, put_destination
from macnss_auth.otp.hotp import HotpAuthenticator
from macnss_auth.otp.oob import (
    EmailCodeAuthenticator,
    InlineDispatcher,
    OutOfBandAuthenticator,
    SMSCodeAuthenticator,
)
from macnss_auth.otp.recovery import RecoveryCodeAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, MemoryStore, Store
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.throttle import ThrottlePolicy
from tests.otp.otp_helpers import hotp_code, totp_code

T0 = 1_699_999_990
SEED = b"12345678901234567890"
RELAXED = ThrottlePolicy(free_failures=50, lockout_after=100)
CONTEXT = ClientContext(client_id="kiosk-7")

_SHAPES = (
    (re.compile(r"[0-9a-f]{32}"), "<generation>"),
    (re.compile(r"[a-z2-7]{26}"), "<challenge>"),
    (re.compile(r"@-?\d+"), "@<n>"),
    (re.compile(r"[0-9a-f]{64}"), "<digest>"),
)


class RecordingStore:
    """Passes every call to ``inner`` and logs its name and key shape."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.subjects: tuple[str, ...] = ()

    def _shape(self, value: object) -> str:
        if not isinstance(value, str):
            return type(value).__name__
        for subject in self.subjects:
            value = value.replace(subject, "<subject>")
        for pattern, placeholder in _SHAPES:
            value = pattern.sub(placeholder, value)
        return value

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, tuple(self._shape(a) for a in args)))
            return method(*args, **kwargs)

        return call

    def trace(self, run: Callable[[], object]) -> list[tuple[str, tuple[str, ...]]]:
        """The store calls ``run`` makes; it must fail as authentication failures do."""
        self.calls = []
        with pytest.raises(AuthenticationFailed):
            run()
        return self.calls


def recording() -> tuple[RecordingStore, Store]:
    recorder = RecordingStore(MemoryStore(keyring=Keyring.generate(random=FixedRandom(1))))
    recorder.subjects = ("alice", "nobody")
    return recorder, cast(Store, recorder)


@pytest.mark.parametrize("kind", ["totp", "hotp"])
def test_otp_verification_traces_are_equal(kind: str) -> None:
    recorder, store = recording()
    clock = FixedClock.at(T0)
    cls = TotpAuthenticator if kind == "totp" else HotpAuthenticator
    auth = cls(
        store=store,
        audit=MemoryAuditLog(),
        clock=clock,
        random=FixedRandom(2),
        throttle_policy=RELAXED,
    )
    auth.enroll("alice", secret=SEED)
    auth.confirm("alice", totp_code(SEED, T0) if kind == "totp" else hotp_code(SEED, 0))
    clock.advance(60)
    # verify_code, with and without a client context.
    for context in (None, CONTEXT):
        known = recorder.trace(lambda: auth.verify_code("alice", "000000", context=context))  # noqa: B023
        unknown = recorder.trace(lambda: auth.verify_code("nobody", "000000", context=context))  # noqa: B023
        assert known == unknown
    # verify against a challenge.
    known_challenge, unknown_challenge = auth.begin("alice"), auth.begin("nobody")
    known = recorder.trace(lambda: auth.verify(known_challenge, "000000", context=CONTEXT))
    unknown = recorder.trace(lambda: auth.verify(unknown_challenge, "000000", context=CONTEXT))
    assert known == unknown
    assert "current" in {name for name, _ in known}
    if isinstance(auth, HotpAuthenticator):
        known = recorder.trace(lambda: auth.resync("alice", "000000", "000001"))
        unknown = recorder.trace(lambda: auth.resync("nobody", "000000", "000001"))
        assert known == unknown


def test_recovery_code_traces_are_equal() -> None:
    recorder, store = recording()
    recovery = RecoveryCodeAuthenticator(
        store=store,
        audit=MemoryAuditLog(),
        clock=FixedClock.at(T0),
        random=FixedRandom(3),
        throttle_policy=RELAXED,
        scrypt_n=2**10,
        count=2,
    )
    recovery.generate("alice")
    wrong = "0000-0000-0000"
    known = recorder.trace(lambda: recovery.verify_code("alice", wrong, context=CONTEXT))
    unknown = recorder.trace(lambda: recovery.verify_code("nobody", wrong, context=CONTEXT))
    assert known == unknown
    assert "consume_token" in {name for name, _ in known}
    known_challenge, unknown_challenge = recovery.begin("alice"), recovery.begin("nobody")
    known = recorder.trace(lambda: recovery.verify(known_challenge, wrong))
    unknown = recorder.trace(lambda: recovery.verify(unknown_challenge, wrong))
    assert known == unknown


@pytest.mark.parametrize("kind", [ChannelKind.SMS, ChannelKind.EMAIL])
def test_out_of_band_traces_are_equal(kind: ChannelKind) -> None:
    recorder, store = recording()
    clock = FixedClock.at(T0)
    cls: type[OutOfBandAuthenticator] = (
        SMSCodeAuthenticator if kind is ChannelKind.SMS else EmailCodeAuthenticator
    )
    with cls(
        channel=CapturingChannel(kind),
        store=store,
        pepper=Secret(b"an application pepper of 32+ bytes, test only"),
        clock=clock,
        random=FixedRandom(4),
        audit=MemoryAuditLog(),
        dispatcher=InlineDispatcher(),
        throttle=RELAXED,
    ) as auth:
        if kind is ChannelKind.SMS:
            put_destination(store, "alice", parse_phone("+212612345678"), now=clock.now())
        else:
            from macnss_auth.otp.contacts import parse_email  # noqa: PLC0415

            put_destination(store, "alice", parse_email("alice@example.org"), now=clock.now())
        recorder.calls = []
        known_challenge = auth.begin("alice", context=CONTEXT)
        known_begin = recorder.calls
        recorder.calls = []
        unknown_challenge = auth.begin("nobody", context=CONTEXT)
        unknown_begin = recorder.calls
        # The destination keys differ (a real one, a decoy), their shapes do not.
        assert [name for name, _ in known_begin] == [name for name, _ in unknown_begin]
        known = recorder.trace(lambda: auth.verify(known_challenge, "000000", context=CONTEXT))
        unknown = recorder.trace(lambda: auth.verify(unknown_challenge, "000000", context=CONTEXT))
        assert known == unknown

"""Stateful property test: any sequence of sends, verifications and clock moves.

A model tracks what must hold for each challenge: a code is accepted at most
once, only while it is the subject's latest, unexpired, not burnt by wrong
attempts, and only if it was really sent (unknown subjects never succeed).
"""

from __future__ import annotations

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, rule

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.delivery import CapturingChannel, ChannelKind
from macnss_auth.errors import AuthenticationFailed, InvalidCode
from macnss_auth.otp.contacts import parse_phone, put_destination
from macnss_auth.otp.oob import (
    CodePolicy,
    InlineDispatcher,
    ResendPolicy,
    SMSCodeAuthenticator,
)
from macnss_auth.secret import Secret
from macnss_auth.store import MemoryStore
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.throttle import ThrottlePolicy

OPEN = ResendPolicy(
    cooldown=0, daily_per_subject=10**6, daily_per_destination=10**6, hourly_per_prefix=None
)
RELAXED = ThrottlePolicy(free_failures=98, lockout_after=99)


@attrs.define
class Model:
    subject: str
    code: str | None
    expires_at: float
    superseded: bool = False
    used: bool = False
    wrong: int = 0


class OobMachine(RuleBasedStateMachine):
    challenges = Bundle("challenges")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock.at(1_800_000_000)
        self.store = MemoryStore()
        self.channel = CapturingChannel(ChannelKind.SMS)
        self.auth = SMSCodeAuthenticator(
            channel=self.channel,
            store=self.store,
            audit=MemoryAuditLog(),
            pepper=Secret(b"p" * 32),
            clock=self.clock,
            random=FixedRandom(7),
            dispatcher=InlineDispatcher(),
            resend=OPEN,
            throttle=RELAXED,
            codes=CodePolicy(lifetime=120, max_attempts=3),
        )
        for i, subject in enumerate(("alice", "bob")):
            put_destination(self.store, subject, parse_phone(f"061234567{i}"), now=self.clock.now())
        self.model: dict[str, Model] = {}

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _live(self, model: Model) -> bool:
        return (
            model.code is not None
            and not model.superseded
            and not model.used
            and model.wrong < 3
            and self._now() < model.expires_at
        )

    @rule(target=challenges, subject=st.sampled_from(["alice", "bob", "nobody"]))
    def begin(self, subject: str) -> str:
        sent = len(self.channel.messages)
        challenge = self.auth.begin(subject)
        code = self.channel.last_code() if len(self.channel.messages) > sent else None
        assert (code is None) == (subject == "nobody")
        for model in self.model.values():
            if model.subject == subject:
                model.superseded = True
        self.model[challenge.id] = Model(subject, code, challenge.expires_at.timestamp())
        return challenge.id

    @rule(challenge=challenges)
    def verify_right(self, challenge: str) -> None:
        model = self.model[challenge]
        live = self._live(model)
        typed = model.code or "123456"
        try:
            result = self.auth.verify(challenge, typed)
        except InvalidCode:
            # Only possible for an unknown subject's decoy challenge.
            model.wrong += 1
            assert model.code is None
            assert not live
        except AuthenticationFailed:
            assert not live
        else:
            assert live
            assert result.subject == model.subject
            model.used = True

    @rule(challenge=challenges, digit=st.integers(1, 9))
    def verify_wrong(self, challenge: str, digit: int) -> None:
        model = self.model[challenge]
        live_before = self._live(model) or (
            model.code is None
            and not model.superseded
            and model.wrong < 3
            and self._now() < model.expires_at
            and not model.used
        )
        base = model.code or "000000"
        typed = base[:-1] + str((int(base[-1]) + digit) % 10)
        try:
            self.auth.verify(challenge, typed)
        except InvalidCode:
            assert live_before
            model.wrong += 1
        except AuthenticationFailed:
            assert not live_before
        else:
            raise AssertionError("a wrong code was accepted")

    @rule(seconds=st.sampled_from([1, 30, 119, 121]))
    def wait(self, seconds: int) -> None:
        self.clock.advance(seconds)


OobMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestOobMachine = OobMachine.TestCase

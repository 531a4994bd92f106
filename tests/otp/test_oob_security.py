"""Regression tests for reviewed security findings in the out-of-band codes."""

from __future__ import annotations

import datetime as dt

import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.delivery import (
    CapturingChannel,
    ChannelKind,
    DeliveryError,
    DeliveryReceipt,
    DeliveryRejected,
    OutboundMessage,
    find_code,
)
from macnss_auth.errors import ChallengeUsed, InvalidCode, MalformedInput
from macnss_auth.otp.contacts import Destination, parse_email, parse_phone, put_destination
from macnss_auth.otp.oob import CodeNotDelivered
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.testing import FixedRandom
from macnss_auth.throttle import ThrottlePolicy

from .test_oob import enrolled, make


@pytest.mark.parametrize("kind", [ChannelKind.SMS, ChannelKind.EMAIL])
def test_a_decoy_challenge_accepts_no_code(kind: ChannelKind) -> None:
    # Same seed, same draws: the decoy's code is the one the real subject was sent.
    real, real_channel, _, _ = enrolled(kind)
    sent = real.begin("alice")
    code = real_channel.last_code()
    auth, channel, _, _ = make(kind)
    decoy = auth.begin("alice")
    assert decoy.id == sent.id
    assert not channel.messages
    with pytest.raises(InvalidCode):
        auth.verify(decoy, code)


class _Broken:
    """A channel that sees the message, then fails with a non-library exception."""

    def __init__(self, kind: ChannelKind, error: Exception) -> None:
        self._kind = kind
        self.error = error
        self.seen: list[OutboundMessage] = []

    @property
    def kind(self) -> ChannelKind:
        return self._kind

    @property
    def name(self) -> str:
        return "broken"

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        self.seen.append(message)
        raise self.error


@pytest.mark.parametrize("error", [ValueError("bad header"), RuntimeError("library bug")])
def test_any_delivery_exception_burns_the_code_and_is_audited(error: Exception) -> None:
    audit = MemoryAuditLog()
    broken = _Broken(ChannelKind.SMS, error)
    auth, _, store, _ = enrolled(channel=broken, audit=audit)
    with pytest.raises(CodeNotDelivered) as info:
        auth.begin("alice")
    assert isinstance(info.value, DeliveryError)
    assert info.value.__cause__ is not None
    record = store.get_challenge(info.value.challenge_id)
    assert record is not None
    assert record.consumed
    with pytest.raises(ChallengeUsed):
        auth.verify(info.value.challenge_id, find_code(broken.seen[-1].text, length=6))
    failures = [e for e in audit.events if e.action.value == "deliver"]
    assert [(e.outcome.value, e.reason) for e in failures] == [("failure", "delivery_failed")]


def test_any_primary_exception_falls_back_and_keeps_the_code() -> None:
    mail = CapturingChannel(ChannelKind.EMAIL)
    auth, _, store, clock = enrolled(
        channel=_Broken(ChannelKind.SMS, ValueError("bad header")), fallback=mail
    )
    put_destination(store, "alice", parse_email("alice@example.org"), now=clock.now())
    challenge = auth.begin("alice")
    assert auth.verify(challenge, mail.last_code()).subject == "alice"


def test_a_failing_fallback_still_burns_the_code() -> None:
    broken_mail = _Broken(ChannelKind.EMAIL, ValueError("bad header"))
    auth, sms, store, clock = enrolled(fallback=broken_mail)
    sms.fail_with([DeliveryRejected("operator refused")])
    put_destination(store, "alice", parse_email("alice@example.org"), now=clock.now())
    with pytest.raises(CodeNotDelivered) as info:
        auth.begin("alice")
    record = store.get_challenge(info.value.challenge_id)
    assert record is not None
    assert record.consumed


@pytest.mark.parametrize(
    ("kind", "address"),
    [
        (ChannelKind.EMAIL, "victim@x.example, attacker@evil.example"),
        (ChannelKind.EMAIL, "victim@x.example\r\nBcc: attacker@evil.example"),
        (ChannelKind.EMAIL, "not an address"),
        (ChannelKind.EMAIL, ""),
        (ChannelKind.SMS, "+212612345678,+33612345678"),
        (ChannelKind.SMS, "0612345678"),
        (ChannelKind.SMS, "+212 612345678"),
        (ChannelKind.SMS, "+0612345678"),
        (ChannelKind.SMS, ""),
    ],
)
def test_destination_refuses_what_no_parser_would_produce(kind: ChannelKind, address: str) -> None:
    with pytest.raises(MalformedInput):
        Destination(kind=kind, address=address)


def test_enroll_refuses_an_unvalidated_destination() -> None:
    auth, channel, store, _ = make(ChannelKind.EMAIL)
    bad = object.__new__(Destination)  # bypasses validation, as a careless caller might
    object.__setattr__(bad, "kind", ChannelKind.EMAIL)
    object.__setattr__(bad, "address", "victim@x.example, attacker@evil.example")
    object.__setattr__(bad, "hint", "v•••@x.example")
    with pytest.raises(MalformedInput):
        auth.enroll("alice", bad)
    assert not channel.messages
    with pytest.raises(MalformedInput):
        put_destination(store, "alice", bad, now=dt.datetime.now(dt.timezone.utc))


def test_valid_destinations_are_still_accepted() -> None:
    assert Destination(kind=ChannelKind.SMS, address="+212612345678").hint == "+212 6•• ••• •78"
    assert Destination(kind=ChannelKind.EMAIL, address="alice@example.org").address == (
        "alice@example.org"
    )


RELAXED = ThrottlePolicy(free_failures=50, lockout_after=100)


class _LateCounts(MemoryStore):
    """A store whose wrong-attempt counts land late, as when guesses run in parallel.

    Every guess in flight has read the record and compared its code before
    any of them counted: exactly the interleaving of concurrent requests.
    """

    def __init__(self) -> None:
        super().__init__(keyring=Keyring.generate(random=FixedRandom(9)))
        self.late: list[str] = []

    def count_attempt(self, challenge_id: str) -> int | None:
        record = self.get_challenge(challenge_id)
        if record is None:
            return None
        self.late.append(challenge_id)
        return record.attempts + self.late.count(challenge_id)


def test_parallel_guesses_never_exceed_max_attempts() -> None:
    store = _LateCounts()
    auth, channel, _, clock = make(store=store, throttle=RELAXED)
    put_destination(store, "alice", parse_phone("+212612345678"), now=clock.now())
    challenge = auth.begin("alice")
    code = channel.last_code()
    compared = 0
    for guess in range(20):
        candidate = f"{(int(code) + 1 + guess) % 10**6:06d}"
        try:
            auth.verify(challenge, candidate)
        except InvalidCode:
            compared += 1
        except ChallengeUsed:
            pass
    assert compared <= auth.codes.max_attempts
    with pytest.raises(ChallengeUsed):
        auth.verify(challenge, code)


def test_the_right_code_still_works_on_the_last_attempt() -> None:
    auth, channel, _, _ = enrolled(throttle=RELAXED)
    challenge = auth.begin("alice")
    code = channel.last_code()
    for guess in range(auth.codes.max_attempts - 1):
        with pytest.raises(InvalidCode):
            auth.verify(challenge, f"{(int(code) + 1 + guess) % 10**6:06d}")
    assert auth.verify(challenge, code).subject == "alice"


def test_max_attempts_wrong_codes_still_burn_the_challenge() -> None:
    auth, channel, _, _ = enrolled(throttle=RELAXED)
    challenge = auth.begin("alice")
    code = channel.last_code()
    for guess in range(auth.codes.max_attempts):
        with pytest.raises(InvalidCode):
            auth.verify(challenge, f"{(int(code) + 1 + guess) % 10**6:06d}")
    with pytest.raises(ChallengeUsed):
        auth.verify(challenge, code)

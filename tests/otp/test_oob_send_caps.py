"""Full sending caps tell nothing about who is enrolled, and still stop real messages.

The account oracle this closes: the per-prefix cap (and the per-destination
and global caps) are filled by other people's *real* messages, which an
unknown subject's decoy never gets. ``begin`` used to raise ``RateLimited``
for an enrolled subject whose number carried a full prefix while an unknown
subject went through; and a flood of unknown subjects filled the decoy
counters, after which unknown subjects were refused and enrolled ones were
not. Now a full shared cap answers as a send and drops the message (audited);
only the subject's own cooldown and daily cap refuse, and those an unknown
subject meets alike.
"""

from __future__ import annotations

import functools
import re
from typing import Any, cast

import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.authenticator import Challenge
from macnss_auth.delivery import CapturingChannel, ChannelKind, DeliveryRejected
from macnss_auth.errors import InvalidCode, RateLimited
from macnss_auth.otp.contacts import Destination, parse_email, parse_phone, put_destination
from macnss_auth.otp.oob import (
    BackgroundDispatcher,
    CodeNotDelivered,
    InlineDispatcher,
    OutOfBandAuthenticator,
    ResendPolicy,
    SMSCodeAuthenticator,
)
from macnss_auth.otp.oob.limits import prefix_of
from macnss_auth.store import Keyring, MemoryStore, Store
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.testing.races import race_threads
from tests.conftest import OpenStore
from tests.otp.test_store_call_traces import RecordingStore

from .test_oob import EMAIL, HINT, PEPPER, PHONE, T0, make

CAPS = {
    # Three real messages fill each cap; alice's own limits stay far away.
    "prefix": ResendPolicy(hourly_per_prefix=3),
    "destination": ResendPolicy(daily_per_destination=3),
    "global": ResendPolicy(hourly_per_prefix=None, hourly_global=3),
}
EMAIL_HINT = re.compile(r"^[a-z]•••@[a-z0-9.-]+$")


def _address(kind: ChannelKind, cap: str, i: int) -> Destination:
    """Where the i-th other subject's messages go: sharing alice's cap."""
    if cap == "destination":
        return parse_phone(PHONE) if kind is ChannelKind.SMS else parse_email(EMAIL)
    if kind is ChannelKind.SMS:
        # Same prefix (+212612) for the prefix cap; another country for the global one.
        return parse_phone(f"+2126123456{i}0" if cap == "prefix" else f"+3361234567{i}")
    return parse_email(f"user{i}@example.org" if cap == "prefix" else f"user{i}@example.net")


def _filled(
    kind: ChannelKind, cap: str, **kwargs: Any
) -> tuple[OutOfBandAuthenticator, CapturingChannel, RecordingStore, FixedClock, MemoryAuditLog]:
    """Alice enrolled, and three other subjects' real messages filling ``cap``."""
    recorder = RecordingStore(MemoryStore(keyring=Keyring.generate(random=FixedRandom(9))))
    recorder.subjects = ("alice", "nobody")
    audit = MemoryAuditLog()
    store = cast(MemoryStore, recorder)
    auth, channel, _, clock = make(kind, store=store, resend=CAPS[cap], audit=audit, **kwargs)
    own = parse_phone(PHONE) if kind is ChannelKind.SMS else parse_email(EMAIL)
    put_destination(store, "alice", own, now=clock.now())
    for i in range(3):
        put_destination(store, f"other{i}", _address(kind, cap, i), now=clock.now())
        auth.begin(f"other{i}")
        clock.advance(300)  # past a shared number's cooldown (30, 60, 120 s)
    assert len(channel.messages) == 3
    return auth, channel, recorder, clock, audit


def _outcome(auth: OutOfBandAuthenticator, subject: str) -> str:
    """What the caller of ``begin`` sees, by type: a Challenge or the error's name."""
    try:
        return type(auth.begin(subject)).__name__
    except RateLimited as refused:
        return type(refused).__name__


def _begin(recorder: RecordingStore, auth: OutOfBandAuthenticator, subject: str) -> Challenge:
    recorder.calls = []
    return auth.begin(subject)


@pytest.mark.parametrize("cap", sorted(CAPS))
@pytest.mark.parametrize("kind", [ChannelKind.SMS, ChannelKind.EMAIL])
def test_a_full_shared_cap_answers_enrolled_and_unknown_alike(kind: ChannelKind, cap: str) -> None:
    auth, channel, recorder, _, audit = _filled(kind, cap)
    seen = len(audit.events)
    known = _begin(recorder, auth, "alice")
    known_calls = [name for name, _ in recorder.calls]
    unknown = _begin(recorder, auth, "nobody")
    unknown_calls = [name for name, _ in recorder.calls]
    # Same answer: a challenge of the same shape, no refusal.
    assert set(known.to_dict()) == set(unknown.to_dict())
    assert dict(known.data) == dict(unknown.data)
    assert len(known.id) == len(unknown.id)
    assert known.expires_at - known.created_at == unknown.expires_at - unknown.created_at
    shape = HINT if kind is ChannelKind.SMS else EMAIL_HINT
    assert shape.match(known.hint or "")
    assert shape.match(unknown.hint or "")
    # Same store calls, in the same order (only the keys differ).
    assert known_calls == unknown_calls
    assert "create_challenge" in known_calls
    # The brake held: nothing more went out.
    assert len(channel.messages) == 3
    # The caller's view of the audit: one begin event each, with the same outcome.
    begins = [e for e in audit.events[seen:] if e.action.value == "begin"]
    assert [(e.subject, e.outcome.value, e.reason) for e in begins] == [
        ("alice", "info", None),
        ("nobody", "info", None),
    ]
    # Operators see the drop (and only alice's: nobody's message never existed).
    drops = [e for e in audit.events[seen:] if e.action.value == "deliver"]
    assert [(e.subject, e.outcome.value, e.reason) for e in drops] == [
        ("alice", "failure", "rate_limited")
    ]
    assert drops[0].details["dropped"] == "send_cap"
    # Verification answers alike: no code matches either challenge.
    failures = []
    for challenge in (known, unknown):
        with pytest.raises(InvalidCode) as info:
            auth.verify(challenge, "000000")
        failures.append((info.value.reason, info.value.remaining_attempts, str(info.value)))
    assert failures[0] == failures[1]
    # The dropped send was counted like a send: the cooldown holds alike.
    retry = []
    for subject in ("alice", "nobody"):
        with pytest.raises(RateLimited) as refused:
            auth.begin(subject)
        retry.append(refused.value.retry_after)
    assert retry[0] == retry[1] == 30.0


@pytest.mark.parametrize("cap", sorted(CAPS))
def test_the_cap_lifts_at_the_end_of_its_window(cap: str) -> None:
    auth, channel, _, clock, _ = _filled(ChannelKind.SMS, cap)
    auth.begin("alice")
    assert len(channel.messages) == 3
    clock.advance(86_400 if cap == "destination" else 3600)
    auth.begin("alice")
    assert len(channel.messages) == 4
    assert channel.messages[-1].to == PHONE


def test_a_dropped_challenge_accepts_not_even_its_own_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every code drawn is 123456: the dropped challenge must still refuse it,
    # as nobody was sent it, while a sent one (the control) accepts it.
    monkeypatch.setattr(
        "macnss_auth.otp.oob.authenticator.generate_code", lambda random, policy: "123456"
    )
    auth, channel, _, clock, _ = _filled(ChannelKind.SMS, "prefix")
    assert channel.last_code() == "123456"
    dropped = auth.begin("alice")
    with pytest.raises(InvalidCode):
        auth.verify(dropped, "123456")
    clock.advance(3600)
    sent = auth.begin("alice")
    assert auth.verify(sent, "123456").subject == "alice"


def test_a_dropped_send_makes_the_calls_of_a_real_one() -> None:
    # A subject of another prefix is sent its code; alice's is dropped: same store calls.
    auth, channel, recorder, clock, _ = _filled(ChannelKind.SMS, "prefix")
    put_destination(cast(Store, recorder), "bob", parse_phone("+212712345678"), now=clock.now())
    _begin(recorder, auth, "bob")
    sent = [name for name, _ in recorder.calls]
    _begin(recorder, auth, "alice")
    assert [name for name, _ in recorder.calls] == sent
    assert [m.to for m in channel.messages[3:]] == ["+212712345678"]


@pytest.mark.parametrize("kind", [ChannelKind.SMS, ChannelKind.EMAIL])
@pytest.mark.parametrize("cap", ["prefix", "global"])
def test_a_flood_of_unknown_subjects_answers_enrolled_and_unknown_alike(
    kind: ChannelKind, cap: str
) -> None:
    # Decoy counters keep floods of unknown subjects off real people's caps;
    # they must not refuse unknown subjects either, or the refusal tells them apart.
    resend = ResendPolicy(
        cooldown=0, hourly_per_prefix=3, hourly_global=3 if cap == "global" else None
    )
    auth, channel, store, clock = make(kind, resend=resend)
    own = parse_phone(PHONE) if kind is ChannelKind.SMS else parse_email(EMAIL)
    put_destination(store, "alice", own, now=clock.now())

    def prefix(subject: str) -> str:
        return prefix_of(auth._decoy(subject), resend.prefix_digits)

    # Unknown subjects whose decoys share nobody's prefix (or domain).
    flood = [s for s in (f"x{i}" for i in range(5000)) if prefix(s) == prefix("nobody")][:5]
    assert len(flood) == 5
    # The decoy counters pass their cap; then one more unknown subject, and alice.
    outcomes = [_outcome(auth, subject) for subject in [*flood, "nobody", "alice"]]
    assert outcomes == ["Challenge"] * 7
    assert [m.to for m in channel.messages] == [own.address]


def test_enrollment_is_told_when_a_shared_cap_is_full() -> None:
    # Enrolling is for an authenticated subject: no one to hide from, and the
    # person should know to try later rather than wait for a code.
    auth, channel, _, _, _ = _filled(ChannelKind.SMS, "prefix")
    with pytest.raises(RateLimited):
        auth.enroll("alice", "+212612999999")
    assert len(channel.messages) == 3


# The person waiting: an e-mail fallback ---------------------------------------
def test_a_dropped_sms_goes_to_the_confirmed_email_address() -> None:
    mail = CapturingChannel(ChannelKind.EMAIL)
    auth, sms, recorder, clock, audit = _filled(ChannelKind.SMS, "prefix", fallback=mail)
    put_destination(cast(Store, recorder), "alice", parse_email(EMAIL), now=clock.now())
    seen = len(audit.events)
    challenge = auth.begin("alice")
    assert len(sms.messages) == 3
    assert [m.to for m in mail.messages] == [EMAIL]
    delivered = [e for e in audit.events[seen:] if e.action.value == "deliver"]
    assert [(e.outcome.value, e.reason, e.details.get("fallback")) for e in delivered] == [
        ("failure", "rate_limited", None),
        ("success", None, "true"),
    ]
    assert auth.verify(challenge, mail.last_code()).subject == "alice"


def test_with_a_fallback_but_no_address_the_answer_is_still_a_decoys() -> None:
    mail = CapturingChannel(ChannelKind.EMAIL)
    auth, sms, recorder, _, _ = _filled(ChannelKind.SMS, "prefix", fallback=mail)
    known, unknown = auth.begin("alice"), auth.begin("nobody")
    assert len(sms.messages) == 3
    assert not mail.messages
    failures = []
    for challenge in (known, unknown):
        with pytest.raises(InvalidCode) as info:
            auth.verify(challenge, "000000")
        failures.append((info.value.reason, info.value.remaining_attempts))
        record = cast(Store, recorder).get_challenge(challenge.id)
        assert record is not None
        assert not record.consumed  # not burnt: that would answer unlike a decoy
    assert failures[0] == failures[1]


def test_a_failed_email_fallback_burns_the_dropped_code() -> None:
    mail = CapturingChannel(ChannelKind.EMAIL)
    mail.fail_with([DeliveryRejected("mailbox refused")])
    auth, sms, recorder, clock, _ = _filled(ChannelKind.SMS, "prefix", fallback=mail)
    put_destination(cast(Store, recorder), "alice", parse_email(EMAIL), now=clock.now())
    with pytest.raises(CodeNotDelivered) as info:  # inline dispatcher: reported
        auth.begin("alice")
    record = cast(Store, recorder).get_challenge(info.value.challenge_id)
    assert record is not None
    assert record.consumed
    assert len(sms.messages) == 3


def test_a_dropped_email_never_goes_by_sms() -> None:
    # SMS past the e-mail caps would be SMS past every SMS cap: pumping.
    sms = CapturingChannel(ChannelKind.SMS)
    auth, mail, recorder, clock, _ = _filled(ChannelKind.EMAIL, "prefix", fallback=sms)
    put_destination(cast(Store, recorder), "alice", parse_phone(PHONE), now=clock.now())
    challenge = auth.begin("alice")
    assert len(mail.messages) == 3
    assert not sms.messages
    with pytest.raises(InvalidCode):
        auth.verify(challenge, "000000")


# Under parallel requests, and with the default (background) dispatcher -------
def test_subjects_sharing_a_number_race_for_one_message(open_any_store: OpenStore) -> None:
    # Eight subjects of one number ask at once, each through its own store
    # handle: one message goes out (the number's cooldown), and all eight get
    # a challenge, as eight unknown subjects would.
    clock = FixedClock.at(T0)
    channel = CapturingChannel(ChannelKind.SMS)
    first = open_any_store()
    for i in range(8):
        put_destination(first, f"member{i}", parse_phone(PHONE), now=clock.now())
    authenticators = [
        SMSCodeAuthenticator(
            channel=channel,
            store=open_any_store(),
            audit=MemoryAuditLog(),
            pepper=PEPPER,
            clock=clock,
            dispatcher=InlineDispatcher(),
            resend=ResendPolicy(daily_per_subject=1000, daily_per_destination=1000),
        )
        for _ in range(8)
    ]
    outcomes = race_threads(
        [functools.partial(a.begin, f"member{i}") for i, a in enumerate(authenticators)]
    )
    assert [type(o).__name__ for o in outcomes] == ["Challenge"] * 8
    assert len(channel.messages) == 1
    for auth in authenticators:
        auth.close()


def test_the_background_dispatcher_drops_and_falls_back_after_begin_returns() -> None:
    mail = CapturingChannel(ChannelKind.EMAIL)
    with BackgroundDispatcher(max_workers=2) as dispatcher:
        auth, sms, recorder, clock, audit = _filled(
            ChannelKind.SMS, "prefix", dispatcher=dispatcher, fallback=mail
        )
        put_destination(cast(Store, recorder), "alice", parse_email(EMAIL), now=clock.now())
        dispatcher.drain(timeout=30)
        seen = len(audit.events)
        challenge = auth.begin("alice")
        unknown = auth.begin("nobody")
        dispatcher.drain(timeout=30)
    assert len(sms.messages) == 3
    assert [m.to for m in mail.messages] == [EMAIL]
    drops = [e for e in audit.events[seen:] if e.reason == "rate_limited"]
    assert [e.subject for e in drops] == ["alice"]
    assert auth.verify(challenge, mail.last_code()).subject == "alice"
    with pytest.raises(InvalidCode):
        auth.verify(unknown, mail.last_code())


def test_a_dropped_retry_does_not_push_a_shared_number_further_back() -> None:
    # Two people of one household share a number. The second asks 10 s after
    # the first was sent a code: dropped (the number's 30 s cooldown). Asking
    # again after their own 30 s, the number's cooldown is over: it is sent.
    # Drops counted in the number's counters would have held it for 60 s more.
    auth, channel, store, clock = make(resend=ResendPolicy())
    for subject in ("mother", "father"):
        put_destination(store, subject, parse_phone(PHONE), now=clock.now())
    auth.begin("mother")
    clock.advance(10)
    auth.begin("father")
    assert len(channel.messages) == 1
    clock.advance(30)
    auth.begin("father")
    assert len(channel.messages) == 2

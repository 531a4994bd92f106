"""SMS and e-mail code authenticators: contract, codes, limits, enumeration, delivery."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.authenticator import AssuranceLevel, Authenticator, Challenge
from macnss_auth.delivery import CapturingChannel, ChannelKind, DeliveryRejected, DeliveryTimeout
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeExpired,
    ChallengeNotFound,
    ChallengeUsed,
    ConfigurationError,
    InvalidCode,
    LockedOut,
    MalformedInput,
    RateLimited,
    Reason,
    VerificationThrottled,
)
from macnss_auth.otp.contacts import parse_email, parse_phone, put_destination
from macnss_auth.otp.oob import (
    DIGITS,
    GENERIC_FAILURE,
    SAFE_ALPHANUMERIC,
    BackgroundDispatcher,
    CodeNotDelivered,
    CodePolicy,
    EmailCodeAuthenticator,
    InlineDispatcher,
    OutOfBandAuthenticator,
    ResendPolicy,
    SMSCodeAuthenticator,
    generate_code,
    normalize_oob_code,
)
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.testing.contract import AuthenticatorContract
from macnss_auth.throttle import ThrottlePolicy

PEPPER = Secret(b"an application pepper of 32+ bytes, test only")
PHONE = "+212612345678"
EMAIL = "alice@example.org"
T0 = 1_800_000_000
HINT = re.compile(r"^\+212 [67]•• ••• •\d\d$")

CHANNELS: dict[int, CapturingChannel] = {}


def wrong(code: str) -> str:
    """A well-formed code that differs from ``code``."""
    return f"{(int(code) + 1) % 10**6:06d}"


def make(
    kind: ChannelKind = ChannelKind.SMS,
    *,
    clock: FixedClock | None = None,
    store: MemoryStore | None = None,
    **kwargs: Any,
) -> tuple[OutOfBandAuthenticator, CapturingChannel, MemoryStore, FixedClock]:
    clock = clock or FixedClock.at(T0)
    store = store or MemoryStore(keyring=Keyring.generate(random=FixedRandom(9)))
    channel = kwargs.pop("channel", None) or CapturingChannel(kind)
    cls = SMSCodeAuthenticator if kind is ChannelKind.SMS else EmailCodeAuthenticator
    auth = cls(
        channel=channel,
        store=store,
        pepper=PEPPER,
        clock=clock,
        random=kwargs.pop("random", FixedRandom(1)),
        dispatcher=kwargs.pop("dispatcher", InlineDispatcher()),
        service_name="CNSS",
        language=kwargs.pop("language", "en"),
        audit=kwargs.pop("audit", None) or MemoryAuditLog(),
        **kwargs,
    )
    CHANNELS[id(auth)] = channel
    return auth, channel, store, clock


def enrolled(
    kind: ChannelKind = ChannelKind.SMS, **kwargs: Any
) -> tuple[OutOfBandAuthenticator, CapturingChannel, MemoryStore, FixedClock]:
    auth, channel, store, clock = make(kind, **kwargs)
    destination = parse_phone(PHONE) if kind is ChannelKind.SMS else parse_email(EMAIL)
    put_destination(store, "alice", destination, now=clock.now())
    return auth, channel, store, clock


class _Contract(AuthenticatorContract):
    kind = ChannelKind.SMS

    @pytest.fixture
    def clock(self) -> FixedClock:
        return FixedClock.at(T0)

    @pytest.fixture
    def authenticator(self, clock: FixedClock) -> OutOfBandAuthenticator:
        auth, _, _, _ = enrolled(self.kind, clock=clock)
        return auth

    @pytest.fixture
    def subject(self) -> str:
        return "alice"

    def good_response(self, authenticator: Any, challenge: Challenge) -> str:
        return CHANNELS[id(authenticator)].last_code()

    def bad_response(self, authenticator: Any, challenge: Challenge) -> str:
        code = CHANNELS[id(authenticator)].last_code()
        return wrong(code)

    def secrets(self, authenticator: Any, subject: str) -> list[str]:
        found = [PEPPER.reveal().decode(), PHONE, PHONE[1:], EMAIL]
        channel = CHANNELS[id(authenticator)]
        if channel.messages:
            found.append(channel.last_code())
        return found


class TestSmsContract(_Contract):
    kind = ChannelKind.SMS


class TestEmailContract(_Contract):
    kind = ChannelKind.EMAIL


def test_is_an_authenticator_with_low_assurance() -> None:
    auth, channel, _, _ = enrolled()
    assert isinstance(auth, Authenticator)
    assert auth.method == "sms"
    result = auth.verify(auth.begin("alice"), channel.last_code())
    assert result.assurance is AssuranceLevel.LOW
    assert result.details["channel"] == "sms"


def test_only_a_keyed_hash_bound_to_the_challenge_is_stored() -> None:
    auth, channel, store, _ = enrolled()
    challenge = auth.begin("alice")
    code = channel.last_code()
    record = store.get_challenge(challenge.id)
    assert record is not None
    expected = hmac.new(
        PEPPER.reveal(),
        b"\x00".join(
            [b"macnss-auth/oob/v1", b"sms", b"login", challenge.id.encode(), code.encode()]
        ),
        hashlib.sha256,
    ).digest()
    assert record.verifier == expected
    assert code.encode() not in record.verifier
    assert code not in repr(record)


def test_default_code_is_six_digits_valid_five_minutes() -> None:
    auth, channel, _, _ = enrolled()
    challenge = auth.begin("alice")
    assert re.fullmatch(r"\d{6}", channel.last_code())
    assert challenge.expires_at - challenge.created_at == dt.timedelta(minutes=5)
    assert challenge.hint == "+212 6•• ••• •78"
    assert dict(challenge.data) == {"purpose": "login", "length": "6", "format": "numeric"}


def test_alphanumeric_codes_and_relaxed_typing() -> None:
    policy = CodePolicy(length=8, alphabet=SAFE_ALPHANUMERIC)
    auth, channel, _, _ = enrolled(codes=policy)
    challenge = auth.begin("alice")
    code = channel.last_code(length=8, alphabet=SAFE_ALPHANUMERIC)
    assert set(code) <= set(SAFE_ALPHANUMERIC)
    typed = f" {code[:4].lower()}-{code[4:]} "
    assert auth.verify(challenge, typed).subject == "alice"
    assert challenge.data["format"] == "alphanumeric"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lifetime": 601},
        {"lifetime": 0},
        {"length": 3},
        {"length": 13},
        {"alphabet": "0123456789" + "0"},
        {"alphabet": "abc"},
        {"alphabet": "0123456789 "},
        {"max_attempts": 0},
        {"max_attempts": 11},
    ],
)
def test_code_policy_limits(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        CodePolicy(**kwargs)


def test_ten_minutes_is_the_maximum_lifetime() -> None:
    auth, channel, _, clock = enrolled(codes=CodePolicy(lifetime=600))
    challenge = auth.begin("alice")
    clock.advance(599)
    assert auth.verify(challenge, channel.last_code()).method == "sms"


def test_generated_codes_are_uniform() -> None:
    policy = CodePolicy(length=12, alphabet=SAFE_ALPHANUMERIC)
    random = FixedRandom(b"uniformity")
    counts = Counter("".join(generate_code(random, policy) for _ in range(1200)))
    expected = 1200 * 12 / len(SAFE_ALPHANUMERIC)
    assert set(counts) == set(SAFE_ALPHANUMERIC)
    assert all(abs(n - expected) < 0.2 * expected for n in counts.values())


def _normalized_or_field(text: str, policy: CodePolicy) -> str:
    try:
        return normalize_oob_code(text, policy)
    except MalformedInput as exc:
        return f"<malformed {exc.field}>"


@given(st.text(max_size=80))
def test_code_normalization_only_raises_malformed_input(text: str) -> None:
    for policy in (CodePolicy(), CodePolicy(length=8, alphabet=SAFE_ALPHANUMERIC)):
        code = _normalized_or_field(text, policy)
        if code != "<malformed code>":
            assert len(code) == policy.length
            assert set(code) <= set(policy.alphabet)


def test_arabic_indic_digits_are_accepted() -> None:
    auth, channel, _, _ = enrolled()
    challenge = auth.begin("alice")
    typed = "".join(chr(0x0660 + int(d)) for d in channel.last_code())
    assert auth.verify(challenge, typed).method == "sms"


def test_a_resend_replaces_the_previous_code() -> None:
    auth, channel, _, clock = enrolled()
    first = auth.begin("alice")
    first_code = channel.last_code()
    clock.advance(30)
    second = auth.begin("alice")
    with pytest.raises(ChallengeUsed):
        auth.verify(first, first_code)
    assert auth.verify(second, channel.last_code()).method == "sms"


def test_attempts_are_limited_then_the_code_burns() -> None:
    auth, channel, _, clock = enrolled()
    challenge = auth.begin("alice")
    code = channel.last_code()
    bad = wrong(code)
    remaining = []
    for _ in range(5):
        clock.advance(20)  # Let the per-subject throttle's growing delay pass.
        with pytest.raises(InvalidCode) as info:
            auth.verify(challenge, bad)
        remaining.append(info.value.remaining_attempts)
    assert remaining == [4, 3, 2, 1, 0]
    clock.advance(20)
    with pytest.raises(ChallengeUsed) as burnt:
        auth.verify(challenge, code)
    assert burnt.value.reason is Reason.ATTEMPTS_EXHAUSTED


def test_failures_have_distinct_reasons_and_one_message() -> None:
    auth, channel, _, clock = enrolled()
    errors: list[AuthenticationFailed] = []
    challenge = auth.begin("alice")
    code = channel.last_code()
    for target, typed in (("no-such-challenge", code), (challenge.id, wrong(code))):
        with pytest.raises(AuthenticationFailed) as info:
            auth.verify(target, typed)
        errors.append(info.value)
    auth.verify(challenge, code)
    with pytest.raises(AuthenticationFailed) as used:
        auth.verify(challenge, code)
    errors.append(used.value)
    clock.advance(30)
    late = auth.begin("alice")
    clock.advance(301)
    with pytest.raises(AuthenticationFailed) as expired:
        auth.verify(late, channel.last_code())
    errors.append(expired.value)
    reasons = [e.reason for e in errors]
    assert reasons == [
        Reason.CHALLENGE_NOT_FOUND,
        Reason.INVALID_CODE,
        Reason.CHALLENGE_USED,
        Reason.CHALLENGE_EXPIRED,
    ]
    assert [type(e) for e in errors] == [
        ChallengeNotFound,
        InvalidCode,
        ChallengeUsed,
        ChallengeExpired,
    ]
    assert {str(e) for e in errors} == {GENERIC_FAILURE}


def test_wrong_code_attempts_are_throttled_per_subject() -> None:
    throttle = ThrottlePolicy(free_failures=2, base_delay=10, lockout_after=5, lockout_duration=600)
    auth, channel, _, clock = enrolled(throttle=throttle, resend=ResendPolicy(cooldown=0))

    def wrong_attempt() -> None:
        challenge = auth.begin("alice")
        wrong = "000000" if channel.last_code() != "000000" else "111111"
        with pytest.raises(InvalidCode):
            auth.verify(challenge, wrong)

    for _ in range(3):
        wrong_attempt()
    challenge = auth.begin("alice")
    with pytest.raises(VerificationThrottled) as delayed:
        auth.verify(challenge, channel.last_code())
    assert delayed.value.retry_after == pytest.approx(10)
    assert delayed.value.reason is Reason.THROTTLED
    assert str(delayed.value) == GENERIC_FAILURE
    clock.advance(10)
    wrong_attempt()
    clock.advance(20)
    wrong_attempt()
    clock.advance(40)
    challenge = auth.begin("alice")
    with pytest.raises(LockedOut) as locked:
        auth.verify(challenge, channel.last_code())  # Even the right code, during a lockout.
    assert locked.value.reason is Reason.LOCKED_OUT
    clock.advance(600)
    assert auth.verify(auth.begin("alice"), channel.last_code()).method == "sms"


def test_success_resets_the_throttle() -> None:
    throttle = ThrottlePolicy(free_failures=1, base_delay=60, lockout_after=5)
    auth, channel, _, _ = enrolled(throttle=throttle, resend=ResendPolicy(cooldown=0))
    challenge = auth.begin("alice")
    with pytest.raises(InvalidCode):
        auth.verify(challenge, "000000" if channel.last_code() != "000000" else "111111")
    assert auth.verify(challenge, channel.last_code()).method == "sms"
    # Without the reset, this attempt would have to wait 60 s.
    challenge = auth.begin("alice")
    assert auth.verify(challenge, channel.last_code()).method == "sms"


def test_resend_cooldown_grows() -> None:
    auth, _, _, clock = enrolled(resend=ResendPolicy(cooldown=30, max_cooldown=100))
    auth.begin("alice")
    waits = []
    for _ in range(4):
        with pytest.raises(RateLimited) as info:
            auth.begin("alice")
        assert info.value.retry_after is not None
        waits.append(info.value.retry_after)
        clock.advance(info.value.retry_after)
        auth.begin("alice")
    assert waits == [30, 60, 100, 100]


def test_daily_cap_per_subject() -> None:
    auth, channel, _, clock = enrolled(resend=ResendPolicy(cooldown=0, daily_per_subject=3))
    for _ in range(3):
        auth.begin("alice")
    with pytest.raises(RateLimited) as info:
        auth.begin("alice")
    assert info.value.reason is Reason.RATE_LIMITED
    assert len(channel.messages) == 3
    clock.advance(86_400)
    auth.begin("alice")


def test_one_number_cannot_be_flooded_through_many_subjects() -> None:
    auth, channel, store, clock = make(resend=ResendPolicy(cooldown=0, daily_per_destination=3))
    for i in range(5):
        put_destination(store, f"user{i}", parse_phone(PHONE), now=clock.now())
    for i in range(5):
        auth.begin(f"user{i}")  # the last two are answered, and dropped (test_oob_send_caps)
    assert len(channel.messages) == 3


def test_prefix_cap_brakes_sms_pumping() -> None:
    auth, channel, store, clock = make(
        resend=ResendPolicy(cooldown=0, hourly_per_prefix=3, prefix_digits=6)
    )
    for i in range(5):
        put_destination(store, f"user{i}", parse_phone(f"+2126123456{i}0"), now=clock.now())
    for i in range(4):
        auth.begin(f"user{i}")  # user3's message is dropped
    assert len(channel.messages) == 3
    clock.advance(3600)
    auth.begin("user4")
    assert len(channel.messages) == 4


def test_unknown_subjects_cannot_exhaust_real_caps() -> None:
    auth, channel, _, _ = enrolled(
        resend=ResendPolicy(cooldown=0, hourly_per_prefix=2, hourly_global=2)
    )
    for i in range(20):
        with contextlib.suppress(RateLimited):
            auth.begin(f"nobody-{i}")
    auth.begin("alice")
    assert len(channel.messages) == 1


def test_global_hourly_cap() -> None:
    auth, channel, store, clock = make(resend=ResendPolicy(cooldown=0, hourly_global=2))
    put_destination(store, "a", parse_phone("+212612345678"), now=clock.now())
    put_destination(store, "b", parse_phone("+33612345678"), now=clock.now())
    auth.begin("a")
    auth.begin("b")
    auth.begin("a")  # answered, and dropped
    assert [m.to for m in channel.messages] == ["+212612345678", "+33612345678"]


def test_unknown_subject_gets_the_same_shape_and_nothing_is_sent() -> None:
    auth, channel, _, clock = enrolled()
    known = auth.begin("alice")
    unknown = auth.begin("nobody")
    assert len(channel.messages) == 1
    assert set(known.to_dict()) == set(unknown.to_dict())
    assert dict(known.data) == dict(unknown.data)
    assert len(known.id) == len(unknown.id)
    assert known.expires_at - known.created_at == unknown.expires_at - unknown.created_at
    assert HINT.match(unknown.hint or "")
    with pytest.raises(InvalidCode) as info:
        auth.verify(unknown, "123456")
    assert info.value.remaining_attempts == 4
    # The decoy hint is stable, and limits apply exactly as for a real subject.
    with pytest.raises(RateLimited):
        auth.begin("nobody")
    clock.advance(30)
    assert auth.begin("nobody").hint == unknown.hint


def test_unknown_email_subject_has_a_plausible_hint() -> None:
    auth, channel, _, _ = enrolled(ChannelKind.EMAIL)
    hint = auth.begin("nobody").hint or ""
    assert re.fullmatch(r"[a-z]•••@[a-z.]+", hint)
    assert channel.messages == ()


def test_unconfirmed_destination_receives_no_login_code() -> None:
    auth, channel, _, clock = make()
    auth.enroll("bob", "0622222222")
    assert len(channel.messages) == 1
    clock.advance(60)
    challenge = auth.begin("bob")
    assert len(channel.messages) == 1
    with pytest.raises(AuthenticationFailed):
        auth.verify(challenge, channel.last_code())


def test_enrollment_is_confirmed_by_a_code() -> None:
    auth, channel, _, clock = enrolled()
    enrolling = auth.enroll("alice", "07 00 12 34 56")
    assert enrolling.data["purpose"] == "enroll"
    assert channel.last().to == "+212700123456"
    code = channel.last_code()
    with pytest.raises(ChallengeNotFound):
        auth.verify(enrolling, code)  # An enrollment code is no login code.
    clock.advance(60)
    login = auth.begin("alice")
    assert channel.last().to == PHONE  # Still the confirmed number.
    with pytest.raises(ChallengeNotFound):
        auth.confirm(login, channel.last_code())  # And a login code confirms nothing.
    destination = auth.confirm(enrolling, code)
    assert destination.address == "+212700123456"
    clock.advance(120)
    auth.begin("alice")
    assert channel.last().to == "+212700123456"


def test_a_confirmation_for_someone_else_is_not_found_and_costs_nothing() -> None:
    audit = MemoryAuditLog()
    auth, channel, _, _ = make(resend=ResendPolicy(cooldown=0), audit=audit)
    enrolling = auth.enroll("bob", "0611111111")
    code = channel.last_code()
    # A caller authorized as mallory answers bob's enrollment, even with the right code.
    with pytest.raises(ChallengeNotFound):
        auth.confirm(enrolling, code, subject="mallory")
    refused = [e for e in audit.events if e.outcome.value == "failure"]
    assert [(e.subject, e.reason) for e in refused] == [(None, "challenge_not_found")]
    assert auth.confirm(enrolling, code, subject="bob").address == "+212611111111"


def test_a_newer_enrollment_replaces_the_older() -> None:
    auth, channel, _, _ = make(resend=ResendPolicy(cooldown=0))
    first = auth.enroll("bob", "0611111111")
    first_code = channel.last_code()
    second = auth.enroll("bob", "0622222222")
    with pytest.raises(ChallengeUsed):
        auth.confirm(first, first_code)
    assert auth.confirm(second, channel.last_code()).address == "+212622222222"


def test_enrollment_validates_the_destination() -> None:
    auth, channel, _, _ = make()
    with pytest.raises(MalformedInput):
        auth.enroll("bob", "not a number")
    assert channel.messages == ()


def test_failed_delivery_burns_the_code_and_is_audited() -> None:
    audit = MemoryAuditLog()
    auth, channel, store, _ = enrolled(audit=audit)
    channel.fail_with([DeliveryRejected("unknown number", status=400)])
    with pytest.raises(CodeNotDelivered) as info:
        auth.begin("alice")
    assert not info.value.retryable
    record = store.get_challenge(info.value.challenge_id)
    assert record is not None
    assert record.consumed
    failures = [e for e in audit.events if e.action.value == "deliver"]
    assert [(e.outcome.value, e.reason) for e in failures] == [("failure", "delivery_failed")]


def test_transient_failures_are_retried_within_the_deadline() -> None:
    pauses: list[float] = []
    auth, channel, _, _ = enrolled(sleep=pauses.append)
    channel.fail_with([DeliveryTimeout("slow"), DeliveryTimeout("slow")])
    challenge = auth.begin("alice")
    assert pauses == [0.5, 1.0]
    assert auth.verify(challenge, channel.last_code()).method == "sms"


def test_fallback_to_email_when_sms_fails() -> None:
    audit = MemoryAuditLog()
    mail = CapturingChannel(ChannelKind.EMAIL)
    auth, sms, store, clock = enrolled(fallback=mail, audit=audit)
    put_destination(store, "alice", parse_email(EMAIL), now=clock.now())
    sms.fail_with([DeliveryRejected("operator refused")])
    challenge = auth.begin("alice")
    assert sms.messages == ()
    assert mail.last().to == EMAIL
    assert mail.last().subject == "Your CNSS code"
    assert auth.verify(challenge, mail.last_code()).subject == "alice"
    delivers = [
        (e.outcome.value, e.details.get("fallback"))
        for e in audit.events
        if e.action.value == "deliver"
    ]
    assert delivers == [("failure", None), ("success", "true")]


def test_fallback_needs_a_confirmed_destination() -> None:
    mail = CapturingChannel(ChannelKind.EMAIL)
    auth, sms, _, _ = enrolled(fallback=mail)
    sms.fail_with([DeliveryRejected("operator refused")])
    with pytest.raises(CodeNotDelivered):
        auth.begin("alice")
    assert mail.messages == ()


def test_background_dispatcher_delivers_and_burns_on_failure() -> None:
    with BackgroundDispatcher(max_workers=2) as dispatcher:
        auth, channel, store, clock = enrolled(dispatcher=dispatcher)
        challenge = auth.begin("alice")
        dispatcher.drain(5)
        assert auth.verify(challenge, channel.last_code()).method == "sms"
        clock.advance(30)
        channel.fail_with([DeliveryRejected("refused")])
        failed = auth.begin("alice")  # Returns at once; the failure happens in the worker.
        dispatcher.drain(5)
        record = store.get_challenge(failed.id)
        assert record is not None
        assert record.consumed


def test_inline_dispatcher_pads_to_the_minimum_duration() -> None:
    now = [100.0]
    pauses: list[float] = []
    dispatcher = InlineDispatcher(min_duration=2.0, sleep=pauses.append, monotonic=lambda: now[0])
    auth, _, _, _ = enrolled(dispatcher=dispatcher, monotonic=lambda: now[0])

    def slow_job() -> None:
        now[0] += 0.5

    dispatcher.dispatch(slow_job, started=100.0)
    assert pauses == [1.5]
    auth.begin("nobody")  # Nothing to deliver: the whole minimum is slept.
    assert pauses[-1] == pytest.approx(2.0)


def test_audit_events_never_hold_codes_or_full_destinations() -> None:
    audit = MemoryAuditLog()
    auth, channel, _, _ = enrolled(audit=audit)
    challenge = auth.begin("alice")
    code = channel.last_code()
    with pytest.raises(InvalidCode):
        auth.verify(challenge, wrong(code))
    auth.verify(challenge, code)
    auth.begin("nobody")
    text = repr(audit.events)
    assert code not in text
    assert PHONE[4:] not in text
    actions = [(e.action.value, e.outcome.value, e.reason) for e in audit.events]
    assert actions == [
        ("begin", "info", None),
        ("deliver", "success", None),
        ("verify", "failure", "invalid_code"),
        ("verify", "success", None),
        ("begin", "info", None),
    ]


def test_configuration_is_checked() -> None:
    store = MemoryStore()
    sms = CapturingChannel(ChannelKind.SMS)
    with pytest.raises(ConfigurationError):
        EmailCodeAuthenticator(channel=sms, store=store, audit=MemoryAuditLog(), pepper=PEPPER)
    with pytest.raises(ConfigurationError):
        SMSCodeAuthenticator(
            channel=sms, store=store, audit=MemoryAuditLog(), pepper=Secret(b"short")
        )
    with pytest.raises(ConfigurationError):
        SMSCodeAuthenticator(
            channel=sms, store=store, audit=MemoryAuditLog(), pepper=PEPPER, fallback=sms
        )
    with pytest.raises(ConfigurationError):
        SMSCodeAuthenticator(
            channel=sms, store=store, audit=MemoryAuditLog(), pepper=PEPPER, language="de"
        )
    with pytest.raises(ConfigurationError):
        OutOfBandAuthenticator(channel=sms, store=store, audit=MemoryAuditLog(), pepper=PEPPER)
    with pytest.raises(ConfigurationError):
        SMSCodeAuthenticator(
            channel=sms,
            store=store,
            audit=MemoryAuditLog(),
            pepper=PEPPER,
            service_name="A\r\nBcc: x",
        )
    assert DIGITS == "0123456789"


@pytest.mark.parametrize("kind", [ChannelKind.SMS, ChannelKind.EMAIL])
def test_a_language_without_a_catalog_is_a_client_error(kind: ChannelKind) -> None:
    from macnss_auth.errors import UnsupportedLanguage  # noqa: PLC0415

    auth, channel, _, _ = enrolled(kind, resend=ResendPolicy(cooldown=30, max_cooldown=60))
    address = PHONE if kind is ChannelKind.SMS else EMAIL
    asks: list[Callable[[], object]] = [
        functools.partial(auth.begin, "alice", language="de"),
        functools.partial(auth.enroll, "bob", address, language="de"),
    ]
    for ask in asks:
        with pytest.raises(UnsupportedLanguage) as info:
            ask()
        assert info.value.language == "de"
        assert isinstance(info.value, MalformedInput)
    # Nothing was sent, and nothing counted against the resend cooldown.
    assert not channel.messages
    auth.begin("alice", language="ar")
    assert len(channel.messages) == 1

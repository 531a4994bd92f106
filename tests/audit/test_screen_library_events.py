"""The secret screen accepts every event the library itself writes, and still refuses secrets.

A refusal of the library's own event is worse than useless: the caller gets
AuditEventRejected instead of LockedOut/RateLimited, after the state already
changed, and the record of a lockout is lost.
"""

from __future__ import annotations

import pytest

from macnss_auth.audit import (
    AuditAction,
    AuditEvent,
    AuditEventRejected,
    MemoryAuditLog,
    Outcome,
    SecretScreen,
)
from macnss_auth.delivery import CapturingChannel, ChannelKind
from macnss_auth.errors import InvalidCode, LockedOut, RateLimited
from macnss_auth.otp.contacts import mask_email, mask_national, mask_phone
from macnss_auth.otp.oob import EmailCodeAuthenticator, InlineDispatcher, ResendPolicy
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.throttle import ThrottlePolicy
from tests.otp.otp_helpers import SECRET, T0, make_totp, totp_code

PEPPER = Secret(b"an application pepper of 32+ bytes, test only")
LONG = 200_000.0  # seconds: six digits when written as an integer


def wrong_code(good: str) -> str:
    return f"{(int(good) + 500_000) % 10**6:06d}"


def test_lockout_of_a_day_or_more_is_recorded_and_raised() -> None:
    clock = FixedClock.at(T0)
    audit = MemoryAuditLog()
    policy = ThrottlePolicy(free_failures=2, lockout_after=3, lockout_duration=LONG)
    totp = make_totp(clock, audit=audit, policy=policy)
    totp.enroll("alice", secret=SECRET)
    totp.confirm("alice", totp_code(SECRET, clock.now()))
    clock.advance(60)
    wrong = wrong_code(totp_code(SECRET, clock.now()))
    for count in range(3):
        clock.advance(policy.delay_after(count))
        # The third guess triggers the lockout: still InvalidCode, not AuditEventRejected.
        with pytest.raises(InvalidCode):
            totp.verify_code("alice", wrong)
    lockout = audit.events[-1]
    assert lockout.action is AuditAction.LOCKOUT
    assert lockout.details["duration"] == "200000"
    with pytest.raises(LockedOut) as locked:
        totp.verify_code("alice", totp_code(SECRET, clock.now()))
    assert locked.value.retry_after == pytest.approx(LONG)
    assert audit.events[-1].details["retry_after"] == "200000"


def email_authenticator(
    audit: MemoryAuditLog, **kwargs: object
) -> tuple[EmailCodeAuthenticator, CapturingChannel, MemoryStore, FixedClock]:
    clock = FixedClock.at(T0)
    store = MemoryStore(keyring=Keyring.generate(random=FixedRandom(9)))
    channel = CapturingChannel(ChannelKind.EMAIL)
    auth = EmailCodeAuthenticator(
        channel=channel,
        store=store,
        pepper=PEPPER,
        clock=clock,
        random=FixedRandom(1),
        dispatcher=InlineDispatcher(),
        service_name="CNSS",
        language="en",
        audit=audit,
        **kwargs,  # type: ignore[arg-type]
    )
    return auth, channel, store, clock


def test_resend_window_of_a_day_or_more_is_rate_limited_not_rejected() -> None:
    audit = MemoryAuditLog()
    auth, channel, _store, clock = email_authenticator(
        audit, resend=ResendPolicy(cooldown=LONG, max_cooldown=LONG)
    )
    enrolling = auth.enroll("alice", "alice@example.org")
    auth.confirm(enrolling, channel.last_code())
    auth.begin("alice")
    clock.advance(1)
    with pytest.raises(RateLimited) as info:
        auth.begin("alice")
    assert info.value.retry_after is not None
    assert info.value.retry_after >= LONG - 2
    assert audit.events[-1].reason == "rate_limited"
    assert int(audit.events[-1].details["retry_after"]) >= LONG - 2


@pytest.mark.parametrize(
    "address",
    ["ali@smtp1234567.ma", "ali@123.456.789.example", "7@mail2024202520.example"],
)
def test_address_with_a_digit_rich_domain_enrolls(address: str) -> None:
    audit = MemoryAuditLog()
    auth, channel, _store, clock = email_authenticator(audit)
    enrolling = auth.enroll("alice", address)
    confirmed = auth.confirm(enrolling, channel.last_code())
    assert confirmed.address.lower() == address.lower()
    clock.advance(60)
    challenge = auth.begin("alice")
    assert auth.verify(challenge, channel.last_code()).subject == "alice"
    hints = {e.details["hint"] for e in audit.events if "hint" in e.details}
    assert hints == {mask_email(address.lower())}


@pytest.mark.parametrize("max_digits", [0, 3, 5])
@pytest.mark.parametrize(
    "hint",
    [
        mask_phone("+212612345678"),
        mask_phone("+9647912345678"),
        mask_national(1684, "2345678"),
        mask_national(212, "12"),
        mask_email("ali@smtp1234567.ma"),
        mask_email("1@2024.example"),
        mask_email("\u2022x@mail123456.example"),
        "•••",
    ],
)
def test_library_hints_pass_any_screen(hint: str, max_digits: int) -> None:
    SecretScreen(max_digits=max_digits).check_details({"hint": hint})


@pytest.mark.parametrize(
    "value",
    [
        "+212612345678",
        "+212 612 345 678",
        "0612345678",
        "123456",
        "alice@example.org 123456",
        "+212 6•• ••• •78 123456",
        "+212 612 ••• •78",
        "1234567•••@example.org",
        "a•••@example.org <<<",
    ],
)
def test_hint_key_still_refuses_unmasked_numbers_and_codes(value: str) -> None:
    with pytest.raises(AuditEventRejected):
        SecretScreen().check_details({"hint": value})


@pytest.mark.parametrize(
    "key", ["retry_after", "duration", "attempts", "remaining", "segments", "skipped", "drift"]
)
def test_library_counts_and_durations_pass(key: str) -> None:
    SecretScreen().check_details({key: "31536000"})
    SecretScreen().check_details({key: "-1000000"})


@pytest.mark.parametrize("key", ["retry_after", "duration", "attempts"])
def test_library_numeric_keys_still_refuse_phone_numbers(key: str) -> None:
    for value in ("+212612345678", "06 12 34 56 78", "612-345-678"):
        with pytest.raises(AuditEventRejected):
            SecretScreen().check_details({key: value})


def test_document_signer_names_pass() -> None:
    """A DS certificate subject may carry long serial numbers: a public fact, not a code."""
    SecretScreen().check_details(
        {"document_signer": "C=MA,O=DGSN,serialNumber=20240001234,CN=DS eID 2024-000017"}
    )
    with pytest.raises(AuditEventRejected):
        SecretScreen().check_details({"document_signer": "P<MARALAMI<<ALI<<<<<<<"})


def test_key_rotation_names_pass() -> None:
    """`macnss-auth keys` records key ids and store names after the ring changed."""
    SecretScreen(max_digits=0).check_details(
        {
            "primary": "k20261206",
            "previous": "k1 2026-12-06",
            "retired": "k1000000000",
            "resealed": "/srv/2026-12-06/state.sqlite3=1234567; postgresql://***@10.0.0.5:5432/a=3",
        }
    )
    with pytest.raises(AuditEventRejected):  # an MRZ is still an MRZ
        SecretScreen().check_details({"resealed": "P<MARALAMI<<ALI<<<<<<<"})


def test_whole_library_event_passes_a_strict_screen() -> None:
    """The details the authenticators write, at extreme values, under max_digits=0."""
    log = MemoryAuditLog(screen=SecretScreen(max_digits=0))
    now = FixedClock.at(T0).now()
    for details in (
        {"attempts": "20", "duration": "31536000"},
        {"retry_after": "31536000"},
        {"attempts": "3", "segments": "2", "hint": mask_phone("+212612345678")},
        {"step": "60000000", "drift": "-1"},
        {"counter": "4294967296", "skipped": "12"},
        {"remaining": "9", "count": "10", "bits": "80"},
        {"digits": "8", "period": "30", "length": "6"},
    ):
        log.record(
            AuditEvent(
                at=now, action=AuditAction.VERIFY, method="x", outcome=Outcome.INFO, details=details
            )
        )
    assert len(log.events) == 7


def test_library_keys_pass_a_screen_configured_without_them() -> None:
    screen = SecretScreen(max_digits=2, numeric_keys=frozenset())
    screen.check_details({"retry_after": "200000", "hint": mask_email("ali@smtp1234567.ma")})
    with pytest.raises(AuditEventRejected):
        screen.check_details({"elapsed_ms": "1234"})

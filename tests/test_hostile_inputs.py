"""Hostile input to every method and to Policy: only library errors, and nothing breaks.

Each public entry point of each method gets subjects, challenges, responses
and client contexts of the wrong type, with NUL, lone surrogates, non-ASCII
digits, or megabytes of text. Every call must either work or raise a
:class:`~macnss_auth.errors.MacnssAuthError`; never ``TypeError``,
``AttributeError``, ``UnicodeEncodeError``, ``ValueError`` or a backend's
own error. Afterwards a valid code still works, once. The matrix runs on
every store backend, since NUL and surrogates used to fail differently on
each.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pyotp
import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.authenticator import AssuranceLevel, Challenge, ClientContext
from macnss_auth.delivery import CapturingChannel, ChannelKind, find_code
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeNotFound,
    MacnssAuthError,
    MalformedInput,
    StoreError,
)
from macnss_auth.otp.contacts import parse_email, parse_phone, put_destination
from macnss_auth.otp.hotp import HotpAuthenticator
from macnss_auth.otp.oob import (
    EmailCodeAuthenticator,
    InlineDispatcher,
    OutOfBandAuthenticator,
    ResendPolicy,
    SMSCodeAuthenticator,
)
from macnss_auth.otp.recovery import RecoveryCodeAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.policy import Policy
from macnss_auth.secret import Secret
from macnss_auth.store import Store
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.throttle import ThrottlePolicy

T0 = 1_699_999_990
SEED = b"12345678901234567890"
ORACLE = pyotp.TOTP(base64.b32encode(SEED).decode())
HOTP_ORACLE = pyotp.HOTP(base64.b32encode(SEED).decode())
RELAXED = ThrottlePolicy(free_failures=99, lockout_after=100)
OPEN = ResendPolicy(cooldown=0, daily_per_subject=10**6, daily_per_destination=10**6)

BIG = "7" * 100_000
# Anything a client could send where text is expected.
HOSTILE: tuple[object, ...] = (
    None,
    0,
    123456,
    1.5,
    float("nan"),
    b"123456",
    bytearray(b"1"),
    ["123456"],
    {"code": "123456"},
    ("1",),
    object(),
    "",
    "\x00",
    "12\x0034",
    "\ud800",
    "12345\udfff",
    "²²²²²²",
    "\uff11\uff12\uff13\uff14\uff15\uff16",  # fullwidth digits
    "\u0661" * 13,  # Arabic-Indic digits, too many
    "a:b@c#d/e%00!",
    BIG,
)
CONTEXTS = (
    None,
    ClientContext(client_id="k"),
    ClientContext(client_id="\x00", ip="\x00", user_agent="\x00"),
    ClientContext(client_id="\ud800", ip="::1", user_agent="\ud800"),
    ClientContext(client_id=BIG),
    ClientContext(client_id=5),  # type: ignore[arg-type]
    ClientContext(client_id=["k"]),  # type: ignore[arg-type]
)


def _hostile_ids(challenge: Challenge) -> list[object]:
    # Hostile ids, and a Challenge whose id was tampered with.
    tampered = Challenge(
        id="\x00" + challenge.id,
        subject=challenge.subject,
        method=challenge.method,
        created_at=challenge.created_at,
        expires_at=challenge.expires_at,
    )
    return [*HOSTILE, tampered]


def _probe(log: list[str], call: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """Call; a library error is fine, any other exception goes into ``log``.

    ``StoreError`` counts as foreign here: bad input must be refused before a
    backend chokes on it, alike on every backend.
    """
    try:
        call(*args, **kwargs)
    except StoreError as exc:
        log.append(f"StoreError: {exc!s:.80}")
    except MacnssAuthError:
        return
    except Exception as exc:  # noqa: BLE001 (the point: report any foreign exception)
        where = exc.__traceback__
        while where is not None and where.tb_next is not None:
            where = where.tb_next
        frame = f"{where.tb_frame.f_code.co_filename}:{where.tb_lineno}" if where else "?"
        message = f"{type(exc).__name__} at {frame.rpartition('/')[2]}: {exc!s:.80}"
        if message not in log:
            log.append(message)


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every test here runs on each backend (tests/conftest.py's store factory)."""
    return any_store


def _oob(store: Store, clock: FixedClock, channel: CapturingChannel) -> OutOfBandAuthenticator:
    cls = SMSCodeAuthenticator if channel.kind is ChannelKind.SMS else EmailCodeAuthenticator
    return cls(
        channel=channel,
        store=store,
        pepper=Secret(b"an application pepper of 32+ bytes, test only"),
        clock=clock,
        random=FixedRandom(11),
        audit=MemoryAuditLog(),
        dispatcher=InlineDispatcher(),
        resend=OPEN,
        throttle=RELAXED,
    )


def test_totp_and_hotp(store: Store) -> None:
    clock = FixedClock.at(T0)
    foreign: list[str] = []
    totp = TotpAuthenticator(
        store=store, audit=MemoryAuditLog(), clock=clock, throttle_policy=RELAXED
    )
    hotp = HotpAuthenticator(
        store=store, audit=MemoryAuditLog(), clock=clock, throttle_policy=RELAXED
    )
    totp.enroll("alice", secret=SEED)
    totp.confirm("alice", ORACLE.at(T0 - 30))
    hotp.enroll("alice", secret=SEED)
    hotp.confirm("alice", HOTP_ORACLE.at(0))
    for auth in (totp, hotp):
        challenge = auth.begin("alice")
        for bad in HOSTILE:
            for context in CONTEXTS:
                _probe(foreign, auth.begin, bad, context=context)
                _probe(foreign, auth.verify_code, bad, "123456")
                _probe(foreign, auth.verify_code, "alice", bad, context=context)
                _probe(foreign, auth.verify, challenge, bad, context=context)
            _probe(foreign, auth.confirm, bad, "123456")
            _probe(foreign, auth.enroll, bad)
        for bad in _hostile_ids(challenge):
            _probe(foreign, auth.verify, bad, "123456")
        _probe(foreign, hotp.resync, "alice", ["1"], {})
        _probe(foreign, hotp.resync, "\ud800", "1", "2")
    assert foreign == []
    # A valid code still works, once.
    assert totp.verify(totp.begin("alice"), ORACLE.at(T0)).subject == "alice"
    with pytest.raises(AuthenticationFailed):
        totp.verify(totp.begin("alice"), ORACLE.at(T0))
    assert hotp.verify(hotp.begin("alice"), HOTP_ORACLE.at(1)).subject == "alice"
    with pytest.raises(AuthenticationFailed):
        hotp.verify(hotp.begin("alice"), HOTP_ORACLE.at(1))


def test_recovery_codes(store: Store) -> None:
    clock = FixedClock.at(T0)
    foreign: list[str] = []
    recovery = RecoveryCodeAuthenticator(
        store=store,
        audit=MemoryAuditLog(),
        clock=clock,
        random=FixedRandom(5),
        throttle_policy=RELAXED,
        scrypt_n=2**10,
        count=2,
    )
    codes = recovery.generate("alice").codes
    challenge = recovery.begin("alice")
    for bad in HOSTILE:
        _probe(foreign, recovery.begin, bad)
        _probe(foreign, recovery.generate, bad)
        _probe(foreign, recovery.verify_code, bad, codes[1])
        for context in CONTEXTS:
            _probe(foreign, recovery.verify, challenge, bad, context=context)
    for bad in _hostile_ids(challenge):
        _probe(foreign, recovery.verify, bad, codes[1])
    assert foreign == []
    assert recovery.verify(recovery.begin("alice"), codes[0]).subject == "alice"
    with pytest.raises(AuthenticationFailed):
        recovery.verify(recovery.begin("alice"), codes[0])


@pytest.mark.parametrize("kind", [ChannelKind.SMS, ChannelKind.EMAIL])
def test_sms_and_email_codes(store: Store, kind: ChannelKind) -> None:
    clock = FixedClock.at(T0)
    channel = CapturingChannel(kind)
    foreign: list[str] = []
    sms = kind is ChannelKind.SMS
    address = "+212612345678" if sms else "alice@example.org"
    with _oob(store, clock, channel) as auth:
        put_destination(
            store, "alice", parse_phone(address) if sms else parse_email(address), now=clock.now()
        )
        challenge = auth.begin("alice")
        for bad in HOSTILE:
            for context in CONTEXTS:
                _probe(foreign, auth.begin, bad, context=context)
                _probe(foreign, auth.verify, challenge, bad, context=context)
            _probe(foreign, auth.begin, "alice", language=bad)
            _probe(foreign, auth.enroll, bad, address)
            _probe(foreign, auth.enroll, "bob", bad)
        for bad in _hostile_ids(challenge):
            _probe(foreign, auth.verify, bad, "123456")
            _probe(foreign, auth.confirm, bad, "123456")
        assert foreign == []
        fresh = auth.begin("alice")
        code = find_code(channel.messages[-1].text)
        assert auth.verify(fresh, code).subject == "alice"
        with pytest.raises(AuthenticationFailed):
            auth.verify(fresh, code)


def test_policy(store: Store) -> None:
    clock = FixedClock.at(T0)
    foreign: list[str] = []
    totp = TotpAuthenticator(
        store=store, audit=MemoryAuditLog(), clock=clock, throttle_policy=RELAXED
    )
    totp.enroll("alice", secret=SEED)
    totp.confirm("alice", ORACLE.at(T0 - 30))
    policy = Policy(
        authenticators=[(totp, AssuranceLevel.SUBSTANTIAL)],
        store=store,
        clock=clock,
        throttle_policy=RELAXED,
    )
    challenge = policy.begin("alice", "totp")
    # Policy.verify counts every attempt across methods before the method
    # looks at it, so the matrix stays below the cross-method lockout.
    for context in CONTEXTS:
        _probe(foreign, policy.verify, challenge, "\ud800", context=context)
    for bad in HOSTILE:
        for context in CONTEXTS:
            _probe(foreign, policy.begin, bad, "totp", context=context)
        _probe(foreign, policy.verify, challenge, bad)
        _probe(foreign, policy.begin, "alice", bad)
    for bad in _hostile_ids(challenge):
        _probe(foreign, policy.verify, bad, "123456")
    assert foreign == []
    assert policy.verify(policy.begin("alice", "totp"), ORACLE.at(T0)).subject == "alice"
    with pytest.raises(AuthenticationFailed):
        policy.verify(policy.begin("alice", "totp"), ORACLE.at(T0))


def test_nul_and_surrogate_ids_are_the_same_typed_errors(store: Store) -> None:
    # Subjects: MalformedInput(field="subject"); challenge ids: ChallengeNotFound.
    # The same on every backend, for every method and for Policy.
    from macnss_auth.nfc.eid import EidAuthenticator  # noqa: PLC0415 (heavy import)
    from macnss_auth.nfc.pki import TrustStore  # noqa: PLC0415

    clock = FixedClock.at(T0)
    totp = TotpAuthenticator(store=store, audit=MemoryAuditLog(), clock=clock)
    hotp = HotpAuthenticator(store=store, audit=MemoryAuditLog(), clock=clock)
    recovery = RecoveryCodeAuthenticator(store=store, audit=MemoryAuditLog(), clock=clock)
    eid = EidAuthenticator(
        store=store,
        audit=MemoryAuditLog(),
        trust_store=TrustStore(),
        binding_key=bytes(range(32)),
        clock=clock,
    )
    policy = Policy(authenticators=[(totp, AssuranceLevel.SUBSTANTIAL)], store=store, clock=clock)
    with _oob(store, clock, CapturingChannel(ChannelKind.SMS)) as sms:
        begins: list[Callable[[str], object]] = [
            totp.begin,
            totp.enroll,
            hotp.begin,
            recovery.begin,
            recovery.generate,
            sms.begin,
            lambda subject: sms.enroll(subject, "+212612345678"),
            eid.begin,
            lambda subject: policy.begin(subject, "totp"),
        ]
        checks: list[Callable[[str], object]] = [
            lambda subject: totp.verify_code(subject, "123456"),
            lambda subject: hotp.verify_code(subject, "123456"),
            lambda subject: recovery.verify_code(subject, "0000-0000-0000"),
        ]
        answers: list[Callable[[str], object]] = [
            lambda cid: totp.verify(cid, "123456"),
            lambda cid: hotp.verify(cid, "123456"),
            lambda cid: recovery.verify(cid, "0000-0000-0000"),
            lambda cid: sms.verify(cid, "123456"),
            lambda cid: sms.confirm(cid, "123456"),
            lambda cid: eid.verify(cid, "{}"),
            lambda cid: policy.verify(cid, "123456"),
        ]
        for bad in ("a\x00b", "\x00", "\ud800", "x\udfffy"):
            for call in begins + checks:
                with pytest.raises(MalformedInput) as raised:
                    call(bad)
                assert raised.value.field == "subject"
            for call in answers:
                with pytest.raises(ChallengeNotFound):
                    call(bad)


def test_eid_upload_with_a_non_ascii_group_key_keeps_the_nonce(store: Store) -> None:
    # An upload whose data-group key is "²" (str.isdigit() says yes, int() says no).
    from macnss_auth.nfc.eid import EidAuthenticator  # noqa: PLC0415 (heavy import)
    from macnss_auth.nfc.pki import TrustStore  # noqa: PLC0415
    from macnss_auth.nfc.verify import BUNDLE_FORMAT, BUNDLE_VERSION  # noqa: PLC0415

    audit = MemoryAuditLog()
    eid = EidAuthenticator(
        store=store,
        audit=audit,
        trust_store=TrustStore(),
        binding_key=bytes(range(32)),
        clock=FixedClock.at(T0),
        random=FixedRandom(5),
    )
    challenge = eid.begin("alice")
    foreign: list[str] = []
    bundle = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "sod": "AA=="}
    uploads: list[Any] = [
        json.dumps({**bundle, "data_groups": {"²": "AA=="}}),
        {**bundle, "data_groups": {"²": "AA=="}},
        {**bundle, "data_groups": {"1": "AA==", "\u0661": "AA=="}},
        {**bundle, "data_groups": {"1": None}, "sod": []},
        *HOSTILE,
    ]
    for upload in uploads:
        _probe(foreign, eid.verify, challenge, upload)
    for bad in HOSTILE:
        _probe(foreign, eid.begin, bad)
    assert foreign == []
    # Malformed uploads were audited and did not use the nonce up.
    record = store.get_challenge(challenge.id)
    assert record is not None
    assert record.consumed is False
    reasons = [event.reason for event in audit.events if event.action.value == "verify"]
    assert len(reasons) == len(uploads)


def test_the_longest_subject_works_everywhere(store: Store) -> None:
    # 512 four-byte characters: 2 kB of UTF-8 in every key, slot and index.
    from macnss_auth.challenges import MAX_SUBJECT_LENGTH  # noqa: PLC0415

    subject = "\U0001f600" * MAX_SUBJECT_LENGTH
    clock = FixedClock.at(T0)
    context = ClientContext(client_id="\U0001f600" * 10_000)
    totp = TotpAuthenticator(store=store, audit=MemoryAuditLog(), clock=clock)
    totp.enroll(subject, secret=SEED)
    totp.confirm(subject, ORACLE.at(T0), context=context)
    clock.advance(30)
    challenge = totp.begin(subject, context=context)
    assert totp.verify(challenge, ORACLE.at(T0 + 30), context=context).subject == subject
    channel = CapturingChannel(ChannelKind.SMS)
    with _oob(store, clock, channel) as sms:
        put_destination(store, subject, parse_phone("+212612345678"), now=clock.now())
        challenge = sms.begin(subject, context=context)
        assert sms.verify(challenge, channel.last_code(), context=context).subject == subject
    with pytest.raises(MalformedInput):
        totp.begin(subject + "a")


# (A lone surrogate in a client id is refused by the audit log, with AuditEventRejected.)
@pytest.mark.parametrize("client_id", ["k", "k\x00", "a/b:c@d#e", "é", "7" * 5000])
def test_every_method_logs_in_with_a_client_id(store: Store, client_id: str) -> None:
    # Issue 18 item 1: on PostgreSQL every call with a client id failed with
    # StoreError (a NUL in the throttle key), so nobody could log in.
    clock = FixedClock.at(T0)
    context = ClientContext(client_id=client_id, ip="127.0.0.1")
    totp = TotpAuthenticator(store=store, audit=MemoryAuditLog(), clock=clock)
    hotp = HotpAuthenticator(store=store, audit=MemoryAuditLog(), clock=clock)
    recovery = RecoveryCodeAuthenticator(
        store=store, audit=MemoryAuditLog(), clock=clock, random=FixedRandom(5), scrypt_n=2**10
    )
    totp.enroll("alice", secret=SEED, context=context)
    totp.confirm("alice", ORACLE.at(T0), context=context)
    hotp.enroll("alice", secret=SEED, context=context)
    hotp.confirm("alice", HOTP_ORACLE.at(0), context=context)
    codes = recovery.generate("alice", context=context).codes
    channel = CapturingChannel(ChannelKind.SMS)
    with _oob(store, clock, channel) as sms:
        policy = Policy(
            authenticators=[
                (totp, AssuranceLevel.SUBSTANTIAL),
                (hotp, AssuranceLevel.SUBSTANTIAL),
                (recovery, AssuranceLevel.SUBSTANTIAL),
                (sms, AssuranceLevel.LOW),
            ],
            store=store,
            clock=clock,
        )
        pending = sms.enroll("alice", "+212612345678", context=context)
        assert sms.confirm(pending, channel.last_code(), context=context).hint
        clock.advance(30)
        logins: list[tuple[str, Callable[[], str]]] = [
            ("totp", lambda: ORACLE.at(T0 + 30)),
            ("hotp", lambda: HOTP_ORACLE.at(1)),
            ("recovery", lambda: codes[0]),
            ("sms", channel.last_code),
        ]
        for method, code in logins:
            challenge = policy.begin("alice", method, context=context)
            result = policy.verify(challenge, code(), context=context)
            assert (result.subject, result.method) == ("alice", method)
        with pytest.raises(AuthenticationFailed):
            totp.verify_code("alice", "000000", context=context)
        assert totp.verify_code("alice", ORACLE.at(T0 + 60), context=context).subject == "alice"

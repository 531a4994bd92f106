"""Policy: methods in order, fallback, never NFC-only, limits across methods."""

from __future__ import annotations

import base64
import io

import attrs
import pyotp
import pytest

from macnss_auth import AssuranceLevel, ConfigurationError, LockedOut, MemoryStore
from macnss_auth.audit import MemoryAuditLog
from macnss_auth.delivery import ChannelKind, ConsoleChannel, find_code
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeNotFound,
    ChallengeUsed,
    DocumentNotGenuine,
    InvalidCode,
    MalformedInput,
    MethodNotOffered,
    Reason,
    UnsupportedLanguage,
)
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.verify import encode_bundle
from macnss_auth.otp.oob import InlineDispatcher, SMSCodeAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.policy import Capability, Policy
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.throttle import ThrottlePolicy

SEED = b"12345678901234567890"


class Setup:
    def __init__(self, *, cross_method: ThrottlePolicy | None = None) -> None:
        self.clock = FixedClock.at(1_800_000_000)
        self.store = MemoryStore(keyring=Keyring.generate(random=FixedRandom(1)))
        audit = MemoryAuditLog()
        self.outbox = io.StringIO()
        self.totp = TotpAuthenticator(
            store=self.store, audit=audit, clock=self.clock, random=FixedRandom(2)
        )
        self.sms = SMSCodeAuthenticator(
            channel=ConsoleChannel(ChannelKind.SMS, stream=self.outbox),
            store=self.store,
            audit=audit,
            clock=self.clock,
            random=FixedRandom(3),
            pepper=Secret(bytes(32)),
            dispatcher=InlineDispatcher(),
        )
        extra = {"throttle_policy": cross_method} if cross_method else {}
        self.policy = Policy(
            authenticators=[
                (self.totp, AssuranceLevel.SUBSTANTIAL),
                (self.sms, AssuranceLevel.LOW),
            ],
            store=self.store,
            clock=self.clock,
            **extra,  # type: ignore[arg-type]
        )

    def enroll(self, subject: str) -> None:
        self.totp.enroll(subject, secret=SEED)
        self.totp.confirm(subject, self.code())
        self.clock.advance(30)
        enrolling = self.sms.enroll(subject, "06 12 34 56 78")
        self.sms.confirm(enrolling, find_code(self.outbox.getvalue()))
        self.outbox.seek(0)
        self.outbox.truncate()

    def code(self) -> str:
        return pyotp.TOTP(base64.b32encode(SEED).decode()).at(self.clock.now())


def test_offers_follow_order_and_capabilities() -> None:
    setup = Setup()
    assert setup.policy.methods == ("totp", "sms")
    assert [o.method for o in setup.policy.offer()] == ["totp", "sms"]
    basic_phone = [o.method for o in setup.policy.offer([Capability.SMS])]
    assert basic_phone == ["sms"]
    assert setup.policy.offer([Capability.NFC]) == []


def test_fallback_goes_to_the_next_usable_method() -> None:
    setup = Setup()
    offer = setup.policy.fallback("totp")
    assert offer is not None
    assert offer.method == "sms"
    assert offer.assurance is AssuranceLevel.LOW
    assert setup.policy.fallback("sms", [Capability.SMS]) is None


def test_never_nfc_only() -> None:
    class Eid:
        method = "eid"

    store = MemoryStore()
    with pytest.raises(ConfigurationError, match="NFC"):
        Policy(
            authenticators=[(Eid(), AssuranceLevel.HIGH)],  # type: ignore[list-item]
            store=store,
            clock=FixedClock.at(0),
        )
    with pytest.raises(ConfigurationError, match="twice"):
        Policy(
            authenticators=[
                (Eid(), AssuranceLevel.HIGH),  # type: ignore[list-item]
                (Eid(), AssuranceLevel.HIGH),  # type: ignore[list-item]
            ],
            store=store,
            clock=FixedClock.at(0),
        )


def test_verify_routes_by_method_and_enforces_minimum() -> None:
    setup = Setup()
    setup.enroll("alice")
    challenge = setup.policy.begin("alice", "totp")
    result = setup.policy.verify(challenge, setup.code())
    assert result.method == "totp"
    setup.clock.advance(30)
    challenge = setup.policy.begin("alice", "sms")
    result = setup.policy.verify(challenge, find_code(setup.outbox.getvalue()))
    assert result.assurance is AssuranceLevel.LOW
    with pytest.raises(MethodNotOffered):
        setup.policy.begin("alice", "eid")


def test_minimum_assurance_removes_weaker_methods() -> None:
    setup = Setup()
    strict = Policy(
        authenticators=[(setup.totp, AssuranceLevel.SUBSTANTIAL), (setup.sms, AssuranceLevel.LOW)],
        store=setup.store,
        clock=setup.clock,
        minimum_assurance=AssuranceLevel.SUBSTANTIAL,
    )
    assert strict.methods == ("totp",)
    setup.enroll("alice")
    challenge = setup.sms.begin("alice")
    with pytest.raises(ChallengeNotFound):
        strict.verify(challenge, find_code(setup.outbox.getvalue()))


def test_failures_count_across_methods() -> None:
    cross = ThrottlePolicy(free_failures=3, base_delay=1, lockout_after=4, lockout_duration=600)
    setup = Setup(cross_method=cross)
    setup.enroll("alice")
    for method in ("totp", "sms", "totp", "sms"):
        challenge = setup.policy.begin("alice", method)
        with pytest.raises(AuthenticationFailed):
            setup.policy.verify(challenge, "000000")
        setup.clock.advance(31)
    with pytest.raises(LockedOut):
        setup.policy.begin("alice", "totp")


def test_unknown_challenge_ids_count_against_nobody() -> None:
    cross = ThrottlePolicy(free_failures=1, base_delay=1, lockout_after=2, lockout_duration=600)
    setup = Setup(cross_method=cross)
    setup.enroll("alice")
    real = setup.policy.begin("alice", "totp")
    for number in range(5):
        forged = attrs.evolve(real, id=f"made-up-{number}")
        with pytest.raises(ChallengeNotFound):
            setup.policy.verify(forged, "000000")
    assert setup.policy.verify(real, setup.code()).subject == "alice"


def test_renaming_the_subject_does_not_dodge_the_cross_method_count() -> None:
    cross = ThrottlePolicy(free_failures=3, base_delay=1, lockout_after=4, lockout_duration=600)
    setup = Setup(cross_method=cross)
    setup.enroll("alice")
    for method in ("totp", "sms", "totp", "sms"):
        challenge = attrs.evolve(setup.policy.begin("alice", method), subject="nobody")
        with pytest.raises(AuthenticationFailed):
            setup.policy.verify(challenge, "000000")
        setup.clock.advance(31)
    with pytest.raises(LockedOut):
        setup.policy.begin("alice", "totp")


@pytest.mark.parametrize("method", ["eid", "", "TOTP", "totp ", 42, None, ["totp"], "x" * 100_000])
def test_an_unknown_method_from_a_client_is_a_client_error(method: object) -> None:
    setup = Setup()
    for call in (
        lambda: setup.policy.begin("alice", method),  # type: ignore[arg-type]
        lambda: setup.policy.authenticator(method),  # type: ignore[arg-type]
        lambda: setup.policy.fallback(method),  # type: ignore[arg-type]
    ):
        with pytest.raises(MethodNotOffered) as info:
            call()
        error = info.value
        assert not isinstance(error, ConfigurationError)
        assert error.reason is Reason.METHOD_NOT_OFFERED
        assert error.field == "method"
        assert error.method == (method if isinstance(method, str) else None)
        assert len(str(error)) < 100  # a client's megabyte never lands in a log line


@pytest.mark.parametrize("language", ["de", "", "FR", "fr-MA", 7])
def test_an_unknown_language_from_a_client_is_a_client_error(language: object) -> None:
    setup = Setup()
    setup.enroll("alice")
    for method in ("sms", "totp"):  # refused even where the method sends nothing
        with pytest.raises(UnsupportedLanguage) as info:
            setup.policy.begin("alice", method, language=language)  # type: ignore[arg-type]
        assert info.value.reason is Reason.UNSUPPORTED_LANGUAGE
        assert info.value.supported == ("ar", "fr", "en")
        assert not isinstance(info.value, ConfigurationError)
    with pytest.raises(UnsupportedLanguage):
        setup.policy.explain(InvalidCode(), language="de")
    assert setup.outbox.getvalue() == ""  # nothing was sent
    # A setup error stays a setup error.
    with pytest.raises(ConfigurationError, match="language"):
        Policy(
            authenticators=[(setup.totp, AssuranceLevel.LOW)],
            store=setup.store,
            clock=setup.clock,
            language="de",
        )


def test_challenge_ids_and_codes_from_a_client_are_client_errors() -> None:
    setup = Setup()
    setup.enroll("alice")
    with pytest.raises(MalformedInput) as not_text:
        setup.policy.verify(42, "123456")  # type: ignore[arg-type]
    assert not_text.value.field == "challenge"
    with pytest.raises(ChallengeNotFound):
        setup.policy.verify("made-up", "123456")
    challenge = setup.policy.begin("alice", "totp")
    with pytest.raises(MalformedInput) as letters:
        setup.policy.verify(challenge, "12ab56")
    assert letters.value.reason is Reason.MALFORMED_CODE


def test_the_language_of_each_request_reaches_the_message() -> None:
    setup = Setup()
    setup.enroll("alice")
    setup.policy.begin("alice", "sms", language="ar")
    assert "رمز" in setup.outbox.getvalue()
    setup.outbox.seek(0)
    setup.outbox.truncate()
    setup.clock.advance(120)
    setup.policy.begin("alice", "sms", language="en")
    assert "is your" in setup.outbox.getvalue()


def test_failures_carry_their_method_and_are_worded_for_it() -> None:
    setup = Setup()
    setup.enroll("alice")
    challenge = setup.policy.begin("alice", "totp")
    with pytest.raises(InvalidCode) as wrong:
        setup.policy.verify(challenge, "000000" if setup.code() != "000000" else "111111")
    assert wrong.value.method == "totp"
    assert setup.policy.explain(wrong.value, language="en") == (
        "The code is not valid. Check it and type it again."
    )
    assert setup.policy.explain(wrong.value).startswith("Le code")  # the policy's default
    assert "الرمز" in setup.policy.explain(wrong.value, language="ar")
    assert "passkey" in setup.policy.explain(
        InvalidCode(method="passkey"), language="en"
    )  # a passkey prompt is not a code either
    unknown = MethodNotOffered("fido")
    assert "not available" in setup.policy.explain(unknown, language="en")
    assert setup.policy.explain(RuntimeError("bug"), language="en").startswith("That did not")


def test_a_replayed_eid_read_is_not_called_an_invalid_code() -> None:
    from tests.nfc.eid.test_eid_authenticator import (  # noqa: PLC0415 (eID fixtures)
        BINDING_KEY,
        SUBJECT,
        issued,
        read,
    )

    setup = Setup()
    card = issued("cnie")
    trust = TrustStore()
    trust.add_csca(card.csca)
    eid = EidAuthenticator(
        store=setup.store,
        audit=MemoryAuditLog(),
        trust_store=trust,
        binding_key=BINDING_KEY,
        clock=setup.clock,
        random=FixedRandom(5),
    )
    eid.enroll(SUBJECT, document_number="AB1234567")
    policy = Policy(
        authenticators=[(eid, AssuranceLevel.HIGH), (setup.totp, AssuranceLevel.SUBSTANTIAL)],
        store=setup.store,
        clock=setup.clock,
    )
    first = policy.begin(SUBJECT, "eid")
    phone = read(card.data, bytes.fromhex(first.data["nonce"]))
    upload = encode_bundle(
        phone.data_groups, phone.files["SOD"], aa_signature=phone.active_auth_signature
    )
    policy.verify(first, upload)
    with pytest.raises(ChallengeUsed) as same:
        policy.verify(first, upload)
    second = policy.begin(SUBJECT, "eid")
    with pytest.raises(DocumentNotGenuine) as other:
        policy.verify(second, upload)
    for failure in (same.value, other.value):
        assert failure.method == "eid"
        for language in ("en", "fr"):
            text = policy.explain(failure, language=language)
            assert "code" not in text.lower()
            assert ("card" if language == "en" else "carte") in text

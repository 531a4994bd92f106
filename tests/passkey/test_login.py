"""Passkey login: named and username-less, several devices, and every refusal with its reason."""

from __future__ import annotations

import base64
import json
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives import serialization

from macnss_auth.audit.events import Outcome
from macnss_auth.authenticator import AssuranceLevel, Challenge
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeNotFound,
    ChallengeUsed,
    InvalidCode,
    LockedOut,
    MalformedInput,
    Reason,
    VerificationThrottled,
)
from macnss_auth.otp import TotpAuthenticator
from macnss_auth.passkey import PasskeyAuthenticator
from macnss_auth.passkey.virtual import VirtualAuthenticator
from macnss_auth.policy import REQUIREMENTS, Capability, Policy
from macnss_auth.testing import FixedClock
from macnss_auth.testing.contract import AuthenticatorContract
from macnss_auth.throttle import ThrottlePolicy
from tests.passkey.helpers import ORIGIN, RP_ID, Setup, make_setup

SUBJECT = "citizen-0001"


@pytest.fixture
def setup() -> Setup:
    return make_setup()


@pytest.fixture
def phone(setup: Setup) -> VirtualAuthenticator:
    device = setup.device()
    setup.register(SUBJECT, device)
    return device


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def refused(setup: Setup, challenge: Challenge, response: Any) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as info:
        setup.passkeys.verify(challenge, response)
    event = setup.last_event()
    assert event.outcome is Outcome.FAILURE
    assert event.reason == info.value.reason.value
    return info.value


class TestPasskeyContract(AuthenticatorContract):
    @pytest.fixture
    def clock(self) -> FixedClock:
        return FixedClock.at(1_800_000_000)

    @pytest.fixture
    def authenticator(self, clock: FixedClock) -> PasskeyAuthenticator:
        self.setup_ = make_setup(clock=clock)
        self.device_ = self.setup_.device()
        self.setup_.register(SUBJECT, self.device_)
        return self.setup_.passkeys

    @pytest.fixture
    def subject(self) -> str:
        return SUBJECT

    def good_response(self, authenticator: Any, challenge: Challenge) -> Any:
        return self.device_.get(challenge.data["options"])

    def bad_response(self, authenticator: Any, challenge: Challenge) -> Any:
        # A well-formed assertion from a device nobody registered.
        stranger = self.setup_.device()
        self.setup_.register("someone-else", stranger)
        return stranger.get(json.loads(challenge.data["options"]) | {"allowCredentials": []})

    def secrets(self, authenticator: Any, subject: str) -> list[str]:
        texts = []
        for credential in self.device_.credentials.values():
            raw = credential.key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            texts += [raw.hex(), b64(raw)]
        return texts


def test_login_with_a_username(setup: Setup, phone: VirtualAuthenticator) -> None:
    challenge = setup.passkeys.begin(SUBJECT)
    options = json.loads(challenge.data["options"])
    assert options["rpId"] == RP_ID
    assert options["userVerification"] == "required"
    assert [c["id"] for c in options["allowCredentials"]] == [b64(c) for c in phone.credentials]
    assert unb64(options["challenge"])
    assert challenge.data["origin"] == ORIGIN
    result = setup.passkeys.verify(challenge, json.dumps(phone.get(options)))
    assert result.subject == SUBJECT
    assert result.method == "passkey"
    assert result.assurance is AssuranceLevel.SUBSTANTIAL
    assert result.details["user_verified"] == "true"
    assert result.details["discoverable"] == "false"
    assert result.details["counter"] == "1"
    event = setup.last_event()
    assert event.outcome is Outcome.SUCCESS
    assert event.details["assurance"] == "substantial"
    assert event.details["credential"] == setup.passkeys.credentials(SUBJECT)[0].tag


def test_login_without_a_username(setup: Setup, phone: VirtualAuthenticator) -> None:
    challenge = setup.passkeys.begin()
    assert challenge.subject == ""
    assert json.loads(challenge.data["options"])["allowCredentials"] == []
    result = setup.passkeys.verify(challenge.id, phone.get(challenge.data["options"]))
    assert result.subject == SUBJECT
    assert result.details["discoverable"] == "true"


def test_username_less_login_needs_the_user_handle(
    setup: Setup, phone: VirtualAuthenticator
) -> None:
    challenge = setup.passkeys.begin()
    response = phone.get(challenge.data["options"], omit_user_handle=True)
    assert refused(setup, challenge, response).reason is Reason.UNKNOWN_CREDENTIAL


def test_a_wrong_user_handle_is_refused(setup: Setup, phone: VirtualAuthenticator) -> None:
    challenge = setup.passkeys.begin()
    response = phone.get(challenge.data["options"], user_handle=b"\x01" * 32)
    assert refused(setup, challenge, response).reason is Reason.UNKNOWN_CREDENTIAL


def test_a_second_device_and_its_removal(setup: Setup, phone: VirtualAuthenticator) -> None:
    laptop = setup.device()
    second = setup.register(SUBJECT, laptop)
    assert [c.credential_id for c in setup.passkeys.credentials(SUBJECT)] == [
        *phone.credentials,
        second.credential_id,
    ]
    # Registration excludes what the person already has.
    options = json.loads(setup.passkeys.begin_registration(SUBJECT).data["options"])
    assert len(options["excludeCredentials"]) == 2
    assert setup.login(SUBJECT, laptop).subject == SUBJECT
    assert setup.login(None, laptop).subject == SUBJECT
    assert setup.passkeys.remove_credential(SUBJECT, second.id_b64url)
    assert setup.last_event().action.value == "revoke"
    challenge = setup.passkeys.begin(SUBJECT)
    assert len(json.loads(challenge.data["options"])["allowCredentials"]) == 1
    response = laptop.get(challenge.data["options"], credential_id=second.credential_id)
    assert refused(setup, challenge, response).reason is Reason.UNKNOWN_CREDENTIAL
    # Without a username too, and the other device still works.
    challenge = setup.passkeys.begin()
    response = laptop.get(challenge.data["options"])
    assert refused(setup, challenge, response).reason is Reason.UNKNOWN_CREDENTIAL
    assert setup.login(SUBJECT, phone).subject == SUBJECT


def test_nobody_removes_someone_elses_passkey(setup: Setup, phone: VirtualAuthenticator) -> None:
    credential_id = next(iter(phone.credentials))
    assert not setup.passkeys.remove_credential("mallory", credential_id)
    assert setup.last_event().reason == Reason.UNKNOWN_CREDENTIAL.value
    assert setup.login(SUBJECT, phone).subject == SUBJECT


def test_unenroll_removes_every_passkey(setup: Setup, phone: VirtualAuthenticator) -> None:
    setup.register(SUBJECT, setup.device())
    assert setup.passkeys.unenroll(SUBJECT) == 2
    assert setup.passkeys.credentials(SUBJECT) == []
    challenge = setup.passkeys.begin()
    assert refused(setup, challenge, phone.get(challenge.data["options"])).reason is (
        Reason.UNKNOWN_CREDENTIAL
    )


def test_an_unknown_credential_is_refused(setup: Setup, phone: VirtualAuthenticator) -> None:
    stranger = setup.device()
    other = make_setup()
    other.register("elsewhere", stranger)  # registered at another service only
    challenge = setup.passkeys.begin(SUBJECT)
    response = stranger.get(json.loads(challenge.data["options"]) | {"allowCredentials": []})
    assert refused(setup, challenge, response).reason is Reason.UNKNOWN_CREDENTIAL


def test_someone_elses_credential_cannot_answer_a_named_challenge(
    setup: Setup, phone: VirtualAuthenticator
) -> None:
    mallory = setup.device()
    setup.register("mallory", mallory)
    challenge = setup.passkeys.begin(SUBJECT)
    response = mallory.get(json.loads(challenge.data["options"]) | {"allowCredentials": []})
    assert refused(setup, challenge, response).reason is Reason.UNKNOWN_CREDENTIAL


def test_a_replayed_challenge_is_refused(setup: Setup, phone: VirtualAuthenticator) -> None:
    challenge = setup.passkeys.begin(SUBJECT)
    response = phone.get(challenge.data["options"])
    setup.passkeys.verify(challenge, response)
    with pytest.raises(ChallengeUsed):
        setup.passkeys.verify(challenge, response)
    # The same assertion against a fresh challenge: signed over the old one.
    fresh = setup.passkeys.begin(SUBJECT)
    assert refused(setup, fresh, response).reason is Reason.CHALLENGE_MISMATCH


def test_a_foreign_challenge_is_refused(setup: Setup, phone: VirtualAuthenticator) -> None:
    mine = setup.passkeys.begin(SUBJECT)
    theirs = setup.passkeys.begin(SUBJECT)
    response = phone.get(theirs.data["options"])
    assert refused(setup, mine, response).reason is Reason.CHALLENGE_MISMATCH
    # A registration challenge cannot be used to log in, nor the reverse.
    registration = setup.passkeys.begin_registration(SUBJECT)
    login = setup.passkeys.begin(SUBJECT)
    with pytest.raises(ChallengeNotFound):
        setup.passkeys.verify(registration, phone.get(login.data["options"]))
    with pytest.raises(ChallengeNotFound):
        setup.passkeys.finish_registration(
            login.id, setup.device().create(registration.data["options"])
        )


@pytest.mark.parametrize(
    ("bend", "reason"),
    [
        ({"origin": "http://localhost:9999"}, Reason.ORIGIN_MISMATCH),
        ({"origin": "https://evil.example"}, Reason.ORIGIN_MISMATCH),
        ({"cross_origin": True}, Reason.ORIGIN_MISMATCH),
        ({"rp_id": "example.org"}, Reason.RP_ID_MISMATCH),
        ({"kind": "webauthn.create"}, Reason.CHALLENGE_MISMATCH),
        ({"challenge": b"\x00" * 32}, Reason.CHALLENGE_MISMATCH),
        ({"up": False}, Reason.USER_NOT_PRESENT),
        ({"uv": False}, Reason.USER_NOT_VERIFIED),
        ({"bs": True}, Reason.BACKUP_STATE_INVALID),
        ({"be": True, "bs": True}, Reason.BACKUP_STATE_INVALID),
    ],
)
def test_bent_assertions_are_refused_with_their_reason(
    setup: Setup, phone: VirtualAuthenticator, bend: dict[str, Any], reason: Reason
) -> None:
    challenge = setup.passkeys.begin(SUBJECT)
    assert refused(setup, challenge, phone.get(challenge.data["options"], **bend)).reason is reason


def test_a_bad_signature_is_invalid(setup: Setup, phone: VirtualAuthenticator) -> None:
    challenge = setup.passkeys.begin(SUBJECT)
    response = phone.get(challenge.data["options"])
    signature = bytearray(unb64(response["response"]["signature"]))
    signature[-1] ^= 1
    response["response"]["signature"] = b64(bytes(signature))
    failure = refused(setup, challenge, response)
    assert isinstance(failure, InvalidCode)
    assert failure.reason is Reason.INVALID_SIGNATURE


def test_tampered_authenticator_data_breaks_the_signature(
    setup: Setup, phone: VirtualAuthenticator
) -> None:
    challenge = setup.passkeys.begin(SUBJECT)
    response = phone.get(challenge.data["options"])
    data = bytearray(unb64(response["response"]["authenticatorData"]))
    data[36] ^= 0x40  # the low byte of the counter
    response["response"]["authenticatorData"] = b64(bytes(data))
    assert refused(setup, challenge, response).reason is Reason.INVALID_SIGNATURE


def test_a_counter_that_goes_back_is_refused(setup: Setup, phone: VirtualAuthenticator) -> None:
    assert setup.login(SUBJECT, phone, sign_count=5).details["counter"] == "5"
    for count in (5, 4, 0):
        challenge = setup.passkeys.begin(SUBJECT)
        response = phone.get(challenge.data["options"], sign_count=count)
        failure = refused(setup, challenge, response)
        assert failure.reason is Reason.SIGN_COUNT_REGRESSED
    assert setup.login(SUBJECT, phone, sign_count=6).details["counter"] == "6"


def test_a_cloned_authenticator_is_caught(setup: Setup, phone: VirtualAuthenticator) -> None:
    clone = setup.device()
    clone.credentials = {k: attrs.evolve(v) for k, v in phone.credentials.items()}
    setup.login(SUBJECT, phone)
    setup.login(SUBJECT, phone)
    # The clone's counter lags behind the original's.
    challenge = setup.passkeys.begin(SUBJECT)
    assert refused(setup, challenge, clone.get(challenge.data["options"])).reason is (
        Reason.SIGN_COUNT_REGRESSED
    )


def test_synced_passkeys_without_counter_keep_working(setup: Setup) -> None:
    synced = setup.device(backup_eligible=True, backed_up=True, counter=False)
    credential = setup.register(SUBJECT, synced)
    assert credential.backup_eligible
    assert not credential.device_bound
    for _ in range(3):
        result = setup.login(SUBJECT, synced)
        assert result.details["counter"] == "0"
        assert result.details["backup_eligible"] == "true"
        assert result.assurance is AssuranceLevel.SUBSTANTIAL


def test_backup_eligibility_never_changes(setup: Setup) -> None:
    synced = setup.device(backup_eligible=True, backed_up=False)
    setup.register(SUBJECT, synced)
    assert setup.login(SUBJECT, synced, bs=True).details["backed_up"] == "true"
    challenge = setup.passkeys.begin(SUBJECT)
    response = synced.get(challenge.data["options"], be=False, bs=False)
    assert refused(setup, challenge, response).reason is Reason.BACKUP_STATE_INVALID


def test_without_user_verification_the_level_is_low() -> None:
    setup = make_setup(user_verification="preferred")
    key = setup.device(user_verification=False)
    setup.register(SUBJECT, key)
    options = json.loads(setup.passkeys.begin(SUBJECT).data["options"])
    assert options["userVerification"] == "preferred"
    result = setup.login(SUBJECT, key)
    assert result.assurance is AssuranceLevel.LOW
    assert result.details["nist_aal"] == "1"


def test_the_challenge_is_bound_to_its_origin() -> None:
    second = "https://id.localhost"
    setup = make_setup(origins=(ORIGIN, second))
    phone = setup.device()
    setup.register(SUBJECT, phone)
    challenge = setup.passkeys.begin(SUBJECT, origin=second)
    assert challenge.data["origin"] == second
    response = phone.get(challenge.data["options"])  # signed on ORIGIN
    assert refused(setup, challenge, response).reason is Reason.ORIGIN_MISMATCH
    challenge = setup.passkeys.begin(SUBJECT, origin=second)
    result = setup.passkeys.verify(challenge, phone.get(challenge.data["options"], origin=second))
    assert result.subject == SUBJECT


@pytest.mark.parametrize(
    "response",
    [
        "",
        "{",
        "[]",
        b"\xff\xfe",
        "null",
        {"id": "x", "type": "public-key"},
        {"id": "a+b/", "rawId": "a+b/", "type": "public-key", "response": {}},
        {"rawId": "AAAA", "type": "password", "response": {}},
        {"rawId": "AAAA", "type": "public-key", "response": []},
        {"rawId": "AAAA", "type": "public-key", "response": {"clientDataJSON": 3}},
        "x" * 70_000,
        42,
    ],
)
def test_malformed_responses_are_malformed_input(
    setup: Setup, phone: VirtualAuthenticator, response: Any
) -> None:
    challenge = setup.passkeys.begin(SUBJECT)
    with pytest.raises(MalformedInput) as info:
        setup.passkeys.verify(challenge, response)
    assert info.value.reason is Reason.MALFORMED_RESPONSE
    assert setup.last_event().reason == Reason.MALFORMED_RESPONSE.value
    # The challenge served its one attempt.
    with pytest.raises(ChallengeUsed):
        setup.passkeys.verify(challenge, phone.get(challenge.data["options"]))


@pytest.mark.parametrize(
    "bend",
    [
        lambda r: r["response"].update(clientDataJSON=b64(b"not json")),
        lambda r: r["response"].update(clientDataJSON=b64(b'{"type":"webauthn.get"}')),
        lambda r: r["response"].update(authenticatorData=b64(b"\x00" * 36)),
        lambda r: r["response"].update(authenticatorData=r["response"]["authenticatorData"] + "AA"),
        lambda r: r["response"].update(signature=""),
        lambda r: r["response"].update(userHandle=7),
        lambda r: r.update(id=b64(b"other")),
    ],
)
def test_broken_fields_are_malformed_input(
    setup: Setup, phone: VirtualAuthenticator, bend: Any
) -> None:
    challenge = setup.passkeys.begin(SUBJECT)
    response = phone.get(challenge.data["options"])
    bend(response)
    with pytest.raises(MalformedInput):
        setup.passkeys.verify(challenge, response)


def test_failures_are_throttled_then_locked_out() -> None:
    policy = ThrottlePolicy(free_failures=1, base_delay=10.0, lockout_after=3)
    setup = make_setup(throttle_policy=policy)
    phone = setup.device()
    setup.register(SUBJECT, phone)
    challenge = setup.passkeys.begin(SUBJECT)
    refused(setup, challenge, phone.get(challenge.data["options"], uv=False))
    challenge = setup.passkeys.begin(SUBJECT)
    refused(setup, challenge, phone.get(challenge.data["options"], uv=False))
    challenge = setup.passkeys.begin(SUBJECT)
    with pytest.raises(VerificationThrottled) as info:
        setup.passkeys.verify(challenge, phone.get(challenge.data["options"]))
    assert info.value.retry_after == pytest.approx(10.0)
    setup.clock.advance(11)
    challenge = setup.passkeys.begin(SUBJECT)
    refused(setup, challenge, phone.get(challenge.data["options"], uv=False))
    setup.clock.advance(10)
    # Locked out: even a good assertion is refused, with or without a username.
    for subject in (SUBJECT, None):
        challenge = setup.passkeys.begin(subject)
        with pytest.raises(LockedOut):
            setup.passkeys.verify(challenge, phone.get(challenge.data["options"]))
    setup.clock.advance(policy.lockout_duration)
    assert setup.login(SUBJECT, phone).subject == SUBJECT


def test_audit_events_carry_no_key_material(setup: Setup, phone: VirtualAuthenticator) -> None:
    setup.login(SUBJECT, phone)
    setup.login(None, phone)
    credential_id = next(iter(phone.credentials))
    dump = json.dumps(setup.audit.records())
    assert b64(credential_id) not in dump
    assert credential_id.hex() not in dump
    stored = setup.passkeys.credentials(SUBJECT)[0]
    assert stored.tag in dump
    assert {e.action.value for e in setup.audit.events} == {"begin", "enroll", "verify"}


def test_the_policy_knows_the_capability(setup: Setup, phone: VirtualAuthenticator) -> None:
    assert REQUIREMENTS["passkey"] is Capability.PASSKEY
    totp = TotpAuthenticator(store=setup.store, audit=setup.audit, clock=setup.clock)
    policy = Policy(
        authenticators=[
            (setup.passkeys, AssuranceLevel.SUBSTANTIAL),
            (totp, AssuranceLevel.SUBSTANTIAL),
        ],
        store=setup.store,
        clock=setup.clock,
    )
    assert [o.method for o in policy.offer([Capability.PASSKEY, Capability.APP])] == [
        "passkey",
        "totp",
    ]
    assert [o.method for o in policy.offer([Capability.APP])] == ["totp"]
    challenge = policy.begin(SUBJECT, "passkey")
    result = policy.verify(challenge.id, phone.get(challenge.data["options"]))
    assert result.method == "passkey"


def test_the_policy_words_a_passkey_refusal_in_each_language(
    setup: Setup, phone: VirtualAuthenticator
) -> None:
    policy = Policy(
        authenticators=[(setup.passkeys, AssuranceLevel.SUBSTANTIAL)],
        store=setup.store,
        clock=setup.clock,
    )
    challenge = policy.begin(SUBJECT, "passkey")
    with pytest.raises(AuthenticationFailed) as info:
        policy.verify(challenge.id, phone.get(challenge.data["options"], sign_count=0, uv=False))
    assert info.value.reason is Reason.USER_NOT_VERIFIED
    texts = {lang: policy.explain(info.value, language=lang) for lang in ("ar", "fr", "en")}
    assert texts["en"].startswith("Your device did not check your fingerprint")
    assert "empreinte" in texts["fr"]
    assert "بصمتك" in texts["ar"]

"""Passkey registration: attestation none and packed, trust roots, and refusals."""

from __future__ import annotations

import base64
import json
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization

from macnss_auth.audit.events import AuditAction, Outcome
from macnss_auth.authenticator import AssuranceLevel
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeNotFound,
    ChallengeUsed,
    ConfigurationError,
    MalformedInput,
    Reason,
)
from macnss_auth.passkey import AttestationPolicy, PasskeyAuthenticator
from macnss_auth.passkey.virtual import attestation_ca
from macnss_auth.store import MemoryStore
from macnss_auth.store.base import Enrollment
from tests.passkey.helpers import ORIGIN, Setup, make_setup

SUBJECT = "citizen-0002"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem(certificate: Any) -> bytes:
    return bytes(certificate.public_bytes(serialization.Encoding.PEM))


def finish_refused(setup: Setup, **create: Any) -> AuthenticationFailed:
    device = setup.device()
    challenge = setup.passkeys.begin_registration(SUBJECT)
    with pytest.raises(AuthenticationFailed) as info:
        setup.passkeys.finish_registration(
            challenge, device.create(challenge.data["options"], **create)
        )
    event = setup.last_event()
    assert (event.action, event.outcome) == (AuditAction.ENROLL, Outcome.FAILURE)
    assert event.reason == info.value.reason.value
    assert setup.passkeys.credentials(SUBJECT) == []
    return info.value


def test_creation_options_ask_for_a_discoverable_verified_passkey() -> None:
    setup = make_setup()
    challenge = setup.passkeys.begin_registration(SUBJECT, display_name="Fatima Zahra")
    assert challenge.method == "passkey-registration"
    options = json.loads(challenge.data["options"])
    assert options["rp"] == {"id": "localhost", "name": "CNSS"}
    assert options["user"]["name"] == SUBJECT
    assert options["user"]["displayName"] == "Fatima Zahra"
    # The user handle is random, never the subject.
    assert SUBJECT.encode() not in base64.urlsafe_b64decode(options["user"]["id"] + "==")
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8, -257]


def test_none_attestation_registers() -> None:
    setup = make_setup()
    device = setup.device()
    credential = setup.register(SUBJECT, device)
    assert credential.attestation == "none"
    assert credential.device_bound
    assert credential.user_verified
    assert credential.transports == ("internal",)
    assert setup.passkeys.credentials(SUBJECT) == [credential]
    event = setup.last_event()
    assert (event.action, event.outcome) == (AuditAction.ENROLL, Outcome.SUCCESS)
    assert event.details["attestation"] == "none"


def test_the_user_handle_is_kept_across_devices() -> None:
    setup = make_setup()
    first = setup.device()
    setup.register(SUBJECT, first)
    second = setup.device()
    setup.register(SUBJECT, second)
    (one,) = first.credentials.values()
    (two,) = second.credentials.values()
    assert one.user_handle == two.user_handle


def test_packed_self_attestation_registers_as_self() -> None:
    setup = make_setup()
    credential = setup.register(SUBJECT, setup.device(), attestation="packed-self")
    assert credential.attestation == "self"


def test_packed_attestation_without_roots_is_unverified() -> None:
    _, _, signer = attestation_ca()
    setup = make_setup()
    credential = setup.register(SUBJECT, setup.device(), attestation="packed", signer=signer)
    assert credential.attestation == "unverified"


def test_trusted_attestation_gives_high_assurance_to_device_bound_keys() -> None:
    _, root, signer = attestation_ca()
    policy = AttestationPolicy(require_trusted=True, roots={"packed": [pem(root)]})
    setup = make_setup(attestation=policy)
    options = json.loads(setup.passkeys.begin_registration(SUBJECT).data["options"])
    assert options["attestation"] == "direct"
    aaguid = bytes(range(16))
    device = setup.device(aaguid=aaguid)
    credential = setup.register(SUBJECT, device, attestation="packed", signer=signer)
    assert credential.attestation == "trusted"
    assert credential.aaguid == "00010203-0405-0607-0809-0a0b0c0d0e0f"
    result = setup.login(SUBJECT, device)
    assert result.assurance is AssuranceLevel.HIGH
    assert result.details["nist_aal"] == "3"


def test_a_synced_passkey_stays_substantial_even_when_attested() -> None:
    _, root, signer = attestation_ca()
    setup = make_setup(attestation=AttestationPolicy(roots={"packed": [pem(root)]}))
    device = setup.device(backup_eligible=True, backed_up=True)
    setup.register(SUBJECT, device, attestation="packed", signer=signer)
    assert setup.login(SUBJECT, device).assurance is AssuranceLevel.SUBSTANTIAL


@pytest.mark.parametrize("attestation", ["none", "packed-self", "packed-other-root"])
def test_required_attestation_refuses_the_rest(attestation: str) -> None:
    _, root, _ = attestation_ca()
    _, _, stranger = attestation_ca(name="Someone Else's Root")
    setup = make_setup(
        attestation=AttestationPolicy(require_trusted=True, roots={"packed": [pem(root)]})
    )
    create: dict[str, Any] = (
        {"attestation": "packed", "signer": stranger}
        if attestation == "packed-other-root"
        else {"attestation": attestation}
    )
    assert finish_refused(setup, **create).reason is Reason.ATTESTATION_UNTRUSTED


def test_a_forged_attestation_signature_is_refused() -> None:
    _, root, signer = attestation_ca()
    setup = make_setup(attestation=AttestationPolicy(roots={"packed": [pem(root)]}))
    device = setup.device()
    challenge = setup.passkeys.begin_registration(SUBJECT)
    response = device.create(challenge.data["options"], attestation="packed", signer=signer)
    raw = base64.urlsafe_b64decode(response["response"]["attestationObject"] + "==")
    decoded = cbor2.loads(raw)
    decoded["attStmt"]["sig"] = decoded["attStmt"]["sig"][:-1] + bytes(
        [decoded["attStmt"]["sig"][-1] ^ 1]
    )
    response["response"]["attestationObject"] = b64(cbor2.dumps(decoded))
    with pytest.raises(AuthenticationFailed) as info:
        setup.passkeys.finish_registration(challenge, response)
    assert info.value.reason is Reason.INVALID_SIGNATURE


def test_attestation_policy_is_checked() -> None:
    with pytest.raises(ConfigurationError):
        AttestationPolicy(require_trusted=True)
    with pytest.raises(ConfigurationError):
        AttestationPolicy(roots={"made-up": [b"-----BEGIN CERTIFICATE-----"]})
    with pytest.raises(ConfigurationError):
        AttestationPolicy(roots={"packed": [b"DER bytes"]})


@pytest.mark.parametrize(
    ("bend", "reason"),
    [
        ({"origin": "https://evil.example"}, Reason.ORIGIN_MISMATCH),
        ({"cross_origin": True}, Reason.ORIGIN_MISMATCH),
        ({"rp_id": "example.org"}, Reason.RP_ID_MISMATCH),
        ({"challenge": b"\x01" * 32}, Reason.CHALLENGE_MISMATCH),
        ({"kind": "webauthn.get"}, Reason.CHALLENGE_MISMATCH),
        ({"up": False}, Reason.USER_NOT_PRESENT),
        ({"uv": False}, Reason.USER_NOT_VERIFIED),
        ({"bs": True, "be": False}, Reason.BACKUP_STATE_INVALID),
    ],
)
def test_bent_registrations_are_refused(bend: dict[str, Any], reason: Reason) -> None:
    assert finish_refused(make_setup(), **bend).reason is reason


def test_a_registration_challenge_is_single_use() -> None:
    setup = make_setup()
    device = setup.device()
    challenge = setup.passkeys.begin_registration(SUBJECT)
    response = device.create(challenge.data["options"])
    setup.passkeys.finish_registration(challenge, response)
    with pytest.raises(ChallengeUsed):
        setup.passkeys.finish_registration(challenge, response)


def test_a_new_registration_ceremony_retires_the_previous_one() -> None:
    setup = make_setup()
    first = setup.passkeys.begin_registration(SUBJECT)
    setup.passkeys.begin_registration(SUBJECT)
    with pytest.raises(ChallengeUsed):
        setup.passkeys.finish_registration(first, setup.device().create(first.data["options"]))


def test_an_existing_credential_id_is_refused() -> None:
    setup = make_setup()
    device = setup.device()
    credential = setup.register(SUBJECT, device)
    # A device that reuses the id (a broken or malicious authenticator).
    challenge = setup.passkeys.begin_registration("mallory")
    reused = setup.device().create(
        challenge.data["options"], credential_id=credential.credential_id
    )
    with pytest.raises(AuthenticationFailed) as info:
        setup.passkeys.finish_registration(challenge, reused)
    assert info.value.reason is Reason.CREDENTIAL_EXISTS
    assert [c.subject for c in setup.passkeys.credentials(SUBJECT)] == [SUBJECT]
    assert setup.login(SUBJECT, device).subject == SUBJECT


def test_the_credential_limit() -> None:
    setup = make_setup(max_credentials=2)
    setup.register(SUBJECT, setup.device())
    pending = setup.passkeys.begin_registration(SUBJECT)
    setup.register(SUBJECT, setup.device())
    with pytest.raises(AuthenticationFailed) as info:
        setup.passkeys.begin_registration(SUBJECT)
    assert info.value.reason is Reason.CREDENTIAL_LIMIT
    # The ceremony begun before was retired by the next one of the same subject.
    with pytest.raises(ChallengeUsed):
        setup.passkeys.finish_registration(pending, setup.device().create(pending.data["options"]))


@pytest.mark.parametrize(
    "bend",
    [
        lambda r: r["response"].update(attestationObject=b64(b"\xff\x00")),
        lambda r: r["response"].update(attestationObject=b64(cbor2.dumps([1, 2]))),
        lambda r: r["response"].update(attestationObject=b64(cbor2.dumps({"fmt": "none"}))),
        lambda r: r["response"].update(transports="internal"),
        lambda r: r["response"].pop("clientDataJSON"),
        lambda r: r.update(type="password"),
    ],
)
def test_malformed_registrations(bend: Any) -> None:
    setup = make_setup()
    challenge = setup.passkeys.begin_registration(SUBJECT)
    response = setup.device().create(challenge.data["options"])
    bend(response)
    with pytest.raises(MalformedInput):
        setup.passkeys.finish_registration(challenge, response)
    assert setup.last_event().reason == Reason.MALFORMED_RESPONSE.value


@pytest.mark.parametrize(
    ("rp_id", "origins"),
    [
        ("", [ORIGIN]),
        ("127.0.0.1", ["http://127.0.0.1:8000"]),
        ("Example.org", ["https://example.org"]),
        ("example.org", ["http://example.org"]),
        ("example.org", ["https://evil.org"]),
        ("example.org", ["https://example.org/login"]),
        ("example.org", []),
        ("example.org", "https://example.org"),
    ],
)
def test_configuration_is_checked(rp_id: str, origins: Any) -> None:
    with pytest.raises(ConfigurationError):
        PasskeyAuthenticator(
            store=MemoryStore(), audit=make_setup().audit, rp_id=rp_id, origins=origins
        )


def test_a_ceremony_finishes_only_for_its_subject() -> None:
    setup = make_setup()
    challenge = setup.passkeys.begin_registration(SUBJECT)
    assert setup.passkeys.pending(challenge.id) == challenge
    response = setup.device().create(challenge.data["options"])
    with pytest.raises(ChallengeNotFound):
        setup.passkeys.finish_registration(challenge, response, subject="mallory")
    assert setup.passkeys.credentials("mallory") == []
    assert setup.passkeys.pending("nope") is None


def test_an_unknown_root_is_unverified_when_attestation_is_not_required() -> None:
    _, root, _ = attestation_ca()
    _, _, stranger = attestation_ca(name="Someone Else's Root")
    setup = make_setup(attestation=AttestationPolicy(roots={"packed": [pem(root)]}))
    device = setup.device()
    credential = setup.register(SUBJECT, device, attestation="packed", signer=stranger)
    assert credential.attestation == "unverified"
    assert setup.login(SUBJECT, device).assurance is AssuranceLevel.SUBSTANTIAL


class _RacingStore(MemoryStore):
    """A store where another ceremony rewrites the subject's list with what it read earlier."""

    def __init__(self) -> None:
        super().__init__()
        self.stale: Enrollment | None = None
        self.raced = False

    def put_enrollment(self, enrollment: Enrollment) -> None:
        super().put_enrollment(enrollment)
        if enrollment.method == "passkey" and self.stale is not None and not self.raced:
            self.raced = True
            super().put_enrollment(self.stale)


def test_a_racing_list_write_does_not_hide_a_new_passkey() -> None:
    store = _RacingStore()
    setup = make_setup(store=store)
    setup.register(SUBJECT, setup.device())
    store.stale = store.get_enrollment(SUBJECT, "passkey")  # what the other ceremony read
    second = setup.register(SUBJECT, setup.device())
    assert store.raced
    listed = [c.credential_id for c in setup.passkeys.credentials(SUBJECT)]
    assert second.credential_id in listed
    assert len(listed) == 2

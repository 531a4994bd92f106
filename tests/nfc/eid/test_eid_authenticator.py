"""EidAuthenticator: kiosk reads and phone uploads against the virtual card and a test PKI."""

from __future__ import annotations

import functools

import pytest

from macnss_auth import (
    AssuranceLevel,
    AuthenticationFailed,
    ChallengeUsed,
    DocumentNotGenuine,
    MalformedInput,
    Reason,
)
from macnss_auth.audit import MemoryAuditLog
from macnss_auth.nfc.card import IssuedCard, issue_card
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.card.issuer import Person, clone_card, forge_card
from macnss_auth.nfc.card.model import CardData
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.reader import DocumentRead, DocumentReader
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.nfc.verify import ChipAuthenticity, VerificationPolicy, encode_bundle
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.testing.contract import AuthenticatorContract

NOW = 1_800_000_000.0
SUBJECT = "citizen-42"
BINDING_KEY = bytes(range(32))


@functools.cache
def issued(profile: str, document_number: str = "AB1234567") -> IssuedCard:
    return issue_card(
        profile,
        clock=FixedClock.at(NOW),
        can="123456",
        person=Person(document_number=document_number),
    )


def mrz_of(data: CardData) -> MrzKey:
    info = data.secrets.mrz_information
    return MrzKey(info[0:9], info[10:16], info[17:23])


def read(data: CardData, nonce: bytes, *, profile: str = "cnie") -> DocumentRead:
    password = mrz_of(data) if profile == "passport-bac" else CAN("123456")
    transport = MemoryTransport(VirtualCard(data, random=FixedRandom(3)))
    return DocumentReader(transport, random=FixedRandom(4)).read(
        password, active_auth_challenge=nonce
    )


def make(
    clock: FixedClock, card: IssuedCard, policy: VerificationPolicy | None = None
) -> EidAuthenticator:
    trust = TrustStore()
    trust.add_csca(card.csca)
    eid = EidAuthenticator(
        store=MemoryStore(keyring=Keyring.generate(random=FixedRandom(9))),
        audit=MemoryAuditLog(),
        trust_store=trust,
        binding_key=BINDING_KEY,
        clock=clock,
        random=FixedRandom(5),
        policy=policy,
    )
    eid.enroll(SUBJECT, document_number="AB1234567")
    return eid


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock.at(NOW)


class TestEidContract(AuthenticatorContract):
    @pytest.fixture
    def authenticator(self, clock: FixedClock) -> EidAuthenticator:
        return make(clock, issued("cnie"))

    @pytest.fixture
    def subject(self) -> str:
        return SUBJECT

    def good_response(self, authenticator: EidAuthenticator, challenge: object) -> DocumentRead:
        nonce = bytes.fromhex(challenge.data["nonce"])  # type: ignore[attr-defined]
        return read(issued("cnie").data, nonce)

    def bad_response(self, authenticator: EidAuthenticator, challenge: object) -> DocumentRead:
        return read(issued("cnie").data, b"\x00" * 8)

    def secrets(self, authenticator: EidAuthenticator, subject: str) -> list[str]:
        # The MRZ information is the BAC key; its parts are personal data too.
        info = issued("cnie").data.secrets.mrz_information
        return [info, "AB1234567", "900115"]


@pytest.mark.parametrize("profile", ["cnie", "passport-bac", "pace-cam", "legacy-dh"])
def test_kiosk_read_gives_high_assurance_with_claims(clock: FixedClock, profile: str) -> None:
    card = issued(profile)
    eid = make(clock, card)
    challenge = eid.begin(SUBJECT)
    evidence = read(card.data, bytes.fromhex(challenge.data["nonce"]), profile=profile)
    result = eid.verify(challenge, evidence)
    assert result.assurance is AssuranceLevel.HIGH
    assert result.claims["document_number"] == "AB1234567"
    assert result.claims["surname"] == "BENANI"
    assert result.claims["given_names"] == "FATIMA ZAHRA"
    assert len(result.claims["face_sha256"]) == 64
    assert result.details["proof"]


def test_phone_upload_with_active_authentication(clock: FixedClock) -> None:
    card = issued("cnie")
    eid = make(clock, card)
    challenge = eid.begin(SUBJECT)
    phone_read = read(card.data, bytes.fromhex(challenge.data["nonce"]))
    assert phone_read.active_auth_signature is not None
    upload = encode_bundle(
        phone_read.data_groups,
        phone_read.files["SOD"],
        aa_signature=phone_read.active_auth_signature,
    )
    result = eid.verify(challenge.id, upload)
    assert result.assurance is AssuranceLevel.HIGH
    assert result.details["proof"] == "active_authentication"


def test_an_upload_replayed_for_another_challenge_is_rejected(clock: FixedClock) -> None:
    card = issued("cnie")
    eid = make(clock, card)
    first = eid.begin(SUBJECT)
    phone_read = read(card.data, bytes.fromhex(first.data["nonce"]))
    upload = encode_bundle(
        phone_read.data_groups,
        phone_read.files["SOD"],
        aa_signature=phone_read.active_auth_signature,
    )
    eid.verify(first, upload)
    second = eid.begin(SUBJECT)
    with pytest.raises(DocumentNotGenuine):
        eid.verify(second, upload)
    with pytest.raises(ChallengeUsed):
        eid.verify(first, upload)


def test_a_clone_fails_with_the_reason(clock: FixedClock) -> None:
    card = issued("cnie")
    eid = make(clock, card)
    challenge = eid.begin(SUBJECT)
    nonce = bytes.fromhex(challenge.data["nonce"])
    evidence = read(clone_card(card.data), nonce)
    with pytest.raises(DocumentNotGenuine) as info:
        eid.verify(challenge, evidence)
    assert info.value.reason is Reason.DOCUMENT_NOT_GENUINE
    assert "Chip Authentication failed" in str(info.value)
    checks = {c.name: c.status.value for c in info.value.verification.checks}  # type: ignore[attr-defined]
    assert checks["chip_authentication"] == "failed"
    assert checks["active_authentication"] == "not-performed"  # the clone refused to sign
    assert checks["dg1_hash"] == "passed"  # the copied data itself is the issuer's


def test_a_forged_dg1_is_rejected(clock: FixedClock) -> None:
    card = issued("cnie")
    eid = make(clock, card)
    challenge = eid.begin(SUBJECT)
    evidence = read(forge_card(card.data), bytes.fromhex(challenge.data["nonce"]))
    with pytest.raises(DocumentNotGenuine) as info:
        eid.verify(challenge, evidence)
    checks = {c.name: c.status.value for c in info.value.verification.checks}  # type: ignore[attr-defined]
    assert checks["dg1_hash"] == "failed"


def test_someone_elses_genuine_card_does_not_log_you_in(clock: FixedClock) -> None:
    other = issued("cnie", document_number="ZZ9876543")
    eid = make(clock, other)  # trusts the other card's CSCA; enrolled number is AB1234567
    challenge = eid.begin(SUBJECT)
    with pytest.raises(AuthenticationFailed) as info:
        eid.verify(challenge, read(other.data, bytes.fromhex(challenge.data["nonce"])))
    assert info.value.reason is Reason.DOCUMENT_MISMATCH


def test_unknown_subject_fails_like_a_mismatch(clock: FixedClock) -> None:
    card = issued("cnie")
    eid = make(clock, card)
    challenge = eid.begin("nobody")
    with pytest.raises(AuthenticationFailed) as info:
        eid.verify(challenge, read(card.data, bytes.fromhex(challenge.data["nonce"])))
    assert info.value.reason is Reason.DOCUMENT_MISMATCH


def test_personal_number_binding_survives_renewal(clock: FixedClock) -> None:
    card = issued("cnie")
    eid = make(clock, card)
    eid.enroll(SUBJECT, personal_number="BE123456")
    challenge = eid.begin(SUBJECT)
    result = eid.verify(challenge, read(card.data, bytes.fromhex(challenge.data["nonce"])))
    assert result.claims["personal_number"] == "BE123456"


def test_passive_only_policy_gives_substantial(clock: FixedClock) -> None:
    card = issued("pace-im")
    strict = make(clock, card)
    challenge = strict.begin(SUBJECT)
    evidence = read(card.data, bytes.fromhex(challenge.data["nonce"]))
    with pytest.raises(DocumentNotGenuine):
        strict.verify(challenge, evidence)
    lax = make(clock, card, VerificationPolicy(chip_authenticity=ChipAuthenticity.NONE))
    challenge = lax.begin(SUBJECT)
    evidence = read(card.data, bytes.fromhex(challenge.data["nonce"]))
    assert lax.verify(challenge, evidence).assurance is AssuranceLevel.SUBSTANTIAL


def test_a_broken_upload_is_malformed_input(clock: FixedClock) -> None:
    eid = make(clock, issued("cnie"))
    challenge = eid.begin(SUBJECT)
    with pytest.raises(MalformedInput):
        eid.verify(challenge, '{"format": "nope"}')


def test_audit_never_holds_the_document_number(clock: FixedClock) -> None:
    card = issued("cnie")
    eid = make(clock, card)
    challenge = eid.begin(SUBJECT)
    eid.verify(challenge, read(card.data, bytes.fromhex(challenge.data["nonce"])))
    audit = eid._audit
    assert isinstance(audit, MemoryAuditLog)
    assert "AB1234567" not in repr(audit.events)


@pytest.mark.parametrize("profile", ["cnie", "pace-cam"])
def test_a_kiosk_read_for_another_challenge_is_refused(clock: FixedClock, profile: str) -> None:
    """Also without Active Authentication (pace-cam has no DG15): the read is bound to the nonce."""
    card = issued(profile)
    eid = make(clock, card)
    first = eid.begin(SUBJECT)
    old_read = read(card.data, bytes.fromhex(first.data["nonce"]))
    assert eid.verify(first, old_read).assurance is AssuranceLevel.HIGH
    second = eid.begin(SUBJECT)
    with pytest.raises(DocumentNotGenuine):
        eid.verify(second, old_read)


def test_a_kiosk_read_without_a_challenge_is_refused(clock: FixedClock) -> None:
    card = issued("cnie")
    eid = make(clock, card)
    challenge = eid.begin(SUBJECT)
    transport = MemoryTransport(VirtualCard(card.data, random=FixedRandom(3)))
    unbound = DocumentReader(transport, random=FixedRandom(4)).read(CAN("123456"))
    with pytest.raises(DocumentNotGenuine):
        eid.verify(challenge, unbound)


def test_a_malformed_upload_is_audited(clock: FixedClock) -> None:
    eid = make(clock, issued("cnie"))
    challenge = eid.begin(SUBJECT)
    with pytest.raises(MalformedInput):
        eid.verify(challenge, "not json")
    audit = eid._audit
    assert isinstance(audit, MemoryAuditLog)
    last = audit.events[-1]
    assert (last.outcome.value, last.reason) == ("failure", "malformed_response")

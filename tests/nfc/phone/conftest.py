"""Shared fixtures: issued cards, an authenticator, and a loop between a session and a phone."""

from __future__ import annotations

import functools
from collections.abc import Callable

import attrs
import pytest

from macnss_auth import ChallengeUsed
from macnss_auth.audit import MemoryAuditLog
from macnss_auth.authenticator import Challenge
from macnss_auth.nfc.card import IssuedCard, issue_card
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.card.issuer import Person
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.lds import encode_dg2
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.phone import (
    SERVER_MESSAGES,
    CardReady,
    Commands,
    PhoneFailure,
    PhoneLimits,
    PhoneMessage,
    PhoneMode,
    PhoneSession,
    PhoneSessionFailed,
    ReferencePhone,
    SessionState,
    Upload,
    decode_message,
    encode_message,
)
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.nfc.verify import VerificationPolicy
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.testing.pki import TestPki, sign_sod

NOW = 1_800_000_000.0
SUBJECT = "citizen-42"
BINDING_KEY = bytes(range(32))
CAN_DIGITS = "123456"
PROFILES = ("passport-bac", "cnie", "pace-im", "pace-cam", "legacy-dh")
#: Profiles whose chip can prove itself (AA, CA or both).
PROVING = ("passport-bac", "cnie", "pace-cam", "legacy-dh")


@functools.cache
def issued(profile: str, document_number: str = "AB1234567") -> IssuedCard:
    return issue_card(
        profile,
        clock=FixedClock.at(NOW),
        can=CAN_DIGITS,
        person=Person(document_number=document_number),
    )


def password_for(card: IssuedCard, profile: str) -> CAN | MrzKey:
    if profile == "passport-bac":
        info = card.data.secrets.mrz_information
        return MrzKey(info[0:9], info[10:16], info[17:23])
    return CAN(CAN_DIGITS)


def make_eid(
    clock: FixedClock,
    *cards: IssuedCard,
    policy: VerificationPolicy | None = None,
    seed: int = 5,
    audit: MemoryAuditLog | None = None,
) -> EidAuthenticator:
    trust = TrustStore()
    for card in cards:
        trust.add_csca(card.csca)
    eid = EidAuthenticator(
        store=MemoryStore(keyring=Keyring.generate(random=FixedRandom(9))),
        audit=audit if audit is not None else MemoryAuditLog(),
        trust_store=trust,
        binding_key=BINDING_KEY,
        clock=clock,
        random=FixedRandom(seed),
        policy=policy,
    )
    eid.enroll(SUBJECT, document_number="AB1234567")
    return eid


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock.at(NOW)


def phone_for(
    card: IssuedCard,
    profile: str,
    challenge: Challenge,
    mode: PhoneMode,
    *,
    seed: int = 3,
    transport: MemoryTransport | None = None,
) -> tuple[ReferencePhone, MemoryTransport]:
    link = transport or MemoryTransport(VirtualCard(card.data, random=FixedRandom(seed)))
    phone = ReferencePhone(
        link,
        challenge_id=challenge.id,
        mode=mode,
        password=password_for(card, profile),
        random=FixedRandom(seed + 100),
        tap=link.tap,
    )
    return phone, link


Tamper = Callable[[PhoneMessage], PhoneMessage | str]


def drive(
    session: PhoneSession,
    phone: ReferencePhone,
    *,
    first: list[PhoneMessage] | None = None,
    tamper: Tamper | None = None,
    limit: int = 5_000,
) -> int:
    """Run messages both ways until nothing is left to send; return the phone's messages."""
    pending = first if first is not None else phone.start()
    count = 0
    while pending and count < limit:
        message = pending.pop(0)
        sent = tamper(message) if tamper else message
        raw = sent if isinstance(sent, str) else encode_message(sent)
        count += 1
        for reply in session.receive(raw):
            pending.extend(phone.handle(decode_message(reply, accept=SERVER_MESSAGES)))
    return count


@functools.cache
def card_with_face(size: int) -> IssuedCard:
    """The cnie card with a ``size``-byte face image, its SOD signed again by its issuer."""
    clock = FixedClock.at(NOW)
    pki = TestPki.create(now=clock.now(), key_type="ec")
    card = issue_card(
        "cnie", clock=clock, can=CAN_DIGITS, pki=pki, person=Person(document_number="AB1234567")
    )
    face = bytes([0xFF, 0xD8, 0xFF, 0xE0]) + bytes(size - 6) + bytes([0xFF, 0xD9])
    files = card.data.files.files()
    groups = {int(p.rsplit("/DG", 1)[1]): f.data for p, f in files.items() if "/DG" in p}
    groups[2] = encode_dg2(face, width=480, height=640)
    store = card.data.files
    for path in files:
        if path.endswith("/DG2"):
            store = store.replace_data(path, groups[2])
        elif path.endswith("/EF.SOD"):
            store = store.replace_data(path, sign_sod(groups, pki.ds, signing_time=clock.now()))
    return attrs.evolve(card, data=attrs.evolve(card.data, files=store))


def assert_dead(
    eid: EidAuthenticator, challenge_id: str, session: PhoneSession, failure: PhoneFailure
) -> None:
    """The session failed for ``failure``, keeps nothing, and burns the challenge."""
    assert session.state is SessionState.FAILED
    assert session.failure is failure
    with pytest.raises(PhoneSessionFailed):
        session.receive(encode_message(CardReady()))
    with pytest.raises(PhoneSessionFailed) as raised:
        _ = session.evidence
    assert raised.value.failure is failure
    with pytest.raises(PhoneSessionFailed) as verified:
        eid.verify(challenge_id, session)
    assert verified.value.failure is failure
    assert verified.value.reason is failure.reason
    with pytest.raises(ChallengeUsed):
        eid.phone_session(challenge_id)


@attrs.frozen
class Scene:
    """One attack's stage: a card, the service trusting it, a challenge and its phone session."""

    card: IssuedCard
    profile: str
    eid: EidAuthenticator
    challenge: Challenge
    session: PhoneSession

    def phone(
        self, mode: PhoneMode = PhoneMode.SPLIT, *, transport: MemoryTransport | None = None
    ) -> ReferencePhone:
        """The reference phone for this scene's card (or another ``transport``)."""
        phone, _ = phone_for(self.card, self.profile, self.challenge, mode, transport=transport)
        return phone

    def first_batch(self, phone: ReferencePhone) -> tuple[Upload, Commands]:
        """Split mode up to the server's first ``commands`` batch (Chip Authentication)."""
        (welcome,) = self.session.receive(encode_message(phone.start()[0]))
        (upload,) = phone.handle(decode_message(welcome, accept=SERVER_MESSAGES))
        assert isinstance(upload, Upload)
        (commands,) = self.session.receive(encode_message(upload))
        batch = decode_message(commands, accept=SERVER_MESSAGES)
        assert isinstance(batch, Commands)
        return upload, batch

    def assert_dead(self, failure: PhoneFailure) -> None:
        """The session failed for ``failure``, keeps nothing, and burns the challenge."""
        assert_dead(self.eid, self.challenge.id, self.session, failure)


SceneFactory = Callable[..., Scene]


@pytest.fixture
def scene(clock: FixedClock) -> SceneFactory:
    """``scene(profile, card=..., trusted=..., limits=...)``: the setup every attack repeats.

    ``card`` is the card on the phone (default: the profile's issued card);
    ``trusted`` the cards whose CSCAs the service trusts (default: that card).
    """

    def make(
        profile: str = "cnie",
        *,
        card: IssuedCard | None = None,
        trusted: tuple[IssuedCard, ...] | None = None,
        limits: PhoneLimits | None = None,
        audit: MemoryAuditLog | None = None,
    ) -> Scene:
        card = card if card is not None else issued(profile)
        eid = make_eid(clock, *(trusted if trusted is not None else (card,)), audit=audit)
        challenge = eid.begin(SUBJECT)
        session = eid.phone_session(challenge, limits=limits)
        return Scene(card, profile, eid, challenge, session)

    return make

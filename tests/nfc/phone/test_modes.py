"""Split and relay mode against every virtual card profile, in memory."""

from __future__ import annotations

import pytest

from macnss_auth import AssuranceLevel, DocumentNotGenuine
from macnss_auth.audit import MemoryAuditLog
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.card.issuer import Person, issue_card
from macnss_auth.nfc.mrz import CAN
from macnss_auth.nfc.phone import PhoneMode, ReferencePhone, SessionState
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.nfc.verify import ChipAuthenticity, VerificationPolicy
from macnss_auth.testing import FixedClock, FixedRandom

from .conftest import (
    CAN_DIGITS,
    NOW,
    PROVING,
    SUBJECT,
    SceneFactory,
    card_with_face,
    drive,
    issued,
    make_eid,
    phone_for,
)

EXPECTED_PROOF = {
    ("passport-bac", "split"): "active_authentication,chip_authentication_remote",
    ("passport-bac", "relay"): "active_authentication,chip_authentication_remote",
    ("cnie", "split"): "active_authentication,chip_authentication_remote",
    ("cnie", "relay"): "active_authentication,chip_authentication_remote",
    ("pace-cam", "split"): "chip_authentication_remote",
    ("pace-cam", "relay"): "chip_authentication_remote",
    ("legacy-dh", "split"): "active_authentication",
    ("legacy-dh", "relay"): "active_authentication",
}


@pytest.mark.parametrize("mode", [PhoneMode.SPLIT, PhoneMode.RELAY])
@pytest.mark.parametrize("profile", PROVING)
def test_every_proving_profile_reaches_high(
    clock: FixedClock, profile: str, mode: PhoneMode
) -> None:
    card = issued(profile)
    audit = MemoryAuditLog()
    eid = make_eid(clock, card, audit=audit)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    phone, _ = phone_for(card, profile, challenge, mode)
    drive(session, phone)
    assert session.state is SessionState.DONE
    result = eid.verify(challenge, session)
    assert result.assurance is AssuranceLevel.HIGH
    assert result.details["proof"] == EXPECTED_PROOF[profile, mode.value]
    last = audit.events[-1]
    assert last.details["mode"] == mode.value
    assert last.details["proof"] == result.details["proof"]


@pytest.mark.parametrize("mode", [PhoneMode.SPLIT, PhoneMode.RELAY])
def test_pace_im_card_proves_nothing_and_is_refused(scene: SceneFactory, mode: PhoneMode) -> None:
    # pace-im has neither AA nor CA: no mode can make it clone-resistant.
    s = scene("pace-im")
    phone = s.phone(mode)
    drive(s.session, phone)
    with pytest.raises(DocumentNotGenuine):
        s.eid.verify(s.challenge, s.session)


@pytest.mark.parametrize("mode", [PhoneMode.SPLIT, PhoneMode.RELAY])
def test_pace_im_under_passive_policy_is_substantial(clock: FixedClock, mode: PhoneMode) -> None:
    card = issued("pace-im")
    eid = make_eid(clock, card, policy=VerificationPolicy(chip_authenticity=ChipAuthenticity.NONE))
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    phone, _ = phone_for(card, "pace-im", challenge, mode)
    drive(session, phone)
    assert eid.verify(challenge, session).assurance is AssuranceLevel.SUBSTANTIAL


@pytest.mark.parametrize("extended", [False, True])
@pytest.mark.parametrize("mode", [PhoneMode.SPLIT, PhoneMode.RELAY])
def test_large_face_beyond_the_even_offsets(
    clock: FixedClock, mode: PhoneMode, extended: bool
) -> None:
    # A 40 KB DG2: offsets past 32767 need READ BINARY with odd INS (B1).
    card = card_with_face(40_000)
    eid = make_eid(clock, card)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    link = MemoryTransport(VirtualCard(card.data, random=FixedRandom(3)), record=True)
    phone = ReferencePhone(
        link,
        challenge_id=challenge.id,
        mode=mode,
        password=CAN("123456"),
        random=FixedRandom(4),
        tap=link.tap,
        extended_length=extended,
    )
    drive(session, phone)
    result = eid.verify(challenge, session)
    assert result.assurance is AssuranceLevel.HIGH
    assert any(command[1] == 0xB1 for command, _ in link.transcript)
    reads = sum(1 for command, _ in link.transcript if command[1] in (0xB0, 0xB1))
    # Short reads carry 223 bytes, extended ones up to 4 KB: 180+ reads against about 20.
    assert (reads < 40) if extended else (reads > 180)


@pytest.mark.parametrize("mode", [PhoneMode.SPLIT, PhoneMode.RELAY])
def test_a_chip_refusing_do84_opens_from_the_phone_too(clock: FixedClock, mode: PhoneMode) -> None:
    """A chip that answers 6A80 to DO'84' in MSE:Set AT (quirk ``pace-do84-refused``).

    The kiosk reader asked once more without DO'84' while the phone gave up: the
    phone and the reader now open chips through one ``nfc.access.open_chip``.
    """
    card = issue_card("pace-do84-refused", clock=FixedClock.at(NOW), can=CAN_DIGITS,
                      person=Person(document_number="AB1234567"))  # fmt: skip
    eid = make_eid(clock, card)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    phone, _ = phone_for(card, "pace-do84-refused", challenge, mode)
    drive(session, phone)
    assert session.state is SessionState.DONE
    assert eid.verify(challenge, session).assurance is AssuranceLevel.HIGH

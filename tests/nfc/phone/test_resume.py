"""Resumption: a card that slips, a lost connection, and the PACE-CAM fallback to relay mode."""

from __future__ import annotations

import threading
import time

import pytest

from macnss_auth import AssuranceLevel
from macnss_auth.nfc.card import issue_card
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.card.faults import FaultPlan
from macnss_auth.nfc.card.model import CardProfile, DocumentKind, PasswordKind
from macnss_auth.nfc.domain_params import DomainParameterId
from macnss_auth.nfc.phone import (
    SERVER_MESSAGES,
    Commands,
    PhoneFailure,
    PhoneMessage,
    PhoneMode,
    PhoneSession,
    PhoneSessionFailed,
    Responses,
    SessionState,
    decode_message,
    encode_message,
)
from macnss_auth.nfc.securityinfos import PaceOid
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.testing import FixedClock, FixedRandom

from .conftest import NOW, SUBJECT, SceneFactory, drive, issued, make_eid, phone_for


def relay_messages(profile: str, clock: FixedClock) -> int:
    card = issued(profile)
    eid = make_eid(clock, card)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    phone, _ = phone_for(card, profile, challenge, PhoneMode.RELAY)
    return drive(session, phone)


@pytest.mark.parametrize("profile", ["cnie", "passport-bac"])
def test_relay_resumes_after_the_card_slipped(clock: FixedClock, profile: str) -> None:
    baseline = relay_messages(profile, clock)
    card = issued(profile)
    eid = make_eid(clock, card)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    # The card leaves the field after every 14 commands (until the phone taps again).
    slipping = MemoryTransport(
        VirtualCard(card.data, random=FixedRandom(3)),
        faults=FaultPlan(remove_after=14),
        record=True,
    )
    phone, _ = phone_for(card, profile, challenge, PhoneMode.RELAY, transport=slipping)
    sent = drive(session, phone)
    assert session.state is SessionState.DONE
    result = eid.verify(challenge, session)
    assert result.assurance is AssuranceLevel.HIGH
    assert sent > baseline
    # Access (and CA) again, then only what was left: no file is started twice.
    first_reads = [c[2] for c, _ in slipping.transcript if c[1] == 0xB0 and c[2] & 0x80]
    assert len(first_reads) == len(set(first_reads))


def test_relay_resumes_after_a_lost_connection(clock: FixedClock, scene: SceneFactory) -> None:
    baseline = relay_messages("cnie", clock)
    s = scene()
    phone = s.phone(PhoneMode.RELAY)
    # Run 14 messages, then the connection drops with a command outstanding.
    sent = drive(s.session, phone, limit=14)
    assert s.session.state is SessionState.RELAY_AWAIT_RESPONSE
    sent += drive(s.session, phone, first=phone.resume())
    assert s.session.finished
    assert s.eid.verify(s.challenge, s.session).assurance is AssuranceLevel.HIGH
    assert baseline < sent < baseline + 30


def test_split_resumes_after_a_lost_connection_with_a_fresh_key(scene: SceneFactory) -> None:
    s = scene()
    phone = s.phone(PhoneMode.SPLIT)
    first_batch: list[Commands] = []
    pending = phone.start()
    while pending:
        message = pending.pop(0)
        for reply in s.session.receive(encode_message(message)):
            parsed = decode_message(reply, accept=SERVER_MESSAGES)
            if isinstance(parsed, Commands):
                first_batch.append(parsed)  # ... and the connection drops here
            else:
                pending.extend(phone.handle(parsed))
    assert s.session.state is SessionState.AWAIT_CA
    answers: list[PhoneMessage] = []

    def keep(message: PhoneMessage) -> PhoneMessage:
        answers.append(message)
        return message

    drive(s.session, phone, first=phone.resume(), tamper=keep)
    assert s.eid.verify(s.challenge, s.session).assurance is AssuranceLevel.HIGH
    (resumed,) = [m for m in answers if isinstance(m, Responses)]
    assert resumed.batch == first_batch[0].batch + 1  # a new batch, with a new key


def test_old_batch_answered_after_resume_is_refused(scene: SceneFactory) -> None:
    s = scene()
    phone = s.phone(PhoneMode.SPLIT)
    (welcome,) = s.session.receive(encode_message(phone.start()[0]))
    (upload,) = phone.handle(decode_message(welcome, accept=SERVER_MESSAGES))
    (commands,) = s.session.receive(encode_message(upload))
    old = decode_message(commands, accept=SERVER_MESSAGES)
    assert isinstance(old, Commands)
    (stale,) = phone.handle(old)  # answered, but the answer is lost
    s.session.receive(encode_message(phone.resume()[0]))
    with pytest.raises(PhoneSessionFailed) as raised:
        s.session.receive(encode_message(stale))
    assert raised.value.failure is PhoneFailure.UNEXPECTED_MESSAGE


CAM_ONLY = CardProfile(
    name="pace-cam-only",
    document=DocumentKind.TD1,
    bac=False,
    pace_protocol=PaceOid.ECDH_CAM_AES_CBC_CMAC_128,
    pace_parameter_id=DomainParameterId.BRAINPOOLP256R1,
    pace_passwords=frozenset({PasswordKind.MRZ, PasswordKind.CAN}),
)


def test_pace_cam_without_chip_authentication_falls_back_to_relay(clock: FixedClock) -> None:
    # The chip proves its key only inside PACE-CAM, which in split mode runs in the
    # phone's own session: nothing fresh for the server. Relay mode makes it fresh.
    card = issue_card(CAM_ONLY, clock=FixedClock.at(NOW), can="123456")
    eid = make_eid(clock, card)
    challenge = eid.begin(SUBJECT)
    split = eid.phone_session(challenge)
    phone, _ = phone_for(card, "cnie", challenge, PhoneMode.SPLIT)
    with pytest.raises(PhoneSessionFailed) as raised:
        drive(split, phone)
    assert raised.value.failure is PhoneFailure.RELAY_REQUIRED
    # The challenge is still live: the same attempt continues in relay mode.
    relay = eid.phone_session(challenge)
    phone, _ = phone_for(card, "cnie", challenge, PhoneMode.RELAY)
    drive(relay, phone)
    result = eid.verify(challenge, relay)
    assert result.assurance is AssuranceLevel.HIGH
    assert result.details["proof"] == "chip_authentication_remote"


def relay_threads(
    session: PhoneSession, besides: frozenset[threading.Thread] = frozenset()
) -> list[threading.Thread]:
    """The session's relay reader threads, but those in ``besides``.

    Session ids come from the tests' fixed random source, so an earlier test's
    session of the same id may still have its reader waiting out its deadline:
    a test names the threads that were there before it began.
    """
    name = f"phone-relay-{session.id}"
    return [t for t in threading.enumerate() if t.name == name and t not in besides]


def thread_ends(session: PhoneSession, besides: frozenset[threading.Thread]) -> bool:
    deadline = time.monotonic() + 30  # generous: a loaded machine schedules threads late
    while relay_threads(session, besides) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not relay_threads(session, besides)


@pytest.mark.parametrize("ending", ["finished", "aborted", "failed"])
def test_relay_reader_thread_ends_with_the_session(scene: SceneFactory, ending: str) -> None:
    s = scene()
    before = frozenset(relay_threads(s.session))
    phone = s.phone(PhoneMode.RELAY)
    if ending == "finished":
        drive(s.session, phone)
        assert s.session.finished
    else:
        drive(s.session, phone, limit=5)
        assert relay_threads(s.session, before)
        if ending == "aborted":
            s.session.abort()
        else:
            with pytest.raises(PhoneSessionFailed):
                s.session.receive(encode_message(Responses(99, (b"\x90\x00",))))
    assert thread_ends(s.session, before)

"""The attack matrix: every misbehaving phone is refused with a stable, typed reason.

Each test names the attack; each asserts the failure reason and that nothing
usable is left: the session is dead (every later call raises), it has no
evidence, and the challenge it was bound to is burnt by ``verify``.
"""

from __future__ import annotations

import json

import attrs
import pytest

from macnss_auth import ChallengeUsed, DocumentNotGenuine, Reason
from macnss_auth.audit import MemoryAuditLog
from macnss_auth.nfc.card import CardData, issue_card
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.card.issuer import Person, clone_card, forge_card
from macnss_auth.nfc.mrz import CAN
from macnss_auth.nfc.phone import (
    SERVER_MESSAGES,
    Abort,
    CardReady,
    Hello,
    PhoneCardSession,
    PhoneFailure,
    PhoneLimits,
    PhoneMessage,
    PhoneMode,
    PhoneSession,
    PhoneSessionFailed,
    ReferencePhone,
    Responses,
    Resume,
    SessionState,
    Upload,
    Welcome,
    decode_message,
    encode_message,
)
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.nfc.verify import DocumentRejected
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.testing.pki import TestPki, sign_sod

from .conftest import (
    NOW,
    SUBJECT,
    SceneFactory,
    Tamper,
    assert_dead,
    drive,
    issued,
    make_eid,
    phone_for,
)


def recording(into: list[PhoneMessage]) -> Tamper:
    def tamper(message: PhoneMessage) -> PhoneMessage:
        into.append(message)
        return message

    return tamper


def fail_reason(session: PhoneSession, phone: ReferencePhone, **kwargs: object) -> PhoneFailure:
    with pytest.raises(PhoneSessionFailed) as raised:
        drive(session, phone, **kwargs)  # type: ignore[arg-type]
    return raised.value.failure


def test_altered_dg1_is_refused_by_the_chip_re_read(scene: SceneFactory) -> None:
    s = scene()
    phone = s.phone(PhoneMode.SPLIT)
    forged = forge_card(s.card.data).files.files()

    def alter(message: PhoneMessage) -> PhoneMessage:
        if isinstance(message, Upload):
            dg1 = next(v.data for k, v in forged.items() if k.endswith("/DG1"))
            return Upload({**message.files, "DG1": dg1}, message.aa_signature)
        return message

    assert fail_reason(s.session, phone, tamper=alter) is PhoneFailure.DATA_MISMATCH
    s.assert_dead(PhoneFailure.DATA_MISMATCH)


def test_altered_dg1_without_chip_authentication_fails_passive_authentication(
    scene: SceneFactory,
) -> None:
    # legacy-dh proves itself by AA only: the forged DG1 no longer matches the SOD.
    s = scene("legacy-dh")
    phone = s.phone(PhoneMode.SPLIT)
    forged = forge_card(s.card.data).files.files()
    dg1 = next(v.data for k, v in forged.items() if k.endswith("/DG1"))
    drive(
        s.session,
        phone,
        tamper=lambda m: (
            Upload({**m.files, "DG1": dg1}, m.aa_signature) if isinstance(m, Upload) else m
        ),
    )
    with pytest.raises(DocumentRejected) as raised:
        s.eid.verify(s.challenge, s.session)
    assert raised.value.verification.verdict_reason == "a data group does not match the SOD"


def card_of_the_attacker(data: CardData) -> PhoneCardSession:
    """The attacker's own phone session with another chip, opened."""
    own = PhoneCardSession(
        MemoryTransport(VirtualCard(data, random=FixedRandom(7))),
        password=CAN("123456"),
        random=FixedRandom(8),
    )
    own.open()
    return own


def test_data_groups_of_one_card_with_the_chip_authentication_of_another(
    scene: SceneFactory,
) -> None:
    # The phone uploads card A (say, copied data) and relays the CA to card B, a genuine chip.
    card_a, card_b = issued("cnie"), issued("cnie", "ZZ7654321")
    s = scene(card=card_a, trusted=(card_a, card_b))
    _, batch = s.first_batch(s.phone())
    other = card_of_the_attacker(card_b.data)
    with pytest.raises(PhoneSessionFailed) as raised:
        s.session.receive(encode_message(other.run_steps(batch)))
    assert raised.value.failure is PhoneFailure.CHIP_AUTHENTICATION_FAILED
    s.assert_dead(PhoneFailure.CHIP_AUTHENTICATION_FAILED)


def test_replayed_chip_authentication_answer_is_refused(clock: FixedClock) -> None:
    card = issued("pace-cam")
    eid = make_eid(clock, card)
    # A genuine first session, recorded by the attacker.
    first = eid.begin(SUBJECT)
    session = eid.phone_session(first)
    phone, _ = phone_for(card, "pace-cam", first, PhoneMode.SPLIT)
    recorded: list[PhoneMessage] = []

    def record(message: PhoneMessage) -> PhoneMessage:
        recorded.append(message)
        return message

    drive(session, phone, tamper=record)
    eid.verify(first, session)
    old_upload = next(m for m in recorded if isinstance(m, Upload))
    old_answers = next(m for m in recorded if isinstance(m, Responses))
    # The second session: replay the whole transcript, no card at all.
    second = eid.begin(SUBJECT)
    replay = eid.phone_session(second)
    replay.receive(encode_message(Hello(second.id, PhoneMode.SPLIT)))
    replay.receive(encode_message(old_upload))
    with pytest.raises(PhoneSessionFailed) as raised:
        replay.receive(encode_message(old_answers))
    assert raised.value.failure is PhoneFailure.CHIP_AUTHENTICATION_FAILED
    assert_dead(eid, second.id, replay, PhoneFailure.CHIP_AUTHENTICATION_FAILED)


def test_replayed_upload_with_an_old_active_authentication_signature(clock: FixedClock) -> None:
    card = issued("legacy-dh")
    eid = make_eid(clock, card)
    first = eid.begin(SUBJECT)
    session = eid.phone_session(first)
    phone, _ = phone_for(card, "legacy-dh", first, PhoneMode.SPLIT)
    recorded: list[PhoneMessage] = []
    drive(session, phone, tamper=recording(recorded))
    eid.verify(first, session)
    old_upload = next(m for m in recorded if isinstance(m, Upload))
    second = eid.begin(SUBJECT)
    replay = eid.phone_session(second)
    replay.receive(encode_message(Hello(second.id, PhoneMode.SPLIT)))
    replay.receive(encode_message(old_upload))
    with pytest.raises(DocumentRejected) as raised:
        eid.verify(second, replay)
    assert raised.value.verification.verdict_reason == "Active Authentication failed"


def test_chip_authentication_answer_computed_without_the_chip(scene: SceneFactory) -> None:
    # The phone says yes to every wrapped step and makes up the protected answer,
    # with the best keys it has: its own PACE keys.
    s = scene()
    phone = s.phone(PhoneMode.SPLIT)
    upload, batch = s.first_batch(phone)
    dg1 = upload.files["DG1"]
    fake = b"\x87" + bytes([len(dg1) + 1]) + b"\x01" + dg1 + b"\x99\x02\x90\x00\x8e\x08" + bytes(8)
    answers = (b"\x90\x00", b"\x7c\x00\x90\x00", fake + b"\x90\x00")
    with pytest.raises(PhoneSessionFailed) as raised:
        s.session.receive(encode_message(Responses(batch.batch, answers)))
    assert raised.value.failure is PhoneFailure.CHIP_AUTHENTICATION_FAILED
    s.assert_dead(PhoneFailure.CHIP_AUTHENTICATION_FAILED)


def test_cloned_chip_cannot_do_chip_authentication(scene: SceneFactory) -> None:
    s = scene()
    clone = MemoryTransport(VirtualCard(clone_card(s.card.data), random=FixedRandom(3)))
    phone = s.phone(PhoneMode.SPLIT, transport=clone)
    assert fail_reason(s.session, phone) is PhoneFailure.CHIP_AUTHENTICATION_FAILED
    s.assert_dead(PhoneFailure.CHIP_AUTHENTICATION_FAILED)


def test_cloned_pace_cam_chip_cannot_even_open_pace(scene: SceneFactory) -> None:
    # PACE-CAM needs the chip's private key inside PACE: a clone fails at the phone.
    s = scene("pace-cam")
    clone = MemoryTransport(VirtualCard(clone_card(s.card.data), random=FixedRandom(3)))
    phone = s.phone(PhoneMode.SPLIT, transport=clone)
    assert fail_reason(s.session, phone) is PhoneFailure.PHONE_ABORTED
    s.assert_dead(PhoneFailure.PHONE_ABORTED)


def test_cloned_chip_in_relay_mode_is_not_genuine(scene: SceneFactory) -> None:
    s = scene()
    clone = MemoryTransport(VirtualCard(clone_card(s.card.data), random=FixedRandom(3)))
    phone = s.phone(PhoneMode.RELAY, transport=clone)
    drive(s.session, phone)
    with pytest.raises(DocumentNotGenuine):
        s.eid.verify(s.challenge, s.session)


@pytest.mark.parametrize(
    ("state_messages", "intruder"),
    [
        ([], Responses(1, (b"\x90\x00",))),  # answers before hello
        (["hello"], Responses(1, (b"\x90\x00",))),  # answers before the upload
        (["hello"], CardReady()),  # a relay message in split mode
        (["hello", "upload"], Upload({"SOD": b"\x77\x00", "DG1": b"\x61\x00"})),  # twice
        (["hello"], Hello("x", PhoneMode.SPLIT)),  # hello twice
    ],
)
def test_message_out_of_order(
    scene: SceneFactory, state_messages: list[str], intruder: PhoneMessage
) -> None:
    s = scene()
    phone = s.phone(PhoneMode.SPLIT)
    pending = phone.start()
    for _ in state_messages:
        message = pending.pop(0)
        for reply in s.session.receive(encode_message(message)):
            pending.extend(phone.handle(decode_message(reply, accept=SERVER_MESSAGES)))
    with pytest.raises(PhoneSessionFailed) as raised:
        s.session.receive(encode_message(intruder))
    assert raised.value.failure is PhoneFailure.UNEXPECTED_MESSAGE
    s.assert_dead(PhoneFailure.UNEXPECTED_MESSAGE)


def test_second_use_of_the_challenge(clock: FixedClock) -> None:
    card = issued("cnie")
    eid = make_eid(clock, card)
    challenge = eid.begin(SUBJECT)
    first = eid.phone_session(challenge)
    second = eid.phone_session(challenge)  # opened while the first runs
    for session, seed in ((first, 3), (second, 13)):
        phone, _ = phone_for(card, "cnie", challenge, PhoneMode.SPLIT, seed=seed)
        drive(session, phone)
    eid.verify(challenge, first)
    with pytest.raises(ChallengeUsed):
        eid.verify(challenge, second)
    with pytest.raises(ChallengeUsed):
        eid.phone_session(challenge)


def test_session_evidence_for_another_challenge_is_refused(clock: FixedClock) -> None:
    card = issued("cnie")
    eid = make_eid(clock, card)
    one, two = eid.begin(SUBJECT), eid.begin(SUBJECT)
    session = eid.phone_session(one)
    phone, _ = phone_for(card, "cnie", one, PhoneMode.SPLIT)
    drive(session, phone)
    with pytest.raises(DocumentNotGenuine):
        eid.verify(two, session)


def test_hello_for_another_challenge_is_refused(clock: FixedClock) -> None:
    card = issued("cnie")
    eid = make_eid(clock, card)
    one, two = eid.begin(SUBJECT), eid.begin(SUBJECT)
    session = eid.phone_session(one)
    with pytest.raises(PhoneSessionFailed) as raised:
        session.receive(encode_message(Hello(two.id, PhoneMode.SPLIT)))
    assert raised.value.failure is PhoneFailure.CHALLENGE_UNUSABLE


def test_oversized_message_is_refused_before_parsing(scene: SceneFactory) -> None:
    s = scene(limits=PhoneLimits(max_message_bytes=1000))
    s.session.receive(encode_message(Hello(s.challenge.id, PhoneMode.SPLIT)))
    with pytest.raises(PhoneSessionFailed) as raised:
        s.session.receive("[" * 2000)
    assert raised.value.failure is PhoneFailure.MESSAGE_TOO_LARGE
    s.assert_dead(PhoneFailure.MESSAGE_TOO_LARGE)


def test_oversized_file_is_refused(scene: SceneFactory) -> None:
    s = scene(limits=PhoneLimits(max_file_bytes=1024))
    s.session.receive(encode_message(Hello(s.challenge.id, PhoneMode.SPLIT)))
    upload = Upload({"SOD": bytes(2048), "DG1": b"\x61\x00"})
    with pytest.raises(PhoneSessionFailed) as raised:
        s.session.receive(encode_message(upload))
    assert raised.value.failure is PhoneFailure.MESSAGE_TOO_LARGE


def test_endless_messages_are_cut_off(scene: SceneFactory) -> None:
    # A relay phone that keeps "losing" the card: bounded by the reconnection count.
    s = scene(limits=PhoneLimits(max_reconnects=3))
    phone = s.phone(PhoneMode.RELAY)
    s.session.receive(encode_message(phone.start()[0]))

    def lose_forever() -> None:
        for _ in range(20):
            s.session.receive(json.dumps({"v": 1, "type": "card_lost"}))
            s.session.receive(encode_message(CardReady()))

    with pytest.raises(PhoneSessionFailed) as raised:
        lose_forever()
    assert raised.value.failure is PhoneFailure.CARD_LOST
    s.assert_dead(PhoneFailure.CARD_LOST)


def test_too_many_messages(scene: SceneFactory) -> None:
    s = scene(limits=PhoneLimits(max_messages=10))
    phone = s.phone(PhoneMode.RELAY)
    assert fail_reason(s.session, phone) is PhoneFailure.TOO_MANY_MESSAGES
    s.assert_dead(PhoneFailure.TOO_MANY_MESSAGES)


@pytest.mark.parametrize("mode", [PhoneMode.SPLIT, PhoneMode.RELAY])
def test_stalled_phone_times_out_on_the_injected_clock(
    clock: FixedClock, scene: SceneFactory, mode: PhoneMode
) -> None:
    s = scene(limits=PhoneLimits(session_seconds=30))
    phone = s.phone(mode)
    s.session.receive(encode_message(phone.start()[0]))
    clock.advance(29)
    s.session.check_deadline()  # still in time
    assert 0 < s.session.seconds_left() <= 1
    clock.advance(2)
    with pytest.raises(PhoneSessionFailed) as raised:
        s.session.check_deadline()
    assert raised.value.failure is PhoneFailure.TIMEOUT
    assert s.session.seconds_left() == 0
    s.assert_dead(PhoneFailure.TIMEOUT)


def test_session_never_outlives_its_challenge(clock: FixedClock) -> None:
    card = issued("cnie")
    eid = make_eid(clock, card)
    challenge = eid.begin(SUBJECT)  # 120 s
    clock.advance(100)
    session = eid.phone_session(challenge, limits=PhoneLimits(session_seconds=600))
    assert session.seconds_left() == pytest.approx(20)


def test_wrong_can_in_relay_mode_is_access_denied_once(scene: SceneFactory) -> None:
    s = scene(card=issue_card("cnie", clock=FixedClock.at(NOW), can="123456"))
    link = MemoryTransport(VirtualCard(s.card.data, random=FixedRandom(3)), record=True)
    phone = ReferencePhone(
        link,
        challenge_id=s.challenge.id,
        mode=PhoneMode.RELAY,
        password=CAN("654321"),
        random=FixedRandom(4),
    )
    assert fail_reason(s.session, phone) is PhoneFailure.ACCESS_DENIED
    # One PACE attempt only: the server never retries a refused password.
    mse = [c for c, _ in link.transcript if c[1:4] == b"\x22\xc1\xa4"]
    assert len(mse) == 1
    s.assert_dead(PhoneFailure.ACCESS_DENIED)


def test_wrong_can_in_split_mode_phone_aborts(scene: SceneFactory) -> None:
    s = scene()
    link = MemoryTransport(VirtualCard(s.card.data, random=FixedRandom(3)))
    phone = ReferencePhone(
        link,
        challenge_id=s.challenge.id,
        mode=PhoneMode.SPLIT,
        password=CAN("654321"),
        random=FixedRandom(4),
    )
    sent: list[PhoneMessage] = []
    assert fail_reason(s.session, phone, tamper=recording(sent)) is PhoneFailure.PHONE_ABORTED
    assert sent[-1] == Abort("access_denied")
    s.assert_dead(PhoneFailure.PHONE_ABORTED)


@pytest.mark.parametrize("mode", [PhoneMode.SPLIT, PhoneMode.RELAY])
def test_card_chaining_to_no_trusted_csca(scene: SceneFactory, mode: PhoneMode) -> None:
    trusted, foreign = issued("cnie"), issue_card("cnie", clock=FixedClock.at(NOW), can="123456")
    audit = MemoryAuditLog()
    # The foreign card's CSCA is not trusted.
    s = scene(card=foreign, trusted=(trusted,), audit=audit)
    drive(s.session, s.phone(mode))
    with pytest.raises(DocumentRejected) as raised:
        s.eid.verify(s.challenge, s.session)
    assert "trusted CSCA" in raised.value.verification.verdict_reason
    assert audit.events[-1].reason == Reason.DOCUMENT_NOT_GENUINE.value


def test_tampered_relay_answer_is_a_secure_messaging_failure(scene: SceneFactory) -> None:
    s = scene()
    phone = s.phone(PhoneMode.RELAY)
    count = 0

    def flip(message: PhoneMessage) -> PhoneMessage:
        nonlocal count
        if isinstance(message, Responses):
            count += 1
            if count == 20:  # well after PACE: a protected READ BINARY answer
                raw = bytearray(message.responses[0])
                raw[3] ^= 1
                return Responses(message.batch, (bytes(raw),))
        return message

    assert fail_reason(s.session, phone, tamper=flip) is PhoneFailure.CARD_ERROR
    s.assert_dead(PhoneFailure.CARD_ERROR)


@pytest.mark.parametrize(
    "raw",
    [
        '{"v": 2, "type": "hello", "challenge": "x", "mode": "split"}',
        '{"type": "hello", "challenge": "x", "mode": "split"}',
        '{"v": 1, "type": "hello", "challenge": "x", "mode": "split", "admin": true}',
        '{"v": 1, "type": "hello", "challenge": "x/../y", "mode": "split"}',
        '{"v": 1, "type": "hello", "challenge": "x", "mode": "kiosk"}',
        '{"v": 1, "type": "welcome"}',
        "[1, 2, 3]",
        "not json",
    ],
)
def test_malformed_or_foreign_messages(scene: SceneFactory, raw: str) -> None:
    s = scene()
    with pytest.raises(PhoneSessionFailed) as raised:
        s.session.receive(raw)
    expected = (
        PhoneFailure.UNSUPPORTED_VERSION if '"v": 2' in raw else PhoneFailure.MALFORMED_MESSAGE
    )
    assert raised.value.failure is expected


def test_resume_with_a_wrong_token_is_refused(scene: SceneFactory) -> None:
    s = scene()
    (welcome,) = s.session.receive(encode_message(Hello(s.challenge.id, PhoneMode.SPLIT)))
    parsed = decode_message(welcome, accept=SERVER_MESSAGES)
    assert isinstance(parsed, Welcome)
    with pytest.raises(PhoneSessionFailed) as raised:
        s.session.receive(encode_message(Resume(parsed.session, bytes(16))))
    assert raised.value.failure is PhoneFailure.UNEXPECTED_MESSAGE


def test_split_mode_refuses_a_password(scene: SceneFactory) -> None:
    s = scene()
    with pytest.raises(PhoneSessionFailed):
        s.session.receive(
            encode_message(Hello(s.challenge.id, PhoneMode.SPLIT, password={"can": "1"}))
        )


def test_garbage_tlv_in_a_chip_authentication_answer_is_typed(scene: SceneFactory) -> None:
    s = scene()
    phone = s.phone(PhoneMode.SPLIT)
    _, batch = s.first_batch(phone)
    answers = (b"\x90\x00", b"\x7c\x85\x90\x00", b"\x90\x00")  # a truncated TLV length
    with pytest.raises(PhoneSessionFailed) as raised:
        s.session.receive(encode_message(Responses(batch.batch, answers)))
    assert raised.value.failure is PhoneFailure.MALFORMED_MESSAGE
    s.assert_dead(PhoneFailure.MALFORMED_MESSAGE)


def test_verifying_a_running_session_ends_it(scene: SceneFactory) -> None:
    s = scene()
    s.session.receive(encode_message(Hello(s.challenge.id, PhoneMode.SPLIT)))
    with pytest.raises(PhoneSessionFailed):
        s.eid.verify(s.challenge, s.session)
    assert s.session.state is SessionState.FAILED
    with pytest.raises(PhoneSessionFailed):
        s.session.receive(encode_message(Abort("x")))
    with pytest.raises(ChallengeUsed):
        s.eid.phone_session(s.challenge)


def test_batch_shared_chip_authentication_key_cannot_lend_its_proof(
    clock: FixedClock, scene: SceneFactory
) -> None:
    # Two genuine cards of one batch share the CA key (some issuers do this). The
    # attacker uploads the victim's copied data and relays CA to their own card: the
    # CA answer is valid, but the DG1 read under the new keys is the attacker's DG1.
    pki = TestPki.create(now=clock.now(), key_type="ec")
    victim = issue_card(
        "cnie", clock=clock, can="123456", pki=pki, person=Person(document_number="AB1234567")
    )
    other = issue_card(
        "cnie", clock=clock, can="123456", pki=pki, person=Person(document_number="ZZ7654321")
    )
    files = victim.data.files.files()
    groups = {int(p.rsplit("/DG", 1)[1]): f.data for p, f in files.items() if "/DG" in p}
    groups[1] = next(f.data for p, f in other.data.files.files().items() if p.endswith("/DG1"))
    store = victim.data.files
    for path in files:
        if path.endswith("/DG1"):
            store = store.replace_data(path, groups[1])
        elif path.endswith("/EF.SOD"):
            store = store.replace_data(path, sign_sod(groups, pki.ds, signing_time=clock.now()))
    # The attacker's card: same chip keys as the victim's (one batch), its own DG1.
    attacker = attrs.evolve(victim.data, files=store)
    s = scene(card=victim)
    _, batch = s.first_batch(s.phone())
    own = card_of_the_attacker(attacker)
    with pytest.raises(PhoneSessionFailed) as raised:
        s.session.receive(encode_message(own.run_steps(batch)))
    assert raised.value.failure is PhoneFailure.DATA_MISMATCH
    s.assert_dead(PhoneFailure.DATA_MISMATCH)

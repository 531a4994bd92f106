"""CA v2 through the phone: the chip's token is checked, then DG1 is read under the new keys.

Two chips answer. :class:`ChipV2` plays the chip's side of CA v2 by hand, with
the card's CA private key and low-level primitives only (BSI TR-03110-3 A.2.3.2:
``KS = KDF(K || r_PICC, c)``; A.2.4.2: ``T_PICC = MAC(KSmac, 7F49{OID, PK_PCD})``):
an oracle written from the spec, independent of the card's and the terminal's
shared ``chip_authentication_token``. The virtual card issued with
``chip_authentication_version=2`` then runs the whole path, split and relay,
ECDH and DH, and a chip that forges its token fails.
"""

from __future__ import annotations

import functools

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from macnss_auth import AssuranceLevel, DocumentNotGenuine
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.card import IssuedCard, issue_card
from macnss_auth.nfc.card.chip_auth import ChipAuthResponder
from macnss_auth.nfc.card.issuer import Person
from macnss_auth.nfc.chip_auth import CaAlgorithm, DhPrivateKey, DhPublicKey, shared_secret
from macnss_auth.nfc.crypto import SymmetricCipher, mac
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.lds import parse_dg14
from macnss_auth.nfc.lds.security import encode_dg14
from macnss_auth.nfc.phone import (
    SERVER_MESSAGES,
    Commands,
    PhoneFailure,
    PhoneMessage,
    PhoneMode,
    PhoneSession,
    PhoneSessionFailed,
    Responses,
    Upload,
    decode_message,
    encode_message,
)
from macnss_auth.nfc.securityinfos import (
    ChipAuthenticationInfo,
    encode_security_infos,
)
from macnss_auth.nfc.sm import CardSecureChannel, SessionKeys
from macnss_auth.nfc.tlv import encode_tlv, parse_all
from macnss_auth.testing import FixedClock, ScriptedRandom
from macnss_auth.testing.pki import TestPki, sign_sod

from .conftest import CAN_DIGITS, NOW, SUBJECT, assert_dead, drive, make_eid, phone_for


def ca_v2_card(version: int = 2) -> IssuedCard:
    """A cnie card whose DG14 announces CA ``version``, its SOD signed again by its issuer.

    The chip itself still speaks CA v1: only the signed announcement changes.
    """
    clock = FixedClock.at(NOW)
    pki = TestPki.create(now=clock.now(), key_type="ec")
    card = issue_card(
        "cnie", clock=clock, can="123456", pki=pki, person=Person(document_number="AB1234567")
    )
    files = card.data.files.files()
    groups = {int(p.rsplit("/DG", 1)[1]): f.data for p, f in files.items() if "/DG" in p}
    infos = [
        attrs.evolve(i, version=version) if isinstance(i, ChipAuthenticationInfo) else i
        for i in parse_dg14(groups[14]).infos
    ]
    groups[14] = encode_dg14(encode_security_infos(infos))
    store = card.data.files
    for path in files:
        if path.endswith("/DG14"):
            store = store.replace_data(path, groups[14])
        elif path.endswith("/EF.SOD"):
            store = store.replace_data(path, sign_sod(groups, pki.ds, signing_time=clock.now()))
    return attrs.evolve(card, data=attrs.evolve(card.data, files=store))


class ChipV2:
    """The chip's side of CA v2, for the steps the phone would relay."""

    def __init__(self, card: IssuedCard, *, token_flip: bool = False) -> None:
        key = card.data.secrets.ca_key
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self.key = key
        self.dg1 = next(f.data for p, f in card.data.files.files().items() if p.endswith("/DG1"))
        self.token_flip = token_flip
        self.channel: CardSecureChannel | None = None

    def agree(self, batch: Commands) -> Responses:
        mse, ga = (CommandAPDU.from_bytes(step.apdu) for step in batch.steps)
        assert all(step.wrap for step in batch.steps)
        assert (mse.ins, ga.ins) == (0x22, 0x86)
        (outer,) = parse_all(ga.data)
        public = {i.tag: i.value for i in parse_all(outer.value)}[0x80]
        peer = ec.EllipticCurvePublicKey.from_encoded_point(self.key.curve, public)
        nonce = bytes(range(8))
        algorithm = CaAlgorithm.ECDH_AES_CBC_CMAC_128
        keys = SessionKeys.derive(shared_secret(self.key, peer) + nonce, SymmetricCipher.AES)
        data_object = encode_tlv(
            0x7F49, encode_tlv(0x06, algorithm.oid_bytes) + encode_tlv(0x86, public)
        )
        token = bytearray(mac(SymmetricCipher.AES, keys.k_mac, data_object))
        if self.token_flip:
            token[0] ^= 1
        self.channel = CardSecureChannel(keys, ssc=0)
        answer = encode_tlv(0x7C, encode_tlv(0x81, nonce) + encode_tlv(0x82, bytes(token)))
        return Responses(batch.batch, (b"\x90\x00", answer + b"\x90\x00"))

    def read(self, batch: Commands) -> Responses:
        assert self.channel is not None
        (step,) = batch.steps
        assert not step.wrap
        command = self.channel.unprotect_command(step.apdu)
        assert (command.ins, command.p1) == (0xB0, 0x81)
        protected = self.channel.protect_response(ResponseAPDU(self.dg1, 0x9000))
        return Responses(batch.batch, (protected,))


def upload_and_first_batch(
    eid: EidAuthenticator, card: IssuedCard
) -> tuple[str, PhoneSession, Commands]:
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    phone, _ = phone_for(card, "cnie", challenge, PhoneMode.SPLIT)
    (welcome,) = session.receive(encode_message(phone.start()[0]))
    (upload,) = phone.handle(decode_message(welcome, accept=SERVER_MESSAGES))
    assert isinstance(upload, Upload)
    (commands,) = session.receive(encode_message(upload))
    batch = decode_message(commands, accept=SERVER_MESSAGES)
    assert isinstance(batch, Commands)
    return challenge.id, session, batch


def test_chip_authentication_v2_token_and_dg1_read(clock: FixedClock) -> None:
    card = ca_v2_card()
    eid = make_eid(clock, card)
    challenge, session, batch = upload_and_first_batch(eid, card)
    assert len(batch.steps) == 2  # the key agreement only: the keys need the chip's nonce
    chip = ChipV2(card)
    (second,) = session.receive(encode_message(chip.agree(batch)))
    read = decode_message(second, accept=SERVER_MESSAGES)
    assert isinstance(read, Commands)
    assert read.batch == batch.batch + 1
    assert session.receive(encode_message(chip.read(read))) == []
    result = eid.verify(challenge, session)
    assert result.assurance is AssuranceLevel.HIGH
    assert result.details["proof"] == "active_authentication,chip_authentication_remote"


def test_chip_authentication_v2_wrong_token_is_refused(clock: FixedClock) -> None:
    card = ca_v2_card()
    eid = make_eid(clock, card)
    _, session, batch = upload_and_first_batch(eid, card)
    with pytest.raises(PhoneSessionFailed) as raised:
        session.receive(encode_message(ChipV2(card, token_flip=True).agree(batch)))
    assert raised.value.failure is PhoneFailure.CHIP_AUTHENTICATION_FAILED


def test_chip_authentication_v2_answer_without_token_is_refused(clock: FixedClock) -> None:
    card = ca_v2_card()
    eid = make_eid(clock, card)
    _, session, batch = upload_and_first_batch(eid, card)
    answers = (b"\x90\x00", b"\x7c\x00\x90\x00")  # what a v1 chip (or a lying phone) says
    with pytest.raises(PhoneSessionFailed) as raised:
        session.receive(encode_message(Responses(batch.batch, answers)))
    assert raised.value.failure is PhoneFailure.CHIP_AUTHENTICATION_FAILED


# -- the virtual card issued with CA v2 ------------------------------------------------


@functools.cache
def issued_v2(profile: str) -> IssuedCard:
    return issue_card(
        profile,
        clock=FixedClock.at(NOW),
        can=CAN_DIGITS,
        person=Person(document_number="AB1234567"),
        chip_authentication_version=2,
    )


def with_another_ca_key(card: IssuedCard) -> IssuedCard:
    """The same signed files on a chip holding a CA key of its own: its tokens are wrong."""
    key = card.data.secrets.ca_key
    other: object
    if isinstance(key, DhPrivateKey):
        x = key.x + 12345
        group = key.public
        other = DhPrivateKey(DhPublicKey(group.p, group.g, pow(group.g, x, group.p), group.q), x)
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        other = ec.generate_private_key(key.curve)
    secrets = attrs.evolve(card.data.secrets, ca_key=other)
    return attrs.evolve(card, data=attrs.evolve(card.data, secrets=secrets))


class Recording:
    """Records the server's ``commands`` batches on their way to the phone."""

    def __init__(self, session: PhoneSession) -> None:
        self.session = session
        self.batches: list[Commands] = []

    def receive(self, raw: str | bytes) -> list[str]:
        out = self.session.receive(raw)
        for message in out:
            decoded = decode_message(message, accept=SERVER_MESSAGES)
            if isinstance(decoded, Commands):
                self.batches.append(decoded)
        return out


@pytest.mark.parametrize("profile", ["cnie", "ca-dh"])
def test_split_mode_with_the_ca_v2_card(clock: FixedClock, profile: str) -> None:
    """The real card's nonce and token: the server checks them, then reads DG1 (two batches)."""
    card = issued_v2(profile)
    eid = make_eid(clock, card)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    phone, _ = phone_for(card, profile, challenge, PhoneMode.SPLIT)
    recording = Recording(session)
    drive(recording, phone)  # type: ignore[arg-type]
    first, second = recording.batches
    # Key agreement (Set AT + GENERAL AUTHENTICATE, wrapped), then the raw DG1 read.
    assert [CommandAPDU.from_bytes(s.apdu).ins for s in first.steps] == [0x22, 0x86]
    assert all(step.wrap for step in first.steps)
    assert [step.wrap for step in second.steps] == [False]
    result = eid.verify(challenge, session)
    assert result.assurance is AssuranceLevel.HIGH
    assert result.details["proof"] == "active_authentication,chip_authentication_remote"


@pytest.mark.parametrize("profile", ["cnie", "ca-dh"])
def test_relay_mode_with_the_ca_v2_card(clock: FixedClock, profile: str) -> None:
    card = issued_v2(profile)
    eid = make_eid(clock, card)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    phone, _ = phone_for(card, profile, challenge, PhoneMode.RELAY)
    drive(session, phone)
    result = eid.verify(challenge, session)
    assert result.assurance is AssuranceLevel.HIGH
    assert result.details["proof"] == "active_authentication,chip_authentication_remote"


@pytest.mark.parametrize("profile", ["cnie", "ca-dh"])
def test_split_mode_refuses_a_chip_that_forges_its_token(clock: FixedClock, profile: str) -> None:
    genuine = issued_v2(profile)
    eid = make_eid(clock, genuine)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    phone, _ = phone_for(with_another_ca_key(genuine), profile, challenge, PhoneMode.SPLIT)
    with pytest.raises(PhoneSessionFailed) as raised:
        drive(session, phone)
    assert raised.value.failure is PhoneFailure.CHIP_AUTHENTICATION_FAILED
    assert_dead(eid, challenge.id, session, PhoneFailure.CHIP_AUTHENTICATION_FAILED)


def test_relay_mode_rejects_a_chip_that_forges_its_token(clock: FixedClock) -> None:
    genuine = issued_v2("cnie")
    eid = make_eid(clock, genuine)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    phone, _ = phone_for(with_another_ca_key(genuine), "cnie", challenge, PhoneMode.RELAY)
    drive(session, phone)
    evidence = session.evidence
    assert evidence.chip_authentication is not None
    assert not evidence.chip_authentication.completed
    with pytest.raises(DocumentNotGenuine, match="Chip Authentication failed"):
        eid.verify(challenge, session)


def test_a_phone_that_edits_the_card_token_is_refused(clock: FixedClock) -> None:
    """The genuine card's answer with one token bit flipped by the phone."""
    card = issued_v2("cnie")
    eid = make_eid(clock, card)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    phone, _ = phone_for(card, "cnie", challenge, PhoneMode.SPLIT)

    def flip(message: PhoneMessage) -> PhoneMessage:
        if not isinstance(message, Responses) or message.batch != 1:
            return message
        mse, ga = message.responses
        assert ga[-2:] == b"\x90\x00"
        assert ga[-12:-10] == b"\x82\x08"  # the token: 82 08, then 8 octets
        edited = ga[:-3] + bytes([ga[-3] ^ 0x01]) + ga[-2:]
        return Responses(message.batch, (mse, edited))

    with pytest.raises(PhoneSessionFailed) as raised:
        drive(session, phone, tamper=flip)
    assert raised.value.failure is PhoneFailure.CHIP_AUTHENTICATION_FAILED


def test_the_hand_played_oracle_and_the_card_agree_on_the_token(clock: FixedClock) -> None:
    """Same ephemeral key, same nonce: the card's 7C answer equals the oracle's, byte for byte."""
    card = issued_v2("cnie")
    eid = make_eid(clock, card)
    challenge, session, batch = upload_and_first_batch(eid, card)
    del challenge, session
    oracle = ChipV2(card).agree(batch).responses[1]
    # The card, fed the oracle's nonce (bytes 0..7), answering the same GENERAL AUTHENTICATE.
    responder = ChipAuthResponder(
        CaAlgorithm.ECDH_AES_CBC_CMAC_128,
        card.data.secrets,
        version=2,
        random=ScriptedRandom(bytes(range(8))),
    )
    mse, ga = (CommandAPDU.from_bytes(step.apdu) for step in batch.steps)
    responder.set_at(mse.data)
    answer, _ = responder.general_authenticate(ga.data)
    assert answer + b"\x90\x00" == oracle


def test_a_dg14_announcing_only_ca_v3_gets_no_ca_through_the_phone(clock: FixedClock) -> None:
    """CA v3 is another protocol: the server does not run v1 or v2 on its key; AA decides."""
    card = ca_v2_card(version=3)
    eid = make_eid(clock, card)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    phone, _ = phone_for(card, "cnie", challenge, PhoneMode.SPLIT)
    recording = Recording(session)
    drive(recording, phone)  # type: ignore[arg-type]
    assert recording.batches == []
    result = eid.verify(challenge, session)
    assert result.details["proof"] == "active_authentication"

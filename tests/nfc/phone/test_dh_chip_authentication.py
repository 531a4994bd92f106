"""DH Chip Authentication through the phone: the ``ca-dh`` card, split and relay mode.

``ca-dh`` is the quirk profile built on ``legacy-dh`` (BAC and PACE DH-GM on the
1024-bit MODP group, RSA Active Authentication) with Chip Authentication on that
DH group: ``id-CA-DH-3DES-CBC-CBC``, so the server sends ``MSE:Set KAT`` with
its ephemeral DH value through the phone, then the raw DG1 read under the new
3DES keys (``legacy-dh`` itself has no CA key in DG14: only AA proves it).
"""

from __future__ import annotations

import pytest

from macnss_auth import AssuranceLevel
from macnss_auth.nfc.apdu import CommandAPDU
from macnss_auth.nfc.card import VirtualCard
from macnss_auth.nfc.card.issuer import clone_card
from macnss_auth.nfc.chip_auth import DhPublicKey, chip_public_key
from macnss_auth.nfc.lds import parse_dg14
from macnss_auth.nfc.mrz import CAN
from macnss_auth.nfc.phone import (
    Commands,
    PhoneCardSession,
    PhoneFailure,
    PhoneMessage,
    PhoneMode,
    PhoneSessionFailed,
    Responses,
    Step,
    encode_message,
)
from macnss_auth.nfc.securityinfos import ChipAuthenticationPublicKeyInfo
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.nfc.tlv import encode_tlv, parse_all
from macnss_auth.nfc.verify import ChipAuthenticity, VerificationPolicy
from macnss_auth.testing import FixedClock, FixedRandom

from .conftest import SUBJECT, SceneFactory, drive, issued, make_eid, phone_for

PROFILE = "ca-dh"
CA_ONLY = VerificationPolicy(chip_authenticity=ChipAuthenticity.CHIP_AUTHENTICATION)


def test_the_ca_dh_card_has_a_dh_chip_authentication_key() -> None:
    dg14 = next(f.data for f in issued(PROFILE).data.files.files().values() if f.name == "DG14")
    (key,) = [i for i in parse_dg14(dg14).infos if isinstance(i, ChipAuthenticationPublicKeyInfo)]
    assert isinstance(chip_public_key(key), DhPublicKey)


@pytest.mark.parametrize("mode", [PhoneMode.SPLIT, PhoneMode.RELAY])
def test_ca_dh_reaches_high_with_remote_chip_authentication(
    clock: FixedClock, mode: PhoneMode
) -> None:
    """Under a CA-only policy: Chip Authentication alone carries the HIGH assurance."""
    card = issued(PROFILE)
    eid = make_eid(clock, card, policy=CA_ONLY)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    phone, _ = phone_for(card, PROFILE, challenge, mode)
    drive(session, phone)
    result = eid.verify(challenge, session)
    assert result.assurance is AssuranceLevel.HIGH
    assert result.details["proof"] == "active_authentication,chip_authentication_remote"
    outcome = session.evidence.chip_authentication
    assert outcome is not None
    assert outcome.completed


def test_ca_dh_over_many_server_keys(clock: FixedClock) -> None:
    """Twelve sessions, each with another server ephemeral DH key and card nonces.

    DH values with a leading zero octet are where implementations disagree; the
    server redraws those, the card accepts either form of K. Every session must pass.
    """
    card = issued(PROFILE)
    for seed in range(12):
        eid = make_eid(clock, card, policy=CA_ONLY, seed=100 + seed)
        challenge = eid.begin(SUBJECT)
        session = eid.phone_session(challenge)
        phone, _ = phone_for(card, PROFILE, challenge, PhoneMode.SPLIT, seed=200 + seed)
        drive(session, phone)
        assert eid.verify(challenge, session).assurance is AssuranceLevel.HIGH


def first_batch_kat(batch: Commands) -> CommandAPDU:
    kat = CommandAPDU.from_bytes(batch.steps[0].apdu)
    assert (kat.ins, kat.p1, kat.p2) == (0x22, 0x41, 0xA6)  # MSE:Set KAT: DH with 3DES
    return kat


def test_the_batch_is_set_kat_then_the_raw_read(scene: SceneFactory) -> None:
    s = scene(PROFILE)
    _, batch = s.first_batch(s.phone())
    kat = first_batch_kat(batch)
    (key, *_) = parse_all(kat.data)
    assert key.tag == 0x91
    assert len(key.value) == 128  # the server's ephemeral y: no leading zero octet
    assert [step.wrap for step in batch.steps] == [True, False]


def flip_raw_answer(message: PhoneMessage) -> PhoneMessage:
    if not isinstance(message, Responses) or len(message.responses) != 2:
        return message
    kat, raw = message.responses
    return Responses(message.batch, (kat, raw[:5] + bytes([raw[5] ^ 0x01]) + raw[6:]))


def refuse_kat(message: PhoneMessage) -> PhoneMessage:
    if not isinstance(message, Responses) or len(message.responses) != 2:
        return message
    return Responses(message.batch, (b"\x6a\x88", message.responses[1]))


def drop_raw_answer(message: PhoneMessage) -> PhoneMessage:
    if not isinstance(message, Responses) or len(message.responses) != 2:
        return message
    return Responses(message.batch, message.responses[:1])


@pytest.mark.parametrize(
    "tamper", [flip_raw_answer, refuse_kat, drop_raw_answer], ids=lambda f: f.__name__
)
def test_a_tampered_ca_answer_fails(scene: SceneFactory, tamper: object) -> None:
    s = scene(PROFILE)
    phone = s.phone(PhoneMode.SPLIT)
    with pytest.raises(PhoneSessionFailed) as raised:
        drive(s.session, phone, tamper=tamper)  # type: ignore[arg-type]
    assert raised.value.failure is PhoneFailure.CHIP_AUTHENTICATION_FAILED
    s.assert_dead(PhoneFailure.CHIP_AUTHENTICATION_FAILED)


def test_a_phone_that_swaps_the_server_key_for_its_own_fails(scene: SceneFactory) -> None:
    """The phone runs CA with its own DH key; the server's pre-protected read then fails."""
    s = scene(PROFILE)
    _, batch = s.first_batch(s.phone())
    kat = first_batch_kat(batch)
    (key, *rest) = parse_all(kat.data)
    group = chip_public_key(
        next(
            i
            for i in parse_dg14(
                next(f.data for f in s.card.data.files.files().values() if f.name == "DG14")
            ).infos
            if isinstance(i, ChipAuthenticationPublicKeyInfo)
        )
    )
    assert isinstance(group, DhPublicKey)
    own = pow(group.g, 0xA77AC4E5, group.p).to_bytes(128, "big")
    swapped = CommandAPDU(
        0x00,
        0x22,
        0x41,
        0xA6,
        data=encode_tlv(0x91, own) + b"".join(encode_tlv(o.tag, o.value) for o in rest),
    )
    assert key.value != own
    attacker = PhoneCardSession(
        MemoryTransport(VirtualCard(s.card.data, random=FixedRandom(7))),
        password=CAN("123456"),
        random=FixedRandom(8),
    )
    attacker.open()
    edited = Commands(batch.batch, (Step(swapped.to_bytes(), wrap=True), batch.steps[1]))
    with pytest.raises(PhoneSessionFailed) as raised:
        s.session.receive(encode_message(attacker.run_steps(edited)))
    assert raised.value.failure is PhoneFailure.CHIP_AUTHENTICATION_FAILED
    s.assert_dead(PhoneFailure.CHIP_AUTHENTICATION_FAILED)


def test_a_clone_of_the_ca_dh_card_fails_chip_authentication(scene: SceneFactory) -> None:
    s = scene(PROFILE)
    clone = MemoryTransport(VirtualCard(clone_card(s.card.data), random=FixedRandom(3)))
    with pytest.raises(PhoneSessionFailed) as raised:
        drive(s.session, s.phone(PhoneMode.SPLIT, transport=clone))
    assert raised.value.failure is PhoneFailure.CHIP_AUTHENTICATION_FAILED
    s.assert_dead(PhoneFailure.CHIP_AUTHENTICATION_FAILED)

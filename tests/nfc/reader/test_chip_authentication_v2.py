"""The kiosk reader against virtual cards issued with Chip Authentication version 2.

DG14's ChipAuthenticationInfo says ``version 2``; the reader then runs MSE:Set AT +
GENERAL AUTHENTICATE, checks the chip's token (BSI TR-03110-3 A.2.4.2) and reads
on under keys from ``K || r_PICC``. A chip that cannot compute the token (a clone
with a key of its own) leaves a FAILED ``chip_authentication`` check, the same
evidence a CA v1 clone leaves; the verifier then refuses it under a CA policy.
"""

from __future__ import annotations

import functools

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from macnss_auth.nfc.card import CardData, IssuedCard, VirtualCard, clone_card, issue_card
from macnss_auth.nfc.chip_auth import DhPrivateKey, DhPublicKey
from macnss_auth.nfc.lds import parse_dg14
from macnss_auth.nfc.mrz import CAN
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.reader import DocumentRead, DocumentReader
from macnss_auth.nfc.securityinfos import ChipAuthenticationInfo
from macnss_auth.nfc.verify import (
    CheckStatus,
    ChipAuthenticity,
    DocumentVerification,
    VerificationPolicy,
)
from macnss_auth.testing import FixedClock, FixedRandom

from ..card.paths import serve
from .conftest import CAN_VALUE, NOW, mrz_of

CHALLENGE = bytes.fromhex("1122334455667788")
CA_POLICY = VerificationPolicy(chip_authenticity=ChipAuthenticity.CHIP_AUTHENTICATION)


@functools.cache
def issued_v2(profile: str) -> IssuedCard:
    return issue_card(
        profile, clock=FixedClock.at(NOW), can=CAN_VALUE, chip_authentication_version=2
    )


class Counting:
    """The card in process, counting the CA commands the reader sends."""

    def __init__(self, transport: Transport) -> None:
        self.inner = transport
        self.instructions: list[tuple[int, int]] = []

    def transceive(self, command: bytes) -> bytes:
        self.instructions.append((command[1], command[3]))
        return self.inner.transceive(command)


def read(profile: str, data: CardData, path: str = "memory") -> tuple[DocumentRead, Counting]:
    password = mrz_of(issued_v2(profile)) if profile == "passport-bac" else CAN(CAN_VALUE)
    with serve(path, VirtualCard(data, random=FixedRandom(3))) as transport:
        counting = Counting(transport)
        reader = DocumentReader(counting, random=FixedRandom(4))
        return reader.read(password, active_auth_challenge=CHALLENGE), counting


def verify(profile: str, document: DocumentRead) -> DocumentVerification:
    store = TrustStore()
    store.load_master_list(issued_v2(profile).master_list, trust_as_is=True)
    return document.verify(store, clock=FixedClock.at(NOW), policy=CA_POLICY)


@pytest.mark.parametrize(
    ("profile", "path"),
    [("cnie", "memory"), ("cnie", "udp"), ("passport-bac", "memory"), ("ca-dh", "memory")],
)
def test_the_kiosk_reader_proves_a_ca_v2_chip(profile: str, path: str) -> None:
    """ECDH AES-128, ECDH 3DES (BAC passport) and DH 3DES chips, each CA v2."""
    card = issued_v2(profile)
    (info,) = [
        i
        for i in parse_dg14(card_file(card, "DG14")).infos
        if isinstance(i, ChipAuthenticationInfo)
    ]
    assert info.version == 2
    document, link = read(profile, card.data, path)
    assert document.chip_authentication == "CA"
    assert document.chip_authentication_proved
    # CA v2 is MSE:Set AT (22 .. A4) + GENERAL AUTHENTICATE (86), never Set KAT (22 .. A6).
    assert (0x22, 0xA6) not in link.instructions
    assert (0x86, 0x00) in link.instructions
    result = verify(profile, document)
    assert result.genuine, result.verdict_reason
    assert result.status("chip_authentication") is CheckStatus.PASSED
    # Every data group came through the channel keyed with the chip's nonce.
    assert document.data_groups[1] == card_file(card, "DG1")


def card_file(card: IssuedCard, name: str) -> bytes:
    return next(f.data for f in card.data.files.files().values() if f.name == name)


def with_another_ca_key(data: CardData) -> CardData:
    """The same signed files; a chip that holds a CA key of its own (a clone's best try)."""
    key = data.secrets.ca_key
    other: object
    if isinstance(key, DhPrivateKey):
        group = key.public
        x = key.x + 12345
        other = DhPrivateKey(DhPublicKey(group.p, group.g, pow(group.g, x, group.p), group.q), x)
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        other = ec.generate_private_key(key.curve)
    return attrs.evolve(data, secrets=attrs.evolve(data.secrets, ca_key=other))


@pytest.mark.parametrize("profile", ["cnie", "ca-dh"])
def test_a_forged_token_leaves_a_failed_check_and_no_proof(profile: str) -> None:
    document, _ = read(profile, with_another_ca_key(issued_v2(profile).data))
    assert not document.chip_authentication_proved
    step = next(s for s in document.steps if s.name == "chip_authentication")
    assert step.status is CheckStatus.FAILED
    assert "token is wrong" in step.reason
    # The read went on (the session was opened again) and every file arrived.
    assert document.data_groups[1] == card_file(issued_v2(profile), "DG1")
    result = verify(profile, document)
    assert not result.genuine
    assert result.status("chip_authentication") is CheckStatus.FAILED


def test_a_clone_of_a_ca_v2_card_refuses_and_is_not_genuine() -> None:
    document, _ = read("cnie", clone_card(issued_v2("cnie").data))
    step = next(s for s in document.steps if s.name == "chip_authentication")
    assert (step.status, step.status_word) == (CheckStatus.FAILED, 0x6A88)
    assert not verify("cnie", document).genuine

"""Every profile, over every serving path, driven by the library's terminal-side protocols.

The scenario is what a kiosk does: open a session (BAC or PACE), read every
data group listed in EF.COM and EF.SOD, run Chip Authentication and Active
Authentication where the card has them, and verify the document with the
library's verifier against the card's trust anchors.
"""

from __future__ import annotations

import pytest

from macnss_auth.nfc.apdu import CommandAPDU
from macnss_auth.nfc.card import IssuedCard, PasswordKind, VirtualCard, clone_card, forge_card
from macnss_auth.nfc.lds import parse_card_security, parse_com, parse_dg14
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.verify import (
    ChipAuthenticationOutcome,
    ChipAuthenticity,
    DocumentVerification,
    VerificationPolicy,
    verify_document,
)
from macnss_auth.testing import FixedClock, FixedRandom

from .conftest import NOW, issued
from .paths import serve
from .terminal import chip_authenticate, open_session, protected, read_file

PROFILES = ["passport-bac", "cnie", "pace-im", "pace-cam", "legacy-dh"]


def read_and_verify(
    transport: Transport,
    card: IssuedCard,
    *,
    password: PasswordKind = PasswordKind.MRZ,
    seed: int = 1,
) -> tuple[DocumentVerification, str]:
    """The kiosk scenario; returns the verifier's result and how the session was opened."""
    data = card.data
    random = FixedRandom(seed)
    session = open_session(transport, data, random=random, password=password, can="123456")
    com = parse_com(read_file(transport, session.channel, 0x011E))
    groups = {n: read_file(transport, session.channel, 0x0100 + n) for n in com.data_groups}
    sod = read_file(transport, session.channel, 0x011D)
    outcome = None
    if session.pace is not None and session.pace.chip_authentication_data is not None:
        # PACE-CAM: the chip proved its static key (from the signed EF.CardSecurity) in PACE.
        answer = protected(
            transport, session.channel, CommandAPDU(0x00, 0xA4, 0x00, 0x0C, data=b"\x3f\x00")
        )
        answer.raise_for_status()
        security = parse_card_security(read_file(transport, session.channel, 0x011D))
        key = security.security_infos.chip_authentication_key()
        assert key is not None
        session.pace.verify_chip_authentication(key)
        answer = protected(
            transport,
            session.channel,
            CommandAPDU(0x00, 0xA4, 0x04, 0x0C, data=bytes.fromhex("A0000002471001")),
        )
        answer.raise_for_status()
    if 14 in groups and parse_dg14(groups[14]).chip_authentication:
        try:
            chip_authenticate(transport, session, groups[14], random=random)
            # The new channel works: read DG1 again under the CA keys.
            assert read_file(transport, session.channel, 0x0101) == groups[1]
            completed = True
        except Exception:  # noqa: BLE001 (a clone fails CA in several ways; all mean "not completed")
            completed = False
        spki = parse_dg14(groups[14]).chip_authentication_key(1)
        assert spki is not None
        outcome = ChipAuthenticationOutcome(spki.subject_public_key_info, completed, 1)
    challenge = signature = None
    if (15 in groups and outcome is None) or (outcome is not None and not outcome.completed):
        pass
    if 15 in groups and (outcome is None or outcome.completed):
        challenge = random.token_bytes(8)
        answer = protected(
            transport, session.channel, CommandAPDU(0x00, 0x88, 0x00, 0x00, data=challenge, ne=256)
        )
        signature = answer.data if answer.sw == 0x9000 else b""
    store = TrustStore()
    store.load_master_list(card.master_list)
    needs_proof = data.profile.active_authentication or data.profile.chip_authentication
    policy = VerificationPolicy(
        chip_authenticity=ChipAuthenticity.EITHER if needs_proof else ChipAuthenticity.NONE
    )
    result = verify_document(
        groups,
        sod,
        store,
        clock=FixedClock.at(NOW),
        policy=policy,
        aa_challenge=challenge,
        aa_signature=signature,
        chip_authentication=outcome,
    )
    return result, session.method


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_over_every_path_is_genuine(profile: str, path: str) -> None:
    card = issued(profile)
    with serve(path, VirtualCard(card.data, random=FixedRandom(11))) as transport:
        result, method = read_and_verify(transport, card)
    assert result.genuine, result.verdict_reason
    assert method.startswith("BAC" if card.data.profile.pace_protocol is None else "PACE")
    assert {1, 2, 7, 11, 12, 14} <= result.verified_data_groups


def test_cnie_with_the_can(path: str) -> None:
    card = issued("cnie")
    with serve(path, VirtualCard(card.data, random=FixedRandom(12))) as transport:
        result, method = read_and_verify(transport, card, password=PasswordKind.CAN)
    assert result.genuine
    assert method == "PACE+CA"


@pytest.mark.parametrize("profile", ["passport-bac", "cnie"])
def test_a_clone_passes_passive_but_not_chip_authentication(profile: str) -> None:
    card = issued(profile)
    clone = VirtualCard(clone_card(card.data), random=FixedRandom(13))
    with serve("memory", clone) as transport:
        result, _ = read_and_verify(transport, card)
    assert not result.genuine
    assert 1 in result.verified_data_groups  # the copied files are still correctly signed


@pytest.mark.parametrize("profile", ["passport-bac", "cnie"])
def test_a_forgery_fails_passive_authentication(profile: str) -> None:
    card = issued(profile)
    forged = VirtualCard(forge_card(card.data), random=FixedRandom(14))
    with serve("memory", forged) as transport:
        result, _ = read_and_verify(transport, card)
    assert not result.genuine
    assert 1 not in result.verified_data_groups


def test_tap_after_tap_over_udp() -> None:
    card = issued("passport-bac")
    virtual = VirtualCard(card.data, random=FixedRandom(15))
    for seed in (1, 2, 3):
        with serve("udp", virtual) as transport:
            result, _ = read_and_verify(transport, card, seed=seed)
            assert result.genuine

"""The terminal against the virtual card, for every PACE suite and status word.

The card here is the library's own (:mod:`macnss_auth.nfc.card`): these tests
show that the two roles compose for each mapping, cipher and group, and how
the terminal reacts to each answer a chip may give. They are not evidence that
either side computes what the standard says: both use
:mod:`macnss_auth.nfc.pace.primitives`. That evidence is independent of the
library: the ICAO 9303-11 worked examples and a recorded chip
(``published.py``, ``test_pace_vectors.py``) and OpenPACE
(``test_pace_openpace.py``).
"""

from __future__ import annotations

import functools

import attrs
import pytest

from macnss_auth.clock import SystemRandom
from macnss_auth.errors import (
    AccessDenied,
    ConfigurationError,
    DocumentNotGenuine,
    LocalProtocolError,
    RemoteProtocolError,
    UnsupportedAlgorithm,
)
from macnss_auth.nfc import domain_params as dp
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.card import PROFILES, CardData, VirtualCard, issue_card
from macnss_auth.nfc.ec import Curve
from macnss_auth.nfc.lds import parse_card_security
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pace import (
    PaceResult,
    PaceState,
    PaceTerminal,
    base_domain,
    generate_private_key,
    public_key,
    select_pace_info,
)
from macnss_auth.nfc.protocol import run
from macnss_auth.nfc.securityinfos import Mapping, PaceInfo, PaceOid
from macnss_auth.nfc.serve.memory import MemoryTransport
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.testing.pki import TestPki

CLOCK = FixedClock.at(1_800_000_000.0)
LDS1_AID = bytes.fromhex("A0000002471001")
CAN_DIGITS = "123456"
MRZ = MrzKey("L898902C3", "740812", "120415")  # for the checks that never reach a card

# brainpoolP256r1, P-384, brainpoolP384r1 and the 2048/256 MODP group (ids 13, 15, 16, 2).
_ECDH_IDS = (13, 15, 16)
_DH_IDS = (2,)
_SUITES = {
    Mapping.GENERIC: (
        (PaceOid.ECDH_GM_3DES_CBC_CBC, PaceOid.DH_GM_3DES_CBC_CBC),
        (PaceOid.ECDH_GM_AES_CBC_CMAC_128, PaceOid.DH_GM_AES_CBC_CMAC_128),
        (PaceOid.ECDH_GM_AES_CBC_CMAC_256, PaceOid.DH_GM_AES_CBC_CMAC_256),
    ),
    Mapping.INTEGRATED: (
        (PaceOid.ECDH_IM_3DES_CBC_CBC, PaceOid.DH_IM_3DES_CBC_CBC),
        (PaceOid.ECDH_IM_AES_CBC_CMAC_128, PaceOid.DH_IM_AES_CBC_CMAC_128),
        (PaceOid.ECDH_IM_AES_CBC_CMAC_256, PaceOid.DH_IM_AES_CBC_CMAC_256),
    ),
}


def _matrix() -> list[PaceInfo]:
    infos = []
    for suites in _SUITES.values():
        for ecdh, dh in suites:
            infos += [PaceInfo(ecdh, 2, i) for i in _ECDH_IDS]
            infos += [PaceInfo(dh, 2, i) for i in _DH_IDS]
    for oid in (PaceOid.ECDH_CAM_AES_CBC_CMAC_128, PaceOid.ECDH_CAM_AES_CBC_CMAC_256):
        infos += [PaceInfo(oid, 2, i) for i in _ECDH_IDS]
    return infos


@functools.cache
def _pki() -> TestPki:
    return TestPki.create(now=CLOCK.now(), key_type="ec")


def _data(info: PaceInfo, retries: int | None = None) -> CardData:
    """A card offering ``info`` (one per suite for the run: issuing is the slow part)."""
    return _issue(info, retries)


@functools.cache
def _issue(info: PaceInfo, retries: int | None) -> CardData:
    cam = info.protocol.mapping is Mapping.CHIP_AUTHENTICATION
    profile = attrs.evolve(
        PROFILES["pace-cam" if cam else "pace-im"],
        name=f"pace-{info.protocol.name}-{info.parameter_id}",
        pace_protocol=info.protocol,
        pace_parameter_id=info.parameter_id,
        password_retries=retries,
        extended_length=True,  # 2048-bit DH values do not fit short APDUs
    )
    return issue_card(profile, clock=CLOCK, can=CAN_DIGITS, pki=_pki()).data


def _mrz(data: CardData) -> MrzKey:
    info = data.secrets.mrz_information
    return MrzKey(info[0:9], info[10:16], info[17:23])


def _card(info: PaceInfo, seed: int, *, retries: int | None = None) -> MemoryTransport:
    random = FixedRandom(b"card" + bytes([seed]))
    return MemoryTransport(VirtualCard(_data(info, retries), random=random))


def _password(info: PaceInfo) -> MrzKey:
    return _mrz(_data(info))


def _session_works(result: PaceResult, card: MemoryTransport) -> None:
    """Both sides hold the same keys: a command under secure messaging gets a verified 9000."""
    channel = result.secure_channel()
    select = CommandAPDU(0x00, 0xA4, 0x04, 0x0C, data=LDS1_AID)
    answer: ResponseAPDU = channel.unprotect(card.transceive(channel.protect(select)))
    assert answer.sw == 0x9000


@pytest.mark.parametrize("info", _matrix(), ids=lambda i: f"{i.protocol.name}-{i.parameter_id}")
def test_terminal_and_card_agree(info: PaceInfo) -> None:
    card = _card(info, 1)
    terminal = PaceTerminal(_password(info), info, random=FixedRandom(b"terminal"))
    result = run(terminal, card)
    _session_works(result, card)
    assert result.protocol is info.protocol
    assert result.keys.key_bits == info.protocol.key_bits
    assert terminal.state is PaceState.DONE
    if info.protocol.mapping is Mapping.CHIP_AUTHENTICATION:
        curve = dp.standardized(info.parameter_id or 0)
        assert isinstance(curve, Curve)
        security = _data(info).files.files()["MF/EF.CardSecurity"].data
        key = parse_card_security(security).security_infos.chip_authentication_key()
        assert key is not None
        result.verify_chip_authentication(key)
        # Another chip's static key does not verify.
        other = public_key(base_domain(curve), 0x1234567890ABCDEF)
        with pytest.raises(DocumentNotGenuine):
            result.verify_chip_authentication(other)
    else:
        with pytest.raises(ConfigurationError):
            result.verify_chip_authentication(b"\x04")


@pytest.mark.parametrize(
    "info",
    [
        PaceInfo(oid, 2, i)
        for oid in (PaceOid.ECDH_GM_AES_CBC_CMAC_128, PaceOid.ECDH_CAM_AES_CBC_CMAC_256)
        for i in (13, 16, 17)
    ],
    ids=lambda i: f"{i.protocol.name}-{i.parameter_id}",
)
def test_system_random_terminal_and_card_agree(info: PaceInfo) -> None:
    # SystemRandom keys take the x-only mapping on these curves (the key sent may be
    # (n - x)*G'): the card must still agree on K, and CAM must still verify.
    for seed in (1, 2, 3):
        card = _card(info, seed)
        result = run(PaceTerminal(_password(info), info, random=SystemRandom()), card)
        _session_works(result, card)
        assert result.terminal_public_key[-1] % 2 == 0
        if info.protocol.mapping is Mapping.CHIP_AUTHENTICATION:
            security = _data(info).files.files()["MF/EF.CardSecurity"].data
            key = parse_card_security(security).security_infos.chip_authentication_key()
            assert key is not None
            result.verify_chip_authentication(key)


def test_can_password() -> None:
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    card = _card(info, 1)
    result = run(PaceTerminal(CAN(CAN_DIGITS), info, random=FixedRandom(2)), card)
    assert result.password_reference == 2
    _session_works(result, card)


def test_dh_many_runs_with_leading_zeros() -> None:
    # About one value in 256 starts with a zero byte; a wrong fixed-length
    # encoding fails those runs only. The runs are fixed (FixedRandom on both
    # sides) and include values with a leading zero octet (asserted below).
    info = PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_128, 2, 0)
    password = _password(info)
    zeros = 0
    for seed in range(300):
        random = FixedRandom(b"c" + seed.to_bytes(2, "big"))
        card = MemoryTransport(VirtualCard(_data(info), random=random))
        result = run(PaceTerminal(password, info, random=FixedRandom(seed)), card)
        _session_works(result, card)
        # Unsigned integers on the fewest octets (TR-03110-3 D.2.1.1), never longer than p.
        assert 0 < len(result.chip_public_key) <= 128
        assert 0 < len(result.terminal_public_key) <= 128
        assert result.terminal_public_key[0] != 0
        zeros += len(result.terminal_public_key) < 128
        zeros += len(result.chip_public_key) < 128
    assert zeros > 0


@pytest.mark.parametrize("parameter_id", [0, 1])
def test_dh_other_groups_many_runs(parameter_id: int) -> None:
    info = PaceInfo(PaceOid.DH_IM_AES_CBC_CMAC_128, 2, parameter_id)
    for seed in range(20 if parameter_id == 0 else 5):
        card = _card(info, seed)
        result = run(PaceTerminal(_password(info), info, random=FixedRandom(seed)), card)
        _session_works(result, card)


def test_every_standardized_curve_runs_generic_mapping() -> None:
    for parameter_id in (8, 9, 10, 11, 12, 14, 17, 18):
        info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_192, 2, parameter_id)
        card = _card(info, parameter_id)
        result = run(PaceTerminal(_password(info), info, random=FixedRandom(7)), card)
        _session_works(result, card)


def test_integrated_mapping_refuses_p224() -> None:
    info = PaceInfo(PaceOid.ECDH_IM_AES_CBC_CMAC_128, 2, 10)
    terminal = PaceTerminal(_password(info), info, random=FixedRandom(1))
    with pytest.raises(UnsupportedAlgorithm):
        run(terminal, _card(info, 2))
    assert terminal.failed


def test_wrong_password_is_access_denied_with_remaining_attempts() -> None:
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    # The card counts the CAN's tries (as a card with a retry counter would; MRZ tries are not).
    card = _card(info, 3, retries=3)
    right, wrong = CAN(CAN_DIGITS), CAN("654321")
    terminal = PaceTerminal(wrong, info, random=FixedRandom(4))
    with pytest.raises(AccessDenied) as caught:
        run(terminal, card)
    assert caught.value.status_word == 0x63C2
    assert caught.value.remaining_attempts == 2
    assert terminal.failed
    with pytest.raises(LocalProtocolError):
        terminal.next_command()
    # The right password still works and fills the counter; once the tries are
    # used up, the card refuses even the right one at MSE:Set AT.
    _session_works(run(PaceTerminal(right, info, random=FixedRandom(5)), card), card)
    for remaining in (2, 1, 0):
        card.tap()  # a new PACE starts outside the session the last one opened
        with pytest.raises(AccessDenied) as again:
            run(PaceTerminal(wrong, info, random=FixedRandom(6)), card)
        assert again.value.remaining_attempts == remaining
    with pytest.raises(AccessDenied) as blocked:
        run(PaceTerminal(right, info, random=FixedRandom(7)), card)
    assert blocked.value.remaining_attempts == 0
    assert blocked.value.status_word == 0x6983


def _drive_to(info: PaceInfo, responses: int) -> tuple[PaceTerminal, MemoryTransport]:
    card = _card(info, 8)
    terminal = PaceTerminal(_password(info), info, random=FixedRandom(9))
    for _ in range(responses):
        terminal.receive_response(card.transceive(terminal.next_command()))
    return terminal, card


@pytest.mark.parametrize(
    ("status", "error", "remaining"),
    [
        (b"\x63\x00", AccessDenied, None),
        (b"\x63\xc1", AccessDenied, 1),
        (b"\x69\x83", AccessDenied, 0),
        (b"\x6a\x80", RemoteProtocolError, None),
        (b"\x69\x85", RemoteProtocolError, None),
    ],
)
def test_status_words_of_general_authenticate(
    status: bytes, error: type[Exception], remaining: int | None
) -> None:
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    for step in range(1, 5):
        terminal, _ = _drive_to(info, step)
        terminal.next_command()
        with pytest.raises(error) as caught:
            terminal.receive_response(status)
        assert getattr(caught.value, "status_word", None) == int.from_bytes(status, "big")
        if remaining is not None:
            assert getattr(caught.value, "remaining_attempts", None) == remaining
        assert terminal.failed


def test_mse_status_words() -> None:
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    terminal = PaceTerminal(MRZ, info, random=FixedRandom(1))
    terminal.next_command()
    with pytest.raises(RemoteProtocolError) as caught:
        terminal.receive_response(b"\x6a\x88")
    assert caught.value.status_word == 0x6A88
    # 63CX (X > 0) on MSE:Set AT is a warning: go on, and report X in the result.
    card = _card(info, 2)
    terminal = PaceTerminal(_password(info), info, random=FixedRandom(3))
    card.transceive(terminal.next_command())
    terminal.receive_response(b"\x63\xc2")
    result = run(terminal, card)
    assert result.remaining_attempts == 2


def test_wrong_chip_token_is_remote_error() -> None:
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    terminal, card = _drive_to(info, 4)
    response = card.transceive(terminal.next_command())
    tampered = response[:-3] + bytes([response[-3] ^ 1]) + response[-2:]
    with pytest.raises(RemoteProtocolError) as caught:
        terminal.receive_response(tampered)
    assert caught.value.status_word == 0x9000
    assert terminal.failed


def test_commands_have_the_chaining_bits() -> None:
    info = PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_256, 2, 2)
    card = _card(info, 1)
    terminal = PaceTerminal(_password(info), info, random=FixedRandom(2))
    commands = []
    while not terminal.finished:
        command = terminal.next_command()
        commands.append(CommandAPDU.from_bytes(command))
        terminal.receive_response(card.transceive(command))
    assert [c.cla for c in commands] == [0x00, 0x10, 0x10, 0x10, 0x00]
    assert commands[0].data.endswith(bytes.fromhex("840102"))
    # 2048-bit public values need extended length and a large Ne.
    assert commands[2].is_extended
    assert commands[2].ne == 65536


def test_out_of_order_calls_are_local_errors() -> None:
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    terminal = PaceTerminal(MRZ, info, random=FixedRandom(1))
    with pytest.raises(LocalProtocolError):
        terminal.receive_response(b"\x90\x00")
    assert terminal.failed
    with pytest.raises(LocalProtocolError):
        terminal.next_command()
    terminal = PaceTerminal(MRZ, info, random=FixedRandom(1))
    terminal.next_command()
    with pytest.raises(LocalProtocolError):
        terminal.next_command()
    with pytest.raises(LocalProtocolError):
        _ = terminal.result


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        PaceTerminal(MRZ, PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2), random=FixedRandom(1))
    with pytest.raises(ConfigurationError):
        PaceTerminal(MRZ, PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_128, 2, 13), random=FixedRandom(1))
    with pytest.raises(UnsupportedAlgorithm):
        PaceTerminal(MRZ, PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 5), random=FixedRandom(1))
    with pytest.raises(TypeError):
        PaceTerminal(
            b"123456",  # type: ignore[arg-type]
            PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13),
            random=FixedRandom(1),
        )
    with pytest.raises(ConfigurationError):
        select_pace_info([PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 4)])


def test_select_prefers_cam_then_ecdh_then_longer_keys() -> None:
    infos = [
        PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_256, 2, 2),
        PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13),
        PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_256, 2, 13),
        PaceInfo(PaceOid.ECDH_IM_AES_CBC_CMAC_256, 2, 13),
    ]
    assert select_pace_info(infos).protocol is PaceOid.ECDH_GM_AES_CBC_CMAC_256
    cam = PaceInfo(PaceOid.ECDH_CAM_AES_CBC_CMAC_128, 2, 13)
    assert select_pace_info([*infos, cam]) == cam


def test_echoed_keys_are_refused() -> None:
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    terminal, _ = _drive_to(info, 2)
    command = CommandAPDU.from_bytes(terminal.next_command())
    echoed = bytes([0x7C, len(command.data) - 2, 0x82]) + command.data[3:] + b"\x90\x00"
    with pytest.raises(RemoteProtocolError):
        terminal.receive_response(echoed)


def test_private_keys_are_in_range() -> None:
    domain = base_domain(dp.SECP256R1)
    random = FixedRandom(5)
    for _ in range(50):
        assert 0 < generate_private_key(domain, random) < domain.order

"""The terminal against a card-side responder built from the pure functions."""

from __future__ import annotations

import pytest

from macnss_auth.errors import (
    AccessDenied,
    ConfigurationError,
    DocumentNotGenuine,
    LocalProtocolError,
    RemoteProtocolError,
    UnsupportedAlgorithm,
)
from macnss_auth.nfc import domain_params as dp
from macnss_auth.nfc.apdu import CommandAPDU
from macnss_auth.nfc.ec import Curve
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pace import (
    PaceState,
    PaceTerminal,
    base_domain,
    generate_private_key,
    public_key,
    select_pace_info,
)
from macnss_auth.nfc.protocol import run
from macnss_auth.nfc.securityinfos import (
    ChipAuthenticationPublicKeyInfo,
    Mapping,
    PaceInfo,
    PaceOid,
    PublicKeyOid,
    ec_subject_public_key_info,
)
from macnss_auth.testing import FixedRandom

from .responder import PaceResponder

MRZ = MrzKey("L898902C3", "740812", "120415")

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


def _card(info: PaceInfo, seed: int) -> PaceResponder:
    static = 0x1234567890ABCDEF1234567890ABCDEF + seed
    return PaceResponder(
        MRZ, info, random=FixedRandom(b"card" + bytes([seed])), static_private_key=static
    )


@pytest.mark.parametrize("info", _matrix(), ids=lambda i: f"{i.protocol.name}-{i.parameter_id}")
def test_terminal_and_card_agree(info: PaceInfo) -> None:
    card = _card(info, 1)
    terminal = PaceTerminal(MRZ, info, random=FixedRandom(b"terminal"))
    result = run(terminal, card)
    assert card.keys == result.keys
    assert result.protocol is info.protocol
    assert result.keys.key_bits == info.protocol.key_bits
    assert terminal.state is PaceState.DONE
    if info.protocol.mapping is Mapping.CHIP_AUTHENTICATION:
        curve = dp.standardized(info.parameter_id or 0)
        assert isinstance(curve, Curve)
        assert card.static_private_key is not None
        static_public = public_key(base_domain(curve), card.static_private_key)
        spki = ec_subject_public_key_info(curve, static_public)
        key_info = ChipAuthenticationPublicKeyInfo(
            PublicKeyOid.ECDH, spki, None, curve, static_public
        )
        result.verify_chip_authentication(key_info)
        # Another chip's static key does not verify.
        other = public_key(base_domain(curve), card.static_private_key + 1)
        with pytest.raises(DocumentNotGenuine):
            result.verify_chip_authentication(other)
    else:
        with pytest.raises(ConfigurationError):
            result.verify_chip_authentication(b"\x04")


def test_can_password() -> None:
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    can = CAN("123456")
    card = PaceResponder(can, info, random=FixedRandom(1))
    result = run(PaceTerminal(can, info, random=FixedRandom(2)), card)
    assert result.password_reference == 2
    assert card.keys == result.keys


def test_dh_many_runs_with_leading_zeros() -> None:
    # About one value in 256 starts with a zero byte; a wrong fixed-length
    # encoding fails those runs only. 300 runs x 5 values: zeros do occur.
    info = PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_128, 2, 0)
    zeros = 0
    for seed in range(300):
        card = PaceResponder(
            MRZ,
            info,
            random=FixedRandom(b"c" + seed.to_bytes(2, "big")),
            strip_leading_zeros=seed % 2 == 1,
        )
        result = run(PaceTerminal(MRZ, info, random=FixedRandom(seed)), card)
        assert result.keys == card.keys
        # Unsigned integers on the fewest octets (TR-03110-3 D.2.1.1), never longer than p.
        assert 0 < len(result.chip_public_key) <= 128
        assert 0 < len(result.terminal_public_key) <= 128
        assert result.terminal_public_key[0] != 0
        zeros += len(result.terminal_public_key) < 128
        zeros += sum(1 for value in card.shared_secrets if value[0] == 0)
    assert zeros > 0


@pytest.mark.parametrize("parameter_id", [0, 1])
def test_dh_other_groups_many_runs(parameter_id: int) -> None:
    info = PaceInfo(PaceOid.DH_IM_AES_CBC_CMAC_128, 2, parameter_id)
    for seed in range(20 if parameter_id == 0 else 5):
        card = PaceResponder(MRZ, info, random=FixedRandom(seed + 1000))
        assert run(PaceTerminal(MRZ, info, random=FixedRandom(seed)), card).keys == card.keys


def test_every_standardized_curve_runs_generic_mapping() -> None:
    for parameter_id in (8, 9, 10, 11, 12, 14, 17, 18):
        info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_192, 2, parameter_id)
        card = PaceResponder(MRZ, info, random=FixedRandom(parameter_id))
        assert run(PaceTerminal(MRZ, info, random=FixedRandom(7)), card).keys == card.keys


def test_integrated_mapping_refuses_p224() -> None:
    info = PaceInfo(PaceOid.ECDH_IM_AES_CBC_CMAC_128, 2, 10)
    terminal = PaceTerminal(MRZ, info, random=FixedRandom(1))
    card = PaceResponder(MRZ, info, random=FixedRandom(2))
    with pytest.raises(UnsupportedAlgorithm):
        run(terminal, card)
    assert terminal.failed


def test_wrong_password_is_access_denied_with_remaining_attempts() -> None:
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    card = PaceResponder(MRZ, info, random=FixedRandom(3), retries=3)
    wrong = MrzKey("L898902C3", "740812", "120416")
    terminal = PaceTerminal(wrong, info, random=FixedRandom(4))
    with pytest.raises(AccessDenied) as caught:
        run(terminal, card)
    assert caught.value.status_word == 0x63C2
    assert caught.value.remaining_attempts == 2
    assert terminal.failed
    with pytest.raises(LocalProtocolError):
        terminal.next_command()
    # The right password still works; then a blocked counter is refused at once.
    assert run(PaceTerminal(MRZ, info, random=FixedRandom(5)), card).keys == card.keys
    card.retries = 0
    with pytest.raises(AccessDenied) as blocked:
        run(PaceTerminal(MRZ, info, random=FixedRandom(6)), card)
    assert blocked.value.remaining_attempts == 0
    assert blocked.value.status_word == 0x63C0


def _drive_to(info: PaceInfo, responses: int) -> tuple[PaceTerminal, PaceResponder]:
    card = PaceResponder(MRZ, info, random=FixedRandom(8))
    terminal = PaceTerminal(MRZ, info, random=FixedRandom(9))
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
    card = PaceResponder(MRZ, info, random=FixedRandom(2))
    terminal = PaceTerminal(MRZ, info, random=FixedRandom(3))
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
    card = PaceResponder(MRZ, info, random=FixedRandom(1))
    terminal = PaceTerminal(MRZ, info, random=FixedRandom(2))
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

"""The chip's file system, dispatcher and access control, through public calls only."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.errors import AccessDenied, SecureMessagingError
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.bac import BacProtocol
from macnss_auth.nfc.card import (
    PROFILES,
    Access,
    Application,
    CardData,
    CardProfile,
    ChipSecrets,
    DocumentKind,
    ElementaryFile,
    FileSystem,
    PasswordKind,
    VirtualCard,
    clone_card,
    issue_card,
)
from macnss_auth.nfc.card.filesystem import EF_CARD_ACCESS, EF_COM, LDS1_AID, data_group_file
from macnss_auth.nfc.mrz import MrzKey
from macnss_auth.nfc.protocol import run
from macnss_auth.nfc.securityinfos import PaceOid
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.nfc.sm import SecureChannel
from macnss_auth.testing import FixedClock, FixedRandom

from .conftest import NOW, issued
from .terminal import open_session, plain, protected, read_file

MRZ_INFO = "L898902C<369080619406236"
MRZ = MrzKey("L898902C", "690806", "940623")
EF_COM_DATA = bytes.fromhex("60145F0104303130365F36063034303030305C026175")
BIG = bytes(range(256)) * 2


def _card(*, extended: bool = False) -> VirtualCard:
    files = FileSystem(
        (ElementaryFile("EF.CardAccess", EF_CARD_ACCESS, 0x1C, BIG, Access.ALWAYS),),
        (
            Application(
                LDS1_AID,
                (
                    ElementaryFile("EF.COM", EF_COM, 0x1E, EF_COM_DATA),
                    data_group_file(1, b"\x61\x03\x5f\x1f\x00"),
                    data_group_file(3, b"\x63\x00"),
                ),
            ),
        ),
    )
    profile = CardProfile("test", DocumentKind.TD3, bac=True, extended_length=extended)
    return VirtualCard(CardData(profile, files, ChipSecrets(MRZ_INFO)), random=FixedRandom(9))


def _sw(response: bytes) -> int:
    return int.from_bytes(response[-2:], "big")


def _bac(card: VirtualCard) -> tuple[MemoryTransport, SecureChannel]:
    transport = MemoryTransport(card)
    assert _sw(transport.transceive(bytes.fromhex("00A4040C07A0000002471001"))) == 0x9000
    channel = run(BacProtocol(MRZ, random=FixedRandom(1)), transport).channel
    return transport, channel


@pytest.mark.parametrize(
    ("command", "status"),
    [
        ("00A4040C07A0000002479999", 0x6A82),  # unknown AID
        ("00A4020C020105", 0x6A82),  # no such EF at the MF
        ("00A4040C", 0x6A82),  # SELECT by name without a name
        ("00A4020C03011E00", 0x6700),  # file id of three bytes
        ("00A4090C02011E", 0x6A86),  # unsupported P1
        ("00B0000010", 0x6985),  # READ BINARY without a current EF
        ("00C0000000", 0x6D00),  # unknown INS
        ("80A4040C07A0000002471001", 0x6E00),  # proprietary class
        ("0CB0000000", 0x6988),  # protected command without a session
        ("00B0", 0x6700),  # truncated header
        ("00A4040C09A000000247", 0x6700),  # Lc larger than the data
        ("0084000000", 0x9000),  # GET CHALLENGE, Le=256
        ("0084000100", 0x6A86),  # GET CHALLENGE with P2
        ("0084000005", 0x9000),  # GET CHALLENGE with another length
        ("00820000", 0x6700),  # EXTERNAL AUTHENTICATE without data
        (
            "008200002800112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF0011223344556628",
            0x6985,
        ),
        ("00880000080011223344556677", 0x6D00),  # no AA on this card
        ("002241A6029100", 0x6982),  # CA outside a session
        ("0022C1A40380010B", 0x6A81),  # PACE on a BAC-only chip
        ("0086000002 7C00".replace(" ", ""), 0x6985),  # GA without MSE
    ],
)
def test_status_words_of_a_real_chip(command: str, status: int) -> None:
    assert _sw(_card().process(bytes.fromhex(command))) == status


def test_read_binary_offset_sfi_end_of_file_and_wrong_offset() -> None:
    card = _card()
    assert _sw(card.process(bytes.fromhex("00A4020C02011C"))) == 0x9000
    answer = card.process(bytes.fromhex("00B0010010"))
    assert answer == BIG[256:272] + b"\x90\x00"
    # Le beyond the end: the rest of the file and 6282.
    answer = card.process(bytes.fromhex("00B001F020"))
    assert answer == BIG[0x1F0:] + b"\x62\x82"
    # An offset beyond the file: 6B00.
    assert _sw(card.process(bytes.fromhex("00B0040001"))) == 0x6B00
    # Short file identifier 1C, offset 5.
    assert card.process(bytes.fromhex("00B09C0504")) == BIG[5:9] + b"\x90\x00"
    # Without Le there is nothing to read: 6700.
    assert _sw(card.process(bytes.fromhex("00B00000"))) == 0x6700
    # SELECT with FCP: file size 512, file id 011C.
    fcp = card.process(bytes.fromhex("00A4020002011C00"))
    assert fcp[:-2] == bytes.fromhex("62 0B 80 02 0200 82 01 01 83 02 011C".replace(" ", ""))


def test_read_binary_odd_ins_with_offset_data_object() -> None:
    card = _card()
    # B1 with the short file identifier 1C in P1-P2 and offset 300 in DO54; DO53 answers.
    answer = card.process(bytes.fromhex("00B1001C0454020130" + "10"))
    assert answer[:2] == b"\x53\x0e"
    assert answer[2:-2] == BIG[0x130 : 0x130 + 14]
    assert _sw(answer) == 0x9000
    assert _sw(card.process(bytes.fromhex("00B1001C025402" + "10"))) == 0x6A80


def test_lds_files_need_secure_messaging() -> None:
    card = _card()
    assert _sw(card.process(bytes.fromhex("00A4040C07A0000002471001"))) == 0x9000
    assert _sw(card.process(bytes.fromhex("00A4020C02011E"))) == 0x9000
    assert _sw(card.process(bytes.fromhex("00B0000004"))) == 0x6982
    assert _sw(card.process(bytes.fromhex("00B0810004"))) == 0x6982  # DG1 by SFI


def test_bac_then_protected_reads_and_never_readable_dg3() -> None:
    card = _card()
    transport, channel = _bac(card)
    assert card.session == "BAC"
    assert read_file(transport, channel, 0x011E) == EF_COM_DATA
    answer = protected(
        transport,
        channel,
        CommandAPDU(0x00, 0xB0, 0x83, 0x00, ne=4),
    )
    assert answer.sw == 0x6982  # DG3 needs Terminal Authentication


def test_plain_command_in_a_session_answers_6982_and_drops_it() -> None:
    card = _card()
    transport, channel = _bac(card)
    assert _sw(transport.transceive(bytes.fromhex("00A4020C02011E"))) == 0x6982
    assert card.session is None
    with pytest.raises(SecureMessagingError):
        # The terminal's channel is now out of step: the card answers 6988 in plain.
        protected(transport, channel, CommandAPDU(0x00, 0xA4, 0x02, 0x0C, data=b"\x01\x1e"))


def test_bad_mac_answers_6988_and_drops_the_session() -> None:
    card = _card()
    transport, channel = _bac(card)
    command = bytearray(channel.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=4)))
    command[-2] ^= 0x01  # inside DO8E
    assert transport.transceive(bytes(command)) == b"\x69\x88"
    assert card.session is None
    assert _sw(transport.transceive(bytes(command))) == 0x6988


def test_wrong_mrz_is_access_denied() -> None:
    card = _card()
    transport = MemoryTransport(card)
    with pytest.raises(AccessDenied) as caught:
        run(BacProtocol(MrzKey("L898902C", "690806", "940624"), random=FixedRandom(1)), transport)
    assert caught.value.status_word == 0x6300
    assert card.session is None


def test_extended_length_only_where_the_profile_allows_it() -> None:
    extended = CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=300, extended=True).to_bytes()
    card = _card()
    card.process(bytes.fromhex("00A4020C02011C"))
    assert _sw(card.process(extended)) == 0x6700
    card = _card(extended=True)
    card.process(bytes.fromhex("00A4020C02011C"))
    assert card.process(extended) == BIG[:300] + b"\x90\x00"


def test_reset_forgets_the_session_and_selection() -> None:
    card = _card()
    _bac(card)
    card.reset()
    assert card.session is None
    assert _sw(card.process(bytes.fromhex("00B0000004"))) == 0x6985


def test_pace_wrong_can_counts_down_and_blocks() -> None:
    data = issued("cnie").data
    card = VirtualCard(data, random=FixedRandom(5))
    transport = MemoryTransport(card)
    assert card.remaining_password_tries == 5
    for left in (4, 3, 2, 1, 0):
        with pytest.raises(AccessDenied) as caught:
            open_session(
                transport, data, random=FixedRandom(left), password=PasswordKind.CAN, can="999999"
            )
        assert caught.value.remaining_attempts == left
        assert caught.value.status_word == 0x63C0 | left
        assert card.remaining_password_tries == left
    with pytest.raises(AccessDenied) as blocked:
        open_session(
            transport, data, random=FixedRandom(7), password=PasswordKind.CAN, can="123456"
        )
    assert blocked.value.status_word == 0x6983
    # The MRZ is not counted: it still opens the card.
    assert open_session(transport, data, random=FixedRandom(8)).method == "PACE"


def test_pace_right_can_resets_the_counter() -> None:
    data = issued("cnie").data
    card = VirtualCard(data, random=FixedRandom(5))
    transport = MemoryTransport(card)
    with pytest.raises(AccessDenied):
        open_session(
            transport, data, random=FixedRandom(1), password=PasswordKind.CAN, can="000000"
        )
    assert card.remaining_password_tries == 4
    session = open_session(
        transport, data, random=FixedRandom(2), password=PasswordKind.CAN, can="123456"
    )
    assert session.method == "PACE"
    assert card.remaining_password_tries == 5


def test_card_security_needs_pace_but_card_access_is_public() -> None:
    data = issued("cnie").data
    card = VirtualCard(data, random=FixedRandom(5))
    transport = MemoryTransport(card)
    assert _sw(transport.transceive(bytes.fromhex("00A4020C02011D"))) == 0x9000
    assert _sw(transport.transceive(bytes.fromhex("00B0000004"))) == 0x6982
    session = open_session(transport, data, random=FixedRandom(2))
    answer = protected(
        transport,
        session.channel,
        CommandAPDU(0x00, 0xA4, 0x00, 0x0C, data=b"\x3f\x00"),
    )
    assert answer.sw == 0x9000
    assert (
        read_file(transport, session.channel, 0x011D)
        == data.files.files()["MF/EF.CardSecurity"].data
    )


def test_pace_out_of_order_and_malformed_steps() -> None:
    data = issued("cnie").data
    card = VirtualCard(data, random=FixedRandom(5))
    ga = CommandAPDU(0x10, 0x86, 0x00, 0x00, data=b"\x7c\x00", ne=256).to_bytes()
    assert _sw(card.process(ga)) == 0x6985
    mse = bytes.fromhex("0022C1A40F800A04007F00070202040202830102")
    assert _sw(card.process(mse)) == 0x9000
    # Step 2 before step 1: refused, and the attempt is forgotten.
    step2 = CommandAPDU(0x10, 0x86, 0x00, 0x00, data=bytes.fromhex("7C038101AA"), ne=256)
    assert _sw(card.process(step2.to_bytes())) == 0x6A80
    assert _sw(card.process(ga)) == 0x6985
    # Unknown protocol, unknown password reference.
    assert _sw(card.process(bytes.fromhex("0022C1A40F800A04007F00070202040201830102"))) == 0x6A80
    assert _sw(card.process(bytes.fromhex("0022C1A40F800A04007F00070202040202830103"))) == 0x6A88
    # Through the shared codec: a repeated object is malformed, a two-byte password
    # reference is unusable, a two-byte parameter id malformed.
    assert (
        _sw(card.process(bytes.fromhex("0022C1A412800A04007F00070202040202830102830102"))) == 0x6A80
    )
    assert _sw(card.process(bytes.fromhex("0022C1A410800A04007F0007020204020283020002"))) == 0x6A88
    assert _sw(card.process(bytes.fromhex("0022C1A413800A04007F000702020402028301028402000D"))) == (
        0x6A80
    )
    # Not a 7C object.
    assert _sw(card.process(mse)) == 0x9000
    bad = CommandAPDU(0x10, 0x86, 0x00, 0x00, data=b"\x7d\x00", ne=256)
    assert _sw(card.process(bad.to_bytes())) == 0x6A80


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_any_bytes_get_a_status_word_never_an_exception(raw: bytes) -> None:
    card = _card()
    answer = card.process(raw)
    assert len(answer) >= 2
    ResponseAPDU.from_bytes(answer)


@settings(max_examples=100)
@given(st.lists(st.binary(min_size=4, max_size=60), max_size=8))
def test_any_command_sequence_inside_a_session(commands: list[bytes]) -> None:
    card = _card()
    _bac(card)
    for raw in commands:
        forced = bytes([raw[0] | 0x0C]) + raw[1:]
        answer = card.process(forced)
        assert len(answer) >= 2


def test_plain_helper_is_the_raw_path() -> None:
    answer = plain(MemoryTransport(_card()), CommandAPDU(0x00, 0x84, 0x00, 0x00, ne=8))
    assert answer.sw == 0x9000
    assert len(answer.data) == 8


def _session(profile: str, *, clone: bool = False) -> tuple[MemoryTransport, SecureChannel]:
    data = issued(profile).data
    if clone:
        data = clone_card(data)
    transport = MemoryTransport(VirtualCard(data, random=FixedRandom(4)))
    return transport, open_session(transport, data, random=FixedRandom(5)).channel


def test_active_authentication_refusals() -> None:
    data = issued("passport-bac").data
    card = VirtualCard(data, random=FixedRandom(4))
    assert _sw(card.process(bytes.fromhex("00880000081122334455667788" + "00"))) == 0x6982
    transport, channel = _session("passport-bac")
    short = CommandAPDU(0x00, 0x88, 0x00, 0x00, data=b"\x11" * 7, ne=256)
    assert protected(transport, channel, short).sw == 0x6700
    p1 = CommandAPDU(0x00, 0x88, 0x01, 0x00, data=b"\x11" * 8, ne=256)
    assert protected(transport, channel, p1).sw == 0x6A86
    good = CommandAPDU(0x00, 0x88, 0x00, 0x00, data=b"\x11" * 8, ne=256)
    assert len(protected(transport, channel, good).data) == 128  # RSA-1024
    transport, channel = _session("passport-bac", clone=True)
    assert protected(transport, channel, good).sw == 0x6A88


def test_chip_authentication_refusals() -> None:
    transport, channel = _session("cnie")
    ga = CommandAPDU(0x00, 0x86, 0x00, 0x00, data=bytes.fromhex("7C03800104"), ne=256)
    assert protected(transport, channel, ga).sw == 0x6985
    wrong_oid = bytes.fromhex("800A04007F00070202030201") + bytes.fromhex("840101")
    mse = CommandAPDU(0x00, 0x22, 0x41, 0xA4, data=wrong_oid)
    assert protected(transport, channel, mse).sw == 0x6A88
    wrong_key = bytes.fromhex("800A04007F00070202030202") + bytes.fromhex("840102")
    assert protected(transport, channel, attrs.evolve(mse, data=wrong_key)).sw == 0x6A88
    right = bytes.fromhex("800A04007F00070202030202") + bytes.fromhex("840101")
    assert protected(transport, channel, attrs.evolve(mse, data=right)).sw == 0x9000
    # A point that is not on the curve: refused, and the session goes on under the old keys.
    bad_point = CommandAPDU(0x00, 0x86, 0x00, 0x00, data=bytes.fromhex("7C0580030401FF"), ne=256)
    assert protected(transport, channel, bad_point).sw == 0x6A80
    assert protected(transport, channel, CommandAPDU(0x00, 0x84, 0, 0, ne=8)).sw == 0x9000
    # 3DES CA by MSE:Set KAT on the passport, with a malformed key.
    transport, channel = _session("passport-bac")
    kat = CommandAPDU(0x00, 0x22, 0x41, 0xA6, data=bytes.fromhex("91020401"))
    assert protected(transport, channel, kat).sw == 0x6A80
    assert protected(transport, channel, attrs.evolve(kat, data=b"\x84\x01\x01")).sw == 0x6A80
    transport, channel = _session("passport-bac", clone=True)
    assert protected(transport, channel, kat).sw == 0x6A88
    transport, channel = _session("pace-im")  # no CA at all
    assert protected(transport, channel, attrs.evolve(mse, data=right)).sw == 0x6A88


def test_extended_length_over_secure_messaging() -> None:
    dg2 = issued("cnie").data.files.files()["A0000002471001/DG2"].data
    assert len(dg2) > 256
    read_all = CommandAPDU(0x00, 0xB0, 0x82, 0x00, ne=len(dg2), extended=True)
    transport, channel = _session("cnie")
    assert protected(transport, channel, read_all).data == dg2
    transport, channel = _session("pace-im")
    with pytest.raises(SecureMessagingError) as refused:
        protected(transport, channel, read_all)
    assert refused.value.status_word == 0x6700


def test_dh_pace_over_many_runs_including_leading_zero_values() -> None:
    """DH public values on the fewest octets on both sides (BSI TR-03110-3 D.2.1.1): about
    1 run in 256 has a value shorter than p, which fixed-length peers get wrong."""
    data = issued("legacy-dh").data
    leading_zero_runs = 0
    for seed in range(200):
        card = VirtualCard(data, random=FixedRandom(10_000 + seed))
        transport = MemoryTransport(card, record=True)
        assert open_session(transport, data, random=FixedRandom(seed)).method == "PACE"
        publics = [
            value
            for command, response in transport.transcript
            if command[1] == 0x86
            for value in _dh_values(command[5:-1]) + _dh_values(response[:-2])
        ]
        assert publics
        # 1024-bit MODP: at most 128 octets, never a leading zero octet.
        assert all(0 < len(v) <= 128 and v[0] != 0 for v in publics)
        leading_zero_runs += any(len(v) < 128 for v in publics)
    assert leading_zero_runs >= 1


def _dh_values(data: bytes) -> list[bytes]:
    from macnss_auth.nfc.tlv import parse_all, parse_one  # noqa: PLC0415 (local helper)

    if not data or data[0] != 0x7C:
        return []
    outer, _ = parse_one(data)
    return [o.value for o in parse_all(outer.value) if o.tag in (0x81, 0x82, 0x83, 0x84)]


@pytest.mark.parametrize(
    ("protocol", "parameter_id"),
    [
        (PaceOid.ECDH_GM_AES_CBC_CMAC_256, 12),  # NIST P-256, AES-256
        (PaceOid.ECDH_GM_3DES_CBC_CBC, 13),
        (PaceOid.ECDH_IM_AES_CBC_CMAC_192, 16),  # brainpoolP384r1
        (PaceOid.ECDH_CAM_AES_CBC_CMAC_256, 15),  # NIST P-384
        (PaceOid.DH_GM_AES_CBC_CMAC_128, 2),  # 2048-bit MODP, 256-bit subgroup
        (PaceOid.DH_IM_3DES_CBC_CBC, 0),
    ],
)
def test_configurable_pace_domain_parameters(protocol: PaceOid, parameter_id: int) -> None:
    custom = attrs.evolve(
        PROFILES["cnie"],
        name="custom",
        pace_protocol=protocol,
        pace_parameter_id=parameter_id,
        chip_authentication=None,
        active_authentication=None,
    )
    card = issue_card(custom, clock=FixedClock.at(NOW), can="246810")
    transport = MemoryTransport(VirtualCard(card.data, random=FixedRandom(3)))
    session = open_session(
        transport, card.data, random=FixedRandom(4), password=PasswordKind.CAN, can="246810"
    )
    assert session.pace is not None
    assert session.pace.protocol is protocol
    dg1 = read_file(transport, session.channel, 0x0101)
    assert dg1 == card.data.files.files()["A0000002471001/DG1"].data

"""Secure messaging: published transcripts on both sides, round trips, and tampering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.errors import SecureMessagingError, UnsupportedAlgorithm
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.sm import (
    SW_SM_DATA_OBJECTS_INCORRECT,
    CardSecureChannel,
    Role,
    SecureChannel,
    SessionKeys,
)

from .vectors import appendix_d, load, named

H = bytes.fromhex


def appendix_d_channels() -> tuple[SecureChannel, CardSecureChannel, list[dict[str, str]]]:
    bac, sm = appendix_d()
    keys = SessionKeys(
        SymmetricCipher.TDES,
        named(bac, "KSenc (session enc key, parity-adjusted)"),
        named(bac, "KSmac (session MAC key, parity-adjusted)"),
    )
    ssc = int.from_bytes(named(bac, "SSC = last 4 bytes RND.IC || last 4 bytes RND.IFD"), "big")
    return SecureChannel(keys, ssc=ssc), CardSecureChannel(keys, ssc=ssc), sm


def test_appendix_d4_terminal_and_card_side() -> None:
    terminal, card, sm = appendix_d_channels()
    plain_responses = [
        ResponseAPDU(b"", 0x9000),
        ResponseAPDU(named(sm, "decrypted data (padding removed)"), 0x9000),
        ResponseAPDU(named(sm, "decrypted data (padding removed)", occurrence=1), 0x9000),
    ]
    for step, plain_response in enumerate(plain_responses):
        command = CommandAPDU.from_bytes(named(sm, "unprotected command APDU", occurrence=step))
        protected = terminal.protect(command)
        assert protected == named(sm, "protected command APDU", occurrence=step)
        # The card side recovers the command exactly.
        assert card.unprotect_command(protected) == command
        # ... and produces the published protected response byte for byte.
        protected_response = card.protect_response(plain_response)
        assert protected_response == named(sm, "response APDU", occurrence=step)
        assert terminal.unprotect(protected_response) == plain_response
    assert terminal.ssc == card.ssc == named(sm, "SSC (incremented)", occurrence=5)
    ef_com = plain_responses[1].data + plain_responses[2].data
    assert ef_com == named(sm, "EF.COM (all 22 bytes)")


def test_gmrtd_aes256_transcript_both_sides() -> None:
    data = load("sm_aes256_gmrtd.json")
    keys = SessionKeys(SymmetricCipher.AES, H(data["ks_enc"]), H(data["ks_mac"]))
    ssc = int(data["ssc_initial"], 16)
    terminal, card = SecureChannel(keys, ssc=ssc), CardSecureChannel(keys, ssc=ssc)
    read = b""
    for exchange in data["exchanges"]:
        command = CommandAPDU.from_bytes(H(exchange["unprotected_command"]))
        assert terminal.protect(command) == H(exchange["protected_command"])
        assert card.unprotect_command(H(exchange["protected_command"])) == command
        plain = ResponseAPDU.from_bytes(H(exchange["unprotected_response"]))
        assert card.protect_response(plain) == H(exchange["protected_response"])
        assert terminal.unprotect(H(exchange["protected_response"])) == plain
        read += plain.data
    assert read == H(data["ef_com"])
    assert terminal.ssc.hex() == data["ssc_final"]


def make_pair(cipher: SymmetricCipher, key_bits: int) -> tuple[SecureChannel, CardSecureChannel]:
    keys = SessionKeys.derive(b"shared secret " * 3, cipher, key_bits)
    return SecureChannel(keys, ssc=0), CardSecureChannel(keys, ssc=0)


PROFILES = [(SymmetricCipher.TDES, 112), *[(SymmetricCipher.AES, bits) for bits in (128, 192, 256)]]


@pytest.mark.parametrize(("cipher", "bits"), PROFILES)
def test_round_trips_for_every_profile(cipher: SymmetricCipher, bits: int) -> None:
    terminal, card = make_pair(cipher, bits)
    commands = [
        CommandAPDU(0x00, 0xA4, 0x02, 0x0C, data=b"\x01\x1e"),
        CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=223),
        CommandAPDU(0x00, 0xB1, 0x00, 0x00, data=b"\x54\x02\x01\x00", ne=256),  # odd INS: DO'85'
        CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=65536),  # extended Le: two-byte DO'97'
        CommandAPDU(0x10, 0x2A, 0x00, 0xBE, data=bytes(range(256)) * 2),  # extended Lc, chained
        CommandAPDU(0x00, 0x88, 0x00, 0x00, data=bytes(8), ne=256),
    ]
    for index, command in enumerate(commands):
        received = card.unprotect_command(terminal.protect(command))
        assert received == command
        response = ResponseAPDU(bytes([index]) * (index * 50), 0x9000 if index % 2 else 0x6282)
        assert terminal.unprotect(card.protect_response(response)) == response
    assert terminal.ssc == card.ssc
    assert int.from_bytes(terminal.ssc, "big") == 2 * len(commands)
    assert len(terminal.ssc) == cipher.block_size


def test_protected_commands_use_extended_length_when_needed() -> None:
    terminal, _ = make_pair(SymmetricCipher.AES, 256)
    protected = terminal.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=1000))
    assert protected[4] == 0x00  # extended Lc marker
    assert protected[-2:] == b"\x00\x00"  # Le' = 0000
    assert b"\x97\x02\x03\xe8" in protected


def assert_closed(channel: SecureChannel) -> None:
    assert channel.closed
    with pytest.raises(SecureMessagingError):
        channel.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=4))
    with pytest.raises(SecureMessagingError):
        channel.unprotect(b"\x90\x00")


def test_unprotected_error_status_kills_channel_and_reports_it() -> None:
    terminal, _, sm = appendix_d_channels()
    terminal.protect(CommandAPDU.from_bytes(named(sm, "unprotected command APDU")))
    with pytest.raises(SecureMessagingError) as info:
        terminal.unprotect(b"\x69\x88")
    assert info.value.status_word == 0x6988
    assert "not authenticated" in str(info.value)
    assert_closed(terminal)


def test_plain_9000_is_not_accepted() -> None:
    terminal, _, sm = appendix_d_channels()
    terminal.protect(CommandAPDU.from_bytes(named(sm, "unprotected command APDU")))
    with pytest.raises(SecureMessagingError):
        terminal.unprotect(b"\x90\x00")
    assert_closed(terminal)


def test_replayed_response_fails() -> None:
    terminal, _, sm = appendix_d_channels()
    response = named(sm, "response APDU")
    terminal.protect(CommandAPDU.from_bytes(named(sm, "unprotected command APDU")))
    terminal.unprotect(response)
    terminal.protect(CommandAPDU.from_bytes(named(sm, "unprotected command APDU")))
    with pytest.raises(SecureMessagingError, match="MAC"):
        terminal.unprotect(response)
    assert_closed(terminal)


def test_calls_out_of_turn_close_the_channel() -> None:
    terminal, card = make_pair(SymmetricCipher.AES, 128)
    with pytest.raises(SecureMessagingError, match="out of turn"):
        terminal.unprotect(b"\x90\x00")
    assert_closed(terminal)
    with pytest.raises(SecureMessagingError, match="out of turn"):
        card.protect_response(ResponseAPDU(b"", 0x9000))
    assert card.closed


def test_card_side_rejects_bad_mac_with_6988() -> None:
    terminal, card = make_pair(SymmetricCipher.AES, 128)
    protected = bytearray(terminal.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=4)))
    protected[-3] ^= 1  # last MAC byte
    with pytest.raises(SecureMessagingError) as info:
        card.unprotect_command(bytes(protected))
    assert info.value.status_word == SW_SM_DATA_OBJECTS_INCORRECT
    assert type(info.value.status_word) is int  # a plain int on errors, not the enum
    assert card.closed


def test_card_side_rejects_plain_commands() -> None:
    _, card = make_pair(SymmetricCipher.TDES, 112)
    with pytest.raises(SecureMessagingError) as info:
        card.unprotect_command(H("00B0000004"))
    assert info.value.status_word == 0x6987


def test_already_protected_command_is_refused() -> None:
    terminal, _ = make_pair(SymmetricCipher.AES, 128)
    with pytest.raises(SecureMessagingError):
        terminal.protect(CommandAPDU(0x0C, 0xB0, 0x00, 0x00, ne=4))


def test_session_keys_are_checked_and_redacted() -> None:
    keys = SessionKeys(SymmetricCipher.AES, b"\x11" * 32, b"\x22" * 32)
    assert keys.key_bits == 256
    assert "11" not in repr(keys)
    assert "22" not in repr(keys)
    assert keys == SessionKeys(SymmetricCipher.AES, b"\x11" * 32, b"\x22" * 32)
    assert keys != SessionKeys(SymmetricCipher.AES, b"\x11" * 32, b"\x23" * 32)
    with pytest.raises(UnsupportedAlgorithm):
        SessionKeys(SymmetricCipher.AES, b"\x11" * 32, b"\x22" * 16)
    with pytest.raises(UnsupportedAlgorithm):
        SessionKeys(SymmetricCipher.TDES, b"\x11" * 24, b"\x22" * 24)
    with pytest.raises(TypeError):
        SessionKeys(SymmetricCipher.AES, bytearray(16), bytes(16))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hash(keys)
    assert "open" in repr(SecureChannel(keys))


profiles = st.sampled_from(PROFILES)


@given(profiles, st.binary(max_size=300))
def test_random_responses_never_yield_data(
    profile: tuple[SymmetricCipher, int], junk: bytes
) -> None:
    terminal, _ = make_pair(*profile)
    terminal.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=223))
    with pytest.raises(SecureMessagingError):
        terminal.unprotect(junk)
    assert_closed(terminal)


@given(profiles, st.binary(max_size=223), st.integers(0, 0xFFFF), st.data())
def test_bit_flips_never_yield_data(
    profile: tuple[SymmetricCipher, int], data: bytes, sw: int, draw: st.DataObject
) -> None:
    terminal, card = make_pair(*profile)
    card.unprotect_command(terminal.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=223)))
    protected = bytearray(card.protect_response(ResponseAPDU(data, sw)))
    # Flip a bit anywhere except the trailing plain status word, which is never trusted.
    bit = draw.draw(st.integers(0, 8 * (len(protected) - 2) - 1))
    protected[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(SecureMessagingError):
        terminal.unprotect(bytes(protected))
    assert_closed(terminal)


@given(profiles, st.binary(max_size=300))
def test_card_side_random_commands_never_yield_commands(
    profile: tuple[SymmetricCipher, int], junk: bytes
) -> None:
    _, card = make_pair(*profile)
    with pytest.raises(SecureMessagingError):
        card.unprotect_command(junk)
    assert card.closed


@given(
    profiles,
    st.builds(
        CommandAPDU,
        st.integers(0, 255).filter(lambda cla: cla & 0x0C == 0),
        st.integers(0, 255),
        st.integers(0, 255),
        st.integers(0, 255),
        data=st.binary(max_size=300),
        ne=st.none() | st.integers(1, 65536),
        extended=st.booleans(),
    ),
    st.binary(max_size=300),
    st.integers(0, 0xFFFF),
)
def test_any_command_round_trips(
    profile: tuple[SymmetricCipher, int], command: CommandAPDU, data: bytes, sw: int
) -> None:
    terminal, card = make_pair(*profile)
    received = card.unprotect_command(terminal.protect(command))
    assert (received.header, received.data, received.ne) == (
        command.header,
        command.data,
        command.ne,
    )
    response = ResponseAPDU(data, sw)
    assert terminal.unprotect(card.protect_response(response)) == response


def test_one_channel_class_serves_both_roles() -> None:
    keys = SessionKeys.derive(b"shared secret " * 3, SymmetricCipher.AES, 128)
    card = SecureChannel(keys, ssc=0, role=Role.CARD)
    terminal = SecureChannel(keys, ssc=0)
    assert terminal.role is Role.TERMINAL
    assert CardSecureChannel(keys).role is Role.CARD
    assert isinstance(CardSecureChannel(keys), SecureChannel)
    command = CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=4)
    assert card.unprotect_command(terminal.protect_command(command)) == command
    response = ResponseAPDU(b"\x01\x02", 0x9000)
    assert terminal.unprotect_response(card.protect_response(response)) == response
    assert "card" in repr(card)


@pytest.mark.parametrize("role", list(Role))
def test_a_call_the_role_does_not_make_closes_the_channel(role: Role) -> None:
    keys = SessionKeys.derive(b"k", SymmetricCipher.AES, 128)
    channel = SecureChannel(keys, role=role)
    # The first half of an exchange that is the other role's.
    if role is Role.TERMINAL:
        with pytest.raises(SecureMessagingError, match="the terminal does not unprotect"):
            channel.unprotect_command(H("0CB000000D970104") + bytes(10))
    else:
        with pytest.raises(SecureMessagingError, match="the card does not protect"):
            channel.protect_command(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=4))
    assert channel.closed


def test_card_alternatives_the_first_command_picks_the_keys() -> None:
    wanted = SessionKeys.derive(b"with leading zero", SymmetricCipher.AES, 128)
    other = SessionKeys.derive(b"without it", SymmetricCipher.AES, 128)
    terminal = SecureChannel(wanted)
    card = CardSecureChannel(other, alternatives=[wanted])
    command = CommandAPDU(0x00, 0xA4, 0x02, 0x0C, data=b"\x01\x1e")
    assert card.unprotect_command(terminal.protect(command)) == command
    # The response is sealed with the keys that verified, and those stay.
    assert terminal.unprotect(card.protect_response(ResponseAPDU(b"", 0x9000))).ok
    again = CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=4)
    assert card.unprotect_command(terminal.protect(again)) == again


def test_card_alternatives_none_verifies_closes_with_6988() -> None:
    keys = [SessionKeys.derive(bytes([i]), SymmetricCipher.AES, 128) for i in range(3)]
    terminal = SecureChannel(keys[0])
    card = CardSecureChannel(keys[1], alternatives=[keys[2]])
    with pytest.raises(SecureMessagingError) as info:
        card.unprotect_command(terminal.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=4)))
    assert info.value.status_word == SW_SM_DATA_OBJECTS_INCORRECT
    assert card.closed


def test_alternatives_are_the_cards_only() -> None:
    keys = SessionKeys.derive(b"k", SymmetricCipher.AES, 128)
    with pytest.raises(ValueError, match="card"):
        SecureChannel(keys, alternatives=[keys])
    tdes = SessionKeys.derive(b"k", SymmetricCipher.TDES, 112)
    with pytest.raises(ValueError, match="same cipher"):
        CardSecureChannel(keys, alternatives=[tdes])


_CALLS = ["protect_command", "unprotect_response", "unprotect_command", "protect_response"]


@given(st.sampled_from(list(Role)), st.lists(st.sampled_from(_CALLS), max_size=8))
def test_any_call_sequence_follows_the_role_table(role: Role, calls: list[str]) -> None:
    """Each role has one order (its half, then the other); anything else closes the channel."""
    keys = SessionKeys.derive(b"table", SymmetricCipher.AES, 128)
    peer_role = Role.CARD if role is Role.TERMINAL else Role.TERMINAL
    channel, peer = SecureChannel(keys, role=role), SecureChannel(keys, role=peer_role)
    order = _CALLS[:2] if role is Role.TERMINAL else _CALLS[2:]
    command = CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=4)
    response = ResponseAPDU(b"\x01", 0x9000)
    for position, call in enumerate(calls):
        if call != order[position % 2]:
            junk: dict[str, object] = {
                "protect_command": command,
                "protect_response": response,
                "unprotect_command": H("0CB0000000"),
                "unprotect_response": H("9000"),
            }
            with pytest.raises(SecureMessagingError):
                getattr(channel, call)(junk[call])
            assert channel.closed
            return
        # The allowed call, with the peer in step.
        if call == "protect_command":
            assert peer.unprotect_command(channel.protect_command(command)) == command
        elif call == "unprotect_response":
            assert channel.unprotect_response(peer.protect_response(response)) == response
        elif call == "unprotect_command":
            assert channel.unprotect_command(peer.protect_command(command)) == command
        else:
            assert peer.unprotect_response(channel.protect_response(response)) == response
    assert not channel.closed

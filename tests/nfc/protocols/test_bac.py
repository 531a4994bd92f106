"""BAC: the ICAO 9303-11 Appendix D worked example, replayed through the public objects.

The terminal (:class:`BacProtocol`) talks to a tiny in-memory chip built on the
card-side functions (:func:`card_authenticate`, :class:`CardSecureChannel`), both
fed the example's nonces, and every byte on the wire must match the appendix.
"""

from __future__ import annotations

import enum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.errors import (
    AccessDenied,
    LocalProtocolError,
    MacnssAuthError,
    RemoteProtocolError,
)
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.bac import (
    BacKeys,
    BacProtocol,
    BacState,
    card_authenticate,
    derive_bac_keys,
)
from macnss_auth.nfc.mrz import MrzKey
from macnss_auth.nfc.protocol import run
from macnss_auth.nfc.sm import CardSecureChannel
from macnss_auth.testing import FixedRandom, ScriptedRandom

from .vectors import appendix_d, named

BAC, SM = appendix_d()
MRZ = MrzKey("L898902C<", "690806", "940623")


def bac(name: str) -> bytes:
    return named(BAC, name)


class AppendixDChip:
    """An in-memory chip: BAC with the appendix's RND.IC and K.IC, then SM and EF.COM."""

    def __init__(self, keys: BacKeys, rnd_ic: bytes, k_ic: bytes) -> None:
        self.keys, self.rnd_ic, self.k_ic = keys, rnd_ic, k_ic
        self.channel: CardSecureChannel | None = None
        self.ef_com = named(SM, "EF.COM (all 22 bytes)")
        self.log: list[tuple[bytes, bytes]] = []

    def transceive(self, command: bytes) -> bytes:
        response = self._answer(command)
        self.log.append((command, response))
        return response

    def _answer(self, raw: bytes) -> bytes:
        if self.channel is not None:
            plain = self.channel.unprotect_command(raw)
            return self.channel.protect_response(self._file(plain))
        command = CommandAPDU.from_bytes(raw)
        if command.ins == 0x84:
            return self.rnd_ic + b"\x90\x00"
        try:
            result = card_authenticate(self.keys, self.rnd_ic, command.data, self.k_ic)
        except AccessDenied as exc:
            return (exc.status_word or 0x6300).to_bytes(2, "big")
        self.channel = CardSecureChannel(result.keys, ssc=result.ssc)
        return result.response_data + b"\x90\x00"

    def _file(self, command: CommandAPDU) -> ResponseAPDU:
        if command.ins == 0xA4:
            return ResponseAPDU(b"", 0x9000)
        offset = (command.p1 << 8) | command.p2
        assert command.ne is not None
        return ResponseAPDU(self.ef_com[offset : offset + command.ne], 0x9000)


def appendix_chip() -> AppendixDChip:
    return AppendixDChip(derive_bac_keys(MRZ), bac("RND.IC"), bac("K.IC"))


def appendix_terminal(key: MrzKey = MRZ) -> BacProtocol:
    return BacProtocol(key, random=ScriptedRandom(bac("RND.IFD"), bac("K.IFD")))


def test_document_basic_access_keys() -> None:
    keys = derive_bac_keys(MRZ)
    assert keys.k_enc == bac("Kenc (3DES, parity-adjusted)")
    assert keys.k_mac == bac("Kmac (3DES, parity-adjusted)")
    assert "AB94" not in repr(keys)


def test_appendix_d_byte_for_byte_through_the_public_objects() -> None:
    chip = appendix_chip()
    terminal = appendix_terminal()
    result = run(terminal, chip)
    (challenge, challenge_answer), (authenticate, authenticate_answer) = chip.log
    assert challenge == bac("GET CHALLENGE command APDU")
    assert challenge_answer == bac("GET CHALLENGE response APDU (RND.IC + SW)")
    assert authenticate == bac("EXTERNAL AUTHENTICATE command APDU (Lc=28, Le=28)")
    assert authenticate_answer == bac("EXTERNAL AUTHENTICATE response APDU")
    channel = result.channel
    assert channel.ssc == bac("SSC = last 4 bytes RND.IC || last 4 bytes RND.IFD")
    assert terminal.state is BacState.DONE

    # D.4: SELECT EF.COM and two READ BINARYs on the new channel, both sides.
    read = b""
    for step, command in enumerate(
        [
            CommandAPDU(0x00, 0xA4, 0x02, 0x0C, data=b"\x01\x1e"),
            CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=4),
            CommandAPDU(0x00, 0xB0, 0x00, 0x04, ne=18),
        ]
    ):
        assert command.to_bytes() == named(SM, "unprotected command APDU", occurrence=step)
        protected = channel.protect(command)
        assert protected == named(SM, "protected command APDU", occurrence=step)
        answer = chip.transceive(protected)
        assert answer == named(SM, "response APDU", occurrence=step)
        read += channel.unprotect(answer).data
    assert read == named(SM, "EF.COM (all 22 bytes)")
    assert channel.ssc == named(SM, "SSC (incremented)", occurrence=5)


def test_card_side_math_matches_the_appendix() -> None:
    result = card_authenticate(
        derive_bac_keys(MRZ),
        bac("RND.IC"),
        bac("EXTERNAL AUTHENTICATE command data = E.IFD||M.IFD"),
        bac("K.IC"),
    )
    assert result.response_data == bac("E.IC") + bac("M.IC")
    assert result.keys.k_enc == bac("KSenc (session enc key, parity-adjusted)")
    assert result.keys.k_mac == bac("KSmac (session MAC key, parity-adjusted)")
    assert result.ssc.to_bytes(8, "big") == bac("SSC = last 4 bytes RND.IC || last 4 bytes RND.IFD")
    assert "979E" not in repr(result)


def test_wrong_mrz_is_access_denied_with_status_word() -> None:
    chip = appendix_chip()
    terminal = appendix_terminal(MrzKey("L898902C<", "690806", "940624"))
    with pytest.raises(AccessDenied) as info:
        run(terminal, chip)
    assert info.value.status_word == 0x6300
    assert terminal.failed
    with pytest.raises(LocalProtocolError):
        terminal.next_command()


def test_chip_answer_with_wrong_mac_is_refused() -> None:
    terminal = appendix_terminal()
    terminal.next_command()
    terminal.receive_response(bac("GET CHALLENGE response APDU (RND.IC + SW)"))
    terminal.next_command()
    answer = bytearray(bac("EXTERNAL AUTHENTICATE response APDU"))
    answer[-3] ^= 1
    with pytest.raises(RemoteProtocolError, match="does not verify"):
        terminal.receive_response(bytes(answer))
    assert terminal.failed


def test_chip_answer_with_wrong_nonce_is_refused() -> None:
    # A chip answering for a different RND.IFD: valid MAC, wrong content.
    keys = derive_bac_keys(MRZ)
    forged = card_authenticate(
        keys,
        bac("RND.IC"),
        bac("EXTERNAL AUTHENTICATE command data = E.IFD||M.IFD"),
        bac("K.IC"),
    )
    terminal = BacProtocol(keys, random=ScriptedRandom(bytes(8), bac("K.IFD")))
    terminal.next_command()
    terminal.receive_response(bac("GET CHALLENGE response APDU (RND.IC + SW)"))
    terminal.next_command()
    with pytest.raises(RemoteProtocolError, match="nonces"):
        terminal.receive_response(forged.response_data + b"\x90\x00")


def test_random_keys_work_end_to_end() -> None:
    for seed in range(5):
        chip = AppendixDChip(derive_bac_keys(MRZ), FixedRandom(seed).token_bytes(8), bytes(16))
        channel = run(BacProtocol(MRZ, random=FixedRandom(100 + seed)), chip).channel
        answer = chip.transceive(channel.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=22)))
        assert channel.unprotect(answer).data == named(SM, "EF.COM (all 22 bytes)")


# -- every state x arbitrary bytes ---------------------------------------------------


def to_state(target: BacState) -> BacProtocol:
    terminal = appendix_terminal()
    if target is BacState.DONE:
        run(terminal, appendix_chip())
        return terminal
    steps = [
        terminal.next_command,
        lambda: terminal.receive_response(bac("GET CHALLENGE response APDU (RND.IC + SW)")),
        terminal.next_command,
    ]
    for step in steps:
        if terminal.state is target:
            break
        step()
    assert terminal.state is target
    return terminal


class Call(enum.Enum):
    COMMAND = "command"
    RESPONSE = "response"


@given(
    st.sampled_from(
        [
            BacState.START,
            BacState.AWAIT_CHALLENGE,
            BacState.HAVE_CHALLENGE,
            BacState.AWAIT_AUTHENTICATE,
            BacState.DONE,
        ]
    ),
    st.sampled_from(Call),
    st.binary(max_size=64),
)
def test_every_state_and_input_is_a_transition_or_a_typed_death(
    state: BacState, call: Call, data: bytes
) -> None:
    terminal = to_state(state)
    try:
        if call is Call.COMMAND:
            terminal.next_command()
        else:
            terminal.receive_response(data)
    except MacnssAuthError:
        assert terminal.failed
        with pytest.raises(LocalProtocolError):
            terminal.next_command()
        with pytest.raises(LocalProtocolError):
            terminal.receive_response(data)
        return
    # The only accepted inputs move along the table.
    assert (state, terminal.state) in {
        (BacState.START, BacState.AWAIT_CHALLENGE),
        (BacState.AWAIT_CHALLENGE, BacState.HAVE_CHALLENGE),
        (BacState.HAVE_CHALLENGE, BacState.AWAIT_AUTHENTICATE),
    }

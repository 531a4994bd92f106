"""Active Authentication: a recorded INTERNAL AUTHENTICATE replayed, errors, fuzzed states."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.errors import (
    LocalProtocolError,
    MacnssAuthError,
    RemoteProtocolError,
    SecureMessagingError,
)
from macnss_auth.nfc.active_auth import (
    ActiveAuthentication,
    ActiveAuthState,
    internal_authenticate_command,
)
from macnss_auth.nfc.apdu import ResponseAPDU
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.protocol import run
from macnss_auth.nfc.sm import CardSecureChannel, SecureChannel, SessionKeys

from .vectors import load

H = bytes.fromhex
AA = load("aa_gmrtd.json")


def recorded_channel() -> SecureChannel:
    keys = SessionKeys(SymmetricCipher.TDES, H(AA["ks_enc"]), H(AA["ks_mac"]))
    return SecureChannel(keys, ssc=int(AA["ssc"], 16))


def test_recorded_exchange_replays_byte_for_byte() -> None:
    channel = recorded_channel()
    aa = ActiveAuthentication(H(AA["challenge"]), channel=channel)
    assert aa.next_command() == H(AA["protected_command"])
    aa.receive_response(H(AA["protected_response"]))
    assert aa.result.signature == H(AA["signature"])
    assert aa.result.challenge == H(AA["challenge"])
    assert channel.ssc.hex() == AA["ssc_after"]
    assert not channel.closed  # AA keeps using the same channel


class Chip:
    def __init__(self, answer: ResponseAPDU, channel: CardSecureChannel | None) -> None:
        self.answer, self.channel = answer, channel
        self.seen: list[bytes] = []

    def transceive(self, raw: bytes) -> bytes:
        if self.channel is None:
            self.seen.append(raw)
            return self.answer.to_bytes()
        command = self.channel.unprotect_command(raw)
        self.seen.append(command.to_bytes())
        return self.channel.protect_response(self.answer)


def pair() -> tuple[SecureChannel, CardSecureChannel]:
    keys = SessionKeys.derive(b"session", SymmetricCipher.AES, 256)
    return SecureChannel(keys, ssc=1), CardSecureChannel(keys, ssc=1)


def test_rsa_3072_signature_needs_extended_length() -> None:
    terminal, card = pair()
    signature = bytes(range(256)) + bytes(128)
    chip = Chip(ResponseAPDU(signature, 0x9000), card)
    result = run(ActiveAuthentication(b"\x01" * 8, channel=terminal, ne=65536), chip)
    assert result.signature == signature
    assert chip.seen == [internal_authenticate_command(b"\x01" * 8, ne=65536).to_bytes()]


def test_plain_exchange_without_channel() -> None:
    chip = Chip(ResponseAPDU(b"sig", 0x9000), None)
    assert run(ActiveAuthentication(bytes(8), channel=None), chip).signature == b"sig"
    assert chip.seen == [H("0088000008" + "00" * 8 + "00")]


@pytest.mark.parametrize("answer", [ResponseAPDU(b"", 0x6985), ResponseAPDU(b"", 0x9000)])
def test_refusal_or_empty_answer(answer: ResponseAPDU) -> None:
    terminal, card = pair()
    aa = ActiveAuthentication(bytes(8), channel=terminal)
    with pytest.raises(RemoteProtocolError) as info:
        run(aa, Chip(answer, card))
    assert info.value.status_word == answer.sw
    assert aa.failed


def test_tampered_signature_never_comes_out() -> None:
    aa = ActiveAuthentication(H(AA["challenge"]), channel=recorded_channel())
    aa.next_command()
    response = bytearray(H(AA["protected_response"]))
    response[10] ^= 0x80
    with pytest.raises(SecureMessagingError):
        aa.receive_response(bytes(response))
    with pytest.raises(LocalProtocolError):
        _ = aa.result


def test_challenge_is_checked() -> None:
    for bad in (b"", bytes(7), bytes(9)):
        with pytest.raises(ValueError, match="8 bytes"):
            ActiveAuthentication(bad, channel=None)
    with pytest.raises(TypeError):
        ActiveAuthentication(bytearray(8), channel=None)  # type: ignore[arg-type]


def test_closed_channel_is_refused() -> None:
    channel = recorded_channel()
    channel.close()
    aa = ActiveAuthentication(bytes(8), channel=channel)
    with pytest.raises(LocalProtocolError):
        aa.next_command()


@given(st.booleans(), st.booleans(), st.binary(max_size=300))
def test_every_state_and_input_is_a_transition_or_a_typed_death(
    sent: bool, command: bool, data: bytes
) -> None:
    aa = ActiveAuthentication(H(AA["challenge"]), channel=recorded_channel())
    if sent:
        aa.next_command()
    try:
        if command:
            aa.next_command()
        else:
            aa.receive_response(data)
    except MacnssAuthError:
        assert aa.failed
        with pytest.raises(LocalProtocolError):
            aa.next_command()
        return
    assert (sent, command, aa.state) == (False, True, ActiveAuthState.AWAIT_SIGNATURE)

"""Chip Authentication v1: recorded sessions replayed, an in-memory chip, and fuzzed states."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.clock import RandomSource
from macnss_auth.errors import (
    ConfigurationError,
    LocalProtocolError,
    MacnssAuthError,
    MalformedInput,
    RemoteProtocolError,
    SecureMessagingError,
    UnsupportedAlgorithm,
)
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.card.chip_auth import ChipAuthResponder
from macnss_auth.nfc.card.command import CardStatusError
from macnss_auth.nfc.card.model import ChipSecrets
from macnss_auth.nfc.chip_auth import (
    CaAlgorithm,
    CaCommands,
    CaState,
    ChipAuthentication,
    DhPrivateKey,
    DhPublicKey,
    card_session_key_candidates,
    card_session_keys,
    encode_public_key,
    shared_secret,
)
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.protocol import run
from macnss_auth.nfc.sm import CardSecureChannel, SecureChannel, SessionKeys
from macnss_auth.nfc.tlv import encode_tlv, parse_all
from macnss_auth.testing import FixedRandom, ScriptedRandom

from .vectors import load

H = bytes.fromhex
SESSIONS = load("ca_gmrtd.json")["sessions"]
CURVES: dict[str, ec.EllipticCurve] = {
    "brainpoolP256r1": ec.BrainpoolP256R1(),
    "secp256r1": ec.SECP256R1(),
    "secp384r1": ec.SECP384R1(),
}
CIPHERS = {"AES": SymmetricCipher.AES, "3DES": SymmetricCipher.TDES}
DH = load("dh_rfc5114_1024_160.json")


def dh_group_key(x: int) -> DhPrivateKey:
    p, g, q = (int(DH[name], 16) for name in ("p", "g", "q"))
    return DhPrivateKey(DhPublicKey(p, g, pow(g, x, p), q), x)


@pytest.mark.parametrize("session", SESSIONS, ids=[s["test"] for s in SESSIONS])
def test_recorded_sessions_replay_byte_for_byte(session: dict[str, Any]) -> None:
    cipher = CIPHERS[session["sm_cipher"]]
    old = SecureChannel(
        SessionKeys(cipher, H(session["ks_enc"]), H(session["ks_mac"])),
        ssc=int(session["ssc"], 16),
    )
    chip_key = ec.EllipticCurvePublicKey.from_encoded_point(
        CURVES[session["curve"]], H(session["chip_public_key"])
    )
    ca = ChipAuthentication(
        old,
        algorithm=CaAlgorithm.from_oid(session["algorithm"]),
        chip_public_key=chip_key,
        key_id=session["key_id"],
        random=ScriptedRandom(H(session["ephemeral_private"])),
        commands=CaCommands(session["commands"]),
    )
    for command, response in session["exchanges"]:
        assert ca.next_command() == H(command)
        ca.receive_response(H(response))
    result = ca.result
    assert result.ephemeral_public_key == b"\x04" + H(session["ephemeral_public_x"]) + H(
        session["ephemeral_public_y"]
    )
    assert old.closed
    new = result.channel
    assert new.cipher is CIPHERS[session["new_cipher"]]
    command, response = session["after"]
    assert new.protect(CommandAPDU.from_bytes(H(session["after_command"]))) == H(command)
    assert new.unprotect(H(response)) == ResponseAPDU(b"", 0x9000)
    assert new.ssc.hex() == session["ssc_after"].lower()


def test_algorithm_identifiers() -> None:
    algorithm = CaAlgorithm.from_oid("0.4.0.127.0.7.2.2.3.2.2")
    assert algorithm is CaAlgorithm.ECDH_AES_CBC_CMAC_128
    assert algorithm.oid_bytes == H("04007F00070202030202")
    assert (algorithm.elliptic, algorithm.cipher, algorithm.key_bits) == (
        True,
        SymmetricCipher.AES,
        128,
    )
    assert CaAlgorithm.DH_3DES_CBC_CBC.key_bits == 112
    assert not CaAlgorithm.DH_AES_CBC_CMAC_256.elliptic
    with pytest.raises(UnsupportedAlgorithm):
        CaAlgorithm.from_oid("0.4.0.127.0.7.2.2.3.2.9")


class Chip:
    """An in-memory chip doing CA v1 on its side with the card-side functions."""

    def __init__(self, channel: CardSecureChannel, algorithm: CaAlgorithm, key: Any) -> None:
        self.channel, self.algorithm, self.key = channel, algorithm, key
        self.pending: SessionKeys | None = None
        self.refuse_mse = False
        self.ga_answer = encode_tlv(0x7C, b"")

    def transceive(self, raw: bytes) -> bytes:
        command = self.channel.unprotect_command(raw)
        if command.ins == 0x22 and self.refuse_mse:
            return self.channel.protect_response(ResponseAPDU(b"", 0x6A80))
        if command.ins == 0x22 and command.p2 == 0xA6:  # MSE:Set KAT
            (public, *_) = parse_all(command.data)
            self.pending = card_session_keys(self.algorithm, self.key, public.value)
        elif command.ins == 0x22:  # MSE:Set AT
            (oid, *_) = parse_all(command.data)
            assert oid.value == self.algorithm.oid_bytes
        elif command.ins == 0x86:  # GENERAL AUTHENTICATE
            (outer,) = parse_all(command.data)
            key_object = outer.find(0x80)
            assert key_object is not None
            self.pending = card_session_keys(self.algorithm, self.key, key_object.value)
            answer = self.channel.protect_response(ResponseAPDU(self.ga_answer, 0x9000))
            self._switch()
            return answer
        else:
            return self.channel.protect_response(ResponseAPDU(b"chip data", 0x9000))
        answer = self.channel.protect_response(ResponseAPDU(b"", 0x9000))
        if command.p2 == 0xA6:
            self._switch()
        return answer

    def _switch(self) -> None:
        assert self.pending is not None
        self.channel = CardSecureChannel(self.pending, ssc=0)


def start(
    algorithm: CaAlgorithm,
    chip_private: Any,
    *,
    random: RandomSource | None = None,
    **options: Any,
) -> tuple[ChipAuthentication, Chip]:
    keys = SessionKeys.derive(b"PACE or BAC secret", SymmetricCipher.AES, 128)
    terminal = SecureChannel(keys, ssc=5)
    chip = Chip(CardSecureChannel(keys, ssc=5), algorithm, chip_private)
    public = (
        chip_private.public if isinstance(chip_private, DhPrivateKey) else chip_private.public_key()
    )
    ca = ChipAuthentication(
        terminal,
        algorithm=algorithm,
        chip_public_key=public,
        random=random or FixedRandom(7),
        **options,
    )
    return ca, chip


def ec_chip_key(curve: ec.EllipticCurve) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(0x1234567890ABCDEF1234567890ABCDEF, curve)


# MSE:Set KAT is for 3DES only (refusal tested below).
COMBINATIONS = [
    (algorithm, commands)
    for algorithm in CaAlgorithm
    for commands in CaCommands
    if not (commands is CaCommands.MSE_SET_KAT and algorithm.cipher is SymmetricCipher.AES)
]


@pytest.mark.parametrize(("algorithm", "commands"), COMBINATIONS)
def test_every_algorithm_against_the_in_memory_chip(
    algorithm: CaAlgorithm, commands: CaCommands
) -> None:
    chip_private = ec_chip_key(ec.SECP384R1()) if algorithm.elliptic else dh_group_key(0xC0FFEE)
    ca, chip = start(algorithm, chip_private, commands=commands)
    result = run(ca, chip)
    assert result.channel.cipher is algorithm.cipher
    answer = chip.transceive(result.channel.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=9)))
    assert result.channel.unprotect(answer).data == b"chip data"
    assert ca.state is CaState.DONE


def test_set_kat_is_refused_for_aes() -> None:
    with pytest.raises(ConfigurationError):
        start(
            CaAlgorithm.ECDH_AES_CBC_CMAC_128,
            ec_chip_key(ec.SECP256R1()),
            commands=CaCommands.MSE_SET_KAT,
        )


def test_key_must_match_algorithm() -> None:
    keys = SessionKeys.derive(b"x", SymmetricCipher.AES, 128)
    with pytest.raises(ConfigurationError):
        ChipAuthentication(
            SecureChannel(keys),
            algorithm=CaAlgorithm.DH_AES_CBC_CMAC_128,
            chip_public_key=ec_chip_key(ec.SECP256R1()).public_key(),
            random=FixedRandom(1),
        )


def test_key_id_travels_in_84() -> None:
    ca, chip = start(CaAlgorithm.ECDH_AES_CBC_CMAC_128, ec_chip_key(ec.SECP256R1()), key_id=0xC3)
    command = chip.channel.unprotect_command(ca.next_command())
    assert command.data == encode_tlv(0x80, CaAlgorithm.ECDH_AES_CBC_CMAC_128.oid_bytes) + H(
        "8401C3"
    )


def test_refused_mse_is_a_remote_error_and_kills() -> None:
    ca, chip = start(CaAlgorithm.ECDH_AES_CBC_CMAC_128, ec_chip_key(ec.SECP256R1()))
    chip.refuse_mse = True
    with pytest.raises(RemoteProtocolError) as info:
        run(ca, chip)
    assert info.value.status_word == 0x6A80
    assert ca.failed
    with pytest.raises(LocalProtocolError):
        ca.next_command()


def test_tampered_answer_is_a_secure_messaging_error() -> None:
    ca, chip = start(CaAlgorithm.ECDH_3DES_CBC_CBC, ec_chip_key(ec.BrainpoolP256R1()))
    answer = bytearray(chip.transceive(ca.next_command()))
    answer[0] ^= 0x01
    with pytest.raises(SecureMessagingError):
        ca.receive_response(bytes(answer))
    assert ca.failed


def test_dh_shared_secret_is_fixed_length_over_many_runs() -> None:
    chip = dh_group_key(0xC0FFEE)
    p = chip.public.p
    # Walk exponents cheaply (one multiplication each) to the first shared secret
    # with a leading zero byte: about 1 in 180 here. Libraries that drop it
    # derive different keys from the chip's.
    exponent, value = 2, pow(chip.public.y, 2, p)
    while value.bit_length() > 8 * 127:
        exponent, value = exponent + 1, value * chip.public.y % p
    terminal = dh_group_key(exponent)
    secret = shared_secret(terminal, chip.public)
    assert len(secret) == 128
    assert secret[0] == 0
    assert secret == shared_secret(chip, terminal.public)
    # Our terminal never uses such an exponent (a stripping chip would derive other
    # keys): it draws again, and both sides agree on the keys of the second draw.
    good = 0xC0FFEE5
    assert shared_secret(dh_group_key(good), chip.public)[0] != 0
    assert dh_group_key(good).public.y.bit_length() > 8 * 127
    scripted = ScriptedRandom(exponent.to_bytes(20, "big"), good.to_bytes(20, "big"))
    ca, card = start(CaAlgorithm.DH_AES_CBC_CMAC_128, chip, random=scripted)
    result = run(ca, card)
    channel = result.channel
    assert scripted.remaining == 0
    assert result.ephemeral_public_key == dh_group_key(good).public.encode()
    answer = card.transceive(channel.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=9)))
    assert channel.unprotect(answer).data == b"chip data"
    # And many ordinary runs.
    for seed in range(64):
        terminal = dh_group_key(
            int.from_bytes(FixedRandom(seed).token_bytes(20), "big") % 2**159 + 2
        )
        assert shared_secret(terminal, chip.public) == shared_secret(chip, terminal.public)


def test_dh_and_ec_keys_are_validated() -> None:
    chip = dh_group_key(0xC0FFEE)
    p = chip.public.p
    for bad in (b"", b"\x01", (p - 1).to_bytes(128, "big"), bytes(129)):
        with pytest.raises(MalformedInput):
            card_session_keys(CaAlgorithm.DH_AES_CBC_CMAC_128, chip, bad)
    with pytest.raises(MalformedInput):  # not in the order-q subgroup
        card_session_keys(CaAlgorithm.DH_AES_CBC_CMAC_128, chip, (p - 2).to_bytes(128, "big"))
    with pytest.raises(MalformedInput):
        card_session_keys(
            CaAlgorithm.ECDH_AES_CBC_CMAC_128, ec_chip_key(ec.SECP256R1()), b"\x04" + bytes(64)
        )
    assert "bits" in repr(chip.public)
    assert str(chip.x) not in repr(chip)
    assert len(encode_public_key(chip.public)) == 128


class Call(enum.Enum):
    COMMAND = "command"
    RESPONSE = "response"


def to_state(target: CaState) -> tuple[ChipAuthentication, Chip]:
    ca, chip = start(CaAlgorithm.ECDH_AES_CBC_CMAC_128, ec_chip_key(ec.SECP256R1()))
    while ca.state is not target:
        if ca.expects is None:
            raise AssertionError(f"{target} not reached")
        command = ca.next_command()
        if ca.state is target:
            break
        ca.receive_response(chip.transceive(command))
    return ca, chip


@given(
    st.sampled_from(
        [
            CaState.START,
            CaState.AWAIT_MSE,
            CaState.HAVE_MSE,
            CaState.AWAIT_GENERAL_AUTHENTICATE,
            CaState.DONE,
        ]
    ),
    st.sampled_from(Call),
    st.binary(max_size=80),
)
def test_every_state_and_input_is_a_transition_or_a_typed_death(
    state: CaState, call: Call, data: bytes
) -> None:
    ca, _ = to_state(state)
    try:
        if call is Call.COMMAND:
            ca.next_command()
        else:
            ca.receive_response(data)
    except MacnssAuthError:
        assert ca.failed
        with pytest.raises(LocalProtocolError):
            ca.receive_response(data)
        return
    assert call is Call.COMMAND
    assert (state, ca.state) in {
        (CaState.START, CaState.AWAIT_MSE),
        (CaState.HAVE_MSE, CaState.AWAIT_GENERAL_AUTHENTICATE),
    }


def _exponent_where(condition: Any, start: int) -> int:
    exponent = start
    while not condition(exponent):
        exponent += 1
    return exponent


def test_dh_public_value_is_minimal_and_either_length_is_accepted() -> None:
    # TR-03110-3 D.2.1.1: unsigned integers on the minimum number of octets.
    short = dh_group_key(_exponent_where(lambda x: dh_group_key(x).public.y < 2 ** (8 * 127), 2))
    encoded = short.public.encode()
    assert len(encoded) < 128
    assert encoded[0] != 0
    padded = encoded.rjust(128, b"\x00")
    assert short.public.with_value(padded) == short.public.with_value(encoded) == short.public


def test_terminal_skips_dh_keys_with_a_leading_zero_in_y_or_k() -> None:
    chip = dh_group_key(0xC0FFEE)
    p = chip.public.p
    zero_y = _exponent_where(lambda x: dh_group_key(x).public.y < 2 ** (8 * 127), 2)
    zero_k = _exponent_where(lambda x: pow(chip.public.y, x, p) < 2 ** (8 * 127), 2)
    good = _exponent_where(
        lambda x: (
            dh_group_key(x).public.y >= 2 ** (8 * 127)
            and pow(chip.public.y, x, p) >= 2 ** (8 * 127)
        ),
        3,
    )
    scripted = ScriptedRandom(*(x.to_bytes(20, "big") for x in (zero_y, zero_k, good)))
    ca, card = start(CaAlgorithm.DH_AES_CBC_CMAC_128, chip, random=scripted)
    result = run(ca, card)
    assert scripted.remaining == 0
    assert result.ephemeral_public_key == pow(chip.public.g, good, p).to_bytes(128, "big")


@pytest.mark.parametrize("strip", [False, True], ids=["pkcs3-terminal", "openssl-terminal"])
def test_card_accepts_k_with_or_without_its_leading_zero(strip: bool) -> None:
    # OpenPACE's CA hashes K from OpenSSL's DH_compute_key, without leading zeros; a
    # PKCS #3 terminal keeps them. The card keeps the keys the first command's MAC proves.
    chip = dh_group_key(0xC0FFEE)
    p = chip.public.p
    exponent = _exponent_where(lambda x: pow(chip.public.y, x, p) < 2 ** (8 * 127), 2)
    terminal = dh_group_key(exponent)
    secret = shared_secret(terminal, chip.public)
    assert secret[0] == 0
    algorithm = CaAlgorithm.DH_AES_CBC_CMAC_128
    candidates = card_session_key_candidates(algorithm, chip, terminal.public.encode())
    assert len(candidates) == 2
    k = secret.lstrip(b"\x00") if strip else secret
    keys = SessionKeys.derive(k, algorithm.cipher, algorithm.key_bits)
    assert keys == candidates[1 if strip else 0]

    def open_card() -> Any:
        card = ChipAuthResponder(algorithm, ChipSecrets(mrz_information="x", ca_key=chip))
        card.set_at(encode_tlv(0x80, algorithm.oid_bytes))
        data = encode_tlv(0x7C, encode_tlv(0x80, terminal.public.encode()))
        return card.general_authenticate(data)[1]

    channel = open_card()
    ours = SecureChannel(keys, ssc=0)
    command = channel.unprotect(ours.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=9)))
    assert command.ins == 0xB0
    answer = channel.protect(b"chip data", b"\x90\x00")
    assert ours.unprotect(answer).data == b"chip data"
    # The second command needs the same keys: the choice is made once.
    assert channel.unprotect(ours.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x09, ne=1))).p2 == 9
    # Keys of neither form: refused, and the session ends.
    wrong = SecureChannel(SessionKeys.derive(b"other", algorithm.cipher, 128), ssc=0)
    with pytest.raises(CardStatusError) as refused:
        open_card().unprotect(wrong.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=9)))
    assert refused.value.drop_session


@pytest.mark.parametrize("answer", ["7C028000", "7D00", "7C0000", "7C0480008000", ""])
def test_a_general_authenticate_answer_other_than_7c00_is_refused(answer: str) -> None:
    chip_private = ec_chip_key(ec.BrainpoolP256R1())
    ca, chip = start(CaAlgorithm.ECDH_AES_CBC_CMAC_128, chip_private)
    chip.ga_answer = H(answer)
    with pytest.raises(RemoteProtocolError, match="unexpected GENERAL AUTHENTICATE answer"):
        run(ca, chip)

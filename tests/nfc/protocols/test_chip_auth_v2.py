"""Chip Authentication version 2: the terminal against the virtual card's responder.

BSI TR-03110-2 §3.4.2 and TR-03110-3 A.2.3.2 / A.2.4.2: the chip answers
GENERAL AUTHENTICATE with ``7C { 81 r_PICC, 82 T_PICC }``; both sides derive
``KSenc``/``KSmac`` from ``K || r_PICC`` and the token is
``MAC(KSmac, 7F49 { 06 OID, 86/84 PK_PCD })``. One test recomputes the chip's
answer from those formulas with ``cryptography`` and ``hashlib`` alone (an
oracle independent of the library's KDF, MAC and token code).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import algorithms
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.clock import RandomSource
from macnss_auth.errors import (
    ConfigurationError,
    LocalProtocolError,
    MacnssAuthError,
    RemoteProtocolError,
    UnsupportedAlgorithm,
)
from macnss_auth.nfc.apdu import CommandAPDU, StatusCode
from macnss_auth.nfc.card.channel import CardSession
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
    card_session_keys,
    chip_authentication_token,
    shared_secret,
)
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.protocol import run
from macnss_auth.nfc.sm import CardSecureChannel, SecureChannel, SessionKeys
from macnss_auth.nfc.tlv import encode_tlv, parse_all
from macnss_auth.testing import FixedRandom, ScriptedRandom

from .vectors import load

DH = load("dh_rfc5114_1024_160.json")
ACCESS_KEYS = SessionKeys.derive(b"PACE or BAC secret", SymmetricCipher.AES, 128)
Tamper = Callable[[bytes], bytes]


def dh_key(x: int) -> DhPrivateKey:
    p, g, q = (int(DH[name], 16) for name in ("p", "g", "q"))
    return DhPrivateKey(DhPublicKey(p, g, pow(g, x, p), q), x)


def ec_key(curve: ec.EllipticCurve) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(0x1234567890ABCDEF1234567890ABCDEF, curve)


def public_of(key: Any) -> Any:
    return key.public if isinstance(key, DhPrivateKey) else key.public_key()


class Card:
    """The virtual card's CA responder behind the access channel (what VirtualCard does)."""

    def __init__(
        self,
        algorithm: CaAlgorithm,
        key: Any,
        *,
        version: int = 2,
        random: RandomSource | None = None,
        tamper: Tamper | None = None,
    ) -> None:
        self.session = CardSession(ACCESS_KEYS, ssc=5, established_by="PACE")
        self.responder = ChipAuthResponder(
            algorithm,
            ChipSecrets(mrz_information="x", ca_key=key),
            version=version,
            random=random or FixedRandom(11),
        )
        self.tamper = tamper
        #: The CA answers as sent (protected), and GENERAL AUTHENTICATE's in plain.
        self.answers: list[bytes] = []
        self.plain_answer = b""

    def transceive(self, raw: bytes) -> bytes:
        command = self.session.unprotect(raw)
        try:
            if command.ins == 0x22 and command.p2 == 0xA4:
                self.responder.set_at(command.data)
            elif command.ins == 0x22:
                self.session = self._switch(b"", self.responder.set_kat(command.data))
                return self.answers[-1]
            elif command.ins == 0x86:
                answer, new = self.responder.general_authenticate(command.data)
                if self.tamper is not None:
                    answer = self.tamper(answer)
                self.plain_answer = answer
                self.session = self._switch(answer, new)
                return self.answers[-1]
            else:
                return self.session.protect(b"chip data", b"\x90\x00")
        except CardStatusError as refusal:
            return self.session.protect(b"", refusal.status)
        return self.session.protect(b"", b"\x90\x00")

    def _switch(self, answer: bytes, new: CardSession) -> CardSession:
        # The answer still travels under the old keys; the next command uses the new ones.
        self.answers.append(self.session.protect(answer, b"\x90\x00"))
        return new


def start(
    algorithm: CaAlgorithm, key: Any, *, card_random: RandomSource | None = None, **options: Any
) -> tuple[ChipAuthentication, Card]:
    card = Card(algorithm, key, random=card_random, tamper=options.pop("tamper", None))
    terminal = ChipAuthentication(
        SecureChannel(ACCESS_KEYS, ssc=5),
        algorithm=algorithm,
        chip_public_key=public_of(key),
        random=options.pop("random", FixedRandom(7)),
        version=options.pop("version", 2),
        **options,
    )
    return terminal, card


def assert_channel_works(result_channel: SecureChannel, card: Card) -> None:
    command = result_channel.protect(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=9))
    assert result_channel.unprotect(card.transceive(command)).data == b"chip data"


@pytest.mark.parametrize("algorithm", list(CaAlgorithm), ids=lambda a: a.name)
def test_every_algorithm_v2_against_the_card(algorithm: CaAlgorithm) -> None:
    key = ec_key(ec.BrainpoolP256R1()) if algorithm.elliptic else dh_key(0xC0FFEE)
    terminal, card = start(algorithm, key)
    result = run(terminal, card)
    assert terminal.state is CaState.DONE
    assert result.version == 2
    assert result.channel.cipher is algorithm.cipher
    assert_channel_works(result.channel, card)
    # Set AT + GENERAL AUTHENTICATE even for 3DES: MSE:Set KAT is CA v1 only.
    assert len(card.answers) == 1


def test_the_card_answer_matches_an_independent_recomputation() -> None:
    """The chip's 7C from the TR-03110 formulas, with cryptography and hashlib only."""
    key = ec_key(ec.BrainpoolP256R1())
    nonce = bytes.fromhex("0011223344556677")
    terminal, card = start(
        CaAlgorithm.ECDH_AES_CBC_CMAC_128, key, card_random=ScriptedRandom(nonce)
    )
    result = run(terminal, card)
    (outer,) = parse_all(card.plain_answer)
    objects = [(item.tag, item.value) for item in parse_all(outer.value)]
    assert [tag for tag, _ in objects] == [0x81, 0x82]
    assert objects[0][1] == nonce
    # K = x-coordinate of ECDH(static private, terminal's ephemeral public).
    peer = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.BrainpoolP256R1(), result.ephemeral_public_key
    )
    k = key.exchange(ec.ECDH(), peer)
    # ICAO 9303-11 §9.7.1 with K || r_PICC: AES-128 keys are SHA-1(... || c)[0:16].
    k_mac = hashlib.sha1(k + nonce + b"\x00\x00\x00\x02").digest()[:16]  # noqa: S324 (9303 KDF)
    k_enc = hashlib.sha1(k + nonce + b"\x00\x00\x00\x01").digest()[:16]  # noqa: S324 (9303 KDF)
    oid = bytes.fromhex("04007F00070202030202")  # id-CA-ECDH-AES-CBC-CMAC-128
    data = (
        b"\x7f\x49"
        + bytes([2 + len(oid) + 2 + len(result.ephemeral_public_key)])
        + b"\x06"
        + bytes([len(oid)])
        + oid
        + b"\x86"
        + bytes([len(result.ephemeral_public_key)])
        + result.ephemeral_public_key
    )
    signer = cmac.CMAC(algorithms.AES(k_mac))
    signer.update(data)
    assert objects[1][1] == signer.finalize()[:8]
    # The terminal's next command opens under the recomputed keys.
    oracle = CardSecureChannel(SessionKeys(SymmetricCipher.AES, k_enc, k_mac), ssc=0)
    command = oracle.unprotect_command(result.channel.protect(CommandAPDU(0, 0xB0, 0, 0, ne=4)))
    assert (command.ins, command.ne) == (0xB0, 4)


def test_kdf_and_token_helpers_agree_with_the_card() -> None:
    key = dh_key(0xC0FFEE)
    algorithm = CaAlgorithm.DH_3DES_CBC_CBC
    ephemeral = dh_key(0xBEEF)
    nonce = bytes(range(8))
    keys = card_session_keys(algorithm, key, ephemeral.public.encode(), nonce=nonce)
    k = shared_secret(key, ephemeral.public)
    assert keys == SessionKeys.derive(k + nonce, algorithm.cipher, algorithm.key_bits)
    assert keys != card_session_keys(algorithm, key, ephemeral.public.encode())
    # DH: the token covers 84 with y on the minimum number of octets, padded input or not.
    minimal = chip_authentication_token(algorithm, keys, ephemeral.public.encode())
    padded = chip_authentication_token(algorithm, keys, ephemeral.public.encode().rjust(200, b"\0"))
    assert minimal == padded
    assert len(minimal) == 8


def flip_token(answer: bytes) -> bytes:
    return answer[:-1] + bytes([answer[-1] ^ 0x01])


@pytest.mark.parametrize(
    "algorithm",
    [CaAlgorithm.ECDH_AES_CBC_CMAC_128, CaAlgorithm.DH_3DES_CBC_CBC],
    ids=lambda a: a.name,
)
def test_a_forged_token_is_a_remote_error_and_kills(algorithm: CaAlgorithm) -> None:
    key = ec_key(ec.SECP256R1()) if algorithm.elliptic else dh_key(0xC0FFEE)
    terminal, card = start(algorithm, key, tamper=flip_token)
    with pytest.raises(RemoteProtocolError, match="token is wrong") as raised:
        run(terminal, card)
    assert raised.value.status_word == StatusCode.OK
    assert terminal.failed
    with pytest.raises(LocalProtocolError):
        terminal.next_command()


def test_a_chip_with_another_key_fails_on_the_token() -> None:
    """A clone that holds a key of its own computes a token for the wrong K."""
    algorithm = CaAlgorithm.ECDH_AES_CBC_CMAC_128
    genuine = ec_key(ec.BrainpoolP256R1())
    card = Card(algorithm, ec.derive_private_key(99, ec.BrainpoolP256R1()))
    terminal = ChipAuthentication(
        SecureChannel(ACCESS_KEYS, ssc=5),
        algorithm=algorithm,
        chip_public_key=genuine.public_key(),
        random=FixedRandom(7),
        version=2,
    )
    with pytest.raises(RemoteProtocolError, match="token is wrong"):
        run(terminal, card)


@pytest.mark.parametrize(
    "answer",
    [
        "7C00",  # a CA v1 answer
        "7C0A810800112233445566 77".replace(" ", ""),  # the nonce without a token
        "7C0A820800112233445566 77".replace(" ", ""),  # the token without a nonce
        "7C0C81008208AABBCCDDEEFF0011",  # an empty nonce
        "7C14810800112233445566778208AABBCCDDEEFF00118000",  # an extra object
    ],
)
def test_a_v2_terminal_refuses_answers_without_nonce_and_token(answer: str) -> None:
    terminal, card = start(CaAlgorithm.ECDH_AES_CBC_CMAC_128, ec_key(ec.SECP256R1()))
    card.tamper = lambda _: bytes.fromhex(answer)
    with pytest.raises(RemoteProtocolError):
        run(terminal, card)
    assert terminal.failed


def test_a_v1_terminal_refuses_a_v2_answer() -> None:
    terminal, card = start(CaAlgorithm.ECDH_AES_CBC_CMAC_128, ec_key(ec.SECP256R1()), version=1)
    with pytest.raises(RemoteProtocolError, match="unexpected GENERAL AUTHENTICATE answer"):
        run(terminal, card)


def test_v2_configuration_errors() -> None:
    key = dh_key(0xC0FFEE)
    with pytest.raises(ConfigurationError):
        start(CaAlgorithm.DH_3DES_CBC_CBC, key, commands=CaCommands.MSE_SET_KAT)
    with pytest.raises(UnsupportedAlgorithm):
        start(CaAlgorithm.DH_3DES_CBC_CBC, key, version=3)
    with pytest.raises(ConfigurationError):
        ChipAuthResponder(
            CaAlgorithm.DH_3DES_CBC_CBC, ChipSecrets(mrz_information="x", ca_key=key), version=2
        )


def test_a_v2_card_refuses_mse_set_kat() -> None:
    algorithm = CaAlgorithm.DH_3DES_CBC_CBC
    key = dh_key(0xC0FFEE)
    card = ChipAuthResponder(
        algorithm, ChipSecrets(mrz_information="x", ca_key=key), version=2, random=FixedRandom(1)
    )
    with pytest.raises(CardStatusError) as refused:
        card.set_kat(encode_tlv(0x91, dh_key(0xBEEF).public.encode()))
    assert refused.value.status == StatusCode.FUNCTION_NOT_SUPPORTED.encode()


def test_dh_v2_over_many_sessions() -> None:
    """Many DH sessions (random ephemeral keys and nonces): every one checks its token."""
    key = dh_key(0xC0FFEE)
    for seed in range(40):
        terminal, card = start(
            CaAlgorithm.DH_AES_CBC_CMAC_128,
            key,
            random=FixedRandom(seed),
            card_random=FixedRandom(1000 + seed),
        )
        result = run(terminal, card)
        assert_channel_works(result.channel, card)


_SHAPED = st.builds(
    lambda nonce, token, extra: encode_tlv(
        0x7C, encode_tlv(0x81, nonce) + encode_tlv(0x82, token) + extra
    ),
    st.binary(max_size=70),
    st.binary(max_size=20),
    st.sampled_from([b"", encode_tlv(0x80, b"")]),
)
FUZZ_KEY = ec_key(ec.SECP256R1())


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=90), _SHAPED))
def test_any_made_up_v2_answer_is_a_typed_death(answer: bytes) -> None:
    """Random bytes, or a well-formed 7C with any nonce and token: never a channel."""
    terminal, card = start(CaAlgorithm.ECDH_AES_CBC_CMAC_128, FUZZ_KEY)
    card.tamper = lambda _: answer
    with pytest.raises(MacnssAuthError):
        run(terminal, card)
    assert terminal.failed
    with pytest.raises(LocalProtocolError):
        terminal.next_command()

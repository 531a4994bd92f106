"""DH encodings per field (issue 16 item 5): what the terminal sends and what it accepts.

Peers disagree on three DH fields: public values minimal (TR-03110-3 D.2.1.1)
or padded to the length of p; the public key MACed in the token minimal or
padded; K kept on the length of p (PKCS #3, JMRTD) or with its leading zeros
cut (libeac, OpenSSL's ``DH_compute_key``). The encodings themselves are
checked as pure functions; the strict peer is libeac (OpenPACE), which shares
no code with this library; run_pace's repeat policy is checked against
refusals whose timing is known.
"""

from __future__ import annotations

import functools

import attrs
import pytest

from macnss_auth.errors import AccessDenied
from macnss_auth.nfc import tlv
from macnss_auth.nfc.apdu import CommandAPDU
from macnss_auth.nfc.card import PROFILES, CardData, VirtualCard, issue_card
from macnss_auth.nfc.domain_params import standardized
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pace import (
    DhDomain,
    PaceTerminal,
    authentication_token,
    base_domain,
    public_key,
    public_key_data_object,
    run_pace,
    session_key_candidates,
    session_keys,
    token_matches,
    verify_authentication_token,
)
from macnss_auth.nfc.protocol import Transport, run
from macnss_auth.nfc.securityinfos import PaceInfo, PaceOid
from macnss_auth.nfc.serve.memory import MemoryTransport
from macnss_auth.testing import FixedClock, FixedRandom

from .openpace import PACE_CAN, OpenPace, OpenPaceChip

MRZ = MrzKey("L898902C3", "740812", "120415")
INFO = PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_128, 2, 0)
GROUP = standardized(0)
DOMAIN = base_domain(GROUP)


def _zero_key() -> int:
    """A private key whose public value g^x has a leading zero octet."""
    assert isinstance(DOMAIN, DhDomain)
    x = 2
    while pow(DOMAIN.generator, x, DOMAIN.group.p) >> (8 * 127):
        x += 1
    return x


def test_public_values_are_minimal_unsigned_integers() -> None:
    key = _zero_key()
    encoded = public_key(DOMAIN, key)
    assert len(encoded) < 128
    assert encoded[0] != 0
    # The token input: 84 carries the minimal value; fixed_length pads it to p.
    minimal = public_key_data_object(INFO.protocol, DOMAIN, encoded)
    fixed = public_key_data_object(INFO.protocol, DOMAIN, encoded, fixed_length=True)
    assert minimal.endswith(bytes([0x84, len(encoded)]) + encoded)
    assert fixed.endswith(bytes([0x84, 0x81, 0x80]) + encoded.rjust(128, b"\0"))
    # A padded copy of the same value gives the same minimal object.
    assert public_key_data_object(INFO.protocol, DOMAIN, encoded.rjust(128, b"\0")) == minimal


def test_tokens_over_either_encoding_verify() -> None:
    encoded = public_key(DOMAIN, _zero_key())
    keys = session_keys(b"\x01" * 128, INFO.protocol.cipher, 128)
    minimal = authentication_token(INFO.protocol, keys, DOMAIN, encoded)
    fixed = authentication_token(INFO.protocol, keys, DOMAIN, encoded, fixed_length=True)
    assert minimal != fixed
    for token in (minimal, fixed):
        verify_authentication_token(INFO.protocol, keys, DOMAIN, encoded, token)
    assert token_matches(INFO.protocol, keys, DOMAIN, encoded, fixed, fixed_length=True)
    assert not token_matches(INFO.protocol, keys, DOMAIN, encoded, fixed, fixed_length=False)
    assert not token_matches(INFO.protocol, keys, DOMAIN, encoded, b"\0" * 8)


def test_shared_secret_candidates() -> None:
    cipher = INFO.protocol.cipher
    with_zero = b"\x00" + b"\x07" * 127
    padded, stripped = session_key_candidates(DOMAIN, with_zero, cipher, 128)
    assert padded == session_keys(with_zero, cipher, 128)
    assert stripped == session_keys(with_zero[1:], cipher, 128)
    assert len(session_key_candidates(DOMAIN, b"\x07" * 128, cipher, 128)) == 1


def test_ec_tokens_have_one_encoding() -> None:
    domain = base_domain(standardized(13))
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    point = public_key(domain, 12345)
    keys = session_keys(b"\x02" * 32, info.protocol.cipher, 128)
    token = authentication_token(info.protocol, keys, domain, point)
    assert token == authentication_token(info.protocol, keys, domain, point, fixed_length=True)
    for fixed in (None, False, True):
        assert token_matches(info.protocol, keys, domain, point, token, fixed_length=fixed)


# -- Against peers that are not this library ----------------------------------------------
#
# The strict encodings are checked against libeac (OpenPACE), an independent
# chip: it keeps DH values minimal, MACs the minimal value and strips K's
# leading zeros. test_pace_openpace.py runs it plainly (and, marked slow, until
# every leading-zero case occurs); here it also stands behind a proxy that pads
# its values to the length of p, as some chips send them.


class PaddingChip:
    """A chip's answers with its DH mapping and ephemeral values padded to the length of p."""

    def __init__(self, chip: Transport) -> None:
        self.chip = chip
        self.padded = 0

    def transceive(self, command: bytes) -> bytes:
        response = self.chip.transceive(command)
        data, status = response[:-2], response[-2:]
        if not data:
            return response
        outer, _ = tlv.parse_one(data)
        objects = []
        for item in tlv.parse_all(outer.value):
            value = item.value
            if item.tag in (0x82, 0x84):
                self.padded += len(value) < 128
                value = value.rjust(128, b"\0")
            objects.append(tlv.encode_tlv(item.tag, value))
        return tlv.encode_tlv(0x7C, b"".join(objects)) + status


def test_openpace_chip_that_pads_its_values(lib: OpenPace) -> None:
    # The terminal takes the padded values and MACs the minimal one (TR-03110-3
    # D.2.1.1), or libeac would refuse its token. libeac's randomness is its
    # own, so run until some of its values were short and so really padded.
    info = PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_128, 2, 0)
    padded = runs = 0
    while padded < 2 and runs < 5000:
        chip = OpenPaceChip(lib, info, b"123456", PACE_CAN)
        try:
            proxy = PaddingChip(chip)
            terminal = PaceTerminal(
                CAN("123456"), info, random=FixedRandom(runs), strip_dh_secret=True
            )
            result = run(terminal, proxy)
        finally:
            chip.close()
        assert len(result.chip_public_key) == 128
        assert result.chip_public_key.lstrip(b"\0") == chip.chip_public_key.lstrip(b"\0")
        padded += proxy.padded
        runs += 1
    assert padded >= 2, runs


@pytest.mark.slow
@pytest.mark.parametrize("parameter_id", [1, 2])
def test_dh_2048_groups_against_openpace(lib: OpenPace, parameter_id: int) -> None:
    # The 1024-bit group's many runs are in test_pace_openpace.py.
    info = PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_128, 2, parameter_id)
    for seed in range(40):
        chip = OpenPaceChip(lib, info, b"123456", PACE_CAN)
        try:
            terminal = PaceTerminal(
                CAN("123456"), info, random=FixedRandom(seed), strip_dh_secret=True
            )
            assert run(terminal, chip).terminal_public_key[0] != 0
        finally:
            chip.close()


# -- run_pace's repeat policy ---------------------------------------------------------------
#
# Whether run_pace tries once more depends on the refusal's status word, the
# password kind and whether the terminal's K had a leading zero octet; not on
# any chip's arithmetic. The chip here is the virtual card with its last answer
# replaced by a refusal, and both sides' randomness fixed, so which runs have a
# leading-zero K is known in advance (and asserted to include some).

DH_INFO = PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_128, 2, 0)
SEEDS = range(240)  # K has a leading zero octet in runs 135, 170 and 219


@functools.cache
def _dh_card() -> CardData:
    profile = attrs.evolve(
        PROFILES["legacy-dh"], name="dh-aes", pace_protocol=DH_INFO.protocol, pace_parameter_id=0
    )
    return issue_card(profile, clock=FixedClock.at(1_800_000_000.0), can="123456").data


class RefusingChip:
    """The virtual card, except that GENERAL AUTHENTICATE 4 is refused with ``status``."""

    def __init__(self, seed: int, status: bytes) -> None:
        random = FixedRandom(b"c" + seed.to_bytes(2, "big"))
        self.card = MemoryTransport(VirtualCard(_dh_card(), random=random))
        self.status = status
        self.attempts = 0

    def transceive(self, command: bytes) -> bytes:
        apdu = CommandAPDU.from_bytes(command)
        if apdu.ins == 0x22:
            self.attempts += 1
        if apdu.ins == 0x86 and apdu.cla == 0x00:
            self.card.tap()  # the card forgets the run, as after a refusal
            return self.status
        return self.card.transceive(command)


@functools.cache
def _ambiguous() -> frozenset[int]:
    """The seeds whose first run has a K with a leading zero octet (the same run run_pace makes)."""
    found = set()
    for seed in SEEDS:
        terminal = PaceTerminal(CAN("123456"), DH_INFO, random=FixedRandom(seed))
        with pytest.raises(AccessDenied):
            run(terminal, RefusingChip(seed, b"\x63\x00"))
        if terminal.secret_encoding_ambiguous:
            found.add(seed)
    assert found, "no seed gives a leading-zero K any more: widen SEEDS"
    return frozenset(found)


def test_run_pace_repeats_a_plain_refusal_once_only_when_k_had_a_leading_zero() -> None:
    for seed in SEEDS:
        chip = RefusingChip(seed, b"\x63\x00")
        with pytest.raises(AccessDenied) as refused:
            run_pace(CAN("123456"), DH_INFO, chip, random=FixedRandom(seed))
        assert refused.value.status_word == 0x6300
        assert chip.attempts == (2 if seed in _ambiguous() else 1)


def test_run_pace_never_repeats_a_counted_refusal() -> None:
    # 63CX carries a retry counter: a repeat would cost a try, even after a leading-zero K.
    for seed in SEEDS:
        chip = RefusingChip(seed, b"\x63\xc2")
        with pytest.raises(AccessDenied) as refused:
            run_pace(CAN("123456"), DH_INFO, chip, random=FixedRandom(seed))
        assert refused.value.remaining_attempts == 2
        assert chip.attempts == 1
    assert _ambiguous()

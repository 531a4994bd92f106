"""DH encodings per field (issue 16 item 5): what the terminal sends and what it accepts.

Strict chip-side peers (``responder.PaceResponder``) stand for the independent
implementations: ``standard`` MACs the minimal DH key and keeps K on the
length of p (JMRTD); ``openpace`` also cuts K's leading zeros (libeac,
OpenSSL's ``DH_compute_key``); ``padded`` pads everything to p (this
library before). Seeds are chosen so leading zeros occur on each value.
"""

from __future__ import annotations

import pytest

from macnss_auth.errors import AccessDenied
from macnss_auth.nfc.domain_params import standardized
from macnss_auth.nfc.mrz import MrzKey
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
from macnss_auth.nfc.protocol import run
from macnss_auth.nfc.securityinfos import PaceInfo, PaceOid
from macnss_auth.testing import FixedRandom

from .responder import PaceResponder

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


def _runs(**peer: bool) -> list[tuple[int, bool, bool]]:
    """(seed, K had a leading zero, success) for 300 runs plus forced ones."""
    outcomes = []
    for seed in range(300):
        card = PaceResponder(MRZ, INFO, random=FixedRandom(b"c" + seed.to_bytes(2, "big")), **peer)
        strip = peer.get("strip_secret", False)
        terminal = PaceTerminal(MRZ, INFO, random=FixedRandom(seed), strip_dh_secret=strip)
        try:
            result = run(terminal, card)
        except AccessDenied:
            outcomes.append((seed, card.shared_secrets[-1][0] == 0, False))
            continue
        assert result.keys == card.keys
        outcomes.append((seed, card.shared_secrets[-1][0] == 0, True))
    return outcomes


def test_strict_standard_chip_every_run() -> None:
    outcomes = _runs(strip_leading_zeros=True)
    assert all(ok for _, _, ok in outcomes)
    assert any(zero for _, zero, _ in outcomes)


def test_chip_that_pads_its_values_every_run() -> None:
    # A chip sending 128-byte values but MACing minimal ones (the spec's token).
    outcomes = _runs(pad_public_values=True)
    assert all(ok for _, _, ok in outcomes)


def test_openpace_chip_needs_strip_dh_secret() -> None:
    outcomes = _runs(strip_leading_zeros=True, strip_secret=True)
    assert all(ok for _, _, ok in outcomes)
    assert any(zero for _, zero, _ in outcomes)


def test_openpace_chip_with_standard_terminal_fails_only_on_leading_zero_k() -> None:
    # K is PKCS #3 (length of p): the one field where OpenPACE departs from the
    # standard, and the one a terminal cannot hedge (it MACs first).
    failures = []
    for seed in range(300):
        card = PaceResponder(
            MRZ,
            INFO,
            random=FixedRandom(b"c" + seed.to_bytes(2, "big")),
            strip_leading_zeros=True,
            strip_secret=True,
        )
        try:
            run(PaceTerminal(MRZ, INFO, random=FixedRandom(seed)), card)
        except AccessDenied:
            failures.append(card.shared_secrets[-1][0] == 0)
        else:
            assert card.shared_secrets[-1][0] != 0
    assert failures
    assert all(failures)


@pytest.mark.slow
@pytest.mark.parametrize("parameter_id", [0, 1, 2])
def test_dh_groups_many_runs_against_the_strict_standard_chip(parameter_id: int) -> None:
    info = PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_128, 2, parameter_id)
    for seed in range(1500 if parameter_id == 0 else 300):
        card = PaceResponder(
            MRZ, info, random=FixedRandom(b"s" + seed.to_bytes(2, "big")), strip_leading_zeros=True
        )
        assert run(PaceTerminal(MRZ, info, random=FixedRandom(seed)), card).keys == card.keys


def test_ec_tokens_have_one_encoding() -> None:
    domain = base_domain(standardized(13))
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    point = public_key(domain, 12345)
    keys = session_keys(b"\x02" * 32, info.protocol.cipher, 128)
    token = authentication_token(info.protocol, keys, domain, point)
    assert token == authentication_token(info.protocol, keys, domain, point, fixed_length=True)
    for fixed in (None, False, True):
        assert token_matches(info.protocol, keys, domain, point, token, fixed_length=fixed)


def _openpace_like(seed: int, **options: bool) -> PaceResponder:
    return PaceResponder(
        MRZ,
        INFO,
        random=FixedRandom(b"c" + seed.to_bytes(2, "big")),
        strip_leading_zeros=True,
        strip_secret=True,
        **options,
    )


def test_run_pace_repeats_once_only_when_the_secret_encoding_failed() -> None:
    # The same chips that fail a plain PaceTerminal run (test above) all open.
    repeated = 0
    for seed in range(300):
        card = _openpace_like(seed, plain_refusal=True)
        result = run_pace(MRZ, INFO, card, random=FixedRandom(seed))
        assert result.keys == card.keys
        assert card.attempts in (1, 2)
        repeated += card.attempts == 2
        # A repeat happens only after a K with a leading zero octet.
        assert card.attempts == 1 or card.shared_secrets[0][0] == 0
    assert repeated > 0


def test_run_pace_never_repeats_a_counted_or_a_plain_wrong_password() -> None:
    wrong = MrzKey("L898902C3", "740812", "120416")
    for seed in range(40):
        card = _openpace_like(seed, plain_refusal=True)
        with pytest.raises(AccessDenied):
            run_pace(wrong, INFO, card, random=FixedRandom(seed))
        # Repeated only in the rare run where K also started with a zero octet.
        assert card.attempts == 1 + (card.shared_secrets[0][0] == 0)
    left: list[int | None] = []
    for seed in range(300):
        card = _openpace_like(seed)  # 63CX: a retry counter, so never repeated
        try:
            run_pace(MRZ, INFO, card, random=FixedRandom(seed))
        except AccessDenied as error:
            left.append(error.remaining_attempts)
        assert card.attempts == 1
    assert left
    assert set(left) == {2}

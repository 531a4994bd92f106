"""Chip Authentication on every standardized group, and the keys as documents write them.

* the BSI 2008 specimen's DG14 key (brainpoolP224r1, explicit parameters) parses;
* keys named by ``standardizedDomainParameters`` (BSI TR-03110-3 §A.2.1.1,
  issue 16 item 7b) parse, hand-built;
* a virtual card issued with its CA key on each group of ICAO 9303-11 §9.5.1
  (ids 0-2 and 8-18) is read and proves its key, in process and over nfcpy;
* received public keys are validated; the secret-scalar ladder agrees with
  the public multiplication on edge scalars.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from asn1crypto import core
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.errors import MalformedInput, UnsupportedAlgorithm
from macnss_auth.nfc import ec as ec_math
from macnss_auth.nfc import eckeys, reader
from macnss_auth.nfc import securityinfos as si
from macnss_auth.nfc.card import IssuedCard, clone_card, issue_card
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.card.model import CardProfile
from macnss_auth.nfc.card.profiles import profile
from macnss_auth.nfc.card.storage import load_card, save_card
from macnss_auth.nfc.chip_auth import (
    CaAlgorithm,
    DhPublicKey,
    card_session_keys,
    chip_public_key,
    encode_public_key,
    shared_secret,
)
from macnss_auth.nfc.domain_params import (
    BRAINPOOLP224R1,
    DHGroup,
    DomainParameterId,
    curve_by_name,
    standardized,
)
from macnss_auth.nfc.ec import Curve
from macnss_auth.nfc.eckeys import EcPrivateKey, EcPublicKey
from macnss_auth.nfc.lds import parse_dg14, parse_dg15
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pki import TrustStore, parse_public_key_info
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.reader import DocumentReader
from macnss_auth.nfc.serve import MemoryTransport, UdpCardServer
from macnss_auth.nfc.transports import NfcpyTransport
from macnss_auth.nfc.verify import CheckStatus
from macnss_auth.testing import FixedClock, FixedRandom

SPECIMEN = Path(__file__).resolve().parents[2] / "vectors" / "bsi2008" / "Datagroup14.bin"
NOW = 1_800_000_000.0
_STANDARDIZED_OID = "0.4.0.127.0.7.1.2"


def _der(tag: int, body: bytes) -> bytes:
    length = len(body)
    if length < 0x80:
        return bytes([tag, length]) + body
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + body


def _oid(dotted: str) -> bytes:
    return bytes(core.ObjectIdentifier(dotted).dump())


def _integer(value: int) -> bytes:
    return bytes(core.Integer(value).dump())


def standardized_spki(parameter_id: int, public_key: bytes) -> bytes:
    """``SEQUENCE { SEQUENCE { id-standardizedDomainParameters, INTEGER id }, BIT STRING }``."""
    algorithm = _der(0x30, _oid(_STANDARDIZED_OID) + _integer(parameter_id))
    return _der(0x30, algorithm + _der(0x03, b"\x00" + public_key))


def dg14_key(protocol: si.PublicKeyOid, spki: bytes) -> si.ChipAuthenticationPublicKeyInfo:
    """Through the real SecurityInfos parser, as the reader gets it from DG14."""
    infos = si.parse_security_infos(
        si.encode_security_infos([si.ChipAuthenticationPublicKeyInfo(protocol, spki, 1)])
    )
    (info,) = [i for i in infos if isinstance(i, si.ChipAuthenticationPublicKeyInfo)]
    return info


# --- key parsing ---------------------------------------------------------------------------


def test_the_specimen_dg14_key_is_a_brainpool_p224_key() -> None:
    infos = parse_dg14(SPECIMEN.read_bytes()).infos
    (info,) = [i for i in infos if isinstance(i, si.ChipAuthenticationPublicKeyInfo)]
    (ca_info,) = [i for i in infos if isinstance(i, si.ChipAuthenticationInfo)]
    key = chip_public_key(info)
    assert isinstance(key, EcPublicKey)
    assert key.curve == BRAINPOOLP224R1
    assert key.encode() == info.public_key
    assert reader.chip_public_key(info) == key  # the old name still answers
    assert CaAlgorithm.from_oid(ca_info.protocol.value) is CaAlgorithm.ECDH_3DES_CBC_CBC
    # The terminal side of CA runs on it: an ephemeral key and a shared secret.
    ephemeral = EcPrivateKey.generate(key.curve)
    assert len(shared_secret(ephemeral, key)) == 28


@pytest.mark.parametrize(
    "parameter_id",
    [DomainParameterId.BRAINPOOLP224R1, DomainParameterId.SECP256R1, DomainParameterId.SECP192R1],
)
def test_ecdh_key_named_by_standardized_domain_parameters(parameter_id: int) -> None:
    curve = standardized(parameter_id)
    assert isinstance(curve, Curve)
    point = EcPrivateKey.generate(curve).public_key().encode()
    info = dg14_key(si.PublicKeyOid.ECDH, standardized_spki(parameter_id, point))
    key = chip_public_key(info)
    assert isinstance(key, EcPublicKey)
    assert (key.curve, key.encode()) == (curve, point)
    assert reader.chip_public_key(info) == key
    parsed = parse_public_key_info(info.subject_public_key_info)
    assert (parsed.algorithm, parsed.curve) == ("ec", curve.name)
    assert parsed.ec_public_key() == key


def test_dh_key_named_by_standardized_domain_parameters() -> None:
    group = standardized(DomainParameterId.MODP_1024_160)
    assert isinstance(group, DHGroup)
    y = pow(group.g, 0xC0FFEE, group.p)
    info = dg14_key(si.PublicKeyOid.DH, standardized_spki(0, _integer(y)))
    key = chip_public_key(info)
    assert isinstance(key, DhPublicKey)
    assert (key.p, key.g, key.q, key.y) == (group.p, group.g, group.q, y)
    assert parse_public_key_info(info.subject_public_key_info).algorithm == "dh"


def test_standardized_keys_with_bad_values_are_typed_errors() -> None:
    good = EcPrivateKey.generate(BRAINPOOLP224R1).public_key().encode()
    off_curve = good[:-1] + bytes([good[-1] ^ 1])
    info = dg14_key(si.PublicKeyOid.ECDH, standardized_spki(11, off_curve))
    with pytest.raises(MalformedInput):
        chip_public_key(info)
    # Reserved id: nothing to run CA on.
    reserved = dg14_key(si.PublicKeyOid.ECDH, standardized_spki(5, good))
    with pytest.raises(UnsupportedAlgorithm):
        chip_public_key(reserved)
    with pytest.raises(UnsupportedAlgorithm):
        parse_public_key_info(reserved.subject_public_key_info)
    # An ECDH key on a DH group, and a DH key on a curve: contradictions, not unknowns.
    with pytest.raises(MalformedInput):
        chip_public_key(dg14_key(si.PublicKeyOid.ECDH, standardized_spki(0, good)))
    with pytest.raises(MalformedInput):
        chip_public_key(dg14_key(si.PublicKeyOid.DH, standardized_spki(11, _integer(5))))
    # A point of the right length but from another curve (invalid-curve attack).
    other = EcPrivateKey.generate(curve_by_name("secp224r1")).public_key().encode()
    with pytest.raises(MalformedInput):
        chip_public_key(dg14_key(si.PublicKeyOid.ECDH, standardized_spki(11, other)))


# --- the card issued on each group ----------------------------------------------------------


def _profile_for(parameter_id: int) -> CardProfile:
    group = standardized(parameter_id)
    algorithm = (
        CaAlgorithm.ECDH_AES_CBC_CMAC_128
        if isinstance(group, Curve)
        else CaAlgorithm.DH_AES_CBC_CMAC_128
    )
    return attrs.evolve(
        profile("cnie"),
        name=f"cnie-ca-{parameter_id}",
        chip_authentication=algorithm,
        chip_authentication_parameter_id=parameter_id,
    )


def _read(card: IssuedCard, transport: Transport, password: MrzKey | CAN) -> None:
    trust = TrustStore()
    trust.add_csca(card.csca)
    document = DocumentReader(transport, random=FixedRandom(12)).read(
        password, active_auth_challenge=bytes(range(8))
    )
    verification = document.verify(trust, clock=FixedClock.at(NOW))
    check = verification.check("chip_authentication")
    assert check.status is CheckStatus.PASSED, check.reason
    assert verification.genuine, verification.verdict_reason


@pytest.mark.parametrize("parameter_id", list(DomainParameterId), ids=lambda i: i.name)
def test_chip_authentication_on_every_standardized_group(parameter_id: DomainParameterId) -> None:
    card = issue_card(_profile_for(parameter_id), clock=FixedClock.at(NOW), can="123456")
    key = card.data.secrets.ca_key
    group = standardized(parameter_id)
    if isinstance(group, Curve):
        # cryptography's key where it has the curve, our own elsewhere.
        own = eckeys.native_curve(group) is None
        assert isinstance(key, EcPrivateKey) is own
    _read(card, MemoryTransport(VirtualCard(card.data, random=FixedRandom(11))), CAN("123456"))


def _specimen_like() -> IssuedCard:
    """A BAC passport with CA (ECDH, 3DES, MSE:Set KAT) on brainpoolP224r1, like the specimen."""
    specimen = attrs.evolve(
        profile("passport-bac"),
        name="passport-bp224",
        chip_authentication_parameter_id=DomainParameterId.BRAINPOOLP224R1,
    )
    return issue_card(specimen, clock=FixedClock.at(NOW))


def _mrz(card: IssuedCard) -> MrzKey:
    info = card.data.secrets.mrz_information
    return MrzKey(info[0:9], info[10:16], info[17:23])


@contextlib.contextmanager
def _udp(card: VirtualCard) -> Iterator[Transport]:
    with UdpCardServer(card) as server:
        nfc = NfcpyTransport(server.device_path, timeout=5.0)
        nfc.connect()
        try:
            yield nfc
        finally:
            nfc.close()


@pytest.mark.parametrize("path", ["memory", "udp"])
def test_brainpool_p224_chip_authentication_against_the_virtual_card(path: str) -> None:
    card = _specimen_like()
    assert isinstance(card.data.secrets.ca_key, EcPrivateKey)
    assert card.data.secrets.ca_key.curve == BRAINPOOLP224R1
    virtual = VirtualCard(card.data, random=FixedRandom(11))
    if path == "memory":
        _read(card, MemoryTransport(virtual), _mrz(card))
    else:
        with _udp(virtual) as transport:
            _read(card, transport, _mrz(card))


def test_a_clone_of_the_brainpool_p224_card_fails_chip_authentication() -> None:
    card = _specimen_like()
    clone = clone_card(card.data)
    trust = TrustStore()
    trust.add_csca(card.csca)
    document = DocumentReader(
        MemoryTransport(VirtualCard(clone, random=FixedRandom(11))), random=FixedRandom(12)
    ).read(_mrz(card), active_auth_challenge=bytes(range(8)))
    verification = document.verify(trust, clock=FixedClock.at(NOW))
    assert verification.check("chip_authentication").status is not CheckStatus.PASSED
    assert not verification.genuine


@pytest.mark.parametrize(
    "parameter_id",
    [DomainParameterId.BRAINPOOLP224R1, DomainParameterId.MODP_2048_224],
    ids=["brainpoolP224r1", "modp_2048_224"],
)
def test_cards_with_own_and_dh_keys_save_and_load(parameter_id: int, tmp_path: Path) -> None:
    card = issue_card(_profile_for(parameter_id), clock=FixedClock.at(NOW), can="123456")
    save_card(card, tmp_path)
    loaded = load_card(tmp_path)
    assert loaded.secrets.ca_key == card.data.secrets.ca_key
    assert loaded.profile.chip_authentication_parameter_id == parameter_id
    _read(card, MemoryTransport(VirtualCard(loaded, random=FixedRandom(11))), CAN("123456"))


# --- validation of received keys -----------------------------------------------------------


def test_the_card_refuses_invalid_ephemeral_keys() -> None:
    static = EcPrivateKey.generate(BRAINPOOLP224R1)
    good = EcPrivateKey.generate(BRAINPOOLP224R1).public_key().encode()
    algorithm = CaAlgorithm.ECDH_3DES_CBC_CBC
    card_session_keys(algorithm, static, good)
    for bad in (
        good[:-1] + bytes([good[-1] ^ 1]),  # off the curve
        b"\x04" + bytes(56),  # (0, 0)
        good[:-1],  # short
        b"\x02" + good[1:29],  # compressed: not allowed in CA
        EcPrivateKey.generate(curve_by_name("secp224r1")).public_key().encode(),
    ):
        with pytest.raises(MalformedInput):
            card_session_keys(algorithm, static, bad)


def test_keys_on_different_curves_do_not_agree() -> None:
    mine = EcPrivateKey.generate(BRAINPOOLP224R1)
    theirs = EcPrivateKey.generate(curve_by_name("secp224r1")).public_key()
    with pytest.raises(MalformedInput):
        shared_secret(mine, theirs)


def _toy_curve() -> tuple[Curve, ec_math.Point, ec_math.Point]:
    """y^2 = x^3 + 5x + 7 over GF(10007): 10196 = 4 * 2549 points, so cofactor 4."""
    p, a, b, n = 10007, 5, 7, 2549
    roots = ((x, ec_math.sqrt_mod(x**3 + a * x + b, p)) for x in range(p))
    x, y = next((x, y) for x, y in roots if y)
    start = ec_math.Point(x, y)
    curve = Curve("toy", p, a, b, 0, 0, n, 4)
    generator = ec_math.multiply(curve, 4, start)
    small = ec_math.multiply(curve, n, start)
    assert generator is not None
    assert small is not None  # this start point's order has a factor of the cofactor
    return curve, generator, small


def test_cofactor_points_outside_the_prime_subgroup_are_refused() -> None:
    curve, generator, small = _toy_curve()
    ec_math.validate_public_point(curve, generator)
    with pytest.raises(MalformedInput):
        ec_math.validate_public_point(curve, small)
    with pytest.raises(MalformedInput):
        ec_math.validate_public_point(curve, ec_math.Point(generator.x, generator.y + 1))


# --- the ladder -------------------------------------------------------------------------------

_CURVES = [g for g in map(standardized, DomainParameterId) if isinstance(g, Curve)]


@pytest.mark.parametrize("curve", _CURVES, ids=lambda c: c.name)
def test_ladder_agrees_on_edge_scalars(curve: Curve) -> None:
    n = curve.n
    point = ec_math.multiply(curve, 0xBEEF, curve.generator)
    assert point is not None
    for k in (1, 2, 3, n - 1, n - 2, (n - 1) // 2, (n + 1) // 2, 1 << (n.bit_length() - 1)):
        assert ec_math.multiply_secret(curve, k, point) == ec_math.multiply(curve, k, point)
    assert ec_math.multiply_secret(curve, n - 1, point) == ec_math.negate(curve, point)
    for k in (0, n, -1):
        with pytest.raises(ValueError, match="scalar"):
            ec_math.multiply_secret(curve, k, point)


@settings(max_examples=40, deadline=None)
@given(
    curve=st.sampled_from(_CURVES),
    data=st.data(),
)
def test_ladder_and_straus_agree_with_the_public_multiplication(
    curve: Curve, data: st.DataObject
) -> None:
    k = data.draw(st.integers(1, curve.n - 1))
    u1 = data.draw(st.integers(0, curve.n - 1))
    u2 = data.draw(st.integers(0, curve.n - 1))
    q = ec_math.multiply(curve, k, curve.generator)
    assert q is not None
    assert ec_math.multiply_secret(curve, k, curve.generator) == q
    assert ec_math.multiply_add(curve, u1, u2, q) == ec_math.add(
        curve, ec_math.multiply(curve, u1, curve.generator), ec_math.multiply(curve, u2, q)
    )


def test_ecdh_both_paths_agree_where_cryptography_has_the_curve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for curve in _CURVES:
        if eckeys.native_curve(curve) is None:
            continue
        a, b = EcPrivateKey.generate(curve), EcPrivateKey.generate(curve)
        native = a.exchange(b.public_key())
        with monkeypatch.context() as patch:
            patch.setattr(eckeys, "native_curve", lambda _curve: None)
            assert EcPrivateKey(curve, a.d).exchange(b.public_key()) == native
            assert EcPrivateKey(curve, b.d).public_key() == b.public_key()
        assert encode_public_key(a.public_key()) == a.public_key().encode()


# --- hostile key encodings --------------------------------------------------------------------

_SEED_KEYS = [
    standardized_spki(11, EcPrivateKey(BRAINPOOLP224R1, 7).public_key().encode()),
    standardized_spki(0, _integer(5)),
    SPECIMEN.read_bytes(),
]


@settings(max_examples=300, deadline=None)
@given(
    seed=st.sampled_from(_SEED_KEYS),
    position=st.integers(0, 10_000),
    replacement=st.binary(min_size=0, max_size=3),
    protocol=st.sampled_from(list(si.PublicKeyOid)),
)
def test_mutated_keys_give_typed_errors_only(
    seed: bytes, position: int, replacement: bytes, protocol: si.PublicKeyOid
) -> None:
    """Any byte edit of a key (or of the specimen DG14) parses or fails with a library error."""
    where = position % len(seed)
    mutated = seed[:where] + replacement + seed[where + 1 :]
    try:
        if seed is _SEED_KEYS[2]:
            infos = parse_dg14(mutated).infos
            keys = [i for i in infos if isinstance(i, si.ChipAuthenticationPublicKeyInfo)]
        else:
            keys = [dg14_key(protocol, mutated)]
            parse_public_key_info(mutated)
        for info in keys:
            key = chip_public_key(info)
            assert isinstance(key, EcPublicKey | DhPublicKey)
    except (MalformedInput, UnsupportedAlgorithm):
        pass


@pytest.mark.parametrize(
    "parameter_id",
    [
        DomainParameterId.BRAINPOOLP192R1,
        DomainParameterId.BRAINPOOLP224R1,
        DomainParameterId.BRAINPOOLP320R1,
        DomainParameterId.SECP224R1,
    ],
    ids=lambda i: i.name,
)
def test_active_authentication_on_curves_end_to_end(parameter_id: DomainParameterId) -> None:
    """A card whose ECDSA AA key (DG15) is on the curve; the reader's verdict checks it."""
    card_profile = attrs.evolve(
        profile("cnie"), name="cnie-aa", active_authentication_parameter_id=parameter_id
    )
    card = issue_card(card_profile, clock=FixedClock.at(NOW), can="123456")
    dg15 = next(f.data for p, f in card.data.files.files().items() if p.endswith("/DG15"))
    key = parse_dg15(dg15).public_key
    assert key.curve == standardized(parameter_id).name
    trust = TrustStore()
    trust.add_csca(card.csca)
    transport = MemoryTransport(VirtualCard(card.data, random=FixedRandom(11)))
    document = DocumentReader(transport, random=FixedRandom(12)).read(
        CAN("123456"), active_auth_challenge=bytes(range(8))
    )
    verification = document.verify(trust, clock=FixedClock.at(NOW))
    check = verification.check("active_authentication")
    assert check.status is CheckStatus.PASSED, check.reason
    assert verification.genuine
    clone = clone_card(card.data)
    transport = MemoryTransport(VirtualCard(clone, random=FixedRandom(11)))
    copied = DocumentReader(transport, random=FixedRandom(12)).read(
        CAN("123456"), active_auth_challenge=bytes(range(8))
    )
    assert (
        copied.verify(trust, clock=FixedClock.at(NOW)).check("active_authentication").status
        is not CheckStatus.PASSED
    )


@pytest.mark.parametrize("curve", _CURVES, ids=lambda c: c.name)
def test_the_co_z_ladder_hands_its_degenerate_case_to_the_general_one(
    curve: Curve, monkeypatch: pytest.MonkeyPatch
) -> None:
    # k = n - 1 walks through n * P (the point at infinity) at the last step:
    # co-Z formulas cannot hold it, so the ladder must notice and fall back.
    point = ec_math.multiply(curve, 0xBEEF, curve.generator)
    assert point is not None
    expected = ec_math.multiply(curve, 0xC0FFEE, point)
    general = ec_math.multiply
    calls: list[int] = []

    def spy(curve: Curve, scalar: int, point: ec_math.Point | None) -> ec_math.Point | None:
        calls.append(scalar)
        return general(curve, scalar, point)

    monkeypatch.setattr(ec_math, "multiply", spy)
    assert ec_math.multiply_secret(curve, curve.n - 1, point) == ec_math.negate(curve, point)
    assert calls == [curve.n - 1]
    calls.clear()
    assert ec_math.multiply_secret(curve, 0xC0FFEE, point) == expected
    assert not calls

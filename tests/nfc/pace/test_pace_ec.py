"""The small EC module and the standardized domain parameters, checked against cryptography."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec as cec
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.errors import MalformedInput, RemoteProtocolError, UnsupportedAlgorithm
from macnss_auth.nfc import domain_params as dp
from macnss_auth.nfc.ec import (
    Curve,
    Point,
    add,
    decode_point,
    encode_point,
    multiply,
    negate,
    sqrt_mod,
)
from macnss_auth.nfc.pace import integrated_mapping_point
from tests.nfc.protocols.vectors import load

CURVES = [g for g in (dp.standardized(i) for i in dp.DomainParameterId) if isinstance(g, Curve)]
GROUPS = [
    g for g in (dp.standardized(i) for i in dp.DomainParameterId) if isinstance(g, dp.DHGroup)
]

# Curves cryptography implements (brainpoolP192r1/P224r1/P320r1 are missing there).
_CRYPTOGRAPHY: dict[str, cec.EllipticCurve] = {
    "secp192r1": cec.SECP192R1(),
    "secp224r1": cec.SECP224R1(),
    "secp256r1": cec.SECP256R1(),
    "secp384r1": cec.SECP384R1(),
    "secp521r1": cec.SECP521R1(),
    "brainpoolP256r1": cec.BrainpoolP256R1(),
    "brainpoolP384r1": cec.BrainpoolP384R1(),
    "brainpoolP512r1": cec.BrainpoolP512R1(),
}


def _is_probable_prime(n: int) -> bool:
    if n < 2:
        return False
    for small in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % small == 0:
            return n == small
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for witness in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41):
        x = pow(witness, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def test_every_id_is_standardized_and_reserved_ids_are_refused() -> None:
    assert len(CURVES) == 11
    assert len(GROUPS) == 3
    for reserved in (3, 4, 5, 6, 7, 19, -1):
        with pytest.raises(UnsupportedAlgorithm):
            dp.standardized(reserved)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_curve_parameters_are_consistent(curve: Curve) -> None:
    assert _is_probable_prime(curve.p)
    assert _is_probable_prime(curve.n)
    assert curve.contains(curve.generator)
    assert multiply(curve, curve.n, curve.generator) is None
    assert multiply(curve, curve.n - 1, curve.generator) == negate(curve, curve.generator)
    # The discriminant is non-zero: the curve is not singular.
    assert (4 * curve.a**3 + 27 * curve.b**2) % curve.p != 0
    assert dp.curve_by_name(curve.name) is curve
    assert dp.curve_by_oid(dp.CURVE_OIDS[curve.name]) is curve


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_modp_groups_are_consistent(group: dp.DHGroup) -> None:
    assert _is_probable_prime(group.p)
    assert _is_probable_prime(group.q)
    assert (group.p - 1) % group.q == 0
    assert pow(group.g, group.q, group.p) == 1
    assert group.contains(group.g)
    assert not group.contains(1)
    assert not group.contains(group.p - 1)


@pytest.mark.parametrize(
    "curve", [c for c in CURVES if c.name in _CRYPTOGRAPHY], ids=lambda c: c.name
)
@settings(max_examples=15)
@given(data=st.data())
def test_scalar_multiplication_matches_cryptography(curve: Curve, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=1, max_value=curve.n - 1))
    numbers = cec.derive_private_key(k, _CRYPTOGRAPHY[curve.name]).public_key().public_numbers()
    assert multiply(curve, k, curve.generator) == Point(numbers.x, numbers.y)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
@settings(max_examples=10)
@given(data=st.data())
def test_group_laws(curve: Curve, data: st.DataObject) -> None:
    a = data.draw(st.integers(min_value=1, max_value=curve.n - 1))
    b = data.draw(st.integers(min_value=1, max_value=curve.n - 1))
    g = curve.generator
    pa, pb = multiply(curve, a, g), multiply(curve, b, g)
    # (a + b) G = aG + bG, and scalar multiplication composes: b (a G) = (ab) G.
    assert add(curve, pa, pb) == multiply(curve, (a + b) % curve.n, g)
    assert multiply(curve, b, pa) == multiply(curve, a * b % curve.n, g)
    assert add(curve, pa, negate(curve, pa)) is None
    assert pa is not None
    assert decode_point(curve, encode_point(curve, pa)) == pa


def test_small_scalars_and_infinity() -> None:
    curve = dp.BRAINPOOLP256R1
    g = curve.generator
    assert multiply(curve, 0, g) is None
    assert multiply(curve, 1, g) == g
    assert multiply(curve, 2, g) == add(curve, g, g)
    assert multiply(curve, 5, None) is None
    assert add(curve, None, g) == g
    assert add(curve, g, None) == g
    with pytest.raises(ValueError, match="non-negative"):
        multiply(curve, -1, g)


def test_decode_point_refuses_bad_points() -> None:
    curve = dp.SECP256R1
    good = encode_point(curve, curve.generator)
    with pytest.raises(MalformedInput):
        decode_point(curve, good[:-1])
    with pytest.raises(MalformedInput):
        decode_point(curve, b"\x02" + good[1:])
    with pytest.raises(MalformedInput):
        decode_point(curve, good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(MalformedInput):
        decode_point(curve, b"\x04" + b"\xff" * 64)


@given(st.integers(min_value=0, max_value=dp.SECP224R1.p - 1))
@settings(max_examples=50)
def test_sqrt_mod_on_both_kinds_of_prime(value: int) -> None:
    for p in (dp.SECP224R1.p, dp.BRAINPOOLP256R1.p):  # p = 1 mod 4 and p = 3 mod 4
        root = sqrt_mod(value, p)
        if root is None:
            assert pow(value % p, (p - 1) // 2, p) == p - 1
        else:
            assert root * root % p == value % p


def test_explicit_parameters_match_named_curves() -> None:
    c = dp.BRAINPOOLP224R1
    assert dp.curve_from_explicit(p=c.p, a=c.a, b=c.b, gx=c.gx, gy=c.gy, n=c.n) is c
    assert dp.curve_from_explicit(p=c.p, a=c.a, b=c.b, gx=c.gx, gy=c.gy, n=c.n + 2) is None
    with pytest.raises(UnsupportedAlgorithm):
        dp.curve_by_name("secp256k1")
    with pytest.raises(UnsupportedAlgorithm):
        dp.curve_by_oid("1.3.132.0.10")


@pytest.mark.parametrize("curve", [c for c in CURVES if c.p % 4 == 3], ids=lambda c: c.name)
@settings(max_examples=20)
@given(data=st.data())
def test_integrated_mapping_point_is_on_the_curve(curve: Curve, data: st.DataObject) -> None:
    t = data.draw(st.integers(min_value=2, max_value=curve.p - 2))
    # t = +-1 gives alpha = -1, where the encoding divides by zero (it raises then).
    point = integrated_mapping_point(curve, t)
    assert curve.contains(point)
    assert multiply(curve, curve.n, point) is None


def test_integrated_mapping_point_refuses_degenerate_input() -> None:
    curve = dp.BRAINPOOLP256R1
    for t in (0, 1, curve.p - 1):
        with pytest.raises(RemoteProtocolError):
            integrated_mapping_point(curve, t)
    with pytest.raises(UnsupportedAlgorithm):
        integrated_mapping_point(dp.SECP224R1, 5)


_PUBLISHED = load("published.json", source="domain_params")
_RFC5114_ID0 = load("dh_rfc5114_1024_160.json")


@pytest.mark.parametrize("name", sorted(_PUBLISHED["curves"]))
def test_curve_values_are_the_published_ones(name: str) -> None:
    published = _PUBLISHED["curves"][name]
    curve = dp.curve_by_name(name)
    assert curve.h == published["h"]
    for field in ("p", "a", "b", "gx", "gy", "n"):
        assert getattr(curve, field) == int(published[field], 16), field


@pytest.mark.parametrize("name", ["modp_1024_160", "modp_2048_224", "modp_2048_256"])
def test_modp_values_are_the_published_ones(name: str) -> None:
    published = _RFC5114_ID0 if name == "modp_1024_160" else _PUBLISHED["groups"][name]
    group = getattr(dp, name.upper())
    assert group.name == name
    assert (group.p, group.g, group.q) == tuple(int(published[f], 16) for f in "pgq")


def _openssl_point(curve: cec.EllipticCurve, scalar: int) -> tuple[int, int]:
    numbers = cec.derive_private_key(scalar, curve).public_key().public_numbers()
    return numbers.x, numbers.y


@pytest.mark.parametrize("name", sorted(_CRYPTOGRAPHY))
def test_curve_values_match_openssls_own_tables(name: str) -> None:
    # OpenSSL (through cryptography) never shows p, a, b, but its points give them away:
    # 1*G is G, (n-1)*G is -G = (gx, p - gy), and two points fix a and b.
    curve = dp.curve_by_name(name)
    theirs = _CRYPTOGRAPHY[name]
    gx, gy = _openssl_point(theirs, 1)
    x2, y2 = _openssl_point(theirs, 2)
    _, minus_gy = _openssl_point(theirs, curve.n - 1)
    p = gy + minus_gy
    a = (gy * gy - gx**3 - y2 * y2 + x2**3) * pow(gx - x2, -1, p) % p
    b = (gy * gy - gx**3 - a * gx) % p
    assert (p, a, b, gx, gy) == (curve.p, curve.a, curve.b, curve.gx, curve.gy)

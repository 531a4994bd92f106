"""The fast path: k*P in cryptography (two ECDHs) and the y-recovery that rebuilds points."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric import ec as cec

from macnss_auth.clock import SystemRandom
from macnss_auth.errors import DocumentNotGenuine, MalformedInput
from macnss_auth.nfc import domain_params as dp
from macnss_auth.nfc import pace
from macnss_auth.nfc.ec import (
    Curve,
    Point,
    add,
    add_secret,
    inverse_blinded,
    multiply,
    negate,
    recover_y,
    sqrt_mod,
)
from macnss_auth.nfc.eckeys import native_curve, native_multiply

CURVES = [g for g in (dp.standardized(i) for i in dp.DomainParameterId) if isinstance(g, Curve)]
NATIVE = [c for c in CURVES if native_curve(c) is not None]
RNG = random.Random(20261205)


def _scalar(curve: Curve) -> int:
    return RNG.randrange(1, curve.n)


def _point(curve: Curve) -> Point:
    point = multiply(curve, _scalar(curve), curve.generator)
    assert point is not None
    return point


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_recover_y_gives_both_roots(curve: Curve) -> None:
    # Q and -Q share x; x(Q + R) and x(-Q + R) pick one each.
    seen_parities = set()
    for _ in range(6):
        q, r = _point(curve), _point(curve)
        for target in (q, negate(curve, q)):
            assert target is not None
            total = add(curve, target, r)
            assert total is not None
            assert recover_y(curve, r, target.x, total.x) == target
            seen_parities.add(target.y & 1)
    assert seen_parities == {0, 1}


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_no_point_has_y_zero(curve: Curve) -> None:
    # y = 0 means order 2; a group of odd prime order n (cofactor 1) has none, so
    # x^3 + a*x + b has no root and the two roots of y^2 always differ.
    assert curve.h == 1
    assert curve.n % 2 == 1
    with pytest.raises(MalformedInput):
        recover_y(curve, Point(curve.generator.x, 0), 1, 2)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_recover_y_refuses_x_of_no_point(curve: Curve) -> None:
    p = curve.p
    x = next(x for x in range(2, 1000) if sqrt_mod(x**3 + curve.a * x + curve.b, p) is None)
    r = _point(curve)
    with pytest.raises(MalformedInput, match="no point"):
        recover_y(curve, r, x, (r.x + 1) % p)
    # A valid x with an inconsistent sum is refused as well, not turned into a wrong point.
    q = _point(curve)
    total = add(curve, q, r)
    assert total is not None
    with pytest.raises(MalformedInput):
        recover_y(curve, r, q.x, (total.x + 1) % p)


def test_recover_y_refuses_equal_x_and_out_of_range() -> None:
    curve = NATIVE[0]
    r = _point(curve)
    with pytest.raises(MalformedInput):
        recover_y(curve, r, r.x, 5)
    with pytest.raises(MalformedInput):
        recover_y(curve, r, curve.p, 5)


def test_blinded_inverse_and_secret_addition() -> None:
    curve = NATIVE[0]
    for _ in range(20):
        v = RNG.randrange(1, curve.p)
        assert v * inverse_blinded(v, curve.p) % curve.p == 1
        a, b = _point(curve), _point(curve)
        assert add_secret(curve, a, b) == add(curve, a, b)
    a = _point(curve)
    assert add_secret(curve, a, a) == add(curve, a, a)
    assert add_secret(curve, a, Point(a.x, curve.p - a.y)) is None
    with pytest.raises(ValueError, match="no inverse"):
        inverse_blinded(0, curve.p)


@pytest.mark.parametrize("curve", NATIVE, ids=lambda c: c.name)
def test_native_multiply_matches_own_arithmetic(curve: Curve) -> None:
    native = native_curve(curve)
    assert native is not None
    for _ in range(4):
        k, point = _scalar(curve), _point(curve)
        key = cec.derive_private_key(k, native)
        assert native_multiply(curve, key, point) == multiply(curve, k, point)
    # P = +-G: the key's own public point, or its negation.
    k = _scalar(curve)
    key = cec.derive_private_key(k, native)
    assert native_multiply(curve, key, curve.generator) == multiply(curve, k, curve.generator)
    minus_g = negate(curve, curve.generator)
    assert minus_g is not None
    assert native_multiply(curve, key, minus_g) == multiply(curve, k, minus_g)


@pytest.mark.parametrize("curve", NATIVE, ids=lambda c: c.name)
def test_generic_mapping_fast_path_matches_own_arithmetic(curve: Curve) -> None:
    base = pace.base_domain(curve)
    nonce = RNG.randbytes(16)
    a, chip_map = _scalar(curve), _scalar(curve)
    chip_public = pace.public_key(base, chip_map)
    h = pace.mapping_shared_element(base, a, chip_public)
    peer = multiply(curve, chip_map, curve.generator)
    assert h == multiply(curve, a, peer)
    mapped = pace.generic_mapping(base, nonce, h)
    assert isinstance(mapped, pace.EcDomain)
    s_g = multiply(curve, int.from_bytes(nonce, "big"), curve.generator)
    assert mapped.generator == add(curve, s_g, h)
    x = _scalar(curve)
    expected = multiply(curve, x, mapped.generator)
    assert expected is not None
    assert pace.decode_public_key(mapped, pace.public_key(mapped, x)) == expected


@pytest.mark.parametrize("curve", NATIVE[:2], ids=lambda c: c.name)
def test_system_random_keys_come_from_openssl_and_agree(curve: Curve) -> None:
    base = pace.base_domain(curve)
    first = pace.generate_private_key(base, SystemRandom())
    second = pace.generate_private_key(base, SystemRandom())
    assert 0 < first < curve.n
    assert 0 < second < curve.n
    assert first != second
    public = pace.decode_public_key(base, pace.public_key(base, first))
    assert public == multiply(curve, first, curve.generator)
    # Agreement both ways, and with a plain-int copy of the key (no cached OpenSSL key).
    k1 = pace.shared_secret(base, first, pace.public_key(base, second))
    k2 = pace.shared_secret(base, int(second), pace.public_key(base, int(first)))
    assert k1 == k2


def test_cam_verification_on_the_fast_path() -> None:
    curve = NATIVE[0]
    static, mapping = _scalar(curve), _scalar(curve)
    base = pace.base_domain(curve)
    data = pace.chip_authentication_data(curve, static, mapping)
    pace.verify_chip_authentication_mapping(
        curve, data, pace.public_key(base, mapping), pace.public_key(base, static)
    )
    wrong = pace.public_key(base, mapping + 1)
    with pytest.raises(DocumentNotGenuine, match="does not verify"):
        pace.verify_chip_authentication_mapping(curve, data, wrong, pace.public_key(base, static))

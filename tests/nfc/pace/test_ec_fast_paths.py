"""The fast paths of the variable-time arithmetic in ``macnss_auth.nfc.ec``.

``multiply`` takes a per-curve fixed-base table for multiples of the standard
generator and runs its (and ``multiply_add``'s) doublings on the isomorphic
``a = -3`` curve; each is checked here against a plain affine double-and-add
written in the test, on every standardized curve, for random and edge scalars.
"""

from __future__ import annotations

import secrets

import pytest
from cryptography.hazmat.primitives.asymmetric import ec as cec
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.nfc import domain_params as dp
from macnss_auth.nfc import ec
from macnss_auth.nfc.ec import Curve, Point
from macnss_auth.nfc.pace import primitives as pm

CURVES = [g for g in (dp.standardized(i) for i in dp.DomainParameterId) if isinstance(g, Curve)]
# The curves the PACE terminal computes with this module (cryptography lacks them).
OWN = [c for c in CURVES if c.name in {"brainpoolP192r1", "brainpoolP224r1", "brainpoolP320r1"}]
_NATIVE: dict[str, cec.EllipticCurve] = {
    "secp256r1": cec.SECP256R1(),
    "brainpoolP256r1": cec.BrainpoolP256R1(),
    "brainpoolP384r1": cec.BrainpoolP384R1(),
}


def _reference(curve: Curve, k: int, point: Point | None) -> Point | None:
    """Affine double-and-add, most significant bit first (independent of the fast paths)."""
    result: Point | None = None
    for bit in bin(k)[2:] if k else "":
        result = ec.add(curve, result, result)
        if bit == "1":
            result = ec.add(curve, result, point)
    return result


def _edge_scalars(curve: Curve) -> list[int]:
    n, bits = curve.n, curve.n.bit_length()
    return [1, 2, 3, 31, 32, 33, 63, 64, 65, n // 2, n - 2, n - 1, (1 << bits) - 1, 1 << (bits - 1)]


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_fixed_base_edge_scalars(curve: Curve) -> None:
    g = curve.generator
    for k in _edge_scalars(curve):
        assert ec.multiply(curve, k, g) == _reference(curve, k, g), k
    # n*G is infinity and (n + 1)*G is G again, on the fixed-base path too.
    assert ec.multiply(curve, curve.n, g) is None
    assert ec.multiply(curve, curve.n + 1, g) == g
    assert ec.multiply(curve, curve.n - 1, g) == ec.negate(curve, g)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_fixed_base_and_variable_point_match_double_and_add(
    curve: Curve, data: st.DataObject
) -> None:
    k = data.draw(st.integers(min_value=1, max_value=curve.n - 1))
    j = data.draw(st.integers(min_value=1, max_value=curve.n - 1))
    g = curve.generator
    expected = _reference(curve, k, g)
    assert ec.multiply(curve, k, g) == expected
    # A point other than G takes the wNAF path on the a = -3 isomorphic curve.
    point = ec.multiply(curve, j, g)
    assert point is not None
    assert ec.multiply(curve, k, point) == _reference(curve, k, point)
    assert ec.multiply(curve, k, point) == ec.multiply(curve, k * j % curve.n, g)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_variable_point_edge_scalars(curve: Curve) -> None:
    point = _reference(curve, 0x1234567, curve.generator)
    assert point is not None
    for k in _edge_scalars(curve):
        assert ec.multiply(curve, k, point) == _reference(curve, k, point), k
    assert ec.multiply(curve, curve.n, point) is None


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_multiply_add_matches_the_sum(curve: Curve, data: st.DataObject) -> None:
    u1 = data.draw(st.integers(min_value=0, max_value=curve.n - 1))
    u2 = data.draw(st.integers(min_value=0, max_value=curve.n - 1))
    point = ec.multiply(curve, 0xC0FFEE, curve.generator)
    assert point is not None
    expected = ec.add(curve, _reference(curve, u1, curve.generator), _reference(curve, u2, point))
    assert ec.multiply_add(curve, u1, u2, point) == expected


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_multiply_add_edges(curve: Curve) -> None:
    g, n = curve.generator, curve.n
    assert ec.multiply_add(curve, 0, 0, g) is None
    assert ec.multiply_add(curve, 1, 0, g) == g
    assert ec.multiply_add(curve, 0, 1, g) == g
    # u1*G + (n - u1)*G is infinity; the two terms meet (a doubling) for u1 = u2.
    assert ec.multiply_add(curve, 5, n - 5, g) is None
    assert ec.multiply_add(curve, n - 1, n - 1, g) == ec.multiply(curve, n - 2, g)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_minus3_isomorphism(curve: Curve) -> None:
    u = ec._minus3_scale(curve)
    assert u is not None
    p = curve.p
    assert (curve.a * pow(u, 4, p) + 3) % p == 0
    # The generator's image lies on y^2 = x^3 - 3x + b*u^6.
    x, y = curve.gx * u * u % p, curve.gy * pow(u, 3, p) % p
    assert (y * y - (x * x * x - 3 * x + curve.b * pow(u, 6, p))) % p == 0


def test_curve_without_the_isomorphism_uses_the_general_doubling() -> None:
    # p = 3 mod 4 and -3/a a non-residue: no u with a*u^4 = -3.
    p = (1 << 127) - 1
    a = next(a for a in range(2, 100) if pow(-3 * pow(a, -1, p) % p, (p - 1) // 2, p) != 1)
    b = 7
    x = next(x for x in range(1, 100) if ec.sqrt_mod(x**3 + a * x + b, p) is not None)
    y = ec.sqrt_mod(x**3 + a * x + b, p)
    assert y is not None
    # n is only a label here: the point is not the generator, so it is never used.
    curve = Curve("toy", p, a, b, gx=x, gy=y, n=p)
    assert ec._minus3_scale(curve) is None
    point = ec.add(curve, curve.generator, curve.generator)
    assert point is not None
    for k in (1, 2, 3, 17, secrets.randbits(127), secrets.randbits(127)):
        assert ec.multiply(curve, k, point) == _reference(curve, k, point)


def test_generator_of_tiny_order_stays_exact() -> None:
    # y^2 = x^3 + 2x + 3 over GF(97): a hostile explicit curve whose "generator"
    # has a small order; the fixed-base table refuses it and the result is exact.
    curve = Curve("tiny", 97, 2, 3, gx=3, gy=6, n=101)
    g = curve.generator
    for k in range(40):
        assert ec.multiply(curve, k, g) == _reference(curve, k, g), k


@pytest.mark.parametrize("curve", [c for c in CURVES if c.name in _NATIVE], ids=lambda c: c.name)
def test_fixed_base_matches_cryptography(curve: Curve) -> None:
    for _ in range(5):
        k = secrets.randbelow(curve.n - 1) + 1
        numbers = cec.derive_private_key(k, _NATIVE[curve.name]).public_key().public_numbers()
        assert ec.multiply(curve, k, curve.generator) == Point(numbers.x, numbers.y)


@pytest.mark.parametrize("curve", OWN, ids=lambda c: c.name)
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_generic_mapping_public_key_on_own_curves(curve: Curve, data: st.DataObject) -> None:
    # x*G' in one interleaved pass equals the step-by-step H, G' = s*G + H and x*G'.
    scalars = st.integers(min_value=1, max_value=curve.n - 1)
    mapping_key, chip_mapping_key, x = data.draw(scalars), data.draw(scalars), data.draw(scalars)
    nonce = data.draw(st.binary(min_size=16, max_size=16))
    base = pm.base_domain(curve)
    assert isinstance(base, pm.EcDomain)
    chip_mapping = ec.multiply(curve, chip_mapping_key, curve.generator)
    assert chip_mapping is not None
    shared = pm.mapping_shared_element(base, mapping_key, ec.encode_point(curve, chip_mapping))
    mapped = pm.generic_mapping(base, nonce, shared)
    expected = pm.public_key(mapped, x)
    assert pm.generic_mapping_public_key(base, nonce, mapping_key, chip_mapping, x) == expected
    # And against the reference arithmetic: x*(s*G + a*b*G).
    s = int.from_bytes(nonce, "big")
    reference = _reference(
        curve, x * (s + mapping_key * chip_mapping_key) % curve.n, curve.generator
    )
    assert reference is not None
    assert expected == ec.encode_point(curve, reference)


# --- the constant-sequence fixed-base comb (multiply_generator_secret) ---------------


def _comb_edge_scalars(curve: Curve) -> list[int]:
    # Both parities (an even k becomes k + n), the ends of [1, n), and the scalars
    # whose partial sums meet the last rows' entries (k = 2^(w*t+1) mod n and its
    # neighbours, t the number of regular digits).
    n = curve.n
    width = ec._SECRET_COMB_WINDOW
    t = -(-(n.bit_length() + 1) // width)
    meet = (1 << (width * t + 1)) % n
    near = [meet - 1, meet, meet + 1, n - meet, (meet - n) % n]
    return [k for k in (*_edge_scalars(curve), *near) if 0 < k < n]


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_secret_comb_edge_scalars(curve: Curve) -> None:
    for k in _comb_edge_scalars(curve):
        assert ec.multiply_generator_secret(curve, k) == _reference(curve, k, curve.generator), k


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_secret_comb_matches_double_and_add(curve: Curve, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=1, max_value=curve.n - 1))
    assert ec.multiply_generator_secret(curve, k) == _reference(curve, k, curve.generator)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_secret_comb_runs_one_sequence(curve: Curve, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every scalar, even or odd, small or large, takes the same number of mixed
    # additions and never the variable-time fallback.
    calls: list[int] = []
    real_madd = ec._madd

    def counting_madd(*args: int) -> tuple[int, int, int]:
        calls.append(1)
        return real_madd(*args)

    def no_fallback(*args: object) -> None:
        raise AssertionError("the variable-time fallback ran")

    ec._secret_comb_table(curve)  # built (with its own additions) before counting
    monkeypatch.setattr(ec, "_madd", counting_madd)
    monkeypatch.setattr(ec, "multiply", no_fallback)
    counts = set()
    for k in (1, 2, 3, curve.n // 3, curve.n - 2, curve.n - 1, secrets.randbelow(curve.n - 1) + 1):
        calls.clear()
        ec.multiply_generator_secret(curve, k)
        counts.add(len(calls))
    assert len(counts) == 1


def test_secret_comb_refuses_scalars_out_of_range() -> None:
    curve = CURVES[0]
    for k in (0, -1, curve.n, curve.n + 1):
        with pytest.raises(ValueError, match=r"\[1, n\)"):
            ec.multiply_generator_secret(curve, k)


def test_secret_comb_on_a_small_group_covers_every_scalar() -> None:
    # y^2 = x^3 + x + 1 over GF(211) has 223 points, a prime: every scalar of the
    # group, with the partial sums meeting the table's entries (doublings) and
    # their opposites (the fallback) far more often than on a real curve.
    curve = Curve("small", 211, 1, 1, gx=0, gy=1, n=223)
    assert _reference(curve, curve.n, curve.generator) is None
    for k in range(1, curve.n):
        assert ec.multiply_generator_secret(curve, k) == _reference(curve, k, curve.generator), k

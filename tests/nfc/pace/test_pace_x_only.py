"""The terminal's x-only Generic Mapping on curves where OpenSSL has no fast generator code.

With keys drawn by the CSPRNG (``SystemRandom``) on brainpoolP256r1/384r1/512r1
and P-192, :func:`~macnss_auth.nfc.pace.primitives.generic_mapping_public_key`
sends ``x*G'`` or ``(n - x)*G'`` (whichever has an even ``y``): ``H`` by two
ECDHs, ``s*G`` by the constant-sequence comb, ``x(x*G')`` by one ECDH and ``y``
by OpenSSL's point decompression, with no ``derive_private_key`` (two scalar
multiplications on these curves). Checked here against the own arithmetic,
by counting OpenSSL key derivations (the code before this change derived two
keys per mapping), and end to end against OpenPACE's chip (an independent
implementation: its token over our key and ours over its key must verify).
"""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric import ec as cec

from macnss_auth.clock import SystemRandom
from macnss_auth.errors import MalformedInput
from macnss_auth.nfc import domain_params as dp
from macnss_auth.nfc import ec
from macnss_auth.nfc.ec import Curve, Point
from macnss_auth.nfc.eckeys import native_curve, native_lift_x
from macnss_auth.nfc.mrz import CAN
from macnss_auth.nfc.pace import PaceTerminal
from macnss_auth.nfc.pace import primitives as pm
from macnss_auth.nfc.protocol import run
from macnss_auth.nfc.securityinfos import PaceInfo, PaceOid

from .openpace import PACE_CAN, OpenPace, OpenPaceChip

CURVES = [g for g in (dp.standardized(i) for i in dp.DomainParameterId) if isinstance(g, Curve)]
NATIVE = [c for c in CURVES if native_curve(c) is not None]
# The curves of the x-only path (pm._GENERIC_OPENSSL_CURVES), by parameter id.
X_ONLY_IDS = {8: "secp192r1", 13: "brainpoolP256r1", 16: "brainpoolP384r1", 17: "brainpoolP512r1"}
X_ONLY = [c for c in NATIVE if c.name in X_ONLY_IDS.values()]
RNG = random.Random(20261206)
CAN_DIGITS = b"123456"


def _point(curve: Curve) -> Point:
    point = ec.multiply(curve, RNG.randrange(1, curve.n), curve.generator)
    assert point is not None
    return point


@pytest.mark.parametrize("curve", NATIVE, ids=lambda c: c.name)
def test_native_lift_x_gives_the_even_point(curve: Curve) -> None:
    for _ in range(4):
        point = _point(curve)
        lifted = native_lift_x(curve, point.x)
        assert lifted.y % 2 == 0
        assert lifted in {point, ec.negate(curve, point)}


@pytest.mark.parametrize("curve", NATIVE[:3], ids=lambda c: c.name)
def test_native_lift_x_refuses_what_is_no_x_coordinate(curve: Curve) -> None:
    p = curve.p
    x = next(
        x for x in range(1, 200) if pow((x**3 + curve.a * x + curve.b) % p, (p - 1) // 2, p) > 1
    )
    for bad in (x, p, p + 1, -1):
        with pytest.raises(MalformedInput):
            native_lift_x(curve, bad)


def _mapping_inputs(curve: Curve) -> tuple[pm.EcDomain, bytes, int, int, Point, int]:
    base = pm.base_domain(curve)
    assert isinstance(base, pm.EcDomain)
    mapping_key = pm.generate_private_key(base, SystemRandom())
    x = pm.generate_private_key(base, SystemRandom())
    chip_key = RNG.randrange(1, curve.n)
    chip_mapping = ec.multiply(curve, chip_key, curve.generator)
    assert chip_mapping is not None
    return base, RNG.randbytes(16), mapping_key, x, chip_mapping, chip_key


@pytest.mark.parametrize("curve", X_ONLY, ids=lambda c: c.name)
def test_x_only_key_is_plus_or_minus_x_g_prime(curve: Curve) -> None:
    for _ in range(3):
        base, nonce, a, x, chip_mapping, b = _mapping_inputs(curve)
        sent = pm.decode_public_key(
            base, pm.generic_mapping_public_key(base, nonce, a, chip_mapping, x)
        )
        assert isinstance(sent, Point)
        # G' = s*G + a*b*G by the own (reference-tested) arithmetic.
        s = int.from_bytes(nonce, "big")
        exact = ec.multiply(curve, x * (s + a * b) % curve.n, curve.generator)
        assert exact is not None
        assert sent in {exact, ec.negate(curve, exact)}
        assert sent.y % 2 == 0
        # The chip's ECDH on the key sent and the terminal's on the chip's key agree.
        mapped = ec.add(
            curve,
            ec.multiply(curve, s, curve.generator),
            ec.multiply(curve, a * b, curve.generator),
        )
        assert mapped is not None
        chip_private = RNG.randrange(1, curve.n)
        chip_public = ec.multiply(curve, chip_private, mapped)
        assert chip_public is not None
        chip_side = ec.multiply(curve, chip_private, sent)
        assert chip_side is not None
        terminal_side = pm.shared_secret(base, x, ec.encode_point(curve, chip_public))
        assert terminal_side == ec.field_element_to_bytes(chip_side.x, curve.field_length)


@pytest.mark.parametrize("curve", X_ONLY, ids=lambda c: c.name)
def test_x_only_mapping_derives_no_openssl_key(
    curve: Curve, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The code before took two derive_private_key calls (four scalar multiplications
    # on these curves) per mapping; the x-only path takes none.
    base, nonce, a, x, chip_mapping, _ = _mapping_inputs(curve)
    ec.multiply_generator_secret(curve, 1)  # the comb's table, built once per curve
    derived: list[int] = []
    real = cec.derive_private_key

    def counting(value: int, native: cec.EllipticCurve) -> cec.EllipticCurvePrivateKey:
        derived.append(1)
        return real(value, native)

    monkeypatch.setattr(cec, "derive_private_key", counting)
    pm.generic_mapping_public_key(base, nonce, a, chip_mapping, x)
    assert derived == []


@pytest.mark.parametrize("curve", X_ONLY[:1], ids=lambda c: c.name)
def test_scripted_keys_keep_the_exact_key(curve: Curve) -> None:
    # A key from a scripted source (published vectors) gets exactly x*G'.
    base, nonce, a, _, chip_mapping, b = _mapping_inputs(curve)
    x = RNG.randrange(1, curve.n)
    sent = pm.decode_public_key(
        base, pm.generic_mapping_public_key(base, nonce, int(a), chip_mapping, x)
    )
    s = int.from_bytes(nonce, "big")
    assert sent == ec.multiply(curve, x * (s + a * b) % curve.n, curve.generator)


@pytest.mark.parametrize("parameter_id", sorted(X_ONLY_IDS), ids=X_ONLY_IDS.get)
def test_system_random_terminal_against_openpace_chip(lib: OpenPace, parameter_id: int) -> None:
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, parameter_id)
    evens = set()
    for _ in range(6):
        chip = OpenPaceChip(lib, info, CAN_DIGITS, PACE_CAN)
        try:
            terminal = PaceTerminal(CAN(CAN_DIGITS.decode()), info, random=SystemRandom())
            result = run(terminal, chip)
        finally:
            chip.close()
        assert result.chip_public_key == chip.chip_public_key
        evens.add(result.terminal_public_key[-1] % 2 == 0)
    assert evens == {True}

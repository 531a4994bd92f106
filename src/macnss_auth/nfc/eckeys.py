"""EC keys on every standardized curve: cryptography where it can, own arithmetic otherwise.

Theory of operation. Real documents use all the curves of the standardized
table (ICAO 9303-11 §9.5.1 / BSI TR-03110-3 ids 8-18): the BSI 2008 specimen
and many passports of its generation carry brainpoolP224r1 Chip
Authentication keys and document signers. pyca/cryptography (OpenSSL) has no
brainpoolP192r1, brainpoolP224r1 or brainpoolP320r1, and an OpenSSL build may
also lack secp192r1 or secp224r1. This module gives callers one set of types:

* :class:`EcPublicKey` -- a validated point on a :class:`~macnss_auth.nfc.ec.Curve`
  (on the curve, not infinity, of order ``n``: every received key goes through
  it);
* :class:`EcPrivateKey` -- a scalar on a curve (never in a repr);
* :func:`ecdsa_verify` / :func:`ecdsa_sign` and :meth:`EcPrivateKey.exchange`
  (ECDH, the x-coordinate, BSI TR-03111 §4.3.1).

Each operation dispatches on :func:`native_curve`: when the installed
cryptography/OpenSSL supports the curve (probed once per curve, so a build
without secp192r1 falls back by itself), the work is done there; otherwise by
:mod:`macnss_auth.nfc.ec`. Secret scalars only ever reach
:func:`~macnss_auth.nfc.ec.multiply_secret` (a fixed-length Montgomery ladder)
or, for multiples of the generator, :func:`~macnss_auth.nfc.ec.multiply_generator_secret`
(a fixed-sequence comb);
verification uses the faster variable-time :func:`~macnss_auth.nfc.ec.multiply_add`
on public data only.

Only the standardized curves (and explicit parameters equal to one of them)
are accepted: arbitrary explicit curves from a document would let a forger
choose weak groups or make the verifier do unbounded work.
"""

from __future__ import annotations

import functools
import hmac
import secrets

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm as CryptographyUnsupported
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from macnss_auth.clock import RandomSource
from macnss_auth.errors import MalformedInput, UnsupportedAlgorithm
from macnss_auth.nfc import ec as ec_math
from macnss_auth.nfc.domain_params import curve_by_name, curve_from_explicit

__all__ = [
    "EcPrivateKey",
    "EcPublicKey",
    "clear_key_cache",
    "ecdsa_sign",
    "ecdsa_verify",
    "native_curve",
    "native_lift_x",
    "native_multiply",
    "standard_curve",
]

_NATIVE_CLASSES: dict[str, type[ec.EllipticCurve]] = {
    "secp192r1": ec.SECP192R1,
    "secp224r1": ec.SECP224R1,
    "secp256r1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
    "brainpoolP256r1": ec.BrainpoolP256R1,
    "brainpoolP384r1": ec.BrainpoolP384R1,
    "brainpoolP512r1": ec.BrainpoolP512R1,
}


@functools.cache
def _probe(name: str) -> ec.EllipticCurve | None:
    cls = _NATIVE_CLASSES.get(name)
    if cls is None:
        return None
    curve = cls()
    try:
        # OpenSSL builds differ (FIPS providers drop P-192): ask the library once.
        ec.derive_private_key(1, curve)
    except (CryptographyUnsupported, ValueError):
        return None
    return curve


def standard_curve(curve: ec_math.Curve) -> ec_math.Curve:
    """The standardized curve ``curve`` is (by name or by all its parameters).

    Raises:
        UnsupportedAlgorithm: not a curve of the standardized table.
    """
    if not isinstance(curve, ec_math.Curve):
        raise TypeError("curve must be a Curve")
    known = curve_from_explicit(
        p=curve.p, a=curve.a % curve.p, b=curve.b, gx=curve.gx, gy=curve.gy, n=curve.n
    )
    if known is None or known.h != curve.h:
        raise UnsupportedAlgorithm(f"EC curve {curve.name} is not a standardized curve")
    return known


def native_curve(curve: ec_math.Curve) -> ec.EllipticCurve | None:
    """cryptography's object for a standardized curve, if the installed OpenSSL has it."""
    try:
        named = curve_by_name(curve.name)
    except UnsupportedAlgorithm:
        return None
    if named != curve:
        return None
    return _probe(curve.name)


def _curve_of(native: ec.EllipticCurve) -> ec_math.Curve:
    try:
        return curve_by_name(native.name)
    except UnsupportedAlgorithm:
        raise UnsupportedAlgorithm(f"EC curve {native.name} is not supported") from None


@attrs.frozen
class EcPublicKey:
    """A validated EC public key on a standardized curve.

    Construction validates: the point is on the curve and of order ``n``
    (BSI TR-03111 §3.3); an affine point is never infinity.

    Attributes:
        curve: the standardized curve.
        point: the public point.

    Raises:
        MalformedInput: an invalid point (on construction).
        UnsupportedAlgorithm: a curve outside the standardized table.
    """

    curve: ec_math.Curve = attrs.field(converter=standard_curve)
    point: ec_math.Point = attrs.field(repr=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.point, ec_math.Point):
            raise TypeError("point must be a Point")
        ec_math.validate_public_point(self.curve, self.point)

    @classmethod
    def from_encoded(cls, curve: ec_math.Curve, data: bytes) -> EcPublicKey:
        """From the uncompressed encoding ``04 || X || Y`` (the only form eMRTDs use).

        Raises:
            MalformedInput: wrong length or prefix, or an invalid point.
            UnsupportedAlgorithm: a curve outside the standardized table.
        """
        if type(data) is not bytes:
            raise TypeError("data must be bytes")
        return cls(curve, ec_math.decode_point(curve, data))

    @classmethod
    def from_cryptography(cls, key: ec.EllipticCurvePublicKey) -> EcPublicKey:
        """From a cryptography key (same point, our curve object).

        Raises:
            UnsupportedAlgorithm: a curve outside the standardized table.
        """
        numbers = key.public_numbers()
        return cls(_curve_of(key.curve), ec_math.Point(numbers.x, numbers.y))

    def encode(self) -> bytes:
        """``04 || X || Y``, coordinates as long as the field."""
        return ec_math.encode_point(self.curve, self.point)

    def to_cryptography(self) -> ec.EllipticCurvePublicKey | None:
        """The cryptography key, or ``None`` when the installed library lacks the curve."""
        native = native_curve(self.curve)
        if native is None:
            return None
        return _native_public(self.point.x, self.point.y, self.curve.name)


@functools.lru_cache(maxsize=1024)
def _native_public(x: int, y: int, name: str) -> ec.EllipticCurvePublicKey:
    # Public data only: the same document signers verify many SODs, and OpenSSL's
    # key import (with its own point check) is a large part of one verification.
    native = _probe(name)
    if native is None:  # callers checked native_curve first
        raise UnsupportedAlgorithm(f"cryptography has no EC curve {name}")
    return ec.EllipticCurvePublicNumbers(x, y, native).public_key()


@attrs.frozen(repr=False, eq=False)
class EcPrivateKey:
    """An EC private key (scalar ``d`` in ``[1, n)``) on a standardized curve; never in a repr.

    Raises:
        ValueError: ``d`` out of range (on construction).
        UnsupportedAlgorithm: a curve outside the standardized table.
    """

    curve: ec_math.Curve = attrs.field(converter=standard_curve)
    d: int = attrs.field(repr=False)
    # cryptography's key for d, built on first use: deriving it costs two scalar
    # multiplications, and CA needs it twice (public key, agreement).
    _native: ec.EllipticCurvePrivateKey | None = attrs.field(
        init=False, default=None, repr=False, eq=False
    )

    def __attrs_post_init__(self) -> None:
        if type(self.d) is not int or not 0 < self.d < self.curve.n:
            raise ValueError("private scalar out of range")

    def __repr__(self) -> str:
        return f"EcPrivateKey({self.curve.name}, <redacted>)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EcPrivateKey):
            return NotImplemented
        if self.curve != other.curve:
            return False
        size = self.curve.order_length
        return hmac.compare_digest(self.d.to_bytes(size, "big"), other.d.to_bytes(size, "big"))

    def __hash__(self) -> int:
        # By curve only: equal keys hash equal, and the hash says nothing of d.
        return hash(self.curve)

    @classmethod
    def generate(cls, curve: ec_math.Curve) -> EcPrivateKey:
        """A fresh key from the operating system's CSPRNG."""
        return cls(curve, secrets.randbelow(curve.n - 1) + 1)

    @classmethod
    def from_cryptography(cls, key: ec.EllipticCurvePrivateKey) -> EcPrivateKey:
        """From a cryptography key.

        Raises:
            UnsupportedAlgorithm: a curve outside the standardized table.
        """
        return cls(_curve_of(key.curve), key.private_numbers().private_value)

    def to_cryptography(self) -> ec.EllipticCurvePrivateKey | None:
        """The cryptography key, or ``None`` when the installed library lacks the curve."""
        if self._native is not None:
            return self._native
        native = native_curve(self.curve)
        if native is None:
            return None
        key = ec.derive_private_key(self.d, native)
        object.__setattr__(self, "_native", key)  # a cache of d's own key, frozen otherwise
        return key

    def public_key(self) -> EcPublicKey:
        """``d * G``."""
        native = self.to_cryptography()
        if native is not None:
            numbers = native.public_key().public_numbers()
            return EcPublicKey(self.curve, ec_math.Point(numbers.x, numbers.y))
        return _public_of(self.curve, self.d)

    def exchange(self, peer: EcPublicKey) -> bytes:
        """ECDH (BSI TR-03111 §4.3.1): the x-coordinate of ``d * Q``, as long as the field.

        Raises:
            MalformedInput: the peer key is on another curve, or the result is infinity.
        """
        if not isinstance(peer, EcPublicKey):
            raise TypeError("peer must be an EcPublicKey")
        if peer.curve != self.curve:
            raise MalformedInput("ECDH keys on different curves", field="public_key")
        mine = self.to_cryptography()
        theirs = peer.to_cryptography()
        if mine is not None and theirs is not None:
            try:
                return mine.exchange(ec.ECDH(), theirs)
            except ValueError as exc:
                raise MalformedInput("key agreement failed", field="public_key") from exc
        shared = ec_math.multiply_secret(self.curve, self.d, peer.point)
        if shared is None:
            raise MalformedInput("degenerate ECDH shared secret", field="public_key")
        return ec_math.field_element_to_bytes(shared.x, self.curve.field_length)


def _public_of(curve: ec_math.Curve, d: int) -> EcPublicKey:
    # Not cached: a cache would keep secret scalars alive in a global table.
    native = native_curve(curve)
    if native is not None:
        numbers = ec.derive_private_key(d, native).public_key().public_numbers()
        return EcPublicKey(curve, ec_math.Point(numbers.x, numbers.y))
    point = ec_math.multiply_generator_secret(curve, d)
    if point is None:  # d in [1, n) never gives infinity
        raise ValueError("private scalar out of range")
    return EcPublicKey(curve, point)


def native_multiply(
    curve: ec_math.Curve, key: ec.EllipticCurvePrivateKey, point: ec_math.Point
) -> ec_math.Point:
    """``k * P`` for any point ``P`` of a curve cryptography has, by two ECDHs there.

    cryptography multiplies arbitrary points only inside ECDH, which returns
    the x-coordinate of ``k*P``. A second ECDH with the same key on ``P + G``
    gives the x-coordinate of ``k*P + k*G``, and ``k*G`` is the key's public
    point: :func:`~macnss_auth.nfc.ec.recover_y` turns the two x-coordinates
    into the full point (the sign of ``y`` included) with one blinded
    inversion. Both scalar multiplications run in OpenSSL's constant-time
    code; ``docs/pace.md`` ("Where the time goes") argues the Python rest.

    ``point`` must be a validated point of ``curve`` (order ``n``), ``key``
    a cryptography key on the same curve (:func:`native_curve`).

    Raises:
        MalformedInput: ``point`` is not a point cryptography accepts.
    """
    native = key.curve
    public = key.public_key().public_numbers()
    k_g = ec_math.Point(public.x, public.y)
    generator = curve.generator
    if point.x == generator.x:
        # P = +-G: k*P is the key's own public point or its negation.
        return k_g if point.y == generator.y else ec_math.Point(k_g.x, curve.p - k_g.y)
    # P + G and (2*yr)^-1 of the recovery with one blinded inversion (Montgomery's trick).
    p = curve.p
    dx = (generator.x - point.x) % p
    two_y = 2 * k_g.y % p
    both = ec_math.inverse_blinded(dx * two_y, p)
    slope = (generator.y - point.y) * two_y * both % p
    sx = (slope * slope - point.x - generator.x) % p
    shifted = ec_math.Point(sx, (slope * (point.x - sx) - point.y) % p)
    try:
        first = key.exchange(
            ec.ECDH(), ec.EllipticCurvePublicNumbers(point.x, point.y, native).public_key()
        )
        second = key.exchange(
            ec.ECDH(), ec.EllipticCurvePublicNumbers(shifted.x, shifted.y, native).public_key()
        )
    except ValueError as exc:
        raise MalformedInput("point rejected by the key agreement", field="point") from exc
    return ec_math.recover_y(
        curve,
        k_g,
        int.from_bytes(first, "big"),
        int.from_bytes(second, "big"),
        inverse_2yr=dx * both % p,
    )


def native_lift_x(curve: ec_math.Curve, x: int) -> ec_math.Point:
    """The point with x-coordinate ``x`` and an even y-coordinate, by OpenSSL's decompression.

    For a *public* ``x`` (the x-coordinate of a key about to be sent): the
    square root runs in OpenSSL (``02 || X``, SEC 1 §2.3.4), a few dozen
    microseconds where a Python exponentiation takes 90 (brainpoolP256r1) to
    440 (brainpoolP512r1). ``curve`` must be one :func:`native_curve` has.

    Raises:
        MalformedInput: no point of the curve has this x-coordinate.
        UnsupportedAlgorithm: the installed cryptography lacks the curve.
    """
    native = native_curve(curve)
    if native is None:
        raise UnsupportedAlgorithm(f"cryptography has no EC curve {curve.name}")
    if not 0 <= x < curve.p:
        raise MalformedInput("not an x-coordinate of this curve", field="point")
    encoded = b"\x02" + x.to_bytes(curve.field_length, "big")
    try:
        numbers = ec.EllipticCurvePublicKey.from_encoded_point(native, encoded).public_numbers()
    except ValueError as exc:
        raise MalformedInput("no point of the curve has this x-coordinate", field="point") from exc
    return ec_math.Point(numbers.x, numbers.y)


def clear_key_cache() -> None:
    """Forget the cryptography key objects built for public keys (to measure cold costs)."""
    _native_public.cache_clear()


def _message_scalar(digest: bytes, n: int) -> int:
    """SEC 1 §4.1.3 step 5: the leftmost ``n.bit_length()`` bits of the hash."""
    e = int.from_bytes(digest, "big")
    excess = len(digest) * 8 - n.bit_length()
    return e >> excess if excess > 0 else e


def _digest(data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    context = hashes.Hash(algorithm)
    context.update(data)
    return context.finalize()


def ecdsa_verify(
    key: EcPublicKey, data: bytes, signature: tuple[int, int], algorithm: hashes.HashAlgorithm
) -> bool:
    """Whether ``(r, s)`` is a valid ECDSA signature of ``data`` (SEC 1 §4.1.4).

    Returns ``False`` for out-of-range values too; encodings are the caller's
    business (DER or plain ``r || s``).
    """
    r, s = signature
    n = key.curve.n
    if not (0 < r < n and 0 < s < n):
        return False
    native = key.to_cryptography()
    if native is not None:
        try:
            native.verify(utils.encode_dss_signature(r, s), data, ec.ECDSA(algorithm))
        except InvalidSignature:
            return False
        return True
    e = _message_scalar(_digest(data, algorithm), n)
    w = pow(s, -1, n)
    total = ec_math.multiply_add(key.curve, e * w % n, r * w % n, key.point)
    return total is not None and total.x % n == r


def ecdsa_sign(
    key: EcPrivateKey,
    data: bytes,
    algorithm: hashes.HashAlgorithm,
    *,
    random: RandomSource | None = None,
) -> tuple[int, int]:
    """An ECDSA signature ``(r, s)`` of ``data`` (SEC 1 §4.1.3), for virtual cards and tests.

    Args:
        key: the signing key.
        data: the message.
        algorithm: the hash.
        random: a :class:`~macnss_auth.clock.RandomSource` for the nonce
            (default: the operating system's CSPRNG).
    """
    native = key.to_cryptography()
    if native is not None and random is None:
        return utils.decode_dss_signature(native.sign(data, ec.ECDSA(algorithm)))
    curve = key.curve
    n = curve.n
    e = _message_scalar(_digest(data, algorithm), n)
    size = curve.order_length
    while True:
        if random is None:
            k = secrets.randbelow(n - 1) + 1
        else:
            k = int.from_bytes(random.token_bytes(size), "big")
            if not 0 < k < n:
                continue
        point = ec_math.multiply_generator_secret(curve, k)
        if point is None:
            continue
        r = point.x % n
        s = pow(k, -1, n) * (e + r * key.d) % n
        if r and s:
            return r, s

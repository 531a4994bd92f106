"""A small prime-field elliptic-curve module for what cryptography cannot do.

PACE's Generic Mapping computes a new generator ``G' = s*G + H`` and then runs
Diffie-Hellman on it; the Integrated Mapping builds a point from a field
element. pyca/cryptography only multiplies its curves' standard generators and
exposes no point addition, so this module provides the few operations needed,
on short Weierstrass curves ``y^2 = x^3 + a*x + b`` over GF(p):

* :class:`Curve` and :class:`Point` value objects (affine coordinates);
* :func:`add`, :func:`negate` and :func:`multiply` (Jacobian coordinates and a
  width-5 NAF inside, the doublings on the isomorphic ``a = -3`` curve, one
  inversion at the end; multiples of the standard generator from a per-curve
  table of ``d * 2^(6j) * G``, additions only);
* :func:`multiply_secret`, a co-Z Montgomery ladder with a fixed number of
  steps and branch-free conditional swaps, for secret scalars (the terminal's
  ephemeral Chip Authentication key, a virtual card's static key);
* :func:`multiply_add` (``u1*G + u2*Q`` in one interleaved pass, with the
  generator's odd multiples computed once per curve), for ECDSA verification
  on public data and the PACE terminal's ``x*G'`` on the curves cryptography
  lacks;
* :func:`validate_public_point` (on the curve, not infinity, order ``n``);
* :func:`encode_point` / :func:`decode_point` for the uncompressed SEC 1 form
  ``04 || X || Y`` (the only form PACE allows), with validation;
* :func:`sqrt_mod` for the Integrated Mapping;
* :func:`recover_y` (a point from its x-coordinate and the x-coordinate of
  its sum with a known point, for turning cryptography's x-only ECDH results
  back into points), :func:`add_secret` and :func:`inverse_blinded` (an
  affine addition whose inversion is blinded, for secret-derived points).

The point at infinity is ``None``: every function that can produce it says so
in its type, so callers cannot forget the case.

Security note: Python integers are not constant-time. :func:`multiply` and
:func:`multiply_add` leak timing that depends on the scalar (the NAF digits);
they are for public scalars (signature verification) and single-use PACE keys.
:func:`multiply_secret` runs the same sequence of field operations for every
scalar of the curve (the scalar is first lifted to a fixed bit length, and the
ladder swaps its two points with arithmetic masks instead of branches); what
remains is the timing of CPython's big-integer arithmetic itself, which
depends on the operands' values only through their sizes. See
``docs/eid-protocols.md`` ("Curves") for the argument.
"""

from __future__ import annotations

import functools
import operator
import secrets

import attrs

from macnss_auth.errors import MalformedInput

__all__ = [
    "Curve",
    "Point",
    "add",
    "add_secret",
    "decode_point",
    "encode_point",
    "field_element_to_bytes",
    "inverse_blinded",
    "multiply",
    "multiply_add",
    "multiply_generator_secret",
    "multiply_secret",
    "negate",
    "recover_y",
    "sqrt_mod",
    "validate_public_point",
]


@attrs.frozen
class Point:
    """An affine point (never the point at infinity, which is ``None``)."""

    x: int
    y: int

    def __repr__(self) -> str:
        return f"Point(x={self.x:#x}, y={self.y:#x})"


@attrs.frozen
class Curve:
    """A short Weierstrass curve over a prime field with a base point of prime order.

    Attributes:
        name: the curve's usual name (``brainpoolP256r1``, ``secp384r1``).
        p: the field prime.
        a: coefficient a.
        b: coefficient b.
        gx: x-coordinate of the standard generator.
        gy: y-coordinate of the standard generator.
        n: the (prime) order of the generator.
        h: the cofactor.
    """

    name: str
    p: int = attrs.field(repr=False)
    a: int = attrs.field(repr=False)
    b: int = attrs.field(repr=False)
    gx: int = attrs.field(repr=False)
    gy: int = attrs.field(repr=False)
    n: int = attrs.field(repr=False)
    h: int = attrs.field(default=1, repr=False)

    @property
    def generator(self) -> Point:
        """The standard base point G."""
        return Point(self.gx, self.gy)

    @property
    def field_length(self) -> int:
        """Bytes in an encoded field element (a coordinate)."""
        return (self.p.bit_length() + 7) // 8

    @property
    def order_length(self) -> int:
        """Bytes in an encoded scalar (an element of GF(n))."""
        return (self.n.bit_length() + 7) // 8

    def contains(self, point: Point) -> bool:
        """Whether ``point`` has coordinates in GF(p) and satisfies the curve equation."""
        p = self.p
        if not (0 <= point.x < p and 0 <= point.y < p):
            return False
        return (
            point.y * point.y - (point.x * point.x * point.x + self.a * point.x + self.b)
        ) % p == 0


def field_element_to_bytes(value: int, length: int) -> bytes:
    """FE2OS of BSI TR-03111: big-endian, left-padded with zeros to ``length`` bytes."""
    return value.to_bytes(length, "big")


def encode_point(curve: Curve, point: Point) -> bytes:
    """The uncompressed encoding ``04 || X || Y``, coordinates of fixed length."""
    length = curve.field_length
    return b"\x04" + point.x.to_bytes(length, "big") + point.y.to_bytes(length, "big")


def decode_point(curve: Curve, data: bytes) -> Point:
    """Parse and validate an uncompressed point.

    Raises:
        MalformedInput: wrong length or prefix, coordinates out of range, or
            a point that is not on the curve (invalid-curve attacks start here).
    """
    length = curve.field_length
    if len(data) != 1 + 2 * length or data[:1] != b"\x04":
        raise MalformedInput("not an uncompressed point of this curve", field="point")
    point = Point(
        int.from_bytes(data[1 : 1 + length], "big"), int.from_bytes(data[1 + length :], "big")
    )
    if not curve.contains(point):
        raise MalformedInput("point is not on the curve", field="point")
    return point


def negate(curve: Curve, point: Point | None) -> Point | None:
    """``-P``."""
    if point is None:
        return None
    return Point(point.x, (-point.y) % curve.p)


def add(curve: Curve, first: Point | None, second: Point | None) -> Point | None:
    """``P + Q`` in affine coordinates (one inversion); ``None`` is infinity."""
    if first is None:
        return second
    if second is None:
        return first
    p = curve.p
    if first.x == second.x:
        if (first.y + second.y) % p == 0:
            return None
        slope = (3 * first.x * first.x + curve.a) * pow(2 * first.y, -1, p) % p
    else:
        slope = (second.y - first.y) * pow(second.x - first.x, -1, p) % p
    x = (slope * slope - first.x - second.x) % p
    y = (slope * (first.x - x) - first.y) % p
    return Point(x, y)


# Jacobian coordinates (X, Y, Z) stand for the affine point (X/Z^2, Y/Z^3); Z = 0 is infinity.
_Jacobian = tuple[int, int, int]
_WINDOW = 5


def _double(x1: int, y1: int, z1: int, a: int, p: int) -> _Jacobian:
    if not y1 or not z1:
        return (1, 1, 0)
    yy = y1 * y1 % p
    s = 4 * x1 * yy % p
    zz = z1 * z1 % p
    m = (3 * x1 * x1 + a * zz * zz) % p
    x3 = (m * m - 2 * s) % p
    y3 = (m * (s - x3) - 8 * yy * yy) % p
    z3 = 2 * y1 * z1 % p
    return (x3, y3, z3)


def multiply(curve: Curve, scalar: int, point: Point | None) -> Point | None:
    """``k * P`` (not constant-time; see the module docstring).

    ``scalar`` must be non-negative; ``None`` (infinity) is returned when the
    result is the point at infinity, e.g. for ``n * G``. A multiple of the
    curve's standard generator takes a fixed-base path (a table cached per curve).
    """
    if scalar < 0:
        raise ValueError("scalar must be non-negative")
    if point is None or scalar == 0:
        return None
    if point.x == curve.gx and point.y == curve.gy:
        table = _fixed_base_table(curve)
        if table is not None and scalar.bit_length() <= curve.n.bit_length():
            return _comb(curve, table, scalar)
    table_p = _odd_multiples(curve, point, _WINDOW)
    if len(table_p) < 1 << (_WINDOW - 2):
        # The point has tiny order; fall back to the plain affine ladder.
        return _multiply_affine(curve, scalar, point)
    scale = _minus3_scale(curve)
    x, y, z = _wnaf_chain(
        curve,
        _wnaf(scalar, _WINDOW),
        _signed_lookup(curve, table_p, scale or 1),
        scale=scale,
    )
    return _to_affine(curve, x, y, z)


@functools.lru_cache(maxsize=32)
def _minus3_scale(curve: Curve) -> int | None:
    """``u`` with ``a*u^4 = -3 (mod p)``, or ``None`` if there is none.

    ``(x, y) -> (u^2 x, u^3 y)`` maps the curve onto the isomorphic curve with
    ``a = -3`` (RFC 5639 §3 gives such twists for every brainpool curve),
    where a doubling takes 8 field multiplications instead of 10. ``u = 1``
    when ``a`` is already -3 (the NIST curves).
    """
    p, a = curve.p, curve.a
    if a % p == p - 3:
        return 1
    if not a % p:
        return None
    square = sqrt_mod(-3 * pow(a, -1, p), p)
    for candidate in (square, None if square is None else p - square):
        root = None if candidate is None else sqrt_mod(candidate, p)
        if root and (a * pow(root, 4, p) + 3) % p == 0:
            return root
    return None


def _signed_lookup(
    curve: Curve, table: list[Point] | tuple[Point, ...], scale: int = 1
) -> dict[int, tuple[int, int]]:
    """``{+-(2i + 1): (x, +-y)}`` for the odd multiples ``table[i]`` (negation done once).

    ``scale`` (``u`` of :func:`_minus3_scale`) maps the points onto the isomorphic curve.
    """
    p = curve.p
    u2 = scale * scale % p
    u3 = u2 * scale % p
    lookup = {}
    for i, entry in enumerate(table):
        x, y = entry.x * u2 % p, entry.y * u3 % p
        lookup[2 * i + 1] = (x, y)
        lookup[-2 * i - 1] = (x, (-y) % p)
    return lookup


def _wnaf_chain(
    curve: Curve,
    naf1: list[int],
    lookup1: dict[int, tuple[int, int]],
    naf2: list[int] | None = None,
    lookup2: dict[int, tuple[int, int]] | None = None,
    *,
    scale: int | None,
) -> _Jacobian:
    """``sum_i 2^i * (d1_i * P1 + d2_i * P2)`` over one or two NAFs (Straus), in Jacobian form.

    With ``scale = u`` (:func:`_minus3_scale`), the lookups hold points of the
    isomorphic ``a = -3`` curve and the doublings use dbl-2001-b (3M + 5S);
    the result is mapped back (``Z * u``). Without, dbl-1998-cmo-2 (4M + 6S).
    The doubling is inlined: in CPython the call overhead costs about as much
    as the field arithmetic on 192-320-bit integers.
    """
    p = curve.p
    a = curve.a if scale is None else p - 3
    if naf2 is None or lookup2 is None:
        naf2, lookup2 = [], {}
    length = max(len(naf1), len(naf2))
    naf1 = naf1 + [0] * (length - len(naf1))
    naf2 = naf2 + [0] * (length - len(naf2))
    minus3 = scale is not None
    x, y, z = 1, 1, 0
    for d1, d2 in zip(reversed(naf1), reversed(naf2), strict=True):
        if z:
            # Doubling; y = 0 (a point of order 2) gives z = 0, infinity.
            if minus3:
                zz = z * z % p
                yy = y * y % p
                s = x * yy % p
                m = 3 * (x - zz) * (x + zz) % p
                z = 2 * y * z % p
                x = (m * m - 8 * s) % p
                y = (m * (4 * s - x) - 8 * yy * yy) % p
            else:
                yy = y * y % p
                s = 4 * x * yy % p
                zz = z * z % p
                m = (3 * x * x + a * zz * zz) % p
                z = 2 * y * z % p
                x = (m * m - 2 * s) % p
                y = (m * (s - x) - 8 * yy * yy) % p
        if d1:
            x2, y2 = lookup1[d1]
            if z:
                x, y, z = _madd(x, y, z, x2, y2, a, p)
            else:
                x, y, z = x2, y2, 1
        if d2:
            x2, y2 = lookup2[d2]
            if z:
                x, y, z = _madd(x, y, z, x2, y2, a, p)
            else:
                x, y, z = x2, y2, 1
    if scale is not None and scale != 1:
        z = z * scale % p
    return (x, y, z)


def _madd(  # noqa: PLR0917 (hot path: positional ints avoid tuple packing)
    x1: int, y1: int, z1: int, x2: int, y2: int, a: int, p: int
) -> _Jacobian:
    """Jacobian (x1, y1, z1), ``z1 != 0``, plus affine (x2, y2): 8M + 3S."""
    z1z1 = z1 * z1 % p
    h = (x2 * z1z1 - x1) % p
    r = (y2 * z1 * z1z1 - y1) % p
    if not h:
        if not r:
            return _double(x1, y1, z1, a, p)
        return (1, 1, 0)
    hh = h * h % p
    hhh = hh * h % p
    v = x1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    return (x3, (r * (v - x3) - y1 * hhh) % p, z1 * h % p)


#: Window of the fixed-base table: ``ceil(bits / w) + 1`` additions per ``k*G``, no doubling.
_COMB_WINDOW = 6


@functools.lru_cache(maxsize=32)
def _fixed_base_table(curve: Curve) -> tuple[tuple[Point, ...], ...] | None:
    """Row ``j`` holds ``d * 2^(w*j) * G`` for ``d = 1 .. 2^(w-1)`` (affine; public points).

    ``None`` when a multiple of the generator is infinity (a generator of
    tiny order, only on a hostile explicit curve): the general path is exact.
    """
    width = _COMB_WINDOW
    half = 1 << (width - 1)
    rows = -(-curve.n.bit_length() // width) + 1
    p, a = curve.p, curve.a
    base: Point | None = curve.generator
    table = []
    for _ in range(rows):
        if base is None:
            return None
        # base, 2*base, ..., half*base: summed in Jacobian form, one inversion per row.
        row: list[_Jacobian] = [(base.x, base.y, 1)]
        for _ in range(half - 1):
            x, y, z = _madd(*row[-1], base.x, base.y, a, p)
            if not z:
                return None
            row.append((x, y, z))
        affine = _batch_affine(curve, row)
        # 2^w * base = 2 * (half * base).
        base = add(curve, affine[-1], affine[-1])
        table.append(tuple(affine))
    return tuple(table)


def _comb(curve: Curve, table: tuple[tuple[Point, ...], ...], scalar: int) -> Point | None:
    """``k*G`` from :func:`_fixed_base_table`: signed base-``2^w`` digits, one addition each."""
    p, a = curve.p, curve.a
    width = _COMB_WINDOW
    full = 1 << width
    mask, half = full - 1, full >> 1
    x, y, z = 1, 1, 0
    k = scalar
    for row in table:
        if not k:
            break
        d = k & mask
        if d > half:
            d -= full
        k = (k - d) >> width
        if not d:
            continue
        entry = row[(d if d > 0 else -d) - 1]
        x2, y2 = entry.x, entry.y if d > 0 else p - entry.y
        if not z:
            x, y, z = x2, y2, 1
        else:
            x, y, z = _madd(x, y, z, x2, y2, a, p)
    if k:
        # Unreachable for scalar < 2^bits (the table has a spare row); exact anyway
        # (a scalar wider than the table takes the general path).
        rest = multiply(curve, k << (width * len(table)), curve.generator)
        return add(curve, _to_affine(curve, x, y, z), rest)
    return _to_affine(curve, x, y, z)


def _to_affine(curve: Curve, x: int, y: int, z: int) -> Point | None:
    if not z:
        return None
    p = curve.p
    z_inv = pow(z, -1, p)
    zz_inv = z_inv * z_inv % p
    return Point(x * zz_inv % p, y * zz_inv * z_inv % p)


def multiply_secret(curve: Curve, scalar: int, point: Point) -> Point | None:
    """``k * P`` for a secret ``k`` in ``[1, n)``: a Montgomery ladder of fixed length.

    The scalar is lifted to ``k + n`` or ``k + 2n``, whichever has bit
    ``n.bit_length()`` set (the same multiple of a point of order ``n``), so
    every scalar takes exactly ``n.bit_length()`` ladder steps. The two
    running points share one ``Z`` (co-Z arithmetic, Goundar, Joye, Miyaji,
    Rivain and Venelli, J. Cryptogr. Eng. 1(2), 2011): each step is one
    conjugate addition (the sum and the difference) and one update addition,
    9M + 5S against 26 operations for a Jacobian addition and doubling, and
    the points trade places with arithmetic masks, not branches. ``point``
    must be a validated point of order ``n`` (see :func:`validate_public_point`).

    Raises:
        ValueError: ``scalar`` outside ``[1, n)``.
    """
    n = curve.n
    if not 0 < scalar < n:
        raise ValueError("scalar must be in [1, n)")
    p = curve.p
    bits = n.bit_length()
    lifted = scalar + n
    # Branch-free: add n once more when k + n still lacks the top bit.
    lifted += n * (1 - (lifted >> bits))
    # R0 = P and R1 = 2P on one Z (co-Z doubling of the affine P, Z = 1).
    x, y = point.x, point.y
    xx, yy = x * x % p, y * y % p
    yyyy = yy * yy % p
    s = 2 * ((x + yy) * (x + yy) - xx - yyyy) % p
    m = (3 * xx + curve.a) % p
    x1 = (m * m - 2 * s) % p
    y1 = (m * (s - x1) - 8 * yyyy) % p
    x0, y0, z = s, 8 * yyyy % p, 2 * y % p
    # R1 - R0 = P throughout. The points stay swapped while the current bit is
    # 1: each step swaps when its bit differs from the previous one; a last
    # pass (i = -1, a public index) only swaps back.
    swapped = 0
    for i in range(bits - 1, -2, -1):
        bit = (lifted >> i) & 1 if i >= 0 else 0
        mask = -(bit ^ swapped)
        swapped = bit
        t = mask & (x0 ^ x1)
        x0, x1 = x0 ^ t, x1 ^ t
        t = mask & (y0 ^ y1)
        y0, y1 = y0 ^ t, y1 ^ t
        if i < 0:
            break
        # Conjugate addition: R0 + R1 (the next R1) and R0 - R1 (= -P), on one new Z.
        h = (x0 - x1) % p
        c = h * h % p
        w0, w1 = x0 * c % p, x1 * c % p
        a0 = y0 * (w0 - w1) % p
        dy = y0 - y1
        sy = y0 + y1
        xs = (dy * dy - w0 - w1) % p
        ys = (dy * (w0 - xs) - a0) % p
        xd = (sy * sy - w0 - w1) % p
        yd = (sy * (w0 - xd) - a0) % p
        z = z * h % p
        # Update addition: (R0 + R1) + (R0 - R1) = 2 R0, and R0 + R1 moved to its Z.
        h = (xs - xd) % p
        c = h * h % p
        ws, wd = xs * c % p, xd * c % p
        dy = ys - yd
        y1 = ys * (ws - wd) % p
        x0 = (dy * dy - ws - wd) % p
        y0 = (dy * (ws - x0) - y1) % p
        x1 = ws
        z = z * h % p
    if not z:
        # A step met R0 = +-R1 or the point at infinity, which the co-Z formulas
        # do not cover (Z became 0 and stays 0): a prefix of the lifted scalar
        # next to a multiple of n/2, as for k = n - 1 (probability about 2^-bits
        # for a random k). Those few scalars are known to everyone and the
        # detour itself shows in the timing, so the general (NAF) multiplication
        # reveals nothing more.
        return multiply(curve, scalar, point)
    # Fermat inversion (a fixed exponent), not the extended Euclid of pow(z, -1, p),
    # whose number of steps depends on the secret-dependent z.
    z_inv = pow(z, p - 2, p)
    zz_inv = z_inv * z_inv % p
    return Point(x0 * zz_inv % p, y0 * zz_inv * z_inv % p)


#: Window of the secret fixed-base comb: 2^(w-1) odd multiples per row, ``bits/w`` rows.
_SECRET_COMB_WINDOW = 5


@functools.lru_cache(maxsize=32)
def _secret_comb_table(curve: Curve) -> tuple[tuple[int, ...], ...] | None:
    """Row ``j``: ``d * 2^(w*j) * G`` for odd ``d = 1 .. 2^w - 1``, each packed as ``x << L | y``.

    ``L`` is the field's bit length: one masked scan selects both coordinates.
    Public points (multiples of the generator), built once per curve and
    process. ``None`` when a multiple is infinity (a generator of tiny order,
    only on a hostile explicit curve).
    """
    width = _SECRET_COMB_WINDOW
    rows = -(-(curve.n.bit_length() + 1) // width) + 1
    shift = curve.p.bit_length()
    base: Point | None = curve.generator
    table = []
    for _ in range(rows):
        if base is None:
            return None
        odd = _odd_multiples(curve, base, width + 1)
        if len(odd) < 1 << (width - 1):
            return None
        table.append(tuple(q.x << shift | q.y for q in odd))
        for _ in range(width):
            base = add(curve, base, base)
    return tuple(table)


def multiply_generator_secret(curve: Curve, scalar: int) -> Point | None:
    """``k * G`` for a secret ``k`` in ``[1, n)``: a fixed-base comb with a fixed sequence.

    The scalar is made odd (``k`` or ``k + n``, chosen with arithmetic, not a
    branch) and recoded into signed odd base-``2^w`` digits (Joye and
    Tunstall's regular recoding, CHES 2009: every digit is odd, so none is
    zero and every row adds exactly one point); each row's entry is selected
    by scanning the whole row with arithmetic masks (no index depends on the
    secret) and negated with a mask. So every scalar runs the same field
    operations: one mixed addition per row of a per-curve table (built once,
    :func:`_secret_comb_table`) and one blinded inversion at the end; about
    a quarter of :func:`multiply_secret`'s cost for the generator.

    A partial sum can meet the entry's opposite (``Z`` becomes 0) only for a
    handful of scalars near multiples of ``n`` that everyone can list
    (probability about ``2^w / n``); those take the general path, as in
    :func:`multiply_secret`.

    The generator must have order ``n`` (true of every standardized curve):
    the odd lift ``k + n`` relies on it.

    Raises:
        ValueError: ``scalar`` outside ``[1, n)``.
    """
    n = curve.n
    if not 0 < scalar < n:
        raise ValueError("scalar must be in [1, n)")
    table = _secret_comb_table(curve)
    if table is None:
        return multiply_secret(curve, scalar, curve.generator)
    p, a = curve.p, curve.a
    width = _SECRET_COMB_WINDOW
    window = (1 << (width + 1)) - 1
    top = 1 << width
    half = range(1 << (width - 1))
    shift = p.bit_length()
    low = (1 << shift) - 1
    # Odd: k + n (n is odd) when k is even.
    k = scalar + n * (1 - (scalar & 1))
    x = y = z = digit = 0
    for row, entries in enumerate(table):
        # The regular digit: odd, in [-(2^w - 1), 2^w - 1]; k stays odd. The last
        # row's digit is k itself, which the table's length makes 1.
        digit = k if row == len(table) - 1 else (k & window) - top
        k = (k - digit) >> width
        sign = digit >> width  # -1 for a negative digit, else 0
        index = ((digit ^ sign) - sign) >> 1
        masks = [((i ^ index) - 1) >> width for i in half]
        # One entry survives its mask; the others add 0.
        entry = sum(map(operator.and_, entries, masks))
        x2, y2 = entry >> shift, entry & low
        y2 ^= (y2 ^ (p - y2)) & sign
        if row:
            x, y, z = _madd(x, y, z, x2, y2, a, p)
        else:
            x, y, z = x2, y2, 1
    # The last digit is 1 for every scalar (k < 2^(w*t) after the lift); checked all
    # the same, since a larger one would select no entry.
    if not z or digit != 1:
        return multiply(curve, scalar, curve.generator)
    z_inv = inverse_blinded(z, p)
    zz_inv = z_inv * z_inv % p
    return Point(x * zz_inv % p, y * zz_inv * z_inv % p)


_BASE_WINDOW = 7


def _odd_multiples(curve: Curve, point: Point, window: int) -> list[Point]:
    """``[P, 3P, 5P, ..., (2^(w-1) - 1)P]`` in affine form (public points only).

    Shorter when a multiple is infinity (a point of tiny order). The odd
    multiples are summed in Jacobian form onto the affine ``2P`` and brought
    back to affine together (Montgomery's simultaneous inversion): two
    inversions in all instead of one per entry.
    """
    twice = add(curve, point, point)
    if twice is None:
        return [point]
    p, a = curve.p, curve.a
    jacobian = [(point.x, point.y, 1)]
    for _ in range(3, 1 << (window - 1), 2):
        x, y, z = jacobian[-1]
        x, y, z = _madd(x, y, z, twice.x, twice.y, a, p)
        if not z:
            break
        jacobian.append((x, y, z))
    return _batch_affine(curve, jacobian)


def _batch_affine(curve: Curve, points: list[_Jacobian]) -> list[Point]:
    """Jacobian points (none at infinity) to affine with one inversion (Montgomery's trick)."""
    p = curve.p
    # prefix[i] = z_0 * ... * z_(i-1); one inversion of the full product.
    prefix = [1]
    for _, _, z in points:
        prefix.append(prefix[-1] * z % p)
    inverse = pow(prefix[-1], -1, p)
    result = []
    for i in range(len(points) - 1, -1, -1):
        x, y, z = points[i]
        z_inv = inverse * prefix[i] % p
        inverse = inverse * z % p
        zz_inv = z_inv * z_inv % p
        result.append(Point(x * zz_inv % p, y * zz_inv * z_inv % p))
    result.reverse()
    return result


@functools.lru_cache(maxsize=32)
def _generator_table(curve: Curve) -> tuple[Point, ...]:
    return tuple(_odd_multiples(curve, curve.generator, _BASE_WINDOW))


@functools.lru_cache(maxsize=32)
def _generator_lookup(curve: Curve) -> dict[int, tuple[int, int]]:
    return _signed_lookup(curve, _generator_table(curve), _minus3_scale(curve) or 1)


def _wnaf(k: int, window: int) -> list[int]:
    """The width-``w`` NAF of ``k``, least significant digit first."""
    digits: list[int] = []
    full = 1 << window
    mask, half = full - 1, full >> 1
    while k:
        # Skip a run of zero bits at once (k & -k isolates the lowest set bit).
        zeros = (k & -k).bit_length() - 1
        if zeros:
            digits += [0] * zeros
            k >>= zeros
        digit = k & mask
        if digit >= half:
            digit -= full
        digits.append(digit)
        k = (k - digit) >> 1
    return digits


def multiply_add(curve: Curve, u1: int, u2: int, point: Point) -> Point | None:
    """``u1*G + u2*Q`` (Straus-Shamir with width-w NAFs; not constant-time).

    For ECDSA verification, where everything is public. ``None`` is infinity.
    """
    if u1 < 0 or u2 < 0:
        raise ValueError("scalars must be non-negative")
    base = _generator_table(curve)
    mine = _odd_multiples(curve, point, _WINDOW)
    if len(base) < 1 << (_BASE_WINDOW - 2) or len(mine) < 1 << (_WINDOW - 2):
        # A point of tiny order (only on a hostile explicit curve): the slow path is exact.
        return add(curve, multiply(curve, u1, curve.generator), multiply(curve, u2, point))
    scale = _minus3_scale(curve)
    x, y, z = _wnaf_chain(
        curve,
        _wnaf(u1, _BASE_WINDOW),
        _generator_lookup(curve),
        _wnaf(u2, _WINDOW),
        _signed_lookup(curve, mine, scale or 1),
        scale=scale,
    )
    return _to_affine(curve, x, y, z)


def validate_public_point(curve: Curve, point: Point) -> None:
    """Full public-key validation (SEC 1 §3.2.2.1; BSI TR-03111 §3.3).

    An affine :class:`Point` is never infinity; this checks the coordinates
    are field elements on the curve and, for a cofactor above 1, that the
    point has order ``n`` (``n*Q`` is infinity), so a small-subgroup point
    cannot leak bits of a static key.

    Raises:
        MalformedInput: the point is not on the curve or not of order ``n``.
    """
    if not curve.contains(point):
        raise MalformedInput("point is not on the curve", field="point")
    if curve.h != 1 and multiply(curve, curve.n, point) is not None:
        raise MalformedInput("point is not in the prime-order subgroup", field="point")


def _multiply_affine(curve: Curve, scalar: int, point: Point) -> Point | None:
    result: Point | None = None
    addend: Point | None = point
    while scalar:
        if scalar & 1:
            result = add(curve, result, addend)
        addend = add(curve, addend, addend)
        scalar >>= 1
    return result


def sqrt_mod(value: int, p: int) -> int | None:
    """A square root of ``value`` modulo the prime ``p``, or ``None`` if there is none.

    Uses ``value^((p+1)/4)`` when ``p = 3 mod 4`` and Tonelli-Shanks otherwise.
    """
    value %= p
    if value == 0:
        return 0
    if pow(value, (p - 1) // 2, p) != 1:
        return None
    if p % 4 == 3:
        return pow(value, (p + 1) // 4, p)
    # Tonelli-Shanks for p = 1 mod 4 (P-224).
    q, s = p - 1, 0
    while q % 2 == 0:
        q //= 2
        s += 1
    z = 2
    while pow(z, (p - 1) // 2, p) != p - 1:
        z += 1
    m, c, t, r = s, pow(z, q, p), pow(value, q, p), pow(value, (q + 1) // 2, p)
    while t != 1:
        i, t2 = 0, t
        while t2 != 1:
            t2 = t2 * t2 % p
            i += 1
        b = pow(c, 1 << (m - i - 1), p)
        m, c, t, r = i, b * b % p, t * b * b % p, r * b % p
    return r


def inverse_blinded(value: int, p: int) -> int:
    """``value^-1 mod p`` for a secret-derived ``value``, through a random blind.

    ``pow(v, -1, p)`` runs the extended Euclid, whose number of steps depends
    on ``v``; inverting ``v*r`` for a fresh uniform ``r`` instead makes that
    timing independent of ``v`` (``v*r`` is uniform for ``v != 0``), and
    costs a few microseconds where Fermat's ``v^(p-2)`` costs a 256-bit
    exponentiation.

    Raises:
        ValueError: ``value`` is 0 modulo ``p``.
    """
    if not value % p:
        raise ValueError("0 has no inverse")
    blind = secrets.randbelow(p - 1) + 1
    return blind * pow(value * blind % p, -1, p) % p


def add_secret(curve: Curve, first: Point, second: Point) -> Point | None:
    """``P + Q`` for secret-derived points, inverting through :func:`inverse_blinded`.

    The doubling and opposite-point cases (equal x-coordinates) branch: for
    independent points of a prime-order group they occur with probability
    about ``1/n``, and :func:`add` handles them.
    """
    p = curve.p
    if first.x == second.x:
        return add(curve, first, second)
    slope = (second.y - first.y) * inverse_blinded(second.x - first.x, p) % p
    x = (slope * slope - first.x - second.x) % p
    y = (slope * (first.x - x) - first.y) % p
    return Point(x, y)


def recover_y(
    curve: Curve, known: Point, x: int, x_sum: int, *, inverse_2yr: int | None = None
) -> Point:
    """The point ``Q`` with x-coordinate ``x`` such that ``Q + known`` has x-coordinate ``x_sum``.

    Okeya and Sakurai's y-recovery (CHES 2001, for Weierstrass curves): with
    ``known = (xr, yr)``,
    ``y = (2b + (a + xr*x)(xr + x) - x_sum*(xr - x)^2) / (2*yr)``.
    The two points with x-coordinate ``x`` are ``(x, y)`` and ``(x, -y)``;
    ``x`` alone cannot tell them apart (ECDH gives only x), ``x(Q + known)``
    can: ``Q + known`` and ``-Q + known`` have the same x-coordinate only if
    ``2Q`` or ``2*known`` is infinity, impossible in a group of odd prime
    order. No square root and no branch on the sign are needed.
    ``inverse_2yr`` may pass ``(2*yr)^-1 mod p`` when the caller computed it
    together with another inversion.

    Raises:
        MalformedInput: ``x`` equals ``known``'s x-coordinate (``Q = +-known``:
            the sum does not determine the sign), or the inputs are not
            x-coordinates of such points (the result is not on the curve,
            e.g. for an ``x`` with ``x^3 + a*x + b`` a non-residue).
    """
    p = curve.p
    xr, yr = known.x, known.y
    if not (0 <= x < p and 0 <= x_sum < p) or x == xr or not yr:
        raise MalformedInput("cannot recover y from these x-coordinates", field="point")
    numerator = 2 * curve.b + (curve.a + xr * x) * (xr + x) - x_sum * (xr - x) * (xr - x)
    if inverse_2yr is None:
        inverse_2yr = inverse_blinded(2 * yr, p)
    point = Point(x, numerator * inverse_2yr % p)
    if not curve.contains(point):
        raise MalformedInput("no point of the curve has these x-coordinates", field="point")
    return point

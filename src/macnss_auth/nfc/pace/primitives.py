"""The mathematics of PACE as pure functions, shared by the terminal and the card.

ICAO 9303-11 §4.4 (and BSI TR-03110-2 §3.2) in five steps, each a function
here; nothing reads a clock, a global random generator or a reader:

1. Password key and nonce: :func:`password_key` (``K_pi = KDF_pi(pi)``),
   :func:`encrypt_nonce` / :func:`decrypt_nonce` (CBC, zero IV).
2. Mapping the nonce to a new generator: :func:`generic_mapping`
   (``G' = s*G + H`` or ``g' = g^s * h``, with ``H`` from an anonymous
   Diffie-Hellman, :func:`mapping_shared_element`) or
   :func:`integrated_mapping` (``G' = f_G(R_p(s, t))``, ``g' = R_p(s, t)^a``).
3. Ephemeral Diffie-Hellman on the mapped group: :func:`generate_private_key`,
   :func:`public_key`, :func:`decode_public_key`, :func:`shared_secret`.
4. Session keys and tokens: :func:`session_keys`,
   :func:`public_key_data_object` (the ``7F49`` object the token covers),
   :func:`authentication_token`, :func:`verify_authentication_token`.
5. Chip Authentication Mapping: :func:`chip_authentication_data`,
   :func:`encrypt_chip_authentication_data`,
   :func:`decrypt_chip_authentication_data`,
   :func:`verify_chip_authentication_mapping`.

Encodings, decided per field (``docs/pace.md`` gives the references): EC
public keys are uncompressed points and EC shared secrets the x-coordinate on
the field length. DH public values, in GENERAL AUTHENTICATE and inside the
token's ``7F49`` object, are unsigned integers on the minimum number of octets
(BSI TR-03110-3 D.2.1.1; OpenPACE and JMRTD do the same); the DH shared secret
``K`` keeps the length of ``p`` (PKCS #3, which ICAO 9303-11 §9.6 names).
What the standards leave to interpretation is accepted both ways from a peer:
DH values of any length up to ``p``, tokens over either encoding of the DH
key (:func:`verify_authentication_token`), and session keys from either
form of ``K`` on the card side (:func:`session_key_candidates`).

Python integers are not constant-time; see ``docs/pace.md``.
"""

from __future__ import annotations

import functools
import hmac

import attrs
from cryptography.hazmat.primitives.asymmetric import ec as cec

from macnss_auth.clock import RandomSource, SystemRandom
from macnss_auth.errors import (
    DocumentNotGenuine,
    MalformedInput,
    RemoteProtocolError,
    UnsupportedAlgorithm,
)
from macnss_auth.nfc import crypto, ec, eckeys, tlv
from macnss_auth.nfc.apdu import StatusCode
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.domain_params import DHGroup
from macnss_auth.nfc.ec import Curve, Point
from macnss_auth.nfc.mrz import CAN, PIN, PUK, MrzKey
from macnss_auth.nfc.securityinfos import KeyAgreement, PaceOid
from macnss_auth.nfc.sm import SessionKeys

__all__ = [
    "DhDomain",
    "Domain",
    "EcDomain",
    "PacePassword",
    "authentication_token",
    "base_domain",
    "chip_authentication_data",
    "decode_public_key",
    "decrypt_chip_authentication_data",
    "decrypt_nonce",
    "encrypt_chip_authentication_data",
    "encrypt_nonce",
    "generate_private_key",
    "generic_mapping",
    "generic_mapping_public_key",
    "integrated_mapping",
    "integrated_mapping_lengths",
    "integrated_mapping_point",
    "mapping_shared_element",
    "oid_contents",
    "password_key",
    "password_reference",
    "pseudo_random_number",
    "public_key",
    "public_key_data_object",
    "same_public_key",
    "session_key_candidates",
    "session_keys",
    "shared_secret",
    "strip_shared_secret",
    "token_matches",
    "verify_authentication_token",
    "verify_chip_authentication_mapping",
]

#: A PACE password: the MRZ fields, a card access number, a PIN or a PUK.
PacePassword = MrzKey | CAN | PIN | PUK

# MSE:Set AT password references (ICAO 9303-11 §9.5.1 / BSI TR-03110-3 D.2.1.2).
_REFERENCES: dict[type, int] = {MrzKey: 1, CAN: 2, PIN: 3, PUK: 4}


@attrs.frozen
class EcDomain:
    """An elliptic-curve group with a (possibly mapped) generator.

    Attributes:
        curve: the curve (a standardized one).
        generator: the generator: the standard one before mapping, ``G'`` after.
    """

    curve: Curve
    generator: Point = attrs.field(repr=False)

    @property
    def order(self) -> int:
        """The order of the generator (the curve's ``n``; the cofactor is 1)."""
        return self.curve.n

    @property
    def agreement(self) -> KeyAgreement:
        """ECDH."""
        return KeyAgreement.ECDH


@attrs.frozen
class DhDomain:
    """A MODP group with a (possibly mapped) generator of order ``q``.

    Attributes:
        group: the MODP group.
        generator: ``g`` before mapping, ``g'`` after.
    """

    group: DHGroup
    generator: int = attrs.field(repr=False)

    @property
    def order(self) -> int:
        """The prime order ``q`` of the generator."""
        return self.group.q

    @property
    def agreement(self) -> KeyAgreement:
        """DH."""
        return KeyAgreement.DH


#: Either kind of PACE group.
Domain = EcDomain | DhDomain


def base_domain(parameters: DHGroup | Curve) -> Domain:
    """The domain with the standard generator, before any mapping."""
    if isinstance(parameters, Curve):
        return EcDomain(parameters, parameters.generator)
    return DhDomain(parameters, parameters.g)


# --- step 1: password and nonce ------------------------------------------------------


def password_reference(password: PacePassword) -> int:
    """The MSE:Set AT reference of the password kind: 1 MRZ, 2 CAN, 3 PIN, 4 PUK.

    Raises:
        TypeError: not a PACE password.
    """
    try:
        return _REFERENCES[type(password)]
    except KeyError:
        raise TypeError("not a PACE password") from None


def password_key(password: PacePassword, cipher: SymmetricCipher, key_bits: int) -> bytes:
    """``K_pi = KDF_pi(pi)``: ``SHA-1(MRZ information)``, or the digits of a CAN, PIN or PUK.

    Raises:
        UnsupportedAlgorithm: a key length the cipher does not have.
    """
    secret = password.key_seed() if isinstance(password, MrzKey) else password.to_bytes()
    return crypto.derive_key(secret, crypto.KDF_PI, cipher, key_bits)


def encrypt_nonce(cipher: SymmetricCipher, k_pi: bytes, nonce: bytes) -> bytes:
    """``z = E(K_pi, s)``, CBC with a zero IV (the card's side).

    Raises:
        MalformedInput: the nonce is not a whole number of blocks.
    """
    if not nonce or len(nonce) % cipher.block_size:
        raise MalformedInput("the nonce must be a whole number of blocks", field="nonce")
    return crypto.block_encrypt_cbc(cipher, k_pi, nonce)


def decrypt_nonce(cipher: SymmetricCipher, k_pi: bytes, encrypted: bytes) -> bytes:
    """``s = D(K_pi, z)`` (the terminal's side).

    Raises:
        MalformedInput: the ciphertext is empty or not block aligned.
    """
    if not encrypted:
        raise MalformedInput("empty encrypted nonce", field="nonce")
    return crypto.block_decrypt_cbc(cipher, k_pi, encrypted)


# --- step 3 building blocks (also used by the mapping) -------------------------------


def generate_private_key(domain: Domain, random: RandomSource) -> int:
    """A private key uniform in ``[1, order - 1]`` by rejection sampling.

    Exactly ``len(order)`` bytes are drawn per try, so a scripted random
    source that returns a published private key reproduces it. With the
    :class:`~macnss_auth.clock.SystemRandom` source on a curve cryptography
    has, OpenSSL draws the key instead (half the cost: see ``docs/pace.md``).
    """
    if isinstance(domain, EcDomain) and type(random) is SystemRandom:
        native = eckeys.native_curve(domain.curve)
        if native is not None:
            # OpenSSL draws the key and computes its public point in one scalar
            # multiplication; building a key from a given scalar costs two
            # (derivation checks the pair). Both are CSPRNG draws, uniform in [1, n).
            key = cec.generate_private_key(native)
            scalar = _Scalar(key.private_numbers().private_value)
            scalar._key = key
            scalar._drawn = True
            return scalar
    order = domain.order
    length = (order.bit_length() + 7) // 8
    while True:
        candidate = int.from_bytes(random.token_bytes(length), "big")
        if 0 < candidate < order:
            return _Scalar(candidate) if isinstance(domain, EcDomain) else candidate


class _Scalar(int):
    """A private scalar that keeps cryptography's key object for it once built.

    PACE uses each private key two or three times (public key, agreement, and
    on the terminal the sign test of :func:`~macnss_auth.nfc.eckeys.native_multiply`);
    deriving the OpenSSL key costs one scalar multiplication, so it is built
    once and lives exactly as long as the scalar (no global cache of secrets).
    """

    _key: cec.EllipticCurvePrivateKey | None = None
    # Drawn by the CSPRNG (no caller expects a particular public key): the
    # Generic Mapping may send the key of n - x instead (generic_mapping_public_key).
    _drawn: bool = False


def _key_for(native: cec.EllipticCurve, scalar: int) -> cec.EllipticCurvePrivateKey:
    key = scalar._key if isinstance(scalar, _Scalar) else None
    if key is not None and key.curve.name == native.name:
        return key
    key = cec.derive_private_key(int(scalar), native)
    if isinstance(scalar, _Scalar):
        scalar._key = key
    return key


def _ec_multiply(domain: EcDomain, scalar: int, point: Point) -> Point:
    """``k * P``: in cryptography when it has the curve, else :func:`ec.multiply`.

    On a curve cryptography has, ``k*G`` is key derivation and ``k*P`` for any
    other point two ECDHs and a square root (:func:`eckeys.native_multiply`):
    the mapped generator ``G'`` is just another point of the standard curve.
    """
    curve = domain.curve
    reduced = scalar % curve.n
    if reduced == 0:
        raise RemoteProtocolError("key agreement produced the point at infinity")
    native = eckeys.native_curve(curve)
    if native is not None:
        key = _key_for(native, scalar if reduced == scalar else reduced)
        if point == curve.generator:
            numbers = key.public_key().public_numbers()
            return Point(numbers.x, numbers.y)
        return eckeys.native_multiply(curve, key, point)
    result = ec.multiply(curve, scalar, point)
    if result is None:
        raise RemoteProtocolError("key agreement produced the point at infinity")
    return result


def _unsigned(value: int) -> bytes:
    """An unsigned integer on the minimum number of octets (BSI TR-03110-3 D.2.1.1)."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def public_key(domain: Domain, private_key: int) -> bytes:
    """The encoded public key: ``04||X||Y`` for ECDH, ``g^x`` on the fewest octets for DH.

    A DH public value is an unsigned integer, so about one key in 256 is one
    octet shorter than ``p`` (TR-03110-3 D.2.1.1; OpenPACE and JMRTD send it so).
    """
    if isinstance(domain, EcDomain):
        return ec.encode_point(domain.curve, _ec_multiply(domain, private_key, domain.generator))
    return _unsigned(pow(domain.generator, private_key, domain.group.p))


def same_public_key(domain: Domain, first: bytes, second: bytes) -> bool:
    """Whether two encoded public keys are one key (ICAO 9303-11 §4.4.3.4 forbids echoes).

    DH values compare as integers, since leading zero octets are optional
    (TR-03110-3 D.2.1.1); EC points compare as their encodings.
    """
    if isinstance(domain, DhDomain):
        return int.from_bytes(first, "big") == int.from_bytes(second, "big")
    return first == second


def decode_public_key(domain: Domain, data: bytes) -> Point | int:
    """Parse and validate a peer's public key.

    EC points must be on the curve; DH values must lie in the order-q
    subgroup and not be 1 or p-1 (RFC 2631 §2.1.5). A DH value may be
    shorter than ``p`` (leading zeros dropped) but not longer.

    Raises:
        MalformedInput: the key is malformed or fails validation.
    """
    if isinstance(domain, EcDomain):
        return ec.decode_point(domain.curve, data)
    group = domain.group
    if not data or len(data) > group.byte_length:
        raise MalformedInput("DH public value has the wrong length", field="public_key")
    value = int.from_bytes(data, "big")
    if not group.contains(value):
        raise MalformedInput("DH public value is not in the subgroup", field="public_key")
    return value


def mapping_shared_element(domain: Domain, private_key: int, peer_public: bytes) -> Point | int:
    """``H = KA(SK_map, PK_map_peer)`` as a full group element (for the Generic Mapping).

    Raises:
        MalformedInput: the peer's key fails validation.
        RemoteProtocolError: the result is the neutral element.
    """
    peer = decode_public_key(domain, peer_public)
    if isinstance(domain, EcDomain):
        assert isinstance(peer, Point)  # noqa: S101 (decode_public_key's contract)
        return _ec_multiply(domain, private_key, peer)
    assert isinstance(peer, int)  # noqa: S101 (decode_public_key's contract)
    result = pow(peer, private_key, domain.group.p)
    if result == 1:
        raise RemoteProtocolError("mapping key agreement produced 1")
    return result


def shared_secret(domain: Domain, private_key: int, peer_public: bytes) -> bytes:
    """``K = KA(SK, PK_peer)``: the x-coordinate (ECDH) or ``PK^x`` (DH), fixed length.

    A DH ``K`` keeps the length of ``p`` (PKCS #3 §8.2, which ICAO 9303-11
    names for DH key agreement; JMRTD through BouncyCastle does the same).

    Raises:
        MalformedInput: the peer's key fails validation.
        RemoteProtocolError: the result is the neutral element.
    """
    if isinstance(domain, EcDomain):
        native = eckeys.native_curve(domain.curve)
        if native is not None and 0 < private_key < domain.order:
            # The mapped generator changes nothing about the curve: ECDH with a
            # peer point of the same curve is plain ECDH, which cryptography does.
            peer = ec.decode_point(domain.curve, peer_public)
            numbers = cec.EllipticCurvePublicNumbers(peer.x, peer.y, native)
            try:
                return _key_for(native, private_key).exchange(cec.ECDH(), numbers.public_key())
            except ValueError as exc:
                raise RemoteProtocolError("ECDH with the chip's key failed") from exc
    element = mapping_shared_element(domain, private_key, peer_public)
    if isinstance(domain, EcDomain):
        assert isinstance(element, Point)  # noqa: S101 (mapping_shared_element's contract)
        return ec.field_element_to_bytes(element.x, domain.curve.field_length)
    assert isinstance(element, int)  # noqa: S101 (mapping_shared_element's contract)
    return element.to_bytes(domain.group.byte_length, "big")


# --- step 2: mappings ----------------------------------------------------------------


def generic_mapping(domain: Domain, nonce: bytes, shared: Point | int) -> Domain:
    """Generic Mapping: ``G' = s*G + H`` (ECDH) or ``g' = g^s * h mod p`` (DH).

    Raises:
        RemoteProtocolError: the new generator is degenerate (infinity or 1).
    """
    s = int.from_bytes(nonce, "big")
    if isinstance(domain, EcDomain):
        assert isinstance(shared, Point)  # noqa: S101 (the caller passes an EC element)
        s_g = _ec_multiply(domain, s, domain.generator) if s % domain.order else None
        # Secret-derived points: the addition inverts with a fixed exponent.
        mapped = ec.add_secret(domain.curve, s_g, shared) if s_g is not None else shared
        if mapped is None:
            raise RemoteProtocolError("generic mapping produced the point at infinity")
        return EcDomain(domain.curve, mapped)
    assert isinstance(shared, int)  # noqa: S101 (the caller passes a DH element)
    p = domain.group.p
    generator = pow(domain.generator, s, p) * shared % p
    if generator in (0, 1):
        raise RemoteProtocolError("generic mapping produced a trivial generator")
    return DhDomain(domain.group, generator)


def generic_mapping_public_key(
    domain: EcDomain,
    nonce: bytes,
    mapping_private_key: int,
    peer_mapping_public: Point,
    private_key: int,
) -> bytes:
    """``x*G'`` for ``G' = s*G + a*PK_map_peer``, without computing ``G'``.

    ``x*G' = (x*s mod n)*G + (x*a mod n)*PK_map_peer``. On a curve
    cryptography has: one key derivation for the first term and one
    :func:`eckeys.native_multiply` for the second, where
    :func:`mapping_shared_element`, :func:`generic_mapping` and
    :func:`public_key` need two native multiplications (``H`` and ``x*G'``).
    On the other curves: one interleaved :func:`ec.multiply_add` (the
    generator's table is cached per curve) instead of three multiplications
    (``H``, ``s*G`` and ``x*G'``). The encoding is the same point's, except
    for a key drawn by :func:`generate_private_key` from ``SystemRandom`` on a
    curve where OpenSSL has no fast generator code (brainpoolP256r1/384r1/512r1,
    P-192): there the result is ``x*G'`` or ``(n - x)*G'``, whichever has an
    even ``y`` (same ECDH secret with either; see ``docs/pace.md``).
    ``peer_mapping_public`` must be a validated point (:func:`decode_public_key`).

    Raises:
        RemoteProtocolError: ``G'`` is the point at infinity.
    """
    curve = domain.curve
    n = curve.n
    x = private_key % n
    scale = x * int.from_bytes(nonce, "big") % n
    native = eckeys.native_curve(curve)
    if native is None:
        # Single-use keys: the variable-time interleaved pass (see docs/pace.md).
        total = ec.multiply_add(curve, scale, x * mapping_private_key % n, peer_mapping_public)
        if total is None:
            raise RemoteProtocolError("generic mapping produced the point at infinity")
        return ec.encode_point(curve, total)
    drawn = isinstance(private_key, _Scalar) and private_key._drawn
    if drawn and curve.name in _GENERIC_OPENSSL_CURVES:
        return _mapped_public_key_x_only(
            domain, native, nonce, mapping_private_key, peer_mapping_public, private_key
        )
    term = eckeys.native_multiply(
        curve, cec.derive_private_key(x * mapping_private_key % n, native), peer_mapping_public
    )
    if scale:
        numbers = cec.derive_private_key(scale, native).public_key().public_numbers()
        total = ec.add_secret(curve, Point(numbers.x, numbers.y), term)
        if total is None:
            raise RemoteProtocolError("generic mapping produced the point at infinity")
        term = total
    return ec.encode_point(curve, term)


#: Curves whose OpenSSL code has no precomputed generator table: there ``k*G``
#: costs what ``k*P`` costs, and ``derive_private_key`` two of them (it checks the pair).
_GENERIC_OPENSSL_CURVES = frozenset(
    {"secp192r1", "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1"}
)


def _mapped_public_key_x_only(  # noqa: PLR0917 (the mapping's inputs, as above)
    domain: EcDomain,
    native: cec.EllipticCurve,
    nonce: bytes,
    mapping_private_key: int,
    peer_mapping_public: Point,
    private_key: int,
) -> bytes:
    """``+-x*G'`` for a CSPRNG-drawn ``x``: four OpenSSL multiplications and one comb.

    ``H = a*PK_map,IC`` by :func:`eckeys.native_multiply` (two ECDHs with the
    mapping key, whose public point OpenSSL computed when it drew the key),
    ``s*G`` by :func:`ec.multiply_generator_secret` (a constant-sequence comb:
    cheaper than ``derive_private_key``'s two multiplications on these curves),
    ``G' = s*G + H``, then one ECDH of the ephemeral key with ``G'`` gives
    ``x(x*G')`` and :func:`eckeys.native_lift_x` the point with that x and an
    even ``y`` (decompression in OpenSSL). That point is ``x*G'`` or
    ``-x*G' = (n - x)*G'``: both keys give the chip and the terminal the same
    shared secret (ECDH keeps only the x-coordinate), and since ``x`` is
    uniform and private, so is the key actually used (BIP 340's x-only keys
    rest on the same fact). The square root is taken of a public value (the
    key's x-coordinate, which is sent).
    """
    curve = domain.curve
    shared = eckeys.native_multiply(
        curve, _key_for(native, mapping_private_key), peer_mapping_public
    )
    s = int.from_bytes(nonce, "big") % curve.n
    mapped: Point | None = shared
    if s:
        s_g = ec.multiply_generator_secret(curve, s)
        mapped = ec.add_secret(curve, s_g, shared) if s_g is not None else shared
    if mapped is None:
        raise RemoteProtocolError("generic mapping produced the point at infinity")
    peer = cec.EllipticCurvePublicNumbers(mapped.x, mapped.y, native).public_key()
    try:
        x_only = _key_for(native, private_key).exchange(cec.ECDH(), peer)
    except ValueError as exc:
        raise RemoteProtocolError("ECDH on the mapped generator failed") from exc
    return ec.encode_point(curve, eckeys.native_lift_x(curve, int.from_bytes(x_only, "big")))


# Constants of the pseudo-random function (ICAO 9303-11 §4.4.3.3.2).
_C0_128 = bytes.fromhex("a668892a7c41e3ca739f40b057d85904")
_C1_128 = bytes.fromhex("a4e136ac725f738b01c1f60217c188ad")
_C0_256 = bytes.fromhex("d463d65234124ef7897054986dca0a174e28df758cbaa03f240616414d5a1676")
_C1_256 = bytes.fromhex("54bd7255f0aaf831bec3423fcf39d69b6cbf066677d0faae5aadd99df8e53517")


def integrated_mapping_lengths(cipher: SymmetricCipher, key_bits: int) -> tuple[int, int]:
    """``(len(s), len(t))`` in bytes for the Integrated Mapping: ``l`` and ``k``.

    3DES counts as a 128-bit key (``l = k = 128``); AES-128 too; AES-192 and
    AES-256 have ``l = 256`` and ``k`` = the key length.
    """
    if cipher is SymmetricCipher.TDES or key_bits == 128:
        return 16, 16
    return 32, key_bits // 8


def pseudo_random_number(
    nonce_s: bytes, nonce_t: bytes, cipher: SymmetricCipher, key_bits: int, p: int
) -> int:
    """``R_p(s, t)``: the block-cipher based function of the Integrated Mapping.

    Raises:
        MalformedInput: ``s`` or ``t`` has the wrong length for the cipher.
    """
    l_bytes, k_bytes = integrated_mapping_lengths(cipher, key_bits)
    if len(nonce_s) != l_bytes or len(nonce_t) != k_bytes:
        raise MalformedInput("nonce lengths do not fit the cipher", field="nonce")
    c0, c1 = (_C0_128, _C1_128) if l_bytes == 16 else (_C0_256, _C1_256)
    rounds = -(-(p.bit_length() + 64) // (8 * l_bytes))
    key = crypto.block_encrypt_cbc(cipher, nonce_t, nonce_s)
    output = b""
    for _ in range(rounds):
        truncated = key[:k_bytes]
        output += crypto.block_encrypt_cbc(cipher, truncated, c1)
        key = crypto.block_encrypt_cbc(cipher, truncated, c0)
    return int.from_bytes(output, "big") % p


def integrated_mapping_point(curve: Curve, t: int) -> Point:
    """``f_G(t)``: a curve point from a field element (ICAO 9303-11 Appendix B, [BCIMRT2010]).

    Raises:
        UnsupportedAlgorithm: the field prime is not 3 mod 4 (P-224).
        RemoteProtocolError: the degenerate inputs the encoding excludes.
    """
    p, a, b = curve.p, curve.a, curve.b
    if p % 4 != 3:
        raise UnsupportedAlgorithm(f"integrated mapping needs p = 3 mod 4; not {curve.name}")
    alpha = -t * t % p
    alpha_sum = (alpha + alpha * alpha) % p
    denominator = a * alpha_sum % p
    if t % p == 0 or denominator == 0:
        raise RemoteProtocolError("integrated mapping input is degenerate")
    x2 = -b * (1 + alpha_sum) * pow(denominator, p - 2, p) % p
    x3 = alpha * x2 % p
    h2 = (x2 * x2 * x2 + a * x2 + b) % p
    u = t * t * t * h2 % p
    exponent = (p - 1 - (p + 1) // 4) % (p - 1)
    a_value = pow(h2, exponent, p)
    if a_value * a_value * h2 % p == 1:
        point = Point(x2, a_value * h2 % p)
    else:
        point = Point(x3, a_value * u % p)
    if curve.h != 1:
        scaled = ec.multiply(curve, curve.h, point)
        if scaled is None:
            raise RemoteProtocolError("integrated mapping produced the point at infinity")
        point = scaled
    return point


def integrated_mapping(
    domain: Domain, nonce_s: bytes, nonce_t: bytes, cipher: SymmetricCipher, key_bits: int
) -> Domain:
    """Integrated Mapping: ``G' = f_G(R_p(s,t))`` or ``g' = R_p(s,t)^((p-1)/q) mod p``.

    Raises:
        MalformedInput: nonces of the wrong length.
        UnsupportedAlgorithm: a curve the point encoding does not handle.
        RemoteProtocolError: a degenerate result (``g' = 1``).
    """
    if isinstance(domain, EcDomain):
        x = pseudo_random_number(nonce_s, nonce_t, cipher, key_bits, domain.curve.p)
        return EcDomain(domain.curve, integrated_mapping_point(domain.curve, x))
    group = domain.group
    x = pseudo_random_number(nonce_s, nonce_t, cipher, key_bits, group.p)
    generator = pow(x, group.cofactor, group.p)
    if generator in (0, 1):
        raise RemoteProtocolError("integrated mapping produced g' = 1")
    return DhDomain(group, generator)


# --- step 4: keys and tokens ----------------------------------------------------------


def session_keys(shared: bytes, cipher: SymmetricCipher, key_bits: int) -> SessionKeys:
    """``KSenc = KDF_enc(K)``, ``KSmac = KDF_mac(K)`` (ICAO 9303-11 §9.7.1)."""
    return SessionKeys.derive(shared, cipher, key_bits)


def session_key_candidates(
    domain: Domain, shared: bytes, cipher: SymmetricCipher, key_bits: int
) -> tuple[SessionKeys, ...]:
    """The session keys a peer may have derived from ``K``, the standard one first.

    ``K`` on the length of ``p`` is PKCS #3; a DH ``K`` that starts with a zero
    octet is also tried without its leading zeros, the form OpenSSL's
    ``DH_compute_key`` gives (OpenPACE uses it). The card side tries each
    against the terminal's token; a terminal must pick one before it learns
    anything (``PaceTerminal(strip_dh_secret=...)``).
    """
    keys = session_keys(shared, cipher, key_bits)
    if isinstance(domain, EcDomain) or shared[:1] != b"\x00":
        return (keys,)
    return keys, session_keys(strip_shared_secret(shared), cipher, key_bits)


def strip_shared_secret(shared: bytes) -> bytes:
    """A DH ``K`` without its leading zero octets (OpenSSL ``DH_compute_key``)."""
    return shared.lstrip(b"\x00") or b"\x00"


@functools.cache
def oid_contents(protocol: PaceOid) -> bytes:
    """``protocol.der_value``, encoded once per OID (asn1crypto costs ~10 us a call)."""
    return protocol.der_value


def public_key_data_object(
    protocol: PaceOid, domain: Domain, public: bytes, *, fixed_length: bool = False
) -> bytes:
    """The ``7F49`` object the token covers: OID then the key only (§4.4.3.4, §9.4.5).

    ``86`` carries an EC point, ``84`` a DH public value: an unsigned integer on
    the minimum number of octets (TR-03110-3 D.2.1.1, D.3.2), or with
    ``fixed_length`` on the length of ``p`` (the convention of earlier
    versions of this library and of some peers, accepted when verifying).
    """
    oid = tlv.encode_tlv(0x06, oid_contents(protocol))
    if isinstance(domain, EcDomain):
        key = tlv.encode_tlv(0x86, public)
    else:
        number = int.from_bytes(public, "big")
        value = (
            number.to_bytes(domain.group.byte_length, "big") if fixed_length else _unsigned(number)
        )
        key = tlv.encode_tlv(0x84, value)
    return tlv.encode_tlv(0x7F49, oid + key)


def authentication_token(
    protocol: PaceOid,
    keys: SessionKeys,
    domain: Domain,
    public: bytes,
    *,
    fixed_length: bool = False,
) -> bytes:
    """``T = MAC(KSmac, 7F49(OID, PK))``: retail MAC (3DES) or CMAC/8 (AES)."""
    data = public_key_data_object(protocol, domain, public, fixed_length=fixed_length)
    return crypto.mac(keys.cipher, keys.k_mac, data)


def token_matches(
    protocol: PaceOid,
    keys: SessionKeys,
    domain: Domain,
    public: bytes,
    token: bytes,
    *,
    fixed_length: bool | None = None,
) -> bool:
    """Whether ``token`` is the MAC over the DH key's encoding (constant time).

    ``fixed_length=None`` accepts either encoding; both are always computed
    and compared, so the time does not tell which one matched. ``True`` or
    ``False`` checks that one only (for EC keys the two are the same).
    """
    is_dh = isinstance(domain, DhDomain)
    matched = False
    if fixed_length is not True or not is_dh:
        minimal = authentication_token(protocol, keys, domain, public)
        matched = hmac.compare_digest(minimal, token)
    if fixed_length is not False and is_dh:
        fixed = authentication_token(protocol, keys, domain, public, fixed_length=True)
        matched = hmac.compare_digest(fixed, token) | matched
    return matched


def verify_authentication_token(
    protocol: PaceOid, keys: SessionKeys, domain: Domain, public: bytes, token: bytes
) -> None:
    """Check a peer's token in constant time; a DH key may be MACed on either length.

    Raises:
        RemoteProtocolError: the token is wrong (``status_word`` 0x9000: the chip
            claimed success with a token that does not verify).
    """
    if not token_matches(protocol, keys, domain, public, token):
        raise RemoteProtocolError(
            "the chip's authentication token is wrong", status_word=int(StatusCode.OK)
        )


# --- step 5: Chip Authentication Mapping ---------------------------------------------


def chip_authentication_data(curve: Curve, static_private: int, mapping_private: int) -> bytes:
    """``CA_IC = SK_IC^-1 * SK_map,IC mod n`` on ``len(n)`` bytes (§4.4.3.5.1, §4.4.5.6)."""
    value = pow(static_private, -1, curve.n) * mapping_private % curve.n
    return value.to_bytes(curve.order_length, "big")


def _cam_iv(keys: SessionKeys) -> bytes:
    if keys.cipher is not SymmetricCipher.AES:
        raise UnsupportedAlgorithm("Chip Authentication Mapping is defined for AES only")
    return crypto.block_encrypt_ecb(keys.cipher, keys.k_enc, b"\xff" * 16)


def encrypt_chip_authentication_data(keys: SessionKeys, data: bytes) -> bytes:
    """``A_IC = E(KSenc, CA_IC)``: AES-CBC, IV = E(KSenc, -1), padding method 2 (§4.4.3.5.4)."""
    return crypto.block_encrypt_cbc(keys.cipher, keys.k_enc, crypto.pad(data, 16), _cam_iv(keys))


def decrypt_chip_authentication_data(keys: SessionKeys, encrypted: bytes) -> bytes:
    """Recover ``CA_IC`` from ``A_IC``.

    Raises:
        MalformedInput: not block aligned or bad padding.
    """
    plain = crypto.block_decrypt_cbc(keys.cipher, keys.k_enc, encrypted, _cam_iv(keys))
    return crypto.unpad(plain)


def verify_chip_authentication_mapping(
    curve: Curve, ca_data: bytes, chip_mapping_public: bytes, chip_static_public: bytes
) -> None:
    """Check ``PK_map,IC = CA_IC * PK_IC`` (§4.4.3.5.2).

    Call it with the static key from a *verified* EF.CardSecurity: only
    passive authentication makes the static key trustworthy.

    Raises:
        DocumentNotGenuine: the chip does not hold the static private key.
        MalformedInput: a key that is not a point of ``curve``.
    """
    mapping = ec.decode_point(curve, chip_mapping_public)
    static = ec.decode_point(curve, chip_static_public)
    scalar = int.from_bytes(ca_data, "big")
    if (
        not 0 < scalar < curve.n
        or _ec_multiply(EcDomain(curve, curve.generator), scalar, static) != mapping
    ):
        raise DocumentNotGenuine("chip authentication mapping does not verify")

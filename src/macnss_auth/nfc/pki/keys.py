"""Public keys: SubjectPublicKeyInfo parsing, explicit EC parameters matched to named curves.

Real certificates and DG14 keys often spell out a named curve's parameters
instead of its OID, or name the group by a standardized domain parameter id
(ICAO 9303-11 §9.5.1); both are rebuilt on the standardized curve of
:mod:`macnss_auth.nfc.domain_params`. Unknown explicit curves are refused.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Union

import attrs
from asn1crypto import core, keys
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from macnss_auth.errors import MalformedInput, UnsupportedAlgorithm
from macnss_auth.nfc import ec as ec_math
from macnss_auth.nfc.asn1 import decoding, int_repr
from macnss_auth.nfc.domain_params import (
    CURVE_OIDS,
    curve_by_name,
    curve_from_explicit,
    standardized,
)
from macnss_auth.nfc.eckeys import EcPublicKey
from macnss_auth.nfc.pki.errors import PkiFormatError
from macnss_auth.nfc.spki import SubjectPublicKeyInfo

__all__ = [
    "OID_STANDARDIZED_DOMAIN_PARAMETERS",
    "EcDomainParameters",
    "PublicKey",
    "PublicKeyInfo",
    "aware",
    "parse_public_key_info",
    "whole_bytes",
]

PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey]  # noqa: UP007 (runtime alias, 3.10)


@attrs.frozen
class EcDomainParameters:
    """Prime-field elliptic curve domain parameters (SEC 1 §3.3).

    ``name`` is the named curve these parameters were matched to, if any.
    """

    # Explicit parameters come from DER: any of them can be a 2 KB INTEGER.
    p: int = attrs.field(repr=int_repr)
    a: int = attrs.field(repr=int_repr)
    b: int = attrs.field(repr=int_repr)
    gx: int = attrs.field(repr=int_repr)
    gy: int = attrs.field(repr=int_repr)
    n: int = attrs.field(repr=int_repr)
    h: int = attrs.field(repr=int_repr)
    name: str | None = None

    @property
    def field_size(self) -> int:
        """Bytes needed for one coordinate."""
        return (self.p.bit_length() + 7) // 8


# Named-curve OID -> curve name, from the one table in domain_params.
_NAMED_CURVE_OIDS: dict[str, str] = {oid: name for name, oid in CURVE_OIDS.items()}


@attrs.frozen
class PublicKeyInfo:
    """A parsed SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).

    Attributes:
        algorithm: ``"rsa"``, ``"ec"`` or ``"dh"``.
        der: the SubjectPublicKeyInfo DER as received.
        curve: the named curve (``None`` for RSA/DH or an unknown explicit curve).
        ec_parameters: explicit EC domain parameters, when the key carried them.
        ec_point: the encoded EC point (``04 || x || y``), for EC keys.
        rsa_modulus / rsa_exponent: for RSA keys.
    """

    algorithm: str
    der: bytes = attrs.field(repr=False)
    curve: str | None = None
    ec_parameters: EcDomainParameters | None = None
    ec_point: bytes | None = attrs.field(default=None, repr=False)
    rsa_modulus: int | None = attrs.field(default=None, repr=False)
    rsa_exponent: int | None = attrs.field(default=None, repr=int_repr)

    @property
    def key_size(self) -> int:
        """Modulus or field size in bits (0 when unknown)."""
        if self.rsa_modulus is not None:
            return self.rsa_modulus.bit_length()
        if self.ec_parameters is not None:
            return self.ec_parameters.p.bit_length()
        if self.ec_point is not None:
            return (len(self.ec_point) - 1) // 2 * 8
        return 0

    def ec_public_key(self) -> EcPublicKey:
        """The EC key on its standardized curve, validated (on the curve, order ``n``).

        Raises:
            UnsupportedAlgorithm: not an EC key, or a curve outside the standardized table.
            PkiFormatError: the point is not a valid point of the curve.
        """
        return _ec_public_key(self)

    def to_cryptography(self) -> PublicKey:
        """A cryptography public key (EC keys rebuilt on their named curve).

        Raises:
            UnsupportedAlgorithm: DH keys, or a curve the installed cryptography
                lacks (:meth:`ec_public_key` and :func:`verify_signature` still
                handle every standardized curve).
            PkiFormatError: the key values are invalid (point not on the curve...).
        """
        return _to_cryptography(self)


@functools.lru_cache(maxsize=4096)
def _ec_public_key(info: PublicKeyInfo) -> EcPublicKey:
    if info.algorithm != "ec" or info.ec_point is None:
        raise UnsupportedAlgorithm(f"{info.algorithm} keys are not EC keys")
    if info.curve is None:
        raise UnsupportedAlgorithm("EC curve explicit/unknown is not supported")
    try:
        return EcPublicKey.from_encoded(curve_by_name(info.curve), info.ec_point)
    except MalformedInput as exc:
        raise PkiFormatError("invalid EC public point", field="public_key") from exc


@functools.lru_cache(maxsize=4096)
def _to_cryptography(info: PublicKeyInfo) -> PublicKey:
    if info.algorithm == "rsa" and info.rsa_modulus is not None and info.rsa_exponent is not None:
        try:
            return rsa.RSAPublicNumbers(info.rsa_exponent, info.rsa_modulus).public_key()
        except ValueError as exc:
            raise PkiFormatError("invalid RSA public key", field="public_key") from exc
    if info.algorithm == "ec" and info.ec_point is not None:
        key = _ec_public_key(info).to_cryptography()
        if key is None:
            # verify_signature handles these curves; only a cryptography object is missing.
            raise UnsupportedAlgorithm(f"cryptography has no EC curve {info.curve}")
        return key
    raise UnsupportedAlgorithm(f"{info.algorithm} keys cannot be used for signatures here")


def whole_bytes(bit_string: Any, field: str) -> bytes:
    """The octets of a BIT STRING that must be whole bytes (keys, signatures).

    Raises:
        PkiFormatError: a non-zero unused-bits count (a malleable encoding).
    """
    contents = bytes(bit_string.contents)
    if not contents or contents[0] != 0:
        raise PkiFormatError(f"{field} BIT STRING is not whole bytes", field=field)
    return contents[1:]


def _int_of(value: Any) -> int:
    native = value.native
    if isinstance(native, bytes):
        return int.from_bytes(native, "big")
    return int(native)


def parse_public_key_info(der: bytes) -> PublicKeyInfo:
    """Parse a SubjectPublicKeyInfo (RSA, EC named or explicit, DH, standardized id).

    The group may be named by ``standardizedDomainParameters`` (an INTEGER id
    of ICAO 9303-11 §9.5.1), as EF.CardSecurity and DG14 of national ID cards
    write Chip Authentication keys.

    Raises:
        PkiFormatError: malformed DER.
        UnsupportedAlgorithm: another key algorithm, or a reserved/unknown standardized id.
    """
    return _parse_public_key_info(bytes(der))


#: standardizedDomainParameters (BSI TR-03110-3 §A.2.1.1; ICAO 9303-11 §9.5.1):
#: the AlgorithmIdentifier's parameter is an INTEGER id of the standardized table.
OID_STANDARDIZED_DOMAIN_PARAMETERS = "0.4.0.127.0.7.1.2"


def _standardized_key(der: bytes) -> PublicKeyInfo:
    """A SubjectPublicKeyInfo naming its group by a standardized domain parameter id."""
    spki = SubjectPublicKeyInfo.load(der, strict=True)
    parameters = spki["algorithm"]["parameters"]
    if isinstance(parameters, core.Void):
        raise PkiFormatError("standardizedDomainParameters without an id", field="public_key")
    parameter_id = parameters.parse(core.Integer).native
    if not isinstance(parameter_id, int):
        raise PkiFormatError("standardized domain parameter id is not an INTEGER", field="key")
    group = standardized(parameter_id)
    body = whole_bytes(spki["public_key"], "key")
    if isinstance(group, ec_math.Curve):
        return PublicKeyInfo("ec", der, curve=group.name, ec_point=body)
    return PublicKeyInfo("dh", der)


@functools.lru_cache(maxsize=4096)
def _parse_public_key_info(der: bytes) -> PublicKeyInfo:
    with decoding("public key", error=PkiFormatError):
        generic = SubjectPublicKeyInfo.load(der, strict=True)
        if generic["algorithm"]["algorithm"].dotted == OID_STANDARDIZED_DOMAIN_PARAMETERS:
            return _standardized_key(der)
        spki = keys.PublicKeyInfo.load(der, strict=True)
        oid = spki["algorithm"]["algorithm"].dotted
        if oid in ("1.2.840.113549.1.1.1", "1.2.840.113549.1.1.10"):
            # rsaEncryption, or id-RSASSA-PSS with the same RSAPublicKey body.
            body = keys.RSAPublicKey.load(whole_bytes(spki["public_key"], "key"), strict=True)
            return PublicKeyInfo(
                "rsa",
                der,
                # Some issuers encode the modulus without its leading zero byte,
                # which DER reads as negative (the BSI 2008 AA key): read unsigned.
                rsa_modulus=int.from_bytes(body["modulus"].contents, "big"),
                rsa_exponent=int.from_bytes(body["public_exponent"].contents, "big"),
            )
        if oid == "1.2.840.10045.2.1":
            point = whole_bytes(spki["public_key"], "key")
            params = spki["algorithm"]["parameters"]
            if params.name == "named":
                return PublicKeyInfo(
                    "ec", der, curve=_NAMED_CURVE_OIDS.get(params.chosen.dotted), ec_point=point
                )
            if params.name != "specified":
                raise UnsupportedAlgorithm("implicitly-CA EC parameters are not supported")
            spec = params.chosen
            if spec["field_id"]["field_type"].native != "prime_field":
                raise UnsupportedAlgorithm("only prime-field curves are supported")
            p = int(spec["field_id"]["parameters"].native)
            if p < 3:
                # No field has such a prime; matching the curve would divide by it.
                raise PkiFormatError("the EC field prime is not a prime", field="public_key")
            base = bytes(spec["base"].native)
            size = (p.bit_length() + 7) // 8
            if len(base) != 1 + 2 * size or base[0] != 4:
                raise PkiFormatError("EC base point is not uncompressed", field="public_key")
            cofactor = spec["cofactor"].native
            values = (
                p,
                _int_of(spec["curve"]["a"]),
                _int_of(spec["curve"]["b"]),
                int.from_bytes(base[1 : 1 + size], "big"),
                int.from_bytes(base[1 + size :], "big"),
                int(spec["order"].native),
                int(cofactor) if cofactor is not None else 1,
            )
            name = _match_curve(values)
            return PublicKeyInfo(
                "ec",
                der,
                curve=name,
                ec_parameters=EcDomainParameters(*values, name=name),
                ec_point=point,
            )
        if oid in ("1.2.840.10046.2.1", "1.2.840.113549.1.3.1"):
            return PublicKeyInfo("dh", der)
    raise UnsupportedAlgorithm(f"public key algorithm {oid} is not supported")


def _match_curve(values: tuple[int, int, int, int, int, int, int]) -> str | None:
    """The standardized curve whose explicit parameters are ``values`` (p, a, b, gx, gy, n, h).

    Certificates and DG14 keys often spell out a named curve's parameters; the
    standardized table in :mod:`macnss_auth.nfc.domain_params` names them, so
    the key can be rebuilt on the named curve (cryptography refuses explicit
    parameters).
    """
    p, a, b, gx, gy, n, h = values
    curve = curve_from_explicit(p=p, a=a % p, b=b, gx=gx, gy=gy, n=n)
    if curve is None and h == 1:
        # With a cofactor of 1, a standardized curve is also recognised when
        # b is given unreduced: the curve equation pins b only modulo p.
        curve = curve_from_explicit(p=p, a=a % p, b=b % p, gx=gx, gy=gy, n=n)
    if curve is not None and curve.h != h:
        return None  # a stated cofactor that is not the curve's: not that curve's parameters
    return curve.name if curve is not None else None


def aware(value: dt.datetime) -> dt.datetime:
    """``value`` with UTC attached when asn1crypto returned a naive time."""
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)

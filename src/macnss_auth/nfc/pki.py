"""The eMRTD public key infrastructure: keys, certificates, CMS, master lists, trust store.

Theory of operation (ICAO 9303-12). Each country runs a Country Signing CA
(CSCA). A CSCA certifies Document Signers (DS); a DS signs each chip's EF.SOD.
A verifier trusts a set of CSCA certificates it obtained out of band: from CSCA
*master lists* (CMS-signed lists that a country publishes of the CSCAs it has
validated), from a directory of certificates, and from *link certificates*
(a CSCA's new key certified by its old key). CRLs, signed by the CSCA, revoke
DS certificates.

:class:`TrustStore` makes that model explicit: every anchor records *why* it is
trusted (which master list, signed by whom, or which file), and chain
validation answers with a :class:`ChainResult` that says what was checked.

Real certificates deviate from RFC 5280: negative serial numbers, NULL
signature parameters, EC keys with *explicit* domain parameters instead of a
named curve. Certificates are therefore parsed with asn1crypto (tolerant), and
explicit EC parameters are matched against the standardized curves (all of p,
a, b, G, n, h must match: :func:`~macnss_auth.nfc.domain_params.curve_from_explicit`).
ECDSA then runs through :mod:`macnss_auth.nfc.eckeys` on every standardized
curve: cryptography where it has the curve, the project's own arithmetic for
the others (brainpoolP192r1/P224r1/P320r1; secp192r1/secp224r1 on OpenSSL
builds without them). Unknown explicit curves are refused. Signature checks
stay strict.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Union

import attrs
from asn1crypto import algos, core, crl, keys, pem, x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from macnss_auth.errors import (
    AuthenticationFailed,
    MalformedInput,
    Reason,
    UnsupportedAlgorithm,
)
from macnss_auth.nfc import ec as ec_math
from macnss_auth.nfc import tlv
from macnss_auth.nfc.domain_params import curve_by_name, curve_from_explicit, standardized
from macnss_auth.nfc.eckeys import EcPublicKey, clear_key_cache, ecdsa_verify

__all__ = [
    "OID_CSCA_MASTER_LIST",
    "OID_STANDARDIZED_DOMAIN_PARAMETERS",
    "Certificate",
    "CertificateRevocationList",
    "ChainResult",
    "EcDomainParameters",
    "HashAlgorithm",
    "MasterList",
    "PkiFormatError",
    "PublicKey",
    "PublicKeyInfo",
    "SignatureInvalid",
    "SignatureKind",
    "SignatureScheme",
    "SignedContent",
    "TrustAnchor",
    "TrustSource",
    "TrustStore",
    "clear_caches",
    "ecdsa_signature_values",
    "parse_certificate",
    "parse_crl",
    "parse_master_list",
    "parse_public_key_info",
    "parse_signed_data",
    "verify_signature",
]

OID_CSCA_MASTER_LIST = "2.23.136.1.1.2"  # ICAO 9303-12 §9: id-icao-cscaMasterList

PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey]  # noqa: UP007 (runtime alias, 3.10)


class PkiFormatError(MalformedInput):
    """A certificate, key, CRL, CMS structure or master list cannot be parsed."""


class SignatureInvalid(AuthenticationFailed):
    """A signature did not verify (or the key cannot make that kind of signature)."""

    default_reason = Reason.DOCUMENT_NOT_GENUINE


def _asn1_error(what: str, exc: Exception) -> PkiFormatError:
    return PkiFormatError(f"malformed {what}: {type(exc).__name__}", field=what)


# Exceptions asn1crypto raises on malformed input (it has no common base class).
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


# ---------------------------------------------------------------------------
# Hash and signature algorithms
# ---------------------------------------------------------------------------


class HashAlgorithm(str, enum.Enum):
    """The hash functions used in eMRTD signatures and SOD digests."""

    SHA1 = "sha1"
    SHA224 = "sha224"
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"

    def new(self) -> hashes.HashAlgorithm:
        """A cryptography hash object for this algorithm."""
        return _HASHES[self]()

    def digest(self, data: bytes) -> bytes:
        """Hash ``data``."""
        return hashlib.new(self.value, data).digest()

    @property
    def digest_size(self) -> int:
        """Digest length in bytes."""
        return hashlib.new(self.value).digest_size

    @classmethod
    def from_name(cls, name: str) -> HashAlgorithm:
        """From an asn1crypto name or a dotted OID.

        Raises:
            UnsupportedAlgorithm: not a hash used here.
        """
        key = _HASH_OIDS.get(name, name).lower().replace("-", "")
        try:
            return cls(key)
        except ValueError:
            raise UnsupportedAlgorithm(f"hash algorithm {name!r} is not supported") from None


_HASHES: dict[HashAlgorithm, type[hashes.HashAlgorithm]] = {
    HashAlgorithm.SHA1: hashes.SHA1,
    HashAlgorithm.SHA224: hashes.SHA224,
    HashAlgorithm.SHA256: hashes.SHA256,
    HashAlgorithm.SHA384: hashes.SHA384,
    HashAlgorithm.SHA512: hashes.SHA512,
}
_HASH_OIDS = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}

# BSI TR-03111 §5.2.1 ecdsa-plain-signatures: r || s, fixed length.
_ECDSA_PLAIN_OIDS = {
    "0.4.0.127.0.7.1.1.4.1.1": HashAlgorithm.SHA1,
    "0.4.0.127.0.7.1.1.4.1.2": HashAlgorithm.SHA224,
    "0.4.0.127.0.7.1.1.4.1.3": HashAlgorithm.SHA256,
    "0.4.0.127.0.7.1.1.4.1.4": HashAlgorithm.SHA384,
    "0.4.0.127.0.7.1.1.4.1.5": HashAlgorithm.SHA512,
}


class SignatureKind(str, enum.Enum):
    """Signature schemes found on eMRTDs and their certificates."""

    RSA_PKCS1 = "rsa-pkcs1v15"
    RSA_PSS = "rsa-pss"
    ECDSA = "ecdsa"  # DER-encoded (r, s), as in X.509 and CMS
    ECDSA_PLAIN = "ecdsa-plain"  # r || s, as in BSI TR-03111 and Active Authentication


@attrs.frozen
class SignatureScheme:
    """A signature scheme with its hash (and PSS parameters)."""

    kind: SignatureKind
    hash: HashAlgorithm
    pss_salt_length: int | None = None
    pss_mgf_hash: HashAlgorithm | None = None

    @classmethod
    def from_asn1(cls, algorithm: Any, digest_algorithm: str | None = None) -> SignatureScheme:
        """From an asn1crypto ``SignedDigestAlgorithm``.

        ``digest_algorithm`` is the hash to use when the signature OID names
        none (plain ``rsaEncryption`` or ``id-ecPublicKey`` in CMS SignerInfos).

        Raises:
            UnsupportedAlgorithm: an algorithm outside RSA/ECDSA with SHA-1/SHA-2.
            PkiFormatError: bad PSS parameters.
        """
        try:
            oid = algorithm["algorithm"].dotted
        except _ASN1_ERRORS as exc:
            raise _asn1_error("signature algorithm", exc) from exc
        if oid in _ECDSA_PLAIN_OIDS:
            return cls(SignatureKind.ECDSA_PLAIN, _ECDSA_PLAIN_OIDS[oid])
        try:
            sig_algo = algorithm.signature_algo
        except _ASN1_ERRORS:
            raise UnsupportedAlgorithm(f"signature algorithm {oid} is not supported") from None
        if sig_algo == "rsassa_pss":
            try:
                params = algorithm["parameters"]
                hash_name = params["hash_algorithm"]["algorithm"].native
                mgf = params["mask_gen_algorithm"]
                mgf_hash = mgf["parameters"]["algorithm"].native
                salt = int(params["salt_length"].native)
            except _ASN1_ERRORS as exc:
                raise _asn1_error("RSASSA-PSS parameters", exc) from exc
            return cls(
                SignatureKind.RSA_PSS,
                HashAlgorithm.from_name(hash_name),
                pss_salt_length=salt,
                pss_mgf_hash=HashAlgorithm.from_name(mgf_hash),
            )
        kind = {
            "rsassa_pkcs1v15": SignatureKind.RSA_PKCS1,
            "ecdsa": SignatureKind.ECDSA,
        }.get(sig_algo)
        if kind is None:
            raise UnsupportedAlgorithm(f"signature algorithm {sig_algo} is not supported")
        try:
            hash_name = algorithm.hash_algo
        except _ASN1_ERRORS:
            if digest_algorithm is None:
                raise UnsupportedAlgorithm(f"{oid} names no hash algorithm") from None
            hash_name = digest_algorithm
        return cls(kind, HashAlgorithm.from_name(hash_name))


def verify_signature(
    key: PublicKey | EcPublicKey | PublicKeyInfo,
    scheme: SignatureScheme,
    data: bytes,
    signature: bytes,
) -> None:
    """Verify ``signature`` over ``data``.

    EC keys may be on any standardized curve, named by OID or by explicit
    parameters (brainpoolP224r1 document signers, for example): curves
    cryptography lacks are checked by :func:`macnss_auth.nfc.eckeys.ecdsa_verify`
    (public data only). Unknown explicit curves are refused.

    Raises:
        SignatureInvalid: the signature does not verify, or the key type does not fit the scheme.
        UnsupportedAlgorithm: the key cannot be used (unknown curve, DH).
        PkiFormatError: an EC key whose point is not a valid point of its curve.
    """
    if isinstance(key, PublicKeyInfo):
        ec_key = key.ec_public_key() if key.algorithm == "ec" else None
        if ec_key is not None:
            _verify_ecdsa(ec_key, scheme, data, signature)
            return
        key = key.to_cryptography()
    if isinstance(key, EcPublicKey):
        _verify_ecdsa(key, scheme, data, signature)
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        try:
            ec_key = EcPublicKey.from_cryptography(key)
        except MalformedInput as exc:
            raise PkiFormatError("invalid EC public point", field="public_key") from exc
        _verify_ecdsa(ec_key, scheme, data, signature)
        return
    algorithm = scheme.hash.new()
    try:
        if scheme.kind is SignatureKind.RSA_PKCS1:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif scheme.kind is SignatureKind.RSA_PSS:
            mgf_hash = (scheme.pss_mgf_hash or scheme.hash).new()
            salt = scheme.pss_salt_length
            key.verify(
                signature,
                data,
                padding.PSS(
                    mgf=padding.MGF1(mgf_hash),
                    salt_length=salt if salt is not None else padding.PSS.AUTO,
                ),
                algorithm,
            )
        else:
            raise SignatureInvalid("an RSA key cannot make an ECDSA signature")
    except InvalidSignature:
        raise SignatureInvalid("signature does not verify") from None
    except (ValueError, TypeError) as exc:
        # cryptography raises ValueError for impossible parameters (salt too long...).
        raise SignatureInvalid(f"signature cannot be checked: {type(exc).__name__}") from None


def ecdsa_signature_values(
    key: EcPublicKey, kind: SignatureKind, signature: bytes
) -> tuple[int, int]:
    """``(r, s)`` from a DER ``Ecdsa-Sig-Value`` or a plain ``r || s`` (BSI TR-03111 §5.2.1).

    Raises:
        SignatureInvalid: a malformed encoding or the wrong length.
    """
    if kind is SignatureKind.ECDSA_PLAIN:
        half = key.curve.order_length
        if len(signature) != 2 * half:
            raise SignatureInvalid("plain ECDSA signature has the wrong length")
        return int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
    if kind is not SignatureKind.ECDSA:
        raise SignatureInvalid("an EC key cannot make an RSA signature")
    try:
        # Strict DER (cryptography's parser): BER variants are malleability, refuse them.
        r, s = utils.decode_dss_signature(signature)
    except ValueError:
        raise SignatureInvalid("malformed ECDSA signature") from None
    return r, s


def _verify_ecdsa(key: EcPublicKey, scheme: SignatureScheme, data: bytes, signature: bytes) -> None:
    values = ecdsa_signature_values(key, scheme.kind, signature)
    if not ecdsa_verify(key, data, values, scheme.hash.new()):
        raise SignatureInvalid("signature does not verify")


# ---------------------------------------------------------------------------
# Public keys, with explicit EC domain parameters rebuilt on named curves
# ---------------------------------------------------------------------------


@attrs.frozen
class EcDomainParameters:
    """Prime-field elliptic curve domain parameters (SEC 1 §3.3).

    ``name`` is the named curve these parameters were matched to, if any.
    """

    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int
    h: int
    name: str | None = None

    @property
    def field_size(self) -> int:
        """Bytes needed for one coordinate."""
        return (self.p.bit_length() + 7) // 8


_NAMED_CURVE_OIDS: dict[str, str] = {
    "1.2.840.10045.3.1.1": "secp192r1",
    "1.3.132.0.33": "secp224r1",
    "1.2.840.10045.3.1.7": "secp256r1",
    "1.3.132.0.34": "secp384r1",
    "1.3.132.0.35": "secp521r1",
    "1.3.36.3.3.2.8.1.1.3": "brainpoolP192r1",
    "1.3.36.3.3.2.8.1.1.5": "brainpoolP224r1",
    "1.3.36.3.3.2.8.1.1.7": "brainpoolP256r1",
    "1.3.36.3.3.2.8.1.1.9": "brainpoolP320r1",
    "1.3.36.3.3.2.8.1.1.11": "brainpoolP384r1",
    "1.3.36.3.3.2.8.1.1.13": "brainpoolP512r1",
}


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
    rsa_exponent: int | None = None

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


def _whole_bytes(bit_string: Any, field: str) -> bytes:
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


class _AnyAlgorithm(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # RFC 5280 §4.1.1.2 with the parameters left open (asn1crypto's own
    # PublicKeyInfo raises KeyError on algorithms it does not know).
    _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class _AnySubjectPublicKeyInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # RFC 5280 §4.1.2.7
    _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
        ("algorithm", _AnyAlgorithm),
        ("public_key", core.BitString),
    ]


#: standardizedDomainParameters (BSI TR-03110-3 §A.2.1.1; ICAO 9303-11 §9.5.1):
#: the AlgorithmIdentifier's parameter is an INTEGER id of the standardized table.
OID_STANDARDIZED_DOMAIN_PARAMETERS = "0.4.0.127.0.7.1.2"


def _standardized_key(der: bytes) -> PublicKeyInfo:
    """A SubjectPublicKeyInfo naming its group by a standardized domain parameter id."""
    spki = _AnySubjectPublicKeyInfo.load(der, strict=True)
    parameters = spki["algorithm"]["parameters"]
    if isinstance(parameters, core.Void):
        raise PkiFormatError("standardizedDomainParameters without an id", field="public_key")
    parameter_id = parameters.parse(core.Integer).native
    if not isinstance(parameter_id, int):
        raise PkiFormatError("standardized domain parameter id is not an INTEGER", field="key")
    group = standardized(parameter_id)
    body = _whole_bytes(spki["public_key"], "key")
    if isinstance(group, ec_math.Curve):
        return PublicKeyInfo("ec", der, curve=group.name, ec_point=body)
    return PublicKeyInfo("dh", der)


@functools.lru_cache(maxsize=4096)
def _parse_public_key_info(der: bytes) -> PublicKeyInfo:
    try:
        generic = _AnySubjectPublicKeyInfo.load(der, strict=True)
        if generic["algorithm"]["algorithm"].dotted == OID_STANDARDIZED_DOMAIN_PARAMETERS:
            return _standardized_key(der)
        spki = keys.PublicKeyInfo.load(der, strict=True)
        oid = spki["algorithm"]["algorithm"].dotted
        if oid in ("1.2.840.113549.1.1.1", "1.2.840.113549.1.1.10"):
            # rsaEncryption, or id-RSASSA-PSS with the same RSAPublicKey body.
            body = keys.RSAPublicKey.load(_whole_bytes(spki["public_key"], "key"), strict=True)
            return PublicKeyInfo(
                "rsa",
                der,
                # Some issuers encode the modulus without its leading zero byte,
                # which DER reads as negative (the BSI 2008 AA key): read unsigned.
                rsa_modulus=int.from_bytes(body["modulus"].contents, "big"),
                rsa_exponent=int.from_bytes(body["public_exponent"].contents, "big"),
            )
        if oid == "1.2.840.10045.2.1":
            point = _whole_bytes(spki["public_key"], "key")
            params = spki["algorithm"]["parameters"]
            if params.name == "named":
                return PublicKeyInfo(
                    "ec", der, curve=_NAMED_CURVE_OIDS.get(params.chosen.dotted), ec_point=point
                )
            if params.name != "specified":
                raise UnsupportedAlgorithm("implicitly-CA EC parameters are not supported")  # noqa: TRY301
            spec = params.chosen
            if spec["field_id"]["field_type"].native != "prime_field":
                raise UnsupportedAlgorithm("only prime-field curves are supported")  # noqa: TRY301
            p = int(spec["field_id"]["parameters"].native)
            base = bytes(spec["base"].native)
            size = (p.bit_length() + 7) // 8
            if len(base) != 1 + 2 * size or base[0] != 4:
                raise PkiFormatError("EC base point is not uncompressed", field="public_key")  # noqa: TRY301
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
    except (UnsupportedAlgorithm, PkiFormatError):
        raise
    except _ASN1_ERRORS as exc:
        raise _asn1_error("public key", exc) from exc
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


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


@attrs.frozen(eq=False)
class Certificate:
    """An X.509 certificate, parsed tolerantly (negative serials, NULL parameters).

    Equality is by DER bytes.

    Attributes:
        der: the certificate's DER.
        subject / issuer: RFC 4514-like readable names.
        subject_key / issuer_key: canonical forms for matching names.
        serial_number: may be negative in real certificates.
        subject_key_identifier / authority_key_identifier: when present.
        key_usage: key usage bit names (``None`` when the extension is absent).
        is_ca: basicConstraints cA (``None`` when absent).
        private_key_usage_period: (not_before, not_after) when present.
        public_key: the subject's key.
    """

    der: bytes = attrs.field(repr=False)
    subject: str
    issuer: str
    subject_key: str = attrs.field(repr=False)
    issuer_key: str = attrs.field(repr=False)
    serial_number: int
    not_before: dt.datetime
    not_after: dt.datetime
    subject_key_identifier: bytes | None = attrs.field(repr=False)
    authority_key_identifier: bytes | None = attrs.field(repr=False)
    key_usage: frozenset[str] | None
    is_ca: bool | None
    private_key_usage_period: tuple[dt.datetime | None, dt.datetime | None] | None
    country: str | None
    public_key: PublicKeyInfo = attrs.field(repr=False)
    signature_scheme_der: bytes = attrs.field(repr=False)
    tbs_der: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Certificate) and other.der == self.der

    def __hash__(self) -> int:
        return hash(self.der)

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of the DER."""
        return hashlib.sha256(self.der).digest()

    @property
    def self_issued(self) -> bool:
        """Issuer name equals subject name."""
        return self.subject_key == self.issuer_key

    def valid_at(self, when: dt.datetime) -> bool:
        """Whether ``when`` is inside notBefore..notAfter."""
        return self.not_before <= when <= self.not_after

    def signature_scheme(self) -> SignatureScheme:
        """The scheme of this certificate's own signature."""
        return SignatureScheme.from_asn1(
            algos.SignedDigestAlgorithm.load(self.signature_scheme_der)
        )

    def verify_issued_by(self, issuer: Certificate) -> None:
        """Verify this certificate's signature with ``issuer``'s key.

        Raises:
            SignatureInvalid: the signature does not verify.
            UnsupportedAlgorithm: the algorithm or curve is not supported.
        """
        verify_signature(
            issuer.public_key,
            self.signature_scheme(),
            self.tbs_der,
            self.signature,
        )


def _name_key(name: Any) -> str:
    # RFC 5280 §7.1 comparison form (case- and space-folded); cached by DER
    # because asn1crypto's string preparation is the slowest part of a SOD parse.
    return _name_key_of(name.dump())


@functools.lru_cache(maxsize=4096)
def _name_key_of(der: bytes) -> str:
    try:
        return str(x509.Name.load(der, strict=True).hashable)
    except _ASN1_ERRORS as exc:
        raise _asn1_error("name", exc) from exc


def parse_certificate(der: bytes) -> Certificate:
    """Parse an X.509 certificate (DER).

    Raises:
        PkiFormatError: malformed DER or fields.
    """
    return _parse_certificate(bytes(der))


@functools.lru_cache(maxsize=8192)
def _parse_certificate(der: bytes) -> Certificate:
    try:
        cert = x509.Certificate.load(der, strict=True)
        tbs = cert["tbs_certificate"]
        validity = tbs["validity"]
        ski = cert.key_identifier
        aki = cert.authority_key_identifier
        ku = cert.key_usage_value
        bc = cert.basic_constraints_value
        pkup = cert.private_key_usage_period_value
        country = None
        for rdn in tbs["subject"].chosen:
            for attr in rdn:
                if attr["type"].native == "country_name":
                    country = str(attr["value"].native)
        return Certificate(
            der=der,
            subject=tbs["subject"].human_friendly,
            issuer=tbs["issuer"].human_friendly,
            subject_key=_name_key(tbs["subject"]),
            issuer_key=_name_key(tbs["issuer"]),
            serial_number=int(tbs["serial_number"].native),
            not_before=_aware(validity["not_before"].native),
            not_after=_aware(validity["not_after"].native),
            subject_key_identifier=bytes(ski) if ski is not None else None,
            authority_key_identifier=bytes(aki) if aki is not None else None,
            key_usage=frozenset(ku.native) if ku is not None else None,
            is_ca=bool(bc["ca"].native) if bc is not None else None,
            private_key_usage_period=(
                (
                    _aware(pkup["not_before"].native) if pkup["not_before"].native else None,
                    _aware(pkup["not_after"].native) if pkup["not_after"].native else None,
                )
                if pkup is not None
                else None
            ),
            country=country,
            public_key=parse_public_key_info(tbs["subject_public_key_info"].dump()),
            signature_scheme_der=cert["signature_algorithm"].dump(),
            tbs_der=tbs.dump(),
            signature=_whole_bytes(cert["signature_value"], "certificate signature"),
        )
    except (PkiFormatError, UnsupportedAlgorithm):
        raise
    except _ASN1_ERRORS as exc:
        raise _asn1_error("certificate", exc) from exc


# ---------------------------------------------------------------------------
# CMS SignedData (RFC 5652): EF.SOD, master lists, EF.CardSecurity
# ---------------------------------------------------------------------------


@attrs.frozen
class SignedContent:
    """A parsed CMS SignedData with one SignerInfo.

    Attributes:
        content_type: the eContentType OID (dotted).
        content: the eContent bytes (what was signed, directly or via attributes).
        certificates: certificates carried in the SignedData.
        signer_issuer_key / signer_serial: the signer identifier (issuer and serial), or
        signer_key_identifier: the subjectKeyIdentifier form of it.
        digest_algorithm: the SignerInfo digest algorithm.
        scheme: the signature scheme.
        signed_attributes: DER of the signed attributes as a SET (what is signed), if any.
        message_digest: the messageDigest attribute.
        content_type_attribute: the contentType attribute (dotted).
        signing_time: the signingTime attribute.
    """

    content_type: str
    content: bytes = attrs.field(repr=False)
    certificates: tuple[Certificate, ...] = attrs.field(repr=False)
    signer_issuer_key: str | None = attrs.field(repr=False)
    signer_serial: int | None
    signer_key_identifier: bytes | None = attrs.field(repr=False)
    digest_algorithm: HashAlgorithm
    scheme: SignatureScheme
    signature: bytes = attrs.field(repr=False)
    signed_attributes: bytes | None = attrs.field(repr=False)
    message_digest: bytes | None = attrs.field(repr=False)
    content_type_attribute: str | None
    signing_time: dt.datetime | None

    def signer_certificate(self, extra: Iterable[Certificate] = ()) -> Certificate | None:
        """The certificate (carried, or among ``extra``) that the signer identifier names."""
        for cert in (*self.certificates, *extra):
            if self.signer_key_identifier is not None:
                if cert.subject_key_identifier == self.signer_key_identifier:
                    return cert
            elif (
                cert.issuer_key == self.signer_issuer_key
                and cert.serial_number == self.signer_serial
            ):
                return cert
        return None

    def verify(self, signer: Certificate) -> None:
        """Verify the signature (and, with signed attributes, the content digest).

        Raises:
            SignatureInvalid: the digest or signature does not match.
            UnsupportedAlgorithm: an unsupported algorithm or curve.
        """
        if self.signed_attributes is None:
            signed = self.content
        else:
            if self.message_digest is None:
                raise SignatureInvalid("signed attributes lack a message digest")
            if self.content_type_attribute != self.content_type:
                raise SignatureInvalid("contentType attribute differs from eContentType")
            digest = self.digest_algorithm.digest(self.content)
            if not _constant_time_eq(digest, self.message_digest):
                raise SignatureInvalid("message digest does not match the content")
            signed = self.signed_attributes
        verify_signature(signer.public_key, self.scheme, signed, self.signature)


def _constant_time_eq(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def _der_items(data: bytes, field: str) -> list[tuple[int, bytes, bytes]]:
    """(tag, value, whole encoding) of the DER objects that fill ``data`` exactly."""
    out: list[tuple[int, bytes, bytes]] = []
    offset = 0
    while offset < len(data):
        try:
            item, end = tlv.parse_one(data, offset)
        except MalformedInput as exc:
            raise PkiFormatError(f"malformed {field}: {exc}", field=field) from exc
        out.append((item.tag, item.value, data[offset:end]))
        offset = end
    return out


def _der_expect(
    items: list[tuple[int, bytes, bytes]], index: int, tag: int, field: str
) -> tuple[bytes, bytes]:
    if index >= len(items) or items[index][0] != tag:
        raise PkiFormatError(f"malformed {field}: expected tag {tag:#x}", field=field)
    return items[index][1], items[index][2]


def _der_oid(value: bytes, field: str) -> str:
    """Decode the content octets of an OBJECT IDENTIFIER (X.690 §8.19)."""
    if not value or value[-1] & 0x80 or len(value) > 64:
        raise PkiFormatError(f"malformed OID in {field}", field=field)
    numbers: list[int] = []
    current = 0
    for index, byte in enumerate(value):
        if current == 0 and byte == 0x80 and (index == 0 or not value[index - 1] & 0x80):
            raise PkiFormatError(f"non-minimal OID in {field}", field=field)
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            numbers.append(current)
            current = 0
    first = numbers[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(n) for n in head + numbers[1:])


@functools.lru_cache(maxsize=256)
def _scheme_of(algorithm_der: bytes, digest_name: str) -> SignatureScheme:
    try:
        algorithm = algos.SignedDigestAlgorithm.load(algorithm_der, strict=True)
        return SignatureScheme.from_asn1(algorithm, digest_name)
    except _ASN1_ERRORS as exc:
        raise _asn1_error("signature algorithm", exc) from exc


def parse_signed_data(der: bytes) -> SignedContent:
    """Parse a CMS ContentInfo holding SignedData with exactly one SignerInfo (RFC 5652 §5).

    The envelope is walked with the bounded TLV reader (every length checked
    against its buffer); asn1crypto decodes only certificates, algorithm
    identifiers and times.

    Raises:
        PkiFormatError: malformed, not SignedData, no content, or not one signer.
        UnsupportedAlgorithm: unsupported digest or signature algorithm.
    """
    data = bytes(der)
    field = "CMS SignedData"
    top = _der_items(data, field)
    if len(top) != 1 or top[0][0] != 0x30:
        raise PkiFormatError("not one DER ContentInfo", field=field)
    info = _der_items(top[0][1], field)
    content_type, _ = _der_expect(info, 0, 0x06, field)
    if _der_oid(content_type, field) != "1.2.840.113549.1.7.2" or len(info) != 2:
        raise PkiFormatError("not CMS SignedData", field="content_type")
    explicit, _ = _der_expect(info, 1, 0xA0, field)
    wrapper = _der_items(explicit, field)
    if len(wrapper) != 1:
        raise PkiFormatError("malformed SignedData wrapper", field=field)
    body = _der_items(_der_expect(wrapper, 0, 0x30, field)[0], field)
    # RFC 5652 §5.1: version 1 or 3 (4/5 only with attribute certificates or other formats).
    if _der_expect(body, 0, 0x02, field)[0] not in (b"\x01", b"\x03", b"\x04", b"\x05"):
        raise PkiFormatError("unknown SignedData version", field=field)
    digest_set = _der_items(_der_expect(body, 1, 0x31, field)[0], "digest_algorithms")
    encap = _der_items(_der_expect(body, 2, 0x30, field)[0], field)
    econtent_type = _der_oid(_der_expect(encap, 0, 0x06, field)[0], field)
    if len(encap) != 2:
        raise PkiFormatError("SignedData carries no content", field="content")
    econtent = _der_items(_der_expect(encap, 1, 0xA0, field)[0], field)
    if len(econtent) != 1:
        raise PkiFormatError("malformed eContent", field="content")
    content_bytes, _ = _der_expect(econtent, 0, 0x04, "content")
    index = 3
    certs: list[Certificate] = []
    if index < len(body) and body[index][0] == 0xA0:
        certs = [
            parse_certificate(raw)
            for tag, _, raw in _der_items(body[index][1], "certificates")
            if tag == 0x30
        ]
        index += 1
    if index < len(body) and body[index][0] == 0xA1:
        index += 1  # CRLs carried in the SignedData are not used
    signer_set, _ = _der_expect(body, index, 0x31, field)
    if index + 1 != len(body):
        raise PkiFormatError("unexpected fields after signerInfos", field=field)
    signer_infos = _der_items(signer_set, "signer_infos")
    if len(signer_infos) != 1 or signer_infos[0][0] != 0x30:
        raise PkiFormatError("expected exactly one SignerInfo", field="signer_infos")
    signer = _der_items(signer_infos[0][1], "signer_info")
    signer_version = _der_expect(signer, 0, 0x02, "signer_info")[0]
    issuer_key = serial = ski = None
    if len(signer) > 1 and signer[1][0] == 0x30:
        sid = _der_items(signer[1][1], "sid")
        _, name_raw = _der_expect(sid, 0, 0x30, "sid")
        serial_value, _ = _der_expect(sid, 1, 0x02, "sid")
        if len(sid) != 2 or not serial_value:
            raise PkiFormatError("malformed issuerAndSerialNumber", field="sid")
        issuer_key = _name_key_of(name_raw)
        # Negative serial numbers occur in real certificates: read them as DER says.
        serial = int.from_bytes(serial_value, "big", signed=True)
    else:
        ski = _der_expect(signer, 1, 0x80, "sid")[0]
    digest_items = _der_items(_der_expect(signer, 2, 0x30, "digest_algorithm")[0], "digest")
    digest_name = _HASH_OIDS.get(
        _der_oid(_der_expect(digest_items, 0, 0x06, "digest")[0], "digest")
    )
    if digest_name is None:
        raise UnsupportedAlgorithm("the SignerInfo digest algorithm is not supported")
    # RFC 5652 §5.3: version 1 with issuerAndSerialNumber, 3 with subjectKeyIdentifier.
    if signer_version != (b"\x01" if ski is None else b"\x03"):
        raise PkiFormatError("SignerInfo version does not match its sid", field="signer_info")
    if len(digest_items) > 2 or (len(digest_items) == 2 and digest_items[1][2] != b"\x05\x00"):
        raise PkiFormatError("digest algorithm parameters must be absent or NULL", field="digest")
    listed = [_der_items(value, "digest_algorithms") for tag, value, _ in digest_set if tag == 0x30]
    if not any(items and items[0][2] == digest_items[0][2] for items in listed):
        raise PkiFormatError("the signer's digest algorithm is not listed", field="digest")
    index = 3
    attrs_der = digest_attr = ct_attr = None
    signing_time = None
    if index < len(signer) and signer[index][0] == 0xA0:
        value, raw = signer[index][1], signer[index][2]
        # The signature covers the attributes with a SET OF tag, not [0] (RFC 5652 §5.4).
        attrs_der = b"\x31" + raw[1:]
        for tag, attribute, _ in _der_items(value, "signed_attrs"):
            parts = _der_items(attribute, "signed_attrs") if tag == 0x30 else []
            kind = _der_oid(_der_expect(parts, 0, 0x06, "signed_attrs")[0], "signed_attrs")
            values = _der_items(_der_expect(parts, 1, 0x31, "signed_attrs")[0], "signed_attrs")
            if len(parts) != 2 or len(values) != 1:
                raise PkiFormatError("signed attribute must have one value", field="signed_attrs")
            value_tag, _, value_raw = values[0]
            if kind == "1.2.840.113549.1.9.4":
                digest_attr = _der_expect(values, 0, 0x04, "message_digest")[0]
            elif kind == "1.2.840.113549.1.9.3":
                ct_attr = _der_oid(_der_expect(values, 0, 0x06, "content_type")[0], "content_type")
            elif kind == "1.2.840.113549.1.9.5":
                signing_time = _time_of(value_tag, value_raw)
        index += 1
    _, algorithm_raw = _der_expect(signer, index, 0x30, "signature_algorithm")
    signature, _ = _der_expect(signer, index + 1, 0x04, "signature")
    if index + 2 < len(signer) and signer[index + 2][0] != 0xA1:
        raise PkiFormatError("unexpected fields in SignerInfo", field="signer_info")
    return SignedContent(
        content_type=econtent_type,
        content=content_bytes,
        certificates=tuple(certs),
        signer_issuer_key=issuer_key,
        signer_serial=serial,
        signer_key_identifier=ski,
        digest_algorithm=HashAlgorithm.from_name(digest_name),
        scheme=_scheme_of(algorithm_raw, digest_name),
        signature=signature,
        signed_attributes=attrs_der,
        message_digest=digest_attr,
        content_type_attribute=ct_attr,
        signing_time=signing_time,
    )


def _time_of(tag: int, raw: bytes) -> dt.datetime:
    try:
        if tag == 0x17:
            return _aware(core.UTCTime.load(raw, strict=True).native)
        if tag == 0x18:
            return _aware(core.GeneralizedTime.load(raw, strict=True).native)
    except _ASN1_ERRORS as exc:
        raise _asn1_error("signing time", exc) from exc
    raise PkiFormatError("signing time is not a Time", field="signing_time")


# ---------------------------------------------------------------------------
# Master lists and CRLs
# ---------------------------------------------------------------------------


class _CscaMasterList(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # ICAO 9303-12 §9: CscaMasterList ::= SEQUENCE { version, certList SET OF Certificate }
    _fields: ClassVar[list[tuple[str, Any, dict[str, Any]]]] = [
        ("version", core.Integer, {}),
        ("cert_list", core.SetOf, {"spec": x509.Certificate}),
    ]


@attrs.frozen
class MasterList:
    """A CSCA master list (ICAO 9303-12 §9), parsed but not yet verified.

    Attributes:
        certificates: the CSCA (and link) certificates listed.
        signed: the CMS envelope; ``signed.signer_certificate()`` is the master list signer.
        skipped: entries that could not be parsed (kept out of the list, counted here).
    """

    certificates: tuple[Certificate, ...] = attrs.field(repr=lambda c: f"<{len(c)} certificates>")
    signed: SignedContent = attrs.field(repr=False)
    skipped: int = 0

    def by_country(self, country: str) -> tuple[Certificate, ...]:
        """The listed certificates whose subject country is ``country`` (e.g. ``"MA"``)."""
        wanted = country.upper()
        return tuple(c for c in self.certificates if (c.country or "").upper() == wanted)

    @property
    def signer(self) -> Certificate | None:
        """The master list signer's certificate (carried in the CMS)."""
        return self.signed.signer_certificate()

    def verify(self, trusted: Iterable[Certificate] = ()) -> Certificate:
        """Verify the list's CMS signature and its signer's certificate.

        The signer must be certified by a CSCA in ``trusted`` when given, else by a
        CSCA in the list itself (a self-consistent list: trust then rests on how
        you obtained the file).

        Returns:
            The CSCA that certified the master list signer.

        Raises:
            SignatureInvalid: the list signature, or the signer's certificate, does not verify.
            UnsupportedAlgorithm: an algorithm that cannot be checked.
        """
        signer = self.signer
        if signer is None:
            raise SignatureInvalid("the master list signer's certificate is missing")
        if signer.key_usage is not None and "digital_signature" not in signer.key_usage:
            raise SignatureInvalid("the master list signer may not sign")
        self.signed.verify(signer)
        issuers = tuple(trusted) or self.certificates
        for csca in issuers:
            if csca.subject_key != signer.issuer_key:
                continue
            if (
                signer.authority_key_identifier is not None
                and csca.subject_key_identifier is not None
                and signer.authority_key_identifier != csca.subject_key_identifier
            ):
                continue
            try:
                signer.verify_issued_by(csca)
            except (SignatureInvalid, UnsupportedAlgorithm, PkiFormatError):
                continue
            return csca
        raise SignatureInvalid("no CSCA certifies the master list signer")


def parse_master_list(der: bytes) -> MasterList:
    """Parse a CSCA master list file (CMS SignedData over CscaMasterList).

    Raises:
        PkiFormatError: malformed, or not a master list.
    """
    signed = parse_signed_data(der)
    if signed.content_type != OID_CSCA_MASTER_LIST:
        raise PkiFormatError("not a CSCA master list", field="content_type")
    try:
        body = _CscaMasterList.load(signed.content, strict=True)
        certs: list[Certificate] = []
        skipped = 0
        for item in body["cert_list"]:
            try:
                certs.append(parse_certificate(item.dump()))
            except (PkiFormatError, UnsupportedAlgorithm):  # noqa: PERF203 (count bad entries)
                skipped += 1
    except _ASN1_ERRORS as exc:
        raise _asn1_error("CscaMasterList", exc) from exc
    return MasterList(tuple(certs), signed, skipped)


@attrs.frozen
class CertificateRevocationList:
    """A parsed CRL (RFC 5280 §5)."""

    der: bytes = attrs.field(repr=False)
    issuer: str
    issuer_key: str = attrs.field(repr=False)
    authority_key_identifier: bytes | None = attrs.field(repr=False)
    this_update: dt.datetime
    next_update: dt.datetime | None
    revoked: frozenset[int] = attrs.field(repr=lambda r: f"<{len(r)} serials>")
    scheme_der: bytes = attrs.field(repr=False)
    tbs_der: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)

    def verify_issued_by(self, issuer: Certificate) -> None:
        """Verify the CRL signature with ``issuer``'s key.

        Raises:
            SignatureInvalid: it does not verify.
        """
        scheme = SignatureScheme.from_asn1(algos.SignedDigestAlgorithm.load(self.scheme_der))
        verify_signature(issuer.public_key, scheme, self.tbs_der, self.signature)


def parse_crl(der: bytes) -> CertificateRevocationList:
    """Parse a DER CRL.

    Raises:
        PkiFormatError: malformed.
    """
    try:
        parsed = crl.CertificateList.load(bytes(der), strict=True)
        tbs = parsed["tbs_cert_list"]
        next_update = tbs["next_update"].native
        return CertificateRevocationList(
            der=bytes(der),
            issuer=tbs["issuer"].human_friendly,
            issuer_key=_name_key(tbs["issuer"]),
            authority_key_identifier=(
                bytes(parsed.authority_key_identifier)
                if parsed.authority_key_identifier is not None
                else None
            ),
            this_update=_aware(tbs["this_update"].native),
            next_update=_aware(next_update) if next_update is not None else None,
            revoked=frozenset(
                int(entry["user_certificate"].native) for entry in tbs["revoked_certificates"]
            ),
            scheme_der=parsed["signature_algorithm"].dump(),
            tbs_der=tbs.dump(),
            signature=_whole_bytes(parsed["signature"], "CRL signature"),
        )
    except _ASN1_ERRORS as exc:
        raise _asn1_error("CRL", exc) from exc


# ---------------------------------------------------------------------------
# Trust store
# ---------------------------------------------------------------------------


class TrustSource(str, enum.Enum):
    """How a CSCA certificate came to be trusted."""

    MASTER_LIST = "master_list"
    FILE = "file"
    LINK_CERTIFICATE = "link_certificate"
    EXPLICIT = "explicit"


@attrs.frozen
class TrustAnchor:
    """A trusted CSCA certificate and why it is trusted."""

    certificate: Certificate
    source: TrustSource
    detail: str


@attrs.frozen
class ChainResult:
    """The outcome of validating a document signer certificate against the trust store.

    Attributes:
        trusted: the DS chains to a trust anchor and every check passed.
        reason: why not (or what anchor it chains to).
        anchor: the CSCA anchor, when one verified the DS signature.
        issuer_name: the DS issuer as written in the certificate.
        revocation: ``"good"``, ``"revoked"`` or ``"unknown"`` (no CRL for the issuer).
        revocation_reason: details for the CRL check.
    """

    trusted: bool
    reason: str
    anchor: TrustAnchor | None
    issuer_name: str
    revocation: str
    revocation_reason: str


class TrustStore:
    """CSCA trust anchors and CRLs, with cached chain validation.

    What is trusted and why:

    * ``add_csca(cert)`` / ``load_directory(path)``: the caller vouches for the file.
    * ``load_master_list(data)``: the list's CMS signature and its signer are
      verified; the signer must be certified by an already trusted CSCA when
      ``require_trusted_signer`` is set, else by a CSCA in the list itself.
    * ``add_link_certificate(cert)``: trusted only if an existing anchor signed it.
    * ``add_crl(crl)``: kept only if a trusted CSCA signed it.

    Validation caches signature checks (per certificate pair), so a warm store
    validates a known document signer with only the cheap date and CRL checks.
    """

    def __init__(self) -> None:
        self._anchors: dict[bytes, TrustAnchor] = {}
        self._by_subject: dict[str, list[TrustAnchor]] = {}
        self._crls: dict[str, list[CertificateRevocationList]] = {}
        self._signature_ok: dict[tuple[bytes, bytes], bool] = {}

    def __repr__(self) -> str:
        return (
            f"TrustStore({len(self._anchors)} anchors, {sum(map(len, self._crls.values()))} CRLs)"
        )

    @property
    def anchors(self) -> tuple[TrustAnchor, ...]:
        """Every trusted CSCA with its provenance."""
        return tuple(self._anchors.values())

    def _add(self, cert: Certificate, source: TrustSource, detail: str) -> TrustAnchor:
        existing = self._anchors.get(cert.fingerprint)
        if existing is not None:
            return existing
        anchor = TrustAnchor(cert, source, detail)
        self._anchors[cert.fingerprint] = anchor
        self._by_subject.setdefault(cert.subject_key, []).append(anchor)
        return anchor

    def add_csca(
        self, certificate: Certificate | bytes, *, detail: str = "added explicitly"
    ) -> TrustAnchor:
        """Trust a CSCA certificate the caller vouches for.

        Raises:
            PkiFormatError: the bytes are not a certificate.
        """
        cert = (
            certificate if isinstance(certificate, Certificate) else parse_certificate(certificate)
        )
        return self._add(cert, TrustSource.EXPLICIT, detail)

    def load_directory(self, path: str | Path) -> int:
        """Trust every ``*.cer``/``*.crt``/``*.der``/``*.pem`` certificate in a directory.

        Returns:
            How many certificates were added.

        Raises:
            PkiFormatError: a file is not a certificate.
        """
        count = 0
        for file in sorted(Path(path).iterdir()):
            if file.suffix.lower() not in {".cer", ".crt", ".der", ".pem"}:
                continue
            data = file.read_bytes()
            if data.lstrip().startswith(b"-----BEGIN"):
                _, _, data = pem.unarmor(data)
            self._add(parse_certificate(data), TrustSource.FILE, str(file))
            count += 1
        return count

    def load_master_list(
        self,
        data: bytes | MasterList,
        *,
        name: str = "master list",
        require_trusted_signer: bool = False,
        countries: Iterable[str] | None = None,
    ) -> MasterList:
        """Verify a CSCA master list and trust its certificates.

        Args:
            data: the master list file, or an already parsed list.
            name: how to name the list in provenance records.
            require_trusted_signer: the signer must chain to a CSCA already in this store.
            countries: only trust CSCAs of these countries (e.g. ``{"MA"}``).

        Raises:
            PkiFormatError: malformed list.
            SignatureInvalid: the list's signature or signer does not verify.
        """
        master = data if isinstance(data, MasterList) else parse_master_list(data)
        trusted = [a.certificate for a in self._anchors.values()] if require_trusted_signer else []
        if require_trusted_signer and not trusted:
            raise SignatureInvalid("no trusted CSCA to check the master list signer against")
        issuer = master.verify(trusted)
        signer = master.signer
        assert signer is not None  # noqa: S101 (verify() checked it)
        detail = f"{name}, signed by {signer.subject}, certified by {issuer.subject}"
        wanted = {c.upper() for c in countries} if countries is not None else None
        for cert in master.certificates:
            if wanted is None or (cert.country or "").upper() in wanted:
                self._add(cert, TrustSource.MASTER_LIST, detail)
        return master

    def add_link_certificate(self, certificate: Certificate | bytes) -> TrustAnchor:
        """Trust a link certificate (new CSCA key signed by a trusted CSCA key).

        Raises:
            SignatureInvalid: no trusted anchor signed it.
        """
        cert = (
            certificate if isinstance(certificate, Certificate) else parse_certificate(certificate)
        )
        for anchor in self._candidates(cert):
            if self._signed_by(cert, anchor.certificate):
                return self._add(
                    cert,
                    TrustSource.LINK_CERTIFICATE,
                    f"link certificate signed by {anchor.certificate.subject}",
                )
        raise SignatureInvalid("no trusted CSCA signed this link certificate")

    def add_crl(self, data: bytes | CertificateRevocationList) -> CertificateRevocationList:
        """Add a CRL after checking that a trusted CSCA signed it.

        Raises:
            PkiFormatError: malformed CRL.
            SignatureInvalid: no trusted CSCA signed it.
        """
        parsed = data if isinstance(data, CertificateRevocationList) else parse_crl(data)
        for anchor in self._by_subject.get(parsed.issuer_key, []):
            try:
                parsed.verify_issued_by(anchor.certificate)
            except (SignatureInvalid, UnsupportedAlgorithm, PkiFormatError):
                continue
            self._crls.setdefault(parsed.issuer_key, []).append(parsed)
            return parsed
        raise SignatureInvalid("no trusted CSCA signed this CRL")

    def _candidates(self, cert: Certificate) -> list[TrustAnchor]:
        found = self._by_subject.get(cert.issuer_key, [])
        aki = cert.authority_key_identifier
        if aki is None:
            return list(found)
        # Key identifiers pick the right key among a CSCA's successive keys;
        # anchors without an SKI stay candidates (the signature decides).
        return [a for a in found if a.certificate.subject_key_identifier in (None, aki)]

    def _signed_by(self, cert: Certificate, issuer: Certificate) -> bool:
        key = (cert.fingerprint, issuer.fingerprint)
        cached = self._signature_ok.get(key)
        if cached is None:
            try:
                cert.verify_issued_by(issuer)
                cached = True
            except (SignatureInvalid, UnsupportedAlgorithm, PkiFormatError):
                cached = False
            self._signature_ok[key] = cached
        return cached

    def clear_cache(self) -> None:
        """Forget cached signature checks (to measure cold validation)."""
        self._signature_ok.clear()

    def validate_document_signer(
        self, ds: Certificate, *, at: dt.datetime, signing_time: dt.datetime | None = None
    ) -> ChainResult:
        """Validate a document signer certificate against the trust anchors.

        Checks: a trusted CSCA (matched by name and key identifier) signed the DS;
        the CSCA is a CA allowed to sign certificates (when it says); the DS may
        make digital signatures (when it has a key usage extension); both are
        valid at ``at`` (the verifier's trusted time); both certificates, and the
        DS private key usage period, cover ``signing_time`` when the SOD states
        one; and the CRLs of the CSCA do not list the DS.
        """
        issuer = ds.issuer

        def fail(reason: str, anchor: TrustAnchor | None = None) -> ChainResult:
            return ChainResult(
                trusted=False,
                reason=reason,
                anchor=anchor,
                issuer_name=issuer,
                revocation="unknown",
                revocation_reason="not checked",
            )

        candidates = self._candidates(ds)
        if not candidates:
            return fail(f"issuer {issuer!r} is not a trusted CSCA")
        anchor = next((a for a in candidates if self._signed_by(ds, a.certificate)), None)
        if anchor is None:
            return fail(f"no trusted CSCA named {issuer!r} signed the document signer")
        csca = anchor.certificate
        if csca.is_ca is False or (
            csca.key_usage is not None and "key_cert_sign" not in csca.key_usage
        ):
            return fail("the CSCA is not allowed to sign certificates", anchor)
        if ds.key_usage is not None and "digital_signature" not in ds.key_usage:
            return fail("the document signer certificate does not allow digital signatures", anchor)
        if ds.is_ca:
            return fail("the document signer certificate is a CA certificate", anchor)
        if not csca.valid_at(at):
            return fail(f"the CSCA certificate is not valid at {at.isoformat()}", anchor)
        if not ds.valid_at(at):
            return fail(f"the document signer certificate is not valid at {at.isoformat()}", anchor)
        if signing_time is not None:
            if not csca.valid_at(signing_time):
                return fail("the SOD was signed outside the CSCA certificate's validity", anchor)
            if not ds.valid_at(signing_time):
                return fail("the SOD was signed outside the document signer's validity", anchor)
            if ds.private_key_usage_period is not None:
                start, end = ds.private_key_usage_period
                if (start and signing_time < start) or (end and signing_time > end):
                    return fail(
                        "the SOD was signed outside the DS private key usage period", anchor
                    )
        revocation, revocation_reason = self._revocation(ds, csca, at)
        if revocation == "revoked":
            return ChainResult(
                trusted=False,
                reason=revocation_reason,
                anchor=anchor,
                issuer_name=issuer,
                revocation=revocation,
                revocation_reason=revocation_reason,
            )
        return ChainResult(
            trusted=True,
            reason=f"chains to {csca.subject} ({anchor.source.value}: {anchor.detail})",
            anchor=anchor,
            issuer_name=issuer,
            revocation=revocation,
            revocation_reason=revocation_reason,
        )

    def _revocation(self, ds: Certificate, csca: Certificate, at: dt.datetime) -> tuple[str, str]:
        lists = [
            c
            for c in self._crls.get(csca.subject_key, [])
            if c.authority_key_identifier in (None, csca.subject_key_identifier)
        ]
        if not lists:
            return "unknown", "no CRL from the issuing CSCA"
        for item in lists:
            if ds.serial_number in item.revoked:
                return (
                    "revoked",
                    f"the document signer is revoked by the CRL of {item.this_update.date()}",
                )
        current = [c for c in lists if c.next_update is None or c.next_update >= at]
        if not current:
            return "unknown", "the issuing CSCA's CRLs are all past their next update"
        return "good", "not listed on the issuing CSCA's current CRL"

    def find(self, *, country: str | None = None) -> tuple[TrustAnchor, ...]:
        """Anchors, optionally only those of one country."""
        if country is None:
            return self.anchors
        return tuple(
            a
            for a in self._anchors.values()
            if (a.certificate.country or "").upper() == country.upper()
        )

    @classmethod
    def from_master_lists(cls, files: Mapping[str, bytes]) -> TrustStore:
        """A store loaded from several master lists (name -> file bytes).

        Raises:
            PkiFormatError / SignatureInvalid: as :meth:`load_master_list`.
        """
        store = cls()
        for name, data in files.items():
            store.load_master_list(data, name=name)
        return store


def clear_caches() -> None:
    """Forget every parsed certificate and key (to measure cold verification).

    Parsing is cached by DER bytes: identical bytes always parse identically,
    so the caches never change a result, only its cost.
    """
    _parse_certificate.cache_clear()
    _parse_public_key_info.cache_clear()
    _to_cryptography.cache_clear()
    _ec_public_key.cache_clear()
    clear_key_cache()
    _name_key_of.cache_clear()
    _scheme_of.cache_clear()

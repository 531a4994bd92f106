"""Hash functions, signature schemes (RSA PKCS#1 v1.5 and PSS, ECDSA DER and plain), verification.

EC keys may be on any standardized curve: cryptography checks the curves it
has, :mod:`macnss_auth.nfc.eckeys` the others (brainpoolP192r1/P224r1/P320r1).
"""

from __future__ import annotations

import enum
import hashlib
from typing import Any

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

from macnss_auth.errors import MalformedInput, UnsupportedAlgorithm
from macnss_auth.nfc.asn1 import ASN1_ERRORS, decoding
from macnss_auth.nfc.eckeys import EcPublicKey, ecdsa_verify
from macnss_auth.nfc.pki.errors import PkiFormatError, SignatureInvalid
from macnss_auth.nfc.pki.keys import PublicKey, PublicKeyInfo

__all__ = [
    "HASH_OIDS",
    "HashAlgorithm",
    "SignatureKind",
    "SignatureScheme",
    "ecdsa_signature_values",
    "verify_signature",
]


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
        key = HASH_OIDS.get(name, name).lower().replace("-", "")
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
HASH_OIDS = {
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
        with decoding("signature algorithm", error=PkiFormatError):
            oid = algorithm["algorithm"].dotted
        if oid in _ECDSA_PLAIN_OIDS:
            return cls(SignatureKind.ECDSA_PLAIN, _ECDSA_PLAIN_OIDS[oid])
        try:
            sig_algo = algorithm.signature_algo
        except ASN1_ERRORS:
            raise UnsupportedAlgorithm(f"signature algorithm {oid} is not supported") from None
        if sig_algo == "rsassa_pss":
            with decoding("RSASSA-PSS parameters", error=PkiFormatError):
                params = algorithm["parameters"]
                hash_name = params["hash_algorithm"]["algorithm"].native
                mgf = params["mask_gen_algorithm"]
                mgf_hash = mgf["parameters"]["algorithm"].native
                salt = int(params["salt_length"].native)
            # RFC 4055 §3.1: a salt fits in the signature (16384-bit RSA: 2 KB); a larger one
            # made cryptography raise OverflowError.
            if not 0 <= salt <= 4096:
                raise PkiFormatError("RSASSA-PSS salt length out of range", field="parameters")
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
        except ASN1_ERRORS:
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

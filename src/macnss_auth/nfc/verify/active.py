"""Active Authentication signature verification (ICAO 9303-11 §6.1).

The terminal sends an 8-byte challenge; the chip signs it with the private key
whose public half is in DG15.

* RSA: ISO/IEC 9796-2 digital signature scheme 1, partial message recovery.
  The verifier computes ``F = s^e mod n`` (or ``n - F``), checks the header
  ``6A`` and the trailer (``BC`` = SHA-1, or ``<hash id> CC`` with ISO/IEC
  10118-3 identifiers for SHA-224/256/384/512), splits ``F`` into the
  recoverable part M1 and the hash H, and compares ``H = hash(M1 || challenge)``.
* ECDSA: a signature over the challenge, with the hash named by DG14's
  ActiveAuthenticationInfo, on any standardized curve. BSI TR-03111 says plain
  ``r || s``; some chips (the Portuguese Cartão de Cidadão, gmrtd issue #187)
  answer with a DER ``Ecdsa-Sig-Value`` instead. Both are accepted: the
  encoding is read from the answer (a plain signature has exactly twice the
  order's length), and either way the same (r, s) check decides, so accepting
  both gives a forger nothing.
  Without an ActiveAuthenticationInfo the hash is not announced: ICAO 9303-11
  §6.1.2.3 allows SHA-224/256/384/512 no longer than the key, and chips do
  pick a shorter one (a P-384 key signing with SHA-256, gmrtd issue #477), so
  each allowed hash is tried, the key-sized one first.

A DG15 key is only worth checking against once DG15 passed Passive
Authentication; :mod:`macnss_auth.nfc.verify.document` enforces that.
"""

from __future__ import annotations

import hmac

from macnss_auth.nfc.eckeys import EcPublicKey
from macnss_auth.nfc.pki import (
    HashAlgorithm,
    PublicKeyInfo,
    SignatureInvalid,
    SignatureKind,
    SignatureScheme,
    verify_signature,
)

__all__ = ["ecdsa_hash_for", "verify_active_authentication"]

_TRAILER_HASHES = {
    0x33: HashAlgorithm.SHA1,
    0x34: HashAlgorithm.SHA256,
    0x35: HashAlgorithm.SHA512,
    0x36: HashAlgorithm.SHA384,
    0x38: HashAlgorithm.SHA224,
}
_ECDSA_OIDS = {
    # ANSI X9.62 ecdsa-with-SHA* (ICAO 9303-11 §9.2.9 names these).
    "1.2.840.10045.4.1": HashAlgorithm.SHA1,
    "1.2.840.10045.4.3.1": HashAlgorithm.SHA224,
    "1.2.840.10045.4.3.2": HashAlgorithm.SHA256,
    "1.2.840.10045.4.3.3": HashAlgorithm.SHA384,
    "1.2.840.10045.4.3.4": HashAlgorithm.SHA512,
    # BSI TR-03111 ecdsa-plain-SHA*, which some issuers put there instead.
    "0.4.0.127.0.7.1.1.4.1.1": HashAlgorithm.SHA1,
    "0.4.0.127.0.7.1.1.4.1.2": HashAlgorithm.SHA224,
    "0.4.0.127.0.7.1.1.4.1.3": HashAlgorithm.SHA256,
    "0.4.0.127.0.7.1.1.4.1.4": HashAlgorithm.SHA384,
    "0.4.0.127.0.7.1.1.4.1.5": HashAlgorithm.SHA512,
}


#: The hashes ICAO 9303-11 §6.1.2.3 allows for ECDSA Active Authentication.
_ECDSA_AA_HASHES = (
    HashAlgorithm.SHA256,
    HashAlgorithm.SHA384,
    HashAlgorithm.SHA512,
    HashAlgorithm.SHA224,
)


def ecdsa_hash_for(signature_algorithm: str | None, key: PublicKeyInfo) -> HashAlgorithm:
    """The ECDSA AA hash: from the ActiveAuthenticationInfo OID, else by key size."""
    if signature_algorithm in _ECDSA_OIDS:
        return _ECDSA_OIDS[signature_algorithm]
    size = key.key_size
    if size <= 192:
        return HashAlgorithm.SHA1
    if size <= 224:
        return HashAlgorithm.SHA224
    if size <= 256:
        return HashAlgorithm.SHA256
    if size <= 384:
        return HashAlgorithm.SHA384
    return HashAlgorithm.SHA512


def _verify_rsa(key: PublicKeyInfo, challenge: bytes, signature: bytes) -> None:
    n, e = key.rsa_modulus, key.rsa_exponent
    if n is None or e is None:
        raise SignatureInvalid("not an RSA key")
    k = (n.bit_length() + 7) // 8
    s = int.from_bytes(signature, "big")
    if len(signature) != k or not 0 < s < n:
        raise SignatureInvalid("RSA signature has the wrong size")
    recovered = pow(s, e, n)
    for candidate in (recovered, n - recovered):
        block = candidate.to_bytes(k, "big")
        if block[-1] == 0xBC:
            algorithm, trailer = HashAlgorithm.SHA1, 1
        elif block[-1] == 0xCC and block[-2] in _TRAILER_HASHES:
            algorithm, trailer = _TRAILER_HASHES[block[-2]], 2
        else:
            continue
        if block[0] != 0x6A:
            # 0x4A would be full recovery: the challenge would not be covered.
            continue
        digest_start = k - trailer - algorithm.digest_size
        if digest_start <= 1:
            continue
        recoverable = block[1:digest_start]
        digest = block[digest_start : k - trailer]
        if hmac.compare_digest(digest, algorithm.digest(recoverable + challenge)):
            return
        raise SignatureInvalid("Active Authentication signature does not cover this challenge")
    raise SignatureInvalid("not an ISO/IEC 9796-2 scheme 1 signature")


def verify_active_authentication(
    key: PublicKeyInfo,
    challenge: bytes,
    signature: bytes,
    *,
    ecdsa_algorithm: str | None = None,
) -> None:
    """Verify an Active Authentication response.

    Args:
        key: the DG15 public key (only after DG15 passed Passive Authentication).
        challenge: the 8 bytes the terminal (or server) sent.
        signature: the chip's answer to INTERNAL AUTHENTICATE.
        ecdsa_algorithm: the signature algorithm OID from DG14's ActiveAuthenticationInfo.

    Raises:
        SignatureInvalid: the signature does not verify over ``challenge``
            (or is neither plain ``r || s`` nor DER).
        UnsupportedAlgorithm: a key or curve this library cannot use.
        PkiFormatError: an EC key whose point is invalid.
    """
    if key.algorithm == "rsa":
        _verify_rsa(key, challenge, signature)
        return
    ec_key = key.ec_public_key()
    first = ecdsa_hash_for(ecdsa_algorithm, key)
    if ecdsa_algorithm in _ECDSA_OIDS:
        candidates = [first]
    else:
        allowed = [h for h in _ECDSA_AA_HASHES if 8 * h.digest_size <= max(key.key_size, 224)]
        candidates = [first, *(h for h in allowed if h is not first)]
    failure: SignatureInvalid | None = None
    for digest in candidates:
        try:
            _verify_ecdsa(ec_key, digest, challenge, signature)
        except SignatureInvalid as exc:
            failure = failure or exc
            continue
        return
    raise failure or SignatureInvalid("Active Authentication signature does not verify")


def _verify_ecdsa(
    ec_key: EcPublicKey, digest: HashAlgorithm, challenge: bytes, signature: bytes
) -> None:
    """One ECDSA check with ``digest``, the signature plain ``r || s`` or DER."""
    der = SignatureScheme(SignatureKind.ECDSA, digest)
    if len(signature) != 2 * ec_key.curve.order_length:
        verify_signature(ec_key, der, challenge, signature)
        return
    try:
        verify_signature(
            ec_key, SignatureScheme(SignatureKind.ECDSA_PLAIN, digest), challenge, signature
        )
    except SignatureInvalid:
        # A DER signature can have the plain length by chance (about 2^-20).
        if signature[:1] != b"\x30":
            raise
        verify_signature(ec_key, der, challenge, signature)

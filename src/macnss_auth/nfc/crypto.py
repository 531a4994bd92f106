"""Symmetric primitives of ICAO 9303-11: key derivation, ciphers, MACs, padding.

Two families, chosen by :class:`SymmetricCipher`:

* ``TDES``: two-key 3DES in CBC mode with a zero IV, and the ISO/IEC 9797-1
  MAC algorithm 3 ("retail MAC") with padding method 2. BAC and older PACE
  profiles. Lives on ``cryptography.hazmat.decrepit`` because it is obsolete.
* ``AES``: AES-128/192/256 in CBC mode and AES-CMAC truncated to 8 bytes.

Everything here is a pure function over bytes.
"""

from __future__ import annotations

import enum
import hashlib

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from macnss_auth.errors import MalformedInput, UnsupportedAlgorithm

__all__ = [
    "KDF_ENC",
    "KDF_MAC",
    "KDF_PI",
    "SymmetricCipher",
    "adjust_des_parity",
    "block_decrypt_cbc",
    "block_encrypt_cbc",
    "block_encrypt_ecb",
    "derive_key",
    "mac",
    "pad",
    "unpad",
]

# Counter values of the key derivation function (ICAO 9303-11 §9.7.1).
KDF_ENC = 1
KDF_MAC = 2
KDF_PI = 3


class SymmetricCipher(enum.Enum):
    """The block cipher family of a secure channel."""

    TDES = "3DES"
    AES = "AES"

    @property
    def block_size(self) -> int:
        """Block length in bytes: 8 for 3DES, 16 for AES."""
        return 8 if self is SymmetricCipher.TDES else 16


def adjust_des_parity(key: bytes) -> bytes:
    """Set each byte's lowest bit so the byte has odd parity (DES ignores these bits)."""
    out = bytearray()
    for byte in key:
        high = byte & 0xFE
        out.append(high | (bin(high).count("1") + 1) % 2)
    return bytes(out)


def derive_key(shared: bytes, counter: int, cipher: SymmetricCipher, key_bits: int = 128) -> bytes:
    """Derive a key from a shared secret (ICAO 9303-11 §9.7.1).

    ``K = H(shared || counter32)`` truncated: SHA-1 for 3DES (16 bytes, parity
    adjusted) and AES-128, SHA-256 for AES-192/256.

    Raises:
        UnsupportedAlgorithm: a key length the cipher does not have.
    """
    data = shared + counter.to_bytes(4, "big")
    if cipher is SymmetricCipher.TDES:
        if key_bits not in {112, 128}:
            raise UnsupportedAlgorithm("3DES keys are two-key (112 bits)")
        return adjust_des_parity(hashlib.sha1(data).digest()[:16])  # noqa: S324 (mandated by 9303)
    if key_bits == 128:
        return hashlib.sha1(data).digest()[:16]  # noqa: S324 (mandated by 9303)
    if key_bits == 192:
        return hashlib.sha256(data).digest()[:24]
    if key_bits == 256:
        return hashlib.sha256(data).digest()
    raise UnsupportedAlgorithm(f"AES-{key_bits} does not exist")


def pad(data: bytes, block_size: int) -> bytes:
    """ISO/IEC 9797-1 padding method 2: 0x80 then zeros to a block boundary."""
    padded = data + b"\x80"
    return padded + b"\x00" * (-len(padded) % block_size)


def unpad(data: bytes) -> bytes:
    """Remove padding method 2.

    Raises:
        MalformedInput: no 0x80 marker after trailing zeros.
    """
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise MalformedInput("bad ISO 9797-1 padding", field="padding")
    return stripped[:-1]


def _algorithm(cipher: SymmetricCipher, key: bytes) -> algorithms.AES | TripleDES:
    if cipher is SymmetricCipher.TDES:
        if len(key) != 16:
            raise UnsupportedAlgorithm("3DES keys here are two-key, 16 bytes")
        # Two-key 3DES: cryptography wants K1 || K2 || K1.
        return TripleDES(key + key[:8])
    if len(key) not in (16, 24, 32):
        raise UnsupportedAlgorithm("AES keys are 16, 24 or 32 bytes")
    return algorithms.AES(key)


def block_encrypt_cbc(
    cipher: SymmetricCipher, key: bytes, data: bytes, iv: bytes | None = None
) -> bytes:
    """CBC encryption of block-aligned ``data`` (zero IV unless given)."""
    iv = iv if iv is not None else bytes(cipher.block_size)
    encryptor = Cipher(_algorithm(cipher, key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def block_decrypt_cbc(
    cipher: SymmetricCipher, key: bytes, data: bytes, iv: bytes | None = None
) -> bytes:
    """CBC decryption of block-aligned ``data`` (zero IV unless given).

    Raises:
        MalformedInput: ``data`` is not a whole number of blocks.
    """
    if len(data) % cipher.block_size:
        raise MalformedInput("ciphertext is not block aligned", field="ciphertext")
    iv = iv if iv is not None else bytes(cipher.block_size)
    decryptor = Cipher(_algorithm(cipher, key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def block_encrypt_ecb(cipher: SymmetricCipher, key: bytes, block: bytes) -> bytes:
    """Encrypt one block (AES secure messaging derives its IV this way)."""
    encryptor = Cipher(_algorithm(cipher, key), modes.ECB()).encryptor()  # noqa: S305 (one block, per 9303)
    return encryptor.update(block) + encryptor.finalize()


def mac(cipher: SymmetricCipher, key: bytes, data: bytes) -> bytes:
    """The 8-byte MAC of ICAO 9303 secure messaging over ``data``.

    3DES: ISO/IEC 9797-1 MAC algorithm 3 with padding method 2 applied here.
    AES: AES-CMAC (no padding; CMAC pads itself) truncated to 8 bytes.
    The caller passes unpadded data in both cases.
    """
    if cipher is SymmetricCipher.AES:
        cmac = CMAC(_algorithm(cipher, key))
        cmac.update(data)
        return cmac.finalize()[:8]
    if len(key) != 16:
        raise UnsupportedAlgorithm("retail MAC keys are 16 bytes")
    padded = pad(data, 8)
    # Single DES under K1 over all blocks (CBC), then decrypt with K2 and encrypt with K1.
    k1, k2 = key[:8], key[8:]
    single = Cipher(TripleDES(k1 * 3), modes.CBC(bytes(8))).encryptor()
    chained = single.update(padded) + single.finalize()
    last = chained[-8:]
    step = Cipher(TripleDES(k2 * 3), modes.ECB()).decryptor()  # noqa: S305 (retail MAC final step)
    last = step.update(last) + step.finalize()
    final = Cipher(TripleDES(k1 * 3), modes.ECB()).encryptor()  # noqa: S305 (retail MAC final step)
    return final.update(last) + final.finalize()

"""Authenticated encryption of secrets at rest, with key ids for rotation.

Each sealed value is ``version || len(key_id) || key_id || nonce || AES-GCM(ct||tag)``.
The associated data binds a ciphertext to its record (subject and method), so
a sealed secret copied onto another record fails to open instead of
authenticating someone else. New values are sealed under the primary key; old
values open under any key still in the ring, so keys rotate by adding a new
primary and re-sealing at leisure.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from macnss_auth.clock import RandomSource, SystemRandom
from macnss_auth.errors import ConfigurationError, SecretKeyError

__all__ = ["Keyring"]

_FORMAT_VERSION = 1
_NONCE_BYTES = 12


class Keyring:
    """AES-256-GCM keys by id; one of them is the primary used for new values."""

    __slots__ = ("_aeads", "_decoy", "_primary", "_random")

    def __init__(
        self, keys: Mapping[str, bytes], *, primary: str, random: RandomSource | None = None
    ) -> None:
        if primary not in keys:
            raise ConfigurationError("the primary key id is not in the keyring")
        for key_id, key in keys.items():
            if not key_id or len(key_id.encode()) > 255:
                raise ConfigurationError("key ids must be 1-255 bytes of text")
            if len(key) != 32:
                raise ConfigurationError(f"key {key_id!r} must be 32 bytes (AES-256)")
        self._aeads = MappingProxyType({k: AESGCM(v) for k, v in keys.items()})
        self._primary = primary
        self._random = random or SystemRandom()
        self._decoy: bytes | None = None

    @classmethod
    def generate(cls, key_id: str = "k1", *, random: RandomSource | None = None) -> Keyring:
        """A keyring with one fresh random key (for tests and first runs)."""
        source = random or SystemRandom()
        return cls({key_id: source.token_bytes(32)}, primary=key_id, random=source)

    @property
    def primary(self) -> str:
        """The id of the key that seals new values."""
        return self._primary

    @property
    def key_ids(self) -> frozenset[str]:
        """Ids of every key that can open values."""
        return frozenset(self._aeads)

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``, bound to ``context``."""
        kid = self._primary.encode()
        nonce = self._random.token_bytes(_NONCE_BYTES)
        body = self._aeads[self._primary].encrypt(nonce, plaintext, context)
        return bytes([_FORMAT_VERSION, len(kid)]) + kid + nonce + body

    def key_id_of(self, sealed: bytes) -> str:
        """The id of the key a value was sealed under.

        Raises:
            SecretKeyError: the value is not a sealed value of this format.
        """
        return self._split(sealed)[0]

    def open(self, sealed: bytes, *, context: bytes) -> bytes:
        """Decrypt a value from :meth:`seal`.

        Raises:
            SecretKeyError: unknown key id, wrong key, wrong context or tampering.
        """
        key_id, nonce, body = self._split(sealed)
        aead = self._aeads.get(key_id)
        if aead is None:
            raise SecretKeyError(f"no key {key_id!r} in the keyring to open this secret")
        try:
            return aead.decrypt(nonce, body, context)
        except InvalidTag:
            raise SecretKeyError(
                f"secret does not open under key {key_id!r}: wrong key or tampered record"
            ) from None

    def reseal(self, sealed: bytes, *, context: bytes) -> bytes:
        """``sealed`` opened under whichever key sealed it and sealed again under the primary.

        Raises:
            SecretKeyError: as :meth:`open`.
        """
        return self.seal(self.open(sealed, context=context), context=context)

    def open_decoy(self) -> None:
        """Do the work of one :meth:`open` on a value sealed for nothing, and drop it.

        A store that finds no enrollment calls this, so a miss costs the
        decryption a hit costs: the time of a lookup does not tell who is enrolled.
        """
        if self._decoy is None:
            self._decoy = self.seal(bytes(32), context=b"macnss-auth/decoy")
        self.open(self._decoy, context=b"macnss-auth/decoy")

    @staticmethod
    def _split(sealed: bytes) -> tuple[str, bytes, bytes]:
        if len(sealed) < 2 or sealed[0] != _FORMAT_VERSION:
            raise SecretKeyError("sealed secret has an unknown format")
        kid_len = sealed[1]
        kid_end = 2 + kid_len
        if len(sealed) < kid_end + _NONCE_BYTES + 16:
            raise SecretKeyError("sealed secret is truncated")
        try:
            key_id = sealed[2:kid_end].decode()
        except UnicodeDecodeError:
            raise SecretKeyError("sealed secret has a malformed key id") from None
        return key_id, sealed[kid_end : kid_end + _NONCE_BYTES], sealed[kid_end + _NONCE_BYTES :]

    def __repr__(self) -> str:
        return f"Keyring(key_ids={sorted(self._aeads)!r}, primary={self._primary!r})"

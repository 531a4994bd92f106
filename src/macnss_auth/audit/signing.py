"""Ed25519 checkpoints: a verifier that holds only a public key, which cannot forge.

Theory of operation. A *checkpoint* is an ordinary chained record (action
``checkpoint``, method ``audit``, outcome ``info``) whose ``details`` carry an
Ed25519 signature over the head it follows::

    signature = Ed25519-Sign(private_key, LABEL || "SEQ:HASH" of the record before it)

The record's own ``prev`` field *is* that hash, so the checkpoint signs the
chain up to it: every record before it is covered, because each record's hash
covers its ``prev``. A verifier recomputes the chain (SHA-256, or HMAC if the
log is also keyed) and checks each checkpoint's signature with the public key
alone. Whoever has only the public key -- an auditor, a notebook, another
agency -- can detect any rewrite of the signed part, and cannot produce a
valid checkpoint, unlike the HMAC chain key, which both checks and forges.

Why checkpoints rather than a signature on every record: signing costs tens
of microseconds, several times a whole TOTP verification, and a signature per
record buys nothing more once the chain links them: a checkpoint every N
records (and one when a writer closes, or on a schedule) vouches for all of
them. What is not yet covered is reported as such: ``signed_through`` in the
report, and the CLI says which records are only hash-chained. Deleting the
tail (the last checkpoint included) stays detectable only against a head saved
elsewhere, as with any chain.

Checkpoints are written by the log itself, never through the secret screen
(a signature is long hex by nature), and are valid version-1 records: older
readers list them and verify their chain like any other.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from macnss_auth.audit.errors import AuditKeyError

__all__ = [
    "CHECKPOINT_ACTION",
    "CHECKPOINT_METHOD",
    "AuditPublicKey",
    "AuditSigner",
    "checkpoint_details",
    "checkpoint_fault",
]

_LABEL = b"macnss-auth/audit/checkpoint/v1\x00"
CHECKPOINT_ACTION = "checkpoint"
CHECKPOINT_METHOD = "audit"


def _message(sequence: int, digest: str) -> bytes:
    return _LABEL + f"{sequence}:{digest}".encode("ascii")


class AuditPublicKey:
    """An Ed25519 public key that checks checkpoint signatures. Safe to publish.

    Attributes:
        key_id: 16 hex digits (SHA-256 of the raw public key), written in each checkpoint.
    """

    __slots__ = ("_key", "key_id")

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    @classmethod
    def from_pem(cls, data: bytes) -> AuditPublicKey:
        """Load a PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo).

        Raises:
            AuditKeyError: not a PEM Ed25519 public key.
        """
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError):
            raise AuditKeyError("not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise AuditKeyError("the audit public key must be an Ed25519 key")
        return cls(key)

    def pem(self) -> bytes:
        """The key as PEM (SubjectPublicKeyInfo)."""
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verify(self, sequence: int, digest: str, signature: bytes) -> bool:
        """Whether ``signature`` signs the head ``sequence:digest``."""
        try:
            self._key.verify(signature, _message(sequence, digest))
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"AuditPublicKey(key_id={self.key_id})"


class AuditSigner:
    """The Ed25519 private key that signs checkpoints. Its repr never shows the key.

    Keep it where the log's writers run (it proves a checkpoint came from them);
    give verifiers :attr:`public_key` only.
    """

    __slots__ = ("_key", "public_key")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = AuditPublicKey(key.public_key())

    @classmethod
    def generate(cls) -> AuditSigner:
        """A fresh key from the operating system's randomness."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> AuditSigner:
        """A key from its 32-byte seed (tests, or a seed kept in a secret store).

        Raises:
            AuditKeyError: not 32 bytes.
        """
        if len(seed) != 32:
            raise AuditKeyError("an Ed25519 seed is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, data: bytes, *, password: bytes | None = None) -> AuditSigner:
        """Load a PEM ``PRIVATE KEY`` (PKCS#8), encrypted or not.

        Raises:
            AuditKeyError: not a PEM Ed25519 private key, or a wrong password.
        """
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError):
            raise AuditKeyError("not a PEM private key (or a wrong password)") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditKeyError("the audit signing key must be an Ed25519 key")
        return cls(key)

    def pem(self, *, password: bytes | None = None) -> bytes:
        """The private key as PKCS#8 PEM, encrypted when a password is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.NoEncryption()
            if password is None
            else serialization.BestAvailableEncryption(password)
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def sign(self, sequence: int, digest: str) -> bytes:
        """Sign the head ``sequence:digest``."""
        return self._key.sign(_message(sequence, digest))

    def __repr__(self) -> str:
        return f"AuditSigner(key_id={self.public_key.key_id})"


def checkpoint_details(signer: AuditSigner, *, sequence: int, digest: str) -> dict[str, str]:
    """The ``details`` of a checkpoint record that follows the head ``sequence:digest``."""
    return {
        "signer": signer.public_key.key_id,
        "signed_seq": str(sequence),
        "signature": signer.sign(sequence, digest).hex(),
    }


def checkpoint_fault(
    record: Mapping[str, Any], public_key: AuditPublicKey
) -> tuple[str, str] | None:
    """Why a checkpoint's signature does not hold, as (field, sentence); None if it holds."""
    details = record["details"]
    signer = details.get("signer")
    if not isinstance(signer, str) or not hmac.compare_digest(signer, public_key.key_id):
        return "details.signer", (
            f"the checkpoint was signed by key {signer}, not the given key {public_key.key_id}"
        )
    if details.get("signed_seq") != str(record["seq"] - 1):
        return "details.signed_seq", "the checkpoint does not name the record before it"
    try:
        signature = bytes.fromhex(str(details.get("signature")))
    except ValueError:
        return "details.signature", "the checkpoint's signature is not hex"
    if not public_key.verify(record["seq"] - 1, str(record["prev"]), signature):
        return "details.signature", (
            "the checkpoint's signature does not hold: the chain before it was rewritten"
        )
    return None

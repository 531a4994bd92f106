"""The hash chain: how records are sealed, and how a log is verified.

Theory of operation. Record ``n`` carries ``prev``, the hash of record
``n - 1`` (64 zeros for the first), and ``hash``, computed over the canonical
JSON of everything else in it (``prev`` and ``seq`` included)::

    hash_n = H(LABEL || canonical_json(record_n without "hash"))

where ``H`` is SHA-256 for an unkeyed log and HMAC-SHA256 under the chain key
for a keyed one. Keyed records also carry ``kid``, a public 64-bit fingerprint
of the key, so that verifying with the wrong key says so instead of blaming
the first record.

What verification detects, reading records in storage order:

* an edited field (its hash no longer matches: ``hash_mismatch``);
* a deleted record (a sequence number is skipped: ``missing``);
* reordered or duplicated records (``out_of_order``);
* a record spliced in from elsewhere (``prev_mismatch``);
* with a chain key, any forged record, because nobody without the key can
  compute its MAC (``hash_mismatch``, or ``not_keyed`` if it has no MAC);
* with an expected head saved elsewhere earlier, a cut-off tail
  (``truncated``) or a rewritten history (``head_mismatch``).

What it cannot detect: on an *unkeyed* log, someone who can write the file can
rewrite it wholesale (edit, then recompute every later hash), and on *any*
log, deleting the last records leaves a shorter chain that is perfectly
valid. Both are caught only against a head (sequence and hash) saved outside
the attacker's reach -- another machine, a ticket, a notebook -- with
:meth:`ChainedAuditLog.head` and ``verify(expected_head=...)``. With a keyed
log the saved head is itself unforgeable (its hash is a MAC over the whole
history), but the key holder can still forge anything: the key belongs on the
application servers and the verifier, never on the host that stores the log.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from macnss_auth.audit.errors import AuditFormatError, AuditKeyError
from macnss_auth.audit.record import FORMAT_VERSION, GENESIS_HASH, MAX_SEQUENCE, canonical_json
from macnss_auth.errors import MalformedInput
from macnss_auth.secret import Secret

__all__ = [
    "EMPTY_HEAD",
    "MIN_KEY_BYTES",
    "AuditKeys",
    "ChainHead",
    "ChainKey",
    "Stored",
    "VerifiedChain",
    "coerce_key",
    "record_hash",
    "seal",
    "verify_records",
]

_HASH_LABEL = b"macnss-auth/audit/chain/v1\x00"
_KID_LABEL = b"macnss-auth/audit/key-id/v1"
MIN_KEY_BYTES = 16


class ChainKey:
    """The HMAC key of a keyed chain. Its repr never shows the key.

    Attributes:
        kid: 16 hex digits identifying the key (an HMAC of a fixed label), safe to publish.
    """

    __slots__ = ("_key", "kid")

    def __init__(self, key: bytes | Secret) -> None:
        secret = key if isinstance(key, Secret) else Secret(key)
        if len(secret) < MIN_KEY_BYTES:
            raise AuditKeyError(f"a chain key needs at least {MIN_KEY_BYTES} bytes")
        self._key = secret
        self.kid = hmac.new(secret.reveal(), _KID_LABEL, hashlib.sha256).hexdigest()[:16]

    @classmethod
    def from_hex(cls, text: str) -> ChainKey:
        """A key from hex digits (as given on the command line or in an environment variable).

        Raises:
            AuditKeyError: not hex, or too short.
        """
        try:
            raw = bytes.fromhex(text.strip())
        except ValueError:
            raise AuditKeyError("the chain key must be given in hex") from None
        return cls(raw)

    def mac(self, data: bytes) -> str:
        """HMAC-SHA256 of ``data``, in hex."""
        return hmac.new(self._key.reveal(), data, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"ChainKey(kid={self.kid})"


@attrs.frozen
class AuditKeys:
    """The two keys of an audit log, derived from one application key.

    The chain key goes to whoever verifies the log; the pseudonym key only to
    whoever may re-identify people. Deriving both from one application key
    (HMAC-SHA256 with distinct labels) means handing out one never gives away
    the other or the application key.

    Attributes:
        chain: the HMAC key of the hash chain.
        pseudonym: the HMAC key that turns subjects into pseudonyms.
    """

    chain: Secret = attrs.field(repr=False)
    pseudonym: Secret = attrs.field(repr=False)

    @classmethod
    def derive(cls, application_key: bytes | Secret) -> AuditKeys:
        """Both keys from one application key of at least 16 bytes.

        Raises:
            AuditKeyError: the application key is too short.
        """
        raw = application_key.reveal() if isinstance(application_key, Secret) else application_key
        if len(raw) < MIN_KEY_BYTES:
            raise AuditKeyError(f"the application key needs at least {MIN_KEY_BYTES} bytes")

        def derive(label: bytes) -> Secret:
            return Secret(hmac.new(raw, label, hashlib.sha256).digest())

        return cls(
            chain=derive(b"macnss-auth/audit/chain-key/v1"),
            pseudonym=derive(b"macnss-auth/audit/pseudonym-key/v1"),
        )


def coerce_key(key: bytes | Secret | ChainKey | None) -> ChainKey | None:
    """Accept raw bytes, a :class:`~macnss_auth.secret.Secret` or a :class:`ChainKey`."""
    if key is None or isinstance(key, ChainKey):
        return key
    return ChainKey(key)


@attrs.frozen
class ChainHead:
    """The last record of a log: save it elsewhere to detect truncation later.

    ``str(head)`` is ``"SEQ:HASH"``, the form ``--expected-head`` takes. The
    empty log's head is ``0:000...0``.
    """

    sequence: int
    hash: str

    def __str__(self) -> str:
        return f"{self.sequence}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> ChainHead:
        """Parse ``"SEQ:HASH"``.

        Raises:
            MalformedInput: not of that form.
        """
        seq_text, sep, digest = text.strip().partition(":")
        # isdigit() alone admits "²" and other digits int() refuses; the length bound keeps
        # int() below its digit limit (a ValueError) and the sequence within 64 bits.
        if (
            not sep
            or not (seq_text.isascii() and seq_text.isdigit())
            or len(seq_text) > 19
            or int(seq_text) > MAX_SEQUENCE
            or len(digest) != 64
        ):
            raise MalformedInput("a head is SEQ:HASH (64 hex digits)", field="head")
        try:
            bytes.fromhex(digest)
        except ValueError:
            raise MalformedInput("a head is SEQ:HASH (64 hex digits)", field="head") from None
        return cls(int(seq_text), digest.lower())


EMPTY_HEAD = ChainHead(0, GENESIS_HASH)


@attrs.frozen
class VerifiedChain:
    """What a successful verification established.

    Attributes:
        count: records checked.
        head: the last record's sequence and hash.
        keyed: whether every record carried a MAC checked under the given key.
    """

    count: int
    head: ChainHead
    keyed: bool


def record_hash(body: Mapping[str, Any], key: ChainKey | None) -> str:
    """The hash of a record whose ``hash`` field is absent from ``body``."""
    data = _HASH_LABEL + canonical_json(body)
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return key.mac(data)


def seal(body: Mapping[str, Any], *, previous: ChainHead, key: ChainKey | None) -> dict[str, Any]:
    """The record after ``previous``: ``body`` with ``v``, ``seq``, ``kid``, ``prev``, ``hash``."""
    record: dict[str, Any] = dict(body)
    record["v"] = FORMAT_VERSION
    record["seq"] = previous.sequence + 1
    record["kid"] = None if key is None else key.kid
    record["prev"] = previous.hash
    record["hash"] = record_hash(record, key)
    return record


Stored = tuple[int, "Mapping[str, Any] | AuditFormatError"]
"""A record as a file reader yields it: its storage position, and the record or its fault."""


def verify_records(
    records: Iterable[Mapping[str, Any] | Stored],
    *,
    key: bytes | Secret | ChainKey | None = None,
    expected_head: ChainHead | None = None,
) -> VerifiedChain:
    """Verify a chain of records given in storage order; raise at the first fault.

    ``records`` are records (mappings), or (position, record-or-format-error)
    pairs as the file readers produce them, so that an unreadable line is
    reported as a broken chain at its place.
    :func:`~macnss_auth.audit.check_records` reports every fault instead.

    Raises:
        AuditChainBroken: at the first bad record, with ``sequence`` and ``reason``.
        AuditKeyError: the log is keyed and no key was given (there is nothing
            to check the MACs against).
    """
    from macnss_auth.audit.verify import check_records  # noqa: PLC0415 (verify builds on chain)

    report = check_records(records, key=key, expected_head=expected_head)
    report.raise_first()
    return VerifiedChain(count=report.count, head=report.head, keyed=report.keyed)

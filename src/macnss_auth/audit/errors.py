"""Errors of the audit log, all rooted at :class:`~macnss_auth.errors.MacnssAuthError`.

* :class:`AuditChainBroken`: verification found an edited, missing, reordered,
  forged or truncated record. ``sequence`` names the first bad record and
  ``reason`` (a :class:`ChainFault`) says why.
* :class:`AuditFormatError`: a log file (or one of its lines) is not an audit
  log at all. Also a :class:`~macnss_auth.errors.MalformedInput`.
* :class:`AuditEventRejected`: an event was refused before it was written,
  because it looks like it carries a secret or is ill-formed. A programming
  error in the caller, hence also a :class:`~macnss_auth.errors.ConfigurationError`.
* :class:`AuditKeyError`: a chain key is missing, too short, or was given for
  an unkeyed log.

Messages name fields and sequence numbers, never the offending values.
"""

from __future__ import annotations

import enum

from macnss_auth.errors import ConfigurationError, MacnssAuthError, MalformedInput

__all__ = [
    "AuditChainBroken",
    "AuditError",
    "AuditEventRejected",
    "AuditFormatError",
    "AuditKeyError",
    "ChainFault",
]


class ChainFault(str, enum.Enum):
    """Why verification failed. Stable strings, printed by ``macnss-auth audit verify``."""

    MALFORMED = "malformed"
    """The record cannot be parsed as an audit record (bad JSON, missing field)."""
    HASH_MISMATCH = "hash_mismatch"
    """The record's content does not match its hash: it was edited (or forged without the key)."""
    MISSING = "missing"
    """The expected sequence number is absent: records were deleted."""
    OUT_OF_ORDER = "out_of_order"
    """Records are stored in the wrong order, or one is duplicated."""
    PREV_MISMATCH = "prev_mismatch"
    """The record does not link to the hash of the one before it."""
    WRONG_KEY = "wrong_key"
    """The record was chained under a different key than the one given."""
    NOT_KEYED = "not_keyed"
    """A key was given but the record carries no MAC: forged or written without a key."""
    TRUNCATED = "truncated"
    """The log ends before the externally saved head: its tail was cut off."""
    HEAD_MISMATCH = "head_mismatch"
    """The record at the saved head's sequence has another hash: history was rewritten."""
    BAD_SIGNATURE = "bad_signature"
    """A checkpoint's Ed25519 signature does not hold under the given public key."""


class AuditError(MacnssAuthError):
    """Root of the audit log's errors."""


class AuditChainBroken(AuditError):
    """The log is not intact.

    Attributes:
        sequence: the sequence number of the first bad record (the one expected
            at that place in the log; for :attr:`ChainFault.TRUNCATED`, the first
            missing one).
        reason: a :class:`ChainFault`.
        position: the 1-based line (JSON Lines) or row (SQLite) in storage order,
            when the fault is tied to a stored record.
    """

    def __init__(
        self,
        message: str,
        *,
        sequence: int,
        reason: ChainFault,
        position: int | None = None,
    ) -> None:
        super().__init__(f"record {sequence}: {reason.value}: {message}")
        self.sequence = sequence
        self.reason = reason
        self.position = position
        self.detail = message


class AuditFormatError(AuditError, MalformedInput):
    """Not an audit log, or a record that is not an audit record.

    Attributes:
        field: the offending field, when known.
        position: the 1-based line or row, when known.
    """

    def __init__(
        self, message: str, *, field: str | None = None, position: int | None = None
    ) -> None:
        where = f" (line/row {position})" if position is not None else ""
        super().__init__(message + where, field=field)
        self.position = position


class AuditEventRejected(AuditError, ConfigurationError):
    """An event was refused before being written: it may carry a secret, or is ill-formed.

    Attributes:
        field: which field (``"details.code"``, ``"at"``...) was refused; the
            value itself is never repeated.
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class AuditKeyError(AuditError, ConfigurationError):
    """A chain or pseudonym key is missing, too short, or does not apply to this log."""

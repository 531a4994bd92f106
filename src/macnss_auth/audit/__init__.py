"""The audit log: every begin, verify, enroll, lockout and delivery, append-only and hash-chained.

Sinks: :class:`SQLiteAuditLog` (the default), :class:`JsonLinesAuditLog` and
:class:`MemoryAuditLog` (tests, notebooks). All chain their records (see
:mod:`macnss_auth.audit.chain` for what verification can and cannot detect),
refuse secret-looking events (:class:`SecretScreen`) and can pseudonymize
subjects with a keyed hash. :func:`verify_file`, :func:`load_events` and
:func:`to_dataframe` work on files by path; :func:`check_file` reports every
fault (:class:`ChainReport`); :class:`AuditSigner` signs Ed25519 checkpoints
that a holder of the public key alone can check; :func:`export_records`
writes filtered CSV or JSON Lines; ``macnss-auth audit`` on the command line.
"""

from macnss_auth.audit.base import ChainedAuditLog
from macnss_auth.audit.chain import AuditKeys, ChainHead, ChainKey, VerifiedChain, verify_records
from macnss_auth.audit.errors import (
    AuditChainBroken,
    AuditError,
    AuditEventRejected,
    AuditFormatError,
    AuditKeyError,
    ChainFault,
)
from macnss_auth.audit.events import AuditAction, AuditEvent, AuditLog, Outcome
from macnss_auth.audit.export import ExportFilter, ExportFormat, export_records
from macnss_auth.audit.files import (
    check_file,
    load_events,
    open_audit_log,
    read_head,
    to_dataframe,
    verify_file,
)
from macnss_auth.audit.jsonl import JsonLinesAuditLog
from macnss_auth.audit.memory import MemoryAuditLog
from macnss_auth.audit.record import pseudonymize
from macnss_auth.audit.screen import SecretScreen
from macnss_auth.audit.signing import AuditPublicKey, AuditSigner
from macnss_auth.audit.sqlite import SQLiteAuditLog
from macnss_auth.audit.verify import ChainReport, Fault, RecordCheck, check_records

__all__ = [
    "AuditAction",
    "AuditChainBroken",
    "AuditError",
    "AuditEvent",
    "AuditEventRejected",
    "AuditFormatError",
    "AuditKeyError",
    "AuditKeys",
    "AuditLog",
    "AuditPublicKey",
    "AuditSigner",
    "ChainFault",
    "ChainHead",
    "ChainKey",
    "ChainReport",
    "ChainedAuditLog",
    "ExportFilter",
    "ExportFormat",
    "Fault",
    "JsonLinesAuditLog",
    "MemoryAuditLog",
    "Outcome",
    "RecordCheck",
    "SQLiteAuditLog",
    "SecretScreen",
    "VerifiedChain",
    "check_file",
    "check_records",
    "export_records",
    "load_events",
    "open_audit_log",
    "pseudonymize",
    "read_head",
    "to_dataframe",
    "verify_file",
    "verify_records",
]

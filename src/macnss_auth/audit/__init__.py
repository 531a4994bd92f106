"""The audit log: every begin, verify, enroll, lockout and delivery, append-only."""

from macnss_auth.audit.events import AuditAction, AuditEvent, AuditLog, Outcome
from macnss_auth.audit.memory import MemoryAuditLog

__all__ = ["AuditAction", "AuditEvent", "AuditLog", "MemoryAuditLog", "Outcome"]

"""An in-memory audit log, for tests and notebooks."""

from __future__ import annotations

import threading

from macnss_auth.audit.events import AuditEvent

__all__ = ["MemoryAuditLog"]


class MemoryAuditLog:
    """Keeps events in a list, in order; ids are their sequence numbers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> str:
        with self._lock:
            self._events.append(event)
            return str(len(self._events))

    @property
    def events(self) -> tuple[AuditEvent, ...]:
        """Every event so far."""
        with self._lock:
            return tuple(self._events)

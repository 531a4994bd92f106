"""An in-memory audit log, for tests and notebooks. It chains like the durable sinks."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from macnss_auth.audit.base import ChainedAuditLog, Sealer
from macnss_auth.audit.chain import EMPTY_HEAD, ChainHead, ChainKey, Stored
from macnss_auth.audit.events import AuditEvent
from macnss_auth.audit.screen import DEFAULT_SCREEN, SecretScreen
from macnss_auth.secret import Secret

__all__ = ["MemoryAuditLog"]


class MemoryAuditLog(ChainedAuditLog):
    """Keeps events and their chained records in lists, in order; ids are sequence numbers.

    ``events`` gives back the :class:`AuditEvent` objects as recorded (with
    the real subject); ``records()`` gives the chained records as a durable
    sink would store them (pseudonymized, if a pseudonym key is set).
    """

    def __init__(
        self,
        *,
        chain_key: bytes | Secret | ChainKey | None = None,
        pseudonym_key: bytes | Secret | None = None,
        screen: SecretScreen | None = DEFAULT_SCREEN,
    ) -> None:
        super().__init__(chain_key=chain_key, pseudonym_key=pseudonym_key, screen=screen)
        self._lock = threading.Lock()
        self._events: list[AuditEvent] = []
        self._records: list[dict[str, Any]] = []
        self._pending: list[Sealer] = []

    def _append(self, sealer: Sealer, event: AuditEvent) -> Mapping[str, Any]:
        # Sealing (canonical JSON and a hash) waits until someone reads the chain: in
        # memory nobody can see or edit a record before that, and every verification
        # writes one. The event was screened and validated before it got here.
        with self._lock:
            self._pending.append(sealer)
            self._events.append(event)
            return {"seq": len(self._records) + len(self._pending)}

    def _seal_pending_locked(self) -> None:
        for sealer in self._pending:
            self._records.append(sealer(self._records[-1] if self._records else None))
        self._pending.clear()

    def _head_locked(self) -> ChainHead:
        self._seal_pending_locked()
        if not self._records:
            return EMPTY_HEAD
        last = self._records[-1]
        return ChainHead(last["seq"], last["hash"])

    def head(self) -> ChainHead:
        with self._lock:
            return self._head_locked()

    def stored(self) -> Iterator[Stored]:
        with self._lock:
            self._seal_pending_locked()
            # Deep copies: a caller editing what it got must not edit the log.
            snapshot = copy.deepcopy(self._records)
        return iter(list(enumerate(snapshot, start=1)))

    @property
    def events(self) -> tuple[AuditEvent, ...]:
        """Every event so far."""
        with self._lock:
            return tuple(self._events)

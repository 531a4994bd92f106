"""What each process of the multi-process tests runs (importable by spawned children)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from macnss_auth.audit import JsonLinesAuditLog, SQLiteAuditLog
from tests.audit.helpers import CHAIN_KEY, event

__all__ = ["append_many"]


def append_many(kind: str, path: str, worker: int, count: int, start: Callable[[], None]) -> None:
    """Append ``count`` events tagged with ``worker``, starting with the others (race_processes)."""
    log = (
        SQLiteAuditLog(Path(path), chain_key=CHAIN_KEY)
        if kind == "sqlite"
        else JsonLinesAuditLog(Path(path), chain_key=CHAIN_KEY)
    )
    start()
    for n in range(count):
        log.record(event(n, details={"worker": str(worker), "n": str(n)}))

"""Events the strategies typically record, and tools to tamper with stored logs."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from pathlib import Path

from macnss_auth.audit import (
    AuditAction,
    AuditEvent,
    ChainedAuditLog,
    JsonLinesAuditLog,
    Outcome,
    SQLiteAuditLog,
)
from macnss_auth.authenticator import ClientContext
from macnss_auth.errors import Reason

__all__ = [
    "CHAIN_KEY",
    "KIOSK",
    "PSEUDONYM_KEY",
    "T0",
    "event",
    "log_path",
    "make_log",
    "rewrite",
    "stored_lines",
    "typical_events",
]

T0 = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.timezone.utc)
CHAIN_KEY = bytes(range(32))
PSEUDONYM_KEY = bytes(range(32, 64))
KIOSK = ClientContext(client_id="kiosk-casa-07", ip="10.20.30.40", user_agent="kiosk/2.1")


def event(n: int = 0, **changes: object) -> AuditEvent:
    """A failed TOTP verification, ``n`` seconds after T0, with ``changes`` applied."""
    fields: dict[str, object] = {
        "at": T0 + dt.timedelta(seconds=n),
        "action": AuditAction.VERIFY,
        "method": "totp",
        "outcome": Outcome.FAILURE,
        "subject": "CNIE-BK123456",
        "reason": Reason.INVALID_CODE.value,
        "client": KIOSK,
        "details": {"n": str(n)},
    }
    fields.update(changes)
    return AuditEvent(**fields)  # type: ignore[arg-type]


def typical_events() -> list[AuditEvent]:
    """What the strategies record during one person's day, as they are meant to."""
    subject = "CNIE-BK123456"
    return [
        event(0, action=AuditAction.ENROLL, outcome=Outcome.INFO, reason=None, details={}),
        event(1, action=AuditAction.CONFIRM, outcome=Outcome.SUCCESS, reason=None),
        event(
            2,
            action=AuditAction.BEGIN,
            method="sms",
            outcome=Outcome.INFO,
            reason=None,
            channel="sms",
            details={"destination": "+212 6** *** *78", "challenge_ttl": "300"},
        ),
        event(
            3,
            action=AuditAction.DELIVER,
            method="sms",
            outcome=Outcome.SUCCESS,
            reason=None,
            channel="sms",
            details={"gateway": "smpp", "destination": "+212 6** *** *78"},
        ),
        event(
            4,
            action=AuditAction.DELIVER,
            method="email",
            outcome=Outcome.FAILURE,
            reason=Reason.DELIVERY_FAILED.value,
            channel="email",
            details={"destination": "a***@example.ma", "smtp_status": "451"},
        ),
        event(5, details={"drift": "-1", "remaining_attempts": "7"}),
        event(
            6,
            method="hotp",
            action=AuditAction.RESYNC,
            outcome=Outcome.SUCCESS,
            reason=None,
            details={"counter": "1048576"},
        ),
        event(7, details={"step": "59335260", "drift": "0"}, outcome=Outcome.SUCCESS, reason=None),
        event(
            8,
            action=AuditAction.LOCKOUT,
            outcome=Outcome.FAILURE,
            reason=Reason.LOCKED_OUT.value,
            details={"retry_after": "900.0", "until": "2026-11-28T09:45:08+00:00"},
        ),
        event(
            9,
            method="eid",
            outcome=Outcome.SUCCESS,
            reason=None,
            channel="pcsc",
            details={
                "access": "PACE",
                "passive": "ok",
                "active": "ok",
                "chip_auth": "not_offered",
                "issuer": "MAR",
                "status_word": "36864",
            },
        ),
        event(
            10,
            method="eid",
            reason=Reason.ACCESS_DENIED.value,
            channel="nfc",
            details={"status_word": "25536", "reader": "ACS ACR122U 00 00"},
        ),
        event(11, subject=subject, action=AuditAction.REVOKE, outcome=Outcome.INFO, reason=None),
    ]


def make_log(kind: str, path: Path, **kwargs: object) -> ChainedAuditLog:
    """A fresh log of ``kind`` ("sqlite" or "jsonl") at ``path``."""
    if kind == "sqlite":
        return SQLiteAuditLog(path / "audit.sqlite3", **kwargs)  # type: ignore[arg-type]
    return JsonLinesAuditLog(path / "audit.jsonl", fsync=False, **kwargs)  # type: ignore[arg-type]


def log_path(log: ChainedAuditLog) -> Path:
    """Where a file-backed log lives."""
    assert isinstance(log, SQLiteAuditLog | JsonLinesAuditLog)
    return log.path


def stored_lines(log: ChainedAuditLog) -> list[bytes]:
    """The raw stored records, in storage order."""
    path = log_path(log)
    if isinstance(log, SQLiteAuditLog):
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT record FROM audit_log ORDER BY seq").fetchall()
        return [row[0].encode() for row in rows]
    return path.read_bytes().splitlines()


def rewrite(log: ChainedAuditLog, change: Callable[[list[bytes]], list[bytes]]) -> None:
    """Do what an attacker with write access does: replace the stored records.

    For SQLite the append-only triggers are dropped first (as an attacker
    would) and the rows renumbered 1..n, so the row order is the new order.
    """
    lines = change(stored_lines(log))
    path = log_path(log)
    if isinstance(log, SQLiteAuditLog):
        log.close()
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("DROP TRIGGER audit_log_no_update")
            conn.execute("DROP TRIGGER audit_log_no_delete")
            conn.execute("DELETE FROM audit_log")
            conn.executemany(
                "INSERT INTO audit_log (seq, record) VALUES (?, ?)",
                [(i, line.decode()) for i, line in enumerate(lines, start=1)],
            )
        finally:
            conn.close()
        return
    path.write_bytes(b"".join(line + b"\n" for line in lines))

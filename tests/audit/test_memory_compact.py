"""MemoryAuditLog keeps events compactly: they come back equal, and cost the collector little.

A service or a benchmark that keeps one in-memory log records an event per
verification; the log keeps them as tuples of text and times, so a full
garbage collection does not walk two objects per event (the event and its
details' mapping proxy) as it did.
"""

from __future__ import annotations

import datetime as dt
import gc

from macnss_auth.audit import AuditEvent, MemoryAuditLog
from macnss_auth.audit.events import AuditAction, Outcome
from macnss_auth.authenticator import ClientContext

AT = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.timezone.utc)


def test_events_come_back_equal_to_what_was_recorded() -> None:
    log = MemoryAuditLog()
    recorded = [
        AuditEvent(
            at=AT,
            action=AuditAction.VERIFY,
            method="totp",
            outcome=Outcome.SUCCESS,
            subject="alice",
            details={"step": "56666700", "drift": "0"},
        ),
        AuditEvent(
            at=AT + dt.timedelta(seconds=1),
            action=AuditAction.VERIFY,
            method="sms",
            outcome=Outcome.FAILURE,
            subject="youssef",
            reason="invalid_code",
            channel="sms",
            client=ClientContext(client_id="kiosk-12", ip="10.0.0.7", user_agent="kiosk/1"),
        ),
        # Untyped callers: plain text where the enums belong.
        AuditEvent(at=AT, action="verify", method="eid", outcome="info"),  # type: ignore[arg-type]
    ]
    for event in recorded:
        log.record(event)
    assert log.events == tuple(recorded)
    assert log.events[0].action is AuditAction.VERIFY
    assert log.events[1].client == recorded[1].client
    assert dict(log.events[0].details) == {"step": "56666700", "drift": "0"}
    assert log.verify().count == 3


def test_a_large_log_keeps_fewer_tracked_objects_than_events_times_two() -> None:
    log = MemoryAuditLog()
    events = 20_000
    gc.collect()
    before = len(gc.get_objects())
    for index in range(events):
        log.record(
            AuditEvent(
                at=AT,
                action=AuditAction.VERIFY,
                method="totp",
                outcome=Outcome.SUCCESS,
                subject="alice",
                details={"step": str(index), "drift": "0"},
            )
        )
    gc.collect()
    grown = len(gc.get_objects()) - before
    # One tuple per event at most (AuditEvent objects with their mapping proxies were two).
    assert grown < events * 1.2, grown

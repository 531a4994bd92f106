"""MemoryAuditLog seals when the chain is read: the records must be those an eager sink writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from macnss_auth.audit import (
    AuditEventRejected,
    JsonLinesAuditLog,
    MemoryAuditLog,
    load_events,
    verify_records,
)

from .helpers import CHAIN_KEY, PSEUDONYM_KEY, event, typical_events


@pytest.mark.parametrize("keyed", [False, True])
def test_lazy_records_equal_an_eager_sinks(tmp_path: Path, keyed: bool) -> None:
    key = CHAIN_KEY if keyed else None
    memory = MemoryAuditLog(chain_key=key, pseudonym_key=PSEUDONYM_KEY)
    path = tmp_path / "audit.jsonl"
    eager = JsonLinesAuditLog(path, chain_key=key, pseudonym_key=PSEUDONYM_KEY)
    events = typical_events()
    for index, item in enumerate(events):
        assert memory.record(item) == eager.record(item) == str(index + 1)
        if index % 3 == 1:
            # Reading in between seals what is pending; later records chain on from it.
            assert memory.head() == eager.head()
    assert memory.records() == load_events(path)
    assert verify_records(memory.records(), key=key).count == len(events)


def test_refusals_happen_at_record_time_and_leave_no_gap() -> None:
    log = MemoryAuditLog()
    log.record(event(1))
    with pytest.raises(AuditEventRejected, match=r"details\.code"):
        log.record(event(2, details={"code": "1"}))
    with pytest.raises(AuditEventRejected, match="method"):
        log.record(event(3, method=b"totp"))
    with pytest.raises(AuditEventRejected, match="subject"):
        log.record(event(4, subject="\udc00"))
    assert log.record(event(5)) == "2"
    assert [r["seq"] for r in log.records()] == [1, 2]
    assert log.verify().count == 2


def test_editing_what_was_read_does_not_edit_the_log() -> None:
    log = MemoryAuditLog()
    log.record(event(1))
    log.records()[0]["outcome"] = "success"
    log.record(event(2))
    assert log.verify().count == 2
    assert log.records()[0]["outcome"] == "failure"

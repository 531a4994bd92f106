"""MemoryAuditLog seals when the chain is read: the records must be those an eager sink writes."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.audit import (
    AuditEventRejected,
    JsonLinesAuditLog,
    MemoryAuditLog,
    SecretScreen,
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


_TEXT = st.text(max_size=12)
_KEYS = (
    st.sampled_from(["step", "drift", "hint", "code", "user_pin", "document_signer", "n"]) | _TEXT
)


@given(details=st.dictionaries(_KEYS, _TEXT | st.from_regex(r"-?\d{1,12}", fullmatch=True)))
def test_the_quick_screen_never_admits_what_the_full_screen_refuses(
    details: dict[str, str],
) -> None:
    screen = SecretScreen()
    item = event(0, reason=None, details=details)
    for _ in range(2):  # the second time, every key is cached
        with contextlib.suppress(AuditEventRejected):
            screen.check(item)
        if screen.passes_quickly(item):
            screen.check(item)  # must not raise
            assert all(k.isascii() and v.isascii() for k, v in details.items())


def test_warm_caches_still_refuse_secrets_and_bad_text() -> None:
    log = MemoryAuditLog()
    for n in range(3):
        log.record(event(n, reason=None, details={"step": "56766666", "n": "0"}))
    with pytest.raises(AuditEventRejected, match=r"details\.n"):
        log.record(event(3, reason=None, details={"step": "1", "n": "123456"}))
    with pytest.raises(AuditEventRejected, match=r"details\.step"):
        log.record(event(4, reason=None, details={"step": "+212612345678"}))
    with pytest.raises(AuditEventRejected, match="details"):
        log.record(event(5, reason=None, details={"step": "1", "\udc00": "1"}))
    with pytest.raises(AuditEventRejected, match="MRZ"):
        log.record(event(6, reason=None, details={"n": "P<<MAR"}))
    assert log.verify().count == 3

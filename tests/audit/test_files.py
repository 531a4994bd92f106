"""Loading audit files for notebooks, and fuzzing the readers with arbitrary bytes."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macnss_auth.audit import (
    AuditError,
    AuditFormatError,
    ChainHead,
    JsonLinesAuditLog,
    SQLiteAuditLog,
    load_events,
    open_audit_log,
    read_head,
    to_dataframe,
    verify_file,
)
from macnss_auth.audit.jsonl import parse_jsonl
from macnss_auth.audit.record import canonical_json
from macnss_auth.audit.sqlite import SQLITE_MAGIC
from macnss_auth.errors import ConfigurationError, StoreError
from tests.audit.helpers import PSEUDONYM_KEY, T0, event, make_log, typical_events


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_load_events_and_dataframe(kind: str, tmp_path: Path) -> None:
    log = make_log(kind, tmp_path, pseudonym_key=PSEUDONYM_KEY)
    for item in typical_events():
        log.record(item)
    path = tmp_path / ("audit.sqlite3" if kind == "sqlite" else "audit.jsonl")
    records = load_events(path)
    assert records == log.records()
    assert [r["action"] for r in records][:3] == ["enroll", "confirm", "begin"]

    frame = to_dataframe(path)
    assert list(frame.index) == list(range(1, len(records) + 1))
    assert frame.loc[3, "channel"] == "sms"
    assert frame.loc[3, "client_id"] == "kiosk-casa-07"
    assert frame.loc[1, "at"] == T0
    assert isinstance(frame["at"].dtype, pd.DatetimeTZDtype)
    assert str(frame["at"].dtype.tz) == "UTC"
    assert frame.loc[6, "details"] == {"drift": "-1", "remaining_attempts": "7"}
    assert frame["subject"].nunique() == 1
    expected = Counter(item.outcome.value for item in typical_events())
    assert frame.groupby("outcome").size().to_dict() == dict(expected)


def test_to_dataframe_without_pandas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = make_log("jsonl", tmp_path)
    log.record(event())
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ConfigurationError, match="pandas"):
        to_dataframe(tmp_path / "audit.jsonl")


def test_open_audit_log_recognizes_the_format(tmp_path: Path) -> None:
    assert isinstance(open_audit_log(tmp_path / "new.jsonl"), JsonLinesAuditLog)
    assert isinstance(open_audit_log(tmp_path / "new.db"), SQLiteAuditLog)
    sqlite_named_jsonl = tmp_path / "odd.jsonl"
    SQLiteAuditLog(sqlite_named_jsonl).record(event())
    reopened = open_audit_log(sqlite_named_jsonl)
    assert isinstance(reopened, SQLiteAuditLog)
    assert reopened.record(event(1)) == "2"


def test_read_head_and_empty_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert read_head(empty) == ChainHead(0, "0" * 64)
    assert load_events(empty) == []
    assert len(to_dataframe(empty)) == 0
    assert verify_file(empty, expected_head=ChainHead(0, "0" * 64)).count == 0
    log = make_log("sqlite", tmp_path)
    assert log.head() == ChainHead(0, "0" * 64)
    log.record(event())
    assert read_head(tmp_path / "audit.sqlite3") == log.head()
    with pytest.raises(AuditFormatError):
        load_events(tmp_path / "missing.jsonl")


def test_long_last_line_is_found(tmp_path: Path) -> None:
    log = JsonLinesAuditLog(tmp_path / "a.jsonl", fsync=False)
    log.record(event(0, details={"note": "x" * 10_000}))
    log.record(event(1, details={"note": "y" * 9_000}))
    assert log.head().sequence == 2
    assert log.record(event(2)) == "3"
    assert log.verify().count == 3


_VALID = canonical_json(
    {
        "v": 1,
        "seq": 1,
        "at": T0.isoformat(),
        "action": "verify",
        "method": "totp",
        "outcome": "failure",
        "subject": None,
        "reason": None,
        "channel": None,
        "client": None,
        "details": {},
        "kid": None,
        "prev": "0" * 64,
        "hash": "0" * 64,
    }
)
_FRAGMENTS = st.sampled_from(
    [_VALID, b"\n", b"{", b"}", b'"seq":', b"[" * 3000, b"\xff", b"NaN", b"1e999", b"\x00"]
)
_BYTES = st.binary(max_size=300) | st.lists(_FRAGMENTS | st.binary(max_size=20)).map(b"".join)


# Marked slow so that `make fuzz` runs it with the long profile; CI runs the 200-example profile.
@pytest.mark.slow
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_BYTES, sqlite=st.booleans())
def test_arbitrary_bytes_raise_only_library_errors(
    data: bytes, sqlite: bool, tmp_path: Path
) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes((SQLITE_MAGIC if sqlite else b"") + data)
    for read in (load_events, verify_file, read_head):
        with contextlib.suppress(AuditError):
            read(path)
    records = parse_jsonl(data)
    assert all(position >= 1 for position, _ in records)


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_BYTES)
def test_appending_after_arbitrary_bytes_raises_only_library_errors(
    data: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "fuzz-append.jsonl"
    path.write_bytes(data)
    try:
        JsonLinesAuditLog(path, fsync=False).record(event())
    except AuditError:
        return
    # It only appends when the file ended in a readable record (or was empty).
    assert load_events(path)[-1]["at"] == T0.isoformat(timespec="microseconds")


def test_events_are_aware() -> None:
    assert event().at.tzinfo is dt.timezone.utc


def test_unwritable_places_raise_store_errors(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no" / "such" / "dir"
    with pytest.raises(StoreError):
        SQLiteAuditLog(missing_dir / "a.sqlite3")
    with pytest.raises(StoreError):
        JsonLinesAuditLog(missing_dir / "a.jsonl").record(event())

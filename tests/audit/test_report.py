"""Verification that reports every fault, how far the chain holds, and marks dataframe rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from macnss_auth.audit import (
    AuditChainBroken,
    AuditKeyError,
    ChainFault,
    ChainHead,
    MemoryAuditLog,
    check_file,
    check_records,
    to_dataframe,
    verify_records,
)
from macnss_auth.audit.record import canonical_json
from tests.audit.helpers import CHAIN_KEY, event, log_path, make_log, rewrite


def _records(count: int = 10, **kwargs: object) -> list[dict[str, object]]:
    log = MemoryAuditLog(**kwargs)  # type: ignore[arg-type]
    for n in range(count):
        log.record(event(n))
    return log.records()


def _kinds(report: object) -> list[tuple[str, int, str | None]]:
    return [(f.kind.value, f.sequence, f.field) for f in report.faults]  # type: ignore[attr-defined]


def test_an_intact_log_has_no_fault_and_is_intact_to_its_head() -> None:
    records = _records(5)
    report = check_records(records)
    assert report.ok
    assert report.intact_through == 5
    assert report.intact_head == report.head == ChainHead(5, str(records[-1]["hash"]))
    assert all(check.fault is None for check in report.records)


def test_every_fault_is_reported_once_with_the_intact_prefix() -> None:
    records = _records(10)
    records[2]["outcome"] = "success"  # edit record 3
    del records[5]  # delete record 6
    records[7], records[8] = records[8], records[7]  # swap records 9 and 10 (positions 8, 9)
    report = check_records(records)
    assert _kinds(report) == [
        ("hash_mismatch", 3, None),
        ("missing", 6, "seq"),
        ("out_of_order", 9, "seq"),
        ("out_of_order", 11, "seq"),
    ]
    assert report.intact_through == 2
    assert report.intact_head == ChainHead(2, str(records[1]["hash"]))
    assert [c.fault for c in report.records][2] is ChainFault.HASH_MISMATCH
    assert [c.fault for c in report.records][3] is None  # record 4 still links to record 3
    # The first fault is the one verify_records raises.
    with pytest.raises(AuditChainBroken) as caught:
        verify_records(records)
    assert (caught.value.sequence, caught.value.reason) == (3, ChainFault.HASH_MISMATCH)


def test_a_recomputed_hash_shows_as_the_next_records_broken_link() -> None:
    records = _records(4)
    records[1]["outcome"] = "success"
    from macnss_auth.audit.chain import record_hash  # noqa: PLC0415

    records[1]["hash"] = record_hash({k: v for k, v in records[1].items() if k != "hash"}, None)
    report = check_records(records)
    assert _kinds(report) == [("prev_mismatch", 3, "prev")]
    assert report.intact_through == 2


def test_a_duplicate_is_one_fault_and_the_chain_goes_on() -> None:
    records = _records(4)
    records.insert(2, dict(records[1]))
    report = check_records(records)
    assert _kinds(report) == [("out_of_order", 3, "seq")]
    assert report.records[3].fault is None


def test_keyed_faults_and_key_errors() -> None:
    keyed = _records(3, chain_key=CHAIN_KEY)
    plain = _records(3)
    mixed = [keyed[0], plain[1], keyed[2]]
    report = check_records(mixed, key=CHAIN_KEY)
    assert ("not_keyed", 2, "kid") in _kinds(report)
    with pytest.raises(AuditKeyError):
        check_records(keyed)
    other = check_records(keyed, key=b"another key, thirty-two bytes!!!")
    assert [f.kind for f in other.faults] == [ChainFault.WRONG_KEY] * 3
    assert other.intact_through == 0


def test_unreadable_lines_are_reported_with_their_field(tmp_path: Path) -> None:
    log = make_log("jsonl", tmp_path)
    for n in range(6):
        log.record(event(n))
    rewrite(log, lambda lines: [*lines[:1], b"{not json", *lines[2:4], b"{}", *lines[5:]])
    report = check_file(log_path(log))
    assert [(f.kind, f.sequence, f.position) for f in report.faults] == [
        (ChainFault.MALFORMED, 2, 2),
        (ChainFault.MALFORMED, 5, 5),
    ]
    assert report.faults[0].field == "record"
    assert report.faults[1].field is not None
    assert report.intact_through == 1


def test_truncation_and_rewrite_against_a_saved_head(tmp_path: Path) -> None:
    records = _records(6)
    saved = ChainHead(6, str(records[-1]["hash"]))
    report = check_records(records[:4], expected_head=saved)
    assert _kinds(report) == [("truncated", 5, None)]
    assert report.intact_through == 4
    wrong = check_records(records, expected_head=ChainHead(3, "ab" * 32))
    assert _kinds(wrong) == [("head_mismatch", 3, "hash")]


def test_report_as_json_round_trips() -> None:
    records = _records(3)
    records[0]["reason"] = "x"
    data = json.loads(json.dumps(check_records(records).as_dict()))
    assert data["ok"] is False
    assert data["intact_through"] == 0
    assert data["faults"][0]["kind"] == "hash_mismatch"


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_to_dataframe_verifies_in_the_same_read_and_marks_rows(kind: str, tmp_path: Path) -> None:
    log = make_log(kind, tmp_path, chain_key=CHAIN_KEY)
    for n in range(5):
        log.record(event(n))

    def edit(lines: list[bytes]) -> list[bytes]:
        record = json.loads(lines[3])
        record["outcome"] = "success"
        return [*lines[:3], canonical_json(record), *lines[4:]]

    rewrite(log, edit)
    plain = to_dataframe(log_path(log))
    assert "chain_ok" not in plain.columns  # loading alone still does not verify
    frame = to_dataframe(log_path(log), verify=True, key=CHAIN_KEY)
    assert frame["chain_ok"].tolist() == [True, True, True, False, True]
    assert frame.loc[4, "fault"] == "hash_mismatch"
    assert frame.loc[4, "outcome"] == "success"
    report = frame.attrs["chain_report"]
    assert report.intact_through == 3
    with pytest.raises(AuditKeyError):
        to_dataframe(log_path(log), verify=True)

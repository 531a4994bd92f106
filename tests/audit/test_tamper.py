"""Every kind of tampering is detected, and named, on every sink."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from macnss_auth.audit import (
    AuditChainBroken,
    AuditFormatError,
    AuditKeyError,
    ChainedAuditLog,
    ChainFault,
    ChainHead,
    ChainKey,
    JsonLinesAuditLog,
    MemoryAuditLog,
    verify_file,
    verify_records,
)
from macnss_auth.audit.chain import seal
from macnss_auth.audit.record import canonical_json, decode_record
from tests.audit.helpers import CHAIN_KEY, event, log_path, make_log, rewrite, stored_lines

KINDS = ["sqlite", "jsonl"]
COUNT = 10


def _filled(kind: str, tmp_path: Path, *, keyed: bool) -> ChainedAuditLog:
    log = make_log(kind, tmp_path, chain_key=CHAIN_KEY if keyed else None)
    for n in range(COUNT):
        log.record(event(n))
    return log


def _broken(
    log: ChainedAuditLog, *, key: bytes | None = None, expected_head: ChainHead | None = None
) -> AuditChainBroken:
    """Verify both through the file and through the log object; both must agree."""
    with pytest.raises(AuditChainBroken) as by_file:
        verify_file(log_path(log), key=key, expected_head=expected_head)
    with pytest.raises(AuditChainBroken) as by_log:
        verify_records(log.stored(), key=key, expected_head=expected_head)
    assert (by_file.value.sequence, by_file.value.reason) == (
        by_log.value.sequence,
        by_log.value.reason,
    )
    return by_file.value


def _body(line: bytes) -> dict[str, Any]:
    record = decode_record(line)
    for name in ("v", "seq", "kid", "prev", "hash"):
        del record[name]
    return record


def _reseal(lines: list[bytes], start: int, key: ChainKey | None) -> list[bytes]:
    """Rebuild the chain from index ``start`` on, as a writer who knows ``key`` could."""
    out = lines[:start]
    previous = ChainHead(0, "0" * 64)
    if start:
        last = decode_record(lines[start - 1])
        previous = ChainHead(last["seq"], last["hash"])
    for line in lines[start:]:
        record = seal(_body(line), previous=previous, key=key)
        out.append(canonical_json(record))
        previous = ChainHead(record["seq"], record["hash"])
    return out


def _edit(index: int, **changes: object) -> Callable[[list[bytes]], list[bytes]]:
    def change(lines: list[bytes]) -> list[bytes]:
        record = decode_record(lines[index])
        record.update(changes)
        return [*lines[:index], canonical_json(record), *lines[index + 1 :]]

    return change


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("keyed", [False, True])
def test_intact_log_verifies(kind: str, keyed: bool, tmp_path: Path) -> None:
    log = _filled(kind, tmp_path, keyed=keyed)
    head = log.head()
    result = verify_file(log_path(log), key=CHAIN_KEY if keyed else None, expected_head=head)
    assert result.count == COUNT
    assert result.head == head
    assert result.keyed is keyed
    assert log.verify(expected_head=head) == result
    # A head saved earlier still matches once the log has grown.
    log.record(event(99))
    assert log.verify(expected_head=head).count == COUNT + 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("keyed", [False, True])
def test_edited_field(kind: str, keyed: bool, tmp_path: Path) -> None:
    log = _filled(kind, tmp_path, keyed=keyed)
    rewrite(log, _edit(3, outcome="success", reason=None))
    fault = _broken(log, key=CHAIN_KEY if keyed else None)
    assert (fault.sequence, fault.reason, fault.position) == (4, ChainFault.HASH_MISMATCH, 4)


@pytest.mark.parametrize("kind", KINDS)
def test_edited_and_rehashed_record_breaks_the_link(kind: str, tmp_path: Path) -> None:
    log = _filled(kind, tmp_path, keyed=False)

    def change(lines: list[bytes]) -> list[bytes]:
        edited = _edit(3, outcome="success")(lines)
        resealed = _reseal(edited, 3, None)
        return [*resealed[:4], *lines[4:]]

    rewrite(log, change)
    fault = _broken(log)
    assert (fault.sequence, fault.reason) == (5, ChainFault.PREV_MISMATCH)


@pytest.mark.parametrize("kind", KINDS)
def test_deleted_record(kind: str, tmp_path: Path) -> None:
    log = _filled(kind, tmp_path, keyed=False)
    rewrite(log, lambda lines: lines[:3] + lines[4:])
    fault = _broken(log)
    assert (fault.sequence, fault.reason) == (4, ChainFault.MISSING)
    assert "record 4 is absent" in str(fault)


@pytest.mark.parametrize("kind", KINDS)
def test_reordered_records(kind: str, tmp_path: Path) -> None:
    log = _filled(kind, tmp_path, keyed=True)
    rewrite(log, lambda lines: [*lines[:3], lines[4], lines[3], *lines[5:]])
    fault = _broken(log, key=CHAIN_KEY)
    assert (fault.sequence, fault.reason) == (4, ChainFault.OUT_OF_ORDER)


@pytest.mark.parametrize("kind", KINDS)
def test_duplicated_record(kind: str, tmp_path: Path) -> None:
    log = _filled(kind, tmp_path, keyed=False)
    rewrite(log, lambda lines: [*lines[:6], lines[2], *lines[6:]])
    fault = _broken(log)
    assert (fault.sequence, fault.reason) == (7, ChainFault.OUT_OF_ORDER)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("keyed", [False, True])
def test_truncated_tail_needs_the_saved_head(kind: str, keyed: bool, tmp_path: Path) -> None:
    log = _filled(kind, tmp_path, keyed=keyed)
    key = CHAIN_KEY if keyed else None
    saved = log.head()
    rewrite(log, lambda lines: lines[:-2])
    # The limit, stated in the docs: a shorter chain is a valid chain.
    assert verify_file(log_path(log), key=key).count == COUNT - 2
    fault = _broken(log, key=key, expected_head=saved)
    assert (fault.sequence, fault.reason) == (COUNT - 1, ChainFault.TRUNCATED)


@pytest.mark.parametrize("kind", KINDS)
def test_everything_deleted_is_truncation(kind: str, tmp_path: Path) -> None:
    log = _filled(kind, tmp_path, keyed=False)
    saved = log.head()
    rewrite(log, lambda lines: [])
    fault = _broken(log, expected_head=saved)
    assert (fault.sequence, fault.reason) == (1, ChainFault.TRUNCATED)


@pytest.mark.parametrize("kind", KINDS)
def test_unkeyed_rewrite_is_caught_only_by_the_saved_head(kind: str, tmp_path: Path) -> None:
    log = _filled(kind, tmp_path, keyed=False)
    saved = log.head()
    rewrite(log, lambda lines: _reseal(_edit(3, outcome="success")(lines), 3, None))
    assert verify_file(log_path(log)).count == COUNT  # the stated limit of unkeyed chains
    fault = _broken(log, expected_head=saved)
    assert (fault.sequence, fault.reason) == (COUNT, ChainFault.HEAD_MISMATCH)
    earlier = ChainHead(2, decode_record(stored_lines(log)[1])["hash"])
    assert verify_file(log_path(log), expected_head=earlier).count == COUNT


@pytest.mark.parametrize("kind", KINDS)
def test_forged_record_without_the_key(kind: str, tmp_path: Path) -> None:
    log = _filled(kind, tmp_path, keyed=True)

    def insert_unkeyed(lines: list[bytes]) -> list[bytes]:
        # A copy of record 4 that says "success", chained after it without a MAC.
        extra = _edit(0, outcome="success")([lines[3]])
        return _reseal([*lines[:4], *extra, *lines[4:]], 4, None)

    rewrite(log, insert_unkeyed)
    fault = _broken(log, key=CHAIN_KEY)
    assert (fault.sequence, fault.reason) == (5, ChainFault.NOT_KEYED)


@pytest.mark.parametrize("kind", KINDS)
def test_forged_record_with_a_guessed_key_and_the_real_kid(kind: str, tmp_path: Path) -> None:
    log = _filled(kind, tmp_path, keyed=True)
    guess = ChainKey(b"\x00" * 32)

    def insert_forged(lines: list[bytes]) -> list[bytes]:
        record = seal(_body(lines[3]), previous=_head(lines[3]), key=guess)
        record["kid"] = ChainKey(CHAIN_KEY).kid
        return [*lines[:4], canonical_json(record), *lines[4:]]

    rewrite(log, insert_forged)
    fault = _broken(log, key=CHAIN_KEY)
    assert (fault.sequence, fault.reason) == (5, ChainFault.HASH_MISMATCH)


def _head(line: bytes) -> ChainHead:
    record = decode_record(line)
    return ChainHead(record["seq"], record["hash"])


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_key_and_missing_key(kind: str, tmp_path: Path) -> None:
    log = _filled(kind, tmp_path, keyed=True)
    with pytest.raises(AuditChainBroken) as caught:
        verify_file(log_path(log), key=b"\x01" * 32)
    assert (caught.value.sequence, caught.value.reason) == (1, ChainFault.WRONG_KEY)
    with pytest.raises(AuditKeyError):
        verify_file(log_path(log))
    (tmp_path / "unkeyed").mkdir()
    unkeyed = _filled(kind, tmp_path / "unkeyed", keyed=False)
    with pytest.raises(AuditChainBroken) as caught:
        verify_file(log_path(unkeyed), key=CHAIN_KEY)
    assert (caught.value.sequence, caught.value.reason) == (1, ChainFault.NOT_KEYED)


@pytest.mark.parametrize("kind", KINDS)
def test_garbage_record(kind: str, tmp_path: Path) -> None:
    log = _filled(kind, tmp_path, keyed=False)
    rewrite(log, lambda lines: [*lines[:5], b'{"not": "a record"}', *lines[6:]])
    fault = _broken(log)
    assert (fault.sequence, fault.reason, fault.position) == (6, ChainFault.MALFORMED, 6)


def test_torn_jsonl_tail_blocks_appends(tmp_path: Path) -> None:
    log = _filled("jsonl", tmp_path, keyed=False)
    assert isinstance(log, JsonLinesAuditLog)
    data = log.path.read_bytes()
    log.path.write_bytes(data[:-7])
    fault = _broken(log)
    assert (fault.sequence, fault.reason) == (COUNT, ChainFault.MALFORMED)
    with pytest.raises(AuditFormatError, match="torn"):
        log.record(event(99))
    with pytest.raises(AuditFormatError):
        log.head()


def test_sqlite_refuses_update_and_delete(tmp_path: Path) -> None:
    import sqlite3  # noqa: PLC0415 (only this test talks SQL directly)

    log = _filled("sqlite", tmp_path, keyed=False)
    with sqlite3.connect(log_path(log)) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit_log SET record = '{}' WHERE seq = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit_log")
        row = conn.execute("SELECT action, outcome FROM audit_events WHERE seq = 3").fetchone()
    assert row == ("verify", "failure")
    assert log.verify().count == COUNT


def test_memory_log_chain_is_checked_too() -> None:
    log = MemoryAuditLog(chain_key=CHAIN_KEY)
    for n in range(COUNT):
        log.record(event(n))
    records = log.records()
    edited = [dict(r) for r in records]
    edited[2]["subject"] = "someone else"
    with pytest.raises(AuditChainBroken) as caught:
        verify_records(edited, key=CHAIN_KEY)
    assert (caught.value.sequence, caught.value.reason) == (3, ChainFault.HASH_MISMATCH)
    with pytest.raises(AuditChainBroken) as caught:
        verify_records(records[:2] + records[3:], key=CHAIN_KEY)
    assert caught.value.reason is ChainFault.MISSING
    with pytest.raises(AuditChainBroken) as caught:
        verify_records(records, key=CHAIN_KEY, expected_head=ChainHead(COUNT + 1, "ab" * 32))
    assert caught.value.reason is ChainFault.TRUNCATED
    assert json.loads(json.dumps(records)) == records


@pytest.mark.parametrize("kind", KINDS)
def test_a_writer_with_another_key_cannot_extend_the_chain(kind: str, tmp_path: Path) -> None:
    def reopen(key: bytes | None) -> ChainedAuditLog:
        return make_log(kind, tmp_path, chain_key=key)

    reopen(CHAIN_KEY).record(event())
    with pytest.raises(AuditKeyError, match="this writer has no key"):
        reopen(None).record(event(1))
    with pytest.raises(AuditKeyError, match="this writer has the key with kid"):
        reopen(b"\x02" * 32).record(event(1))
    assert reopen(CHAIN_KEY).record(event(1)) == "2"
    assert verify_file(log_path(reopen(CHAIN_KEY)), key=CHAIN_KEY).count == 2

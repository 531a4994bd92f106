"""Fuzzing audit logs from the outside: tampered records get reports or typed errors, never more.

A real keyed log with signed checkpoints is the seed. Structured mutations
replace one field of one record with a hostile JSON value (huge integers,
lone surrogates, deep nesting, wrong types), delete or add fields, and
reorder, duplicate or drop records; the records are then checked as
mappings (:func:`check_records`) and, written out as JSON Lines and cut or
bit-flipped, read back by every file reader and exported. Everything must
end in a report or a :class:`MacnssAuthError`. ``HYPOTHESIS_PROFILE=long``
(``make fuzz``) runs the slow-marked test with the long profile's budget.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from macnss_auth.audit import (
    AuditSigner,
    ChainFault,
    ChainHead,
    ExportFormat,
    JsonLinesAuditLog,
    MemoryAuditLog,
    check_file,
    check_records,
    export_records,
    load_events,
    read_head,
    verify_file,
)
from macnss_auth.audit.jsonl import parse_jsonl
from macnss_auth.errors import MacnssAuthError, MalformedInput
from tests.audit.helpers import CHAIN_KEY, event

SIGNER = AuditSigner.from_seed(bytes(range(32)))


def _seed_records() -> list[dict[str, Any]]:
    log = MemoryAuditLog(screen=None, chain_key=CHAIN_KEY, signer=SIGNER, checkpoint_every=2)
    for n in range(5):
        log.record(event(n))
    records = []
    for _, record in log.stored():
        assert isinstance(record, dict)
        records.append(dict(record))
    return records


SEED = _seed_records()
FIELDS = sorted(SEED[0])

#: Values no writer of this library produces, chosen to get past the first type check.
_HOSTILE_SCALARS = st.sampled_from(
    [
        2**63,
        2**64 + 1,
        -(2**63),
        0,
        1.5,
        float("inf"),
        float("nan"),
        True,
        None,
        "",
        "\ud800",
        "9" * 5000,
        "2026-11-28T09:30:00",
        "2026-11-28T09:30:00+99:00",
        "0" * 64,
        "A" * 64,
        "0" * 16,
        "x" * 100_000,
    ]
)
# Built, not sampled: hypothesis's repr of a sampled 5000-digit integer fails.
_HUGE = st.integers(4301, 6000).map(lambda digits: 10**digits)
_JSON = st.recursive(
    _HOSTILE_SCALARS | _HUGE | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _deep(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def _mutated(draw: st.DrawFn) -> list[dict[str, Any]]:
    records = [dict(r, details=dict(r["details"])) for r in SEED]
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(records) - 1))
        record = records[index]
        action = draw(st.sampled_from(["set", "delete", "add", "detail", "order", "deep"]))
        field = draw(st.sampled_from(FIELDS))
        if action == "set":
            record[field] = draw(_JSON)
        elif action == "delete":
            record.pop(field, None)
        elif action == "add":
            record[draw(st.text(max_size=8))] = draw(_JSON)
        elif action == "detail" and isinstance(record.get("details"), dict):
            record["details"][draw(st.text(max_size=8))] = draw(_JSON)
        elif action == "deep":
            record[field] = _deep(draw(st.sampled_from([50, 5000])))
        else:
            other = draw(st.integers(0, len(records) - 1))
            records[index], records[other] = records[other], records[index]
            if draw(st.booleans()):
                del records[other]
            duplicate = draw(st.booleans())
            if duplicate:
                records.append(dict(records[0]))
    return records


def _check_mappings(records: list[dict[str, Any]]) -> None:
    for key in (CHAIN_KEY, None):
        with contextlib.suppress(MacnssAuthError):
            check_records(
                records,
                key=key,
                public_key=SIGNER.public_key,
                expected_head=ChainHead(len(SEED), SEED[-1]["hash"]),
            )


_REGRESSIONS = [
    # A lone surrogate in a record given as a mapping: UnicodeEncodeError while hashing.
    [dict(SEED[0], details={"n": "\ud800"}), *SEED[1:]],
    # A sequence number past int()'s digit limit: ValueError while hashing.
    [dict(SEED[0], seq=10**5000), *SEED[1:]],
]


@pytest.mark.slow
@settings(deadline=None)
@given(records=_mutated())
@example(records=_REGRESSIONS[0])
@example(records=_REGRESSIONS[1])
def test_mutated_records_get_a_report(records: list[dict[str, Any]]) -> None:
    _check_mappings(records)


@pytest.mark.parametrize("records", _REGRESSIONS, ids=["surrogate", "huge-seq"])
def test_unhashable_records_are_reported_malformed(records: list[dict[str, Any]]) -> None:
    report = check_records(records, key=CHAIN_KEY, public_key=SIGNER.public_key)
    assert not report.ok
    assert report.faults[0].kind is ChainFault.MALFORMED
    assert report.faults[0].sequence == 1


def _lines(records: list[dict[str, Any]]) -> bytes:
    out = b""
    for record in records:
        # ensure_ascii escapes lone surrogates, as a hostile writer would; huge ints fail.
        with contextlib.suppress(ValueError, RecursionError):
            out += json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    return out


@st.composite
def _file_bytes(draw: st.DrawFn) -> bytes:
    data = bytearray(_lines(draw(_mutated())))
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        where = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["flip", "cut", "insert"]))
        if how == "flip":
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif how == "cut":
            del data[where:]
        else:
            data[where:where] = draw(st.sampled_from([b"\n", b"\\ud800", b"1" * 5000, b"[" * 5000]))
    return bytes(data)


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_file_bytes())
def test_tampered_files_get_a_report_or_a_typed_error(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    with contextlib.suppress(MacnssAuthError):
        check_file(path, key=CHAIN_KEY, public_key=SIGNER.public_key)
    for read in (verify_file, read_head):
        with contextlib.suppress(MacnssAuthError):
            read(path)
    with contextlib.suppress(MacnssAuthError):
        events = load_events(path)
        for fmt in ExportFormat:
            export_records(events, io.StringIO(), format=fmt)
    with contextlib.suppress(MacnssAuthError):
        JsonLinesAuditLog(path, fsync=False, chain_key=CHAIN_KEY).record(event(9))
    for position, _ in parse_jsonl(data):
        assert position >= 1


@pytest.mark.slow
@given(
    text=st.text()
    | st.builds(lambda n, h: f"{n}:{h}", st.integers(min_value=0), st.text("0123456789abcdef"))
)
@example(text="9" * 5000 + ":" + "0" * 64)
@example(text=f"{2**63}:" + "0" * 64)
def test_any_head_text_parses_or_is_malformed(text: str) -> None:
    with contextlib.suppress(MalformedInput):
        head = ChainHead.parse(text)
        assert 0 <= head.sequence < 2**63


def test_a_head_past_64_bits_is_malformed() -> None:
    with pytest.raises(MalformedInput):
        ChainHead.parse("9" * 5000 + ":" + "0" * 64)
    with pytest.raises(MalformedInput):
        ChainHead.parse(f"{2**63}:" + "0" * 64)
    assert ChainHead.parse(f"{2**63 - 1}:" + "0" * 64).sequence == 2**63 - 1

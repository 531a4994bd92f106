"""Several processes append to one file: one intact chain, nothing lost, nothing doubled."""

from __future__ import annotations

from pathlib import Path

import pytest

from macnss_auth.audit import load_events, verify_file
from macnss_auth.testing.races import race_processes
from tests.audit._workers import append_many
from tests.audit.helpers import CHAIN_KEY

PROCESSES = 4
EACH = 200


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_processes_append_to_one_chain(kind: str, tmp_path: Path) -> None:
    path = tmp_path / ("audit.sqlite3" if kind == "sqlite" else "audit.jsonl")
    # Each process opens its own log, then all start appending together.
    outcomes = race_processes(
        append_many, [(kind, str(path), w, EACH) for w in range(PROCESSES)], timeout=120
    )
    # None from each: no exception, no crash, no non-zero exit, none hung.
    assert outcomes == [None] * PROCESSES

    result = verify_file(path, key=CHAIN_KEY)
    assert result.count == PROCESSES * EACH
    records = load_events(path)
    assert [r["seq"] for r in records] == list(range(1, PROCESSES * EACH + 1))
    tags = {(r["details"]["worker"], r["details"]["n"]) for r in records}
    assert tags == {(str(w), str(n)) for w in range(PROCESSES) for n in range(EACH)}

"""Several processes append to one file: one intact chain, nothing lost, nothing doubled."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from macnss_auth.audit import load_events, verify_file
from tests.audit._workers import append_many
from tests.audit.helpers import CHAIN_KEY

PROCESSES = 4
EACH = 200


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_processes_append_to_one_chain(kind: str, tmp_path: Path) -> None:
    path = tmp_path / ("audit.sqlite3" if kind == "sqlite" else "audit.jsonl")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    workers = [
        ctx.Process(target=append_many, args=(kind, str(path), w, EACH, barrier))
        for w in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [process.exitcode for process in workers] == [0] * PROCESSES

    result = verify_file(path, key=CHAIN_KEY)
    assert result.count == PROCESSES * EACH
    records = load_events(path)
    assert [r["seq"] for r in records] == list(range(1, PROCESSES * EACH + 1))
    tags = {(r["details"]["worker"], r["details"]["n"]) for r in records}
    assert tags == {(str(w), str(n)) for w in range(PROCESSES) for n in range(EACH)}

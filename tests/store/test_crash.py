"""A writer killed with SIGKILL mid-stream loses nothing it acknowledged.

A child process updates the store in a loop (counter, challenge, token,
window, enrollment) and prints a round's index only after every update of
that round returned. The test kills it with SIGKILL at an arbitrary moment
while it is writing, then reopens the file: it must pass ``PRAGMA
integrity_check`` and hold every acknowledged update. Both durability
settings are checked, since both promise to survive a process crash (only
``FULL`` also promises to survive a power loss, which a test cannot stage).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from macnss_auth.store import Keyring, SQLiteStore
from macnss_auth.testing.store_contract import T0
from tests.store._workers import digest

TOKENS = 20_000
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_sigkill_loses_no_acknowledged_update(
    tmp_path: Path, keyring: Keyring, synchronous: str
) -> None:
    path = tmp_path / "s.sqlite3"
    with SQLiteStore(path, keyring=keyring) as store:
        store.add_tokens("tok", [digest(i) for i in range(TOKENS)])
    kill_after = random.randrange(30, 150)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.store._workers", str(path), synchronous],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # This tree's sources first, as in the parent (not another installed copy).
        env={**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT)))},
    )
    assert child.stdout is not None
    acknowledged: list[int] = []
    try:
        for line in child.stdout:
            acknowledged.append(int(line))
            if len(acknowledged) == kill_after:
                child.send_signal(signal.SIGKILL)
                break
        # Acknowledgements already in the pipe when the kill landed count too.
        acknowledged.extend(int(line) for line in child.stdout)
    finally:
        child.kill()
        _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err.decode(errors="replace")
    assert acknowledged == list(range(len(acknowledged)))
    assert len(acknowledged) >= kill_after
    last = acknowledged[-1]

    with SQLiteStore(path, keyring=keyring) as store:
        assert store.integrity_check() == ["ok"]
        current = store.current("ctr")
        assert current is not None
        assert current >= last + 1
        hits = store.peek("hits", T0, 10.0**9)
        assert hits is not None
        assert hits.count >= last + 1
        for i in acknowledged:
            record = store.get_challenge(f"c{i}")
            assert record is not None
            assert record.consumed
            assert store.consume_token("tok", digest(i)) is False
            enrolled = store.get_enrollment(f"s{i}", "totp")
            assert enrolled is not None
            assert enrolled.secret.reveal() == b"seed %d" % i
        # Nothing beyond what the child could have done is present, and no
        # transaction was left half-applied: the slot has at most one live challenge.
        assert store.count_tokens("tok") >= TOKENS - current
        records = [store.get_challenge(f"c{i}") for i in range(current)]
        assert sum(1 for r in records if r is not None and not r.consumed) <= 1

"""Issue 14 item 2: the combined layout survives SIGKILL at any point of a verification.

With the audit log in the store's file (:meth:`SQLiteAuditLog.in_store`), a
verification's counted attempt, spent code (or moved counter) and audit
record are one transaction. A child process verifies codes in a loop and
kills itself with SIGKILL just before a chosen SQL statement (SQLite's trace
hook: between two statements of the grouped transaction, before its
``COMMIT``, or anywhere); other runs are killed by the parent at a random
moment. Afterwards, whatever the point:

* the file passes ``PRAGMA integrity_check`` and the audit chain verifies;
* the spent step (TOTP) or counter (HOTP resync) is exactly the one of the
  last success record: no spent code without its record, no record without
  its spent code;
* every throttle count equals the attempts audited against it, and the
  count the next attempt would start from has no attempt without a record;
* every verification the child acknowledged is there.

The separate layout's weaker promise (the store may be one verification
ahead of the audit log) is pinned down in ``test_audit_window.py``.
"""

from __future__ import annotations

import base64
import collections
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyotp
import pytest

from macnss_auth.audit import SQLiteAuditLog
from macnss_auth.otp.hotp import HotpAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.store import SQLiteStore
from macnss_auth.testing import FixedClock
from macnss_auth.throttle import key_part
from tests.otp._combined_crash_worker import (
    FIRST_STEP,
    POLICY,
    RESYNC_JUMP,
    SEED,
    keyring,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIRM_STEP = FIRST_STEP - 1
EVER = 10.0**9  # a window that holds every attempt of a run

# Kill points: the statements of a grouped verification (see the worker's trace).
TOTP_POINTS = [
    "BEGIN IMMEDIATE",
    "SELECT value FROM counters",
    "INSERT INTO windows",
    "INSERT INTO counters",
    "SELECT seq, record FROM audit_log",
    "INSERT INTO audit_log",
    "COMMIT",
]
RESYNC_POINTS = [
    "INSERT INTO windows",
    "INSERT INTO counters",
    "DELETE FROM windows",
    "INSERT INTO audit_log",
    "COMMIT",
]


def _cases(flow: str, points: list[str], per_point: int, anywhere: int) -> list[Any]:
    # Occurrences drawn once from a fixed seed: varied, and a failure reruns alike.
    draw = random.Random(f"{flow}-kill-points")
    cases = [
        pytest.param(flow, point, nth, id=f"{flow}-{point}-{nth}")
        for point in points
        for nth in sorted(draw.sample(range(1, 10), per_point))
    ]
    cases += [
        pytest.param(flow, "*", nth, id=f"{flow}-any-{nth}")
        for nth in sorted(draw.sample(range(1, 60), anywhere))
    ]
    cases += [pytest.param(flow, "*", 0, id=f"{flow}-timed-{run}") for run in range(2)]
    return cases


def _run_until_killed(state: Path, flow: str, point: str, nth: int) -> list[int]:
    """Run the worker until it dies of SIGKILL; the rounds it acknowledged."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.otp._combined_crash_worker",
            str(state),
            flow,
            point,
            str(nth),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # This tree's sources first, as in the parent (not another installed copy).
        env={**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT)))},
    )
    assert child.stdout is not None
    acknowledged: list[int] = []
    kill_after = random.randrange(1, 12)
    try:
        for line in child.stdout:
            acknowledged.append(int(line))
            if nth == 0 and len(acknowledged) == kill_after:
                child.send_signal(signal.SIGKILL)
                break
        # Acknowledgements already in the pipe when the kill landed count too.
        acknowledged.extend(int(line) for line in child.stdout)
    finally:
        if child.poll() is None and nth == 0:
            child.kill()
        _, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err.decode(errors="replace")
    assert acknowledged == list(range(len(acknowledged)))
    return acknowledged


def _opened(state: Path) -> tuple[SQLiteStore, list[dict[str, Any]]]:
    """The store after the crash, with its audit records once the chain verified."""
    store = SQLiteStore(state, keyring=keyring())
    assert store.integrity_check() == ["ok"]
    log = SQLiteAuditLog.in_store(store)
    log.verify()
    return store, log.records()


def _window_count(store: SQLiteStore, key: str, clock: FixedClock) -> int:
    """The count under ``key`` as the run's clock saw it last."""
    state = store.peek(key, clock.now(), EVER)
    return 0 if state is None else state.count


@pytest.mark.parametrize(("flow", "point", "nth"), _cases("totp", TOTP_POINTS, 2, 5))
def test_totp_sigkill_leaves_decision_and_record_together(
    tmp_path: Path, flow: str, point: str, nth: int
) -> None:
    state = tmp_path / "state.sqlite3"
    with SQLiteStore(state, keyring=keyring()) as store:
        clock = FixedClock.at(CONFIRM_STEP * 30)
        totp = TotpAuthenticator(
            store=store, audit=SQLiteAuditLog.in_store(store), clock=clock, throttle_policy=POLICY
        )
        totp.enroll("alice", secret=SEED)
        oracle = pyotp.TOTP(base64.b32encode(SEED).decode())
        totp.confirm("alice", oracle.at(CONFIRM_STEP * 30))

    acknowledged = _run_until_killed(state, flow, point, nth)

    store, records = _opened(state)
    clock.set(FixedClock.at((FIRST_STEP + 10**5) * 30).now())  # after every attempt
    with store:
        enrollment = store.get_enrollment("alice", "totp")
        assert enrollment is not None
        accepted = store.current(f"otp:totp:{enrollment.params['generation']}")
        verifications = [r for r in records if r["action"] == "verify"]
        steps = [int(r["details"]["step"]) for r in verifications if r["outcome"] == "success"]
        # Every acknowledged success is recorded, in order, and nothing else succeeded.
        assert steps == list(range(FIRST_STEP, FIRST_STEP + len(steps)))
        assert len(steps) >= len(acknowledged)
        # The spent step is exactly the last recorded success (or the confirmation's).
        assert accepted == (steps[-1] if steps else CONFIRM_STEP)
        # Failures are counted per accepted step (a success in one transaction counts
        # nowhere: it moves to a fresh count): replay the records to get each count.
        counted: collections.Counter[int] = collections.Counter()
        mark = CONFIRM_STEP
        for record in verifications:
            if record["outcome"] == "success":
                mark = int(record["details"]["step"])
            else:
                counted[mark] += 1
        base = f"throttle:totp:{key_part('alice')}"
        for generation in {*counted, mark}:
            key = f"{base}@{generation}#0"
            assert _window_count(store, key, clock) == counted[generation], generation


@pytest.mark.parametrize(("flow", "point", "nth"), _cases("resync", RESYNC_POINTS, 2, 3))
def test_hotp_resync_sigkill_leaves_counter_and_record_together(
    tmp_path: Path, flow: str, point: str, nth: int
) -> None:
    state = tmp_path / "state.sqlite3"
    with SQLiteStore(state, keyring=keyring()) as store:
        hotp = HotpAuthenticator(
            store=store,
            audit=SQLiteAuditLog.in_store(store),
            clock=FixedClock.at(0),
            throttle_policy=POLICY,
        )
        hotp.enroll("alice", secret=SEED)
        hotp.confirm("alice", pyotp.HOTP(base64.b32encode(SEED).decode()).at(0))

    acknowledged = _run_until_killed(state, flow, point, nth)

    store, records = _opened(state)
    with store:
        enrollment = store.get_enrollment("alice", "hotp")
        assert enrollment is not None
        next_counter = store.current(f"otp:hotp:{enrollment.params['generation']}")
        resyncs = [r for r in records if r["action"] == "resync"]
        matched = [int(r["details"]["counter"]) for r in resyncs if r["outcome"] == "success"]
        # Each round moved the counter RESYNC_JUMP + 2 past the previous one.
        assert matched == [1 + RESYNC_JUMP + 1 + i * (RESYNC_JUMP + 2) for i in range(len(matched))]
        assert len(matched) >= len(acknowledged)
        assert next_counter == (matched[-1] + 1 if matched else 1)
        # A success clears the count: what is left is the failures recorded after it.
        last = max((i for i, r in enumerate(resyncs) if r["outcome"] == "success"), default=-1)
        after = resyncs[last + 1 :]
        assert all(r["outcome"] == "failure" for r in after)
        key = f"throttle:hotp:{key_part('alice')}#0"
        assert _window_count(store, key, FixedClock.at(0)) == len(after)

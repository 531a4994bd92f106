"""Item 9 of issue 18: the window between a spent code and its audit record.

A verification commits its decision to the store (the TOTP step advances,
the challenge or token is used up) and then appends the audit record. The
two live in different places (any store, any audit log), so they are not
one transaction: a crash between them leaves a spent code without a success
record. These tests pin down what that window can and cannot do (see
docs/security.md, "Crashes between the store and the audit log"):

* the code is spent either way: never usable twice;
* the caller never gets a success without its record being appended first;
* the store is ahead of the audit log by at most the verifications in flight
  when the process died (one, for a sequential worker);
* a record is never written for a decision the store did not commit.
"""

from __future__ import annotations

import base64
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest

from macnss_auth.audit import AuditEvent, MemoryAuditLog, SQLiteAuditLog
from macnss_auth.audit.events import Outcome
from macnss_auth.audit.files import load_events
from macnss_auth.errors import TokenReplayed
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.store import Keyring, MemoryStore, SQLiteStore
from macnss_auth.testing import FixedClock
from tests.otp._audit_crash_worker import FIRST_STEP, KEY, SEED

ROOT = Path(__file__).resolve().parents[2]
ORACLE = pyotp.TOTP(base64.b32encode(SEED).decode())


class Crash(Exception):
    """Stands for the process dying: raised instead of appending a success."""


class CrashingOnSuccess(MemoryAuditLog):
    def record(self, event: AuditEvent) -> str:
        if event.outcome is Outcome.SUCCESS and event.action.value == "verify":
            raise Crash
        return super().record(event)


def test_a_failed_append_after_the_commit_spends_the_code_without_a_success() -> None:
    clock = FixedClock.at(FIRST_STEP * 30)
    audit = CrashingOnSuccess()
    totp = TotpAuthenticator(store=MemoryStore(), audit=audit, clock=clock)
    totp.enroll("alice", secret=SEED)
    totp.confirm("alice", ORACLE.at(FIRST_STEP * 30))
    clock.advance(30)
    code = ORACLE.at(FIRST_STEP * 30 + 30)
    with pytest.raises(Crash):
        totp.verify_code("alice", code)  # the caller never sees a success
    with pytest.raises(TokenReplayed):
        totp.verify_code("alice", code)  # spent: the store decided
    outcomes = [(e.action.value, e.outcome.value) for e in audit.events]
    assert ("verify", "success") not in outcomes
    assert outcomes[-1] == ("verify", "failure")


def _audited_steps(path: Path) -> list[int]:
    return [
        int(record["details"]["step"])
        for record in load_events(path)
        if record["action"] == "verify" and record["outcome"] == "success"
    ]


@pytest.mark.parametrize("run", range(3))
def test_sigkill_leaves_the_store_at_most_one_verification_ahead(tmp_path: Path, run: int) -> None:
    state, audit_path = tmp_path / "state.sqlite3", tmp_path / "audit.sqlite3"
    keyring = Keyring({"k": KEY}, primary="k")
    with SQLiteStore(state, keyring=keyring) as store:
        totp = TotpAuthenticator(
            store=store, audit=SQLiteAuditLog(audit_path), clock=FixedClock.at(0)
        )
        totp.enroll("alice", secret=SEED)
        totp.confirm("alice", ORACLE.at(0))
    kill_after = random.randrange(5, 60)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.otp._audit_crash_worker", str(state), str(audit_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
    )
    assert child.stdout is not None
    acknowledged: list[int] = []
    try:
        for line in child.stdout:
            acknowledged.append(int(line))
            if len(acknowledged) == kill_after:
                child.send_signal(signal.SIGKILL)
                break
        acknowledged.extend(int(line) for line in child.stdout)
    finally:
        child.kill()
        _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err.decode(errors="replace")

    audited = _audited_steps(audit_path)
    with SQLiteStore(state, keyring=keyring) as store:
        enrollment = store.get_enrollment("alice", "totp")
        assert enrollment is not None
        accepted = store.current(f"otp:totp:{enrollment.params['generation']}")
    assert accepted is not None
    # Every acknowledged verification has its record (append before return) ...
    assert audited[: len(acknowledged)] == [FIRST_STEP + i for i in acknowledged]
    # ... no record exists for a step the store did not accept ...
    assert max(audited) <= accepted
    # ... and the store is at most the one in-flight verification ahead.
    assert accepted - max(audited) in (0, 1)

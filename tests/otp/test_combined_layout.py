"""With the audit log in the store's file, each code operation is one transaction.

(An eID login is two: the document check between them takes milliseconds.)

SQLite's trace hook lists the statements one call runs: every write and the
audit append sit between one ``BEGIN IMMEDIATE`` and the call's only
``COMMIT`` (one fsync with ``synchronous=FULL``). Reads that decide nothing
(the enrollment, the challenge) may come before it. The separate layout is
measured the same way, to show what the grouping saves.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from macnss_auth.audit import SQLiteAuditLog
from macnss_auth.delivery import CapturingChannel, ChannelKind
from macnss_auth.errors import AuthenticationFailed, DocumentNotGenuine, InvalidCode
from macnss_auth.nfc.card.issuer import forge_card
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.otp.contacts import parse_phone, put_destination
from macnss_auth.otp.hotp import HotpAuthenticator
from macnss_auth.otp.oob import InlineDispatcher, SMSCodeAuthenticator
from macnss_auth.otp.recovery import RecoveryCodeAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.passkey import PasskeyAuthenticator
from macnss_auth.passkey.virtual import VirtualAuthenticator
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, SQLiteStore
from macnss_auth.testing import FixedClock
from macnss_auth.testing.races import race_processes
from tests.nfc.eid.test_eid_authenticator import NOW as EID_NOW
from tests.nfc.eid.test_eid_authenticator import SUBJECT as EID_SUBJECT
from tests.nfc.eid.test_eid_authenticator import issued, read
from tests.passkey.helpers import NOW, ORIGIN, RP_ID

from ._combined_guess_worker import GUESSING, guess_wrong

SEED = b"12345678901234567890"
TOTP = pyotp.TOTP(base64.b32encode(SEED).decode())
HOTP = pyotp.HOTP(base64.b32encode(SEED).decode())
WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement run on connections opened during the test, in order."""
    seen: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = connect(*args, **kwargs)
        connection.set_trace_callback(seen.append)
        return connection

    monkeypatch.setattr(sqlite3, "connect", traced)
    return seen


@contextlib.contextmanager
def _one_call(statements: list[str]) -> Iterator[list[str]]:
    """The statements of the block (its own list, filled when the block ends)."""
    start = len(statements)
    mine: list[str] = []
    try:
        yield mine
    finally:
        mine.extend(statements[start:])


def _assert_one_transaction(run: list[str]) -> None:
    assert run.count("COMMIT") == 1, run
    assert run.count("BEGIN IMMEDIATE") == 1, run
    begin, commit = run.index("BEGIN IMMEDIATE"), run.index("COMMIT")
    assert commit == len(run) - 1, run
    writes = [i for i, s in enumerate(run) if s.startswith(WRITES)]
    assert writes, run
    assert all(begin < i < commit for i in writes), run
    assert any(s.startswith("INSERT INTO audit_log") for s in run), run


@pytest.fixture
def store(tmp_path: Path, statements: list[str]) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "state.sqlite3", keyring=Keyring.generate()) as opened:
        yield opened


def _totp(store: SQLiteStore) -> tuple[TotpAuthenticator, FixedClock]:
    clock = FixedClock.at(30_000)
    totp = TotpAuthenticator(store=store, audit=SQLiteAuditLog.in_store(store), clock=clock)
    return totp, clock


def _enrolled_totp(store: SQLiteStore) -> tuple[TotpAuthenticator, FixedClock]:
    """Alice enrolled and confirmed at 30,000 s; the clock one step later (30,030 s)."""
    totp, clock = _totp(store)
    totp.enroll("alice", secret=SEED)
    totp.confirm("alice", TOTP.at(30_000))
    clock.advance(30)
    return totp, clock


def test_totp_enrollment_and_every_check_commit_once(
    store: SQLiteStore, statements: list[str]
) -> None:
    totp, clock = _totp(store)
    with _one_call(statements) as run:
        totp.enroll("alice", secret=SEED)
    _assert_one_transaction(run)
    with _one_call(statements) as run:
        totp.confirm("alice", TOTP.at(30_000))
    _assert_one_transaction(run)
    clock.advance(30)
    with _one_call(statements) as run, pytest.raises(InvalidCode):
        totp.verify_code("alice", "000000" if TOTP.at(30_030) != "000000" else "111111")
    _assert_one_transaction(run)
    with _one_call(statements) as run:
        totp.verify_code("alice", TOTP.at(30_030))
    _assert_one_transaction(run)
    clock.advance(30)
    with _one_call(statements) as run:
        challenge = totp.begin("alice")
    _assert_one_transaction(run)
    with _one_call(statements) as run:
        totp.verify(challenge, TOTP.at(30_060))
    _assert_one_transaction(run)
    with _one_call(statements) as run:
        assert totp.unenroll("alice")
    _assert_one_transaction(run)


def test_hotp_resync_commits_once(store: SQLiteStore, statements: list[str]) -> None:
    hotp = HotpAuthenticator(
        store=store, audit=SQLiteAuditLog.in_store(store), clock=FixedClock.at(0)
    )
    hotp.enroll("alice", secret=SEED)
    hotp.confirm("alice", HOTP.at(0))
    with _one_call(statements) as run:
        hotp.resync("alice", HOTP.at(40), HOTP.at(41))
    _assert_one_transaction(run)
    assert hotp.counter("alice") == 42


def test_recovery_codes_commit_once_per_operation(
    store: SQLiteStore, statements: list[str]
) -> None:
    recovery = RecoveryCodeAuthenticator(
        store=store, audit=SQLiteAuditLog.in_store(store), clock=FixedClock.at(0), scrypt_n=2**10
    )
    recovery.generate("alice")
    with _one_call(statements) as run:
        codes = recovery.generate("alice")  # replaces a set: three writes and a record
    _assert_one_transaction(run)
    with _one_call(statements) as run:
        recovery.verify_code("alice", codes.codes[0])
    _assert_one_transaction(run)
    with _one_call(statements) as run:
        assert recovery.revoke("alice")
    _assert_one_transaction(run)


def test_the_separate_layout_commits_each_write_on_its_own(
    store: SQLiteStore, statements: list[str], tmp_path: Path
) -> None:
    audit = SQLiteAuditLog(tmp_path / "audit.sqlite3")
    totp = TotpAuthenticator(store=store, audit=audit, clock=FixedClock.at(30_000))
    totp.enroll("alice", secret=SEED)
    totp.confirm("alice", TOTP.at(30_000))
    with _one_call(statements) as run:
        totp.verify_code("alice", TOTP.at(30_030))
    # Attempt count, spent step and drift are autocommitted statements of the store;
    # the audit append is a transaction of its own in another file.
    assert run.count("COMMIT") == 1
    assert sum(s.startswith(WRITES) for s in run) >= 3


def test_a_verification_reads_and_decides_inside_its_one_transaction(
    store: SQLiteStore, statements: list[str]
) -> None:
    totp, clock = _enrolled_totp(store)
    with _one_call(statements) as run:
        totp.verify_code("alice", TOTP.at(30_030))
    # The enrollment and the replay counter are read under the write lock: the
    # decision sees one snapshot, and nothing changes between read and write.
    assert run[0] == "BEGIN IMMEDIATE", run
    _assert_one_transaction(run)
    challenge = totp.begin("alice")
    clock.advance(30)
    with _one_call(statements) as run:
        totp.verify(challenge, TOTP.at(30_060))
    assert run[0] == "BEGIN IMMEDIATE", run


def test_in_one_transaction_only_a_failure_is_counted(
    store: SQLiteStore, statements: list[str]
) -> None:
    totp, _ = _enrolled_totp(store)
    wrong = "000000" if TOTP.at(30_030) != "000000" else "111111"
    with _one_call(statements) as failed, pytest.raises(InvalidCode) as refused:
        totp.verify_code("alice", wrong)
    assert refused.value.remaining_attempts == totp.throttle_policy.lockout_after - 1
    with _one_call(statements) as accepted:
        totp.verify_code("alice", TOTP.at(30_030))
    counting = [s for s in failed if s.startswith("INSERT INTO windows")]
    assert len(counting) == 1, failed
    assert not [s for s in accepted if s.startswith("INSERT INTO windows")], accepted


def test_parallel_wrong_codes_lock_out_exactly_in_the_combined_layout(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    key = bytes(range(32))
    keyring = Keyring({"k1": key}, primary="k1")
    at = 30_000.0
    with SQLiteStore(path, keyring=keyring) as shared:
        totp = TotpAuthenticator(
            store=shared, audit=SQLiteAuditLog.in_store(shared), clock=FixedClock.at(at)
        )
        totp.enroll("alice", secret=SEED)
        totp.confirm("alice", TOTP.at(int(at)))
    right = {TOTP.at(int(at) + 30 * shift) for shift in (-1, 0, 1)}
    wrong = [f"{n:06d}" for n in range(100) if f"{n:06d}" not in right][:3]
    processes, guesses = 8, len(wrong)
    outcomes = race_processes(guess_wrong, [(str(path), key.hex(), at, wrong)] * processes)
    reasons: collections.Counter[str] = collections.Counter()
    for outcome in outcomes:
        assert isinstance(outcome, list), outcome
        reasons.update(outcome)
    # Admitted uncounted, counted on failure, all under one write lock: exactly
    # lockout_after codes were checked, every other guess met the lockout.
    assert reasons == {
        "invalid_code": GUESSING.lockout_after,
        "locked_out": processes * guesses - GUESSING.lockout_after,
    }, reasons
    with SQLiteStore(path, keyring=keyring) as reopened:
        log = SQLiteAuditLog.in_store(reopened)
        log.verify()
        failures = [
            r for r in log.records() if r["action"] == "verify" and r["outcome"] == "failure"
        ]
    assert len(failures) == processes * guesses


def test_sms_code_verification_commits_once(store: SQLiteStore, statements: list[str]) -> None:
    clock = FixedClock.at(30_000)
    channel = CapturingChannel(ChannelKind.SMS)
    put_destination(store, "alice", parse_phone("+212612345678"), now=clock.now())
    with SMSCodeAuthenticator(
        channel=channel,
        store=store,
        pepper=Secret(b"an application pepper of 32+ bytes, test only"),
        clock=clock,
        audit=SQLiteAuditLog.in_store(store),
        dispatcher=InlineDispatcher(),
    ) as sms:
        challenge = sms.begin("alice")
        code = channel.last_code()
        wrong = "000000" if code != "000000" else "111111"
        with _one_call(statements) as run, pytest.raises(InvalidCode):
            sms.verify(challenge, wrong)
        _assert_one_transaction(run)
        with _one_call(statements) as run:
            sms.verify(challenge, code)
        _assert_one_transaction(run)
    records = SQLiteAuditLog.in_store(store).records()
    assert [r["outcome"] for r in records if r["action"] == "verify"] == ["failure", "success"]


def test_a_passkey_registration_and_login_commit_once(
    store: SQLiteStore, statements: list[str]
) -> None:
    audit = SQLiteAuditLog.in_store(store)
    passkeys = PasskeyAuthenticator(
        store=store, audit=audit, rp_id=RP_ID, origins=[ORIGIN], clock=FixedClock.at(NOW)
    )
    device = VirtualAuthenticator(origin=ORIGIN)
    registration = passkeys.begin_registration("alice")
    created = device.create(registration.data["options"])
    with _one_call(statements) as run:
        passkeys.finish_registration(registration, created)
    _assert_one_transaction(run)
    challenge = passkeys.begin("alice")
    with _one_call(statements) as run:
        passkeys.verify(challenge, device.get(challenge.data["options"]))
    _assert_one_transaction(run)
    challenge = passkeys.begin("alice")
    elsewhere = device.get(challenge.data["options"], origin="http://localhost:9999")
    with _one_call(statements) as run, pytest.raises(AuthenticationFailed):
        passkeys.verify(challenge, elsewhere)
    _assert_one_transaction(run)
    outcomes = [r["outcome"] for r in audit.records() if r["action"] == "verify"]
    assert outcomes == ["success", "failure"]


def _assert_two_transactions(run: list[str]) -> None:
    """The nonce and throttle, then the verdict: each its own BEGIN IMMEDIATE ... COMMIT."""
    begins = [i for i, s in enumerate(run) if s == "BEGIN IMMEDIATE"]
    commits = [i for i, s in enumerate(run) if s == "COMMIT"]
    assert len(begins) == len(commits) == 2, run
    first, second = (range(b, c) for b, c in zip(begins, commits, strict=True))
    writes = [i for i, s in enumerate(run) if s.startswith(WRITES)]
    assert all(i in first or i in second for i in writes), run
    assert any(run[i].startswith("UPDATE challenges") for i in first), run
    assert any(run[i].startswith("INSERT INTO audit_log") for i in second), run


def test_an_eid_login_commits_twice_around_the_document_check(
    store: SQLiteStore, statements: list[str]
) -> None:
    card = issued("cnie")
    trust = TrustStore()
    trust.add_csca(card.csca)
    eid = EidAuthenticator(
        store=store,
        audit=SQLiteAuditLog.in_store(store),
        trust_store=trust,
        binding_key=bytes(range(32)),
        clock=FixedClock.at(EID_NOW),
    )
    eid.enroll(EID_SUBJECT, document_number="AB1234567")
    for data, refused in ((forge_card(card.data), True), (card.data, False)):
        challenge = eid.begin(EID_SUBJECT)
        evidence = read(data, bytes.fromhex(challenge.data["nonce"]))
        with _one_call(statements) as run:
            if refused:
                with pytest.raises(DocumentNotGenuine):
                    eid.verify(challenge, evidence)
            else:
                eid.verify(challenge, evidence)
        _assert_two_transactions(run)
    records = SQLiteAuditLog.in_store(store).records()
    assert [r["outcome"] for r in records if r["action"] == "verify"] == ["failure", "success"]

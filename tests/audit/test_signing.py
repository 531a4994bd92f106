"""Ed25519 checkpoints: a verifier with only the public key detects rewrites and cannot forge."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from macnss_auth.audit import (
    AuditAction,
    AuditEventRejected,
    AuditKeyError,
    AuditPublicKey,
    AuditSigner,
    ChainFault,
    MemoryAuditLog,
    check_file,
    check_records,
    open_audit_log,
    verify_records,
)
from macnss_auth.audit.chain import record_hash
from tests.audit.helpers import CHAIN_KEY, T0, event, log_path, make_log

SIGNER = AuditSigner.from_seed(bytes(range(32)))
PUBLIC = AuditPublicKey.from_pem(SIGNER.public_key.pem())


def _rehash(records: list[dict[str, object]], start: int) -> None:
    """What a writer without the key does after an edit: recompute every later hash (unkeyed)."""
    previous = records[start - 1]["hash"] if start else "0" * 64
    for record in records[start:]:
        record["prev"] = previous
        record["hash"] = record_hash({k: v for k, v in record.items() if k != "hash"}, None)
        previous = record["hash"]


def test_checkpoints_cover_the_chain_and_say_how_far() -> None:
    log = MemoryAuditLog(signer=SIGNER, checkpoint_every=4)
    for n in range(9):
        log.record(event(n))
    records = log.records()
    checkpoints = [r for r in records if r["action"] == AuditAction.CHECKPOINT.value]
    assert [r["seq"] for r in checkpoints] == [5, 10]
    assert all(r["details"]["signer"] == PUBLIC.key_id for r in checkpoints)
    report = check_records(records, public_key=PUBLIC)
    assert report.ok
    assert (report.signed_through, report.checkpoints) == (9, 2)
    log.record(event(10))
    assert log.check().signed_through == 9  # the last records are only hash-chained so far
    log.checkpoint(at=T0)
    assert log.check().signed_through == 12
    # Without a public key, a signed log is an ordinary chain.
    assert verify_records(log.records()).count == 13
    assert check_records(log.records()).signed_through is None


def test_a_rewrite_with_recomputed_hashes_fails_the_signature() -> None:
    log = MemoryAuditLog(signer=SIGNER, checkpoint_every=5)
    for n in range(8):
        log.record(event(n))
    records = log.records()
    records[1]["outcome"] = "success"
    _rehash(records, 1)
    assert verify_records(records).count == 9  # the hash chain alone is fooled
    report = check_records(records, public_key=PUBLIC)
    assert [(f.kind, f.sequence, f.field) for f in report.faults] == [
        (ChainFault.BAD_SIGNATURE, 6, "details.signature")
    ]
    assert report.signed_through == 0


def test_another_key_cannot_sign_and_a_writer_key_is_not_needed_to_verify() -> None:
    forger = AuditSigner.generate()
    log = MemoryAuditLog(signer=forger, checkpoint_every=2)
    for n in range(3):
        log.record(event(n))
    report = check_records(log.records(), public_key=PUBLIC)
    assert {f.kind for f in report.faults} == {ChainFault.BAD_SIGNATURE}
    assert report.faults[0].field == "details.signer"
    # A forged signer id with the forger's signature still fails.
    records = log.records()
    records[2]["details"]["signer"] = PUBLIC.key_id
    _rehash(records, 2)
    assert check_records(records, public_key=PUBLIC).faults[0].field == "details.signature"


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_durable_sinks_sign_and_combine_with_hmac(kind: str, tmp_path: Path) -> None:
    log = make_log(kind, tmp_path, chain_key=CHAIN_KEY, signer=SIGNER, checkpoint_every=3)
    for n in range(5):
        log.record(event(n))
    report = check_file(log_path(log), key=CHAIN_KEY, public_key=PUBLIC)
    assert report.ok
    assert report.keyed
    assert report.signed_through == 3
    again = open_audit_log(log_path(log), chain_key=CHAIN_KEY, signer=SIGNER)
    again.checkpoint(at=T0 + dt.timedelta(hours=1))
    assert check_file(log_path(log), key=CHAIN_KEY, public_key=PUBLIC).signed_through == 6


def test_key_handling() -> None:
    pem = SIGNER.pem(password=b"correct horse")
    assert b"ENCRYPTED" in pem
    assert AuditSigner.from_pem(pem, password=b"correct horse").public_key.key_id == PUBLIC.key_id
    with pytest.raises(AuditKeyError):
        AuditSigner.from_pem(pem, password=b"wrong")
    with pytest.raises(AuditKeyError):
        AuditPublicKey.from_pem(b"not a key")
    with pytest.raises(AuditKeyError):
        AuditSigner.from_seed(b"short")
    assert "PRIVATE" not in repr(SIGNER)
    assert PUBLIC.key_id in repr(SIGNER)
    with pytest.raises(AuditKeyError):
        MemoryAuditLog().checkpoint(at=T0)
    with pytest.raises(AuditKeyError):
        MemoryAuditLog(checkpoint_every=3)


@pytest.mark.parametrize("kind", ["memory", "jsonl"])
def test_callers_cannot_record_a_checkpoint(kind: str, tmp_path: Path) -> None:
    log = MemoryAuditLog(signer=SIGNER) if kind == "memory" else make_log(kind, tmp_path)
    with pytest.raises(AuditEventRejected, match="action"):
        log.record(event(0, action=AuditAction.CHECKPOINT))
    with pytest.raises(AuditEventRejected, match="action"):
        log.record(event(0, action="checkpoint"))
    assert log.head().sequence == 0

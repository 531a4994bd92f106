"""Filtered exports to CSV and JSON Lines, and the CLI around verification reports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from macnss_auth.audit import (
    AuditAction,
    AuditEvent,
    AuditFormatError,
    AuditPublicKey,
    AuditSigner,
    ExportFilter,
    ExportFormat,
    MemoryAuditLog,
    Outcome,
    export_records,
    load_events,
    pseudonymize,
)
from macnss_auth.audit.record import canonical_json
from macnss_auth.authenticator import ClientContext
from macnss_auth.cli import main
from tests.audit.helpers import (
    PSEUDONYM_KEY,
    T0,
    event,
    log_path,
    make_log,
    rewrite,
    typical_events,
)


def _log(tmp_path: Path, kind: str = "jsonl") -> Path:
    log = make_log(kind, tmp_path, pseudonym_key=PSEUDONYM_KEY)
    for item in typical_events():
        log.record(item)
    log.record(event(100, subject="CNIE-OTHER", method="sms", outcome=Outcome.SUCCESS))
    return log_path(log)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["audit", *args])
    return result.exit_code, result.stdout, result.stderr


def test_filters_combine() -> None:
    records = [dict(r) for r in load_events_of(typical_events())]
    where = ExportFilter(methods=["sms"], outcomes=["success"])
    kept = [r for r in records if where.keeps(r)]
    assert [(r["method"], r["outcome"]) for r in kept] == [("sms", "success")]
    window = ExportFilter(since=T0 + dt.timedelta(seconds=3), until=T0 + dt.timedelta(seconds=5))
    assert [r["seq"] for r in records if window.keeps(r)] == [4, 5]
    assert [r["seq"] for r in records if ExportFilter(actions=["lockout"]).keeps(r)] == [9]
    with pytest.raises(AuditFormatError):
        ExportFilter(since=dt.datetime(2026, 1, 1))  # noqa: DTZ001 (naive on purpose)


def load_events_of(events: list[AuditEvent]) -> list[dict[str, object]]:
    log = MemoryAuditLog()
    for item in events:
        log.record(item)
    return log.records()


def test_jsonl_export_is_the_stored_records(tmp_path: Path) -> None:
    path = _log(tmp_path)
    out = io.StringIO()
    someone = pseudonymize("CNIE-OTHER", PSEUDONYM_KEY)
    count = export_records(load_events(path), out, where=ExportFilter(subjects=[someone]))
    assert count == 1
    (line,) = out.getvalue().splitlines()
    assert line.encode() == canonical_json(load_events(path)[-1])


def test_csv_export_flattens_and_defuses_formulas(tmp_path: Path) -> None:
    log = make_log("sqlite", tmp_path)
    log.record(event(0, client=ClientContext(client_id="k", ip=None, user_agent="=HYPERLINK(1)")))
    log.record(event(1, details={"hint": "a\u2022\u2022\u2022@example.ma"}))
    out = io.StringIO()
    assert export_records(load_events(log_path(log)), out, format=ExportFormat.CSV) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["user_agent"] == "'=HYPERLINK(1)"
    assert rows[0]["ip"] == ""
    assert json.loads(rows[1]["details"]) == {"hint": "a\u2022\u2022\u2022@example.ma"}
    assert rows[1]["seq"] == "2"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_cli_export_filters_to_a_file(tmp_path: Path, fmt: str) -> None:
    path = _log(tmp_path, "sqlite")
    target = tmp_path / f"out.{fmt}"
    code, _, err = _run(
        "export", str(path), "--format", fmt, "-o", str(target),
        "--method", "sms", "--method", "email", "--outcome", "success",
        "--since", "2026-11-28T09:30:00", "--until", "2026-11-29",
    )  # fmt: skip
    assert code == 0, err
    assert "2 record(s) exported" in err
    text = target.read_text(encoding="utf-8")
    if fmt == "jsonl":
        assert [json.loads(line)["seq"] for line in text.splitlines()] == [4, 13]
    else:
        assert [row["seq"] for row in csv.DictReader(io.StringIO(text))] == ["4", "13"]
    code, out, _ = _run("export", str(path), "--action", "lockout")
    assert code == 0
    assert [json.loads(line)["action"] for line in out.splitlines()] == [AuditAction.LOCKOUT.value]
    code, _, _ = _run("export", str(path), "--since", "yesterday")
    assert code == 2


def test_cli_verify_json_and_table_list_every_fault(tmp_path: Path) -> None:
    path = _log(tmp_path)
    log = make_log("jsonl", tmp_path)  # the same file, to rewrite it
    assert log_path(log) == path

    def tamper(lines: list[bytes]) -> list[bytes]:
        edited = json.loads(lines[1])
        edited["outcome"] = "failure"
        return [lines[0], canonical_json(edited), *lines[2:5], *lines[6:]]

    rewrite(log, tamper)
    code, out, _ = _run("verify", str(path), "--json")
    assert code == 1
    report = json.loads(out)
    assert [(f["kind"], f["sequence"]) for f in report["faults"]] == [
        ("hash_mismatch", 2),
        ("missing", 6),
    ]
    assert report["intact_through"] == 1
    code, out, _ = _run("verify", str(path))
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith("BROKEN at record 2 (line/row 2): hash_mismatch")
    assert "2 fault(s)" in lines[1]
    assert [line.split()[2] for line in lines[3:5]] == ["hash_mismatch", "missing"]


def test_cli_keygen_and_signed_verify(tmp_path: Path) -> None:
    private, public = tmp_path / "audit.key", tmp_path / "audit.pub"
    code, out, _ = _run("keygen", "--private", str(private), "--public", str(public))
    assert code == 0
    assert private.stat().st_mode & 0o777 == 0o600
    signer = AuditSigner.from_pem(private.read_bytes())
    assert AuditPublicKey.from_pem(public.read_bytes()).key_id == signer.public_key.key_id
    assert signer.public_key.key_id in out
    code, _, _ = _run("keygen", "--private", str(private), "--public", str(public))
    assert code == 2  # never overwrites a key
    log = make_log("sqlite", tmp_path, signer=signer, checkpoint_every=2)
    for n in range(4):
        log.record(event(n))
    code, out, _ = _run("verify", str(log_path(log)), "--public-key", str(public))
    assert code == 0, out
    assert "records 1 to 5 are covered by a signature, records 6 to 6 only by the hash chain" in out
    code, out, _ = _run("verify", str(log_path(log)), "--public-key", str(private))
    assert code == 2

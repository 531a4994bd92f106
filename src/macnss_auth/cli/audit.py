"""``macnss-auth audit``: verify an audit log, print its head, show and export its records.

Exit status of ``verify``: 0 only if the log is intact (and matches
``--expected-head`` when given); 1 if it is broken or unreadable, with the
first bad record's sequence number and the reason on the first line, then
every fault in a table (or all of it as JSON with ``--json``); 2 for usage
errors (including a keyed log verified without its key).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from macnss_auth.audit.chain import ChainHead, ChainKey
from macnss_auth.audit.errors import (
    AuditError,
    AuditFormatError,
    AuditKeyError,
)
from macnss_auth.audit.events import Outcome
from macnss_auth.audit.export import ExportFilter, ExportFormat, export_records
from macnss_auth.audit.files import check_file, load_events, read_head
from macnss_auth.audit.signing import AuditPublicKey, AuditSigner
from macnss_auth.audit.verify import ChainReport
from macnss_auth.errors import MalformedInput

__all__ = ["command"]

_path_argument = click.argument(
    "path", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)


def _chain_key(key_hex: str | None, key_env: str | None) -> ChainKey | None:
    if key_hex is not None and key_env is not None:
        raise click.UsageError("give --key-hex or --key-env, not both")
    text = key_hex
    if key_env is not None:
        text = os.environ.get(key_env)
        if text is None:
            raise click.UsageError(f"environment variable {key_env} is not set")
    if text is None:
        return None
    try:
        return ChainKey.from_hex(text)
    except AuditKeyError as exc:
        raise click.UsageError(str(exc)) from None


@click.group("audit")
def command() -> None:
    """Verify and read audit logs (SQLite or JSON Lines files)."""


def _public_key(path: Path | None) -> AuditPublicKey | None:
    if path is None:
        return None
    try:
        return AuditPublicKey.from_pem(path.read_bytes())
    except AuditKeyError as exc:
        raise click.BadParameter(str(exc), param_hint="--public-key") from None


def _fault_table(report: ChainReport) -> None:
    columns = (("record", 7), ("line/row", 8), ("fault", 14), ("field", 18))
    click.echo(" ".join(name.ljust(width) for name, width in columns) + " detail")
    for fault in report.faults:
        cells = (
            str(fault.sequence),
            "-" if fault.position is None else str(fault.position),
            fault.kind.value,
            fault.field or "-",
        )
        line = " ".join(cell.ljust(width) for cell, (_, width) in zip(cells, columns, strict=True))
        click.echo(f"{line} {fault.detail}")


@command.command("verify")
@_path_argument
@click.option("--key-hex", metavar="HEX", help="The chain's HMAC key, in hex (keyed logs).")
@click.option(
    "--key-env", metavar="VAR", help="Read the chain's HMAC key, in hex, from this variable."
)
@click.option(
    "--public-key",
    "public_key_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM Ed25519 public key: check the checkpoints' signatures.",
)
@click.option(
    "--expected-head",
    metavar="SEQ:HASH",
    help="A head saved earlier (`audit head`): detects a cut-off tail or rewritten history.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full report as one JSON object.")
def verify(  # noqa: PLR0917 (click passes every option as an argument)
    path: Path,
    key_hex: str | None,
    key_env: str | None,
    public_key_path: Path | None,
    expected_head: str | None,
    as_json: bool,
) -> None:
    """Check that no record of PATH was edited, deleted, reordered or forged.

    Prints OK and the head on success. Otherwise the first fault on the first
    line, how far the chain is intact, then a table of every fault (record,
    line/row, kind, field, detail), and exits with status 1. --json prints the
    same report as JSON.
    """
    key = _chain_key(key_hex, key_env)
    public_key = _public_key(public_key_path)
    head = None
    if expected_head is not None:
        try:
            head = ChainHead.parse(expected_head)
        except MalformedInput as exc:
            raise click.BadParameter(str(exc), param_hint="--expected-head") from None
    try:
        report = check_file(path, key=key, public_key=public_key, expected_head=head)
    except AuditKeyError as exc:
        raise click.UsageError(f"{exc} (--key-hex or --key-env)") from None
    except AuditFormatError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "unreadable": str(exc)}))
        else:
            click.echo(f"UNREADABLE: {exc}")
        raise SystemExit(1) from None
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, sort_keys=True))
        raise SystemExit(0 if report.ok else 1)
    if not report.ok:
        first = report.faults[0]
        where = f" (line/row {first.position})" if first.position is not None else ""
        click.echo(f"BROKEN at record {first.sequence}{where}: {first.kind.value}: {first.detail}")
        click.echo(
            f"intact through record {report.intact_through} of {report.count} read "
            f"(head of the intact part {report.intact_head}); "
            f"{len(report.faults)} fault(s):"
        )
        _fault_table(report)
        _signed_note(report)
        raise SystemExit(1)
    kind = "keyed (HMAC-SHA256)" if report.keyed else "unkeyed (SHA-256)"
    click.echo(f"OK: {report.count} records, {kind}, head {report.head}")
    _signed_note(report)
    if not report.keyed and report.signed_through is None:
        click.echo(
            "note: an unkeyed chain shows edits, deletions and reordering, but someone "
            "who can write the file could rebuild it; compare the head with a saved one."
        )
    if head is None:
        click.echo("note: a cut-off tail is only detected with --expected-head.")


def _signed_note(report: ChainReport) -> None:
    if report.signed_through is None:
        return
    last = report.head.sequence
    click.echo(
        f"signed: {report.checkpoints} valid Ed25519 checkpoint(s); "
        f"records 1 to {report.signed_through} are covered by a signature"
        + (
            f", records {report.signed_through + 1} to {last} only by the hash chain"
            if report.signed_through < last
            else ""
        )
    )


@command.command("head")
@_path_argument
def head_command(path: Path) -> None:
    """Print PATH's head as SEQ:HASH, to save elsewhere for `verify --expected-head`."""
    try:
        click.echo(str(read_head(path)))
    except AuditError as exc:
        click.echo(f"UNREADABLE: {exc}")
        raise SystemExit(1) from None


def _short(value: Any, width: int) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "~"


@command.command("show")
@_path_argument
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Only the last N records.")
@click.option("--json", "as_json", is_flag=True, help="One JSON record per line, as stored.")
def show(path: Path, limit: int | None, as_json: bool) -> None:
    """Print the records of PATH (the chain is not checked: use `verify`)."""
    try:
        records = load_events(path)
    except AuditError as exc:
        click.echo(f"UNREADABLE: {exc}")
        raise SystemExit(1) from None
    if limit is not None:
        records = records[-limit:] if limit else []
    if as_json:
        for record in records:
            click.echo(json.dumps(record, ensure_ascii=False, sort_keys=True))
        return
    columns = (
        ("seq", 6),
        ("at", 19),
        ("action", 11),  # the longest: rotate_keys, retire_keys
        ("method", 8),
        ("outcome", 7),
        ("reason", 18),
        ("channel", 7),
        ("subject", 20),
        ("client_id", 16),
        ("ip", 15),
    )
    click.echo(" ".join(name.ljust(width) for name, width in columns).rstrip())
    for record in records:
        client = record["client"] or {}
        values = dict(record, client_id=client.get("client_id"), ip=client.get("ip"))
        values["at"] = str(record["at"])[:19].replace("T", " ")
        click.echo(
            " ".join(_short(values[name], width).ljust(width) for name, width in columns).rstrip()
        )


def _time(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("an ISO 8601 time or date", param_hint=name) from None
    # A bare date or time without offset is taken as UTC: the log's own zone.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.timezone.utc)


@command.command("export")
@_path_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in ExportFormat]),
    default=ExportFormat.JSONL.value,
    show_default=True,
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here instead of standard output.",
)
@click.option("--since", metavar="TIME", help="At or after this ISO 8601 time (UTC if no offset).")
@click.option("--until", metavar="TIME", help="Before this ISO 8601 time (UTC if no offset).")
@click.option("--method", "methods", multiple=True, help="Only this method (repeatable).")
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    type=click.Choice([o.value for o in Outcome]),
    help="Only this outcome (repeatable).",
)
@click.option("--action", "actions", multiple=True, help="Only this action (repeatable).")
@click.option(
    "--subject",
    "subjects",
    multiple=True,
    metavar="PSEUDONYM",
    help="Only this subject as stored, e.g. ps:3f2a... (repeatable).",
)
def export(  # noqa: PLR0917 (click passes every option as an argument)
    path: Path,
    fmt: str,
    output: Path | None,
    since: str | None,
    until: str | None,
    methods: tuple[str, ...],
    outcomes: tuple[str, ...],
    actions: tuple[str, ...],
    subjects: tuple[str, ...],
) -> None:
    """Export the records of PATH that match every filter, to CSV or JSON Lines.

    The chain is not checked, and an export does not chain by itself: run
    `verify` on PATH and keep its head with the export.
    """
    where = ExportFilter(
        since=_time(since, "--since"),
        until=_time(until, "--until"),
        methods=methods or None,
        outcomes=outcomes or None,
        actions=actions or None,
        subjects=subjects or None,
    )
    try:
        records = load_events(path)
    except AuditError as exc:
        click.echo(f"UNREADABLE: {exc}", err=True)
        raise SystemExit(1) from None
    if output is None:
        count = export_records(records, sys.stdout, format=ExportFormat(fmt), where=where)
    else:
        with output.open("w", encoding="utf-8", newline="") as handle:
            count = export_records(records, handle, format=ExportFormat(fmt), where=where)
    click.echo(f"{count} record(s) exported", err=True)


@command.command("keygen")
@click.option(
    "--private",
    "private_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the PEM private key (mode 0600): for the log's writers.",
)
@click.option(
    "--public",
    "public_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the PEM public key: for verifiers.",
)
def keygen(private_path: Path, public_path: Path) -> None:
    """Create an Ed25519 key pair for signed audit checkpoints."""
    signer = AuditSigner.generate()
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.UsageError(f"{private_path} exists; not overwriting a key") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(signer.pem())
    public_path.write_bytes(signer.public_key.pem())
    click.echo(f"key id {signer.public_key.key_id}")

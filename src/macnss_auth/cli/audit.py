"""``macnss-auth audit``: verify an audit log, print its head, show its records.

Exit status of ``verify``: 0 only if the log is intact (and matches
``--expected-head`` when given); 1 if it is broken or unreadable, with the
first bad record's sequence number and the reason on one line; 2 for usage
errors (including a keyed log verified without its key).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from macnss_auth.audit.chain import ChainHead, ChainKey
from macnss_auth.audit.errors import (
    AuditChainBroken,
    AuditError,
    AuditFormatError,
    AuditKeyError,
)
from macnss_auth.audit.files import load_events, read_head, verify_file
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


@command.command("verify")
@_path_argument
@click.option("--key-hex", metavar="HEX", help="The chain's HMAC key, in hex (keyed logs).")
@click.option(
    "--key-env", metavar="VAR", help="Read the chain's HMAC key, in hex, from this variable."
)
@click.option(
    "--expected-head",
    metavar="SEQ:HASH",
    help="A head saved earlier (`audit head`): detects a cut-off tail or rewritten history.",
)
def verify(path: Path, key_hex: str | None, key_env: str | None, expected_head: str | None) -> None:
    """Check that no record of PATH was edited, deleted, reordered or forged.

    Prints OK and the head on success; otherwise the first bad record's
    sequence number and why, and exits with status 1.
    """
    key = _chain_key(key_hex, key_env)
    head = None
    if expected_head is not None:
        try:
            head = ChainHead.parse(expected_head)
        except MalformedInput as exc:
            raise click.BadParameter(str(exc), param_hint="--expected-head") from None
    try:
        result = verify_file(path, key=key, expected_head=head)
    except AuditKeyError as exc:
        raise click.UsageError(f"{exc} (--key-hex or --key-env)") from None
    except AuditChainBroken as exc:
        where = f" (line/row {exc.position})" if exc.position is not None else ""
        click.echo(f"BROKEN at record {exc.sequence}{where}: {exc.reason.value}: {exc.detail}")
        raise SystemExit(1) from None
    except AuditFormatError as exc:
        click.echo(f"UNREADABLE: {exc}")
        raise SystemExit(1) from None
    kind = "keyed (HMAC-SHA256)" if result.keyed else "unkeyed (SHA-256)"
    click.echo(f"OK: {result.count} records, {kind}, head {result.head}")
    if not result.keyed:
        click.echo(
            "note: an unkeyed chain shows edits, deletions and reordering, but someone "
            "who can write the file could rebuild it; compare the head with a saved one."
        )
    if head is None:
        click.echo("note: a cut-off tail is only detected with --expected-head.")


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
        ("action", 8),
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

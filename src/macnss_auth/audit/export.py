"""Filtered exports of an audit log, to CSV (spreadsheets) and JSON Lines (tools).

An export is a *view*: the selected records as stored, without the ones in
between, so their ``prev`` links no longer chain. Verify the original log
(``macnss-auth audit verify``) and keep its head with the export; an export
proves nothing by itself.

CSV cells that a spreadsheet would run as a formula (starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return; client metadata such as the
user agent comes from outside) are prefixed with ``'``, as OWASP advises
against CSV injection. JSON Lines keeps every value exactly.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

import attrs

from macnss_auth.audit.errors import AuditFormatError
from macnss_auth.audit.record import canonical_json

__all__ = ["EXPORT_COLUMNS", "ExportFilter", "ExportFormat", "export_records"]

EXPORT_COLUMNS = (
    "seq",
    "at",
    "action",
    "method",
    "outcome",
    "subject",
    "reason",
    "channel",
    "client_id",
    "ip",
    "user_agent",
    "details",
    "kid",
    "prev",
    "hash",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(str, enum.Enum):
    """What ``macnss-auth audit export --format`` writes."""

    CSV = "csv"
    JSONL = "jsonl"


def _frozen(values: Iterable[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


@attrs.frozen
class ExportFilter:
    """Which records an export keeps; every criterion given must hold.

    Attributes:
        since: keep records at or after this time (timezone-aware).
        until: keep records strictly before this time (timezone-aware).
        methods: keep these methods (``totp``, ``sms``...).
        outcomes: keep these outcomes (``success``, ``failure``, ``info``).
        actions: keep these actions (``verify``, ``lockout``...).
        subjects: keep these subjects, as stored (pseudonyms ``ps:...`` on a
            pseudonymized log: compute one with :func:`~macnss_auth.audit.pseudonymize`).
    """

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    methods: frozenset[str] | None = attrs.field(default=None, converter=_frozen)
    outcomes: frozenset[str] | None = attrs.field(default=None, converter=_frozen)
    actions: frozenset[str] | None = attrs.field(default=None, converter=_frozen)
    subjects: frozenset[str] | None = attrs.field(default=None, converter=_frozen)

    def __attrs_post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise AuditFormatError(f"{name} must be a timezone-aware time", field=name)

    def keeps(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` passes every criterion."""
        if self.methods is not None and record["method"] not in self.methods:
            return False
        if self.outcomes is not None and record["outcome"] not in self.outcomes:
            return False
        if self.actions is not None and record["action"] not in self.actions:
            return False
        if self.subjects is not None and record["subject"] not in self.subjects:
            return False
        if self.since is None and self.until is None:
            return True
        at = dt.datetime.fromisoformat(record["at"])
        if self.since is not None and at < self.since:
            return False
        return self.until is None or at < self.until


def record_row(
    record: Mapping[str, Any], columns: Iterable[str] = EXPORT_COLUMNS
) -> dict[str, Any]:
    """One record as a flat row of ``columns``, the client spread into its three columns.

    The CSV export and :func:`~macnss_auth.audit.files.to_dataframe` share it.
    """
    client = record.get("client") or {}
    row = {name: record.get(name) for name in columns}
    for name in ("client_id", "ip", "user_agent"):
        row[name] = client.get(name)
    return row


def _flat(record: Mapping[str, Any]) -> dict[str, Any]:
    row = record_row(record)
    row["details"] = canonical_json(record.get("details") or {}).decode("utf-8")
    return row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def export_records(
    records: Iterable[Mapping[str, Any]],
    out: TextIO,
    *,
    format: ExportFormat = ExportFormat.JSONL,  # noqa: A002 (the CLI option's name)
    where: ExportFilter | None = None,
) -> int:
    """Write the records ``where`` keeps to ``out``; return how many.

    JSON Lines: one record per line, exactly as stored (canonical JSON).
    CSV: a header row, then :data:`EXPORT_COLUMNS` (``details`` as JSON text,
    the client spread into ``client_id``, ``ip``, ``user_agent``).
    """
    keep = where or ExportFilter()
    selected: Iterator[Mapping[str, Any]] = (r for r in records if keep.keeps(r))
    count = 0
    if format is ExportFormat.JSONL:
        for record in selected:
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")))
            out.write("\n")
            count += 1
        return count
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for record in selected:
        row = _flat(record)
        writer.writerow([_cell(row[name]) for name in EXPORT_COLUMNS])
        count += 1
    return count

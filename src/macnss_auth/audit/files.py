"""Audit files by path: open for appending, verify, and load into a notebook.

The format is recognized by content: a file that starts with SQLite's magic
header is an SQLite log, anything else is read as JSON Lines. A file that does
not exist yet is created as JSON Lines if its name ends in ``.jsonl`` or
``.ndjson``, as SQLite otherwise.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from macnss_auth.audit.base import ChainedAuditLog, ChainSettings
from macnss_auth.audit.chain import ChainHead, ChainKey, Stored, VerifiedChain, verify_records
from macnss_auth.audit.errors import AuditFormatError, ChainFault
from macnss_auth.audit.export import EXPORT_COLUMNS, record_row
from macnss_auth.audit.jsonl import JsonLinesAuditLog, read_jsonl
from macnss_auth.audit.signing import AuditPublicKey
from macnss_auth.audit.sqlite import SQLITE_MAGIC, SQLiteAuditLog, read_sqlite
from macnss_auth.audit.verify import ChainReport, check_records
from macnss_auth.errors import ConfigurationError
from macnss_auth.secret import Secret

if TYPE_CHECKING:
    import pandas as pd


if TYPE_CHECKING:
    # Only for the type checker (PEP 692 on Python 3.10): nothing imports it at run time.
    from typing_extensions import Unpack

__all__ = [
    "check_file",
    "load_events",
    "open_audit_log",
    "read_head",
    "read_stored",
    "to_dataframe",
    "verify_file",
]

_JSONL_SUFFIXES = (".jsonl", ".ndjson")


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except FileNotFoundError:
        return path.suffix.lower() not in _JSONL_SUFFIXES
    except OSError as exc:
        raise AuditFormatError(f"cannot read the audit file ({exc.strerror})") from exc


def open_audit_log(
    path: str | os.PathLike[str],
    **settings: Unpack[ChainSettings],
) -> ChainedAuditLog:
    """An appendable log on ``path``: SQLite or JSON Lines, by content or by name."""
    where = Path(path)
    sink = SQLiteAuditLog if _is_sqlite(where) else JsonLinesAuditLog
    return sink(where, **settings)


def read_stored(path: str | os.PathLike[str]) -> list[Stored]:
    """Every stored record of the file at ``path``, read-only, in storage order.

    Raises:
        AuditFormatError: the file is missing or not an audit log.
    """
    where = Path(path)
    if not where.is_file():
        raise AuditFormatError("no audit file at this path")
    if where.stat().st_size == 0:
        return []
    if _is_sqlite(where):
        return read_sqlite(where)
    return read_jsonl(where)


def verify_file(
    path: str | os.PathLike[str],
    *,
    key: bytes | Secret | ChainKey | None = None,
    expected_head: ChainHead | None = None,
) -> VerifiedChain:
    """Verify the audit file at ``path``.

    Raises:
        AuditChainBroken: at the first bad record; ``sequence`` and ``reason`` say which and why.
        AuditKeyError: the log is keyed and no key was given.
        AuditFormatError: the file is missing or not an audit log at all.
    """
    return verify_records(read_stored(path), key=key, expected_head=expected_head)


def check_file(
    path: str | os.PathLike[str],
    *,
    key: bytes | Secret | ChainKey | None = None,
    public_key: AuditPublicKey | None = None,
    expected_head: ChainHead | None = None,
) -> ChainReport:
    """Every fault of the audit file at ``path``, and how far its chain is intact.

    Raises:
        AuditKeyError: the log is keyed and no key was given.
        AuditFormatError: the file is missing or not an audit log at all.
    """
    return check_records(
        read_stored(path), key=key, public_key=public_key, expected_head=expected_head
    )


def read_head(path: str | os.PathLike[str]) -> ChainHead:
    """The head of the audit file at ``path``, for saving elsewhere (the chain is not checked).

    Raises:
        AuditFormatError: the file is missing, not an audit log, or ends in a bad record.
    """
    stored = read_stored(path)
    if not stored:
        return ChainHead(0, "0" * 64)
    last = stored[-1][1]
    if isinstance(last, AuditFormatError):
        raise last
    return ChainHead(last["seq"], last["hash"])


def load_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of an audit file as plain dicts, in storage order.

    Loading does not verify the chain: call :func:`verify_file` first when it matters.

    Raises:
        AuditFormatError: the file is missing, not an audit log, or has an unreadable record.
    """
    out: list[dict[str, Any]] = []
    for _, record in read_stored(path):
        if isinstance(record, AuditFormatError):
            raise record
        out.append(dict(record))
    return out


# The export's columns but ``prev``: a notebook reads the chain's health from chain_ok.
_COLUMNS = tuple(name for name in EXPORT_COLUMNS if name != "prev")


def to_dataframe(
    path: str | os.PathLike[str],
    *,
    verify: bool = False,
    key: bytes | Secret | ChainKey | None = None,
    public_key: AuditPublicKey | None = None,
    expected_head: ChainHead | None = None,
) -> pd.DataFrame:
    """The records of an audit file as a pandas DataFrame, one row per record.

    Columns: ``seq`` (the index), ``at`` (UTC datetimes), ``action``,
    ``method``, ``outcome``, ``subject``, ``reason``, ``channel``,
    ``client_id``, ``ip``, ``user_agent``, ``details`` (a dict per row;
    ``df.details.apply(pd.Series)`` spreads it into columns), ``kid``, ``hash``.

    With ``verify=True`` the chain is checked in the same read (with ``key``,
    ``public_key`` and ``expected_head`` as in :func:`check_file`): two more
    columns, ``chain_ok`` (bool) and ``fault`` (the :class:`ChainFault` value
    found on that row, or ``None``), and the whole :class:`ChainReport` in
    ``frame.attrs["chain_report"]``. Unreadable records then do not raise:
    they have no row, and are in the report.

    Raises:
        ConfigurationError: pandas is not installed (``pip install macnss-auth[notebook]``).
        AuditFormatError: as :func:`load_events` (without ``verify``).
        AuditKeyError: with ``verify``, a keyed log and no key.
    """
    try:
        import pandas as pd  # noqa: PLC0415 (pandas is an optional extra)
    except ImportError:
        raise ConfigurationError(
            "to_dataframe needs pandas: pip install 'macnss-auth[notebook]'"
        ) from None
    stored = read_stored(path)
    report: ChainReport | None = None
    faults: dict[int, ChainFault | None] = {}
    if verify:
        report = check_records(stored, key=key, public_key=public_key, expected_head=expected_head)
        faults = {check.position: check.fault for check in report.records}
    rows = []
    columns = list(_COLUMNS) + (["chain_ok", "fault"] if verify else [])
    for position, record in stored:
        if isinstance(record, AuditFormatError):
            if verify:
                continue
            raise record
        row = record_row(record, _COLUMNS)
        row["at"] = dt.datetime.fromisoformat(record["at"]).astimezone(dt.timezone.utc)
        if verify:
            fault = faults.get(position)
            row["chain_ok"] = fault is None
            row["fault"] = None if fault is None else fault.value
        rows.append(row)
    frame = pd.DataFrame(rows, columns=columns)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    if verify:
        frame["chain_ok"] = frame["chain_ok"].astype(bool)
    indexed: pd.DataFrame = frame.set_index("seq")
    if report is not None:
        indexed.attrs["chain_report"] = report
    return indexed

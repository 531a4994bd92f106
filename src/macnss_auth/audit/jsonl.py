"""An audit log in a JSON Lines file: one canonical JSON record per line.

Appends from many processes are serialized with an exclusive ``flock`` on
the file (and a thread lock inside one process, since ``flock`` does not
exclude threads sharing an open file). Under the lock a writer reads the last
line for the head, seals the next record and appends it with one ``write``
on an ``O_APPEND`` descriptor, then ``fsync``\\ s (unless told not to). The
file is opened afresh for every append, so log rotation and ``fork`` need no
care.

A line without its final newline is a torn write (a crash in the middle of a
``write``); the log then refuses further appends until someone looks at it
with ``macnss-auth audit verify``.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from macnss_auth.audit.base import ChainedAuditLog, ChainSettings, Sealer
from macnss_auth.audit.chain import EMPTY_HEAD, ChainHead, Stored
from macnss_auth.audit.errors import AuditFormatError
from macnss_auth.audit.events import AuditEvent
from macnss_auth.audit.record import canonical_json, decode_record
from macnss_auth.errors import StoreError

if TYPE_CHECKING:
    # Only for the type checker (PEP 692 on Python 3.10): nothing imports it at run time.
    from typing_extensions import Unpack

__all__ = ["JsonLinesAuditLog", "parse_jsonl", "read_jsonl"]

_TAIL_CHUNK = 4096


def parse_jsonl(data: bytes) -> list[Stored]:
    """Split JSON Lines bytes into stored records, in order (line numbers from 1).

    Unreadable lines come back as :class:`AuditFormatError` values in place,
    so that verification can say which record is bad.
    """
    out: list[Stored] = []
    if not data:
        return out
    lines = data.split(b"\n")
    torn = lines[-1] != b""
    if not torn:
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if torn and number == len(lines):
            out.append((number, AuditFormatError("last line is incomplete", position=number)))
            continue
        try:
            out.append((number, decode_record(line, position=number)))
        except AuditFormatError as exc:
            out.append((number, exc))
    return out


def read_jsonl(path: str | os.PathLike[str]) -> list[Stored]:
    """Read every stored record of a JSON Lines audit file.

    Takes a shared lock, so that a record being appended is never seen half-written.

    Raises:
        AuditFormatError: the file cannot be read.
    """
    try:
        with Path(path).open("rb") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
            data = handle.read()
    except OSError as exc:
        raise AuditFormatError(f"cannot read the audit file ({exc.strerror})") from exc
    return parse_jsonl(data)


def _read_tail_head(fd: int) -> ChainHead:
    last = _read_tail_record(fd)
    return EMPTY_HEAD if last is None else ChainHead(last["seq"], last["hash"])


def _read_tail_record(fd: int) -> dict[str, Any] | None:
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    if os.pread(fd, 1, size - 1) != b"\n":
        raise AuditFormatError("the audit file ends in a torn write; verify it before appending")
    # Read backwards from the final newline until the newline before it is in view.
    position = size - 1
    chunks: list[bytes] = []
    while position > 0:
        step = min(_TAIL_CHUNK, position)
        position -= step
        chunk = os.pread(fd, step, position)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            chunks.append(chunk[cut + 1 :])
            break
        chunks.append(chunk)
    line = b"".join(reversed(chunks))
    return decode_record(line)


class JsonLinesAuditLog(ChainedAuditLog):
    """An audit log in a JSON Lines file (created on first use, mode 0600).

    Args:
        path: the file.
        chain_key, pseudonym_key, screen, signer, checkpoint_every: see
            :class:`~macnss_auth.audit.base.ChainedAuditLog`.
        fsync: whether each append waits for the disk (default: yes; an audit
            record that a crash can lose after ``record()`` returned is not much of one).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = True,
        **settings: Unpack[ChainSettings],
    ) -> None:
        super().__init__(**settings)
        self.path = Path(path)
        self._fsync = fsync
        self._lock = threading.Lock()

    def _open(self, flags: int) -> int:
        try:
            return os.open(self.path, flags | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open the audit file: {exc.strerror}") from exc

    def _append(self, sealer: Sealer, event: AuditEvent) -> Mapping[str, Any]:
        with self._lock:
            fd = self._open(os.O_RDWR | os.O_APPEND)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                record = sealer(_read_tail_record(fd))
                line = canonical_json(record) + b"\n"
                view = memoryview(line)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                if self._fsync:
                    os.fsync(fd)
            except OSError as exc:
                raise StoreError(f"cannot append to the audit file: {exc.strerror}") from exc
            finally:
                # Closing releases the flock too; unlock explicitly for clarity.
                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)
            return record

    def head(self) -> ChainHead:
        """The last record's sequence and hash.

        Raises:
            AuditFormatError: the file ends in an unreadable record.
            StoreError: the file cannot be read.
        """
        with self._lock:
            fd = self._open(os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                return _read_tail_head(fd)
            except OSError as exc:
                raise StoreError(f"cannot read the audit file: {exc.strerror}") from exc
            finally:
                os.close(fd)

    def stored(self) -> Iterator[Stored]:
        with self._lock:
            fd = self._open(os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                with os.fdopen(os.dup(fd), "rb") as handle:
                    data = handle.read()
            except OSError as exc:
                raise StoreError(f"cannot read the audit file: {exc.strerror}") from exc
            finally:
                os.close(fd)
        return iter(parse_jsonl(data))

    def __repr__(self) -> str:
        return f"JsonLinesAuditLog({str(self.path)!r}, keyed={self.keyed})"

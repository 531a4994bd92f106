"""Verification that reports every fault, not only the first.

Theory of operation. :func:`check_records` reads the records in storage order
and keeps checking after a fault, re-synchronizing on what it found so that
one edit is reported once, not once per later record:

* an edited record (``hash_mismatch``) still links its successor through its
  *stored* hash, so checking goes on from it;
* a jump in sequence numbers is one ``missing`` fault for the whole gap (the
  successor's ``prev`` then necessarily differs, and is not reported again);
* a record found again, or too early, is ``out_of_order`` and does not move the
  chain forward;
* after an unreadable record the next record's ``prev`` cannot be checked (the
  unreadable record's hash is unknown), so that one link is taken on trust.

The *intact prefix* is every record up to the first fault: ``intact_through``
is its last sequence number, and ``intact_head`` its head, which an auditor can
save and compare later. With an Ed25519 public key, ``signed_through`` says up
to which record a valid checkpoint signature vouches for the chain (see
:mod:`macnss_auth.audit.signing`).

:func:`macnss_auth.audit.verify_records` is this check followed by raising the
first fault, so both always agree on it.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from macnss_auth.audit.chain import (
    EMPTY_HEAD,
    ChainHead,
    ChainKey,
    Stored,
    coerce_key,
    record_hash,
)
from macnss_auth.audit.errors import AuditChainBroken, AuditFormatError, AuditKeyError, ChainFault
from macnss_auth.audit.record import canonical_json, parse_record
from macnss_auth.audit.signing import AuditPublicKey, checkpoint_fault
from macnss_auth.secret import Secret

__all__ = ["ChainReport", "Fault", "RecordCheck", "check_records"]


@attrs.frozen
class Fault:
    """One thing wrong with a log.

    Attributes:
        kind: a :class:`ChainFault`.
        sequence: the sequence number concerned (the one expected at that place;
            for ``missing``, the first absent one).
        position: the 1-based line or row in storage order, when the fault is
            tied to a stored record.
        field: the record field at fault when it is known (``seq``, ``prev``,
            ``kid``, ``details.signature``, or the field that made a record
            unreadable); ``None`` for an edited content, which a hash cannot
            localize.
        detail: a sentence for people; it names fields and numbers, never values.
    """

    kind: ChainFault
    sequence: int
    position: int | None
    field: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``kind`` as its stable string."""
        return {
            "kind": self.kind.value,
            "sequence": self.sequence,
            "position": self.position,
            "field": self.field,
            "detail": self.detail,
        }

    def error(self) -> AuditChainBroken:
        """This fault as the exception :func:`~macnss_auth.audit.verify_records` raises."""
        return AuditChainBroken(
            self.detail, sequence=self.sequence, reason=self.kind, position=self.position
        )


@attrs.frozen
class RecordCheck:
    """What verification says about one stored record.

    Attributes:
        position: its 1-based line or row.
        sequence: its ``seq`` (``None`` when unreadable).
        fault: the first fault found on it, or ``None``.
    """

    position: int
    sequence: int | None
    fault: ChainFault | None


@attrs.frozen
class ChainReport:
    """Everything verification found, fault after fault.

    Attributes:
        count: records read (readable or not).
        faults: every fault, in storage order (a cut-off tail last).
        records: one :class:`RecordCheck` per stored record, in storage order.
        intact_through: the last sequence number of the intact prefix (0 if the
            first record is already at fault).
        intact_head: the head of the intact prefix.
        head: the last readable record's head, as stored (unverified if faulty).
        keyed: whether MACs were checked under a chain key.
        signed_through: the highest sequence number a valid checkpoint signature
            vouches for, with no fault before it (0: none; ``None``: no public key given).
        checkpoints: checkpoint records whose signature verified.
    """

    count: int
    faults: tuple[Fault, ...]
    records: tuple[RecordCheck, ...]
    intact_through: int
    intact_head: ChainHead
    head: ChainHead
    keyed: bool
    signed_through: int | None = None
    checkpoints: int = 0

    @property
    def ok(self) -> bool:
        """True when no fault was found."""
        return not self.faults

    def raise_first(self) -> None:
        """Raise the first fault as :class:`AuditChainBroken`; do nothing if intact.

        Raises:
            AuditChainBroken: the first fault.
        """
        if self.faults:
            raise self.faults[0].error()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: what ``macnss-auth audit verify --json`` prints."""
        return {
            "ok": self.ok,
            "count": self.count,
            "keyed": self.keyed,
            "intact_through": self.intact_through,
            "intact_head": str(self.intact_head),
            "head": str(self.head),
            "signed_through": self.signed_through,
            "checkpoints": self.checkpoints,
            "faults": [fault.as_dict() for fault in self.faults],
        }


class _Checker:
    """The state of one pass over the records."""

    def __init__(
        self,
        key: ChainKey | None,
        public_key: AuditPublicKey | None,
        expected_head: ChainHead | None,
    ) -> None:
        self.key = key
        self.public_key = public_key
        self.expected_head = expected_head
        self.faults: list[Fault] = []
        self.checks: list[RecordCheck] = []
        self.previous: ChainHead | None = EMPTY_HEAD  # None: the last record was unreadable
        self.expected = 1
        self.intact: ChainHead | None = None  # set at the first fault
        self.last_good = EMPTY_HEAD
        self.head = EMPTY_HEAD
        self.signed_through = 0
        self.checkpoints = 0

    def fault(
        self,
        kind: ChainFault,
        detail: str,
        *,
        sequence: int,
        position: int | None,
        field: str | None = None,
    ) -> Fault:
        found = Fault(kind, sequence, position, field, detail)
        self.faults.append(found)
        if self.intact is None:
            self.intact = self.last_good
        return found

    def record(
        self, position: int, item: dict[str, Any], later: Mapping[int, int], index: int
    ) -> None:
        expected = self.expected
        seq: int = item["seq"]
        kid = item["kid"]
        found: list[Fault] = []  # this record's faults, in the order checked

        def fault(
            kind: ChainFault, detail: str, *, field: str | None = None, sequence: int = expected
        ) -> None:
            made = self.fault(kind, detail, sequence=sequence, position=position, field=field)
            found.append(made)

        if self.key is None and kid is not None:
            raise AuditKeyError("this log is keyed: give the chain key to verify it")
        if self.key is not None:
            if kid is None:
                fault(
                    ChainFault.NOT_KEYED,
                    "the record has no MAC although the log is verified with a key",
                    field="kid",
                )
            elif not hmac.compare_digest(str(kid), self.key.kid):
                fault(
                    ChainFault.WRONG_KEY,
                    f"the record was chained under key {kid}, not the given key {self.key.kid}",
                    field="kid",
                )
        # Without the right key the MAC cannot be checked.
        mac_checkable = not found
        stored_hash = str(item["hash"])
        body = {name: value for name, value in item.items() if name != "hash"}
        if mac_checkable and not hmac.compare_digest(record_hash(body, self.key), stored_hash):
            fault(
                ChainFault.HASH_MISMATCH,
                "the record's content does not match its hash: it was edited"
                + (" or forged" if self.key is not None else ""),
            )
        link_checked = True
        if seq != expected:
            moved = later.get(expected, -1) > index
            if seq < expected:
                message = f"found record {seq} again after record {expected - 1}"
            elif moved:
                message = f"found record {seq} where record {expected} belongs"
            else:
                gap = (
                    f"records {expected} to {seq - 1} are"
                    if seq - 1 > expected
                    else (f"record {expected} is")
                )
                message = f"{gap} absent (next present is {seq})"
            kind = ChainFault.OUT_OF_ORDER if seq < expected or moved else ChainFault.MISSING
            fault(kind, message, field="seq")
            link_checked = False
            if seq < expected:
                # A duplicate or a record from the past: the chain goes on from where it was.
                self.checks.append(RecordCheck(position, seq, found[0].kind))
                return
        if (
            link_checked
            and self.previous is not None
            and not hmac.compare_digest(str(item["prev"]), self.previous.hash)
        ):
            fault(
                ChainFault.PREV_MISMATCH,
                "the record does not link to the hash of the record before it",
                field="prev",
            )
        here = ChainHead(seq, stored_hash)
        if self.public_key is not None and item["action"] == "checkpoint":
            problem = checkpoint_fault(item, self.public_key)
            if problem is None:
                self.checkpoints += 1
                if not found and self.intact is None:
                    self.signed_through = seq - 1
            else:
                fault(ChainFault.BAD_SIGNATURE, problem[1], field=problem[0], sequence=seq)
        wanted = self.expected_head
        if (
            wanted is not None
            and seq == wanted.sequence
            and not hmac.compare_digest(stored_hash, wanted.hash.lower())
        ):
            fault(
                ChainFault.HEAD_MISMATCH,
                "the record's hash differs from the saved head: the history was rewritten",
                field="hash",
                sequence=seq,
            )
        self.checks.append(RecordCheck(position, seq, found[0].kind if found else None))
        if not found and self.intact is None:
            self.last_good = here
        self.previous = here
        self.head = here
        self.expected = seq + 1

    def unreadable(self, position: int, error: AuditFormatError) -> None:
        found = self.fault(
            ChainFault.MALFORMED,
            f"unreadable record: {error}",
            sequence=self.expected,
            position=position,
            field=error.field,
        )
        self.checks.append(RecordCheck(position, None, found.kind))
        self.previous = None
        self.expected += 1

    def finish(self) -> None:
        wanted = self.expected_head
        if wanted is None:
            return
        last = self.expected - 1
        if wanted.sequence > last:
            self.fault(
                ChainFault.TRUNCATED,
                f"the log ends at record {last} but record {wanted.sequence} was saved "
                "as the head: the tail was cut off",
                sequence=last + 1,
                position=None,
            )
        elif wanted.sequence == 0 and not hmac.compare_digest(EMPTY_HEAD.hash, wanted.hash.lower()):
            self.fault(
                ChainFault.HEAD_MISMATCH,
                "the saved head is not the empty log's",
                sequence=0,
                position=None,
                field="hash",
            )


def check_records(
    records: Iterable[Mapping[str, Any] | Stored],
    *,
    key: bytes | Secret | ChainKey | None = None,
    public_key: AuditPublicKey | None = None,
    expected_head: ChainHead | None = None,
) -> ChainReport:
    """Verify a chain of records given in storage order and report every fault.

    ``records`` are records (mappings), or (position, record-or-format-error)
    pairs as the file readers produce them. Returns a report whatever the
    faults; only a usage error raises.

    Raises:
        AuditKeyError: the log is keyed and no key was given (there is nothing
            to check the MACs against).
    """
    chain_key = coerce_key(key)
    pairs: list[tuple[int, dict[str, Any] | AuditFormatError]] = []
    for index, entry in enumerate(records, start=1):
        position, raw = entry if isinstance(entry, tuple) else (index, entry)
        parsed: dict[str, Any] | AuditFormatError = raw if isinstance(raw, AuditFormatError) else {}
        if not isinstance(raw, AuditFormatError):
            try:
                parsed = parse_record(dict(raw), position=position)
                # A record handed over as a mapping (not read by decode_record) may hold
                # what no JSON file can: lone surrogates, which its hash cannot be taken of.
                canonical_json(parsed)
            except AuditFormatError as exc:
                parsed = exc
            except ValueError:
                parsed = AuditFormatError(
                    "record cannot be serialized canonically", field="record", position=position
                )
        pairs.append((position, parsed))
    # Where each sequence number first sits, to tell a reorder from a deletion.
    later: dict[int, int] = {}
    for index, (_, stored) in enumerate(pairs):
        if not isinstance(stored, AuditFormatError):
            later.setdefault(stored["seq"], index)
    checker = _Checker(chain_key, public_key, expected_head)
    for index, (position, item) in enumerate(pairs):
        if isinstance(item, AuditFormatError):
            checker.unreadable(position, item)
        else:
            checker.record(position, item, later, index)
    checker.finish()
    intact = checker.intact if checker.intact is not None else checker.last_good
    return ChainReport(
        count=len(pairs),
        faults=tuple(checker.faults),
        records=tuple(checker.checks),
        intact_through=intact.sequence,
        intact_head=intact,
        head=checker.head,
        keyed=chain_key is not None,
        signed_through=None if public_key is None else checker.signed_through,
        checkpoints=checker.checkpoints,
    )

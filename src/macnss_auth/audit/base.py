"""What every chained audit sink shares: screening, pseudonymizing, sealing, verifying.

A sink implements two things: :meth:`ChainedAuditLog._append`, which under
the sink's own lock reads the current head, seals the next record and writes
it (one atomic step, so two writers never take the same sequence number or
chain off the same predecessor), and :meth:`ChainedAuditLog.stored`, which
yields what is stored, in storage order.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypedDict

from macnss_auth.audit.chain import (
    EMPTY_HEAD,
    ChainHead,
    ChainKey,
    Stored,
    VerifiedChain,
    coerce_key,
    seal,
    verify_records,
)
from macnss_auth.audit.errors import AuditEventRejected, AuditFormatError, AuditKeyError
from macnss_auth.audit.events import AuditAction, AuditEvent, Outcome
from macnss_auth.audit.record import event_body
from macnss_auth.audit.screen import DEFAULT_SCREEN, SecretScreen
from macnss_auth.audit.signing import (
    CHECKPOINT_METHOD,
    AuditPublicKey,
    AuditSigner,
    checkpoint_details,
)
from macnss_auth.audit.verify import ChainReport, check_records
from macnss_auth.secret import Secret

__all__ = ["ChainSettings", "ChainedAuditLog", "Sealer", "refuse_checkpoint"]

Sealer = Callable[["Mapping[str, Any] | None"], dict[str, Any]]
"""Given the last stored record (``None`` for an empty log), the sealed record that follows it."""


class ChainSettings(TypedDict, total=False):
    """The keyword-only settings every chained sink takes (see :class:`ChainedAuditLog`).

    Sinks take them as ``**settings`` and pass them on, so the list and its
    defaults live in one place.
    """

    chain_key: bytes | Secret | ChainKey | None
    pseudonym_key: bytes | Secret | None
    screen: SecretScreen | None
    signer: AuditSigner | None
    checkpoint_every: int | None


def refuse_checkpoint(event: AuditEvent) -> None:
    """Refuse a caller's event posing as a checkpoint: only the log writes those.

    Raises:
        AuditEventRejected: the event's action is ``checkpoint``.
    """
    if event.action == AuditAction.CHECKPOINT:
        raise AuditEventRejected("checkpoints are written by the log itself", field="action")


class ChainedAuditLog(abc.ABC):
    """An append-only, hash-chained audit log.

    Args:
        chain_key: HMAC key of the chain (at least 16 bytes). Without it the
            chain uses plain SHA-256, which detects accidents and edits by
            people who do not recompute hashes, but not a determined writer.
        pseudonym_key: HMAC key for subjects; without it subjects are stored as given.
        screen: refuses secret-looking events (:class:`SecretScreen`); ``None``
            turns screening off (not recommended).
        signer: an Ed25519 key (:class:`AuditSigner`) that signs checkpoints, so that
            a verifier holding only its public key can check the log (see
            :mod:`macnss_auth.audit.signing`).
        checkpoint_every: with a signer, write a checkpoint after every this many
            records (``None``: only when :meth:`checkpoint` is called). With several
            writers on one log, the period holds on average, not exactly.
    """

    def __init__(
        self,
        *,
        chain_key: bytes | Secret | ChainKey | None = None,
        pseudonym_key: bytes | Secret | None = None,
        screen: SecretScreen | None = DEFAULT_SCREEN,
        signer: AuditSigner | None = None,
        checkpoint_every: int | None = None,
    ) -> None:
        self._chain_key = coerce_key(chain_key)
        if pseudonym_key is not None and not isinstance(pseudonym_key, Secret):
            pseudonym_key = Secret(pseudonym_key)
        self._pseudonym_key = pseudonym_key
        self._screen = screen
        if checkpoint_every is not None and (signer is None or checkpoint_every < 1):
            raise AuditKeyError("checkpoint_every needs a signer and a positive count")
        self._signer = signer
        self._checkpoint_every = checkpoint_every

    def _sealer(self, body: Mapping[str, Any]) -> Sealer:
        key = self._chain_key

        def sealer(last: Mapping[str, Any] | None) -> dict[str, Any]:
            if last is None:
                return seal(body, previous=EMPTY_HEAD, key=key)
            ours = None if key is None else key.kid
            if last["kid"] != ours:
                # Appending keyed records to an unkeyed chain (or under another key)
                # would leave a log that no single key verifies.
                theirs = "unkeyed" if last["kid"] is None else f"keyed with kid {last['kid']}"
                mine = "no key" if ours is None else f"the key with kid {ours}"
                raise AuditKeyError(f"this log is {theirs}; this writer has {mine}")
            return seal(body, previous=ChainHead(last["seq"], last["hash"]), key=key)

        return sealer

    def _due(self, sequence: int) -> bool:
        # Every (every + 1)-th slot is a checkpoint: N records, a checkpoint, N records...
        every = self._checkpoint_every
        return every is not None and sequence % (every + 1) == every

    def checkpoint(self, *, at: dt.datetime) -> str:
        """Append a checkpoint signing the chain so far; return its id.

        Call it when a writer stops, or on a schedule, so that the last records
        are covered too (``checkpoint_every`` covers the rest).

        Raises:
            AuditKeyError: this log has no signer, or is chained under another key.
            AuditEventRejected: ``at`` is not timezone-aware.
        """
        signer = self._signer
        if signer is None:
            raise AuditKeyError("this log has no signer: pass signer=AuditSigner(...)")
        event = AuditEvent(
            at=at, action=AuditAction.CHECKPOINT, method=CHECKPOINT_METHOD, outcome=Outcome.INFO
        )
        template = event_body(event, pseudonym_key=None)

        def sealer(last: Mapping[str, Any] | None) -> dict[str, Any]:
            # The signature covers the head this record follows, known only under the lock.
            previous = EMPTY_HEAD if last is None else ChainHead(last["seq"], last["hash"])
            details = checkpoint_details(signer, sequence=previous.sequence, digest=previous.hash)
            return self._sealer({**template, "details": details})(last)

        record = self._append(sealer, event)
        return str(record["seq"])

    @property
    def keyed(self) -> bool:
        """Whether records are sealed with an HMAC key."""
        return self._chain_key is not None

    def record(self, event: AuditEvent) -> str:
        """Append ``event`` and return its id: its sequence number, as text.

        Raises:
            AuditEventRejected: the event looks like it carries a secret, or is ill-formed.
            AuditFormatError: the stored log is unreadable at its end (run verify).
            AuditKeyError: the log is chained under another key (or none) than this writer's.
            StoreError: the sink could not write.
        """
        refuse_checkpoint(event)
        if self._screen is not None:
            self._screen.check(event)
        body = event_body(event, pseudonym_key=self._pseudonym_key)
        record = self._append(self._sealer(body), event)
        if self._due(record["seq"]):
            self.checkpoint(at=event.at)
        return str(record["seq"])

    @abc.abstractmethod
    def _append(self, sealer: Sealer, event: AuditEvent) -> Mapping[str, Any]:
        """Atomically read the last record, seal the next with ``sealer``, store it, return it."""

    @abc.abstractmethod
    def stored(self) -> Iterator[Stored]:
        """Every stored record in storage order, as (position, record or format error)."""

    @abc.abstractmethod
    def head(self) -> ChainHead:
        """The last record's sequence and hash (``0:000...0`` when empty).

        Save it somewhere the log's writers cannot reach; pass it to
        :meth:`verify` later to detect a cut-off tail or a rewritten history.
        """

    def records(self) -> list[dict[str, Any]]:
        """Every record, in storage order.

        Raises:
            AuditFormatError: a stored record is unreadable.
        """
        out: list[dict[str, Any]] = []
        for _, record in self.stored():
            if isinstance(record, AuditFormatError):
                raise record
            out.append(dict(record))
        return out

    def verify(self, *, expected_head: ChainHead | None = None) -> VerifiedChain:
        """Verify the whole log with this log's own key.

        Raises:
            AuditChainBroken: at the first bad record.
            AuditKeyError: the stored records are keyed but this log has no key.
        """
        return verify_records(self.stored(), key=self._chain_key, expected_head=expected_head)

    def check(
        self,
        *,
        public_key: AuditPublicKey | None = None,
        expected_head: ChainHead | None = None,
    ) -> ChainReport:
        """Every fault of the whole log, with this log's own key (and signer's public key).

        Raises:
            AuditKeyError: the stored records are keyed but this log has no key.
        """
        if public_key is None and self._signer is not None:
            public_key = self._signer.public_key
        return check_records(
            self.stored(), key=self._chain_key, public_key=public_key, expected_head=expected_head
        )

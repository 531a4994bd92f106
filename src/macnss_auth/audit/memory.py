"""An in-memory audit log, for tests and notebooks. It chains like the durable sinks."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

import attrs

from macnss_auth.audit.base import ChainedAuditLog, ChainSettings, Sealer, refuse_checkpoint
from macnss_auth.audit.chain import EMPTY_HEAD, ChainHead, Stored, seal
from macnss_auth.audit.events import AuditAction, AuditEvent, Outcome
from macnss_auth.audit.record import check_event, event_body

if TYPE_CHECKING:
    # Only for the type checker (PEP 692 on Python 3.10): nothing imports it at run time.
    from typing_extensions import Unpack

__all__ = ["MemoryAuditLog"]


# An event as the log keeps it: (at, action, method, outcome, subject, reason, channel,
# client, details). Text and times only (enum members by value, details as a plain dict
# of text), so that the garbage collector stops tracking it: a log of a million events
# then costs the collector nothing, where a million AuditEvent objects (and their
# details' mapping proxies) made every full collection walk them all.
_Packed = tuple[Any, ...]


def _pack(event: AuditEvent) -> _Packed:
    # Callers may be untyped: an action or outcome that is not our enum is kept as given.
    action: object = event.action
    outcome: object = event.outcome
    return (
        event.at,
        action.value if isinstance(action, AuditAction) else action,
        event.method,
        outcome.value if isinstance(outcome, Outcome) else outcome,
        event.subject,
        event.reason,
        event.channel,
        event.client,
        dict(event.details),
    )


def _unpack(packed: _Packed) -> AuditEvent:
    at, action, method, outcome, subject, reason, channel, client, details = packed
    return AuditEvent(
        at=at,
        action=cast(AuditAction, _ACTIONS.get(action, action)),
        method=method,
        outcome=cast(Outcome, _OUTCOMES.get(outcome, outcome)),
        subject=subject,
        reason=reason,
        channel=channel,
        client=client,
        details=details,
    )


_ACTIONS: dict[object, AuditAction] = {member.value: member for member in AuditAction}
_OUTCOMES: dict[object, Outcome] = {member.value: member for member in Outcome}


class MemoryAuditLog(ChainedAuditLog):
    """Keeps events and their chained records in lists, in order; ids are sequence numbers.

    ``events`` gives back the :class:`AuditEvent` objects as recorded (with
    the real subject); ``records()`` gives the chained records as a durable
    sink would store them (pseudonymized, if a pseudonym key is set).
    """

    def __init__(self, **settings: Unpack[ChainSettings]) -> None:
        super().__init__(**settings)
        self._lock = threading.Lock()
        self._events: list[_Packed] = []
        self._records: list[dict[str, Any]] = []

    def record(self, event: AuditEvent) -> str:
        """Append ``event`` and return its id: its sequence number, as text.

        The event is screened and checked now, so a bad one is refused here as
        in every sink; building and sealing its record wait until someone reads
        the chain (``records``, ``stored``, ``head``, ``verify``): in memory nobody
        can see or edit a record before that, the event is immutable, and the
        records built later are exactly those an eager sink would have written.

        Raises:
            AuditEventRejected: the event looks like it carries a secret, or is ill-formed.
        """
        refuse_checkpoint(event)
        screen = self._screen
        quick = screen is not None and screen.passes_quickly(event)
        if screen is not None and not quick:
            screen.check(event)
        check_event(event, details_checked=quick)
        packed = _pack(event)
        with self._lock:
            events = self._events
            events.append(packed)
            sequence = len(events)
        if self._checkpoint_every is not None and self._due(sequence):
            self.checkpoint(at=event.at)
        return str(sequence)

    def _append(self, sealer: Sealer, event: AuditEvent) -> Mapping[str, Any]:
        # Checkpoints come through here: they sign the head, so what is pending is sealed first.
        with self._lock:
            self._seal_pending_locked()
            sealed = sealer(self._records[-1] if self._records else None)
            self._events.append(_pack(attrs.evolve(event, details=sealed["details"])))
            self._records.append(sealed)
            return sealed

    def _seal_pending_locked(self) -> None:
        key = self._chain_key
        records = self._records
        previous = ChainHead(records[-1]["seq"], records[-1]["hash"]) if records else EMPTY_HEAD
        for packed in self._events[len(records) :]:
            body = event_body(_unpack(packed), pseudonym_key=self._pseudonym_key)
            sealed = seal(body, previous=previous, key=key)
            records.append(sealed)
            previous = ChainHead(sealed["seq"], sealed["hash"])

    def _head_locked(self) -> ChainHead:
        self._seal_pending_locked()
        if not self._records:
            return EMPTY_HEAD
        last = self._records[-1]
        return ChainHead(last["seq"], last["hash"])

    def head(self) -> ChainHead:
        with self._lock:
            return self._head_locked()

    def stored(self) -> Iterator[Stored]:
        with self._lock:
            self._seal_pending_locked()
            # Deep copies: a caller editing what it got must not edit the log.
            snapshot = copy.deepcopy(self._records)
        return iter(list(enumerate(snapshot, start=1)))

    @property
    def events(self) -> tuple[AuditEvent, ...]:
        """Every event so far."""
        with self._lock:
            packed = list(self._events)
        return tuple(_unpack(event) for event in packed)

"""The state-store contract that every strategy relies on.

A store keeps everything stateful: enrollments (secrets sealed at rest),
monotonic counters (last accepted TOTP step, next HOTP counter), pending
challenges, failure counters for throttling and lockouts, rate-limit windows,
and sets of single-use tokens (recovery codes).

**Atomicity.** Each method that decides an outcome is one atomic operation in
the backend, whatever the number of threads, processes or service instances:

* :meth:`Store.advance` -- compare-and-set on a monotonic integer: it stores
  the value only if it is greater than the current one. Two verifiers racing
  with the same TOTP step both call ``advance(key, step)``; exactly one gets
  ``True``.
* :meth:`Store.create_challenge` -- insert-unique by id; in the same step it
  retires every other live challenge in the same ``slot`` (one active code per
  subject and channel).
* :meth:`Store.count_attempt` -- increment-and-return on a challenge.
* :meth:`Store.consume_challenge` -- mark used only if unused and unexpired;
  exactly one caller gets the record back.
* :meth:`Store.hit` -- increment a windowed counter and return its new state.
* :meth:`Store.consume_token` -- delete-if-present; exactly one caller wins.

Reads (``get_*``, ``peek``, ``current``) are advisory: never decide on a read
followed by a write; decide on the return value of the atomic call.

**Shared semantics** (checked for every backend by ``macnss_auth.testing.store_contract``):

* Times are timezone-aware datetimes from the caller's clock, never the
  backend's; persistent stores keep them to the microsecond.
* A challenge is expired from ``expires_at`` on (``now >= expires_at``).
* A windowed counter restarts at 1 when ``now >= first_at + window``, with the
  ``window`` of the current call; ``window`` must be positive and finite
  (``ConfigurationError`` otherwise).
* Monotonic counters are signed 64-bit integers.
* Keys, ids, subjects, methods, slots and hints are exact text (no
  normalization) without NUL or lone surrogates, which PostgreSQL or UTF-8
  cannot hold. Every backend treats other text alike: a lookup finds nothing
  (``None``, ``False``, ``0``) and a write raises
  :class:`~macnss_auth.errors.MalformedInput`. Callers that build keys from
  outside input encode it first (see :mod:`macnss_auth.throttle`).
* ``purge`` removes expired challenges and windows that have ended; it never
  touches monotonic counters, tokens or enrollments.
* ``reseal`` moves sealed secrets to the keyring's primary key by
  compare-and-set on each record's sealed value: it never undoes a concurrent
  write (a re-enrollment, a confirmation, a deletion).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import attrs

from macnss_auth.authenticator import Challenge
from macnss_auth.secret import Secret

__all__ = [
    "ChallengeRecord",
    "CounterState",
    "Enrollment",
    "Store",
    "enrollment_context",
]

Param = str | int


def _frozen_params(value: Mapping[str, Param]) -> Mapping[str, Param]:
    return MappingProxyType(dict(value))


@attrs.frozen
class Enrollment:
    """A subject's registered authenticator for one method.

    Attributes:
        subject: who owns it.
        method: the method name (``"totp"``, ``"sms"``...).
        secret: the shared secret (TOTP seed...); sealed at rest, never in repr.
        params: public parameters (algorithm, digits, a masked destination...).
        confirmed: False until the person proved possession once.
        created_at: when it was created.
        expires_at: when an unconfirmed enrollment stops being usable.
    """

    subject: str
    method: str
    secret: Secret = attrs.field(repr=False)
    params: Mapping[str, Param] = attrs.field(factory=dict, converter=_frozen_params)
    confirmed: bool = False
    created_at: dt.datetime = attrs.field(kw_only=True)
    expires_at: dt.datetime | None = attrs.field(default=None, kw_only=True)

    def is_usable(self, now: dt.datetime) -> bool:
        """Confirmed, or pending and not yet expired."""
        return self.confirmed or self.expires_at is None or now < self.expires_at


@attrs.frozen
class ChallengeRecord:
    """The server-side half of a :class:`Challenge`.

    Attributes:
        challenge: the public part.
        slot: at most one live challenge per slot (e.g. ``"sms:alice"``).
        verifier: what the response is checked against (a keyed hash of the
            code, a nonce); secret-ish, never in repr.
        max_attempts: wrong responses allowed before the challenge burns.
        attempts: wrong responses so far.
        consumed: used or retired.
    """

    challenge: Challenge
    slot: str
    verifier: bytes = attrs.field(repr=False, default=b"")
    max_attempts: int = 5
    attempts: int = 0
    consumed: bool = False

    @property
    def id(self) -> str:
        """The challenge id."""
        return self.challenge.id


@attrs.frozen
class CounterState:
    """A windowed counter's state (failures, sends...).

    Attributes:
        count: events in the current window.
        first_at: the first event of the window.
        last_at: the latest event.
    """

    count: int
    first_at: dt.datetime
    last_at: dt.datetime


@runtime_checkable
class Store(Protocol):
    """Everything stateful, behind atomic operations. See the module docstring."""

    # Enrollments -----------------------------------------------------------
    def put_enrollment(self, enrollment: Enrollment) -> None:
        """Create or replace the enrollment for (subject, method)."""
        ...

    def get_enrollment(self, subject: str, method: str) -> Enrollment | None:
        """The enrollment, or None.

        Raises:
            SecretKeyError: the sealed secret does not open under the keyring.
        """
        ...

    def delete_enrollment(self, subject: str, method: str) -> bool:
        """Remove it; True if there was one."""
        ...

    def reseal(self) -> int:
        """Re-seal every secret not sealed under the keyring's primary key; return how many.

        Run after making a new key the primary on every instance; once it
        returns, the old key can leave the ring. Idempotent (a second run
        finds nothing to do) and safe while other instances serve logins:
        each record is replaced only if its sealed value is still the one
        that was read (compare-and-set), so a record re-enrolled, confirmed
        or deleted meanwhile keeps that newer state and is not counted.
        Persistent stores work in batches, so neither the data nor a lock is
        held in one piece for the whole run. Only the sealed secret and its
        key id change; counters, challenges and every other field do not.

        Raises:
            SecretKeyError: a secret does not open under the ring (its key id
                is missing, or the key or record is wrong); the message names
                the key id, never the secret. Records re-sealed before it stay
                re-sealed (each is valid under the primary); the rest are
                untouched, and a run after fixing the ring goes on from there.
        """
        ...

    # Monotonic counters ------------------------------------------------------
    def advance(self, key: str, value: int) -> bool:
        """Atomically set ``key`` to ``value`` iff absent or ``value`` > current."""
        ...

    def current(self, key: str) -> int | None:
        """The counter's value, or None if never set (advisory)."""
        ...

    def reset_counter(self, key: str) -> None:
        """Forget a monotonic counter (e.g. on re-enrollment)."""
        ...

    # Challenges --------------------------------------------------------------
    def create_challenge(self, record: ChallengeRecord) -> None:
        """Insert a new challenge and retire live ones in the same slot, atomically.

        Raises:
            StoreError: a challenge with this id exists already.
        """
        ...

    def get_challenge(self, challenge_id: str) -> ChallengeRecord | None:
        """The record, or None (advisory)."""
        ...

    def count_attempt(self, challenge_id: str) -> int | None:
        """Atomically add one wrong attempt; return the new count, None if unknown."""
        ...

    def consume_challenge(self, challenge_id: str, now: dt.datetime) -> ChallengeRecord | None:
        """Atomically mark used iff unused, unexpired and attempts remain.

        Returns the record as it was before consumption to exactly one caller.
        """
        ...

    # Windowed counters -------------------------------------------------------
    def hit(self, key: str, now: dt.datetime, window: float) -> CounterState:
        """Atomically count one event; a window older than ``window`` s restarts.

        Raises:
            ConfigurationError: ``window`` is not a positive, finite number.
        """
        ...

    def peek(self, key: str, now: dt.datetime, window: float) -> CounterState | None:
        """The counter if its window is still open (advisory)."""
        ...

    def clear(self, key: str) -> None:
        """Reset a windowed counter (e.g. failures after a success)."""
        ...

    # Single-use tokens -------------------------------------------------------
    def add_tokens(self, key: str, digests: Iterable[bytes]) -> None:
        """Replace the token set under ``key`` with ``digests``."""
        ...

    def consume_token(self, key: str, digest: bytes) -> bool:
        """Atomically remove one token; True to exactly one caller."""
        ...

    def count_tokens(self, key: str) -> int:
        """Tokens left under ``key``."""
        ...

    # Housekeeping ------------------------------------------------------------
    def purge(self, now: dt.datetime) -> int:
        """Delete expired challenges and stale counters; return how many."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


def enrollment_context(subject: str, method: str) -> bytes:
    """Associated data that binds a sealed secret to its enrollment record."""
    return b"macnss-auth/enrollment\x00" + method.encode() + b"\x00" + subject.encode()

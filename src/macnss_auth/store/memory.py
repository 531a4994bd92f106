"""A process-local, thread-safe store: for tests, notebooks and single-process demos.

One lock serialises every operation, which makes each of them trivially
atomic. State is lost when the process ends. Secrets are kept sealed under a
keyring when one is given, so swapping to a persistent store changes nothing
about how secrets are handled.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import threading
from collections.abc import Container, Iterable

import attrs

from macnss_auth.errors import ConfigurationError, StoreError
from macnss_auth.secret import Secret
from macnss_auth.store._codec import absent_enrollment as _absent_enrollment
from macnss_auth.store._codec import require_storable as _require_storable
from macnss_auth.store._codec import require_storable_challenge as _require_storable_challenge
from macnss_auth.store._codec import storable as _storable
from macnss_auth.store.base import (
    ChallengeRecord,
    CounterState,
    Enrollment,
    enrollment_context,
)
from macnss_auth.store.keyring import Keyring

__all__ = ["MemoryStore"]


@functools.lru_cache(maxsize=64)
def _window(window: float) -> dt.timedelta:
    # A service uses a handful of windows (its throttle and rate-limit policies),
    # on every attempt: convert each once. A refused value raises and is not cached.
    if not math.isfinite(window) or window <= 0:
        raise ConfigurationError("a counter window must be a positive number of seconds")
    return dt.timedelta(seconds=window)


def _known(key: object, table: Container[object]) -> bool:
    """``key`` is a key of ``table`` already, so it passed the storable check when written.

    Checked once per key rather than on every call: the counters of a
    verification are the same few keys each time.
    """
    return type(key) is str and key in table


class MemoryStore:
    """Everything in dictionaries, behind one lock."""

    def __init__(self, *, keyring: Keyring | None = None) -> None:
        self._lock = threading.Lock()
        self._keyring = keyring
        self._enrollments: dict[tuple[str, str], tuple[Enrollment, bytes]] = {}
        self._monotonic: dict[str, int] = {}
        self._challenges: dict[str, ChallengeRecord] = {}
        self._live_by_slot: dict[str, str] = {}
        # (count, first_at, last_at, ends_at): numbers and times only, so the garbage
        # collector stops tracking an entry (every verification leaves one behind,
        # until purge, and full collections walk what they track).
        self._windows: dict[str, tuple[int, dt.datetime, dt.datetime, dt.datetime]] = {}
        self._tokens: dict[str, set[bytes]] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(keyring={self._keyring!r})"

    # Enrollments -----------------------------------------------------------
    def put_enrollment(self, enrollment: Enrollment) -> None:
        _require_storable(enrollment.subject, enrollment.method)
        context = enrollment_context(enrollment.subject, enrollment.method)
        raw = enrollment.secret.reveal()
        sealed = self._keyring.seal(raw, context=context) if self._keyring else raw
        stripped = attrs.evolve(enrollment, secret=Secret(b""))
        with self._lock:
            self._enrollments[(enrollment.subject, enrollment.method)] = (stripped, sealed)

    def get_enrollment(self, subject: str, method: str) -> Enrollment | None:
        # Text no backend can store was never written: the lookup finds nothing.
        # (Skipping the check costs nothing else: such text cannot be a key here.)
        if (type(subject) is not str or type(method) is not str) and not _storable(subject, method):
            return None
        with self._lock:
            entry = self._enrollments.get((subject, method))
        if entry is None:
            if self._keyring is not None:
                _absent_enrollment(self._keyring)  # a miss costs what a hit costs
            return None
        stripped, sealed = entry
        raw = (
            self._keyring.open(sealed, context=enrollment_context(subject, method))
            if self._keyring
            else sealed
        )
        # Built directly rather than with attrs.evolve, which introspects the
        # class on every call: this is on every verification's path.
        return Enrollment(
            subject=stripped.subject,
            method=stripped.method,
            secret=Secret(raw),
            params=stripped.params,
            confirmed=stripped.confirmed,
            created_at=stripped.created_at,
            expires_at=stripped.expires_at,
        )

    def delete_enrollment(self, subject: str, method: str) -> bool:
        if not _storable(subject, method):
            return False
        with self._lock:
            return self._enrollments.pop((subject, method), None) is not None

    def reseal(self) -> int:
        """Re-seal every secret not under the primary key; return how many.

        The sealing runs outside the lock; each entry is replaced only if it
        is still the one that was read, so a concurrent re-enrollment or
        deletion wins. Without a keyring nothing is sealed: 0.

        Raises:
            SecretKeyError: a secret does not open under the keyring (see
                :meth:`Store.reseal <macnss_auth.store.base.Store.reseal>`).
        """
        keyring = self._keyring
        if keyring is None:
            return 0
        primary = keyring.primary
        with self._lock:
            entries = list(self._enrollments.items())
        done = 0
        for key, entry in entries:
            stripped, sealed = entry
            if keyring.key_id_of(sealed) == primary:
                continue
            fresh = keyring.reseal(sealed, context=enrollment_context(*key))
            with self._lock:
                # Identity, not equality: a put_enrollment made a new tuple.
                if self._enrollments.get(key) is entry:
                    self._enrollments[key] = (stripped, fresh)
                    done += 1
        return done

    # Monotonic counters ------------------------------------------------------
    def advance(self, key: str, value: int) -> bool:
        if not _known(key, self._monotonic):
            _require_storable(key)
        with self._lock:
            current = self._monotonic.get(key)
            if current is not None and value <= current:
                return False
            self._monotonic[key] = value
            return True

    def current(self, key: str) -> int | None:
        if type(key) is not str and not _storable(key):
            return None
        with self._lock:
            return self._monotonic.get(key)

    def reset_counter(self, key: str) -> None:
        if not _storable(key):
            return
        with self._lock:
            self._monotonic.pop(key, None)

    # Challenges --------------------------------------------------------------
    def create_challenge(self, record: ChallengeRecord) -> None:
        _require_storable_challenge(record)
        with self._lock:
            if record.id in self._challenges:
                raise StoreError("a challenge with this id exists already")
            # At most one live challenge per slot, indexed so creation stays O(1).
            retired = self._live_by_slot.pop(record.slot, None)
            if retired is not None:
                other = self._challenges[retired]
                self._challenges[retired] = attrs.evolve(other, consumed=True)
            self._challenges[record.id] = record
            if not record.consumed:
                self._live_by_slot[record.slot] = record.id

    def get_challenge(self, challenge_id: str) -> ChallengeRecord | None:
        if not _storable(challenge_id):
            return None
        with self._lock:
            return self._challenges.get(challenge_id)

    def count_attempt(self, challenge_id: str) -> int | None:
        if not _storable(challenge_id):
            return None
        with self._lock:
            record = self._challenges.get(challenge_id)
            if record is None:
                return None
            record = attrs.evolve(record, attempts=record.attempts + 1)
            self._challenges[challenge_id] = record
            return record.attempts

    def consume_challenge(self, challenge_id: str, now: dt.datetime) -> ChallengeRecord | None:
        if not _storable(challenge_id):
            return None
        with self._lock:
            record = self._challenges.get(challenge_id)
            if (
                record is None
                or record.consumed
                or record.challenge.is_expired(now)
                or record.attempts >= record.max_attempts
            ):
                return None
            self._challenges[challenge_id] = attrs.evolve(record, consumed=True)
            self._unindex(record)
            return record

    def _unindex(self, record: ChallengeRecord) -> None:
        if self._live_by_slot.get(record.slot) == record.id:
            del self._live_by_slot[record.slot]

    # Windowed counters -------------------------------------------------------
    def hit(self, key: str, now: dt.datetime, window: float) -> CounterState:
        if not _known(key, self._windows):
            _require_storable(key)
        span = _window(window)
        with self._lock:
            entry = self._windows.get(key)
            # The window restarts once ``window`` seconds have passed since its
            # first event, measured with the caller's window (as peek does).
            if entry is None or now >= entry[1] + span:
                count, first_at = 1, now
            else:
                count, first_at = entry[0] + 1, entry[1]
            self._windows[key] = (count, first_at, now, first_at + span)
        return CounterState(count=count, first_at=first_at, last_at=now)

    def peek(self, key: str, now: dt.datetime, window: float) -> CounterState | None:
        if type(key) is not str and not _storable(key):
            return None
        span = _window(window)
        with self._lock:
            entry = self._windows.get(key)
        if entry is None or now >= entry[1] + span:
            return None
        return CounterState(count=entry[0], first_at=entry[1], last_at=entry[2])

    def clear(self, key: str) -> None:
        if not _storable(key):
            return
        with self._lock:
            self._windows.pop(key, None)

    # Single-use tokens -------------------------------------------------------
    def add_tokens(self, key: str, digests: Iterable[bytes]) -> None:
        _require_storable(key)
        fresh = set(digests)
        with self._lock:
            self._tokens[key] = fresh

    def consume_token(self, key: str, digest: bytes) -> bool:
        if not _storable(key):
            return False
        with self._lock:
            tokens = self._tokens.get(key)
            if tokens is None or digest not in tokens:
                return False
            tokens.discard(digest)
            return True

    def count_tokens(self, key: str) -> int:
        if not _storable(key):
            return 0
        with self._lock:
            return len(self._tokens.get(key, ()))

    # Housekeeping ------------------------------------------------------------
    def purge(self, now: dt.datetime) -> int:
        with self._lock:
            dead = [cid for cid, rec in self._challenges.items() if rec.challenge.is_expired(now)]
            for cid in dead:
                self._unindex(self._challenges.pop(cid))
            stale = [key for key, entry in self._windows.items() if now >= entry[3]]
            for key in stale:
                del self._windows[key]
            return len(dead) + len(stale)

    def close(self) -> None:
        """Nothing to release."""

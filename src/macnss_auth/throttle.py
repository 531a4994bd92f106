"""Growing delays and expiring lockouts after failed attempts.

Theory of operation: an attempt is *counted before it is checked*. ``acquire``
atomically adds one to the subject's counter in the store (``Store.hit``) and
refuses the attempt if the count is past the lockout threshold, so parallel
guesses from many clients can never get more than ``lockout_after`` codes
checked per window. A success calls ``release``, which clears the counters.
A caller that decides inside one serializable transaction (the SQLite commit
group) may instead ``admit`` the attempt and count it only if it fails: no
other attempt is decided in between, so the same attempts are refused, and a
success writes no counter.

Delays: the first ``free_failures`` failed attempts cost nothing, so the
attempt after them still goes through at once. From then on, after the n-th
counted attempt the next one must wait ``base_delay * 2**(n - free_failures - 1)``
seconds (capped at ``max_delay``); earlier tries are refused with
:class:`~macnss_auth.errors.VerificationThrottled` (``retry_after`` set) until
then. At ``lockout_after`` counted attempts the subject is locked out for
``lockout_duration`` seconds (:class:`~macnss_auth.errors.LockedOut`); a
correct code during a lockout is refused too.

What is exact and what is not: the lockout bound holds under any number of
parallel requests (it is decided on the atomic count), and exactly: the keys
are counted in a fixed order and an attempt refused on one is counted on none
after it, so a refused attempt never takes a place that a checked one needed,
and exactly ``lockout_after`` attempts are checked. The delays are checked
just before counting, so requests that arrive together may pass one delay
side by side; they still each use up one of the ``lockout_after`` attempts.

Lockouts cut both ways: an attacker who knows a subject id can lock the real
person out. Hence the defaults: lockouts *expire* (15 minutes), delays grow
before any lockout, and every attempt is counted both per subject and per
(subject, client) so that the per-client counter can be given a stricter
policy than the per-subject one by the service layer. With the defaults an
attacker gets at most 10 guesses per 15 minutes, i.e. under 1,000 per day:
against a 6-digit TOTP with a ±1-step window (3 valid codes in 10^6) that is
a success probability below 0.3 % per day, far inside NIST SP 800-63B §5.2.2
(at most 100 consecutive failures).

Keys: subjects and client ids come from outside and may hold anything (a
colon, a NUL, a lone surrogate, megabytes). Each goes into a store key
through :func:`key_part`, an injective encoding into a short ASCII token with
no separator characters, so the keys of two different (namespace, subject,
client) triples never collide and every backend can hold them (PostgreSQL
text refuses NUL; UTF-8 refuses lone surrogates).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import urllib.parse

import attrs

from macnss_auth.authenticator import ClientContext
from macnss_auth.clock import Clock
from macnss_auth.errors import (
    ConfigurationError,
    LockedOut,
    MalformedInput,
    VerificationThrottled,
)
from macnss_auth.store.base import CounterState, Store

__all__ = ["Admission", "Attempt", "FailureThrottle", "ThrottlePolicy", "key_part"]

# Longer encoded parts are replaced by a digest, so keys stay short enough for
# any index (PostgreSQL btree entries hold at most ~2.7 kB).
_MAX_PART = 96


def key_part(text: str, *, field: str = "key") -> str:
    """``text`` as one component of a store key: injective, ASCII, no separators.

    The UTF-8 bytes (lone surrogates kept with ``surrogatepass``, which stays
    injective) are percent-encoded with no safe characters, so the result
    holds only letters, digits, ``_.-~`` and ``%XX``: never ``:@#/!``, which
    callers use as separators. A result longer than 96 characters becomes
    ``!`` plus the SHA-256 of the bytes (``!`` never appears otherwise).

    >>> key_part("alice"), key_part("a:b\x00")
    ('alice', 'a%3Ab%00')

    Raises:
        MalformedInput: ``text`` is not text (``field`` names it).
    """
    if not isinstance(text, str):
        raise MalformedInput(f"the {field} must be text", field=field)
    raw = text.encode("utf-8", "surrogatepass")
    encoded = urllib.parse.quote_from_bytes(raw, safe="")
    if len(encoded) > _MAX_PART:
        return "!" + hashlib.sha256(raw).hexdigest()
    return encoded


@functools.lru_cache(maxsize=4096)
def _cached_part(text: str, field: str) -> str:
    # Subject and client ids repeat from one attempt to the next; they are not
    # secrets, and the cache is bounded.
    return key_part(text, field=field)


def _part(text: str, field: str) -> str:
    # Only exact str goes through the cache: anything else (unhashable, or a str
    # subclass with its own hash) takes the checking path and its error.
    if type(text) is str:
        return _cached_part(text, field)
    return key_part(text, field=field)


@attrs.frozen
class ThrottlePolicy:
    """Numbers of the throttle. See the module docstring for the reasoning.

    Attributes:
        free_failures: failed attempts that cost no delay (the next attempt is immediate too).
        base_delay: seconds to wait after the first delayed attempt; doubles each time.
        max_delay: the longest delay between attempts, in seconds.
        lockout_after: counted attempts that trigger a lockout.
        lockout_duration: seconds a lockout lasts.
        window: seconds after the first failure when the count restarts by itself.
    """

    free_failures: int = 3
    base_delay: float = 1.0
    max_delay: float = 300.0
    lockout_after: int = 10
    lockout_duration: float = 900.0
    window: float = 86_400.0

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.free_failures < self.lockout_after:
            raise ConfigurationError("free_failures must be >= 0 and below lockout_after")
        if self.lockout_after > 100:
            raise ConfigurationError("NIST SP 800-63B allows at most 100 consecutive failures")
        if min(self.base_delay, self.max_delay, self.lockout_duration, self.window) <= 0:
            raise ConfigurationError("delays, lockout duration and window must be positive")

    def delay_after(self, attempts: int) -> float:
        """Seconds that must pass after the ``attempts``-th attempt before the next one."""
        excess = attempts - self.free_failures
        if excess <= 0:
            return 0.0
        return float(min(self.base_delay * 2 ** (excess - 1), self.max_delay))


@attrs.frozen
class Attempt:
    """A counted attempt that may go ahead.

    Attributes:
        count: attempts counted in the window, this one included.
        remaining_attempts: attempts left before a lockout, after this one.
    """

    count: int
    remaining_attempts: int


@attrs.frozen
class Admission:
    """An attempt the throttle let through (:meth:`FailureThrottle.admit`), not yet counted.

    Attributes:
        keys: the counters :meth:`count` adds it to.
        at: when it was admitted (the time its count is stamped with).
    """

    _throttle: FailureThrottle = attrs.field(alias="throttle", repr=False)
    keys: tuple[str, ...]
    at: dt.datetime

    def count(self) -> Attempt:
        """Count the attempt (atomically, in every counter); call it once, for a failure.

        Raises:
            LockedOut: parallel attempts took the counters past the threshold.
        """
        return self._throttle._count(self.keys, self.at)


class FailureThrottle:
    """Counts attempts per subject (and per subject and client) in a store."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        namespace: str,
        policy: ThrottlePolicy | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._namespace = namespace
        self._prefix = f"throttle:{key_part(namespace)}:"
        self.policy = policy or ThrottlePolicy()

    def _bases(
        self, subject: str, context: ClientContext | None, generation: int | None = None
    ) -> list[str]:
        # Each outside value goes through key_part, so "a" with client "k" and
        # subject "a/k" (or "a@1", "a#0") never share a counter.
        base = self._prefix + _part(subject, "subject")
        if generation is not None:
            base += f"@{generation:d}"
        if context is not None and context.client_id:
            return [base, f"{base}/{_part(context.client_id, 'client_id')}"]
        return [base]

    def _epoch(self, base: str) -> int:
        return self._store.current(base + "#epoch") or 0

    def _counter_key(self, base: str, epoch: int | None = None) -> str:
        # Each served lockout opens a new epoch: a new, empty counter. Moving from epoch
        # e to e + 1 is a compare-and-set, so parallel requests at the end of a lockout
        # all land in the same fresh counter and are counted there, instead of wiping
        # each other's hits (or each opening an epoch of its own).
        return f"{base}#{self._epoch(base) if epoch is None else epoch}"

    def _refuse_if_blocked(self, base: str, now: dt.datetime) -> str:
        """Raise if ``base`` is locked out or must wait; return the counter key to hit."""
        policy = self.policy
        epoch = self._epoch(base)
        key = self._counter_key(base, epoch)
        state = self._store.peek(key, now, policy.window)
        if state is None:
            return key
        if state.count >= policy.lockout_after:
            ends = state.last_at + dt.timedelta(seconds=policy.lockout_duration)
            if now < ends:
                raise LockedOut(retry_after=(ends - now).total_seconds(), remaining_attempts=0)
            # This epoch's lockout has run its course: move to the next one. Only the
            # epoch we observed is advanced, so racers agree on the one fresh counter.
            self._store.advance(base + "#epoch", epoch + 1)
            return self._counter_key(base, epoch + 1)
        wait = policy.delay_after(state.count)
        ready = state.last_at + dt.timedelta(seconds=wait)
        # A free attempt never waits: a parallel attempt may have stamped the counter
        # a moment after this one read the clock (``now < last_at``), which is no delay.
        if wait > 0 and now < ready:
            raise VerificationThrottled(
                retry_after=(ready - now).total_seconds(),
                remaining_attempts=policy.lockout_after - state.count,
            )
        return key

    def admit(
        self, subject: str, context: ClientContext | None = None, *, generation: int | None = None
    ) -> Admission:
        """Refuse an attempt now if it must wait or is locked out; else let it through uncounted.

        For a caller whose check and its outcome run in one serializable
        transaction (a SQLite commit group): no other attempt can be decided
        between this and the end of that transaction, so counting only a
        failure (:meth:`Admission.count`) refuses exactly what counting first
        would, and a success writes no counter at all. Everyone else uses
        :meth:`acquire`.

        Raises:
            LockedOut: the subject is locked out; ``retry_after`` says for how long.
            VerificationThrottled: the previous attempt was too recent.
        """
        now = self._clock.now()
        return Admission(
            throttle=self, keys=self._admitted(subject, context, generation, now), at=now
        )

    def acquire(
        self, subject: str, context: ClientContext | None = None, *, generation: int | None = None
    ) -> Attempt:
        """Count one attempt, or refuse it.

        ``generation`` lets a method reset the count with a write it makes anyway:
        pass a value that only a success changes (the last accepted TOTP step,
        the HOTP counter) and attempts are counted per value, so a success needs
        no :meth:`release`, saving one durable write per verification.

        Raises:
            LockedOut: the subject is locked out; ``retry_after`` says for how long.
            VerificationThrottled: the previous attempt was too recent.
        """
        now = self._clock.now()
        return self._count(self._admitted(subject, context, generation, now), now)

    def _admitted(
        self, subject: str, context: ClientContext | None, generation: int | None, now: dt.datetime
    ) -> tuple[str, ...]:
        # Every base is checked before any is counted: a refused attempt counts nowhere.
        return tuple(
            self._refuse_if_blocked(base, now) for base in self._bases(subject, context, generation)
        )

    def _count(self, keys: tuple[str, ...], now: dt.datetime) -> Attempt:
        policy = self.policy
        count = 0
        # The keys are counted in a fixed order (subject, then subject and client) and an
        # attempt refused on one is counted in none after it. A refused attempt therefore
        # never takes a place in a later counter: every counter's first ``lockout_after``
        # hits are attempts that go on to be checked (or to be refused by a later counter
        # that already holds ``lockout_after`` checked ones), so parallel attempts cannot
        # push each other out and leave fewer than ``lockout_after`` codes checked.
        for key in keys:
            state: CounterState = self._store.hit(key, now, policy.window)
            if state.count > policy.lockout_after:
                # Parallel attempts raced past the threshold: only the first ones get checked.
                raise LockedOut(retry_after=policy.lockout_duration, remaining_attempts=0)
            count = max(count, state.count)
        return Attempt(count=count, remaining_attempts=policy.lockout_after - count)

    def release(self, subject: str, context: ClientContext | None = None) -> None:
        """Forget the counted attempts after a success."""
        for base in self._bases(subject, context):
            self._store.clear(self._counter_key(base))

    def locked_out(self, subject: str, context: ClientContext | None = None) -> bool:
        """Whether ``acquire`` would refuse with a lockout now (advisory)."""
        now = self._clock.now()
        for base in self._bases(subject, context):
            state = self._store.peek(self._counter_key(base), now, self.policy.window)
            if state is not None and state.count >= self.policy.lockout_after:
                ends = state.last_at + dt.timedelta(seconds=self.policy.lockout_duration)
                if now < ends:
                    return True
        return False

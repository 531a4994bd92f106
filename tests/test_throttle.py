from __future__ import annotations

import datetime as dt
import threading
import time
from typing import cast

import pytest

from macnss_auth import ClientContext, ConfigurationError, LockedOut, MemoryStore
from macnss_auth.errors import VerificationThrottled
from macnss_auth.store import CounterState, Store
from macnss_auth.testing import FixedClock
from macnss_auth.throttle import Attempt, FailureThrottle, ThrottlePolicy
from tests.conftest import OpenStore

POLICY = ThrottlePolicy(
    free_failures=2, base_delay=1.0, max_delay=8.0, lockout_after=7, lockout_duration=600.0
)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock.at(1_800_000_000)


@pytest.fixture
def throttle(clock: FixedClock) -> FailureThrottle:
    return FailureThrottle(store=MemoryStore(), clock=clock, namespace="totp", policy=POLICY)


def test_delays_grow_exactly_as_configured(throttle: FailureThrottle, clock: FixedClock) -> None:
    expected_waits = [0, 0, 1, 2, 4, 8]  # after attempts 1..6: free, free, then doubling, capped
    for attempt, wait in enumerate(expected_waits, start=1):
        counted = throttle.acquire("alice")
        assert counted.count == attempt
        assert counted.remaining_attempts == 7 - attempt
        if wait:
            with pytest.raises(VerificationThrottled) as info:
                throttle.acquire("alice")
            assert info.value.retry_after == pytest.approx(wait)
            clock.advance(wait - 0.001)
            with pytest.raises(VerificationThrottled):
                throttle.acquire("alice")
            clock.advance(0.001)


def test_lockout_after_the_configured_count_then_expiry(
    throttle: FailureThrottle, clock: FixedClock
) -> None:
    for _ in range(7):
        throttle.acquire("alice")
        clock.advance(10)
    with pytest.raises(LockedOut) as info:
        throttle.acquire("alice")
    assert info.value.retry_after == pytest.approx(600 - 10)
    assert throttle.locked_out("alice")
    clock.advance(590)
    assert not throttle.locked_out("alice")
    assert throttle.acquire("alice").count == 1


def test_success_resets(throttle: FailureThrottle, clock: FixedClock) -> None:
    for _ in range(3):
        throttle.acquire("alice")
        clock.advance(5)
    throttle.release("alice")
    assert throttle.acquire("alice").count == 1


def test_subjects_and_clients_are_counted_apart(
    throttle: FailureThrottle, clock: FixedClock
) -> None:
    kiosk = ClientContext(client_id="kiosk-7")
    for _ in range(2):
        throttle.acquire("alice", kiosk)
    assert throttle.acquire("bob").count == 1
    # The per-subject counter includes attempts from every client.
    assert throttle.acquire("alice").count == 3


def test_parallel_attempts_never_exceed_the_lockout(clock: FixedClock) -> None:
    policy = ThrottlePolicy(free_failures=99, lockout_after=100)
    throttle = FailureThrottle(store=MemoryStore(), clock=clock, namespace="x", policy=policy)
    allowed: list[int] = []
    lock = threading.Lock()

    def attacker() -> None:
        for _ in range(50):
            try:
                throttle.acquire("victim")
            except LockedOut:
                continue
            with lock:
                allowed.append(1)

    threads = [threading.Thread(target=attacker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 100


@pytest.mark.parametrize(
    "kwargs",
    [
        {"free_failures": 10, "lockout_after": 10},
        {"lockout_after": 101},
        {"base_delay": 0},
        {"lockout_duration": -1},
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        ThrottlePolicy(**kwargs)  # type: ignore[arg-type]


class SlowPeekStore(MemoryStore):
    """Widens the gap between a read and the write that follows it, as a busy server would."""

    def peek(self, key: str, now: dt.datetime, window: float) -> CounterState | None:
        state = super().peek(key, now, window)
        time.sleep(0.001)
        return state


def test_a_burst_after_a_lockout_expires_is_still_limited(clock: FixedClock) -> None:
    policy = ThrottlePolicy(free_failures=99, lockout_after=100, lockout_duration=60)
    throttle = FailureThrottle(store=SlowPeekStore(), clock=clock, namespace="x", policy=policy)
    for _ in range(100):
        throttle.acquire("victim")
    with pytest.raises(LockedOut):
        throttle.acquire("victim")
    clock.advance(61)
    allowed: list[int] = []
    lock = threading.Lock()

    def attacker() -> None:
        for _ in range(60):
            try:
                throttle.acquire("victim")
            except LockedOut:
                continue
            with lock:
                allowed.append(1)

    threads = [threading.Thread(target=attacker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 100


def test_a_new_generation_starts_a_fresh_count(clock: FixedClock) -> None:
    """What a success advances (the last TOTP step) can stand in for a release."""
    policy = ThrottlePolicy(free_failures=1, base_delay=1, lockout_after=3, lockout_duration=600)
    throttle = FailureThrottle(store=MemoryStore(), clock=clock, namespace="x", policy=policy)
    for _ in range(3):
        throttle.acquire("alice", generation=7)
        clock.advance(10)
    with pytest.raises(LockedOut):
        throttle.acquire("alice", generation=7)
    # Only a success moves the generation on; an attacker without a code cannot.
    assert throttle.acquire("alice", generation=8).count == 1


def test_an_admitted_attempt_counts_only_when_told(
    throttle: FailureThrottle, clock: FixedClock
) -> None:
    context = ClientContext(client_id="kiosk-7")
    for _ in range(5):
        throttle.admit("alice", context)  # successes: admitted, never counted
    admission = throttle.admit("alice", context)
    assert len(admission.keys) == 2  # per subject and per (subject, client)
    assert admission.count().count == 1
    for attempt in range(2, 8):
        clock.advance(10)
        assert throttle.admit("alice", context).count().count == attempt
    # Admission refuses as acquire does, before anything is counted.
    with pytest.raises(LockedOut):
        throttle.admit("alice", context)
    with pytest.raises(LockedOut):
        throttle.admit("alice")


class _GatedStore:
    """A store handle that announces its n-th ``hit``, holds it until told, says when done.

    ``entered[n]`` is set when the n-th hit (counting from 1) is called,
    ``before[n]`` waited for before it runs and ``after[n]`` set once it
    returns; this forces, without sleeping, an
    interleaving that a slow store (PgBouncer, a busy server) opens at random.
    """

    def __init__(
        self,
        store: Store,
        *,
        entered: dict[int, threading.Event] | None = None,
        before: dict[int, threading.Event],
        after: dict[int, threading.Event],
    ) -> None:
        self._store = store
        self._entered = entered or {}
        self._before = before
        self._after = after
        self._hits = 0

    def hit(self, key: str, now: dt.datetime, window: float) -> CounterState:
        self._hits += 1
        if self._hits in self._entered:
            self._entered[self._hits].set()
        if self._hits in self._before:
            assert self._before[self._hits].wait(timeout=60), "the other attempt is stuck"
        state = self._store.hit(key, now, window)
        if self._hits in self._after:
            self._after[self._hits].set()
        return state

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def test_racing_attempts_at_the_threshold_get_exactly_the_limit_checked(
    open_any_store: OpenStore, clock: FixedClock
) -> None:
    """Two parallel attempts for the last place: one is checked, one refused.

    Both pass the checks before counting (2 of 3 used). Then A counts the
    subject (3), B counts the subject (4), B's client counter (3), and A its
    client counter. Counting both keys whatever the first said gave A a 4
    there: each attempt found one key past the limit, both were refused, and
    only ``lockout_after - 1`` codes were ever checked.
    """
    policy = ThrottlePolicy(free_failures=2, lockout_after=3, lockout_duration=600)
    context = ClientContext(client_id="kiosk-7")
    setup = FailureThrottle(store=open_any_store(), clock=clock, namespace="x", policy=policy)
    for _ in range(2):
        setup.acquire("alice", context)
    b_checked, a_counted_subject, b_done = threading.Event(), threading.Event(), threading.Event()
    store_a = _GatedStore(
        open_any_store(), before={1: b_checked, 2: b_done}, after={1: a_counted_subject}
    )
    # B reaches its first hit only after its checks: from then on it is committed to counting.
    store_b = _GatedStore(
        open_any_store(), entered={1: b_checked}, before={1: a_counted_subject}, after={}
    )
    outcome: dict[str, object] = {}

    def attempt(name: str, store: _GatedStore, done: threading.Event | None) -> None:
        throttle = FailureThrottle(
            store=cast(Store, store), clock=clock, namespace="x", policy=policy
        )
        try:
            outcome[name] = throttle.acquire("alice", context)
        except LockedOut as exc:
            outcome[name] = exc
        finally:
            if done is not None:
                done.set()

    thread_a = threading.Thread(target=attempt, args=("a", store_a, None))
    thread_b = threading.Thread(target=attempt, args=("b", store_b, b_done))
    thread_a.start()
    thread_b.start()
    thread_a.join(timeout=120)
    thread_b.join(timeout=120)
    assert not thread_a.is_alive()
    assert not thread_b.is_alive()
    assert outcome["a"] == Attempt(count=3, remaining_attempts=0)
    assert isinstance(outcome["b"], LockedOut)
    # The limit is reached: nothing else gets through, from this client or another.
    with pytest.raises(LockedOut):
        setup.acquire("alice", context)
    with pytest.raises(LockedOut):
        setup.acquire("alice", ClientContext(client_id="kiosk-8"))


def test_a_free_attempt_is_never_delayed_by_a_parallel_one_stamped_later(
    open_any_store: OpenStore,
) -> None:
    """Instances read the clock before counting: a racer's stamp may be after our ``now``.

    Four service processes racing wrong codes used to tell some of them
    ``throttled`` (a wait of 0 s ending at the other's stamp, a moment after
    this request's clock reading) before any delay was due.
    """
    policy = ThrottlePolicy(free_failures=9, lockout_after=10)
    early, late = FixedClock.at(1_800_000_000), FixedClock.at(1_800_000_000.25)
    first = FailureThrottle(store=open_any_store(), clock=late, namespace="x", policy=policy)
    second = FailureThrottle(store=open_any_store(), clock=early, namespace="x", policy=policy)
    first.acquire("alice")
    assert second.acquire("alice") == Attempt(count=2, remaining_attempts=8)
    assert second.acquire("alice") == Attempt(count=3, remaining_attempts=7)
    # A delay that is due (after 3 attempts, 2 of them free) still holds.
    strict = ThrottlePolicy(free_failures=2, base_delay=5.0, lockout_after=10)
    delayed = FailureThrottle(store=open_any_store(), clock=early, namespace="x", policy=strict)
    with pytest.raises(VerificationThrottled):
        delayed.acquire("alice")

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from macnss_auth import ClientContext, ConfigurationError, LockedOut, MemoryStore
from macnss_auth.errors import VerificationThrottled
from macnss_auth.store import CounterState
from macnss_auth.testing import FixedClock
from macnss_auth.throttle import FailureThrottle, ThrottlePolicy

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

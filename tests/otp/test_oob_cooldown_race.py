"""The resend cooldown holds under parallel requests: exactly one send per cooldown.

Issue 18: 8 simultaneous ``begin`` calls sent 2 to 8 SMS despite the 30 s
cooldown, because the cooldown was read (``peek``) and then counted
(``hit``). Here 8 threads, each with its own store handle on the same data
(as 8 service instances would have) and its own authenticator, call
``begin`` together behind a barrier, burst after burst, on every backend.
"""

from __future__ import annotations

import functools
from collections import Counter
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.delivery import CapturingChannel, ChannelKind
from macnss_auth.errors import RateLimited
from macnss_auth.otp.contacts import parse_phone, put_destination
from macnss_auth.otp.oob import InlineDispatcher, ResendPolicy, SMSCodeAuthenticator
from macnss_auth.secret import Secret
from macnss_auth.store import SQLiteStore, Store
from macnss_auth.testing import FixedClock
from macnss_auth.testing.races import ProcessPool, race_threads
from tests.conftest import STORE_KEYRING, OpenStore

T0 = 1_800_000_000
THREADS = 8
KEYRING = STORE_KEYRING
PEPPER = Secret(b"an application pepper of 32+ bytes, test only")
# Only the cooldown limits these bursts: the daily and hourly caps are far away.
COOLDOWN = ResendPolicy(
    cooldown=30, max_cooldown=900, daily_per_subject=1000, daily_per_destination=1000
)


def _burst(authenticators: list[SMSCodeAuthenticator], subject: str) -> tuple[int, int]:
    """Every authenticator calls begin(subject) at once: (issued, rate-limited)."""
    outcomes = race_threads([functools.partial(a.begin, subject) for a in authenticators])
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert [o for o in refused if not isinstance(o, RateLimited)] == []
    return len(outcomes) - len(refused), len(refused)


def test_one_send_per_cooldown_under_parallel_begins(open_any_store: OpenStore) -> None:
    clock = FixedClock.at(T0)
    channel = CapturingChannel(ChannelKind.SMS)
    put_destination(open_any_store(), "alice", parse_phone("+212612345678"), now=clock.now())
    authenticators = [
        SMSCodeAuthenticator(
            channel=channel,
            store=open_any_store(),
            audit=MemoryAuditLog(),
            pepper=PEPPER,
            clock=clock,
            dispatcher=InlineDispatcher(),
            resend=COOLDOWN,
        )
        for _ in range(THREADS)
    ]
    # Cooldowns after the n-th send: 30, 60, 120, 240 s.
    for n, cooldown in enumerate((30, 60, 120, 240), start=1):
        assert _burst(authenticators, "alice") == (1, THREADS - 1)
        assert len(channel.messages) == n
        clock.advance(cooldown - 1)
        assert _burst(authenticators, "alice") == (0, THREADS)
        assert len(channel.messages) == n
        clock.advance(1)
    # Unknown subjects (decoys: nothing is sent) are limited the same way.
    assert _burst(authenticators, "nobody") == (1, THREADS - 1)
    clock.advance(29)
    assert _burst(authenticators, "nobody") == (0, THREADS)
    clock.advance(1)
    assert _burst(authenticators, "nobody") == (1, THREADS - 1)
    for auth in authenticators:
        auth.close()


def test_a_lost_send_does_not_block_the_next_cooldown(open_any_store: OpenStore) -> None:
    # A request that won the send but never counted it (a crash between the
    # two writes) must not hold the subject back longer than one cooldown.
    clock = FixedClock.at(T0)
    store = open_any_store()
    channel = CapturingChannel(ChannelKind.SMS)
    put_destination(store, "alice", parse_phone("+212612345678"), now=clock.now())
    sms = SMSCodeAuthenticator(
        channel=channel,
        store=store,
        audit=MemoryAuditLog(),
        pepper=PEPPER,
        clock=clock,
        dispatcher=InlineDispatcher(),
        resend=COOLDOWN,
    )
    sms.begin("alice")
    for key in ("oob-send:sms:login:subject:alice",):
        store.clear(key)  # the count of the first send is lost
    clock.advance(29)
    with pytest.raises(RateLimited):
        sms.begin("alice")
    clock.advance(1)
    sms.begin("alice")
    assert len(channel.messages) == 2


# Processes ---------------------------------------------------------------------
PROCESSES = 4


def _open_spec(spec: tuple[str, ...]) -> Store:
    kind, where, name = spec
    if kind == "sqlite":
        return SQLiteStore(where, keyring=KEYRING)
    if kind == "postgres":
        from macnss_auth.store.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore(where, keyring=KEYRING, schema=name)
    from macnss_auth.store.redis import RedisStore  # noqa: PLC0415

    return RedisStore(where, keyring=KEYRING, prefix=name)


def process_worker(
    spec: tuple[str, ...],
    barrier: Barrier,
    tasks: Queue[tuple[object, ...]],
    results: Queue[tuple[int, str]],
) -> None:
    """A service instance: its own store handle and authenticator; one begin per task.

    Tasks are ``(rep, when)`` until ``("stop",)`` (:class:`~macnss_auth.testing.races.ProcessPool`).
    """
    store = _open_spec(spec)
    clock = FixedClock.at(T0)
    sms = SMSCodeAuthenticator(
        channel=CapturingChannel(ChannelKind.SMS),
        store=store,
        audit=MemoryAuditLog(),
        pepper=PEPPER,
        clock=clock,
        dispatcher=InlineDispatcher(),
        resend=COOLDOWN,
    )
    try:
        while (task := tasks.get()) != ("stop",):
            rep, when = task
            assert isinstance(rep, int)
            assert isinstance(when, int)
            clock.set(FixedClock.at(when).now())
            barrier.wait(timeout=60)
            try:
                sms.begin("alice")
            except RateLimited:
                results.put((rep, "limited"))
            except BaseException as exc:  # noqa: BLE001 (reported to the test)
                results.put((rep, f"{type(exc).__name__}: {exc}"))
            else:
                results.put((rep, "issued"))
    finally:
        store.close()


@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.services),
        pytest.param("redis", marks=pytest.mark.services),
    ],
)
def test_one_send_per_cooldown_across_processes(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        spec = ("sqlite", str(tmp_path / "state.sqlite3"), "")
    elif kind == "postgres":
        spec = (
            "postgres",
            request.getfixturevalue("postgres"),
            f"p_{tmp_path.name[-20:]}",
        )
    else:
        spec = ("redis", request.getfixturevalue("redis_url"), f"{{{tmp_path.name}}}:")
    setup = _open_spec(spec)
    put_destination(setup, "alice", parse_phone("+212612345678"), now=FixedClock.at(T0).now())
    setup.close()
    pool = ProcessPool(process_worker, (spec,), PROCESSES)
    try:
        # (seconds after T0, sends expected): cooldowns of 30 then 60 s.
        for rep, (offset, sends) in enumerate(((0, 1), (29, 0), (30, 1), (89, 0), (90, 1))):
            outcomes = pool.race(rep, T0 + offset)
            expected = Counter({"issued": sends, "limited": PROCESSES - sends})
            assert outcomes == +expected, (offset, outcomes)
    finally:
        pool.close()

"""The resend cooldown holds under parallel requests: exactly one send per cooldown.

Issue 18: 8 simultaneous ``begin`` calls sent 2 to 8 SMS despite the 30 s
cooldown, because the cooldown was read (``peek``) and then counted
(``hit``). Here 8 threads, each with its own store handle on the same data
(as 8 service instances would have) and its own authenticator, call
``begin`` together behind a barrier, burst after burst, on every backend.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from macnss_auth.delivery import CapturingChannel, ChannelKind
from macnss_auth.errors import RateLimited
from macnss_auth.otp.contacts import parse_phone, put_destination
from macnss_auth.otp.oob import InlineDispatcher, ResendPolicy, SMSCodeAuthenticator
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, MemoryStore, SQLiteStore, Store
from macnss_auth.testing import FixedClock
from tests.store.services import postgres_server, redis_server

T0 = 1_800_000_000
THREADS = 8
KEYRING = Keyring({"k": bytes(range(32))}, primary="k")
PEPPER = Secret(b"an application pepper of 32+ bytes, test only")
# Only the cooldown limits these bursts: the daily and hourly caps are far away.
COOLDOWN = ResendPolicy(
    cooldown=30, max_cooldown=900, daily_per_subject=1000, daily_per_destination=1000
)

Opener = Callable[[], Store]


@pytest.fixture(scope="module")
def cooldown_postgres() -> Iterator[str]:
    with postgres_server() as conninfo:
        yield conninfo


@pytest.fixture(scope="module")
def cooldown_redis() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.services),
        pytest.param("redis", marks=pytest.mark.services),
    ]
)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens another handle on one shared store (the same object for memory)."""
    opened: list[Store] = []
    kind = request.param
    memory = MemoryStore(keyring=KEYRING)

    def open_store() -> Store:
        store: Store
        if kind == "memory":
            return memory
        if kind == "sqlite":
            store = SQLiteStore(tmp_path / "state.sqlite3", keyring=KEYRING)
        elif kind == "postgres":
            from macnss_auth.store.postgres import PostgresStore  # noqa: PLC0415

            conninfo = request.getfixturevalue("cooldown_postgres")
            store = PostgresStore(conninfo, keyring=KEYRING, schema=f"c_{tmp_path.name[-20:]}")
        else:
            from macnss_auth.store.redis import RedisStore  # noqa: PLC0415

            url = request.getfixturevalue("cooldown_redis")
            store = RedisStore(url, keyring=KEYRING, prefix=f"{{{tmp_path.name}}}:")
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def _burst(authenticators: list[SMSCodeAuthenticator], subject: str) -> tuple[int, int]:
    """Every authenticator calls begin(subject) at once: (issued, rate-limited)."""
    barrier = threading.Barrier(len(authenticators))
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(auth: SMSCodeAuthenticator) -> None:
        barrier.wait()
        try:
            auth.begin(subject)
            outcome = "issued"
        except RateLimited:
            outcome = "limited"
        except BaseException as exc:  # noqa: BLE001 (reported by the test thread)
            outcome = f"{type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(a,)) for a in authenticators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    unexpected = [o for o in outcomes if o not in ("issued", "limited")]
    assert unexpected == []
    return outcomes.count("issued"), outcomes.count("limited")


def test_one_send_per_cooldown_under_parallel_begins(opener: Opener) -> None:
    clock = FixedClock.at(T0)
    channel = CapturingChannel(ChannelKind.SMS)
    put_destination(opener(), "alice", parse_phone("+212612345678"), now=clock.now())
    authenticators = [
        SMSCodeAuthenticator(
            channel=channel,
            store=opener(),
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


def test_a_lost_send_does_not_block_the_next_cooldown(opener: Opener) -> None:
    # A request that won the send but never counted it (a crash between the
    # two writes) must not hold the subject back longer than one cooldown.
    clock = FixedClock.at(T0)
    store = opener()
    channel = CapturingChannel(ChannelKind.SMS)
    put_destination(store, "alice", parse_phone("+212612345678"), now=clock.now())
    sms = SMSCodeAuthenticator(
        channel=channel,
        store=store,
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
    spec: tuple[str, ...], barrier: Barrier, tasks: Queue[float | None], results: Queue[str]
) -> None:
    """A service instance: its own store handle and authenticator; one begin per task."""
    store = _open_spec(spec)
    clock = FixedClock.at(T0)
    sms = SMSCodeAuthenticator(
        channel=CapturingChannel(ChannelKind.SMS),
        store=store,
        pepper=PEPPER,
        clock=clock,
        dispatcher=InlineDispatcher(),
        resend=COOLDOWN,
    )
    try:
        while (when := tasks.get()) is not None:
            clock.set(FixedClock.at(when).now())
            barrier.wait(timeout=60)
            try:
                sms.begin("alice")
            except RateLimited:
                results.put("limited")
            except BaseException as exc:  # noqa: BLE001 (reported to the test)
                results.put(f"{type(exc).__name__}: {exc}")
            else:
                results.put("issued")
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
            request.getfixturevalue("cooldown_postgres"),
            f"p_{tmp_path.name[-20:]}",
        )
    else:
        spec = ("redis", request.getfixturevalue("cooldown_redis"), f"{{{tmp_path.name}}}:")
    setup = _open_spec(spec)
    put_destination(setup, "alice", parse_phone("+212612345678"), now=FixedClock.at(T0).now())
    setup.close()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results: Queue[str] = context.Queue()
    queues: list[Queue[float | None]] = [context.Queue() for _ in range(PROCESSES)]
    workers = [
        context.Process(target=process_worker, args=(spec, barrier, queue, results), daemon=True)
        for queue in queues
    ]
    for worker in workers:
        worker.start()
    try:
        # (seconds after T0, sends expected): cooldowns of 30 then 60 s.
        for offset, sends in ((0, 1), (29, 0), (30, 1), (89, 0), (90, 1)):
            for queue in queues:
                queue.put(T0 + offset)
            outcomes = Counter(results.get(timeout=120) for _ in range(PROCESSES))
            expected = Counter({"issued": sends, "limited": PROCESSES - sends})
            assert outcomes == +expected, (offset, outcomes)
    finally:
        for queue in queues:
            queue.put(None)
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()

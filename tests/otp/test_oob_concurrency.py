"""Two processes verify the same code at the same moment: exactly one succeeds, 200 times.

Long-lived worker processes (spawned once) each open their own
:class:`~macnss_auth.store.sqlite.SQLiteStore` on one file and their own
authenticator; for each repetition the parent issues a fresh code, hands it
to both, and a barrier releases them together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.delivery import CapturingChannel, ChannelKind, find_code
from macnss_auth.errors import AuthenticationFailed
from macnss_auth.otp.contacts import parse_phone, put_destination
from macnss_auth.otp.oob import (
    BackgroundDispatcher,
    InlineDispatcher,
    ResendPolicy,
    SMSCodeAuthenticator,
)
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring
from macnss_auth.store.sqlite import SQLiteStore
from macnss_auth.testing import FixedClock
from macnss_auth.testing.races import ProcessPool
from macnss_auth.throttle import ThrottlePolicy

WORKERS = 2
REPETITIONS = 200
T0 = 1_800_000_000
KEY = bytes(range(32))
PEPPER = b"pepper shared by every service instance"
OPEN = ResendPolicy(
    cooldown=0, daily_per_subject=10**6, daily_per_destination=10**6, hourly_per_prefix=None
)
# The loser of each race is a counted failure; keep the throttle out of the way.
RELAXED = ThrottlePolicy(free_failures=50, lockout_after=100)


def authenticator(store: SQLiteStore, channel: CapturingChannel) -> SMSCodeAuthenticator:
    return SMSCodeAuthenticator(
        channel=channel,
        store=store,
        audit=MemoryAuditLog(),
        pepper=Secret(PEPPER),
        clock=FixedClock.at(T0),
        dispatcher=InlineDispatcher(),
        resend=OPEN,
        throttle=RELAXED,
    )


def worker(
    path: str, barrier: Barrier, tasks: Queue[tuple[Any, ...]], results: Queue[tuple[int, str]]
) -> None:
    """Serve ``(rep, challenge_id, code)`` tasks until ``("stop",)``."""
    store = SQLiteStore(Path(path), keyring=Keyring({"k1": KEY}, primary="k1"))
    auth = authenticator(store, CapturingChannel(ChannelKind.SMS))
    store.current("warm-up")
    try:
        while True:
            task = tasks.get()
            if task[0] == "stop":
                return
            rep, challenge_id, code = task
            barrier.wait(timeout=30)
            try:
                auth.verify(challenge_id, code)
            except AuthenticationFailed as exc:
                results.put((rep, exc.reason.value))
            else:
                results.put((rep, "ok"))
    finally:
        store.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ProcessPool]]:
    path = tmp_path_factory.mktemp("oob-race") / "state.sqlite3"
    store = SQLiteStore(path, keyring=Keyring({"k1": KEY}, primary="k1"))
    put_destination(store, "alice", parse_phone("0612345678"), now=FixedClock.at(T0).now())
    store.close()
    pool = ProcessPool(worker, (str(path),), WORKERS)
    try:
        yield path, pool
    finally:
        pool.close()


def test_exactly_one_process_accepts_a_code(shared: tuple[Path, ProcessPool]) -> None:
    path, pool = shared
    store = SQLiteStore(path, keyring=Keyring({"k1": KEY}, primary="k1"))
    channel = CapturingChannel(ChannelKind.SMS)
    auth = authenticator(store, channel)
    try:
        for rep in range(REPETITIONS):
            challenge = auth.begin("alice")
            outcomes = pool.race(rep, challenge.id, channel.last_code())
            assert outcomes == Counter({"ok": 1, "challenge_used": 1}), (rep, outcomes)
    finally:
        store.close()


def test_the_file_holds_no_code_and_no_number(shared: tuple[Path, ProcessPool]) -> None:
    path, _ = shared
    store = SQLiteStore(path, keyring=Keyring({"k1": KEY}, primary="k1"))
    channel = CapturingChannel(ChannelKind.SMS)
    auth = authenticator(store, channel)
    auth.begin("alice")
    code = channel.last_code()
    store.close()
    blob = b"".join(p.read_bytes() for p in path.parent.iterdir())
    assert b"alice" in blob
    assert b"612345678" not in blob
    assert code.encode() not in blob


def test_background_delivery_on_sqlite(tmp_path: Path) -> None:
    """Worker threads share the SQLite store with the request thread."""
    store = SQLiteStore(tmp_path / "state.sqlite3", keyring=Keyring({"k1": KEY}, primary="k1"))
    clock = FixedClock.at(T0)
    for i in range(20):
        put_destination(store, f"user{i}", parse_phone(f"06123456{i:02d}"), now=clock.now())
    channel = CapturingChannel(ChannelKind.SMS)
    with BackgroundDispatcher(max_workers=4) as dispatcher:
        auth = SMSCodeAuthenticator(
            channel=channel,
            store=store,
            audit=MemoryAuditLog(),
            pepper=Secret(PEPPER),
            clock=clock,
            dispatcher=dispatcher,
            resend=OPEN,
        )
        challenges = [auth.begin(f"user{i}") for i in range(20)]
        dispatcher.drain(30)
    try:
        for challenge in challenges:
            message = next(m for m in channel.messages if m.hint == challenge.hint)
            assert auth.verify(challenge, find_code(message.text)).subject == challenge.subject
    finally:
        store.close()

"""SQLiteStore behaves exactly like MemoryStore on random operation sequences.

MemoryStore is the executable specification (one lock, plain dictionaries);
hypothesis drives both stores with the same calls and compares every answer,
including which calls raise.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from macnss_auth.errors import StoreError
from macnss_auth.secret import Secret
from macnss_auth.store import (
    ChallengeRecord,
    Enrollment,
    Keyring,
    MemoryStore,
    SQLiteStore,
    Store,
)
from macnss_auth.testing.store_contract import KEY1, T0, make_record

KEYS = st.sampled_from(["a", "b", "ü/:x"])
IDS = st.sampled_from(["c0", "c1", "c2"])
SLOTS = st.sampled_from(["s0", "s1"])
# Mostly a few whole seconds, so that times land exactly on expiries and window ends.
TIMES = st.one_of(
    st.sampled_from([0, 1, 5, 10, 60]).map(lambda s: s * 1_000_000),
    st.sampled_from([0, 1, 5, 10, 60]).map(lambda s: s * 1_000_000),
    st.integers(0, 200_000_000),
).map(lambda us: T0 + dt.timedelta(microseconds=us))
LIFETIMES = st.sampled_from([1, 5, 10])
WINDOWS = st.sampled_from([1.0, 5.0, 50.5, 0.000001])
DIGESTS = st.sampled_from([bytes([n]) * 32 for n in range(4)])


def _create(store: Store, record: ChallengeRecord) -> str:
    try:
        store.create_challenge(record)
    except StoreError:
        return "duplicate"
    return "created"


class SameAnswers(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        keyring = Keyring({"k1": KEY1}, primary="k1")
        self.directory = Path(tempfile.mkdtemp(prefix="macnss-diff-"))
        self.model = MemoryStore(keyring=keyring)
        self.sqlite = SQLiteStore(
            self.directory / "s.sqlite3", keyring=keyring, synchronous="NORMAL"
        )

    def teardown(self) -> None:
        self.sqlite.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @initialize(
        lifetimes=st.tuples(LIFETIMES, LIFETIMES),
        max_attempts=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    )
    def two_live_challenges(
        self, lifetimes: tuple[int, int], max_attempts: tuple[int, int]
    ) -> None:
        for n in (0, 1):
            record = make_record(
                f"c{n}", slot=f"s{n}", lifetime=lifetimes[n], max_attempts=max_attempts[n]
            )
            self.model.create_challenge(record)
            self.sqlite.create_challenge(record)

    @rule(key=KEYS, value=st.integers(-3, 12))
    def advance(self, key: str, value: int) -> None:
        assert self.model.advance(key, value) == self.sqlite.advance(key, value)
        assert self.model.current(key) == self.sqlite.current(key)

    @rule(key=KEYS)
    def reset_counter(self, key: str) -> None:
        self.model.reset_counter(key)
        self.sqlite.reset_counter(key)

    @rule(
        cid=IDS,
        slot=SLOTS,
        lifetime=LIFETIMES,
        max_attempts=st.integers(0, 3),
        consumed=st.booleans(),
    )
    def create_challenge(
        self, cid: str, slot: str, lifetime: int, max_attempts: int, consumed: bool
    ) -> None:
        record = make_record(cid, slot=slot, lifetime=lifetime, max_attempts=max_attempts)
        record = attrs.evolve(record, consumed=consumed)
        assert _create(self.model, record) == _create(self.sqlite, record)
        for other in ("c0", "c1", "c2"):
            assert self.model.get_challenge(other) == self.sqlite.get_challenge(other)

    @rule(cid=IDS)
    def count_attempt(self, cid: str) -> None:
        assert self.model.count_attempt(cid) == self.sqlite.count_attempt(cid)

    @rule(cid=IDS, now=TIMES)
    def consume_challenge(self, cid: str, now: dt.datetime) -> None:
        assert self.model.consume_challenge(cid, now) == self.sqlite.consume_challenge(cid, now)
        assert self.model.get_challenge(cid) == self.sqlite.get_challenge(cid)

    @rule(key=KEYS, now=TIMES, window=WINDOWS)
    def hit(self, key: str, now: dt.datetime, window: float) -> None:
        assert self.model.hit(key, now, window) == self.sqlite.hit(key, now, window)

    @rule(key=KEYS, now=TIMES, window=WINDOWS)
    def peek(self, key: str, now: dt.datetime, window: float) -> None:
        assert self.model.peek(key, now, window) == self.sqlite.peek(key, now, window)

    @rule(key=KEYS)
    def clear(self, key: str) -> None:
        self.model.clear(key)
        self.sqlite.clear(key)

    @rule(key=KEYS, digests=st.lists(DIGESTS, max_size=5))
    def add_tokens(self, key: str, digests: list[bytes]) -> None:
        self.model.add_tokens(key, digests)
        self.sqlite.add_tokens(key, digests)

    @rule(key=KEYS, digest=DIGESTS)
    def consume_token(self, key: str, digest: bytes) -> None:
        assert self.model.consume_token(key, digest) == self.sqlite.consume_token(key, digest)
        assert self.model.count_tokens(key) == self.sqlite.count_tokens(key)

    @rule(now=TIMES)
    def purge(self, now: dt.datetime) -> None:
        assert self.model.purge(now) == self.sqlite.purge(now)

    @rule(subject=KEYS, method=st.sampled_from(["totp", "sms"]), seed=st.binary(max_size=8))
    def put_enrollment(self, subject: str, method: str, seed: bytes) -> None:
        enrollment = Enrollment(subject=subject, method=method, secret=Secret(seed), created_at=T0)
        self.model.put_enrollment(enrollment)
        self.sqlite.put_enrollment(enrollment)
        assert self.model.get_enrollment(subject, method) == self.sqlite.get_enrollment(
            subject, method
        )

    @rule(subject=KEYS, method=st.sampled_from(["totp", "sms"]))
    def delete_enrollment(self, subject: str, method: str) -> None:
        assert self.model.delete_enrollment(subject, method) == self.sqlite.delete_enrollment(
            subject, method
        )


SameAnswers.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestSameAnswers = SameAnswers.TestCase

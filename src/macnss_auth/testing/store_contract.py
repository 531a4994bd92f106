"""The store contract, as tests any backend can inherit (needs pytest).

For the library's backends and for yours: a store written outside this
library passes the same tests by subclassing them in its own test suite.

A backend's test module subclasses :class:`StoreContract` and provides a
``store`` fixture (a fresh, empty store sealing under the ``keyring``
fixture). A persistent backend also subclasses
:class:`PersistentStoreContract` and provides ``open_store(keyring)``, which
opens the *same* data again with the given keyring. Everything here goes
through the public :class:`~macnss_auth.store.base.Store` methods only.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable

import attrs
import pyotp
import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.authenticator import Challenge, ClientContext
from macnss_auth.errors import (
    ChallengeNotFound,
    ConfigurationError,
    InvalidCode,
    LockedOut,
    MalformedInput,
    SecretKeyError,
    StoreError,
)
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.secret import Secret
from macnss_auth.store import ChallengeRecord, CounterState, Enrollment, Keyring, Store
from macnss_auth.testing import FixedClock, FixedRandom
from macnss_auth.testing.races import race_threads
from macnss_auth.throttle import FailureThrottle, ThrottlePolicy

__all__ = [
    "KEY1",
    "KEY2",
    "KEY3",
    "T0",
    "CountingKeyring",
    "PersistentStoreContract",
    "StoreContract",
    "at",
    "enrollment",
    "make_record",
]

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)

OpenStore = Callable[[Keyring], Store]

# Fixed test keys: a persistent backend's ``keyring`` fixture must be {"k1": KEY1}.
KEY1 = bytes(range(32))
KEY2 = bytes(range(32, 64))
KEY3 = bytes(range(64, 96))


def at(seconds: float) -> dt.datetime:
    """T0 plus ``seconds``."""
    return T0 + dt.timedelta(seconds=seconds)


def make_record(
    cid: str,
    *,
    slot: str = "sms:alice",
    subject: str = "alice",
    lifetime: float = 300.0,
    max_attempts: int = 3,
    attempts: int = 0,
    verifier: bytes = b"\x01verifier\x00",
) -> ChallengeRecord:
    """A challenge record created at T0."""
    challenge = Challenge(
        id=cid,
        subject=subject,
        method="sms",
        created_at=T0,
        expires_at=at(lifetime),
        hint="+212 6•• ••• •12",
        data={"lang": "ar", "n": "٣"},
    )
    return ChallengeRecord(
        challenge=challenge,
        slot=slot,
        verifier=verifier,
        max_attempts=max_attempts,
        attempts=attempts,
    )


def enrollment(
    subject: str = "alice", method: str = "totp", secret: bytes = b"s3cr3t"
) -> Enrollment:
    """A confirmed enrollment created at T0."""
    return Enrollment(
        subject=subject,
        method=method,
        secret=Secret(secret),
        params={"digits": 6, "algorithm": "SHA1", "label": "Alice é"},
        confirmed=True,
        created_at=T0,
    )


# Text no backend can hold as it is: NUL (PostgreSQL text), lone surrogates (UTF-8).
UNSTORABLE = ("a\x00b", "\x00", "\ud800", "x\udfffy", "\ud83d\ude00")
# Client ids a throttle must count apart, whatever they contain.
CLIENT_IDS = ("k", "k\x00", "\x00", "\ud800", "a:b", "a@1", "a#0", "%00", "é", "e\u0301", "")


def _required(record: ChallengeRecord | None) -> ChallengeRecord:
    assert record is not None
    return record


def _secret(store: Store, subject: str, method: str = "totp") -> bytes | None:
    got = store.get_enrollment(subject, method)
    return None if got is None else got.secret.reveal()


# Rings of a rotation from k1 to k2: both keys, the old or the new one primary.
def _ring(*ids: str, primary: str) -> Keyring:
    keys = {"k1": KEY1, "k2": KEY2, "k3": KEY3}
    return Keyring({kid: keys[kid] for kid in ids}, primary=primary)


class _SealHook(Keyring):
    """A ring that runs ``hook(context)`` each time it seals, before returning.

    ``reseal`` seals between reading a record and writing it back, so the hook
    lands a concurrent write exactly in that window. It runs in a thread of
    its own: a backend that holds a lock on the record meanwhile (``FOR
    UPDATE``) makes it wait instead of deadlocking the test.
    """

    def __init__(self, hook: Callable[[bytes], None]) -> None:
        super().__init__({"k1": KEY1, "k2": KEY2}, primary="k2")
        self.hook = hook
        self.writers: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        def run() -> None:
            try:
                self.hook(context)
            except BaseException as exc:  # noqa: BLE001 (handed to the test thread)
                self.errors.append(exc)

        writer = threading.Thread(target=run)
        writer.start()
        writer.join(timeout=5.0)  # longer only if the backend locks the record
        self.writers.append(writer)
        return super().seal(plaintext, context=context)

    def finish(self) -> None:
        for writer in self.writers:
            writer.join()
        if self.errors:
            raise self.errors[0]


class StoreContract:
    """Semantics every store must have. Needs a ``store`` fixture."""

    @pytest.fixture
    def keyring(self) -> Keyring:
        """The keyring the ``store`` fixture seals under: ``{"k1": KEY1}``.

        Provided so that a backend's test module needs nothing but ``store``
        (and ``open_store`` for :class:`PersistentStoreContract`); a
        persistent backend's tests rely on these exact keys.
        """
        return Keyring({"k1": KEY1}, primary="k1")

    # Enrollments -----------------------------------------------------------
    def test_is_a_store(self, store: Store) -> None:
        assert isinstance(store, Store)

    def test_enrollment_round_trip(self, store: Store) -> None:
        casablanca = dt.timezone(dt.timedelta(hours=1))
        original = Enrollment(
            subject="alice",
            method="totp",
            secret=Secret(bytes(range(256))),
            params={"digits": 8, "algorithm": "SHA256"},
            confirmed=False,
            created_at=T0.astimezone(casablanca),
            expires_at=at(600.000001),
        )
        store.put_enrollment(original)
        got = store.get_enrollment("alice", "totp")
        assert got == original
        assert got is not None
        assert got.secret.reveal() == bytes(range(256))
        assert got.created_at == T0
        assert got.expires_at == at(600.000001)
        assert dict(got.params) == {"digits": 8, "algorithm": "SHA256"}

    def test_enrollment_missing_and_per_method(self, store: Store) -> None:
        assert store.get_enrollment("alice", "totp") is None
        store.put_enrollment(enrollment(method="totp", secret=b"one"))
        store.put_enrollment(enrollment(method="hotp", secret=b"two"))
        store.put_enrollment(enrollment(subject="bob", method="totp", secret=b"three"))
        secrets = {
            (s, m): store.get_enrollment(s, m)
            for s, m in [("alice", "totp"), ("alice", "hotp"), ("bob", "totp")]
        }
        assert {k: v.secret.reveal() for k, v in secrets.items() if v} == {
            ("alice", "totp"): b"one",
            ("alice", "hotp"): b"two",
            ("bob", "totp"): b"three",
        }
        assert store.get_enrollment("bob", "hotp") is None

    def test_enrollment_replace_and_delete(self, store: Store) -> None:
        store.put_enrollment(enrollment(secret=b"old"))
        store.put_enrollment(enrollment(secret=b"new"))
        got = store.get_enrollment("alice", "totp")
        assert got is not None
        assert got.secret.reveal() == b"new"
        assert store.delete_enrollment("alice", "totp") is True
        assert store.delete_enrollment("alice", "totp") is False
        assert store.get_enrollment("alice", "totp") is None

    def test_reseal_with_everything_under_the_primary_changes_nothing(self, store: Store) -> None:
        assert store.reseal() == 0  # empty
        store.put_enrollment(enrollment(secret=b"one"))
        store.put_enrollment(enrollment(subject="bob", method="hotp", secret=b"two"))
        store.advance("totp:alice", 7)
        assert store.reseal() == 0
        assert store.reseal() == 0
        assert _secret(store, "alice", "totp") == b"one"
        assert _secret(store, "bob", "hotp") == b"two"
        assert store.current("totp:alice") == 7

    # Monotonic counters ------------------------------------------------------
    def test_advance_is_compare_and_set(self, store: Store) -> None:
        assert store.current("totp:alice") is None
        assert store.advance("totp:alice", 10) is True
        assert store.advance("totp:alice", 10) is False
        assert store.advance("totp:alice", 9) is False
        assert store.current("totp:alice") == 10
        assert store.advance("totp:alice", 11) is True
        assert store.current("totp:alice") == 11
        assert store.advance("hotp:alice", -5) is True  # keys are independent
        assert store.current("hotp:alice") == -5
        assert store.advance("big", 2**63 - 1) is True
        assert store.current("big") == 2**63 - 1

    def test_reset_counter(self, store: Store) -> None:
        store.advance("k", 100)
        store.reset_counter("k")
        assert store.current("k") is None
        assert store.advance("k", 1) is True
        store.reset_counter("never-set")

    # Challenges --------------------------------------------------------------
    def test_challenge_round_trip(self, store: Store) -> None:
        record = make_record("c1")
        store.create_challenge(record)
        assert store.get_challenge("c1") == record
        assert store.get_challenge("nope") is None

    def test_duplicate_challenge_id_is_refused(self, store: Store) -> None:
        store.create_challenge(make_record("c1", slot="a"))
        store.create_challenge(make_record("c2", slot="b"))
        with pytest.raises(StoreError):
            store.create_challenge(make_record("c1", slot="b", verifier=b"other"))
        # The failed insert changed nothing: c2 in slot b is still live.
        c1, c2 = store.get_challenge("c1"), store.get_challenge("c2")
        assert c1 is not None
        assert c1.verifier == b"\x01verifier\x00"
        assert c2 is not None
        assert c2.consumed is False

    def test_create_retires_live_challenges_in_the_same_slot(self, store: Store) -> None:
        store.create_challenge(make_record("a1", slot="sms:alice"))
        store.create_challenge(make_record("b1", slot="sms:bob", subject="bob"))
        store.create_challenge(make_record("a2", slot="sms:alice"))
        a1, a2, b1 = (store.get_challenge(c) for c in ("a1", "a2", "b1"))
        assert a1 is not None
        assert a1.consumed is True
        assert a2 is not None
        assert a2.consumed is False
        assert b1 is not None
        assert b1.consumed is False
        assert store.consume_challenge("a1", at(1)) is None
        assert store.consume_challenge("a2", at(1)) is not None

    def test_only_the_newest_challenge_of_a_slot_stays_live(self, store: Store) -> None:
        for n in range(5):
            store.create_challenge(make_record(f"a{n}", slot="s"))
        live = [n for n in range(5) if not _required(store.get_challenge(f"a{n}")).consumed]
        assert live == [4]
        # A consumed challenge frees its slot; the next one is live on its own.
        assert store.consume_challenge("a4", at(1)) is not None
        store.create_challenge(make_record("a5", slot="s"))
        assert store.consume_challenge("a5", at(1)) is not None
        # Purging expired challenges leaves the slot usable.
        store.create_challenge(make_record("a6", slot="s", lifetime=10))
        assert store.purge(at(10)) == 1
        store.create_challenge(make_record("a7", slot="s"))
        assert _required(store.get_challenge("a7")).consumed is False

    def test_count_attempt(self, store: Store) -> None:
        store.create_challenge(make_record("c1"))
        assert [store.count_attempt("c1") for _ in range(4)] == [1, 2, 3, 4]
        record = store.get_challenge("c1")
        assert record is not None
        assert record.attempts == 4
        assert store.count_attempt("unknown") is None

    def test_consume_once(self, store: Store) -> None:
        record = make_record("c1")
        store.create_challenge(record)
        won = store.consume_challenge("c1", at(10))
        assert won == record  # as it was before consumption
        assert won is not None
        assert won.consumed is False
        assert store.consume_challenge("c1", at(10)) is None
        after = store.get_challenge("c1")
        assert after is not None
        assert after.consumed is True
        assert store.consume_challenge("unknown", at(10)) is None

    def test_consume_refuses_expired(self, store: Store) -> None:
        store.create_challenge(make_record("c1", slot="a", lifetime=60))
        store.create_challenge(make_record("c2", slot="b", lifetime=60))
        assert store.consume_challenge("c1", at(60)) is None  # expiry instant is over
        left = store.get_challenge("c1")
        assert left is not None
        assert left.consumed is False  # a refusal changes nothing
        assert store.consume_challenge("c2", at(60) - dt.timedelta(microseconds=1)) is not None

    def test_consume_refuses_out_of_attempts(self, store: Store) -> None:
        store.create_challenge(make_record("c1", slot="a", max_attempts=2))
        store.create_challenge(make_record("c2", slot="b", max_attempts=2, attempts=2))
        store.count_attempt("c1")
        store.count_attempt("c1")
        assert store.consume_challenge("c1", at(1)) is None
        assert store.consume_challenge("c2", at(1)) is None
        store.create_challenge(make_record("c3", slot="c", max_attempts=2))
        store.count_attempt("c3")
        assert store.consume_challenge("c3", at(1)) is not None

    # Windowed counters -------------------------------------------------------
    def test_hit_counts_within_the_window(self, store: Store) -> None:
        assert store.peek("f", T0, 60) is None
        assert store.hit("f", T0, 60) == CounterState(count=1, first_at=T0, last_at=T0)
        assert store.hit("f", at(10), 60) == CounterState(count=2, first_at=T0, last_at=at(10))
        assert store.hit("f", at(59.999999), 60) == CounterState(3, T0, at(59.999999))
        assert store.peek("f", at(59.999999), 60) == CounterState(3, T0, at(59.999999))
        assert store.peek("g", at(1), 60) is None

    def test_hit_restarts_after_the_window(self, store: Store) -> None:
        store.hit("f", T0, 60)
        store.hit("f", at(30), 60)
        assert store.peek("f", at(60), 60) is None
        assert store.hit("f", at(60), 60) == CounterState(count=1, first_at=at(60), last_at=at(60))
        assert store.hit("f", at(61.5), 60) == CounterState(2, at(60), at(61.5))
        # A fractional window is honoured to the microsecond.
        store.hit("h", T0, 0.25)
        assert store.hit("h", at(0.249999), 0.25).count == 2
        assert store.hit("h", at(0.25), 0.25).count == 1

    def test_clear(self, store: Store) -> None:
        store.hit("f", T0, 60)
        store.clear("f")
        assert store.peek("f", T0, 60) is None
        assert store.hit("f", at(1), 60).count == 1
        store.clear("never-set")

    def test_window_must_be_positive(self, store: Store) -> None:
        for window in (0.0, -1.0, float("nan"), float("inf")):
            with pytest.raises(ConfigurationError):
                store.hit("f", T0, window)

    # Single-use tokens -------------------------------------------------------
    def test_tokens_are_single_use(self, store: Store) -> None:
        digests = [bytes([i]) * 32 for i in range(5)]
        store.add_tokens("recovery:alice", [*digests, digests[0]])
        assert store.count_tokens("recovery:alice") == 5
        assert store.consume_token("recovery:alice", digests[2]) is True
        assert store.consume_token("recovery:alice", digests[2]) is False
        assert store.consume_token("recovery:bob", digests[3]) is False
        assert store.consume_token("recovery:alice", b"\x00" * 31) is False
        assert store.count_tokens("recovery:alice") == 4
        assert store.count_tokens("recovery:bob") == 0

    def test_add_tokens_replaces(self, store: Store) -> None:
        store.add_tokens("k", [b"a" * 32, b"b" * 32])
        store.add_tokens("k", [b"c" * 32])
        assert store.count_tokens("k") == 1
        assert store.consume_token("k", b"a" * 32) is False
        assert store.consume_token("k", b"c" * 32) is True
        store.add_tokens("k", [])
        assert store.count_tokens("k") == 0

    # Housekeeping ------------------------------------------------------------
    def test_purge(self, store: Store) -> None:
        store.create_challenge(make_record("short", slot="a", lifetime=60))
        store.create_challenge(make_record("long", slot="b", lifetime=600))
        store.hit("w-short", T0, 60)
        store.hit("w-long", T0, 3600)
        store.advance("ctr", 5)
        store.add_tokens("tok", [b"t" * 32])
        store.put_enrollment(enrollment())
        assert store.purge(at(59)) == 0
        assert store.purge(at(60)) == 2  # the short challenge and the short window
        assert store.get_challenge("short") is None
        assert store.get_challenge("long") is not None
        assert store.peek("w-long", at(60), 3600) is not None
        assert store.purge(at(60)) == 0
        # Durable state is never purged.
        assert store.current("ctr") == 5
        assert store.count_tokens("tok") == 1
        assert store.get_enrollment("alice", "totp") is not None

    # Text the backends cannot hold ------------------------------------------
    @pytest.mark.parametrize("bad", UNSTORABLE)
    def test_unstorable_text_reads_as_absent(self, store: Store, bad: str) -> None:
        # Nothing can have been stored under it, so every lookup finds nothing,
        # alike on every backend (never StoreError or UnicodeEncodeError).
        assert store.get_enrollment(bad, "totp") is None
        assert store.get_enrollment("alice", bad) is None
        assert store.delete_enrollment(bad, "totp") is False
        assert store.current(bad) is None
        store.reset_counter(bad)
        assert store.get_challenge(bad) is None
        assert store.count_attempt(bad) is None
        assert store.consume_challenge(bad, at(1)) is None
        assert store.peek(bad, T0, 60) is None
        store.clear(bad)
        assert store.consume_token(bad, b"t" * 32) is False
        assert store.count_tokens(bad) == 0

    @pytest.mark.parametrize("bad", UNSTORABLE)
    def test_unstorable_text_is_refused_on_write(self, store: Store, bad: str) -> None:
        writes: list[Callable[[], object]] = [
            lambda: store.put_enrollment(enrollment(subject=bad)),
            lambda: store.put_enrollment(enrollment(method=bad)),
            lambda: store.advance(bad, 1),
            lambda: store.create_challenge(make_record(bad, slot="a")),
            lambda: store.create_challenge(make_record("c-slot", slot=bad)),
            lambda: store.create_challenge(make_record("c-subject", slot="b", subject=bad)),
            lambda: store.hit(bad, T0, 60),
            lambda: store.add_tokens(bad, [b"t" * 32]),
        ]
        for write in writes:
            with pytest.raises(MalformedInput):
                write()
        # A refused write leaves nothing behind.
        assert store.get_challenge("c-slot") is None
        assert store.get_challenge("c-subject") is None
        assert store.purge(at(10**6)) == 0

    def test_keys_are_exact_text(self, store: Store) -> None:
        # No normalization, case folding or truncation: each key is its own.
        keys = ["k:é", "k:e\u0301", "k:É", "k:ÿ", "k:\u0661", "k:😀", "k: ", "k:", "k"]
        for n, key in enumerate(keys, start=1):
            assert store.advance(key, n) is True
            assert store.hit(key, T0, 60).count == 1
        assert [store.current(key) for key in keys] == list(range(1, len(keys) + 1))
        assert all(store.hit(key, at(1), 60).count == 2 for key in keys)
        store.put_enrollment(enrollment(subject="عائشة 😀", secret=b"unicode"))
        got = store.get_enrollment("عائشة 😀", "totp")
        assert got is not None
        assert got.subject == "عائشة 😀"
        assert got.secret.reveal() == b"unicode"

    # The throttle and a method on this store, with client contexts ------------
    def test_throttle_counts_per_client_with_any_client_id(self, store: Store) -> None:
        clock = FixedClock(T0)
        wide = ThrottlePolicy(free_failures=60, lockout_after=100)
        counts = FailureThrottle(store=store, clock=clock, namespace="c", policy=wide)
        # Clearing only the per-subject count (release without a context) after
        # each call leaves the per-client counts to speak: two ids that shared a
        # counter would show a count of 2 in the first round.
        for round_ in (1, 2):
            for client_id in CLIENT_IDS:
                got = counts.acquire("bob", ClientContext(client_id=client_id))
                counts.release("bob", None)
                assert got.count == (round_ if client_id else 1), (client_id, round_)
        # Subjects and clients that would concatenate to the same text stay apart.
        assert counts.acquire("a\x00k", None).count == 1
        assert counts.acquire("a", ClientContext(client_id="k")).count == 1
        assert counts.acquire("a/k", None).count == 1
        assert counts.acquire("a@1", None).count == 1
        assert counts.acquire("a", None, generation=1).count == 1
        assert counts.acquire("b", ClientContext(client_id="k@1")).count == 1
        assert counts.acquire("b", ClientContext(client_id="k"), generation=1).count == 1

    def test_lockout_per_client_on_this_store(self, store: Store) -> None:
        clock = FixedClock(T0)
        policy = ThrottlePolicy(free_failures=1, base_delay=1.0, lockout_after=2)
        throttle = FailureThrottle(store=store, clock=clock, namespace="t", policy=policy)
        context = ClientContext(client_id="kiosk\x00 7 \ud800")
        throttle.acquire("alice", context)
        throttle.acquire("alice", context)
        assert throttle.locked_out("alice", context) is True
        with pytest.raises(LockedOut):
            throttle.acquire("alice", context)
        throttle.release("alice", context)
        assert throttle.locked_out("alice", context) is False

    def test_totp_with_a_client_id_on_this_store(self, store: Store) -> None:
        clock = FixedClock.at(1_699_999_990)
        totp = TotpAuthenticator(
            store=store, audit=MemoryAuditLog(), clock=clock, random=FixedRandom(3)
        )
        totp.enroll("alice", secret=b"12345678901234567890")
        oracle = pyotp.TOTP("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
        context = ClientContext(client_id="k", ip="127.0.0.1")
        assert totp.confirm("alice", oracle.at(1_699_999_990), context=context).subject == "alice"
        with pytest.raises(InvalidCode):
            totp.verify_code("alice", "000000", context=context)
        challenge = totp.begin("alice", context=context)
        clock.advance(30)
        assert totp.verify(challenge, oracle.at(1_700_000_020), context=context).subject == "alice"
        for bad in UNSTORABLE:
            with pytest.raises(ChallengeNotFound):
                totp.verify(bad, "123456", context=context)
            with pytest.raises(MalformedInput):
                totp.verify_code(bad, "123456", context=context)

    # Races -------------------------------------------------------------------
    def test_racing_threads_have_exactly_one_winner(self, store: Store) -> None:
        threads = 8
        store.create_challenge(make_record("race", slot="race"))
        store.create_challenge(make_record("att", slot="att", max_attempts=100))
        store.add_tokens("tok", [b"t" * 32])

        def race(n: int) -> tuple[bool, bool, bool, int, int | None]:
            outcome = (
                store.advance("ctr", 1),
                store.consume_challenge("race", at(1)) is not None,
                store.consume_token("tok", b"t" * 32),
                store.hit("h", T0, 60).count,
                store.count_attempt("att"),
            )
            store.create_challenge(make_record(f"s{n}", slot="shared"))
            return outcome

        outcomes = []
        for result in race_threads([functools.partial(race, n) for n in range(threads)]):
            if isinstance(result, BaseException):
                raise result
            outcomes.append(result)
        assert len(outcomes) == threads
        assert sum(o[0] for o in outcomes) == 1
        assert sum(o[1] for o in outcomes) == 1
        assert sum(o[2] for o in outcomes) == 1
        assert sorted(o[3] for o in outcomes) == list(range(1, threads + 1))
        assert sorted(o[4] or 0 for o in outcomes) == list(range(1, threads + 1))
        live = [n for n in range(threads) if not _required(store.get_challenge(f"s{n}")).consumed]
        assert len(live) == 1


class CountingKeyring(Keyring):
    """A keyring that counts decryptions."""

    def __init__(self) -> None:
        super().__init__({"k1": KEY1}, primary="k1")
        self.opens = 0

    def open(self, sealed: bytes, *, context: bytes) -> bytes:
        self.opens += 1
        return super().open(sealed, context=context)


class PersistentStoreContract(StoreContract):
    """What a store that outlives its process must also do.

    Needs ``open_store(keyring)``: a second handle on the same data.
    """

    def test_a_missing_enrollment_costs_the_decryption_of_a_found_one(
        self, open_store: OpenStore
    ) -> None:
        # The time of get_enrollment must not tell enrolled from unknown subjects.
        ring = CountingKeyring()
        store = open_store(ring)
        store.put_enrollment(enrollment())
        ring.opens = 0
        assert store.get_enrollment("alice", "totp") is not None
        assert ring.opens == 1
        assert store.get_enrollment("nobody", "totp") is None
        assert ring.opens == 2

    def test_state_survives_reopening(
        self, store: Store, open_store: OpenStore, keyring: Keyring
    ) -> None:
        store.put_enrollment(enrollment(secret=b"persisted"))
        store.advance("ctr", 42)
        store.create_challenge(make_record("c1"))
        store.count_attempt("c1")
        store.hit("w", T0, 60)
        store.add_tokens("tok", [b"x" * 32])
        store.close()
        again = open_store(keyring)
        try:
            got = again.get_enrollment("alice", "totp")
            assert got is not None
            assert got.secret.reveal() == b"persisted"
            assert again.current("ctr") == 42
            record = again.get_challenge("c1")
            assert record is not None
            assert record.attempts == 1
            assert again.hit("w", at(1), 60).count == 2
            assert again.consume_token("tok", b"x" * 32) is True
        finally:
            again.close()

    def test_wrong_key_raises_secret_key_error(self, store: Store, open_store: OpenStore) -> None:
        store.put_enrollment(enrollment())
        other = open_store(Keyring({"k1": b"\x99" * 32}, primary="k1"))  # same id, wrong key
        try:
            with pytest.raises(SecretKeyError):
                other.get_enrollment("alice", "totp")
        finally:
            other.close()
        missing = open_store(Keyring({"k9": b"\x98" * 32}, primary="k9"))  # key id absent
        try:
            with pytest.raises(SecretKeyError):
                missing.get_enrollment("alice", "totp")
        finally:
            missing.close()

    def test_key_rotation(self, store: Store, open_store: OpenStore, keyring: Keyring) -> None:
        store.put_enrollment(enrollment(subject="old", secret=b"under k1"))
        store.close()
        k1 = keyring
        assert k1.primary == "k1"
        rotated = Keyring({"k1": KEY1, "k2": KEY2}, primary="k2")
        both = open_store(rotated)
        try:
            old = both.get_enrollment("old", "totp")
            assert old is not None
            assert old.secret.reveal() == b"under k1"
            both.put_enrollment(enrollment(subject="new", secret=b"under k2"))
        finally:
            both.close()
        only_k2 = open_store(Keyring({"k2": KEY2}, primary="k2"))
        try:
            new = only_k2.get_enrollment("new", "totp")
            assert new is not None
            assert new.secret.reveal() == b"under k2"
            with pytest.raises(SecretKeyError):
                only_k2.get_enrollment("old", "totp")
        finally:
            only_k2.close()

    # Re-sealing after a key rotation -------------------------------------------
    def test_reseal_moves_every_secret_to_the_primary_key(
        self, store: Store, open_store: OpenStore
    ) -> None:
        pending = attrs.evolve(enrollment(subject="carol"), confirmed=False, expires_at=at(600))
        originals = [
            enrollment(subject="alice", secret=b"a" * 20),
            enrollment(subject="alice", method="hotp", secret=b"b" * 20),
            enrollment(subject="\u0639\u0627\u0626\u0634\u0629", secret=b"c" * 20),
            pending,
        ]
        for original in originals:
            store.put_enrollment(original)
        store.advance("totp:alice", 41)
        store.add_tokens("recovery:alice", [b"t" * 32])
        store.close()
        rotated = open_store(_ring("k1", "k2", primary="k2"))
        try:
            fresh = enrollment(subject="dave", secret=b"d" * 20)
            rotated.put_enrollment(fresh)  # under k2 already: not counted
            assert rotated.reseal() == len(originals)
            assert rotated.reseal() == 0  # idempotent
        finally:
            rotated.close()
        only_k2 = open_store(_ring("k2", primary="k2"))
        try:
            for original in [*originals, fresh]:
                # Every field comes back as it was; only the sealing changed.
                assert only_k2.get_enrollment(original.subject, original.method) == original
                assert _secret(only_k2, original.subject, original.method) == (
                    original.secret.reveal()
                )
            assert only_k2.current("totp:alice") == 41
            assert only_k2.count_tokens("recovery:alice") == 1
            assert only_k2.reseal() == 0
        finally:
            only_k2.close()

    def test_reseal_raises_naming_a_key_missing_from_the_ring(
        self, store: Store, open_store: OpenStore
    ) -> None:
        for n in range(3):
            store.put_enrollment(enrollment(subject=f"k1-{n}", secret=b"k1 secret %d" % n))
        under_k3 = open_store(_ring("k3", primary="k3"))
        try:
            under_k3.put_enrollment(enrollment(subject="k3-0", secret=b"the k3 secret"))
        finally:
            under_k3.close()
        rotated = open_store(_ring("k1", "k2", primary="k2"))
        try:
            with pytest.raises(SecretKeyError) as raised:
                rotated.reseal()
            message = str(raised.value)
            assert "k3" in message
            assert "k3 secret" not in message
            assert b"the k3 secret".hex() not in message
            # Nothing was lost: every k1 record still opens (re-sealed or not).
            for n in range(3):
                assert _secret(rotated, f"k1-{n}") == b"k1 secret %d" % n
        finally:
            rotated.close()
        # With the missing key back in the ring, a second run finishes the job.
        complete = open_store(_ring("k1", "k2", "k3", primary="k2"))
        try:
            assert 1 <= complete.reseal() <= 4
            assert complete.reseal() == 0
        finally:
            complete.close()
        only_k2 = open_store(_ring("k2", primary="k2"))
        try:
            assert _secret(only_k2, "k3-0") == b"the k3 secret"
            assert [_secret(only_k2, f"k1-{n}") for n in range(3)] == [
                b"k1 secret %d" % n for n in range(3)
            ]
        finally:
            only_k2.close()

    def test_reseal_never_undoes_a_write_made_while_it_runs(
        self, store: Store, open_store: OpenStore
    ) -> None:
        """A write lands between reseal's read of a record and its write-back."""
        names = ["deleted", "reenrolled", "confirmed", "old-instance", "kept-1", "kept-2"]
        for name in names:
            store.put_enrollment(enrollment(subject=name, secret=name.encode()))
            store.advance(f"totp:{name}", 1)
        store.close()
        new = open_store(_ring("k1", "k2", primary="k2"))
        # An instance not switched to the new primary yet seals under k1.
        old = open_store(_ring("k1", "k2", primary="k1"))
        confirmed = attrs.evolve(enrollment(subject="confirmed"), confirmed=False)
        seen: set[str] = set()

        def concurrently(context: bytes) -> None:
            subject = context.rsplit(b"\x00", 1)[-1].decode()
            if subject not in names or subject in seen:
                return
            seen.add(subject)
            new.advance(f"totp:{subject}", 2)  # a login meanwhile
            if subject == "deleted":
                assert new.delete_enrollment("deleted", "totp") is True
            elif subject == "reenrolled":
                new.put_enrollment(enrollment(subject="reenrolled", secret=b"new seed"))
            elif subject == "confirmed":
                new.put_enrollment(attrs.evolve(confirmed, secret=Secret(b"confirmed seed")))
            elif subject == "old-instance":
                old.put_enrollment(enrollment(subject="old-instance", secret=b"old-ring seed"))

        hooked = _SealHook(concurrently)
        resealer = open_store(hooked)
        try:
            done = resealer.reseal()
            hooked.finish()
            # The two untouched records at least; a backend that locks each
            # record while sealing it also counts those written after it.
            assert 2 <= done <= len(names)
            assert seen == set(names)
            assert new.get_enrollment("deleted", "totp") is None  # not resurrected
            assert _secret(new, "reenrolled") == b"new seed"
            got = new.get_enrollment("confirmed", "totp")
            assert got is not None
            assert got.confirmed is False
            assert got.secret.reveal() == b"confirmed seed"
            assert _secret(new, "old-instance") == b"old-ring seed"
            assert [_secret(new, f"kept-{n}") for n in (1, 2)] == [b"kept-1", b"kept-2"]
            assert all(new.current(f"totp:{name}") == 2 for name in names)
            # The record the old instance wrote under k1 moves on the next run.
            assert new.reseal() == 1
            assert new.reseal() == 0
        finally:
            for handle in (resealer, old, new):
                handle.close()
        only_k2 = open_store(_ring("k2", primary="k2"))
        try:
            assert _secret(only_k2, "old-instance") == b"old-ring seed"
            assert _secret(only_k2, "reenrolled") == b"new seed"
            assert only_k2.get_enrollment("deleted", "totp") is None
        finally:
            only_k2.close()

    def test_reseal_races_logins_deletions_and_reenrollments(
        self, store: Store, open_store: OpenStore
    ) -> None:
        count = 60
        for n in range(count):
            store.put_enrollment(enrollment(subject=f"s{n}", secret=b"old %d" % n))
        store.close()
        resealer = open_store(_ring("k1", "k2", primary="k2"))
        other = open_store(_ring("k1", "k2", primary="k2"))

        def logins() -> None:
            # Every third subject re-enrolls, every third is deleted, all log in.
            for n in range(count):
                assert other.advance(f"hotp:s{n}", n + 1) is True
                if n % 3 == 1:
                    other.put_enrollment(enrollment(subject=f"s{n}", secret=b"new %d" % n))
                elif n % 3 == 2:
                    assert other.delete_enrollment(f"s{n}", "totp") is True

        try:
            outcomes = race_threads([resealer.reseal, logins])
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            assert isinstance(outcomes[0], int)
            assert count // 3 <= outcomes[0] <= count
            assert resealer.reseal() == 0
        finally:
            resealer.close()
            other.close()
        only_k2 = open_store(_ring("k2", primary="k2"))
        try:
            for n in range(count):
                expected = (b"old %d" % n, b"new %d" % n, None)[n % 3]
                assert _secret(only_k2, f"s{n}") == expected, n
                assert only_k2.current(f"hotp:s{n}") == n + 1
        finally:
            only_k2.close()

"""Re-sealing after a key rotation, backend by backend: the raw bytes, batches, scoping.

The behaviour every backend shares (counts, idempotence, a missing key, writes
made while a reseal runs) is in the store contract; here the stored bytes are
read behind each store's back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from macnss_auth.errors import ConfigurationError, SecretKeyError
from macnss_auth.store import Keyring, MemoryStore, SQLiteStore
from macnss_auth.store.postgres import PostgresStore
from macnss_auth.store.redis import RedisStore
from macnss_auth.testing.races import race_processes
from macnss_auth.testing.store_contract import KEY1, KEY2, enrollment
from tests.store._reseal_workers import race_worker

Resealable = SQLiteStore | PostgresStore | RedisStore
# (subject, method) -> (sealed bytes, key id column or field)
Raw = dict[tuple[str, str], tuple[bytes, str]]

K1 = Keyring({"k1": KEY1}, primary="k1")
ROTATED = Keyring({"k1": KEY1, "k2": KEY2}, primary="k2")
ONLY_K2 = Keyring({"k2": KEY2}, primary="k2")


class Backend:
    """Opens handles on one fresh store and reads its enrollments' raw bytes."""

    def __init__(self, opener: Callable[[Keyring], Resealable], raw: Callable[[], Raw]) -> None:
        self._opener = opener
        self.raw = raw
        self.opened: list[Resealable] = []

    def open(self, keyring: Keyring) -> Resealable:
        store = self._opener(keyring)
        self.opened.append(store)
        return store


def _sqlite(tmp_path: Path) -> Backend:
    import sqlite3  # noqa: PLC0415 (only this backend reads the file itself)

    path = tmp_path / "state.sqlite3"

    def raw() -> Raw:
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT subject, method, sealed, key_id FROM enrollments").fetchall()
        return {(s, m): (bytes(b), k) for s, m, b, k in rows}

    return Backend(lambda keyring: SQLiteStore(path, keyring=keyring), raw)


def _postgres(conninfo: str) -> Backend:
    schema = f"t_{uuid.uuid4().hex}"

    def raw() -> Raw:
        query = psycopg.sql.SQL("SELECT subject, method, sealed, key_id FROM {}.enrollments")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            rows = conn.execute(query.format(psycopg.sql.Identifier(schema))).fetchall()
        return {(s, m): (bytes(b), k) for s, m, b, k in rows}

    return Backend(lambda keyring: PostgresStore(conninfo, keyring=keyring, schema=schema), raw)


def _redis(url: str, prefix: str | None = None) -> Backend:
    # Glob characters in the prefix: SCAN MATCH must take them literally.
    prefix = prefix or f"{{t{uuid.uuid4().hex[:8]}?*[x]}}:"

    def raw() -> Raw:
        client = redis.Redis.from_url(url)
        try:
            found: Raw = {}
            head = (prefix + "e:").encode()
            for key in client.scan_iter(count=1000):
                if key.startswith(head):
                    fields = client.hgetall(key)
                    sealed, key_id = fields[b"sealed"], fields[b"key_id"]
                    assert isinstance(sealed, bytes)
                    assert isinstance(key_id, bytes)
                    subject, method = json.loads(key[len(head) :])
                    found[(subject, method)] = (sealed, key_id.decode())
            return found
        finally:
            client.close()

    return Backend(lambda keyring: RedisStore(url, keyring=keyring, prefix=prefix), raw)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.services),
        pytest.param("redis", marks=pytest.mark.services),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        made = _sqlite(tmp_path)
    elif request.param == "postgres":
        made = _postgres(request.getfixturevalue("postgres"))
    else:
        made = _redis(request.getfixturevalue("redis_url"))
    yield made
    for store in made.opened:
        store.close()


def _header(key_id: str) -> bytes:
    # keyring.py: version 1, the key id's length, the key id.
    return bytes([1, len(key_id)]) + key_id.encode()


SUBJECTS = ["alice", "bob", "Émile", "\u0639\u0627\u0626\u0634\u0629", "zoe", "a:b", "😀"]


def test_resealed_blobs_carry_the_new_key_id(backend: Backend) -> None:
    old = backend.open(K1)
    for n, subject in enumerate(SUBJECTS):
        old.put_enrollment(enrollment(subject=subject, secret=b"seed-%02d-xyz" % n))
    before = backend.raw()
    assert len(before) == len(SUBJECTS)
    assert all(sealed.startswith(_header("k1")) and kid == "k1" for sealed, kid in before.values())
    rotated = backend.open(ROTATED)
    assert rotated.reseal(batch_size=2) == len(SUBJECTS)  # several batches
    after = backend.raw()
    assert after.keys() == before.keys()
    for record, (sealed, kid) in after.items():
        assert kid == "k2"
        assert sealed.startswith(_header("k2"))
        assert sealed != before[record][0]
        assert b"-xyz" not in sealed  # sealed, not copied
    assert rotated.reseal(batch_size=2) == 0
    assert backend.raw() == after  # a second run writes nothing
    fresh = backend.open(ONLY_K2)
    for n, subject in enumerate(SUBJECTS):
        got = fresh.get_enrollment(subject, "totp")
        assert got is not None
        assert got.secret.reveal() == b"seed-%02d-xyz" % n


def test_batches_skip_what_is_under_the_primary_already(backend: Backend) -> None:
    old, rotated = backend.open(K1), backend.open(ROTATED)
    expected_k1 = 0
    for n in range(23):
        # Interleaved: every third record is written under k2 already.
        writer = rotated if n % 3 == 0 else old
        expected_k1 += writer is old
        for method in ("totp", "hotp"):
            writer.put_enrollment(enrollment(subject=f"s{n:02d}", method=method))
    assert rotated.reseal(batch_size=3) == 2 * expected_k1
    assert {kid for _, kid in backend.raw().values()} == {"k2"}
    assert rotated.reseal(batch_size=1) == 0


def test_batch_size_must_be_positive(backend: Backend) -> None:
    store = backend.open(ROTATED)
    for size in (0, -1):
        with pytest.raises(ConfigurationError):
            store.reseal(batch_size=size)


def test_a_record_that_does_not_open_stops_the_run_in_its_batch(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    """A wrong key under the right id: SecretKeyError, and its batch keeps k1."""
    wrong = Keyring({"k1": bytes(32)}, primary="k1")
    old = backend.open(K1)
    for subject in ("a1", "a2", "a3"):
        old.put_enrollment(enrollment(subject=subject))
    backend.open(wrong).put_enrollment(enrollment(subject="b-wrong", secret=b"x" * 20))
    for subject in ("c1", "c2"):
        old.put_enrollment(enrollment(subject=subject))
    with pytest.raises(SecretKeyError, match="k1"):
        backend.open(ROTATED).reseal(batch_size=100)
    raw = backend.raw()
    assert raw[("b-wrong", "totp")][1] == "k1"
    if request.node.callspec.params["backend"] != "redis":
        # All six are one batch of the SQL stores' ordered pages: none was written. (Redis:
        # a SCAN reply holds whatever keys its hash slots hold, with other tests' keys in
        # the same server, so which records shared the wrong one's batch is not known.)
        assert [kid for _, kid in raw.values()] == ["k1"] * 6


@pytest.mark.services
def test_redis_reseal_stays_inside_its_prefix(redis_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    mine = _redis(redis_url, f"{{{tag}?}}:")
    # What the unescaped pattern "{tag?}:e:*" would also match.
    theirs = _redis(redis_url, f"{{{tag}x}}:")
    try:
        mine.open(K1).put_enrollment(enrollment(subject="mine"))
        theirs.open(K1).put_enrollment(enrollment(subject="theirs"))
        assert mine.open(ROTATED).reseal() == 1
        assert [kid for _, kid in mine.raw().values()] == ["k2"]
        assert [kid for _, kid in theirs.raw().values()] == ["k1"]
    finally:
        for store in [*mine.opened, *theirs.opened]:
            store.close()


class _Rotating(Keyring):
    """k1 and k2; seals under k1 until :meth:`rotate`, then k2; :meth:`retire` drops k1."""

    def __init__(self) -> None:
        super().__init__({"k1": KEY1, "k2": KEY2}, primary="k1")
        self._now = Keyring({"k1": KEY1, "k2": KEY2}, primary="k1")

    def rotate(self) -> None:
        self._now = ROTATED

    def retire(self) -> None:
        self._now = ONLY_K2

    @property
    def primary(self) -> str:
        return self._now.primary

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        return self._now.seal(plaintext, context=context)

    def open(self, sealed: bytes, *, context: bytes) -> bytes:
        return self._now.open(sealed, context=context)


def test_memory_store_reseals_and_never_undoes_a_concurrent_write() -> None:
    ring = _Rotating()
    store = MemoryStore(keyring=ring)
    for subject in ("a", "b", "c", "d"):
        store.put_enrollment(enrollment(subject=subject, secret=subject.encode() * 4))
    ring.rotate()
    store.put_enrollment(enrollment(subject="e", secret=b"eeee"))  # under k2
    assert store.reseal() == 4
    assert store.reseal() == 0
    ring.retire()
    assert [
        got.secret.reveal() if (got := store.get_enrollment(s, "totp")) else None for s in "abcde"
    ] == [b"aaaa", b"bbbb", b"cccc", b"dddd", b"eeee"]


def test_memory_store_reseal_loses_no_write_made_while_it_seals() -> None:
    fired: set[bytes] = set()

    class Hooked(_Rotating):
        def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
            sealed = super().seal(plaintext, context=context)
            if self.primary != "k2" or context in fired:
                return sealed
            fired.add(context)  # once per record
            if context.endswith(b"\x00gone"):
                store.delete_enrollment("gone", "totp")
                store.put_enrollment(enrollment(subject="new", secret=b"later"))
            if context.endswith(b"\x00renewed"):
                self._now = Keyring({"k1": KEY1, "k2": KEY2}, primary="k1")  # an old writer
                store.put_enrollment(enrollment(subject="renewed", secret=b"renewed seed"))
                self._now = ROTATED
            return sealed

    ring = Hooked()
    store = MemoryStore(keyring=ring)
    for subject in ("gone", "renewed", "kept"):
        store.put_enrollment(enrollment(subject=subject, secret=b"first"))
    ring.rotate()
    assert store.reseal() == 1  # "kept" only: the other two changed meanwhile
    assert store.get_enrollment("gone", "totp") is None
    renewed = store.get_enrollment("renewed", "totp")
    assert renewed is not None
    assert renewed.secret.reveal() == b"renewed seed"
    assert store.reseal() == 1  # the renewal written under k1 moves now
    ring.retire()
    for subject, secret in (("renewed", b"renewed seed"), ("kept", b"first"), ("new", b"later")):
        got = store.get_enrollment(subject, "totp")
        assert got is not None
        assert got.secret.reveal() == secret


def test_memory_store_without_a_keyring_has_nothing_to_reseal() -> None:
    store = MemoryStore()
    store.put_enrollment(enrollment())
    assert store.reseal() == 0


def test_sqlite_reseal_in_one_process_while_another_logs_in(tmp_path: Path) -> None:
    """Two processes meet at SQLite's file lock: nothing lost, nothing resurrected."""
    path, count = tmp_path / "state.sqlite3", 300
    with SQLiteStore(path, keyring=K1) as store, store.commit_group():
        for n in range(count):
            store.put_enrollment(enrollment(subject=f"s{n}", secret=b"old %d" % n))
    outcomes = race_processes(
        race_worker, [("reseal", str(path), count), ("logins", str(path), count)]
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    moved, logins = outcomes
    assert logins == count
    assert isinstance(moved, int)
    assert count // 3 <= moved <= count
    with SQLiteStore(path, keyring=ROTATED) as store:
        assert store.reseal() == 0
    with SQLiteStore(path, keyring=ONLY_K2) as store:
        for n in range(count):
            got = store.get_enrollment(f"s{n}", "totp")
            expected = (b"old %d" % n, b"new %d" % n, None)[n % 3]
            assert (None if got is None else got.secret.reveal()) == expected, n
            assert store.current(f"hotp:s{n}") == n + 1

"""Passkeys on every store backend: the same ceremonies, sealed keys, an atomic counter."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from macnss_auth.errors import AuthenticationFailed, Reason, SecretKeyError
from macnss_auth.store import Keyring, MemoryStore, SQLiteStore
from macnss_auth.store.base import Store
from macnss_auth.testing import FixedClock
from tests.passkey.helpers import NOW, make_setup
from tests.store.services import postgres_server, redis_server

SUBJECT = "citizen-0003"
KEY = bytes(range(32))

OpenStore = Callable[[Keyring], Store]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as conninfo:
        yield conninfo


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
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
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    opened: list[Store] = []
    kind = request.param
    memory: dict[str, MemoryStore] = {}
    # Stores opened by one test share their data, as service instances share a database.
    tag = uuid.uuid4().hex[:12]

    def open_store(keyring: Keyring) -> Store:
        store: Store
        if kind == "memory":
            # One in-process store: a second "instance" shares it, as processes share a DB.
            store = memory.setdefault("store", MemoryStore(keyring=keyring))
        elif kind == "sqlite":
            store = SQLiteStore(tmp_path / "state.sqlite3", keyring=keyring, synchronous="NORMAL")
        elif kind == "postgres":
            from macnss_auth.store.postgres import PostgresStore  # noqa: PLC0415 - optional extra

            conninfo = request.getfixturevalue("postgres")
            store = PostgresStore(conninfo, keyring=keyring, schema=f"p{tag}")
        else:
            from macnss_auth.store.redis import RedisStore  # noqa: PLC0415 - optional extra

            url = request.getfixturevalue("redis_url")
            store = RedisStore(url, keyring=keyring, prefix=f"{{t{tag}}}:")
        opened.append(store)
        return store

    if kind == "postgres":
        request.getfixturevalue("postgres")
    if kind == "redis":
        request.getfixturevalue("redis_url")
    yield open_store
    for store in opened:
        store.close()


def test_the_ceremonies_on_every_store(open_store: OpenStore) -> None:
    setup = make_setup(store=open_store(Keyring({"k1": KEY}, primary="k1")))
    phone, laptop = setup.device(), setup.device(backup_eligible=True, counter=False)
    first = setup.register(SUBJECT, phone)
    setup.register(SUBJECT, laptop)
    assert [c.credential_id for c in setup.passkeys.credentials(SUBJECT)] == [
        first.credential_id,
        *laptop.credentials,
    ]
    assert setup.login(SUBJECT, phone).details["counter"] == "1"
    assert setup.login(None, laptop).subject == SUBJECT
    assert setup.login(None, phone).details["counter"] == "2"
    challenge = setup.passkeys.begin(SUBJECT)
    with pytest.raises(AuthenticationFailed) as info:
        setup.passkeys.verify(challenge, phone.get(challenge.data["options"], sign_count=2))
    assert info.value.reason is Reason.SIGN_COUNT_REGRESSED
    assert setup.passkeys.remove_credential(SUBJECT, first.credential_id)
    challenge = setup.passkeys.begin()
    with pytest.raises(AuthenticationFailed) as info:
        setup.passkeys.verify(challenge, phone.get(challenge.data["options"]))
    assert info.value.reason is Reason.UNKNOWN_CREDENTIAL
    assert setup.login(SUBJECT, laptop).subject == SUBJECT


def test_a_second_instance_sees_the_credentials(open_store: OpenStore) -> None:
    keyring = Keyring({"k1": KEY}, primary="k1")
    clock = FixedClock.at(NOW)
    one = make_setup(store=open_store(keyring), clock=clock)
    two = make_setup(store=open_store(keyring), clock=clock)
    phone = one.device()
    one.register(SUBJECT, phone)
    challenge = one.passkeys.begin()
    # Begun on one instance, verified on the other.
    assert two.passkeys.verify(challenge.id, phone.get(challenge.data["options"])).subject == (
        SUBJECT
    )


def test_records_do_not_open_under_another_key(open_store: OpenStore) -> None:
    if isinstance(open_store(Keyring({"k1": KEY}, primary="k1")), MemoryStore):
        pytest.skip("a memory store lives and dies with its one keyring")
    setup = make_setup(store=open_store(Keyring({"k1": KEY}, primary="k1")))
    phone = setup.device()
    setup.register(SUBJECT, phone)
    other = make_setup(store=open_store(Keyring({"k1": bytes(32)}, primary="k1")))
    with pytest.raises(SecretKeyError):
        other.passkeys.credentials(SUBJECT)


def test_public_keys_and_user_handles_are_sealed_in_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    setup = make_setup(store=SQLiteStore(path, keyring=Keyring({"k1": KEY}, primary="k1")))
    phone = setup.device()
    setup.register(SUBJECT, phone)
    (credential,) = phone.credentials.values()
    with sqlite3.connect(path) as db:
        dump = b"".join(
            bytes(value) if isinstance(value, bytes) else str(value).encode()
            for row in db.execute("SELECT * FROM enrollments")
            for value in row
        )
    assert credential.cose_public_key() not in dump
    assert credential.user_handle not in dump


def test_racing_assertions_with_one_counter_value_let_one_through(open_store: OpenStore) -> None:
    keyring = Keyring({"k1": KEY}, primary="k1")
    clock = FixedClock.at(NOW)
    # Two service instances on one database.
    setups = [make_setup(store=open_store(keyring), clock=clock) for _ in range(2)]
    phone = setups[0].device()
    setups[0].register(SUBJECT, phone)
    # A clone and the original answer two challenges with the same counter value.
    pairs = []
    for setup in setups:
        challenge = setup.passkeys.begin(SUBJECT)
        pairs.append((setup, challenge, phone.get(challenge.data["options"], sign_count=7)))
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def run(index: int) -> None:
        setup, challenge, response = pairs[index]
        barrier.wait()
        try:
            setup.passkeys.verify(challenge, response)
        except AuthenticationFailed as exc:
            outcomes.append(exc.reason.value)
        else:
            outcomes.append("ok")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", Reason.SIGN_COUNT_REGRESSED.value]


def test_a_public_key_swapped_in_the_database_does_not_open(tmp_path: Path) -> None:
    """Someone with write access to the database but not the keyring plants their own key."""
    path = tmp_path / "state.sqlite3"
    setup = make_setup(store=SQLiteStore(path, keyring=Keyring({"k1": KEY}, primary="k1")))
    victim, attacker = setup.device(), setup.device()
    setup.register(SUBJECT, victim)
    setup.register("attacker", attacker)
    challenge = setup.passkeys.begin(SUBJECT)
    with sqlite3.connect(path) as db:
        rows = dict(
            db.execute("SELECT json_extract(params, '$.owner'), sealed FROM enrollments"
                       " WHERE method = 'passkey-credential'").fetchall()
        )  # fmt: skip
        db.execute(
            "UPDATE enrollments SET sealed = ? WHERE method = 'passkey-credential'"
            " AND json_extract(params, '$.owner') = ?",
            (rows["attacker"], SUBJECT),
        )
    # The attacker signs with their key, presenting the victim's credential id.
    (planted,) = victim.credentials.values()
    planted.key = next(iter(attacker.credentials.values())).key
    with pytest.raises(SecretKeyError):
        setup.passkeys.verify(challenge, victim.get(challenge.data["options"]))
    # The tampered record stays unusable (an operator must look), it never authenticates.
    with pytest.raises(SecretKeyError):
        setup.passkeys.credentials(SUBJECT)

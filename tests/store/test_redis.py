"""RedisStore against a real redis-server on 127.0.0.1 (see services.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from macnss_auth.errors import ConfigurationError, SchemaVersionError
from macnss_auth.store import Keyring, Store
from macnss_auth.store.redis import REDIS_SCHEMA_VERSION, RedisStore
from macnss_auth.testing.store_contract import PersistentStoreContract, at, make_record

pytestmark = pytest.mark.services


@pytest.fixture
def prefix() -> str:
    return f"{{t{uuid.uuid4().hex}}}:"


class TestRedisStore(PersistentStoreContract):
    @pytest.fixture
    def open_store(self, redis_url: str, prefix: str) -> Iterator[Callable[[Keyring], Store]]:
        opened: list[RedisStore] = []

        def open_store(keyring: Keyring) -> Store:
            store = RedisStore(redis_url, keyring=keyring, prefix=prefix)
            opened.append(store)
            return store

        yield open_store
        for store in opened:
            store.close()

    @pytest.fixture
    def store(self, open_store: Callable[[Keyring], Store], keyring: Keyring) -> Store:
        return open_store(keyring)


def test_newer_schema_is_refused(redis_url: str, prefix: str, keyring: Keyring) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(prefix + "schema", str(REDIS_SCHEMA_VERSION + 1))
        with pytest.raises(SchemaVersionError):
            RedisStore(client, keyring=keyring, prefix=prefix)
    finally:
        client.close()


def test_times_beyond_fourteen_digits_stay_exact(
    redis_url: str, prefix: str, keyring: Keyring
) -> None:
    # Microseconds since the epoch have 16 digits; Lua's default number
    # formatting keeps 14. The scripts must carry every digit.
    with RedisStore(redis_url, keyring=keyring, prefix=prefix) as store:
        far = at(0).replace(year=2112)
        tick = dt.timedelta(microseconds=1)
        assert store.hit("w", far, 0.000002).first_at == far
        assert store.hit("w", far + tick, 0.000002).count == 2
        restarted = store.hit("w", far + 2 * tick, 0.000002)
        assert (restarted.count, restarted.first_at) == (1, far + 2 * tick)
        assert store.purge(far + 3 * tick) == 0
        assert store.purge(far + 4 * tick) == 1
        assert store.peek("w", far + 2 * tick, 0.000002) is None
        record = make_record("c")
        store.create_challenge(record)
        assert store.get_challenge("c") == record


def test_a_decoding_client_is_refused(redis_url: str, prefix: str, keyring: Keyring) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ConfigurationError):
            RedisStore(client, keyring=keyring, prefix=prefix)
    finally:
        client.close()

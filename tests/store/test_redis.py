"""RedisStore against a real redis-server on 127.0.0.1 (see services.py)."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import redis

from macnss_auth.errors import ConfigurationError, SchemaVersionError, StoreError
from macnss_auth.store import ChallengeRecord, Keyring, Store
from macnss_auth.store.redis import PURGE_BATCH, REDIS_SCHEMA_VERSION, RedisStore
from macnss_auth.testing.store_contract import (
    PersistentStoreContract,
    at,
    enrollment,
    make_record,
)
from tests.store._leaks import everything_said, secret_forms
from tests.store._proxy import ReplyDroppingProxy
from tests.store.services import redis_server


def _required(record: ChallengeRecord | None) -> ChallengeRecord:
    assert record is not None
    return record


pytestmark = pytest.mark.services

T = TypeVar("T")


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


# Lost replies, eviction and error mapping --------------------------------------------------
@pytest.fixture
def proxy(redis_url: str) -> Iterator[ReplyDroppingProxy]:
    port = redis.Redis.from_url(redis_url).get_connection_kwargs()["port"]
    relay = ReplyDroppingProxy(int(port))
    yield relay
    relay.close()


@pytest.fixture
def resending(proxy: ReplyDroppingProxy) -> Iterator[redis.Redis]:
    """A client as built by hand: redis-py's default Retry sends a command again."""
    client = redis.Redis(host="127.0.0.1", port=proxy.port)
    assert client.get_retry() is not None
    assert client.get_retry().get_retries() > 0  # type: ignore[union-attr]
    yield client
    client.close()


def test_a_lost_reply_neither_counts_twice_nor_loses_a_win(
    resending: redis.Redis, proxy: ReplyDroppingProxy, prefix: str, keyring: Keyring
) -> None:
    # The server ran each call once; the client sent it again after losing the reply.
    # The old scripts ran it twice: two attempts, two failures, and the one caller
    # that consumed the code, advanced the counter or spent the token was refused.
    store = RedisStore(resending, keyring=keyring, prefix=prefix)
    store.create_challenge(make_record("warm"))
    assert store.count_attempt("warm") == 1  # every script is loaded on the server now
    store.hit("w", at(0), 60)
    store.advance("n", 1)
    store.add_tokens("t", [b"a" * 32, b"b" * 32])
    store.consume_token("t", b"b" * 32)
    store.consume_challenge("warm", at(1))

    def lost(call: Callable[[], T]) -> T:
        proxy.drop_next_reply()
        before = proxy.dropped
        result = call()
        assert proxy.dropped == before + 1
        return result

    lost(lambda: store.create_challenge(make_record("c", slot="sms:bob")))
    assert lost(lambda: store.count_attempt("c")) == 1
    assert _required(store.get_challenge("c")).attempts == 1
    assert lost(lambda: store.hit("w", at(1), 60)).count == 2
    assert store.hit("w", at(2), 60).count == 3
    assert lost(lambda: store.advance("n", 2)) is True
    assert lost(lambda: store.consume_token("t", b"a" * 32)) is True
    won = lost(lambda: store.consume_challenge("c", at(1)))
    assert isinstance(won, ChallengeRecord)
    assert (won.id, won.attempts, won.consumed) == ("c", 1, False)
    assert store.consume_challenge("c", at(1)) is None


def test_a_store_built_from_a_url_does_not_send_a_call_twice(
    proxy: ReplyDroppingProxy, prefix: str, keyring: Keyring
) -> None:
    with RedisStore(f"redis://127.0.0.1:{proxy.port}/0", keyring=keyring, prefix=prefix) as store:
        store.create_challenge(make_record("c"))
        assert store.count_attempt("c") == 1
        proxy.drop_next_reply()
        with pytest.raises(StoreError, match="ConnectionError") as info:
            store.count_attempt("c")
        assert info.value.retryable is True
        assert _required(store.get_challenge("c")).attempts == 2


def test_an_evicting_server_is_reported(
    redis_url: str, prefix: str, keyring: Keyring, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="macnss_auth.store"):
        RedisStore(redis_url, keyring=keyring, prefix=prefix).close()
        assert caplog.records == []  # noeviction: nothing to report
        with redis_server("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru") as url:
            RedisStore(url, keyring=keyring, prefix=prefix).close()
    assert [r.name for r in caplog.records] == ["macnss_auth.store"]
    assert "allkeys-lru" in caplog.records[0].getMessage()


def test_driver_errors_say_whether_a_retry_may_help(
    redis_url: str, prefix: str, keyring: Keyring
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = int(probe.getsockname()[1])
    with pytest.raises(StoreError, match="ConnectionError") as refused:
        RedisStore(f"redis://127.0.0.1:{closed}/0", keyring=keyring, prefix=prefix)
    assert refused.value.retryable is True
    with redis_server("--requirepass", "hunter2-s3cr3tpart") as url:
        wrong = url.replace("redis://", "redis://:not-it@")
        with pytest.raises(StoreError, match="AuthenticationError") as denied:
            RedisStore(wrong, keyring=keyring, prefix=prefix)
        assert denied.value.retryable is False
        assert "not-it" not in everything_said(denied.value)
    with redis_server() as url, RedisStore(url, keyring=keyring, prefix=prefix) as store:
        client = redis.Redis.from_url(url)
        # The server becomes a replica (a failover demoted it): writes are refused.
        client.replicaof("127.0.0.1", str(closed))
        client.close()
        with pytest.raises(StoreError, match="ReadOnlyError") as read_only:
            store.advance("n", 1)
        assert read_only.value.retryable is True


def test_a_malformed_url_names_no_part_of_it(redis_url: str, keyring: Keyring) -> None:
    # A password with an unescaped '/': the URL parser quotes it as a "port".
    with pytest.raises(ConfigurationError) as info:
        RedisStore("redis://:hunter2/s3cr3tpart@127.0.0.1:6379/0", keyring=keyring)
    said = everything_said(info.value)
    assert "s3cr3tpart" not in said
    assert "hunter2" not in said


def test_a_large_purge_runs_in_batches(redis_url: str, prefix: str, keyring: Keyring) -> None:
    # A Lua script blocks every client of the server while it runs: one purge of a
    # large backlog must not stall every instance (the old script took it all at once).
    count = 2 * PURGE_BATCH + 7
    client = redis.Redis.from_url(redis_url)
    with RedisStore(redis_url, keyring=keyring, prefix=prefix) as store:
        for n in range(count):
            store.create_challenge(make_record(f"c{n}", slot=f"sms:{n}", lifetime=60))
            store.hit(f"w{n}", at(0), 60)
        store.create_challenge(make_record("live", lifetime=600))
        before = _script_runs(client)
        assert store.purge(at(60)) == 2 * count
        runs = _script_runs(client) - before
        assert runs >= (2 * count) // (2 * PURGE_BATCH) + 1
        assert store.purge(at(60)) == 0
        assert store.get_challenge("c0") is None
        assert store.get_challenge("live") is not None
        assert client.zcard(prefix + "cx") == 1
        assert client.zcard(prefix + "wx") == 0
    client.close()


def _script_runs(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))


def test_a_secret_never_reaches_the_server(redis_url: str, prefix: str, keyring: Keyring) -> None:
    secret = b"\x8f\x11TOTP-seed-that-must-never-reach-the-server\x02\xfe"
    client = redis.Redis.from_url(redis_url)
    with RedisStore(redis_url, keyring=keyring, prefix=prefix) as store:
        store.put_enrollment(enrollment(secret=secret))
        store.put_enrollment(enrollment(method="hotp", secret=secret))
        keys = list(client.scan_iter(match=prefix.replace("{", "\\{").replace("}", "\\}") + "*"))
        dumped = b"".join(k + (client.dump(k) or b"") for k in keys)
        values = b"".join(
            v
            for k in keys
            if b":e:" in k
            for v in client.hgetall(k).values()
            if isinstance(v, bytes)
        )
        assert values  # the enrollments are there
        for form in secret_forms(secret):
            assert form not in dumped
            assert form not in values
        got = store.get_enrollment("alice", "hotp")
        assert got is not None
        assert got.secret.reveal() == secret
    client.close()

"""A store in Redis, for several service instances sharing one server.

Theory of operation
-------------------
* **Atomicity.** Redis runs one command or one Lua script at a time, so each
  deciding method is a single native command (``SREM`` for tokens) or a Lua
  script that reads and writes in one step (compare-and-set, challenge
  creation with slot retirement, consumption, windowed counting, purge). A
  script sees no other client's writes half-done.
* **Keys.** Every key starts with ``prefix`` (default ``{macnss-auth}:``). The
  braces are a Redis Cluster hash tag: every key of one store lands in the
  same slot, so the scripts, which derive a few keys from stored values (the
  slot of a challenge), stay valid on a cluster too.
* **Time.** The store follows the caller's clock, never the server's: times
  are integer microseconds since the Unix epoch, and expiry is enforced by
  comparisons and by :meth:`purge` over two sorted sets (challenges by expiry,
  windows by end), not by Redis TTLs. Lua numbers are doubles, exact for
  integers below 2**53 microseconds (the year 2255); the scripts format every
  computed number with ``%.0f`` so none is rounded by Lua's 14-digit default.
  Monotonic counters are compared as decimal strings, so all signed 64-bit
  values are exact.
* **Durability** is the server's: an update acknowledged by Redis survives a
  server crash only with ``appendonly yes``; ``appendfsync always`` matches
  :class:`~macnss_auth.store.sqlite.SQLiteStore`'s ``synchronous=FULL``, the
  default ``everysec`` can lose the last second of updates.
* **Secrets** are sealed with the :class:`Keyring` exactly as in the other stores.
* **Lost replies.** A client may send a command again when the connection
  breaks before the reply arrives (redis-py's ``Retry``, 3 tries by default
  for a ``redis.Redis(...)`` built by the caller), although the server may
  have run it already. Each deciding script therefore takes a random request
  id and leaves ``r:<id>`` (expiring after two minutes, server clock: it only
  bounds memory, it decides nothing) holding its answer; the same request
  sent again gets that answer instead of running twice, so a lost reply
  neither counts an attempt or a failure twice nor turns the winner of a
  consume into a loser. A store built from a URL does not re-send at all.
* **Eviction.** Keys carry no TTL, so an ``allkeys-*`` ``maxmemory-policy``
  could evict a used TOTP step or a failure window, which would let a code
  be replayed or a lockout restart: opening the store logs a warning on the
  ``macnss_auth.store`` logger when the server runs such a policy.
* **Errors.** Every driver error becomes a ``StoreError`` naming only the
  error class; ``retryable`` is set for a lost or refused connection, a
  timeout, a server loading its data, a read-only replica (failover), a
  cluster moving slots and a full memory.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, Final

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from macnss_auth.errors import ConfigurationError, SchemaVersionError, StoreError
from macnss_auth.store._codec import (
    CHALLENGE_COLUMNS,
    challenge_record,
    challenge_row,
    counter_state,
    enrollment_row,
    int64,
    micros,
    open_enrollment,
    window_micros,
)
from macnss_auth.store._codec import require_storable as _require_storable
from macnss_auth.store._codec import storable as _storable
from macnss_auth.store.base import (
    ChallengeRecord,
    CounterState,
    Enrollment,
    enrollment_context,
)
from macnss_auth.store.keyring import Keyring

__all__ = ["PURGE_BATCH", "REDIS_SCHEMA_VERSION", "RESEAL_BATCH", "RedisStore"]

REDIS_SCHEMA_VERSION: Final = 1

_log = logging.getLogger("macnss_auth.store")

# Every deciding script's last key is its request's memo ``r:<id>``, kept 120000 ms:
# a request sent twice (a client retry after a lost reply) gets the first run's answer.

_ADVANCE: Final = """
local done = redis.call('GET', KEYS[2])
if done then return tonumber(done) end
local function gt(a, b)
  local na, nb = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if na ~= nb then return nb end
  if na then a, b = b:sub(2), a:sub(2) end
  if #a ~= #b then return #a > #b end
  return a > b
end
local cur = redis.call('GET', KEYS[1])
if cur == false or gt(ARGV[1], cur) then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], '1', 'PX', 120000)
  return 1
end
return 0
"""

# KEYS: challenge, slot pointer, expiry index, memo. ARGV: id, challenge key prefix,
# expires_at, consumed ('0'/'1'), then field/value pairs.
_CREATE: Final = """
if redis.call('EXISTS', KEYS[4]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local old = redis.call('GET', KEYS[2])
if old and old ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. old) == 1 then
  redis.call('HSET', ARGV[2] .. old, 'consumed', '1')
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
if ARGV[4] == '0' then
  redis.call('SET', KEYS[2], ARGV[1])
else
  redis.call('DEL', KEYS[2])
end
redis.call('SET', KEYS[4], '1', 'PX', 120000)
return 1
"""

# KEYS: challenge, memo.
_COUNT_ATTEMPT: Final = """
local done = redis.call('GET', KEYS[2])
if done then return tonumber(done) end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('SET', KEYS[2], n, 'PX', 120000)
return n
"""

# KEYS: challenge, memo. ARGV: now, id, slot key prefix.
_CONSUME: Final = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  local again = redis.call('HGETALL', KEYS[1])
  if #again == 0 then return false end
  return again
end
local f = redis.call('HMGET', KEYS[1], 'consumed', 'expires_at', 'attempts', 'max_attempts', 'slot')
if f[1] ~= '0' then return false end
if tonumber(ARGV[1]) >= tonumber(f[2]) then return false end
if tonumber(f[3]) >= tonumber(f[4]) then return false end
redis.call('HSET', KEYS[1], 'consumed', '1')
local slot = ARGV[3] .. f[5]
if redis.call('GET', slot) == ARGV[2] then redis.call('DEL', slot) end
redis.call('SET', KEYS[2], '1', 'PX', 120000)
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: window, window index, memo. ARGV: now, span, window name.
_HIT: Final = """
local done = redis.call('GET', KEYS[3])
if done then
  local c, f, l = done:match('^(%S+) (%S+) (%S+)$')
  return {tonumber(c), f, l}
end
local now, span = tonumber(ARGV[1]), tonumber(ARGV[2])
local f = redis.call('HMGET', KEYS[1], 'count', 'first_at')
local count, first
if f[1] == false or now >= tonumber(f[2]) + span then
  count, first = 1, ARGV[1]
else
  count, first = tonumber(f[1]) + 1, f[2]
end
local ends = string.format('%.0f', tonumber(first) + span)
redis.call('HSET', KEYS[1], 'count', string.format('%.0f', count), 'first_at', first,
  'last_at', ARGV[1], 'ends_at', ends)
redis.call('ZADD', KEYS[2], ends, ARGV[3])
local answer = string.format('%.0f', count)
redis.call('SET', KEYS[3], answer .. ' ' .. first .. ' ' .. ARGV[1], 'PX', 120000)
return {count, first, ARGV[1]}
"""

# KEYS: token set, memo. ARGV: digest.
_SPEND: Final = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
local gone = redis.call('SREM', KEYS[1], ARGV[1])
if gone == 1 then redis.call('SET', KEYS[2], '1', 'PX', 120000) end
return gone
"""

# KEYS: challenge index, window index. ARGV: now, key prefix, batch size. At most
# a batch of challenges and one of windows per run: a script blocks every client of
# the server while it runs. Returns {entries deleted, 1 if a batch was full}.
_PURGE: Final = """
local n, batch = 0, tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, batch)
for _, id in ipairs(ids) do
  local key = ARGV[2] .. 'c:' .. id
  local slot = redis.call('HGET', key, 'slot')
  if slot then
    local pointer = ARGV[2] .. 'slot:' .. slot
    if redis.call('GET', pointer) == id then redis.call('DEL', pointer) end
  end
  n = n + redis.call('DEL', key)
end
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
local names = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, batch)
for _, name in ipairs(names) do
  n = n + redis.call('DEL', ARGV[2] .. 'w:' .. name)
end
if #names > 0 then redis.call('ZREM', KEYS[2], unpack(names)) end
if #ids == batch or #names == batch then return {n, 1} end
return {n, 0}
"""

#: Index entries one run of the purge script handles at most (see ``_PURGE``).
PURGE_BATCH: Final = 500

# KEYS: enrollment. ARGV: sealed value read, fresh sealed value, its key id. A
# compare-and-set: a record re-enrolled or deleted since it was read is left alone.
# Sent again after a lost reply it finds the fresh value and changes nothing.
_RESEAL: Final = """
if redis.call('HGET', KEYS[1], 'sealed') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'sealed', ARGV[2], 'key_id', ARGV[3])
return 1
"""

#: Keys :meth:`RedisStore.reseal` asks ``SCAN`` for per batch by default.
RESEAL_BATCH: Final = 500


# Failures a later call may not meet: a lost or refused connection, a timeout, a
# server loading its data set, a replica after a failover, a cluster moving slots,
# a full memory (a purge may free it). Refused credentials are not among them.
_RETRYABLE: Final = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.ReadOnlyError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.OutOfMemoryError,
)
_PERMANENT: Final = (redis.AuthenticationError, redis.exceptions.AuthorizationError)


def _driver_error(exc: redis.RedisError, what: str = "Redis failed") -> StoreError:
    """``exc`` as a ``StoreError`` (class name only: replies may quote data)."""
    retryable = isinstance(exc, _RETRYABLE) and not isinstance(exc, _PERMANENT)
    return StoreError(f"{what}: {exc.__class__.__name__}", retryable=retryable)


def _text(value: bytes) -> str:
    return value.decode("utf-8")


def _hash(raw: object) -> dict[bytes, bytes]:
    """A reply of ``HGETALL`` as bytes to bytes (the client must not decode)."""
    if not isinstance(raw, dict) or not all(
        isinstance(k, bytes) and isinstance(v, bytes) for k, v in raw.items()
    ):
        raise StoreError("unexpected Redis reply: use a client with decode_responses=False")
    return raw


def _glob_escape(text: bytes) -> bytes:
    """``text`` as a literal in a ``SCAN MATCH`` pattern (the prefix may hold ``*?[]\\``)."""
    return re.sub(rb"([*?\[\]\\])", rb"\\\1", text)


def _flat(pairs: Mapping[str, str | bytes]) -> list[str | bytes]:
    return [item for pair in pairs.items() for item in pair]


# Hash fields named as the SQL stores' columns; a None value leaves its field out.
_ENROLLMENT_FIELDS: Final = ("sealed", "key_id", "params", "confirmed", "created_at", "expires_at")
_CHALLENGE_FIELDS: Final = tuple(CHALLENGE_COLUMNS.split(", "))


def _fields(names: tuple[str, ...], values: tuple[Any, ...]) -> dict[str, str | bytes]:
    """Hash fields: flags as ``"1"``/``"0"``, integers in decimal, text and bytes as they are."""
    fields: dict[str, str | bytes] = {}
    for name, value in zip(names, values, strict=True):
        if value is None:
            continue
        if isinstance(value, bool):
            fields[name] = "1" if value else "0"
        elif isinstance(value, int):
            fields[name] = str(value)
        else:
            fields[name] = value
    return fields


class RedisStore:
    """A :class:`~macnss_auth.store.base.Store` in Redis (redis-py, Lua scripts).

    Args:
        url: a ``redis://`` URL (the store owns and closes its client), or a
            ``redis.Redis`` client created with ``decode_responses=False``
            (the caller keeps ownership).
        keyring: seals enrollment secrets.
        prefix: prepended to every key; keep a ``{hash tag}`` for Redis Cluster.

    Raises:
        SchemaVersionError: the keys were written by newer code.
        StoreError: the server cannot be reached.
    """

    def __init__(
        self,
        url: str | redis.Redis,
        *,
        keyring: Keyring,
        prefix: str = "{macnss-auth}:",
    ) -> None:
        if not prefix:
            raise ConfigurationError("the key prefix must not be empty")
        if isinstance(url, str):
            try:
                # No re-sending: a call whose reply is lost fails as retryable instead.
                self._client = redis.Redis.from_url(
                    url, decode_responses=False, retry=Retry(NoBackoff(), 0)
                )
            except ValueError:
                # Not chained: the parser quotes the URL's parts (a password with '/').
                raise ConfigurationError("the Redis URL is malformed") from None
            self._owned = True
        else:
            if url.get_connection_kwargs().get("decode_responses"):
                raise ConfigurationError("RedisStore needs a client with decode_responses=False")
            self._client = url
            self._owned = False
        self._keyring = keyring
        self._p = prefix
        self._advance: Script = self._client.register_script(_ADVANCE)
        self._create: Script = self._client.register_script(_CREATE)
        self._count_attempt: Script = self._client.register_script(_COUNT_ATTEMPT)
        self._consume: Script = self._client.register_script(_CONSUME)
        self._hit: Script = self._client.register_script(_HIT)
        self._consume_token: Script = self._client.register_script(_SPEND)
        self._purge: Script = self._client.register_script(_PURGE)
        self._reseal: Script = self._client.register_script(_RESEAL)
        try:
            self._check_schema()
            self._check_eviction()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self._p!r})"

    def _check_schema(self) -> None:
        key = self._p + "schema"
        try:
            self._client.setnx(key, str(REDIS_SCHEMA_VERSION))
            raw = self._client.get(key)
        except redis.RedisError as exc:
            raise _driver_error(exc, "cannot reach Redis") from exc
        try:
            version = int(raw) if raw is not None else REDIS_SCHEMA_VERSION
        except (TypeError, ValueError):
            raise StoreError(
                f"{key!r} holds no schema version: another application's key?"
            ) from None
        if version > REDIS_SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the store has schema version {version}; this code knows up to "
                f"{REDIS_SCHEMA_VERSION}: upgrade macnss-auth"
            )

    def _check_eviction(self) -> None:
        """Warn when the server may evict keys that carry no TTL (see the module docstring)."""
        try:
            policy = str(self._client.info("memory").get("maxmemory_policy", ""))
        except redis.ResponseError:
            return  # INFO disabled (some managed services): nothing to tell
        except redis.RedisError as exc:
            raise _driver_error(exc) from exc
        if policy.startswith("allkeys-"):
            _log.warning(
                "Redis runs maxmemory-policy %s: it may evict used codes and failure"
                " counters, letting a code be replayed or a lockout restart; use noeviction",
                policy,
            )

    def _call(self, script: Script, keys: list[str], args: list[str | bytes]) -> Any:
        try:
            return script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise _driver_error(exc) from exc

    def _decide(self, script: Script, keys: list[str], args: list[str | bytes]) -> Any:
        """Run a deciding script with a fresh request memo as its last key."""
        return self._call(script, [*keys, self._p + "r:" + secrets.token_hex(16)], args)

    # Keys ------------------------------------------------------------------
    def _enrollment_key(self, subject: str, method: str) -> str:
        return self._p + "e:" + json.dumps([subject, method], ensure_ascii=False)

    # Enrollments -----------------------------------------------------------
    def put_enrollment(self, enrollment: Enrollment) -> None:
        """Create or replace the enrollment for (subject, method), secret sealed."""
        _require_storable(enrollment.subject, enrollment.method)
        fields = _fields(_ENROLLMENT_FIELDS, enrollment_row(enrollment, self._keyring)[2:])
        key = self._enrollment_key(enrollment.subject, enrollment.method)
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(key, items=_flat(fields))
                pipe.execute()
        except redis.RedisError as exc:
            raise _driver_error(exc) from exc

    def get_enrollment(self, subject: str, method: str) -> Enrollment | None:
        """The enrollment with its secret opened, or None.

        Raises:
            SecretKeyError: the sealed secret does not open under the keyring.
        """
        if not _storable(subject, method):
            return None
        try:
            raw = _hash(self._client.hgetall(self._enrollment_key(subject, method)))
        except redis.RedisError as exc:
            raise _driver_error(exc) from exc
        if not raw:
            return open_enrollment(self._keyring, subject, method, None)
        expires = raw.get(b"expires_at")
        stored = (
            raw[b"sealed"],
            raw[b"params"],
            raw[b"confirmed"] == b"1",
            int(raw[b"created_at"]),
            None if expires is None else int(expires),
        )
        return open_enrollment(self._keyring, subject, method, stored)

    def delete_enrollment(self, subject: str, method: str) -> bool:
        """Remove it; True if there was one."""
        if not _storable(subject, method):
            return False
        try:
            return bool(self._client.delete(self._enrollment_key(subject, method)))
        except redis.RedisError as exc:
            raise _driver_error(exc) from exc

    def reseal(self, *, batch_size: int = RESEAL_BATCH) -> int:
        """Re-seal every secret not sealed under the primary key; return how many.

        Walks the enrollment keys with ``SCAN`` (``batch_size`` per step, so
        the server is never blocked by one long command), reads each batch's
        sealed values, seals them here, and replaces each with a short Lua
        compare-and-set: a record another instance re-enrolled, confirmed or
        deleted meanwhile keeps that state and is not counted. ``SCAN`` sees
        every key that exists for the whole walk; one enrolled during it is
        sealed under the writer's primary already.

        Raises:
            ConfigurationError: ``batch_size`` is not positive.
            SecretKeyError: a secret does not open under the ring; earlier
                batches stay re-sealed, this one and later ones are untouched.
        """
        if batch_size < 1:
            raise ConfigurationError("batch_size must be positive")
        primary = self._keyring.primary
        head = (self._p + "e:").encode()
        pattern = _glob_escape(head) + b"*"
        done, cursor = 0, 0
        try:
            while True:
                cursor, keys = self._client.scan(cursor, match=pattern, count=batch_size)
                done += self._reseal_batch([k for k in keys if isinstance(k, bytes)], head, primary)
                if int(cursor) == 0:
                    return done
        except redis.RedisError as exc:
            raise _driver_error(exc) from exc

    def _reseal_batch(self, keys: list[bytes], head: bytes, primary: str) -> int:
        """Re-seal the records of ``keys`` not under ``primary``; how many were replaced."""
        if not keys:
            return 0
        with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, ["sealed", "key_id"])
            found = pipe.execute()
        work: list[tuple[bytes, bytes, bytes]] = []
        for key, (sealed, key_id) in zip(keys, found, strict=True):
            if sealed is None or key_id == primary.encode():
                continue  # deleted since the scan, or done already
            try:
                subject, method = json.loads(key[len(head) :].decode("utf-8"))
            except (ValueError, TypeError):
                continue  # not a key this store wrote
            fresh = self._keyring.reseal(bytes(sealed), context=enrollment_context(subject, method))
            work.append((key, bytes(sealed), fresh))
        if not work:
            return 0
        with self._client.pipeline(transaction=False) as pipe:
            for key, old, fresh in work:
                self._reseal(keys=[key], args=[old, fresh, primary], client=pipe)
            return sum(int(n) for n in pipe.execute())

    # Monotonic counters ------------------------------------------------------
    def advance(self, key: str, value: int) -> bool:
        """Atomically set ``key`` to ``value`` iff absent or ``value`` > current.

        Raises:
            StoreError: ``value`` does not fit in a signed 64-bit integer.
        """
        _require_storable(key)
        return bool(self._decide(self._advance, [self._p + "n:" + key], [str(int64(value))]))

    def current(self, key: str) -> int | None:
        """The counter's value, or None (advisory)."""
        if not _storable(key):
            return None
        try:
            raw = self._client.get(self._p + "n:" + key)
        except redis.RedisError as exc:
            raise _driver_error(exc) from exc
        return None if raw is None else int(raw)

    def reset_counter(self, key: str) -> None:
        """Forget a monotonic counter."""
        if not _storable(key):
            return
        try:
            self._client.delete(self._p + "n:" + key)
        except redis.RedisError as exc:
            raise _driver_error(exc) from exc

    # Challenges --------------------------------------------------------------
    def create_challenge(self, record: ChallengeRecord) -> None:
        """Insert a challenge and retire the live one in its slot, in one script.

        Raises:
            StoreError: a challenge with this id exists already.
        """
        fields = _fields(_CHALLENGE_FIELDS, challenge_row(record))
        created = self._decide(
            self._create,
            [self._p + "c:" + record.id, self._p + "slot:" + record.slot, self._p + "cx"],
            [record.id, self._p + "c:", fields["expires_at"], fields["consumed"], *_flat(fields)],
        )
        if not created:
            raise StoreError("a challenge with this id exists already")

    @staticmethod
    def _record(raw: Mapping[bytes, bytes], *, consumed: bool | None = None) -> ChallengeRecord:
        hint = raw.get(b"hint")
        row = (
            _text(raw[b"id"]),
            _text(raw[b"slot"]),
            _text(raw[b"subject"]),
            _text(raw[b"method"]),
            int(raw[b"created_at"]),
            int(raw[b"expires_at"]),
            None if hint is None else _text(hint),
            raw[b"data"],
            raw[b"verifier"],
            int(raw[b"max_attempts"]),
            int(raw[b"attempts"]),
            raw[b"consumed"] == b"1",
        )
        return challenge_record(row, consumed=consumed)

    def get_challenge(self, challenge_id: str) -> ChallengeRecord | None:
        """The record, or None (advisory)."""
        if not _storable(challenge_id):
            return None
        try:
            raw = _hash(self._client.hgetall(self._p + "c:" + challenge_id))
        except redis.RedisError as exc:
            raise _driver_error(exc) from exc
        return self._record(raw) if raw else None

    def count_attempt(self, challenge_id: str) -> int | None:
        """Atomically add one wrong attempt; the new count, or None if unknown."""
        if not _storable(challenge_id):
            return None
        count = self._decide(self._count_attempt, [self._p + "c:" + challenge_id], [])
        return None if count is None else int(count)

    def consume_challenge(self, challenge_id: str, now: dt.datetime) -> ChallengeRecord | None:
        """Atomically mark used iff unused, unexpired and attempts remain."""
        if not _storable(challenge_id):
            return None
        flat = self._decide(
            self._consume,
            [self._p + "c:" + challenge_id],
            [str(micros(now)), challenge_id, self._p + "slot:"],
        )
        if not flat:
            return None
        raw = dict(zip(flat[::2], flat[1::2], strict=True))
        return self._record(raw, consumed=False)

    # Windowed counters -------------------------------------------------------
    def hit(self, key: str, now: dt.datetime, window: float) -> CounterState:
        """Atomically count one event; a window older than ``window`` s restarts."""
        _require_storable(key)
        at, span = micros(now), window_micros(window)
        return counter_state(
            self._decide(
                self._hit, [self._p + "w:" + key, self._p + "wx"], [str(at), str(span), key]
            )
        )

    def peek(self, key: str, now: dt.datetime, window: float) -> CounterState | None:
        """The counter if its window is still open (advisory)."""
        if not _storable(key):
            return None
        at, span = micros(now), window_micros(window)
        try:
            count, first, last = self._client.hmget(
                self._p + "w:" + key, ["count", "first_at", "last_at"]
            )
        except redis.RedisError as exc:
            raise _driver_error(exc) from exc
        if count is None or first is None or last is None or at >= int(first) + span:
            return None
        return counter_state((count, first, last))

    def clear(self, key: str) -> None:
        """Reset a windowed counter."""
        if not _storable(key):
            return
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(self._p + "w:" + key)
                pipe.zrem(self._p + "wx", key)
                pipe.execute()
        except redis.RedisError as exc:
            raise _driver_error(exc) from exc

    # Single-use tokens -------------------------------------------------------
    def add_tokens(self, key: str, digests: Iterable[bytes]) -> None:
        """Replace the token set under ``key`` (one MULTI/EXEC transaction)."""
        _require_storable(key)
        members = [bytes(d) for d in digests]
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(self._p + "t:" + key)
                if members:
                    pipe.sadd(self._p + "t:" + key, *members)
                pipe.execute()
        except redis.RedisError as exc:
            raise _driver_error(exc) from exc

    def consume_token(self, key: str, digest: bytes) -> bool:
        """Atomically remove one token (``SREM`` in a script); True to exactly one caller."""
        if not _storable(key):
            return False
        return int(self._decide(self._consume_token, [self._p + "t:" + key], [digest])) == 1

    def count_tokens(self, key: str) -> int:
        """Tokens left under ``key``."""
        if not _storable(key):
            return 0
        try:
            return int(self._client.scard(self._p + "t:" + key))
        except redis.RedisError as exc:
            raise _driver_error(exc) from exc

    # Housekeeping ------------------------------------------------------------
    def purge(self, now: dt.datetime) -> int:
        """Delete expired challenges and windows that ended; return how many.

        Runs in batches of :data:`PURGE_BATCH` per script, so a large backlog
        never blocks the server (and every other instance) for long.
        """
        at, gone = str(micros(now)), 0
        while True:
            deleted, more = self._call(
                self._purge, [self._p + "cx", self._p + "wx"], [at, self._p, str(PURGE_BATCH)]
            )
            gone += int(deleted)
            if not int(more):
                return gone

    def close(self) -> None:
        """Close the client if the store created it."""
        if self._owned:
            self._client.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

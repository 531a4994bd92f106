"""Shared fixtures and the hypothesis profiles (ci: bounded; long: `make fuzz`; fuzz: chosen)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from macnss_auth.store import Keyring, MemoryStore, SQLiteStore, Store
from tests.store.services import postgres_server, redis_server

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=200_000, deadline=None, suppress_health_check=list(HealthCheck)
)
# A budget of one's choosing: HYPOTHESIS_PROFILE=fuzz HYPOTHESIS_EXAMPLES=20000.
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "20000")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# One store factory for every test that runs on each backend ------------------------------
#: The keyring of every store the factory opens.
STORE_KEYRING = Keyring({"k": bytes(range(32))}, primary="k")

#: Opens another handle on one shared store (the same object for memory).
OpenStore = Callable[[], Store]


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A throw-away PostgreSQL server for the session: its connection string."""
    with postgres_server() as conninfo:
        yield conninfo


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throw-away Redis server for the session: its URL."""
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
def open_any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Each backend in turn: a function that opens a handle on one fresh, shared store.

    Every handle it opens sees the same data (a file, a schema, a key prefix
    of this test's own); all are closed after the test.
    """
    opened: list[Store] = []
    kind = request.param
    memory = MemoryStore(keyring=STORE_KEYRING)
    # tmp_path's name is unique in the session; a digest of it is a short schema name.
    name = hashlib.sha256(tmp_path.name.encode()).hexdigest()[:20]

    def open_store() -> Store:
        store: Store
        if kind == "memory":
            return memory
        if kind == "sqlite":
            store = SQLiteStore(tmp_path / "state.sqlite3", keyring=STORE_KEYRING)
        elif kind == "postgres":
            from macnss_auth.store.postgres import PostgresStore  # noqa: PLC0415 (optional extra)

            conninfo = request.getfixturevalue("postgres")
            store = PostgresStore(conninfo, keyring=STORE_KEYRING, schema=f"t_{name}")
        else:
            from macnss_auth.store.redis import RedisStore  # noqa: PLC0415 (optional extra)

            url = request.getfixturevalue("redis_url")
            store = RedisStore(url, keyring=STORE_KEYRING, prefix=f"{{{tmp_path.name}}}:")
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def any_store(open_any_store: OpenStore) -> Store:
    """Each backend in turn: one fresh store."""
    return open_any_store()

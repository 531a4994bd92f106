"""Fixtures shared by the store tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from macnss_auth.store import Keyring
from macnss_auth.testing.store_contract import KEY1
from tests.store.services import postgres_server, redis_server


@pytest.fixture
def keyring() -> Keyring:
    """The primary test keyring: key id ``k1`` = ``contract.KEY1``."""
    return Keyring({"k1": KEY1}, primary="k1")


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

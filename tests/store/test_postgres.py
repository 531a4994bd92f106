"""PostgresStore against a real PostgreSQL server on 127.0.0.1 (see services.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from macnss_auth.errors import SchemaVersionError
from macnss_auth.store import Keyring, Store
from macnss_auth.store.postgres import POSTGRES_SCHEMA_VERSION, PostgresStore
from tests.store.contract import PersistentStoreContract

pytestmark = pytest.mark.services


@pytest.fixture
def schema() -> str:
    return f"t_{uuid.uuid4().hex}"


class TestPostgresStore(PersistentStoreContract):
    @pytest.fixture
    def open_store(self, postgres: str, schema: str) -> Iterator[Callable[[Keyring], Store]]:
        opened: list[PostgresStore] = []

        def open_store(keyring: Keyring) -> Store:
            store = PostgresStore(postgres, keyring=keyring, schema=schema)
            opened.append(store)
            return store

        yield open_store
        for store in opened:
            store.close()

    @pytest.fixture
    def store(self, open_store: Callable[[Keyring], Store], keyring: Keyring) -> Store:
        return open_store(keyring)


def test_newer_schema_is_refused(postgres: str, schema: str, keyring: Keyring) -> None:
    PostgresStore(postgres, keyring=keyring, schema=schema).close()
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("UPDATE {}.meta SET value = %s WHERE name = 'schema_version'").format(
                psycopg.sql.Identifier(schema)
            ),
            (str(POSTGRES_SCHEMA_VERSION + 1),),
        )
    with pytest.raises(SchemaVersionError):
        PostgresStore(postgres, keyring=keyring, schema=schema)

"""PostgresStore against a real PostgreSQL server on 127.0.0.1 (see services.py)."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from macnss_auth.authenticator import Challenge
from macnss_auth.errors import SchemaVersionError
from macnss_auth.store import ChallengeRecord, Keyring, Store
from macnss_auth.store.postgres import POSTGRES_SCHEMA_VERSION, PostgresStore
from macnss_auth.testing.races import race_threads
from macnss_auth.testing.store_contract import PersistentStoreContract

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


def test_resends_never_leave_two_live_codes_even_if_the_server_defaults_to_repeatable_read(
    postgres: str, schema: str, keyring: Keyring
) -> None:
    """The slot retirement must see a concurrent insert: the store forces READ COMMITTED."""
    repeatable = psycopg.conninfo.make_conninfo(
        postgres, options=r"-c default_transaction_isolation=repeatable\ read"
    )
    store = PostgresStore(repeatable, keyring=keyring, schema=schema)
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    try:
        for n in range(40):
            slot = f"sms:s{n}"

            def create(i: int, slot: str = slot) -> None:
                challenge = Challenge(
                    id=f"{slot}-{i}", subject="s", method="sms", created_at=now,
                    expires_at=now + dt.timedelta(minutes=5),
                )  # fmt: skip
                store.create_challenge(ChallengeRecord(challenge=challenge, slot=slot))

            raced = race_threads([functools.partial(create, i) for i in range(2)])
            assert [r for r in raced if isinstance(r, BaseException)] == [], slot
            live = [
                i for i in range(2)
                if (record := store.get_challenge(f"{slot}-{i}")) is not None
                and not record.consumed
            ]  # fmt: skip
            assert len(live) == 1, slot
    finally:
        store.close()

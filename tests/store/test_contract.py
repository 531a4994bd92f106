"""The store contract, run against every backend available in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from macnss_auth.store import Keyring, MemoryStore, SQLiteStore, Store
from macnss_auth.testing.store_contract import (
    CountingKeyring,
    PersistentStoreContract,
    StoreContract,
    enrollment,
)


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self, keyring: Keyring) -> Iterator[Store]:
        memory = MemoryStore(keyring=keyring)
        yield memory
        memory.close()


def test_a_missing_enrollment_costs_the_decryption_of_a_found_one_in_memory() -> None:
    ring = CountingKeyring()
    memory = MemoryStore(keyring=ring)
    memory.put_enrollment(enrollment())
    assert memory.get_enrollment("alice", "totp") is not None
    assert memory.get_enrollment("nobody", "totp") is None
    assert ring.opens == 2


class TestSQLiteStore(PersistentStoreContract):
    @pytest.fixture
    def open_store(self, tmp_path: Path) -> Iterator[Callable[[Keyring], Store]]:
        opened: list[SQLiteStore] = []

        def open_store(keyring: Keyring) -> Store:
            store = SQLiteStore(tmp_path / "state.sqlite3", keyring=keyring)
            opened.append(store)
            return store

        yield open_store
        for store in opened:
            store.close()

    @pytest.fixture
    def store(self, open_store: Callable[[Keyring], Store], keyring: Keyring) -> Store:
        return open_store(keyring)

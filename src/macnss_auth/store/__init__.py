"""State stores: one contract, several backends. See :mod:`macnss_auth.store.base`."""

from macnss_auth.store.base import (
    ChallengeRecord,
    CounterState,
    Enrollment,
    Store,
    enrollment_context,
)
from macnss_auth.store.keyring import Keyring
from macnss_auth.store.memory import MemoryStore
from macnss_auth.store.sqlite import SCHEMA_VERSION, SQLiteStore

__all__ = [
    "SCHEMA_VERSION",
    "ChallengeRecord",
    "CounterState",
    "Enrollment",
    "Keyring",
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "enrollment_context",
]

"""Fixtures shared by the store tests (the servers and the store factory: tests/conftest.py)."""

from __future__ import annotations

import pytest

from macnss_auth.store import Keyring
from macnss_auth.testing.store_contract import KEY1


@pytest.fixture
def keyring() -> Keyring:
    """The primary test keyring: key id ``k1`` = ``contract.KEY1``."""
    return Keyring({"k1": KEY1}, primary="k1")

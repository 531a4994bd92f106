"""Fixtures shared by the store tests."""

from __future__ import annotations

import pytest

from macnss_auth.store import Keyring
from tests.store.contract import KEY1


@pytest.fixture
def keyring() -> Keyring:
    """The primary test keyring: key id ``k1`` = ``contract.KEY1``."""
    return Keyring({"k1": KEY1}, primary="k1")

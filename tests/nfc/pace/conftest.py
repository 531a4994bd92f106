"""Fixtures shared by the PACE tests."""

from __future__ import annotations

import pytest

from ..card.paths import skip_or_fail
from .openpace import OpenPace, load


@pytest.fixture(scope="module")
def lib() -> OpenPace:
    """libeac (OpenPACE), the independent PACE peer; missing: skip, or fail in CI."""
    loaded = load()
    if loaded is None:
        skip_or_fail("libeac3 (OpenPACE) is not installed: apt-get install libeac3")
    assert loaded is not None
    return loaded

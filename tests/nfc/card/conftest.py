"""Fixtures for the virtual card tests: a fixed clock and one issued card per profile (cached)."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from macnss_auth.nfc.card import IssuedCard, issue_card
from macnss_auth.testing import FixedClock

from .paths import PcscdService

# 2027-01-15: inside the validity of everything the test PKI issues.
NOW = 1_800_000_000.0


@functools.cache
def issued(profile: str) -> IssuedCard:
    """One card per profile for the whole run (key generation is the slow part)."""
    return issue_card(profile, clock=FixedClock.at(NOW), can="123456")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock.at(NOW)


@pytest.fixture(scope="session")
def pcscd() -> Iterator[PcscdService]:
    """pcscd with the vpcd driver: a running one reused, or our own loopback-only one per link."""
    service = PcscdService()
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(params=["memory", "udp", pytest.param("vpcd", marks=pytest.mark.services)])
def path(request: pytest.FixtureRequest) -> str:
    """Each serving path in turn (the vpcd one starts pcscd, or skips without it)."""
    name: str = request.param
    if name == "vpcd":
        request.getfixturevalue("pcscd")
    return name

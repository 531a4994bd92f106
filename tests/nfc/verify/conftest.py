"""Shared test PKIs (key generation is the slow part, so they live per session)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from macnss_auth.nfc.pki import TrustStore
from macnss_auth.testing import FixedClock
from macnss_auth.testing.pki import TestDocument, TestPki

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
VECTORS = Path(__file__).resolve().parents[2] / "vectors"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture(scope="session", params=["rsa", "ec"])
def test_pki(request: pytest.FixtureRequest) -> TestPki:
    key_type = request.param
    assert key_type in ("rsa", "ec")
    return TestPki.create(now=NOW, key_type=key_type)


@pytest.fixture(scope="session")
def document(test_pki: TestPki) -> TestDocument:
    rsa = test_pki.ds.certificate.public_key.algorithm == "rsa"
    return test_pki.issue_document(aa_key_type="rsa" if rsa else "ec")


@pytest.fixture
def trust_store(test_pki: TestPki) -> TrustStore:
    store = TrustStore()
    store.load_master_list(test_pki.master_list(), name="test master list", trust_as_is=True)
    store.add_crl(test_pki.crl())
    return store

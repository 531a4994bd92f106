"""The passkey web tests' service: the JSON routes and pages on a fixed clock."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from macnss_auth.testing import FixedClock
from tests.passkey.web_service import PasskeyService, build_service

#: The origin the web tests' service accepts ceremonies from.
ORIGIN = "http://localhost:8443"


@pytest.fixture
def service() -> PasskeyService:
    return build_service(origin=ORIGIN, clock=FixedClock.at(1_800_000_000))


@pytest.fixture
def client(service: PasskeyService) -> TestClient:
    return TestClient(service.app)

"""The web tests' service (``helpers.build``) and a client that turns server errors into 500s."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .helpers import Service, build


@pytest.fixture
def service() -> Service:
    return build()


@pytest.fixture
def client(service: Service) -> TestClient:
    return TestClient(service.app, raise_server_exceptions=False)

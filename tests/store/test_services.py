"""The server fixtures skip without a server binary, and fail instead in CI."""

from __future__ import annotations

import pytest

from tests.store.services import redis_server


def test_missing_server_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("MACNSS_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="redis-server not found"), redis_server():
        pass


def test_missing_server_fails_when_services_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("MACNSS_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="MACNSS_REQUIRE_SERVICES=1"), redis_server():
        pass

"""The server fixtures skip without a server binary, and fail instead in CI."""

from __future__ import annotations

import pytest

from tests.store.services import pgbouncer_server, redis_server


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


def test_missing_pgbouncer_skips_and_fails_when_services_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Checked before anything starts: the PostgreSQL conninfo is not even used.
    monkeypatch.setenv("MACNSS_PGBOUNCER", "/nonexistent/pgbouncer")
    monkeypatch.delenv("MACNSS_REQUIRE_SERVICES", raising=False)
    conninfo = "host=127.0.0.1 port=1 user=postgres dbname=postgres"
    with (
        pytest.raises(pytest.skip.Exception, match="pgbouncer not found"),
        pgbouncer_server(conninfo),
    ):
        pass
    monkeypatch.setenv("MACNSS_REQUIRE_SERVICES", "1")
    with (
        pytest.raises(pytest.fail.Exception, match="MACNSS_REQUIRE_SERVICES=1"),
        pgbouncer_server(conninfo),
    ):
        pass

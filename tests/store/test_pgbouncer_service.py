"""Four service processes on one PostgreSQL through PgBouncer in transaction mode.

The races of tests/web/test_load.py (32 identical requests at once spread
over four uvicorn instances: one right SMS code, one TOTP code on 32
challenges, 48 wrong TOTP codes), with every instance's store and the
test's own library going through the tests' PgBouncer instead of to the
server. Slower store calls widen the races' windows; the outcomes stay
exact: the right SMS code's losers are told ``challenge_used``, never
``attempts_exhausted``, and the wrong codes get exactly ``lockout_after``
checks (the throttle counts an attempt on its second key only if the first
let it through; docs/security.md).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

pytest.importorskip("httpx", reason="the web extra is not installed")

from bench.service import Gateway, Library, build_policy, server_processes

from tests.store.services import pgbouncer_server
from tests.web.test_load import (
    THROTTLE,
    test_one_sms_code_is_accepted_once,
    test_one_totp_code_is_accepted_once,
    test_parallel_wrong_codes_lock_out_exactly,
)

pytestmark = pytest.mark.services

__all__ = [
    "test_one_sms_code_is_accepted_once",
    "test_one_totp_code_is_accepted_once",
    "test_parallel_wrong_codes_lock_out_exactly",
]


@pytest.fixture(scope="module")
def setup(
    postgres: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Library, Gateway, list[str]]]:
    """Replaces test_load's: the same service, its database reached through PgBouncer."""
    name = f"svc_{uuid.uuid4().hex[:12]}"  # a database of its own: the default schema is free
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    try:
        with (
            pgbouncer_server(postgres, pool_mode="transaction", pool_size=8) as bouncer,
            Gateway() as gateway,
        ):
            port = re.search(r"port=(\d+)", bouncer)
            assert port is not None
            database = f"postgresql://postgres@127.0.0.1:{port.group(1)}/{name}"
            library = build_policy(database, gateway.url, throttle=THROTTLE)
            try:
                workdir = Path(tmp_path_factory.mktemp("load-pgbouncer"))
                with server_processes(database, gateway.url, workdir, throttle=THROTTLE) as urls:
                    yield library, gateway, urls
            finally:
                library.store.close()
    finally:
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(
                psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)
                )
            )

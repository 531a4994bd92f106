"""Sync core, async server: 50 verifications at once never stall the event loop over 50 ms.

The library is synchronous (SQLite writes with fsync, HMACs); the app runs each
call in a bounded thread pool. A ticker task in uvicorn's own loop sleeps 5 ms
again and again and records how late it wakes: a library call made on the
loop would delay it by the call's whole duration. (What lateness remains is
the GIL: the loop's thread waits its turn among the busy workers, which is
why the pool is bounded; measured here 5-25 ms with 16 workers.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pyotp

from macnss_auth.store import Keyring, SQLiteStore
from macnss_auth.testing import FixedRandom

from .helpers import build
from .server import live_server

USERS = 50


def test_the_loop_stays_responsive_during_50_concurrent_verifications(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.sqlite3", keyring=Keyring.generate(random=FixedRandom(1)))
    service = build(store=store)
    secrets = {}
    for n in range(USERS):
        subject = f"user-{n}"
        secret = pyotp.random_base32()
        service.totp.enroll(subject, secret=secret)
        service.totp.confirm(subject, pyotp.TOTP(secret).at(service.clock.now()))
        secrets[subject] = secret
    service.clock.advance(30)

    async def one(client: httpx.AsyncClient, subject: str) -> int:
        begun = await client.post("/v1/challenges", json={"subject": subject, "method": "totp"})
        code = pyotp.TOTP(secrets[subject]).at(service.clock.now())
        answer = await client.post(
            f"/v1/challenges/{begun.json()['id']}/verify", json={"code": code}
        )
        return answer.status_code

    async def all_at_once(url: str) -> list[int]:
        limits = httpx.Limits(max_connections=USERS)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
            return list(await asyncio.gather(*(one(client, s) for s in secrets)))

    with live_server(service.app) as live:
        # Warm up: the first request builds FastAPI's and pydantic's per-route machinery.
        assert httpx.get(live.url + "/v1/methods").status_code == 200
        live.measuring = True
        statuses = asyncio.run(all_at_once(live.url))
        live.measuring = False
    store.close()
    assert statuses == [200] * USERS
    assert live.ticks > 0
    print(f"max loop stall {live.max_stall * 1000:.1f} ms over {live.ticks} ticks")
    assert live.max_stall < 0.050, f"the loop stalled {live.max_stall * 1000:.1f} ms"

"""Load on 4 server processes and one PostgreSQL: no double acceptance, exact lockouts.

The same setup as ``bench/service.py``, smaller: requests race from many
threads across the 4 instances, so the store's atomic operations, not any
process's memory, must decide. ``tests/store/test_pgbouncer_service.py``
runs the same tests with the store going through PgBouncer.

Every assertion holds whatever the interleaving (the throttle's lockout bound
and the SMS guess limit are exact, docs/security.md). What an interleaving
may change is only how many racers come after a success has cleared the
throttle: those are checked too, so "at least ``lockout_after`` checked".
With ``THROTTLE`` no count below ``lockout_after`` asks for a delay, so no
racer is ever told ``throttled``.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyotp
import pytest
from bench.service import PERIOD, Gateway, Library, build_policy, server_processes, totp_secret

from macnss_auth.throttle import ThrottlePolicy
from tests.store.services import postgres_server

pytestmark = pytest.mark.services

THROTTLE = ThrottlePolicy(free_failures=9, base_delay=1.0, lockout_after=10)
RACERS = 32  # the 32 clients of bench/service.py, at once


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Library, Gateway, list[str]]]:
    with postgres_server() as conninfo, Gateway() as gateway:
        port = re.search(r"port=(\d+)", conninfo)
        assert port is not None
        database = f"postgresql://postgres@127.0.0.1:{port.group(1)}/postgres"
        workdir = tmp_path_factory.mktemp("load")
        library = build_policy(database, gateway.url, throttle=THROTTLE)
        try:
            with server_processes(database, gateway.url, Path(workdir), throttle=THROTTLE) as urls:
                yield library, gateway, urls
        finally:
            library.store.close()


def race(urls: list[str], path: str, body: dict[str, str]) -> Counter[str]:
    """``RACERS`` identical requests at once, spread over the instances; reasons counted."""

    def one(n: int) -> str:
        answer = httpx.post(urls[n % len(urls)] + path, json=body, timeout=60)
        return "ok" if answer.status_code == 200 else str(answer.json()["reason"])

    with ThreadPoolExecutor(RACERS) as pool:
        return Counter(pool.map(one, range(RACERS)))


def test_one_sms_code_is_accepted_once(setup: tuple[Library, Gateway, list[str]]) -> None:
    library, gateway, urls = setup
    sms = library.sms
    for round_ in range(4):
        subject, number = f"race-sms-{round_}", f"+21266100{round_:04d}"
        sms.confirm(sms.enroll(subject, number), gateway.messages[number][-1])
        begun = httpx.post(urls[0] + "/v1/challenges", json={"subject": subject, "method": "sms"})
        code = gateway.messages[number][-1]
        path = f"/v1/challenges/{begun.json()['id']}/verify"
        outcomes = race(urls, path, {"code": code})
        assert outcomes["ok"] == 1, outcomes
        # A loser with the right code is told "already used", never attempts_exhausted.
        assert set(outcomes) <= {"ok", "challenge_used", "locked_out"}, outcomes
        assert outcomes["ok"] + outcomes["challenge_used"] >= THROTTLE.lockout_after, outcomes
        assert httpx.post(urls[1] + path, json={"code": code}).json()["reason"] in {
            "challenge_used",
            "locked_out",
        }


def test_one_totp_code_is_accepted_once(setup: tuple[Library, Gateway, list[str]]) -> None:
    library, _, urls = setup
    totp = library.totp
    for round_ in range(4):
        subject = f"race-totp-{round_}"
        app = pyotp.TOTP(totp_secret(subject), interval=PERIOD)
        totp.enroll(subject, secret=totp_secret(subject))
        totp.confirm(subject, app.at(int(time.time()) - PERIOD))
        # One challenge per racer: the time step, not the challenge, must stop the replays.
        ids = [
            httpx.post(urls[n % 4] + "/v1/challenges",
                       json={"subject": subject, "method": "totp"}).json()["id"]
            for n in range(RACERS)
        ]  # fmt: skip
        code = app.at(int(time.time()) + PERIOD)  # the next step: inside the window, unused

        def one(n: int, code: str = code, ids: list[str] = ids) -> str:
            answer = httpx.post(urls[n % 4] + f"/v1/challenges/{ids[n]}/verify",
                                json={"code": code}, timeout=60)  # fmt: skip
            return "ok" if answer.status_code == 200 else str(answer.json()["reason"])

        with ThreadPoolExecutor(RACERS) as pool:
            outcomes = Counter(pool.map(one, range(RACERS)))
        assert outcomes["ok"] == 1, outcomes
        assert set(outcomes) <= {"ok", "replayed", "locked_out"}, outcomes
        assert outcomes["ok"] + outcomes["replayed"] >= THROTTLE.lockout_after, outcomes


def test_parallel_wrong_codes_lock_out_exactly(setup: tuple[Library, Gateway, list[str]]) -> None:
    library, _, urls = setup
    totp = library.totp

    def wrong_codes(subject: str, attempts: int, *, parallel: bool) -> Counter[str]:
        totp.enroll(subject, secret=totp_secret(subject))
        app = pyotp.TOTP(totp_secret(subject), interval=PERIOD)
        totp.confirm(subject, app.at(int(time.time()) - PERIOD))
        right = {app.at(int(time.time()) + d) for d in (-PERIOD, 0, PERIOD, 2 * PERIOD)}
        wrong = next(c for c in (f"{n:06d}" for n in range(10**6)) if c not in right)
        ids = [
            httpx.post(urls[n % 4] + "/v1/challenges",
                       json={"subject": subject, "method": "totp"}).json()["id"]
            for n in range(attempts)
        ]  # fmt: skip

        def one(n: int) -> str:
            answer = httpx.post(urls[n % 4] + f"/v1/challenges/{ids[n]}/verify",
                                json={"code": wrong}, timeout=60)  # fmt: skip
            return str(answer.json()["reason"])

        if not parallel:
            return Counter(one(n) for n in range(attempts))
        with ThreadPoolExecutor(RACERS) as pool:
            return Counter(pool.map(one, range(attempts)))

    sequential = wrong_codes("lock-sequential", 14, parallel=False)
    assert sequential == {"invalid_code": THROTTLE.lockout_after, "locked_out": 4}
    parallel = wrong_codes("lock-parallel", 48, parallel=True)
    # Exactly as many wrong codes were checked as one at a time: the rest were refused.
    assert parallel == {
        "invalid_code": THROTTLE.lockout_after,
        "locked_out": 48 - THROTTLE.lockout_after,
    }, parallel

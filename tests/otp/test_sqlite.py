"""TOTP/HOTP on the default SQLiteStore: cross-process replay races, secrets sealed on disk."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.otp.hotp import HotpAuthenticator
from macnss_auth.otp.recovery import RecoveryCodeAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.store import Keyring
from macnss_auth.store.sqlite import SQLiteStore
from macnss_auth.testing import FixedClock
from macnss_auth.testing.races import ProcessPool

from .otp_helpers import SECRET, T0, hotp_code, totp_code
from .otp_race_worker import RELAXED, worker

WORKERS = 8
REPETITIONS = 200


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, bytes, ProcessPool]]:
    path = tmp_path_factory.mktemp("otp-race") / "state.sqlite3"
    key = bytes(range(32))
    store = SQLiteStore(path, keyring=Keyring({"k1": key}, primary="k1"))
    clock = FixedClock.at(T0)
    common: dict[str, Any] = {
        "store": store,
        "audit": MemoryAuditLog(),
        "clock": clock,
        "throttle_policy": RELAXED,
    }
    totp = TotpAuthenticator(**common)
    totp.enroll("alice", secret=SECRET)
    totp.confirm("alice", totp_code(SECRET, T0))
    hotp = HotpAuthenticator(**common)
    hotp.enroll("alice", secret=SECRET)
    hotp.confirm("alice", hotp_code(SECRET, 0))
    store.close()
    pool = ProcessPool(
        worker,
        (
            str(path),
            key.hex(),
        ),
        WORKERS,
    )
    try:
        yield path, key, pool
    finally:
        pool.close()


def test_totp_replay_race_across_processes(shared: tuple[Path, bytes, ProcessPool]) -> None:
    _path, _key, pool = shared
    for rep in range(REPETITIONS):
        when = T0 + 30 * (rep + 1)
        outcomes = pool.race(rep, "totp", when, totp_code(SECRET, when))
        assert outcomes == Counter({"ok": 1, "replayed": WORKERS - 1}), (rep, outcomes)


def test_hotp_counter_race_across_processes(shared: tuple[Path, bytes, ProcessPool]) -> None:
    _path, _key, pool = shared
    for rep in range(REPETITIONS):
        outcomes = pool.race(rep, "hotp", T0, hotp_code(SECRET, rep + 1))
        assert outcomes == Counter({"ok": 1, "replayed": WORKERS - 1}), (rep, outcomes)


def test_the_file_never_holds_a_secret_in_the_clear(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = SQLiteStore(path, keyring=Keyring.generate())
    clock = FixedClock.at(T0)
    audit = MemoryAuditLog()
    totp = TotpAuthenticator(store=store, audit=audit, clock=clock)
    hotp = HotpAuthenticator(store=store, audit=audit, clock=clock)
    recovery = RecoveryCodeAuthenticator(store=store, audit=audit, clock=clock, scrypt_n=2**10)
    confirmed = totp.enroll("alice", secret=SECRET)
    totp.confirm("alice", totp_code(SECRET, T0))
    pending = totp.enroll("bob")  # stays pending
    generated = hotp.enroll("carol")
    codes = recovery.generate("alice").codes
    recovery.verify_code("alice", codes[0])
    clock.advance(60)
    totp.verify_code("alice", totp_code(SECRET, clock.now()))
    secrets = [confirmed.secret.reveal(), pending.secret.reveal(), generated.secret.reveal()]
    needles: list[bytes] = []
    for raw in secrets:
        needles += [raw, raw.hex().encode(), raw.hex().upper().encode()]
    for provisioning in (confirmed, pending, generated):
        needles.append(provisioning.secret_base32.encode())
        needles.append(provisioning.secret_base32[:16].encode())
    for code in codes:
        needles += [code.encode(), code.replace("-", "").encode()]
    # Look at the database, its write-ahead log and shared memory, before and after close.
    for closing in (False, True):
        if closing:
            store.close()
        files = [p for p in tmp_path.iterdir() if p.name.startswith("state.sqlite3")]
        assert files
        blob = b"".join(p.read_bytes() for p in files)
        assert b"alice" in blob  # we are reading the right file
        for needle in needles:
            assert needle not in blob

"""What the passkey race tests run in each thread or spawned process (importable by both)."""

from __future__ import annotations

import json
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.passkey import PasskeyAuthenticator
from macnss_auth.passkey.virtual import VirtualAuthenticator
from macnss_auth.store import Store
from macnss_auth.testing import FixedClock
from macnss_auth.testing.races import outcome_name
from tests.store._workers import open_spec

__all__ = ["REMOVERS", "device", "passkeys_on", "prepare", "process_worker"]

ORIGIN = "http://localhost:8443"
NOW = 1_800_000_000
#: Workers that each remove one of the subject's old passkeys while two register.
REMOVERS = 2
WINDOW = 10.0**9


def passkeys_on(store: Store, *, max_credentials: int = 10) -> PasskeyAuthenticator:
    """A service instance's passkey method on ``store``."""
    return PasskeyAuthenticator(
        store=store,
        audit=MemoryAuditLog(),
        rp_id="localhost",
        origins=[ORIGIN],
        clock=FixedClock.at(NOW),
        max_credentials=max_credentials,
    )


def device() -> VirtualAuthenticator:
    """A fresh virtual phone."""
    return VirtualAuthenticator(origin=ORIGIN)


def prepare(
    passkeys: PasskeyAuthenticator, subject: str, *, count: int = REMOVERS + 1
) -> tuple[list[str], str, str]:
    """``count`` registered passkeys (ids), and a ceremony answered but not yet finished."""
    old = []
    for _ in range(count):
        challenge = passkeys.begin_registration(subject)
        created = device().create(challenge.data["options"])
        old.append(passkeys.finish_registration(challenge, created).id_b64url)
    challenge = passkeys.begin_registration(subject)
    return old, challenge.id, json.dumps(device().create(challenge.data["options"]))


def process_worker(
    spec: tuple[str, str, str],
    barrier: Barrier,
    tasks: Queue[tuple[object, ...]],
    results: Queue[tuple[int, str]],
) -> None:
    """A service instance; per task ``(rep, subject, challenge_id, response, old_ids)``.

    The first worker to count itself finishes the pending ceremony, the second
    registers a passkey of its own, the others each remove one old passkey.
    """
    store = open_spec(spec)
    passkeys = passkeys_on(store)
    phone = device()
    try:
        while (task := tasks.get()) != ("stop",):
            rep, subject, challenge_id, response, old = task
            assert isinstance(rep, int)
            assert isinstance(subject, str)
            assert isinstance(challenge_id, str)
            assert isinstance(response, str)
            assert isinstance(old, tuple)
            role = store.hit(f"role:{rep}", FixedClock.at(NOW).now(), WINDOW).count
            outcome: object
            if role == 1:
                barrier.wait(timeout=60)
                try:
                    done = passkeys.finish_registration(challenge_id, response)
                    outcome = f"registered:{done.id_b64url}"
                except Exception as exc:  # noqa: BLE001 (reported to the test)
                    outcome = exc
            elif role == 2:
                barrier.wait(timeout=60)
                try:
                    challenge = passkeys.begin_registration(subject)
                    created = phone.create(challenge.data["options"])
                    done = passkeys.finish_registration(challenge, created)
                    outcome = f"registered:{done.id_b64url}"
                except Exception as exc:  # noqa: BLE001 (reported to the test)
                    outcome = exc
            else:
                barrier.wait(timeout=60)
                removed = passkeys.remove_credential(subject, str(old[role - 3]))
                outcome = "removed" if removed else "kept"
            results.put((rep, outcome if isinstance(outcome, str) else outcome_name(outcome)))
    finally:
        store.close()

"""Passkey verifications per second: bare py_webauthn next to our authenticator on each store.

Run: ``.venv/bin/python bench/passkey.py`` (about 20 s; ``--count`` and
``--rounds`` for steadier numbers, ``--pin CPU`` to stay on one CPU). One
process, one thread.

Each round prepares ``--count`` fresh assertions per row (outside the timing:
the browser's and the authenticator's work, done by ``VirtualAuthenticator``,
an EC P-256 key), then times verifying them all:

* ``py_webauthn (bare)``: ``webauthn.verify_authentication_response`` with
  the public key and counter in hand; no challenge store, no counter store,
  no throttle, no audit.
* ``ours``: ``PasskeyAuthenticator.verify``: read and consume the single-use
  challenge (atomic), strict parsing and the step-by-step checks, load and
  unseal the credential (AES-GCM), count the attempt (throttle), py_webauthn's
  verification, ``advance`` the signature counter (atomic), clear the
  throttle, write an audit event.

Audit sinks: ``MemoryAuditLog`` (hash-chained, screened) or a no-op sink.
SQLite stores run with ``synchronous=FULL`` (the default) and ``NORMAL``.
Rounds interleave the rows; the table shows the median and the best round,
and how many times slower than the bare library each row is.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webauthn import verify_authentication_response

from macnss_auth.audit import AuditEvent, AuditLog, MemoryAuditLog
from macnss_auth.authenticator import Challenge
from macnss_auth.passkey import PasskeyAuthenticator
from macnss_auth.passkey.virtual import VirtualAuthenticator
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.store.base import Store
from macnss_auth.store.sqlite import SQLiteStore, Synchronous
from macnss_auth.testing import FixedClock

RP_ID = "localhost"
ORIGIN = "http://localhost:8443"
SUBJECT = "bench-subject"

# A batch: prepare() builds the inputs (untimed), run() verifies them all (timed).
Batch = tuple[Callable[[int], list[Any]], Callable[[list[Any]], None]]


class NullAudit:
    """Accepts every event and keeps nothing: isolates the cost of the audit sink."""

    def record(self, event: AuditEvent) -> str:
        return "0"


def bare() -> Batch:
    passkeys = PasskeyAuthenticator(
        store=MemoryStore(), audit=NullAudit(), rp_id=RP_ID, origins=[ORIGIN]
    )
    phone = VirtualAuthenticator(origin=ORIGIN)
    challenge = passkeys.begin_registration(SUBJECT)
    passkeys.finish_registration(challenge, phone.create(challenge.data["options"]))
    (credential,) = phone.credentials.values()
    public_key = credential.cose_public_key()
    state = {"count": 0}

    def prepare(count: int) -> list[Any]:
        batch = []
        for _ in range(count):
            challenge = os.urandom(32)
            options = {
                "challenge": _b64(challenge),
                "rpId": RP_ID,
                "allowCredentials": [],
            }
            batch.append((challenge, phone.get(options)))
        return batch

    def run(batch: list[Any]) -> None:
        for challenge, response in batch:
            verified = verify_authentication_response(
                credential=response,
                expected_challenge=challenge,
                expected_rp_id=RP_ID,
                expected_origin=ORIGIN,
                credential_public_key=public_key,
                credential_current_sign_count=state["count"],
                require_user_verification=True,
            )
            state["count"] = verified.new_sign_count

    return prepare, run


def ours(store: Callable[[], Store], audit: Callable[[], AuditLog]) -> Batch:
    passkeys = PasskeyAuthenticator(
        store=store(),
        audit=audit(),
        rp_id=RP_ID,
        origins=[ORIGIN],
        clock=FixedClock.at(1_800_000_000),
    )
    phone = VirtualAuthenticator(origin=ORIGIN)
    challenge = passkeys.begin_registration(SUBJECT)
    passkeys.finish_registration(challenge, phone.create(challenge.data["options"]))

    def prepare(count: int) -> list[Any]:
        batch: list[tuple[Challenge, dict[str, Any]]] = []
        for _ in range(count):
            challenge = passkeys.begin(SUBJECT)
            batch.append((challenge, phone.get(challenge.data["options"])))
        return batch

    def run(batch: list[Any]) -> None:
        for challenge, response in batch:
            passkeys.verify(challenge.id, response)

    return prepare, run


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=400, help="verifications per row and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pin", type=int, default=None, metavar="CPU", help="pin to this CPU")
    args = parser.parse_args()
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    with tempfile.TemporaryDirectory(prefix="bench-passkey-") as name:
        tmp = Path(name)
        counter = iter(range(1_000_000))

        def sqlite(synchronous: Synchronous) -> Callable[[], Store]:
            return lambda: SQLiteStore(
                tmp / f"state-{next(counter)}.sqlite3",
                keyring=Keyring.generate(),
                synchronous=synchronous,
            )

        def memory() -> Store:
            return MemoryStore(keyring=Keyring.generate())

        rows: list[tuple[str, Batch]] = [
            ("py_webauthn verify_authentication_response (bare)", bare()),
            ("ours, MemoryStore, MemoryAuditLog", ours(memory, MemoryAuditLog)),
            ("ours, MemoryStore, no-op audit", ours(memory, NullAudit)),
            ("ours, SQLiteStore FULL, MemoryAuditLog", ours(sqlite("FULL"), MemoryAuditLog)),
            ("ours, SQLiteStore NORMAL, MemoryAuditLog", ours(sqlite("NORMAL"), MemoryAuditLog)),
        ]
        rates: list[list[float]] = [[] for _ in rows]
        for _ in range(args.rounds):
            for index, (_, (prepare, run)) in enumerate(rows):
                batch = prepare(args.count)
                began = time.perf_counter()
                run(batch)
                rates[index].append(args.count / (time.perf_counter() - began))
    base = statistics.median(rates[0])
    width = max(len(name) for name, _ in rows)
    print(f"{'row':<{width}}  {'median/s':>9}  {'best/s':>9}  {'x slower':>8}")
    for (name, _), row_rates in zip(rows, rates, strict=True):
        median = statistics.median(row_rates)
        print(f"{name:<{width}}  {median:>9,.0f}  {max(row_rates):>9,.0f}  {base / median:>8.2f}")


if __name__ == "__main__":
    main()

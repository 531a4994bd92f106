"""Racers holding the right SMS code: one is accepted, every other one hears "already used".

Each verification counts a guess on the challenge before comparing, and only
the first ``max_attempts`` guesses are compared. With many racers on one
right code (a double submit, a client retrying, 32 clients of a load test)
the guess counter passes ``max_attempts`` before the winner consumes the
challenge; the racers past it used to be told ``attempts_exhausted``, as if
wrong codes had burnt the challenge. Now a racer past the limit is never
compared (the limit stays exact) and is told what the compared guesses did:
``attempts_exhausted`` only when they were all wrong and counted, else
``challenge_used``. The tests force the interleaving (every guess counted
before any is compared) with :class:`~tests.otp._oob_race_worker.GuessesFirst`.
"""

from __future__ import annotations

import functools
import multiprocessing
import threading
from collections import Counter
from pathlib import Path
from typing import cast

from macnss_auth.delivery import CapturingChannel, ChannelKind
from macnss_auth.otp.contacts import parse_phone, put_destination
from macnss_auth.otp.oob import SMSCodeAuthenticator
from macnss_auth.store import Keyring, SQLiteStore, Store
from macnss_auth.testing import FixedClock
from macnss_auth.testing.races import outcome_name, race_processes, race_threads
from tests.conftest import OpenStore
from tests.otp._oob_race_worker import (
    T0,
    GuessesFirst,
    outcome,
    sms_authenticator,
    verify_in_process,
)

RACERS = 32
KEY = bytes(range(32))


def _begin(store: Store) -> tuple[SMSCodeAuthenticator, str, str]:
    channel = CapturingChannel(ChannelKind.SMS)
    put_destination(store, "alice", parse_phone("+212612345678"), now=FixedClock.at(T0).now())
    auth = sms_authenticator(store, channel=channel)
    challenge = auth.begin("alice")
    return auth, challenge.id, channel.last_code()


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def _race_in_threads(
    open_any_store: OpenStore, codes: list[str], challenge_id: str
) -> Counter[str]:
    barrier = threading.Barrier(len(codes))
    auths = [sms_authenticator(cast(Store, GuessesFirst(open_any_store(), barrier))) for _ in codes]
    results = race_threads(
        [
            functools.partial(outcome, auth, challenge_id, code)
            for auth, code in zip(auths, codes, strict=True)
        ]
    )
    for auth in auths:
        auth.close()
    return Counter(r if isinstance(r, str) else outcome_name(r) for r in results)


def test_threads_with_the_right_code_get_one_success_and_challenge_used(
    open_any_store: OpenStore,
) -> None:
    first, challenge_id, code = _begin(open_any_store())
    outcomes = _race_in_threads(open_any_store, [code] * RACERS, challenge_id)
    assert outcomes == {"ok": 1, "challenge_used": RACERS - 1}
    first.close()


def test_the_guess_limit_stays_exact_for_wrong_codes(open_any_store: OpenStore) -> None:
    """Racers past the limit are never compared: exactly ``max_attempts`` wrong codes are."""
    first, challenge_id, code = _begin(open_any_store())
    outcomes = _race_in_threads(open_any_store, [_wrong(code)] * RACERS, challenge_id)
    limit = first.codes.max_attempts
    assert outcomes["invalid_code"] == limit, outcomes
    # The others are told what the compared guesses did, seen while they were in flight.
    assert set(outcomes) <= {"invalid_code", "attempts_exhausted", "challenge_used"}, outcomes
    assert outcome(first, challenge_id, code) == "attempts_exhausted"
    first.close()


def test_a_right_code_among_wrong_ones_is_compared_only_within_the_limit(
    open_any_store: OpenStore,
) -> None:
    """Whatever wins the guess counter, at most one success and never more comparisons."""
    first, challenge_id, code = _begin(open_any_store())
    codes = [_wrong(code)] * (RACERS - 1) + [code]
    outcomes = _race_in_threads(open_any_store, codes, challenge_id)
    limit = first.codes.max_attempts
    assert outcomes["ok"] + outcomes["invalid_code"] <= limit, outcomes
    assert outcomes["ok"] <= 1, outcomes
    assert set(outcomes) <= {"ok", "invalid_code", "attempts_exhausted", "challenge_used"}
    first.close()


def test_processes_with_the_right_code_get_one_success_and_challenge_used(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite3"
    with SQLiteStore(path, keyring=Keyring({"k1": KEY}, primary="k1")) as store:
        first, challenge_id, code = _begin(store)
        first.close()
    racers = 8  # spawned interpreters: fewer than threads on a shared 2-core machine
    barrier = multiprocessing.get_context("spawn").Barrier(racers)
    results = race_processes(
        verify_in_process, [((str(path), KEY.hex(), challenge_id, code), barrier)] * racers
    )
    outcomes = Counter(r if isinstance(r, str) else outcome_name(r) for r in results)
    assert outcomes == {"ok": 1, "challenge_used": racers - 1}

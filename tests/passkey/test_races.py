"""A subject's passkeys under concurrency: no registration or removal loses another's.

Each credential has a slot of its own, taken by a compare-and-set (see the
theory in :mod:`macnss_auth.passkey.authenticator`). Registrations and
removals of one subject race here through :mod:`macnss_auth.testing.races`,
in threads (each with its own store handle, like service instances) on every
backend and in processes on SQLite, PostgreSQL and Redis. After each race the
subject's list is exactly the old credentials minus the removed ones plus the
registrations that succeeded; the second registration of a race may lose its
ceremony (``ChallengeUsed``: a new ``begin_registration`` retires a pending
one), never its credential once it was told it succeeded.
"""

from __future__ import annotations

import base64
import functools
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.errors import AuthenticationFailed, ChallengeUsed, Reason
from macnss_auth.passkey import PasskeyAuthenticator
from macnss_auth.store import MemoryStore
from macnss_auth.testing.races import ProcessPool, race_threads
from tests.conftest import OpenStore
from tests.passkey import race_worker
from tests.passkey.helpers import make_setup
from tests.passkey.race_worker import REMOVERS, passkeys_on, prepare
from tests.store._workers import open_spec

REPS = 6


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _listed(passkeys: PasskeyAuthenticator, subject: str) -> set[str]:
    return {c.id_b64url for c in passkeys.credentials(subject)}


def _finish(passkeys: PasskeyAuthenticator, challenge_id: str, response: str) -> str:
    return passkeys.finish_registration(challenge_id, response).id_b64url


def _register_anew(passkeys: PasskeyAuthenticator, subject: str) -> str:
    challenge = passkeys.begin_registration(subject)
    created = race_worker.device().create(challenge.data["options"])
    return passkeys.finish_registration(challenge, created).id_b64url


def test_registrations_and_removals_in_threads(open_any_store: OpenStore) -> None:
    # One authenticator per store handle, as each service instance has its own.
    instances = [passkeys_on(open_any_store()) for _ in range(2 + REMOVERS)]
    for rep in range(REPS):
        subject = f"citizen-{rep}"
        old, challenge_id, response = prepare(instances[0], subject)
        calls: list[Callable[[], object]] = [
            functools.partial(_finish, instances[0], challenge_id, response),
            functools.partial(_register_anew, instances[1], subject),
        ]
        calls.extend(
            functools.partial(instances[2 + n].remove_credential, subject, old[n])
            for n in range(REMOVERS)
        )
        first, second, *removals = race_threads(calls)
        assert not isinstance(second, BaseException), second
        # The pending ceremony either finished or was retired by the new one.
        assert isinstance(first, (str, ChallengeUsed)), first
        assert removals == [True] * REMOVERS
        added = {o for o in (first, second) if isinstance(o, str)}
        expected = set(old[REMOVERS:]) | added
        for passkeys in instances:
            assert _listed(passkeys, subject) == expected, rep


def test_the_limit_holds_under_racing_registrations(open_any_store: OpenStore) -> None:
    instances = [passkeys_on(open_any_store(), max_credentials=3) for _ in range(2)]
    for rep in range(REPS):
        subject = f"citizen-{rep}"
        old, challenge_id, response = prepare(instances[0], subject, count=2)
        outcomes = race_threads(
            [
                functools.partial(_finish, instances[0], challenge_id, response),
                functools.partial(_register_anew, instances[1], subject),
            ]
        )
        added = [o for o in outcomes if isinstance(o, str)]
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert all(
            isinstance(o, ChallengeUsed) or getattr(o, "reason", None) is Reason.CREDENTIAL_LIMIT
            for o in refused
        ), refused
        assert len(added) == 1  # one free slot: exactly one of them got it
        listed = _listed(instances[1], subject)
        assert listed == set(old) | set(added)
        assert len(listed) <= 3


@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.services),
        pytest.param("redis", marks=pytest.mark.services),
    ],
)
def test_registrations_and_removals_in_processes(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        spec = ("sqlite", str(tmp_path / "state.sqlite3"), "")
    elif kind == "postgres":
        spec = ("postgres", request.getfixturevalue("postgres"), f"p_{tmp_path.name[-20:]}")
    else:
        spec = ("redis", request.getfixturevalue("redis_url"), f"{{{tmp_path.name}}}:")
    store = open_spec(spec)
    passkeys = passkeys_on(store)
    pool = ProcessPool(race_worker.process_worker, (spec,), 2 + REMOVERS)
    try:
        for rep in range(REPS):
            subject = f"citizen-{rep}"
            old, challenge_id, response = prepare(passkeys, subject)
            outcomes = pool.race(rep, subject, challenge_id, response, tuple(old))
            added = {o.split(":", 1)[1] for o in outcomes if o.startswith("registered:")}
            assert outcomes["removed"] == REMOVERS, outcomes
            assert len(added) + outcomes["ChallengeUsed"] == 2, outcomes
            assert _listed(passkeys, subject) == set(old[REMOVERS:]) | added, (rep, outcomes)
    finally:
        pool.close()
        store.close()


def test_a_removal_that_stopped_half_way_frees_its_slot() -> None:
    setup = make_setup(max_credentials=1)
    phone = setup.device()
    credential = setup.register("citizen", phone)
    # The record is gone but the slot was never freed (the process died in between).
    setup.store.delete_enrollment(_credential_key(credential.credential_id), "passkey-credential")
    assert setup.passkeys.credentials("citizen") == []
    assert setup.register("citizen", setup.device()).subject == "citizen"
    assert Counter(c.subject for c in setup.passkeys.credentials("citizen")) == {"citizen": 1}


def _credential_key(credential_id: bytes) -> str:
    import hashlib  # noqa: PLC0415

    return _b64(hashlib.sha256(credential_id).digest())


def test_a_login_racing_a_registration_loses_neither(open_any_store: OpenStore) -> None:
    instances = [passkeys_on(open_any_store()) for _ in range(2)]
    phone = race_worker.device()
    challenge = instances[0].begin_registration("citizen")
    instances[0].finish_registration(challenge, phone.create(challenge.data["options"]))
    _, challenge_id, response = prepare(instances[0], "citizen", count=0)
    login = instances[1].begin("citizen")
    answer = phone.get(login.data["options"], sign_count=5)
    calls: list[Callable[[], object]] = [
        functools.partial(_finish, instances[0], challenge_id, response),
        functools.partial(instances[1].verify, login, answer),
    ]
    registered, result = race_threads(calls)
    assert getattr(result, "subject", None) == "citizen"
    assert isinstance(registered, str)
    assert len(_listed(instances[1], "citizen")) == 2
    # The counter the login stored holds: the same value again is a clone.
    again = instances[1].begin("citizen")
    with pytest.raises(AuthenticationFailed) as info:
        instances[1].verify(again, phone.get(again.data["options"], sign_count=5))
    assert info.value.reason is Reason.SIGN_COUNT_REGRESSED


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["register", "remove", "unenroll"]), st.integers(0, 9)),
        max_size=12,
    )
)
def test_the_slots_list_what_a_plain_model_holds(steps: list[tuple[str, int]]) -> None:
    """Any sequence of registrations and removals: the list is the model's, within the limit."""
    passkeys = passkeys_on(MemoryStore(), max_credentials=3)
    model: list[str] = []
    for action, pick in steps:
        if action == "register":
            if len(model) < 3:
                model.append(_register_anew(passkeys, "citizen"))
            else:
                with pytest.raises(AuthenticationFailed) as info:
                    _register_anew(passkeys, "citizen")
                assert info.value.reason is Reason.CREDENTIAL_LIMIT
        elif action == "remove" and model:
            gone = model.pop(pick % len(model))
            assert passkeys.remove_credential("citizen", gone)
            assert not passkeys.remove_credential("citizen", gone)
        elif action == "unenroll":
            assert passkeys.unenroll("citizen") == len(model)
            model.clear()
        # (Order is by registration time; this clock stands still, so compare as sets.)
        listed = [c.id_b64url for c in passkeys.credentials("citizen")]
        assert sorted(listed) == sorted(model)

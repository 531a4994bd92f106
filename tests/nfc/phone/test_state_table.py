"""Every (state, message) pair the table does not list fails the session for good."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.nfc.phone import (
    SERVER_MESSAGES,
    TRANSITIONS,
    Abort,
    CardLost,
    CardReady,
    Hello,
    PhoneFailure,
    PhoneMessage,
    PhoneMode,
    PhoneSession,
    PhoneSessionFailed,
    Responses,
    Resume,
    SessionState,
    Upload,
    decode_message,
    encode_message,
)
from macnss_auth.testing import FixedClock

from .conftest import NOW, SUBJECT, SceneFactory, issued, make_eid, phone_for

SAMPLES: dict[str, PhoneMessage] = {
    "hello": Hello("abc", PhoneMode.SPLIT),
    "upload": Upload({"SOD": b"\x77\x00", "DG1": b"\x61\x00"}),
    "responses": Responses(1, (b"\x90\x00",)),
    "card_ready": CardReady(),
    "card_lost": CardLost(),
    "resume": Resume("abc", bytes(16)),
}


def session_in(state: SessionState, clock: FixedClock) -> PhoneSession:
    card = issued("cnie")
    eid = make_eid(clock, card)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    if state is SessionState.START:
        return session
    mode = (
        PhoneMode.SPLIT
        if state in (SessionState.AWAIT_UPLOAD, SessionState.AWAIT_CA)
        else (PhoneMode.RELAY)
    )
    phone, _ = phone_for(card, "cnie", challenge, mode)
    pending = phone.start()
    while session.state is not state:
        message = pending.pop(0)
        for reply in session.receive(encode_message(message)):
            pending.extend(phone.handle(decode_message(reply, accept=SERVER_MESSAGES)))
        if state is SessionState.RELAY_AWAIT_CARD and session.state is (
            SessionState.RELAY_AWAIT_RESPONSE
        ):
            session.receive(encode_message(CardLost()))
    return session


LIVE = [s for s in SessionState if s not in (SessionState.DONE, SessionState.FAILED)]
PAIRS = [(s, t) for s in LIVE for t in SAMPLES if (s, t) not in TRANSITIONS]


@pytest.mark.parametrize(("state", "kind"), PAIRS, ids=[f"{s.name}-{t}" for s, t in PAIRS])
def test_pairs_outside_the_table_fail(clock: FixedClock, state: SessionState, kind: str) -> None:
    session = session_in(state, clock)
    assert session.state is state
    with pytest.raises(PhoneSessionFailed) as raised:
        session.receive(encode_message(SAMPLES[kind]))
    assert raised.value.failure is PhoneFailure.UNEXPECTED_MESSAGE
    assert session.state is SessionState.FAILED
    with pytest.raises(PhoneSessionFailed):
        session.check_deadline()


@pytest.mark.parametrize("state", LIVE)
def test_abort_fails_every_live_state(clock: FixedClock, state: SessionState) -> None:
    session = session_in(state, clock)
    with pytest.raises(PhoneSessionFailed) as raised:
        session.receive(encode_message(Abort("cancelled")))
    assert raised.value.failure is PhoneFailure.PHONE_ABORTED


def test_finished_session_refuses_everything(scene: SceneFactory) -> None:
    s = scene()
    phone = s.phone(PhoneMode.RELAY)
    pending = phone.start()
    while pending:
        for reply in s.session.receive(encode_message(pending.pop(0))):
            pending.extend(phone.handle(decode_message(reply, accept=SERVER_MESSAGES)))
    assert s.session.finished
    for message in SAMPLES.values():
        with pytest.raises(PhoneSessionFailed) as raised:
            s.session.receive(encode_message(message))
        assert raised.value.failure is PhoneFailure.SESSION_CLOSED
    assert s.session.evidence.mode is PhoneMode.RELAY


def test_server_messages_are_not_accepted_from_a_phone(clock: FixedClock) -> None:
    session = session_in(SessionState.START, clock)
    with pytest.raises(PhoneSessionFailed) as raised:
        session.receive('{"v":1,"type":"reconnect"}')
    assert raised.value.failure is PhoneFailure.MALFORMED_MESSAGE


def refusal(session: PhoneSession, raw: str) -> PhoneFailure | None:
    """The failure ``raw`` caused, or None when the session took it."""
    try:
        session.receive(raw)
    except PhoneSessionFailed as exc:
        return exc.failure
    return None


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.lists(st.sampled_from([*SAMPLES, "abort", "garbage"]), min_size=1, max_size=6),
    mode=st.sampled_from([PhoneMode.SPLIT, PhoneMode.RELAY]),
)
def test_any_sequence_keeps_the_invariants(kinds: list[str], mode: PhoneMode) -> None:
    """Whatever a phone sends: a typed failure or an allowed transition; dead stays dead."""
    clock = FixedClock.at(NOW)
    card = issued("cnie")
    eid = make_eid(clock, card)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    hello = Hello(
        challenge.id, mode, password={"can": "123456"} if mode is PhoneMode.RELAY else None
    )
    session.receive(encode_message(hello))
    failed = False
    for kind in kinds:
        before = session.state
        raw = (
            "garbage"
            if kind == "garbage"
            else encode_message(Abort("x") if kind == "abort" else SAMPLES[kind])
        )
        failure = refusal(session, raw)
        if failure is None:
            assert not failed
            assert before is not SessionState.DONE
            assert session.state in TRANSITIONS[before, kind]
        elif before is SessionState.DONE:
            # A finished session refuses more messages and keeps its evidence for verify.
            assert failure is PhoneFailure.SESSION_CLOSED
            assert session.state is SessionState.DONE
        else:
            assert session.state is SessionState.FAILED
            assert session.failure is (failure if not failed else session.failure)
            failed = True
            with pytest.raises(PhoneSessionFailed):
                _ = session.evidence
    session.abort()

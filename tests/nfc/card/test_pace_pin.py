"""PACE with PIN and PUK on the virtual card, in process (issue 16 item 6).

Every state of the PIN's retry counter (BSI TR-03110-2 §3.5) and every move
between them, driven by the terminal over APDUs: full (3) -> used (2) ->
suspended (1: the last try only inside a PACE-CAN session) -> blocked (0) ->
unblocked by the PUK (RESET RETRY COUNTER). The status words are those of
BSI TR-03110-3 B.11.1 (MSE:Set AT) and B.11.4 (RESET RETRY COUNTER).
"""

from __future__ import annotations

import itertools
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macnss_auth.errors import (
    AccessDenied,
    MalformedInput,
    PasswordBlocked,
    PasswordSuspended,
    RemoteProtocolError,
    SecureMessagingError,
)
from macnss_auth.nfc.apdu import CommandAPDU
from macnss_auth.nfc.card import VirtualCard
from macnss_auth.nfc.mrz import CAN, PIN, PUK
from macnss_auth.nfc.pace import (
    PaceResult,
    PaceTerminal,
    SecureMessagingTransport,
    reset_retry_counter_command,
    resume_pin,
    unblock_pin,
)
from macnss_auth.nfc.protocol import Transport, run
from macnss_auth.nfc.securityinfos import PaceInfo, PaceOid
from macnss_auth.nfc.serve.memory import MemoryTransport
from macnss_auth.secret import Secret
from macnss_auth.testing import FixedRandom

from .conftest import issued
from .terminal import plain, protected

INFO = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
RIGHT_CAN = CAN("123456")
RIGHT_PIN = PIN("246810")
WRONG_PIN = PIN("000000")
RIGHT_PUK = PUK("1357924680")
WRONG_PUK = PUK("0000000000")
_seeds = itertools.count()


def _card() -> MemoryTransport:
    return MemoryTransport(VirtualCard(issued("eid-pin").data, random=FixedRandom(b"pin-card")))


def _pace(transport: Transport, password: CAN | PIN | PUK) -> PaceResult:
    return run(PaceTerminal(password, INFO, random=FixedRandom(next(_seeds))), transport)


def _fail(transport: MemoryTransport, password: PIN | PUK) -> AccessDenied:
    with pytest.raises(AccessDenied) as caught:
        _pace(transport, password)
    transport.tap()
    return caught.value


def _suspend(transport: MemoryTransport) -> None:
    _fail(transport, WRONG_PIN)
    _fail(transport, WRONG_PIN)


def test_right_pin_opens_a_session_with_the_counter_full() -> None:
    transport = _card()
    result = _pace(transport, RIGHT_PIN)
    assert result.password_reference == 3
    assert result.remaining_attempts is None
    assert transport.card.session == "PACE"


def test_wrong_pin_costs_one_try_and_mse_warns_until_a_success() -> None:
    transport = _card()
    error = _fail(transport, WRONG_PIN)
    assert type(error) is AccessDenied
    assert (error.status_word, error.remaining_attempts) == (0x63C2, 2)
    # MSE:Set AT now warns 63C2; the run goes on and a success fills the counter.
    assert _pace(transport, RIGHT_PIN).remaining_attempts == 2
    transport.tap()
    assert _pace(transport, RIGHT_PIN).remaining_attempts is None


def test_second_wrong_pin_suspends() -> None:
    transport = _card()
    _fail(transport, WRONG_PIN)
    error = _fail(transport, WRONG_PIN)
    assert isinstance(error, PasswordSuspended)
    assert (error.status_word, error.remaining_attempts) == (0x63C1, 1)


def test_suspended_pin_is_refused_without_the_can_and_keeps_its_last_try() -> None:
    transport = _card()
    _suspend(transport)
    for _ in range(3):
        error = _fail(transport, RIGHT_PIN)
        assert isinstance(error, PasswordSuspended)
        assert error.status_word == 0x63C1
    # A terminal that goes on anyway (claiming a resume without a CAN session) is
    # refused by the card itself: MSE:Set AT set nothing, so GA is out of sequence,
    # and neither a right nor a wrong PIN uses the last try.
    for pin in (WRONG_PIN, RIGHT_PIN, WRONG_PIN):
        terminal = PaceTerminal(pin, INFO, random=FixedRandom(next(_seeds)), resuming=True)
        with pytest.raises(RemoteProtocolError) as caught:
            run(terminal, transport)
        assert caught.value.status_word == 0x6985
    # The last try is still there: resuming with the CAN works.
    assert (
        resume_pin(transport, RIGHT_CAN, RIGHT_PIN, INFO, random=FixedRandom(5)).password_reference
        == 3
    )


def test_resume_with_the_can_fills_the_counter() -> None:
    transport = _card()
    _suspend(transport)
    result = resume_pin(transport, RIGHT_CAN, RIGHT_PIN, INFO, random=FixedRandom(1))
    assert result.password_reference == 3
    assert result.remaining_attempts == 1  # the 63C1 warning inside the CAN session
    transport.tap()
    assert _pace(transport, RIGHT_PIN).remaining_attempts is None


def test_resume_with_a_wrong_can_costs_no_pin_try() -> None:
    transport = _card()
    _suspend(transport)
    with pytest.raises(AccessDenied) as caught:
        resume_pin(transport, CAN("654321"), RIGHT_PIN, INFO, random=FixedRandom(2))
    assert caught.value.status_word == 0x6300
    transport.tap()
    assert (
        resume_pin(transport, RIGHT_CAN, RIGHT_PIN, INFO, random=FixedRandom(3)).password_reference
        == 3
    )


def test_the_can_session_is_forgotten_on_a_new_tap() -> None:
    transport = _card()
    _suspend(transport)
    _pace(transport, RIGHT_CAN)
    transport.tap()
    assert isinstance(_fail(transport, RIGHT_PIN), PasswordSuspended)


def test_wrong_pin_while_resuming_blocks() -> None:
    transport = _card()
    _suspend(transport)
    with pytest.raises(PasswordBlocked) as caught:
        resume_pin(transport, RIGHT_CAN, WRONG_PIN, INFO, random=FixedRandom(4))
    assert (caught.value.status_word, caught.value.remaining_attempts) == (0x63C0, 0)
    transport.tap()
    # Blocked: the right PIN is refused at MSE:Set AT, with or without the CAN.
    error = _fail(transport, RIGHT_PIN)
    assert isinstance(error, PasswordBlocked)
    assert error.status_word == 0x63C0
    with pytest.raises(PasswordBlocked):
        resume_pin(transport, RIGHT_CAN, RIGHT_PIN, INFO, random=FixedRandom(6))


def _block(transport: MemoryTransport) -> None:
    _suspend(transport)
    with pytest.raises(PasswordBlocked):
        resume_pin(transport, RIGHT_CAN, WRONG_PIN, INFO, random=FixedRandom(7))
    transport.tap()


def test_puk_unblocks_the_pin() -> None:
    transport = _card()
    _block(transport)
    unblock_pin(transport, RIGHT_PUK, INFO, random=FixedRandom(8))
    transport.tap()
    assert _pace(transport, RIGHT_PIN).remaining_attempts is None


def test_puk_unblocks_and_sets_a_new_pin() -> None:
    transport = _card()
    _block(transport)
    new_pin = PIN("97531")
    unblock_pin(transport, RIGHT_PUK, INFO, random=FixedRandom(9), new_pin=new_pin)
    transport.tap()
    assert _fail(transport, RIGHT_PIN).remaining_attempts == 2
    assert _pace(transport, new_pin).remaining_attempts == 2


def test_wrong_puk_counts_its_uses_until_blocked() -> None:
    transport = _card()
    for left in range(9, -1, -1):
        error = _fail(transport, WRONG_PUK)
        assert error.remaining_attempts == left
        assert error.status_word == 0x63C0 | left
        assert isinstance(error, PasswordBlocked) is (left == 0)
    # Blocked for good: the right PUK is refused at MSE:Set AT.
    error = _fail(transport, RIGHT_PUK)
    assert isinstance(error, PasswordBlocked)


def test_reset_retry_counter_needs_a_puk_session() -> None:
    transport = _card()
    _block(transport)
    reset = reset_retry_counter_command()
    assert reset.to_bytes() == bytes.fromhex("002C0303")
    # Outside secure messaging, and inside sessions from the CAN or a PIN: refused.
    assert plain(transport, reset).sw == 0x6982
    can_session = _pace(transport, RIGHT_CAN).secure_channel()
    assert protected(transport, can_session, reset).sw == 0x6982
    transport.tap()
    assert isinstance(_fail(transport, RIGHT_PIN), PasswordBlocked)
    puk_session = _pace(transport, RIGHT_PUK).secure_channel()
    assert protected(transport, puk_session, reset).ok
    # Wrong parameters are refused in the session.
    assert protected(transport, puk_session, CommandAPDU(0x00, 0x2C, 0x03, 0x04)).sw == 0x6A86


def test_change_pin_inside_a_pin_session() -> None:
    transport = _card()
    session = _pace(transport, RIGHT_PIN).secure_channel()
    change = reset_retry_counter_command(new_pin=PIN("1122"))
    assert change.to_bytes()[:4] == bytes.fromhex("002C0203")
    assert protected(transport, session, change).ok
    bad = CommandAPDU(0x00, 0x2C, 0x02, 0x03, data=b"12a")
    assert protected(transport, session, bad).sw == 0x6A80
    # Unblocking is the PUK's alone.
    assert protected(transport, session, reset_retry_counter_command()).sw == 0x6982
    transport.tap()
    assert _pace(transport, PIN("1122")).password_reference == 3


def test_a_pace_inside_secure_messaging_switches_the_session() -> None:
    transport = _card()
    can_session = _pace(transport, RIGHT_CAN).secure_channel()
    nested = SecureMessagingTransport(transport, can_session)
    result = _pace(nested, RIGHT_PIN)
    answer = protected(transport, result.secure_channel(), CommandAPDU(0, 0xA4, 0x00, 0x0C))
    assert answer.ok


def test_the_counter_survives_a_new_tap() -> None:
    transport = _card()
    _fail(transport, WRONG_PIN)
    transport.tap()
    transport.card.reset()
    assert _pace(transport, RIGHT_PIN).remaining_attempts == 2


def test_a_card_without_pin_refuses_the_reference() -> None:
    transport = MemoryTransport(VirtualCard(issued("cnie").data, random=FixedRandom(1)))
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    with pytest.raises(RemoteProtocolError) as caught:
        run(PaceTerminal(RIGHT_PIN, info, random=FixedRandom(2)), transport)
    assert caught.value.status_word == 0x6A88


def test_pin_and_puk_values_stay_secret() -> None:
    pin = PIN("246810")
    assert repr(pin) == "PIN(<redacted>)"
    assert str(pin) == "PIN(<redacted>)"
    assert f"{pin}" == "PIN(<redacted>)"
    assert "246810" not in repr([pin, PUK("1357924680")])
    assert pin == PIN(Secret(b"246810"))
    assert pin != PIN("246811")
    assert pin != PUK("0000246810")
    assert pin.secret == Secret(b"246810")
    with pytest.raises(TypeError):
        hash(pin)
    with pytest.raises(TypeError):
        pickle.dumps(pin)
    for bad, kind in (("123", PIN), ("12345a", PIN), ("1234567", PUK), ("1" * 13, PUK)):
        with pytest.raises(MalformedInput) as caught:
            kind(bad)
        assert bad not in str(caught.value)
    with pytest.raises(TypeError):
        PIN(246810)  # type: ignore[arg-type]


# -- every (state, input) pair: random action sequences against a model of the counters --

_ACTIONS = st.lists(
    st.tuples(st.sampled_from(["pin", "pretend", "resume", "unblock"]), st.booleans()),
    max_size=10,
)


def _expected_refusal(left: int, *, pin: bool) -> type[AccessDenied]:
    if left == 0:
        return PasswordBlocked
    if left == 1 and pin:
        return PasswordSuspended
    return AccessDenied


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ACTIONS)
def test_random_sequences_follow_the_model(actions: list[tuple[str, bool]]) -> None:
    transport = _card()
    rc, puk_uses = 3, 10
    random = FixedRandom(b"model")
    for action, right in actions:
        transport.tap()
        outcome: type[AccessDenied] | None = None
        refused: int | None = None
        try:
            if action == "pin":
                _pace(transport, RIGHT_PIN if right else WRONG_PIN)
            elif action == "pretend":
                # Claims a resume without a CAN session: only the card can refuse.
                pin = RIGHT_PIN if right else WRONG_PIN
                run(PaceTerminal(pin, INFO, random=random, resuming=True), transport)
            elif action == "resume":
                pin = RIGHT_PIN if right else WRONG_PIN
                resume_pin(transport, RIGHT_CAN, pin, INFO, random=random)
            else:
                unblock_pin(transport, RIGHT_PUK if right else WRONG_PUK, INFO, random=random)
        except AccessDenied as error:
            outcome = type(error)
        except RemoteProtocolError as error:
            refused = error.status_word
        if refused is not None:
            assert (action, rc, refused) == ("pretend", 1, 0x6985)
            continue
        if action == "unblock":
            if puk_uses == 0:
                assert outcome is PasswordBlocked
                continue
            puk_uses -= 1
            if right:
                assert outcome is None
                rc = 3
            else:
                assert outcome is _expected_refusal(puk_uses, pin=False)
            continue
        # A PIN run: refused before any try when blocked, or suspended without the CAN.
        if rc == 0 or (rc == 1 and action in ("pin", "pretend")):
            assert outcome is _expected_refusal(rc, pin=True)
            continue
        if right:
            assert outcome is None
            rc = 3
        else:
            rc -= 1
            assert outcome is _expected_refusal(rc, pin=True)


@st.composite
def _pin_commands(draw: st.DrawFn) -> CommandAPDU:
    kind = draw(st.sampled_from(["mse", "ga", "rrc"]))
    if kind == "mse":
        data = bytes.fromhex("800A04007F00070202040202") + bytes(
            [0x83, 0x01, draw(st.integers(0, 5))]
        )
        return CommandAPDU(0x00, 0x22, 0xC1, 0xA4, data=data)
    if kind == "ga":
        body = draw(st.sampled_from([b"", b"\x81\x01\x00", b"\x85\x08" + bytes(8)]))
        return CommandAPDU(0x10, 0x86, 0, 0, data=b"\x7c" + bytes([len(body)]) + body, ne=256)
    return CommandAPDU(
        0x00,
        0x2C,
        draw(st.integers(0, 4)),
        draw(st.integers(2, 4)),
        data=draw(st.sampled_from([b"", b"1234", b"12a4", b"9" * 13])),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_pin_commands(), max_size=10), st.sampled_from([None, "CAN", "PIN", "PUK"]))
def test_pin_commands_in_any_order(commands: list[CommandAPDU], session: str | None) -> None:
    """Any sequence of PIN-related commands gets a status word; the counters stay in range."""
    transport = _card()
    responder = transport.card._pace
    assert responder is not None
    channel = None
    if session is not None:
        passwords: dict[str, CAN | PIN | PUK] = {
            "CAN": RIGHT_CAN,
            "PIN": RIGHT_PIN,
            "PUK": RIGHT_PUK,
        }
        password = passwords[session]
        channel = _pace(transport, password).secure_channel()
    for command in commands:
        if channel is not None:
            try:
                answer = protected(transport, channel, command)
            except SecureMessagingError:
                channel = None
                continue
        else:
            answer = plain(transport, command)
        assert 0x6000 <= answer.sw <= 0x9FFF
        assert 0 <= responder.pin_retries <= 3
        assert 0 <= responder.puk_uses <= 10
        # Only a PUK session can give the PIN its tries back: nothing here is one
        # unless the session was opened with the PUK.
        if answer.ok and command.ins == 0x2C and command.p1 == 0x03:
            assert session == "PUK"

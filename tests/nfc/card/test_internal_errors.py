"""An internal error inside the card answers 6F00, ends the session, and the card goes on.

A real chip that fails inside answers ``6F00`` (no precise diagnosis), drops
its secure channel and keeps working. The errors here are injected into the
card's collaborators (the AA signer, the BAC challenge source) the way a bug
deep in a handler would surface: a ValueError, a KeyError, a struct.error...
"""

from __future__ import annotations

import logging
import struct

import pytest

from macnss_auth.errors import SecureMessagingError
from macnss_auth.nfc.apdu import CommandAPDU, StatusCode
from macnss_auth.nfc.card import FileSystem, VirtualCard
from macnss_auth.nfc.card import chip as chip_module
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.testing import FixedRandom

from .conftest import issued
from .terminal import open_session, protected, read_file

SECRET = "L898902C<369080619406236"  # what a careless exception message might carry
AA = CommandAPDU(0x00, 0x88, 0x00, 0x00, data=bytes(8), ne=256)
GET_CHALLENGE = bytes.fromhex("0084000008")


def _failing(error: BaseException) -> object:
    def fail(*_args: object, **_kwargs: object) -> bytes:
        raise error

    return fail


def _exceptions() -> list[BaseException]:
    try:
        struct.unpack(">H", b"\x00")
    except struct.error as error:
        unpack_error: BaseException = error
    return [
        ValueError(SECRET),
        KeyError(SECRET),
        IndexError(SECRET),
        unpack_error,
        ZeroDivisionError(SECRET),
        AssertionError(SECRET),
    ]


@pytest.mark.parametrize(
    "error",
    _exceptions(),
    ids=lambda e: type(e).__qualname__ if type(e).__module__ == "builtins" else "struct.error",
)
def test_an_internal_error_in_a_session_answers_6f00_and_ends_the_session(
    error: BaseException, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    data = issued("passport-bac").data
    card = VirtualCard(data, random=FixedRandom(1))
    transport = MemoryTransport(card)
    session = open_session(transport, data, random=FixedRandom(2))
    monkeypatch.setattr(chip_module, "active_authentication_signature", _failing(error))

    with caplog.at_level(logging.WARNING, logger="macnss_auth.nfc.card.chip"):
        answer = transport.transceive(session.channel.protect(AA))

    # In plain, like every answer that ends a session.
    assert answer == StatusCode.NO_PRECISE_DIAGNOSIS.encode()
    assert card.session is None
    assert card.internal_errors == 1
    with pytest.raises(SecureMessagingError):
        session.channel.unprotect(answer)
    # Logged once, by type name, never with the message (which could hold key material).
    records = [r for r in caplog.records if r.name == "macnss_auth.nfc.card.chip"]
    assert len(records) == 1
    text = records[0].getMessage()
    assert type(error).__qualname__ in text
    assert "6F00" in text
    assert SECRET not in text
    assert "L898902C" not in text
    assert records[0].exc_info is None
    # The card keeps working: a new session opens and reads.
    monkeypatch.undo()
    again = open_session(transport, data, random=FixedRandom(3))
    assert read_file(transport, again.channel, 0x011E)[:1] == b"\x60"
    assert card.internal_errors == 1


def test_an_internal_error_outside_a_session_answers_6f00_and_the_next_command_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    card = VirtualCard(issued("passport-bac").data, random=FixedRandom(1))
    with monkeypatch.context() as patch:
        patch.setattr(FileSystem, "application", _failing(KeyError(SECRET)))
        assert card.process(bytes.fromhex("00A4040C07A0000002471001")) == b"\x6f\x00"
    assert card.process(bytes.fromhex("00A4040C07A0000002471001")) == b"\x90\x00"
    assert card.process(GET_CHALLENGE)[-2:] == b"\x90\x00"


def test_an_internal_error_forgets_a_half_run_bac(monkeypatch: pytest.MonkeyPatch) -> None:
    """The outstanding BAC challenge goes with the rest: EXTERNAL AUTHENTICATE then answers 6985."""
    data = issued("passport-bac").data
    card = VirtualCard(data, random=FixedRandom(1))
    assert card.process(GET_CHALLENGE)[-2:] == b"\x90\x00"
    with monkeypatch.context() as patch:
        patch.setattr(FileSystem, "application", _failing(ValueError(SECRET)))
        assert card.process(bytes.fromhex("00A4040C07A0000002471001")) == b"\x6f\x00"
    # EXTERNAL AUTHENTICATE with a well-sized cryptogram: no challenge outstanding any more.
    answer = card.process(bytes.fromhex("0082000028") + bytes(40) + b"\x28")
    assert answer == StatusCode.CONDITIONS_NOT_SATISFIED.encode()


def test_an_internal_error_drops_a_pending_get_response(monkeypatch: pytest.MonkeyPatch) -> None:
    data = issued("get-response-61xx").data
    card = VirtualCard(data, random=FixedRandom(1))
    first = card.process(bytes.fromhex("0084000000"))  # 256 random bytes: sent in pieces
    assert first[-2] == 0x61
    with monkeypatch.context() as patch:
        patch.setattr(FileSystem, "application", _failing(IndexError(SECRET)))
        assert card.process(bytes.fromhex("00A4040C07A0000002471001")) == b"\x6f\x00"
    # Nothing left to fetch: GET RESPONSE is an unknown instruction again.
    assert card.process(bytes.fromhex("00C0000000")) == StatusCode.INS_NOT_SUPPORTED.encode()


def test_raise_internal_errors_reraises_after_dropping_the_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = issued("passport-bac").data
    card = VirtualCard(data, random=FixedRandom(1), raise_internal_errors=True)
    transport = MemoryTransport(card)
    session = open_session(transport, data, random=FixedRandom(2))
    monkeypatch.setattr(chip_module, "active_authentication_signature", _failing(KeyError("k")))
    with pytest.raises(KeyError):
        transport.transceive(session.channel.protect(AA))
    assert card.session is None
    assert card.internal_errors == 1


def test_refusals_are_not_internal_errors(caplog: pytest.LogCaptureFixture) -> None:
    """A refused command (CardStatusError inside) keeps its own status and the session."""
    data = issued("passport-bac").data
    card = VirtualCard(data, random=FixedRandom(1), raise_internal_errors=True)
    transport = MemoryTransport(card)
    session = open_session(transport, data, random=FixedRandom(2))
    with caplog.at_level(logging.WARNING, logger="macnss_auth.nfc.card.chip"):
        refused = protected(transport, session.channel, CommandAPDU(0x00, 0xEE, 0x00, 0x00))
    assert refused.sw == StatusCode.INS_NOT_SUPPORTED
    assert card.session == "BAC"
    assert card.internal_errors == 0
    assert not [r for r in caplog.records if r.name == "macnss_auth.nfc.card.chip"]


def test_a_command_that_is_not_bytes_is_the_callers_bug() -> None:
    card = VirtualCard(issued("passport-bac").data, random=FixedRandom(1))
    with pytest.raises(TypeError):
        card.process(bytearray(GET_CHALLENGE))  # type: ignore[arg-type]
    assert card.internal_errors == 0

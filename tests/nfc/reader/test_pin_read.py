"""Reading a card opened with its PIN, in process and over nfcpy's udp link; the kiosk's PIN prompt.

The PIN must never show: not in what the kiosk says, not in any log record
(nfcpy logs every APDU at DEBUG; PACE never sends the PIN, so its digits and
their hex must not appear anywhere).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pytest

from macnss_auth.errors import AccessDenied, PasswordBlocked, PasswordSuspended
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.kiosk import MESSAGES, Kiosk, KioskOutcome
from macnss_auth.nfc.lds import parse_dg1
from macnss_auth.nfc.mrz import CAN, PIN, PUK
from macnss_auth.nfc.pace import resume_pin, unblock_pin
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.reader import DocumentReader
from macnss_auth.nfc.securityinfos import PaceInfo, PaceOid
from macnss_auth.nfc.serve import MemoryTransport, UdpCardServer
from macnss_auth.nfc.transports import NfcpyTransport
from macnss_auth.testing import FixedClock, FixedRandom

from .conftest import NOW, issued

PIN_DIGITS = "246810"  # issue_card's default PIN for the eid-pin profile
WRONG = PIN("999999")


@contextlib.contextmanager
def connected(path: str, card: VirtualCard) -> Iterator[Transport]:
    if path == "memory":
        yield MemoryTransport(card)
        return
    with UdpCardServer(card) as server:
        nfc = NfcpyTransport(server.device_path, timeout=5.0)
        nfc.connect()
        try:
            yield nfc
        finally:
            nfc.close()


def _card() -> VirtualCard:
    return VirtualCard(issued("eid-pin").data, random=FixedRandom(21))


@pytest.mark.parametrize("path", ["memory", "udp"])
def test_read_with_the_pin(path: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    card = issued("eid-pin")
    trust = TrustStore()
    trust.add_csca(card.csca)
    with connected(path, _card()) as transport:
        document = DocumentReader(transport, random=FixedRandom(22)).read(
            PIN(PIN_DIGITS), active_auth_challenge=bytes(range(8))
        )
    assert parse_dg1(document.files["DG1"]).primary_identifier.rstrip("<") == "BENANI"
    assert document.verify(trust, clock=FixedClock.at(NOW)).genuine
    text = caplog.text.lower()
    assert PIN_DIGITS not in text
    assert PIN_DIGITS.encode().hex() not in text


@pytest.mark.parametrize("path", ["memory", "udp"])
def test_wrong_pins_over_the_reader(path: str) -> None:
    card = _card()
    outcomes: list[AccessDenied] = []
    for _ in range(3):
        with connected(path, card) as transport, pytest.raises(AccessDenied) as caught:
            DocumentReader(transport, random=FixedRandom(23)).read(WRONG)
        outcomes.append(caught.value)
    assert [error.remaining_attempts for error in outcomes] == [2, 1, 1]
    assert type(outcomes[0]) is AccessDenied
    # The second wrong PIN suspends; the third run is refused at MSE:Set AT.
    assert isinstance(outcomes[1], PasswordSuspended)
    assert isinstance(outcomes[2], PasswordSuspended)
    assert PIN_DIGITS not in repr(outcomes) + str(outcomes[2])


class _Person:
    """Answers the kiosk's prompts and records what it was shown."""

    def __init__(self, secret_answer: str) -> None:
        self.secret_answer = secret_answer
        self.shown: list[str] = []
        self.asked_openly: list[str] = []

    def ask(self, prompt: str) -> str:
        self.asked_openly.append(prompt)
        return "123456"

    def ask_secret(self, prompt: str) -> str:
        self.shown.append(prompt)
        return self.secret_answer

    def say(self, text: str) -> None:
        self.shown.append(text)


def _kiosk(card: VirtualCard, person: _Person) -> Kiosk:
    trust = TrustStore()
    trust.add_csca(issued("eid-pin").csca)
    return Kiosk(
        connect=lambda: MemoryTransport(card),
        trust_store=trust,
        random=FixedRandom(24),
        clock=FixedClock.at(NOW),
        ask=person.ask,
        ask_secret=person.ask_secret,
        say=person.say,
        use_pin=True,
    )


def test_kiosk_asks_for_the_pin_hidden_and_never_shows_it() -> None:
    person = _Person(PIN_DIGITS)
    result = _kiosk(_card(), person).serve_one()
    assert result.outcome is KioskOutcome.VERIFIED
    assert person.asked_openly == []
    assert any(MESSAGES["enter_pin"]["fr"] in line for line in person.shown)
    assert not any(PIN_DIGITS in line for line in person.shown)
    assert PIN_DIGITS not in repr(result)


def test_kiosk_pin_states() -> None:
    card = _card()
    for expected in ("wrong_pin", "pin_suspended", "pin_suspended"):
        person = _Person("999999")
        result = _kiosk(card, person).serve_one()
        assert result.outcome is KioskOutcome.WRONG_PASSWORD
        assert any(MESSAGES[expected]["en"] in line for line in person.shown), expected
    # A malformed PIN never reaches the card.
    person = _Person("12")
    assert _kiosk(card, person).serve_one().outcome is KioskOutcome.WRONG_PASSWORD
    assert any(MESSAGES["wrong_pin"]["ar"] in line for line in person.shown)


def test_kiosk_blocked_pin() -> None:
    card = _card()
    # Block it through the resume procedure (CAN, then a wrong PIN), as a desk would.
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    for _ in range(2):
        with pytest.raises(AccessDenied):
            DocumentReader(MemoryTransport(card), random=FixedRandom(25)).read(WRONG)
    with pytest.raises(PasswordBlocked):
        resume_pin(MemoryTransport(card), CAN("123456"), WRONG, info, random=FixedRandom(26))
    person = _Person(PIN_DIGITS)
    assert _kiosk(card, person).serve_one().outcome is KioskOutcome.WRONG_PASSWORD
    assert any(MESSAGES["pin_blocked"]["en"] in line for line in person.shown)


@pytest.mark.parametrize("path", ["memory"])
def test_resume_block_and_unblock_over_the_link(path: str) -> None:
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    card = _card()
    with connected(path, card) as transport:
        for _ in range(2):
            with pytest.raises(AccessDenied):
                DocumentReader(transport, random=FixedRandom(27)).read(WRONG)
        # Suspended: the CAN, then the PIN inside its secure channel (nested PACE over SM).
        result = resume_pin(transport, CAN("123456"), PIN(PIN_DIGITS), info, random=FixedRandom(28))
        assert result.password_reference == 3
    with connected(path, card) as transport:
        assert (
            "DG1" in DocumentReader(transport, random=FixedRandom(29)).read(PIN(PIN_DIGITS)).files
        )
    with connected(path, card) as transport:
        for _ in range(2):
            with pytest.raises(AccessDenied):
                DocumentReader(transport, random=FixedRandom(30)).read(WRONG)
        with pytest.raises(PasswordBlocked):
            resume_pin(transport, CAN("123456"), WRONG, info, random=FixedRandom(31))
    with connected(path, card) as transport:
        with pytest.raises(PasswordBlocked):
            DocumentReader(transport, random=FixedRandom(32)).read(PIN(PIN_DIGITS))
        unblock_pin(transport, PUK("1357924680"), info, random=FixedRandom(33))
    with connected(path, card) as transport:
        assert (
            "DG1" in DocumentReader(transport, random=FixedRandom(34)).read(PIN(PIN_DIGITS)).files
        )


def test_resume_and_unblock_over_nfcpy_udp() -> None:
    # The states are set up in process (fewer udp exchanges on a loaded machine);
    # the procedures themselves, nested PACE over SM included, run over udp.
    info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    card = _card()
    for _ in range(2):
        with pytest.raises(AccessDenied):
            DocumentReader(MemoryTransport(card), random=FixedRandom(35)).read(WRONG)
    with connected("udp", card) as transport:
        resume_pin(transport, CAN("123456"), PIN(PIN_DIGITS), info, random=FixedRandom(36))
    for _ in range(2):
        with pytest.raises(AccessDenied):
            DocumentReader(MemoryTransport(card), random=FixedRandom(37)).read(WRONG)
    with pytest.raises(PasswordBlocked):
        resume_pin(MemoryTransport(card), CAN("123456"), WRONG, info, random=FixedRandom(38))
    with connected("udp", card) as transport:
        unblock_pin(transport, PUK("1357924680"), info, random=FixedRandom(39))
    assert (
        "DG1"
        in DocumentReader(MemoryTransport(card), random=FixedRandom(40)).read(PIN(PIN_DIGITS)).files
    )

"""Fault injection on every serving path: typed errors within bounded time, never a hang.

Where the link itself can recover (nfcpy's ISO-DEP retransmits a lost frame,
a slow chip asks for more time with WTX), the read succeeds; where it cannot,
the reader gets a :class:`~macnss_auth.errors.TransportError` or, for a bad
MAC, a :class:`~macnss_auth.errors.SecureMessagingError`.
"""

from __future__ import annotations

import time

import pytest

from macnss_auth.errors import (
    ConfigurationError,
    MacnssAuthError,
    SecureMessagingError,
    TransportError,
)
from macnss_auth.nfc.card import FaultInjector, FaultPlan, VirtualCard
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.serve import (
    CardRemovedError,
    LinkTimeoutError,
    MemoryTransport,
    UdpCardServer,
)
from macnss_auth.nfc.serve.isodep import IsoDepCard, Kind
from macnss_auth.testing import FixedRandom

from .conftest import issued
from .paths import serve
from .terminal import open_session, read_file

#: Longest any faulty exchange may take before it must have ended one way or the other.
BOUND = 6.0


def _scenario(transport: Transport) -> bytes:
    """BAC (3 commands), then EF.COM and DG1 over secure messaging (4 commands)."""
    data = issued("passport-bac").data
    session = open_session(transport, data, random=FixedRandom(1))
    read_file(transport, session.channel, 0x011E)
    return read_file(transport, session.channel, 0x0101)


def _run(path: str, plan: FaultPlan) -> tuple[bytes | MacnssAuthError, float]:
    """The scenario under ``plan``; connecting is outside the fault and outside the clock."""
    card = VirtualCard(issued("passport-bac").data, random=FixedRandom(2))
    with serve(path, card, faults=plan) as transport:
        start = time.monotonic()
        try:
            outcome: bytes | MacnssAuthError = _scenario(transport)
        except MacnssAuthError as error:
            outcome = error
        elapsed = time.monotonic() - start
    return outcome, elapsed


EXPECTED_DG1 = issued("passport-bac").data.files.files()["A0000002471001/DG1"].data

CASES: dict[str, tuple[FaultPlan, dict[str, type]]] = {
    # fault: {path: expected outcome type (bytes = the read succeeds)}
    "drop": (
        FaultPlan(drop_every=3),
        {"memory": LinkTimeoutError, "udp": bytes, "vpcd": TransportError},
    ),
    "remove": (
        FaultPlan(remove_after=4),
        {"memory": CardRemovedError, "udp": TransportError, "vpcd": TransportError},
    ),
    "wrong-mac": (
        FaultPlan(wrong_mac_every=5),
        {"memory": SecureMessagingError, "udp": SecureMessagingError, "vpcd": SecureMessagingError},
    ),
    "corrupt": (
        FaultPlan(corrupt_every=6),
        {"memory": MacnssAuthError, "udp": MacnssAuthError, "vpcd": MacnssAuthError},
    ),
    "slow-with-wtx": (
        FaultPlan(delay=0.2),
        {"memory": bytes, "udp": bytes, "vpcd": bytes},
    ),
    "too-slow": (
        FaultPlan(delay=2.0, wtx_on_delay=False),
        {"memory": LinkTimeoutError, "udp": TransportError},
    ),
    "wtx-storm": (
        FaultPlan(wtx_storm=8),
        {"memory": bytes, "udp": bytes},
    ),
}


_FAULT_PATHS = [
    pytest.param(fault, path, marks=[pytest.mark.services] if path == "vpcd" else [])
    for fault, (_, expectations) in sorted(CASES.items())
    for path in expectations
]


def _check_outcome(fault: str, path: str, request: pytest.FixtureRequest) -> float:
    """Run one fault over one path, assert its typed outcome, return the elapsed seconds."""
    if path == "vpcd":
        request.getfixturevalue("pcscd")
    plan, expectations = CASES[fault]
    expected = expectations[path]
    outcome, elapsed = _run(path, plan)
    if expected is bytes:
        assert outcome == EXPECTED_DG1, f"{fault} over {path}: {outcome!r}"
    else:
        assert isinstance(outcome, expected), f"{fault} over {path}: {outcome!r}"
    return elapsed


@pytest.mark.parametrize(("fault", "path"), _FAULT_PATHS)
def test_faults_surface_as_typed_errors(
    fault: str, path: str, request: pytest.FixtureRequest
) -> None:
    _check_outcome(fault, path, request)


@pytest.mark.timing
@pytest.mark.parametrize(("fault", "path"), _FAULT_PATHS)
def test_faults_surface_in_bounded_time(
    fault: str, path: str, request: pytest.FixtureRequest
) -> None:
    # Wall clock: a loaded machine makes this slow, not wrong (own CI step, `make timing`).
    elapsed = _check_outcome(fault, path, request)
    assert elapsed < BOUND, f"{fault} over {path} took {elapsed:.1f}s"


def test_memory_transport_tap_restores_a_removed_card() -> None:
    card = VirtualCard(issued("passport-bac").data, random=FixedRandom(3))
    transport = MemoryTransport(card, faults=FaultPlan(remove_after=1), record=True)
    assert transport.transceive(bytes.fromhex("0084000008"))[-2:] == b"\x90\x00"
    with pytest.raises(CardRemovedError) as removed:
        transport.transceive(bytes.fromhex("0084000008"))
    assert removed.value.retryable
    transport.tap()
    assert transport.transceive(bytes.fromhex("0084000008"))[-2:] == b"\x90\x00"
    assert len(transport.transcript) == 2


def test_a_shared_injector_counts_across_transports() -> None:
    injector = FaultInjector(FaultPlan(remove_after=2))
    card = VirtualCard(issued("passport-bac").data, random=FixedRandom(3))
    first = MemoryTransport(card, faults=injector)
    first.transceive(bytes.fromhex("0084000008"))
    second = MemoryTransport(card, faults=injector)
    second.transceive(bytes.fromhex("0084000008"))
    assert injector.commands == 2
    with pytest.raises(CardRemovedError):
        second.transceive(bytes.fromhex("0084000008"))
    assert injector.removed


def test_fault_plan_validation() -> None:
    assert FaultPlan().none
    with pytest.raises(ConfigurationError):
        FaultPlan(drop_every=0)
    with pytest.raises(ConfigurationError):
        FaultPlan(delay=-1)


def test_isodep_block_rules_without_a_reader() -> None:
    picc = IsoDepCard(uid=bytes.fromhex("08010203"), fwi=9)
    assert picc.receive(b"\x26").kind is Kind.RESET
    assert picc.receive(b"\x93\x20").frame == bytes.fromhex("0801020308")
    assert picc.receive(bytes.fromhex("93700801020308")).frame == b"\x20"
    ats = picc.receive(b"\xe0\x80").frame
    assert ats[1] & 0x0F == 8  # FSCI 256
    assert ats[3] >> 4 == 9  # FWI
    # Reader chaining: the first part is acknowledged with the card's block number.
    assert picc.receive(b"\x12\x00\xa4").frame == b"\xa2"
    action = picc.receive(b"\x03\x04\x0c")
    assert action.kind is Kind.EXECUTE
    assert action.apdu == b"\x00\xa4\x04\x0c"
    wtx = picc.wtx_request(2)
    assert wtx == b"\xf2\x02"
    assert picc.waiting_for_wtx
    picc.receive(b"\xf2\x02")
    assert not picc.waiting_for_wtx
    # A long answer is chained: 253 bytes per frame with FSD 256.
    first = picc.respond(bytes(300))
    assert first[0] == 0x13
    assert len(first) == 254
    # The reader's R(ACK) (other block number) gets the next part, its R(NAK) a retransmission.
    second = picc.receive(b"\xa2").frame
    assert second[0] == 0x02
    assert len(second) == 1 + 47
    assert picc.receive(b"\xb2").frame == second
    # R(NAK) for a block the card never got: R(ACK) with the card's number.
    assert picc.receive(b"\xb3").frame == b"\xa2"
    assert picc.receive(b"\xc2").frame == b"\xc2"  # DESELECT


def test_isodep_ignores_garbage() -> None:
    picc = IsoDepCard(uid=bytes.fromhex("08010203"))
    for frame in (b"", b"\x00", b"\xff" * 5, b"\x93\x70\x00"):
        assert picc.receive(frame).kind is Kind.NOTHING
    with pytest.raises(ConfigurationError):
        picc.respond(b"\x90\x00")
    with pytest.raises(ConfigurationError):
        IsoDepCard(uid=b"\x01")


def test_udp_ports_named_in_etc_services_are_refused() -> None:
    from macnss_auth.nfc.serve.udp import free_udp_port, port_has_service_name  # noqa: PLC0415

    card = VirtualCard(issued("passport-bac").data, random=FixedRandom(3))
    named = next((p for p in (8080, 53, 123, 161, 514) if port_has_service_name(p)), None)
    if named is not None:
        with pytest.raises(ConfigurationError, match="service name"):
            UdpCardServer(card, port=named)
    assert not port_has_service_name(free_udp_port())
    with pytest.raises(ConfigurationError, match="loopback"):
        UdpCardServer(card, host="0.0.0.0")  # noqa: S104 (the refusal is the test)


def test_atr_check_byte() -> None:
    from macnss_auth.nfc.card.chip import atr_from_historical_bytes  # noqa: PLC0415

    atr = atr_from_historical_bytes(bytes.fromhex("8031B8738401E0"))
    assert atr == bytes.fromhex("3B8780018031B8738401E019")
    check = 0
    for byte in atr[1:]:
        check ^= byte
    assert check == 0

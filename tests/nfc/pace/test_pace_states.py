"""Every state of the terminal against arbitrary response bytes (hypothesis).

In each waiting state, any response either moves the terminal along its
transition table or raises a library error and leaves the object dead
(every later call raises LocalProtocolError). Nothing else may happen.

The genuine responses the mutations start from are published ones
(:mod:`.published`: ICAO 9303-11 G.2 DH-GM, H.1 ECDH-IM, a recorded German
card for ECDH-CAM), so the terminal is driven to each state by a chip that
owes nothing to this library.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.errors import LocalProtocolError, MacnssAuthError
from macnss_auth.nfc.pace import PaceState, PaceTerminal
from macnss_auth.nfc.protocol import Event

from .published import PUBLISHED, PublishedRun

_WAITING = (
    PaceState.AWAIT_MSE,
    PaceState.AWAIT_NONCE,
    PaceState.AWAIT_MAP,
    PaceState.AWAIT_KEY_AGREEMENT,
    PaceState.AWAIT_AUTHENTICATE,
)


def _at(published: PublishedRun, step: int) -> tuple[PaceTerminal, bytes]:
    """A terminal waiting for response ``step`` (0 = MSE) and the published response."""
    card = published.card()
    terminal = published.terminal()
    for _ in range(step):
        terminal.receive_response(card.transceive(terminal.next_command()))
    genuine = card.transceive(terminal.next_command())
    assert terminal.state is _WAITING[step]
    return terminal, genuine


@st.composite
def _responses(draw: st.DrawFn, genuine: bytes) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=300))
    if kind == 1:
        status = draw(st.sampled_from([0x9000, 0x6300, 0x63C0, 0x63C3, 0x6982, 0x6A80, 0x6F00]))
        return draw(st.binary(max_size=80)) + status.to_bytes(2, "big")
    data = bytearray(genuine)
    if kind == 2:
        position = draw(st.integers(0, len(data) - 1))
        data[position] ^= draw(st.integers(1, 255))
        return bytes(data)
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=8))


def _check(terminal: PaceTerminal, response: bytes) -> None:
    before = terminal.state
    (targets,) = [
        t for (s, e), t in PaceTerminal.TRANSITIONS.items() if s is before and e is Event.RESPONSE
    ]
    try:
        terminal.receive_response(response)
    except MacnssAuthError:
        assert terminal.failed
        with pytest.raises(LocalProtocolError):
            terminal.next_command()
        with pytest.raises(LocalProtocolError):
            terminal.receive_response(b"\x90\x00")
        return
    assert terminal.state in targets


def _state_test(published: PublishedRun, step: int, examples: int) -> None:
    _, genuine = _at(published, step)

    @settings(max_examples=examples, deadline=None)
    @given(_responses(genuine))
    def inner(response: bytes) -> None:
        terminal, _ = _at(published, step)
        _check(terminal, response)

    inner()


_DH = PUBLISHED["G2"]
_CAM = PUBLISHED["DE-CAM"]
_IM = PUBLISHED["H1"]


def test_dh_generic_mapping_every_state() -> None:
    for step in range(5):
        _state_test(_DH, step, 100)


def test_ecdh_cam_every_state() -> None:
    for step in range(5):
        _state_test(_CAM, step, 40)


def test_ecdh_integrated_mapping_every_state() -> None:
    for step in range(5):
        _state_test(_IM, step, 25)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_genuine_responses_complete_the_run(name: str) -> None:
    published = PUBLISHED[name]
    terminal, genuine = _at(published, 4)
    terminal.receive_response(genuine)
    assert terminal.state is PaceState.DONE
    assert terminal.result.keys.k_enc == published.k_enc
    assert terminal.result.keys.k_mac == published.k_mac

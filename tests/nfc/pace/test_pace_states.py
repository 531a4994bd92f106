"""Every state of the terminal against arbitrary response bytes (hypothesis).

In each waiting state, any response either moves the terminal along its
transition table or raises a library error and leaves the object dead
(every later call raises LocalProtocolError). Nothing else may happen.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.errors import LocalProtocolError, MacnssAuthError
from macnss_auth.nfc.mrz import MrzKey
from macnss_auth.nfc.pace import PaceState, PaceTerminal
from macnss_auth.nfc.protocol import Event
from macnss_auth.nfc.securityinfos import PaceInfo, PaceOid
from macnss_auth.testing import FixedRandom

from .responder import PaceResponder

MRZ = MrzKey("L898902C3", "740812", "120415")
_WAITING = (
    PaceState.AWAIT_MSE,
    PaceState.AWAIT_NONCE,
    PaceState.AWAIT_MAP,
    PaceState.AWAIT_KEY_AGREEMENT,
    PaceState.AWAIT_AUTHENTICATE,
)


def _at(info: PaceInfo, step: int) -> tuple[PaceTerminal, bytes]:
    """A terminal waiting for response ``step`` (0 = MSE) and the genuine response."""
    card = PaceResponder(MRZ, info, random=FixedRandom(11), static_private_key=12345)
    terminal = PaceTerminal(MRZ, info, random=FixedRandom(12))
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


def _state_test(info: PaceInfo, step: int, examples: int) -> None:
    _, genuine = _at(info, step)

    @settings(max_examples=examples, deadline=None)
    @given(_responses(genuine))
    def inner(response: bytes) -> None:
        terminal, _ = _at(info, step)
        _check(terminal, response)

    inner()


_DH = PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_128, 2, 0)
_CAM = PaceInfo(PaceOid.ECDH_CAM_AES_CBC_CMAC_128, 2, 13)
_IM = PaceInfo(PaceOid.ECDH_IM_3DES_CBC_CBC, 2, 13)


def test_dh_generic_mapping_every_state() -> None:
    for step in range(5):
        _state_test(_DH, step, 100)


def test_ecdh_cam_every_state() -> None:
    for step in range(5):
        _state_test(_CAM, step, 40)


def test_ecdh_integrated_mapping_every_state() -> None:
    for step in range(5):
        _state_test(_IM, step, 25)


def test_genuine_responses_complete_the_run() -> None:
    for info in (_DH, _CAM, _IM):
        terminal, genuine = _at(info, 4)
        terminal.receive_response(genuine)
        assert terminal.state is PaceState.DONE

"""The serving adapters refuse garbage with a log line and keep serving (own sockets, no pcscd).

The udp tests speak nfcpy's datagram format by hand (``106A <hex>``: REQA,
anticollision, RATS, I-blocks) so that each frame is exactly the one meant;
the vpcd tests play vpcd's part of the reverse-mode link (2-byte length, then
the payload) against :class:`VpcdCardServer` on a loopback port of their own.
"""

from __future__ import annotations

import binascii
import logging
import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.nfc.apdu import StatusCode
from macnss_auth.nfc.card import FileSystem, VirtualCard
from macnss_auth.nfc.serve import UdpCardServer, VpcdCardServer
from macnss_auth.nfc.serve import vpcd as vpcd_module
from macnss_auth.nfc.serve.isodep import MAX_COMMAND_APDU, IsoDepCard, Kind
from macnss_auth.testing import FixedRandom

from .conftest import issued

GET_CHALLENGE = bytes.fromhex("0084000008")
SELECT_LDS1 = bytes.fromhex("00A4040C07A0000002471001")
UID = bytes.fromhex("08A1B2C3")


def _card(**options: bool) -> VirtualCard:
    return VirtualCard(issued("passport-bac").data, random=FixedRandom(3), **options)


# -- nfcpy's udp link, by hand ------------------------------------------------------------


class _Reader:
    """The reader end of nfcpy's udp link: one datagram per frame."""

    def __init__(self, server: UdpCardServer) -> None:
        self.address = (server.host, server.port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.block = 0

    def raw(self, datagram: bytes) -> None:
        self.sock.sendto(datagram, self.address)

    def frame(self, frame: bytes, *, timeout: float = 5.0) -> bytes | None:
        """Send one 106A frame; the card's frame, or None if it stays silent."""
        self.raw(b"106A " + binascii.hexlify(frame))
        self.sock.settimeout(timeout)
        try:
            datagram, _ = self.sock.recvfrom(65536)
        except TimeoutError:
            return None
        brty, payload = datagram.split()
        assert brty == b"106A"
        return binascii.unhexlify(payload)

    def activate(self) -> None:
        """WUPA, anticollision, SELECT, RATS: the ISO-DEP link is up (from any state, even HALT)."""
        assert self.frame(b"\x52") == b"\x04\x00"
        bcc = UID[0] ^ UID[1] ^ UID[2] ^ UID[3]
        assert self.frame(b"\x93\x20") == UID + bytes([bcc])
        assert self.frame(b"\x93\x70" + UID + bytes([bcc])) == b"\x20"
        ats = self.frame(b"\xe0\x80")
        assert ats is not None
        assert ats[0] == len(ats)
        self.block = 0

    def apdu(self, apdu: bytes) -> bytes:
        """One unchained I-block (the card's WTX requests answered), its answer's payload."""
        answer = self.frame(bytes([0x02 | self.block]) + apdu)
        while answer is not None and answer[0] & 0xF7 == 0xF2:  # S(WTX)
            answer = self.frame(answer)
        self.block ^= 1
        assert answer is not None
        assert answer[0] & 0xE2 == 0x02, answer.hex()
        return answer[1:]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def udp() -> Iterator[tuple[UdpCardServer, _Reader]]:
    with UdpCardServer(_card()) as server:
        reader = _Reader(server)
        try:
            yield server, reader
        finally:
            reader.close()


def _warnings(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno >= 30]


GARBAGE = [
    b"",
    b"106A",  # the hex part cut off
    b"106A zz",  # not hex
    b"106A 0",  # cut in the middle of a byte
    b"106A 02 00",  # three fields
    b"\xff" * 100,
    b"hello world",
    b"106A " + b"02" * 300,  # a 300-byte frame: longer than FSC 256
]


def test_udp_refuses_garbage_datagrams_with_a_warning_each_and_keeps_serving(
    udp: tuple[UdpCardServer, _Reader], caplog: pytest.LogCaptureFixture
) -> None:
    server, reader = udp
    with caplog.at_level(logging.WARNING, logger="macnss_auth.nfc.serve.udp"):
        for datagram in GARBAGE:
            reader.raw(datagram)
        reader.raw(b"106B 050010")  # a reader polling for Type B: ignored, not refused
        reader.activate()  # answered in order: every datagram above has been handled
        assert reader.apdu(GET_CHALLENGE)[-2:] == b"\x90\x00"
    warnings = _warnings(caplog, "macnss_auth.nfc.serve.udp")
    assert len(warnings) == len(GARBAGE) == server.refused
    assert all("refused" in text for text in warnings)
    assert not any("ff" * 8 in text or "zz" in text for text in warnings)  # sizes, never bytes


def _hex_frame(frame: bytes) -> bytes:
    return b"106A " + binascii.hexlify(frame)


datagrams = st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=300).map(_hex_frame),
    st.sampled_from([b"\x26", b"\x52", b"\x93\x20", b"\xe0\x80", b"\xc2", b"\x50\x00"]).map(
        _hex_frame
    ),
    st.tuples(
        st.sampled_from([0x02, 0x03, 0x12, 0x13, 0xA2, 0xB3, 0xF2]), st.binary(max_size=40)
    ).map(lambda block: _hex_frame(bytes([block[0]]) + block[1])),
    st.sampled_from([b"RFOFF", b"106B 050010", b"212F 0600ffff0100", b"106A"]),
)


@pytest.fixture(scope="module")
def shared_udp() -> Iterator[UdpCardServer]:
    with UdpCardServer(_card()) as server:
        yield server


@settings(max_examples=30)
@given(st.lists(datagrams, max_size=25))
def test_udp_serves_a_reader_after_any_datagrams(
    shared_udp: UdpCardServer, garbage: list[bytes]
) -> None:
    noise = _Reader(shared_udp)  # its own socket: the card's answers to noise go there
    reader = _Reader(shared_udp)
    try:
        for datagram in garbage:
            noise.raw(datagram)
        reader.activate()
        assert reader.apdu(GET_CHALLENGE)[-2:] == b"\x90\x00"
    finally:
        noise.close()
        reader.close()


def test_udp_never_runs_a_truncated_datagram(
    udp: tuple[UdpCardServer, _Reader], caplog: pytest.LogCaptureFixture
) -> None:
    """A datagram longer than a read buffer is refused whole, not cut and run.

    ``106A`` and two spaces, then the hex of 3,000 bytes: cut at 4,096 bytes the
    hex would still be even, and a shorter I-block would run.
    """
    server, reader = udp
    reader.activate()
    oversized = b"106A  " + binascii.hexlify(b"\x02" + GET_CHALLENGE + bytes(2994))
    with caplog.at_level(logging.WARNING, logger="macnss_auth.nfc.serve.udp"):
        reader.raw(oversized)
        # The first frame back answers the R(NAK): nothing ran the cut datagram.
        answer = reader.frame(b"\xb2", timeout=0.5)
        assert answer is not None
        assert answer[0] & 0xE6 == 0xA2, answer.hex()
    assert server.refused == 1
    assert "3000 bytes" in _warnings(caplog, "macnss_auth.nfc.serve.udp")[0]
    assert reader.apdu(GET_CHALLENGE)[-2:] == b"\x90\x00"


def test_udp_answers_an_endless_chain_6700_without_collecting_it(
    udp: tuple[UdpCardServer, _Reader], caplog: pytest.LogCaptureFixture
) -> None:
    server, reader = udp
    reader.activate()
    piece = bytes(250)
    sent = 0
    with caplog.at_level(logging.WARNING, logger="macnss_auth.nfc.serve.udp"):
        while sent <= MAX_COMMAND_APDU:
            ack = reader.frame(bytes([0x12 | reader.block]) + piece)
            assert ack is not None
            assert ack[0] & 0xF6 == 0xA2  # R(ACK)
            reader.block ^= 1
            sent += len(piece)
        assert reader.apdu(GET_CHALLENGE) == StatusCode.WRONG_LENGTH.encode()
    assert server.refused == 1
    assert "chained command longer" in _warnings(caplog, "macnss_auth.nfc.serve.udp")[0]
    assert reader.apdu(GET_CHALLENGE)[-2:] == b"\x90\x00"


def test_isodep_refuses_a_chain_longer_than_any_apdu() -> None:
    """Sans-I/O: past MAX_COMMAND_APDU the chain is acknowledged, dropped and answered 6700."""
    picc = IsoDepCard(uid=UID)
    picc.receive(b"\x26")
    picc.receive(b"\x93\x70" + UID + bytes([UID[0] ^ UID[1] ^ UID[2] ^ UID[3]]))
    picc.receive(b"\xe0\x80")
    block = 0
    for _ in range(MAX_COMMAND_APDU // 250 + 1):
        assert picc.receive(bytes([0x12 | block]) + bytes(250)).kind is Kind.SEND
        block ^= 1
    last = picc.receive(bytes([0x02 | block]) + GET_CHALLENGE)
    assert last.kind is Kind.SEND
    assert last.frame[1:] == b"\x67\x00"
    assert last.refused
    # The next command runs normally.
    assert picc.receive(bytes([0x02 | block ^ 1]) + GET_CHALLENGE).apdu == GET_CHALLENGE


def test_udp_a_card_that_raises_answers_6f00_and_the_server_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with UdpCardServer(_card(raise_internal_errors=True)) as server:
        reader = _Reader(server)
        try:
            reader.activate()
            with monkeypatch.context() as patch:
                patch.setattr(FileSystem, "application", _raise)
                assert reader.apdu(SELECT_LDS1) == b"\x6f\x00"
            assert reader.apdu(SELECT_LDS1) == b"\x90\x00"
        finally:
            reader.close()


def _raise(*_args: object) -> object:
    raise KeyError("a bug deep in a handler")


# -- vpcd's link, played by the test ------------------------------------------------------


def _free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Vpcd:
    """vpcd's end of a reverse-mode link: connects to the card, sends length-prefixed messages."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)

    def send(self, payload: bytes) -> None:
        self.sock.sendall(len(payload).to_bytes(2, "big") + payload)

    def receive(self) -> bytes:
        header = self._exact(2)
        return self._exact(int.from_bytes(header, "big"))

    def apdu(self, command: bytes) -> bytes:
        """Send a command APDU and return the card's answer."""
        self.send(command)
        return self.receive()

    def _exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            assert chunk, "vpcd link closed"
            out += chunk
        return out

    def closed_by_card(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def vpcd() -> Iterator[tuple[VpcdCardServer, int]]:
    port = _free_tcp_port()
    with VpcdCardServer(_card(), port=port) as server:
        yield server, port


def test_vpcd_refuses_empty_messages_and_unknown_controls_and_keeps_the_link(
    vpcd: tuple[VpcdCardServer, int], caplog: pytest.LogCaptureFixture
) -> None:
    server, port = vpcd
    link = _Vpcd(port)
    try:
        with caplog.at_level(logging.WARNING, logger="macnss_auth.nfc.serve.vpcd"):
            link.send(b"")
            link.send(b"\x07")
            link.send(b"\xff")
            link.send(b"\x04")  # get ATR: answered in order, so the three above are handled
            assert link.receive() == server.card.atr
            assert link.apdu(GET_CHALLENGE)[-2:] == b"\x90\x00"
    finally:
        link.close()
    warnings = _warnings(caplog, "macnss_auth.nfc.serve.vpcd")
    assert len(warnings) == 3 == server.refused
    assert "empty message" in warnings[0]
    assert "control byte 07" in warnings[1]


def test_vpcd_a_message_cut_short_ends_that_link_only(
    vpcd: tuple[VpcdCardServer, int], caplog: pytest.LogCaptureFixture
) -> None:
    _, port = vpcd
    with caplog.at_level(logging.WARNING, logger="macnss_auth.nfc.serve.vpcd"):
        cut = _Vpcd(port)
        cut.sock.sendall(b"\x00\x0a" + GET_CHALLENGE[:3])  # 10 bytes announced, 3 sent
        cut.close()
        again = _Vpcd(port)  # accepted once the cut link is over
        try:
            assert again.apdu(GET_CHALLENGE)[-2:] == b"\x90\x00"
        finally:
            again.close()
    warnings = _warnings(caplog, "macnss_auth.nfc.serve.vpcd")
    assert any("cut short, 3 of 10 bytes (peer closed)" in text for text in warnings)


def test_vpcd_a_message_whose_rest_never_comes_times_out_and_the_card_serves_again(
    vpcd: tuple[VpcdCardServer, int],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, port = vpcd
    monkeypatch.setattr(vpcd_module, "MESSAGE_TIMEOUT", 0.3)
    with caplog.at_level(logging.WARNING, logger="macnss_auth.nfc.serve.vpcd"):
        stuck = _Vpcd(port)
        try:
            stuck.sock.sendall(b"\x00")  # half a length
            started = time.monotonic()
            assert stuck.closed_by_card(timeout=10.0)
            assert time.monotonic() - started < 9.0
        finally:
            stuck.close()
        again = _Vpcd(port)
        try:
            assert again.apdu(GET_CHALLENGE)[-2:] == b"\x90\x00"
        finally:
            again.close()
    warnings = _warnings(caplog, "macnss_auth.nfc.serve.vpcd")
    assert any("cut short, 0 of 1 bytes (peer timed out)" in text for text in warnings)


messages = st.one_of(
    st.binary(max_size=1),  # empty, or a control byte (known or not)
    st.binary(min_size=2, max_size=300),  # a command APDU, or garbage in its place
    st.sampled_from([b"\x00", b"\x01", b"\x02", b"\x04", GET_CHALLENGE, SELECT_LDS1]),
)


@pytest.fixture(scope="module")
def shared_vpcd() -> Iterator[tuple[VpcdCardServer, int]]:
    port = _free_tcp_port()
    with VpcdCardServer(_card(), port=port) as server:
        yield server, port


@settings(max_examples=30)
@given(st.lists(messages, max_size=20))
def test_vpcd_answers_after_any_messages(
    shared_vpcd: tuple[VpcdCardServer, int], sequence: list[bytes]
) -> None:
    server, port = shared_vpcd
    link = _Vpcd(port)
    try:
        for message in sequence:
            link.send(message)
            if message == b"\x04":
                assert link.receive() == server.card.atr
            elif len(message) > 1:
                assert len(link.receive()) >= 2  # every command APDU gets a status word
        assert link.apdu(GET_CHALLENGE)[-2:] == b"\x90\x00"
    finally:
        link.close()


def test_vpcd_the_longest_message_is_a_command_the_card_answers(
    vpcd: tuple[VpcdCardServer, int],
) -> None:
    _, port = vpcd
    link = _Vpcd(port)
    try:
        link.send(b"\x00\xb0\x00\x00" + b"\xff" * 65531)  # 65,535 bytes, no valid length
        assert link.receive() == StatusCode.WRONG_LENGTH.encode()
        assert link.apdu(GET_CHALLENGE)[-2:] == b"\x90\x00"
    finally:
        link.close()


def test_vpcd_a_card_that_raises_answers_6f00_and_the_link_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = _free_tcp_port()
    with VpcdCardServer(_card(raise_internal_errors=True), port=port):
        link = _Vpcd(port)
        try:
            with monkeypatch.context() as patch:
                patch.setattr(FileSystem, "application", _raise)
                assert link.apdu(SELECT_LDS1) == b"\x6f\x00"
            assert link.apdu(SELECT_LDS1) == b"\x90\x00"
        finally:
            link.close()

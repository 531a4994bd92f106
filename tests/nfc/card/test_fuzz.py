"""Hypothesis: every (state, input) pair of the card's machines ends in a status word.

Commands are drawn from a vocabulary of the instructions the chip knows, with
random parameters and data, in random order, on every profile -- so PACE,
Chip Authentication and Active Authentication are reached in every state,
with garbage as well as well-formed data. The ISO-DEP layer and the UDP
server get random frames and datagrams.
"""

from __future__ import annotations

import socket
import time

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macnss_auth.errors import MalformedInput, SecureMessagingError
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.card import VirtualCard
from macnss_auth.nfc.serve import MemoryTransport, UdpCardServer
from macnss_auth.nfc.serve.isodep import IsoDepCard
from macnss_auth.nfc.transports.nfcpy import NfcpyTransport
from macnss_auth.testing import FixedRandom

from .conftest import issued
from .terminal import open_session

PROFILES = ["passport-bac", "cnie", "pace-im", "pace-cam", "legacy-dh"]

_PACE_OIDS = [
    bytes.fromhex("04007F00070202040202"),
    bytes.fromhex("04007F00070202040402"),
    bytes.fromhex("04007F00070202040602"),
    bytes.fromhex("04007F00070202040101"),
]


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag, len(value)]) + value


@st.composite
def commands(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(["mse-pace", "ga", "mse-ca", "kat", "aa", "select", "read", "bac", "raw"])
    )
    blob = draw(st.binary(max_size=80))
    cla = draw(st.sampled_from([0x00, 0x10, 0x0C, 0x1C]))
    if kind == "mse-pace":
        data = _tlv(0x80, draw(st.sampled_from(_PACE_OIDS))) + _tlv(
            0x83, bytes([draw(st.integers(0, 5))])
        )
        if draw(st.booleans()):
            data += _tlv(0x84, bytes([draw(st.sampled_from([0, 13, 12]))]))
        return CommandAPDU(cla & 0x0C, 0x22, 0xC1, 0xA4, data=data).to_bytes()
    if kind == "ga":
        tag = draw(st.sampled_from([0x80, 0x81, 0x83, 0x85]))
        point = draw(st.sampled_from([b"", blob, b"\x04" + blob.ljust(64, b"\x01")[:64]]))
        inner = b"" if draw(st.booleans()) else _tlv(tag, point)
        return CommandAPDU(cla, 0x86, 0, 0, data=_tlv(0x7C, inner), ne=256).to_bytes()
    if kind == "mse-ca":
        data = _tlv(0x80, bytes.fromhex("04007F00070202030202")) + _tlv(0x84, b"\x01")
        return CommandAPDU(cla & 0x0C, 0x22, 0x41, 0xA4, data=data).to_bytes()
    if kind == "kat":
        return CommandAPDU(cla & 0x0C, 0x22, 0x41, 0xA6, data=_tlv(0x91, blob)).to_bytes()
    if kind == "aa":
        return CommandAPDU(cla & 0x0C, 0x88, 0, 0, data=blob[:8] or b"\x00", ne=256).to_bytes()
    if kind == "select":
        return CommandAPDU(
            cla & 0x0C, 0xA4, draw(st.sampled_from([0, 2, 4])), 0x0C, data=blob[:7] or b"\x3f\x00"
        ).to_bytes()
    if kind == "read":
        ins = draw(st.sampled_from([0xB0, 0xB1]))
        data = _tlv(0x54, blob[:2]) if ins == 0xB1 else b""
        return CommandAPDU(
            cla & 0x0C,
            ins,
            draw(st.integers(0, 255)),
            draw(st.integers(0, 255)),
            data=data,
            ne=draw(st.integers(1, 256)),
        ).to_bytes()
    if kind == "bac":
        return CommandAPDU(
            0x00, draw(st.sampled_from([0x84, 0x82])), 0, 0, data=blob[:40], ne=8
        ).to_bytes()
    return draw(st.binary(min_size=4, max_size=40))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PROFILES), st.lists(commands(), max_size=12), st.booleans())
def test_card_answers_every_command_sequence(
    profile: str, sequence: list[bytes], in_session: bool
) -> None:
    data = issued(profile).data
    # An internal error fails the test with its traceback instead of answering 6F00.
    card = VirtualCard(data, random=FixedRandom(1), raise_internal_errors=True)
    transport = MemoryTransport(card)
    channel = open_session(transport, data, random=FixedRandom(2)).channel if in_session else None
    for raw in sequence:
        if channel is not None:
            # Protected for real, so the card's session handlers (CA, AA, reads) see the command.
            try:
                plain = CommandAPDU.from_bytes(raw)
            except MalformedInput:
                plain = None
            if plain is not None:
                plain = attrs.evolve(plain, cla=plain.cla & ~0x0C & 0xFF)
                try:
                    channel.unprotect(transport.transceive(channel.protect(plain)))
                except SecureMessagingError:
                    channel = None  # the card ended the session (as it should on errors)
                continue
        answer = card.process(raw)
        assert len(answer) >= 2
        ResponseAPDU.from_bytes(answer)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=20), max_size=30))
def test_isodep_takes_any_frames(frames: list[bytes]) -> None:
    picc = IsoDepCard(uid=bytes.fromhex("08A1B2C3"))
    for frame in frames:
        action = picc.receive(frame)
        if action.apdu:
            picc.respond(b"\x90\x00")


def test_udp_server_survives_garbage_datagrams() -> None:
    card = VirtualCard(issued("passport-bac").data, random=FixedRandom(3))
    garbage = [
        b"",
        b"106A",
        b"106A zz",
        b"106B 050010",
        b"RFOFF",
        b"106A 26",
        b"106A 9320",
        b"106A 937000000000",
        b"106A e0",
        b"106A 02",
        b"\xff" * 100,
        b"106A " + b"02" * 600,
    ]
    with UdpCardServer(card) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for datagram in garbage:
                sock.sendto(datagram, (server.host, server.port))
        time.sleep(0.2)
        reader = NfcpyTransport(server.device_path, timeout=5.0)
        reader.connect()
        try:
            answer = reader.transceive(bytes.fromhex("0084000008"))
        finally:
            reader.close()
    assert answer[-2:] == b"\x90\x00"
    assert server.taps >= 1

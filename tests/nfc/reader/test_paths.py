"""End to end: every profile over every path a kiosk has, with the library's own transports.

* memory: MemoryTransport;
* udp: the card on nfcpy's udp link, read through NfcpyTransport (nfcpy's real stack);
* vpcd: the card in pcscd's Virtual PCD reader, read through PcscTransport (pyscard);
  vpcd in reverse mode (it connects to the card on 127.0.0.1) unless a pcscd was running.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.lds import parse_dg1, parse_dg2
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.reader import DocumentReader
from macnss_auth.nfc.serve import MemoryTransport, UdpCardServer
from macnss_auth.nfc.transports import NfcpyTransport, PcscTransport
from macnss_auth.testing import FixedClock, FixedRandom
from tests.nfc.card.paths import VPCD_READER, PcscdService, vpcd_card

from .conftest import NOW, PROFILES, card_files, issued, password_for


@pytest.fixture(scope="module")
def pcscd() -> Iterator[None]:
    service = PcscdService()
    service.start()
    try:
        yield
    finally:
        service.stop()


@contextlib.contextmanager
def connected(path: str, card: VirtualCard) -> Iterator[Transport]:
    if path == "memory":
        yield MemoryTransport(card)
    elif path == "udp":
        with UdpCardServer(card) as server:
            nfc = NfcpyTransport(server.device_path, timeout=5.0)
            nfc.connect()
            try:
                yield nfc
            finally:
                nfc.close()
    else:
        with vpcd_card(card, reader=VPCD_READER) as reader:
            pcsc = PcscTransport(reader, timeout=5.0)
            pcsc.connect()
            try:
                yield pcsc
            finally:
                pcsc.close()


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(
    "path", ["memory", "udp", pytest.param("vpcd", marks=pytest.mark.services)]
)
def test_read_and_verify(path: str, profile: str, request: pytest.FixtureRequest) -> None:
    if path == "vpcd":
        request.getfixturevalue("pcscd")
    card = issued(profile)
    trust = TrustStore()
    trust.add_csca(card.csca)
    with connected(path, VirtualCard(card.data, random=FixedRandom(11))) as transport:
        document = DocumentReader(transport, random=FixedRandom(12)).read(
            password_for(profile), active_auth_challenge=bytes(range(8))
        )
    expected = card_files(card)
    mrz = parse_dg1(document.files["DG1"])
    assert mrz.document_number.rstrip("<") == "AB1234567"
    assert mrz.primary_identifier.rstrip("<") == "BENANI"
    face = parse_dg2(document.files["DG2"]).faces[0]
    assert face.image == parse_dg2(expected["DG2"]).faces[0].image
    assert face.image.startswith(b"\xff\xd8")
    verification = document.verify(trust, clock=FixedClock.at(NOW))
    # pace-im has neither AA nor CA: genuine data, but nothing proves the chip is no clone.
    assert verification.genuine is (profile != "pace-im"), verification.verdict_reason

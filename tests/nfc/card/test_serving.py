"""Every profile, over every serving path, driven by the library's terminal-side protocols.

The scenario is what a kiosk does: open a session (BAC or PACE), read every
data group listed in EF.COM and EF.SOD, run Chip Authentication and Active
Authentication where the card has them, and verify the document with the
library's verifier against the card's trust anchors.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from macnss_auth.cli import main
from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.apdu import CommandAPDU
from macnss_auth.nfc.card import (
    FaultPlan,
    IssuedCard,
    PasswordKind,
    VirtualCard,
    clone_card,
    forge_card,
    save_card,
)
from macnss_auth.nfc.lds import parse_card_security, parse_com, parse_dg14
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.serve import VpcdCardServer
from macnss_auth.nfc.verify import (
    ChipAuthenticationOutcome,
    ChipAuthenticity,
    DocumentVerification,
    VerificationPolicy,
    inspect_document,
)
from macnss_auth.testing import FixedClock, FixedRandom

from .conftest import NOW, issued
from .paths import PcscdService, serve
from .terminal import chip_authenticate, open_session, protected, read_file

PROFILES = ["passport-bac", "cnie", "pace-im", "pace-cam", "legacy-dh"]


def read_and_verify(
    transport: Transport,
    card: IssuedCard,
    *,
    password: PasswordKind = PasswordKind.MRZ,
    seed: int = 1,
) -> tuple[DocumentVerification, str]:
    """The kiosk scenario; returns the verifier's result and how the session was opened."""
    data = card.data
    random = FixedRandom(seed)
    session = open_session(transport, data, random=random, password=password, can="123456")
    com = parse_com(read_file(transport, session.channel, 0x011E))
    groups = {n: read_file(transport, session.channel, 0x0100 + n) for n in com.data_groups}
    sod = read_file(transport, session.channel, 0x011D)
    outcome = None
    if session.pace is not None and session.pace.chip_authentication_data is not None:
        # PACE-CAM: the chip proved its static key (from the signed EF.CardSecurity) in PACE.
        answer = protected(
            transport, session.channel, CommandAPDU(0x00, 0xA4, 0x00, 0x0C, data=b"\x3f\x00")
        )
        answer.raise_for_status()
        security = parse_card_security(read_file(transport, session.channel, 0x011D))
        key = security.security_infos.chip_authentication_key()
        assert key is not None
        session.pace.verify_chip_authentication(key)
        answer = protected(
            transport,
            session.channel,
            CommandAPDU(0x00, 0xA4, 0x04, 0x0C, data=bytes.fromhex("A0000002471001")),
        )
        answer.raise_for_status()
    if 14 in groups and parse_dg14(groups[14]).chip_authentication:
        try:
            chip_authenticate(transport, session, groups[14], random=random)
            # The new channel works: read DG1 again under the CA keys.
            assert read_file(transport, session.channel, 0x0101) == groups[1]
            completed = True
        except Exception:  # noqa: BLE001 (a clone fails CA in several ways; all mean "not completed")
            completed = False
        spki = parse_dg14(groups[14]).chip_authentication_key(1)
        assert spki is not None
        outcome = ChipAuthenticationOutcome(spki.subject_public_key_info, completed, 1)
    challenge = signature = None
    if (15 in groups and outcome is None) or (outcome is not None and not outcome.completed):
        pass
    if 15 in groups and (outcome is None or outcome.completed):
        challenge = random.token_bytes(8)
        answer = protected(
            transport, session.channel, CommandAPDU(0x00, 0x88, 0x00, 0x00, data=challenge, ne=256)
        )
        signature = answer.data if answer.sw == 0x9000 else b""
    store = TrustStore()
    store.load_master_list(card.master_list, trust_as_is=True)
    needs_proof = data.profile.active_authentication or data.profile.chip_authentication
    policy = VerificationPolicy(
        chip_authenticity=ChipAuthenticity.EITHER if needs_proof else ChipAuthenticity.NONE
    )
    result = inspect_document(
        data_groups=groups,
        sod=sod,
        trust_store=store,
        clock=FixedClock.at(NOW),
        policy=policy,
        aa_challenge=challenge,
        aa_signature=signature,
        chip_authentication=outcome,
    )
    return result, session.method


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_over_every_path_is_genuine(profile: str, path: str) -> None:
    card = issued(profile)
    with serve(path, VirtualCard(card.data, random=FixedRandom(11))) as transport:
        result, method = read_and_verify(transport, card)
    assert result.genuine, result.verdict_reason
    assert method.startswith("BAC" if card.data.profile.pace_protocol is None else "PACE")
    assert {1, 2, 7, 11, 12, 14} <= result.verified_data_groups


def test_cnie_with_the_can(path: str) -> None:
    card = issued("cnie")
    with serve(path, VirtualCard(card.data, random=FixedRandom(12))) as transport:
        result, method = read_and_verify(transport, card, password=PasswordKind.CAN)
    assert result.genuine
    assert method == "PACE+CA"


@pytest.mark.parametrize("profile", ["passport-bac", "cnie"])
def test_a_clone_passes_passive_but_not_chip_authentication(profile: str) -> None:
    card = issued(profile)
    clone = VirtualCard(clone_card(card.data), random=FixedRandom(13))
    with serve("memory", clone) as transport:
        result, _ = read_and_verify(transport, card)
    assert not result.genuine
    assert 1 in result.verified_data_groups  # the copied files are still correctly signed


@pytest.mark.parametrize("profile", ["passport-bac", "cnie"])
def test_a_forgery_fails_passive_authentication(profile: str) -> None:
    card = issued(profile)
    forged = VirtualCard(forge_card(card.data), random=FixedRandom(14))
    with serve("memory", forged) as transport:
        result, _ = read_and_verify(transport, card)
    assert not result.genuine
    assert 1 not in result.verified_data_groups


def test_tap_after_tap_over_udp() -> None:
    card = issued("passport-bac")
    virtual = VirtualCard(card.data, random=FixedRandom(15))
    for seed in (1, 2, 3):
        with serve("udp", virtual) as transport:
            result, _ = read_and_verify(transport, card, seed=seed)
            assert result.genuine


def _listeners(table: Path) -> list[tuple[str, int]]:
    """The (hex local address, port) of every LISTEN socket in a /proc/net/tcp* table."""
    found = []
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        address, port = fields[1].rsplit(":", 1)
        if fields[3] == "0A":  # TCP_LISTEN
            found.append((address, int(port, 16)))
    return found


#: 127.0.0.1 and ::1 as /proc/net/tcp and tcp6 print them (32-bit words in host byte order).
_LOOPBACK = {
    socket.inet_pton(socket.AF_INET, "127.0.0.1")[::-1].hex().upper(),
    "".join(
        word[::-1].hex().upper()
        for word in (socket.inet_pton(socket.AF_INET6, "::1")[i : i + 4] for i in range(0, 16, 4))
    ),
}


@pytest.mark.services
def test_the_vpcd_path_listens_on_loopback_only(pcscd: PcscdService) -> None:
    if not pcscd.owned:
        pytest.skip("a running pcscd was reused: its vpcd listens as its own configuration says")
    card = issued("passport-bac")
    with serve("vpcd", VirtualCard(card.data, random=FixedRandom(16))) as transport:
        answer = transport.transceive(bytes.fromhex("00A4040C07A0000002471001"))
        assert answer[-2:] == b"\x90\x00"
        listening = [
            (address, port)
            for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
            if table.exists()
            for address, port in _listeners(table)
            if port in pcscd.slots.values()
        ]
    # Both slots are up (our card servers), and nothing listens beyond loopback on them.
    assert {port for _, port in listening} == set(pcscd.slots.values())
    assert all(address in _LOOPBACK for address, _ in listening), listening


def _free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _vpcd_exchange(sock: socket.socket, payload: bytes) -> bytes:
    """What vpcd does: send one framed message, read one framed answer."""
    sock.sendall(len(payload).to_bytes(2, "big") + payload)
    header = b""
    while len(header) < 2:
        header += sock.recv(2 - len(header))
    length = int.from_bytes(header, "big")
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        assert chunk, "the card closed the link"
        body += chunk
    return body


def _connect_as_vpcd(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    sock.settimeout(5.0)
    return sock


def test_vpcd_card_server_speaks_vpcd_to_each_connection_in_turn() -> None:
    """Reverse mode without pcscd: a socket plays vpcd (connects, powers up, asks the ATR)."""
    card = VirtualCard(issued("passport-bac").data, random=FixedRandom(17))
    port = _free_tcp_port()
    with VpcdCardServer(card, port=port) as server:
        for session in (1, 2):  # vpcd connects again after a link ends: accepted again
            with _connect_as_vpcd(port) as vpcd:
                vpcd.sendall(b"\x00\x01\x01")  # power on: no answer
                assert _vpcd_exchange(vpcd, b"\x04") == card.atr
                answer = _vpcd_exchange(vpcd, bytes.fromhex("00A4040C07A0000002471001"))
                assert answer == b"\x90\x00"
                assert server.wait_connected(5.0)
                assert len(_vpcd_exchange(vpcd, bytes.fromhex("0084000008"))) == 10
            deadline = time.monotonic() + 5
            while server.sessions < session and time.monotonic() < deadline:
                time.sleep(0.01)
            assert server.sessions == session


def test_vpcd_card_server_keeps_the_link_when_a_fault_loses_an_answer() -> None:
    card = VirtualCard(issued("passport-bac").data, random=FixedRandom(18))
    port = _free_tcp_port()
    with (
        VpcdCardServer(card, port=port, faults=FaultPlan(remove_after=1)),
        _connect_as_vpcd(port) as vpcd,
    ):
        assert _vpcd_exchange(vpcd, bytes.fromhex("0084000008"))[-2:] == b"\x90\x00"
        # Removed: each command gets a one-byte message, no response APDU, on the same link.
        assert _vpcd_exchange(vpcd, bytes.fromhex("0084000008")) == b"\x00"
        assert _vpcd_exchange(vpcd, bytes.fromhex("0084000008")) == b"\x00"
        assert _vpcd_exchange(vpcd, b"\x04") == card.atr


def test_vpcd_card_server_can_break_the_link_instead() -> None:
    card = VirtualCard(issued("passport-bac").data, random=FixedRandom(19))
    port = _free_tcp_port()
    server = VpcdCardServer(card, port=port, faults=FaultPlan(drop_every=1), break_link=True)
    with server, _connect_as_vpcd(port) as vpcd:
        vpcd.sendall(b"\x00\x05" + bytes.fromhex("0084000008"))
        assert vpcd.recv(2) == b""  # closed, as the client end does


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])  # noqa: S104 (refused)
def test_vpcd_card_server_refuses_a_non_loopback_host(host: str) -> None:
    card = VirtualCard(issued("passport-bac").data, random=FixedRandom(20))
    with pytest.raises(ConfigurationError, match="loopback"):
        VpcdCardServer(card, host=host)


def test_cli_emulate_vpcd_listen(tmp_path: Path) -> None:
    card = issued("passport-bac")
    save_card(card, tmp_path / "card")
    runner = CliRunner()
    refused = runner.invoke(
        main,
        ["card", "emulate", str(tmp_path / "card"), "--vpcd-listen", "0.0.0.0"],  # noqa: S104 (refused)
    )
    assert refused.exit_code == 2
    assert "loopback" in refused.output
    both = ["--vpcd", "127.0.0.1", "--vpcd-listen", "127.0.0.1"]
    assert runner.invoke(main, ["card", "emulate", str(tmp_path / "card"), *both]).exit_code == 2
    port = _free_tcp_port()
    atr: list[bytes] = []

    def play_vpcd() -> None:
        deadline = time.monotonic() + 5
        vpcd = None
        while vpcd is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                vpcd = _connect_as_vpcd(port)
            time.sleep(0.05)
        if vpcd is not None:
            with vpcd:
                atr.append(_vpcd_exchange(vpcd, b"\x04"))

    player = threading.Thread(target=play_vpcd)
    player.start()
    result = runner.invoke(
        main,
        [
            "card",
            "emulate",
            str(tmp_path / "card"),
            "--vpcd-listen",
            f"127.0.0.1:{port}",
            "--duration",
            "1.5",
        ],
    )
    player.join()
    assert result.exit_code == 0, result.output
    assert "reverse mode" in result.output
    assert atr == [VirtualCard(card.data, random=FixedRandom(21)).atr]

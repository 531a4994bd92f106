"""Transports fail with typed errors, in bounded time, when there is no card or no reader."""

from __future__ import annotations

import socket
import sys
import threading
import time

import pytest

from macnss_auth import ConfigurationError, MissingExtra, TransportError
from macnss_auth.nfc.transports import NfcpyTransport, PcscTransport


def free_udp_port() -> int:
    # nfcpy's udp driver turns the port into a service name: avoid ports in /etc/services.
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        try:
            socket.getservbyport(port, "udp")
        except OSError:
            return port


def _no_card() -> float:
    """Connect where no card answers: a retryable error; the seconds it took."""
    transport = NfcpyTransport(f"udp:127.0.0.1:{free_udp_port()}", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        transport.connect()
    transport.close()
    assert info.value.retryable
    return time.monotonic() - started


def _cancelled() -> float:
    """Cancel a 60 s wait for a card after 0.3 s; the seconds it took."""
    cancel = threading.Event()
    transport = NfcpyTransport(f"udp:127.0.0.1:{free_udp_port()}", timeout=60, cancel=cancel)
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(TransportError, match="cancelled"):
        transport.connect()
    transport.close()
    return time.monotonic() - started


def test_no_card_times_out_with_a_retryable_error() -> None:
    _no_card()


def test_cancel_stops_waiting() -> None:
    _cancelled()


# Wall clock: a loaded machine makes these slow, not wrong (own CI step, `make timing`).
@pytest.mark.timing
def test_no_card_gives_up_within_seconds() -> None:
    assert _no_card() < 5


@pytest.mark.timing
def test_cancel_stops_waiting_within_seconds() -> None:
    assert _cancelled() < 5


def test_unknown_device_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        NfcpyTransport("nosuch:device").connect()


def test_transceive_without_a_card_is_refused() -> None:
    with pytest.raises(TransportError, match="no card"):
        NfcpyTransport("usb").transceive(b"\x00\xa4\x04\x00")


@pytest.mark.parametrize(("module", "extra"), [("nfc", "nfc"), ("smartcard", "pcsc")])
def test_a_transport_without_its_extra_names_the_extra(
    module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes `import nfc` raise ImportError, as without the package.
    for name in [m for m in sys.modules if m == module or m.startswith(f"{module}.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)
    transport = NfcpyTransport("usb", timeout=0.1) if extra == "nfc" else PcscTransport(0)
    with pytest.raises(MissingExtra) as info:
        transport.connect()
    assert info.value.extra == extra
    assert f"pip install 'macnss-auth[{extra}]'" in str(info.value)

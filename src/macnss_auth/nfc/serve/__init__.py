"""Putting a virtual card behind a transport: in process, nfcpy ``udp``, PC/SC through vpcd."""

from macnss_auth.nfc.serve.errors import CardRemovedError, LinkTimeoutError
from macnss_auth.nfc.serve.memory import MemoryTransport
from macnss_auth.nfc.serve.udp import UdpCardServer, free_udp_port

__all__ = [
    "CardRemovedError",
    "LinkTimeoutError",
    "MemoryTransport",
    "UdpCardServer",
    "free_udp_port",
]

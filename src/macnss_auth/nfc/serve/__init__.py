"""Putting a virtual card behind a transport: in process, nfcpy ``udp``, PC/SC through vpcd."""

from macnss_auth.nfc.serve.errors import CardRemovedError, LinkTimeoutError
from macnss_auth.nfc.serve.memory import MemoryTransport
from macnss_auth.nfc.serve.udp import UdpCardServer, free_udp_port
from macnss_auth.nfc.serve.vpcd import VPCD_PORT, VpcdCardClient

__all__ = [
    "VPCD_PORT",
    "CardRemovedError",
    "LinkTimeoutError",
    "MemoryTransport",
    "UdpCardServer",
    "VpcdCardClient",
    "free_udp_port",
]

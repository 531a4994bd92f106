"""Putting a virtual card behind a transport: in process, nfcpy ``udp``, PC/SC through vpcd.

vpcd in forward mode: the card connects to vpcd (:class:`VpcdCardClient`); in
reverse mode vpcd connects to the card (:class:`VpcdCardServer`).
"""

from macnss_auth.nfc.serve.errors import CardRemovedError, LinkTimeoutError
from macnss_auth.nfc.serve.memory import MemoryTransport
from macnss_auth.nfc.serve.udp import UdpCardServer, free_udp_port
from macnss_auth.nfc.serve.vpcd import VPCD_PORT, VpcdCardClient, VpcdCardServer

__all__ = [
    "VPCD_PORT",
    "CardRemovedError",
    "LinkTimeoutError",
    "MemoryTransport",
    "UdpCardServer",
    "VpcdCardClient",
    "VpcdCardServer",
    "free_udp_port",
]

"""Transports: how command APDUs reach a card.

A transport is anything with ``transceive(command: bytes) -> bytes`` (the
response including SW1 SW2; :class:`macnss_auth.nfc.protocol.Transport`), so
users can plug their own. Shipped: nfcpy (USB/serial readers and the ``udp``
driver) and PC/SC (pyscard, optional extra).
"""

from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.transports.nfcpy import NfcpyTransport
from macnss_auth.nfc.transports.pcsc import PcscTransport, list_readers

__all__ = ["NfcpyTransport", "PcscTransport", "Transport", "list_readers"]

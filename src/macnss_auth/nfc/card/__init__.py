"""The virtual eID card: file system, card-side protocols, issuer and profiles.

A :class:`VirtualCard` answers command APDUs like a real ICAO 9303 chip (BAC,
PACE, secure messaging, Chip and Active Authentication, access control). The
issuer personalizes one from a profile with a test PKI; :mod:`macnss_auth.nfc.serve`
puts it behind a transport (in process, nfcpy ``udp``, PC/SC via vpcd).
"""

from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.card.filesystem import Access, Application, ElementaryFile, FileSystem
from macnss_auth.nfc.card.model import (
    AaKeyKind,
    CardData,
    CardProfile,
    ChipSecrets,
    DocumentKind,
    PasswordKind,
)
from macnss_auth.nfc.card.status import StatusWord

__all__ = [
    "AaKeyKind",
    "Access",
    "Application",
    "CardData",
    "CardProfile",
    "ChipSecrets",
    "DocumentKind",
    "ElementaryFile",
    "FileSystem",
    "PasswordKind",
    "StatusWord",
    "VirtualCard",
]

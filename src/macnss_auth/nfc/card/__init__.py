"""The virtual eID card: file system, card-side protocols, issuer and profiles.

A :class:`VirtualCard` answers command APDUs like a real ICAO 9303 chip (BAC,
PACE GM/IM/CAM, secure messaging, Chip and Active Authentication, access
control). :func:`issue_card` personalizes one from a profile (:data:`PROFILES`)
with a test PKI; :func:`save_card` / :func:`load_card` keep it on disk;
:mod:`macnss_auth.nfc.serve` puts it behind a transport (in process, nfcpy
``udp``, PC/SC via vpcd).
"""

from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.card.faults import FaultInjector, FaultPlan
from macnss_auth.nfc.card.filesystem import Access, Application, ElementaryFile, FileSystem
from macnss_auth.nfc.card.issuer import (
    IssuedCard,
    Person,
    clone_card,
    forge_card,
    issue_card,
)
from macnss_auth.nfc.card.model import (
    AaKeyKind,
    CardData,
    CardProfile,
    ChipSecrets,
    DocumentKind,
    PasswordKind,
)
from macnss_auth.nfc.card.profiles import PROFILES, profile
from macnss_auth.nfc.card.status import StatusWord
from macnss_auth.nfc.card.storage import load_card, save_card

__all__ = [
    "PROFILES",
    "AaKeyKind",
    "Access",
    "Application",
    "CardData",
    "CardProfile",
    "ChipSecrets",
    "DocumentKind",
    "ElementaryFile",
    "FaultInjector",
    "FaultPlan",
    "FileSystem",
    "IssuedCard",
    "PasswordKind",
    "Person",
    "StatusWord",
    "VirtualCard",
    "clone_card",
    "forge_card",
    "issue_card",
    "load_card",
    "profile",
    "save_card",
]

"""The virtual eID card: file system, card-side protocols, issuer and profiles.

A :class:`VirtualCard` answers command APDUs like a real ICAO 9303 chip (BAC,
PACE GM/IM/CAM, secure messaging, Chip and Active Authentication, access
control). :func:`issue_card` personalizes one from a profile (:data:`PROFILES`,
or a quirk profile from :data:`QUIRK_PROFILES` modeled on real chips) with a
test PKI; :func:`card_from_dump` serves files read from a real chip;
:func:`save_card` / :func:`load_card` keep it on disk;
:mod:`macnss_auth.nfc.serve` puts it behind a transport (in process, nfcpy
``udp``, PC/SC via vpcd).
"""

from macnss_auth.nfc.apdu import StatusCode
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.card.dump import DumpFiles, card_from_dump, read_dump, write_dump
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
    CardQuirks,
    ChipSecrets,
    DocumentKind,
    PasswordKind,
)
from macnss_auth.nfc.card.profiles import PROFILES, profile
from macnss_auth.nfc.card.quirks import QUIRK_PROFILES, QuirkProfile
from macnss_auth.nfc.card.storage import load_card, save_card

__all__ = [
    "PROFILES",
    "QUIRK_PROFILES",
    "AaKeyKind",
    "Access",
    "Application",
    "CardData",
    "CardProfile",
    "CardQuirks",
    "ChipSecrets",
    "DocumentKind",
    "DumpFiles",
    "ElementaryFile",
    "FaultInjector",
    "FaultPlan",
    "FileSystem",
    "IssuedCard",
    "PasswordKind",
    "Person",
    "QuirkProfile",
    "StatusCode",
    "VirtualCard",
    "card_from_dump",
    "clone_card",
    "forge_card",
    "issue_card",
    "load_card",
    "profile",
    "read_dump",
    "save_card",
    "write_dump",
]

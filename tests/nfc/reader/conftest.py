"""Cards for the reader tests: one issued card per profile, cached for the run."""

from __future__ import annotations

import functools

from macnss_auth.nfc.card import IssuedCard, issue_card
from macnss_auth.nfc.lds.files import LdsFile
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.testing import FixedClock

NOW = 1_800_000_000.0
CAN_VALUE = "123456"
PROFILES = ("passport-bac", "cnie", "pace-im", "pace-cam", "legacy-dh")


@functools.cache
def issued(profile: str) -> IssuedCard:
    return issue_card(profile, clock=FixedClock.at(NOW), can=CAN_VALUE)


def mrz_of(card: IssuedCard) -> MrzKey:
    info = card.data.secrets.mrz_information
    return MrzKey(info[0:9], info[10:16], info[17:23])


def password_for(profile: str) -> MrzKey | CAN:
    """BAC cards open with the MRZ; PACE cards with the CAN, as at a kiosk."""
    return mrz_of(issued(profile)) if profile == "passport-bac" else CAN(CAN_VALUE)


def card_files(card: IssuedCard) -> dict[str, bytes]:
    """The LDS files as personalized, by the names the reader uses."""
    by_fid = {ef.fid: ef.data for ef in card.data.files.files().values()}
    names = {item.file_id: item.name for item in LdsFile}
    return {names[fid]: data for fid, data in by_fid.items() if fid in names}

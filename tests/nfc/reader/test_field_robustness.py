"""Optional steps never end a read; mandatory ones end it with a typed error, quickly.

Issue 16 item 2: Chip or Active Authentication that cannot run or is refused,
files the chip lacks or guards, an unusable EF.COM -- each becomes a check with
a reason and the status word. PACE/BAC, EF.SOD and DG1 stay mandatory.
Every case runs in process and over nfcpy's udp link (the library's
NfcpyTransport against the virtual card as an ISO 14443-4 target).
"""

from __future__ import annotations

import time
from pathlib import Path

import attrs
import pytest

from macnss_auth.errors import AccessDenied, RemoteProtocolError
from macnss_auth.nfc.card import (
    Application,
    CardData,
    VirtualCard,
    card_from_dump,
    clone_card,
)
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.reader import DocumentRead, DocumentReader
from macnss_auth.nfc.verify import CheckStatus, ChipAuthenticity, VerificationPolicy
from macnss_auth.testing import FixedClock, FixedRandom

from ..card.paths import serve
from .conftest import NOW, issued, password_for

SPECIMEN = Path(__file__).resolve().parents[2] / "vectors" / "bsi2008"
CHALLENGE = bytes.fromhex("1122334455667788")

pytestmark = pytest.mark.parametrize("path", ["memory", "udp"])


def without(data: CardData, *names: str) -> CardData:
    """The card with some files of the eMRTD application removed."""
    apps = tuple(
        Application(app.aid, tuple(f for f in app.files if f.name not in names))
        for app in data.files.applications
    )
    return attrs.evolve(data, files=attrs.evolve(data.files, applications=apps))


def read(data: CardData, password: MrzKey | CAN, path: str, **options: object) -> DocumentRead:
    with serve(path, VirtualCard(data, random=FixedRandom(3))) as transport:
        reader = DocumentReader(transport, random=FixedRandom(4), **options)  # type: ignore[arg-type]
        return reader.read(password, active_auth_challenge=CHALLENGE)


def trust(profile: str) -> TrustStore:
    store = TrustStore()
    store.load_master_list(issued(profile).master_list, trust_as_is=True)
    return store


def test_a_clone_is_read_to_the_end_and_refusals_carry_status_words(path: str) -> None:
    data = clone_card(issued("cnie").data)
    document = read(data, password_for("cnie"), path)
    assert {"DG1", "DG2", "DG14", "DG15"} <= set(document.files)
    ca = next(s for s in document.steps if s.name == "chip_authentication")
    aa = next(s for s in document.steps if s.name == "active_authentication")
    assert ca.status is CheckStatus.FAILED
    assert ca.status_word == 0x6A88
    assert aa.status is CheckStatus.NOT_PERFORMED
    assert aa.status_word == 0x6A88
    result = document.verify(trust("cnie"), clock=FixedClock.at(NOW))
    assert not result.genuine
    check = result.check("chip_authentication")
    assert check.status is CheckStatus.FAILED
    assert "6A88" in check.reason
    assert check.status_word == 0x6A88
    as_dict = {c["name"]: c for c in result.to_dict()["checks"]}
    assert as_dict["chip_authentication"]["status_word"] == "6A88"


def test_no_clone_proof_when_the_policy_requires_one(path: str) -> None:
    # A BAC passport whose chip answers neither CA nor AA (keys gone): PA passes.
    data = clone_card(issued("passport-bac").data)
    document = read(data, password_for("passport-bac"), path)
    policy = VerificationPolicy(chip_authenticity=ChipAuthenticity.ACTIVE_AUTHENTICATION)
    result = document.verify(trust("passport-bac"), clock=FixedClock.at(NOW), policy=policy)
    assert not result.genuine
    assert result.status("dg1_hash") is CheckStatus.PASSED
    aa = result.check("active_authentication")
    assert aa.status is CheckStatus.NOT_PERFORMED
    assert aa.status_word == 0x6A88


def test_ef_com_missing_the_sod_decides_what_is_read(path: str) -> None:
    data = without(issued("cnie").data, "EF.COM")
    document = read(data, password_for("cnie"), path)
    com = next(s for s in document.steps if s.name == "read_com")
    assert com.status_word == 0x6A82
    assert {"DG1", "DG2", "DG7", "DG11", "DG12", "DG14", "DG15"} <= set(document.files)
    assert document.verify(trust("cnie"), clock=FixedClock.at(NOW)).genuine


def test_dg14_listed_but_absent_is_a_step_not_the_end(path: str) -> None:
    """The issue's own report: DG14 in EF.COM, 6A82 on the chip; the read went no further."""
    data = without(issued("passport-bac").data, "DG14")
    document = read(data, password_for("passport-bac"), path)
    dg14 = next(s for s in document.steps if s.name == "read_dg14")
    assert dg14.status_word == 0x6A82
    assert "DG1" in document.files
    assert "DG15" in document.files
    result = document.verify(trust("passport-bac"), clock=FixedClock.at(NOW))
    assert result.check("dg14_hash").status is CheckStatus.NOT_PERFORMED
    assert "6A82" in result.check("dg14_hash").reason
    # AA (RSA) still proves the chip: genuine under the default policy.
    assert result.genuine, result.verdict_reason


@pytest.mark.parametrize(("missing", "word"), [("EF.SOD", 0x6A82), ("DG1", 0x6A82)])
def test_a_mandatory_file_missing_ends_the_read_with_a_typed_error(
    missing: str, word: int, path: str
) -> None:
    data = without(issued("cnie").data, missing)
    started = time.monotonic()
    with pytest.raises(RemoteProtocolError) as caught:
        read(data, password_for("cnie"), path)
    assert caught.value.status_word == word
    assert time.monotonic() - started < 30  # bounded: no retry loop on a refusal


def test_a_wrong_password_still_ends_the_read(path: str) -> None:
    with pytest.raises(AccessDenied):
        read(issued("cnie").data, CAN("000000"), path)


def test_the_specimen_served_from_its_dump_reads_to_a_verdict(path: str) -> None:
    """brainpoolP224r1 CA key with explicit parameters: CA is a check, never an exception."""
    data = card_from_dump(SPECIMEN, pace=True)
    document = read(data, CAN("123456"), path)
    assert {"COM", "SOD", "DG1", "DG2", "DG14"} <= set(document.files)
    result = document.verify(TrustStore(), clock=FixedClock.at(NOW))
    assert not result.genuine
    for number in (1, 2, 14):
        assert result.status(f"dg{number}_hash") is CheckStatus.PASSED
    ca = result.check("chip_authentication")
    # brainpoolP224r1 runs; the card built from the dump lacks the private key: 6A88.
    assert ca.status is CheckStatus.FAILED
    assert ca.status_word == 0x6A88
    assert result.status("chain") is CheckStatus.FAILED


def test_the_specimen_over_bac(path: str) -> None:
    data = card_from_dump(SPECIMEN, pace=False)
    document = read(data, MrzKey("C11T002JM", "960812", "131031"), path)
    assert document.access.value == "BAC"
    assert document.files["DG1"] == (SPECIMEN / "Datagroup1.bin").read_bytes()


def _ending_sessions() -> CardData:
    """A cnie whose EF.COM lists all 16 data groups; each missing one refused in plain."""
    from macnss_auth.nfc.card import CardQuirks  # noqa: PLC0415
    from macnss_auth.nfc.lds import encode_com  # noqa: PLC0415

    data = issued("cnie").data
    files = data.files.replace_data("A0000002471001/EF.COM", encode_com(list(range(1, 17))))
    profile = attrs.evolve(data.profile, quirks=CardQuirks(plain_errors=True))
    return attrs.evolve(data, files=files, profile=profile)


def test_every_missing_file_refused_in_plain_the_session_each_time_reopened(path: str) -> None:
    document = read(_ending_sessions(), password_for("cnie"), path, data_groups=range(1, 17))
    refused = [s for s in document.steps if s.name.startswith("read_dg")]
    assert len(refused) >= 8
    assert all("in plain" in s.reason and s.status_word == 0x6A82 for s in refused)
    assert document.verify(trust("cnie"), clock=FixedClock.at(NOW)).genuine


def test_a_chip_that_keeps_ending_the_session_is_given_up_on(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Bounded: past a number of re-opened sessions the read ends with a typed error."""
    from macnss_auth.nfc import reader as reader_module  # noqa: PLC0415

    monkeypatch.setattr(reader_module, "_MAX_REOPEN", 3)
    with pytest.raises(RemoteProtocolError, match="keeps ending secure messaging"):
        read(_ending_sessions(), password_for("cnie"), path, data_groups=range(1, 17))

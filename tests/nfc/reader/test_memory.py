"""DocumentReader against the virtual card in process: every profile, and the fault matrix."""

from __future__ import annotations

import math

import attrs
import pytest

from macnss_auth import AccessDenied, ConfigurationError, SecureMessagingError, TransportError
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.card.faults import FaultPlan
from macnss_auth.nfc.lds import encode_dg2, parse_dg1
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.reader import AccessProtocol, DocumentReader
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.testing import FixedRandom

from .conftest import PROFILES, card_files, issued, password_for

NONCE = bytes.fromhex("0123456789ABCDEF")


def transport_for(profile: str, **kwargs: object) -> MemoryTransport:
    return MemoryTransport(VirtualCard(issued(profile).data, random=FixedRandom(7)), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("profile", PROFILES)
def test_reads_every_profile_byte_for_byte(profile: str) -> None:
    card = issued(profile)
    progress: list[tuple[str, int, int]] = []
    reader = DocumentReader(
        transport_for(profile), random=FixedRandom(1), progress=lambda *p: progress.append(p)
    )
    result = reader.read(password_for(profile), active_auth_challenge=NONCE)
    expected = card_files(card)
    for name, data in result.files.items():
        assert data == expected[name], name
    assert {"COM", "SOD", "DG1", "DG2"} <= set(result.files)
    mrz = parse_dg1(result.files["DG1"])
    assert mrz.document_number.rstrip("<") == "AB1234567"
    assert result.access is (
        AccessProtocol.BAC if profile == "passport-bac" else AccessProtocol.PACE
    )
    if "DG15" in result.files:
        assert result.active_auth_signature
        assert result.active_auth_challenge == NONCE
    # Progress ends at each file's full length.
    finals = {name: (done, total) for name, done, total in progress}
    assert all(done == total == len(result.files[name]) for name, (done, total) in finals.items())


@pytest.mark.parametrize(("extended", "chunk"), [(False, 223), (None, 4096)])
def test_round_trips_are_the_minimum_for_the_chunk_size(extended: bool | None, chunk: int) -> None:
    """cnie announces extended length in EF.ATR/INFO; by default the reader uses it."""
    reader = DocumentReader(
        transport_for("cnie"), random=FixedRandom(1), data_groups=(1, 2), extended_length=extended
    )
    result = reader.read(password_for("cnie"))
    names = ("COM", "SOD", "DG1", "DG2")
    reads = sum(math.ceil(len(result.files[name]) / chunk) for name in names)
    # EF.ATR/INFO (only when asked to look), EF.CardAccess, MSE:Set AT + 4 GENERAL
    # AUTHENTICATE, SELECT; then the reads.
    access = (1 if extended is None else 0) + 1 + 5 + 1
    assert result.round_trips == access + reads


def big_dg2_card() -> VirtualCard:
    """The cnie card with a 20 KB face, so that restarting DG2 would show in the round trips."""
    data = issued("cnie").data
    face = b"\xff\xd8\xff\xe0" + bytes(20_000) + b"\xff\xd9"
    path = next(p for p in data.files.files() if p.endswith("/DG2"))
    files = data.files.replace_data(path, encode_dg2(face, width=480, height=640))
    return VirtualCard(attrs.evolve(data, files=files), random=FixedRandom(7))


def test_card_removed_mid_dg2_then_put_back_resumes_at_the_offset() -> None:
    clean = DocumentReader(MemoryTransport(big_dg2_card()), random=FixedRandom(1)).read(
        CAN("123456")
    )
    dg2_reads = math.ceil(len(clean.files["DG2"]) / 223)
    seen: list[int] = []
    transport = MemoryTransport(big_dg2_card(), record=True)
    probe = DocumentReader(
        transport,
        random=FixedRandom(1),
        progress=lambda name, done, total: (
            seen.append(len(transport.transcript)) if name == "DG2" and done < total else None
        ),
    )
    probe.read(CAN("123456"))
    middle_of_dg2 = seen[len(seen) // 2]

    faulty = MemoryTransport(big_dg2_card(), faults=FaultPlan(remove_after=middle_of_dg2))
    reader = DocumentReader(faulty, random=FixedRandom(1), reconnect=faulty.tap)
    result = reader.read(CAN("123456"))
    assert result.reconnects == 1
    assert dict(result.files) == dict(clean.files)
    # Re-establishing costs PACE without EF.CardAccess (SELECT MF, MSE, 4 GA, SELECT app),
    # Chip Authentication again (MSE, GA, a check on the new keys), a SELECT of DG2 and the
    # lost command: far less than reading DG2 again.
    extra = result.round_trips - clean.round_trips
    assert 0 < extra <= 14 < dg2_reads // 2


def test_corrupted_mac_is_a_typed_error_without_retry() -> None:
    faulty = transport_for("cnie", faults=FaultPlan(wrong_mac_every=9))
    reader = DocumentReader(faulty, random=FixedRandom(1), reconnect=faulty.tap)
    with pytest.raises(SecureMessagingError):
        reader.read(CAN("123456"))


@pytest.mark.parametrize("profile", ["cnie", "passport-bac"])
def test_wrong_password_is_denied_after_exactly_one_attempt(profile: str) -> None:
    transport = transport_for(profile, record=True)
    reader = DocumentReader(transport, random=FixedRandom(1), reconnect=transport.tap)
    if profile == "passport-bac":
        wrong: CAN | MrzKey = MrzKey("AB1234568", "900115", "350101")
        attempt_ins = 0x82  # EXTERNAL AUTHENTICATE
    else:
        wrong = CAN("654321")
        attempt_ins = 0x22  # MSE:Set AT
    with pytest.raises(AccessDenied):
        reader.read(wrong)
    attempts = [c for c, _ in transport.transcript if c[1] == attempt_ins]
    assert len(attempts) == 1


def test_a_card_that_never_comes_back_fails_within_the_budget() -> None:
    now = [0.0]

    def monotonic() -> float:
        now[0] += 0.5
        return now[0]

    def reconnect() -> None:
        raise TransportError("no card within the timeout", retryable=True)

    faulty = transport_for("cnie", faults=FaultPlan(remove_after=10))
    reader = DocumentReader(
        faulty, random=FixedRandom(1), reconnect=reconnect, session_budget=10, monotonic=monotonic
    )
    with pytest.raises(TransportError):
        reader.read(CAN("123456"))


def test_can_is_refused_for_a_bac_only_chip() -> None:
    with pytest.raises(ConfigurationError):
        DocumentReader(transport_for("passport-bac"), random=FixedRandom(1)).read(CAN("123456"))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        DocumentReader(transport_for("cnie"), random=FixedRandom(1), data_groups=(0,))
    with pytest.raises(ConfigurationError):
        DocumentReader(transport_for("cnie"), random=FixedRandom(1)).read(
            CAN("123456"), active_auth_challenge=b"short"
        )

"""Quirk profiles: chips that behave as real-chip reports document, read end to end.

Each test issues one quirk profile, serves it in process and over nfcpy's udp
link, reads it with :class:`~macnss_auth.nfc.reader.DocumentReader` (the same
call a kiosk makes) and asserts the verdict and the trace the quirk leaves.
Each docstring names where the behaviour was reported.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.errors import MacnssAuthError
from macnss_auth.nfc.card import (
    QUIRK_PROFILES,
    CardData,
    IssuedCard,
    VirtualCard,
    clone_card,
    issue_card,
    load_card,
    save_card,
)
from macnss_auth.nfc.domain_params import DomainParameterId
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.reader import DocumentRead, DocumentReader
from macnss_auth.nfc.securityinfos import PaceOid
from macnss_auth.nfc.verify import (
    CheckStatus,
    ChipAuthenticity,
    DocumentVerification,
    VerificationPolicy,
)
from macnss_auth.testing import FixedClock, FixedRandom

from .conftest import NOW
from .paths import serve

PATHS = ["memory", "udp"]
REQUIRES = {
    "either": ChipAuthenticity.EITHER,
    "aa": ChipAuthenticity.ACTIVE_AUTHENTICATION,
    "ca": ChipAuthenticity.CHIP_AUTHENTICATION,
}
CHALLENGE = bytes.fromhex("0123456789ABCDEF")


@functools.cache
def issued(name: str) -> IssuedCard:
    return issue_card(name, clock=FixedClock.at(NOW), can="123456")


def password(data: CardData) -> MrzKey | CAN:
    if data.profile.pace_protocol is not None:
        return CAN("123456")
    info = data.secrets.mrz_information
    return MrzKey(info[0:9], info[10:16], info[17:23])


def read(
    name: str, path: str, *, data: CardData | None = None, data_groups: Iterable[int] = ()
) -> DocumentRead:
    quirk = QUIRK_PROFILES[name]
    card_data = data or issued(name).data
    wanted = tuple(data_groups) or quirk.data_groups
    options = {"data_groups": wanted} if wanted else {}
    with serve(path, VirtualCard(card_data, random=FixedRandom(7))) as transport:
        reader = DocumentReader(transport, random=FixedRandom(8), **options)  # type: ignore[arg-type]
        return reader.read(password(card_data), active_auth_challenge=CHALLENGE)


def verify(
    name: str, document: DocumentRead, *, requires: str | None = None, signer: bool = True
) -> DocumentVerification:
    quirk = QUIRK_PROFILES[name]
    card = issued(name)
    store = TrustStore()
    store.load_master_list(card.master_list, trust_as_is=True)
    signers = [card.document_signer] if quirk.needs_document_signer and signer else []
    policy = VerificationPolicy(chip_authenticity=REQUIRES[requires or quirk.requires])
    return document.verify(store, clock=FixedClock.at(NOW), policy=policy, document_signers=signers)


def expect_as_documented(name: str, document: DocumentRead) -> DocumentVerification:
    """The verdict the quirk table documents, and every file byte for byte as issued."""
    result = verify(name, document)
    assert result.genuine is QUIRK_PROFILES[name].genuine, result.verdict_reason
    issued_files = {ef.name: ef.data for ef in issued(name).data.files.files().values()}
    for number, data in document.data_groups.items():
        assert data == issued_files[f"DG{number}"]
    assert document.files["SOD"] == issued_files["EF.SOD"]
    return result


def step(document: DocumentRead, name: str) -> tuple[CheckStatus, str, int | None]:
    found = next(s for s in document.steps if s.name == name)
    return found.status, found.reason, found.status_word


def test_the_table_lists_at_least_twelve_profiles_with_sources() -> None:
    assert len(QUIRK_PROFILES) >= 12
    for name, quirk in QUIRK_PROFILES.items():
        assert quirk.profile.name == name
        assert quirk.source
        assert quirk.behaviour


@pytest.mark.parametrize("path", PATHS)
def test_no_extended_length_although_announced(path: str) -> None:
    """Announces extended length, then a plain 6700 and no more secure messaging.

    Source: AndyQ/NFCPassportReader#223 (Chinese passports answer nothing to Le
    65536; "the extended format is not being liked") and gmrtd/gmrtd#458
    (extended-length fallback for a Chinese passport).
    """
    document = read("no-extended-length", path)
    status, reason, word = step(document, "extended_length")
    assert status is CheckStatus.NOT_PERFORMED
    assert word == 0x6700
    assert "short reads" in reason
    expect_as_documented("no-extended-length", document)


@pytest.mark.parametrize("path", PATHS)
def test_short_reads_with_6282(path: str) -> None:
    """At most 160 bytes per READ BINARY, 6282 when Le asked more.

    Source: AndyQ/NFCPassportReader#24 ("older passports won't return more than
    160 bytes per read") and #91 (a Spanish ID answers 6282 "End of file
    reached before reading Le bytes" in the middle of DG1).
    """
    document = read("short-reads-6282", path)
    assert not document.steps
    assert len(document.files["DG2"]) > 160
    expect_as_documented("short-reads-6282", document)


@pytest.mark.parametrize("path", PATHS)
def test_wrong_le_answered_6cxx(path: str) -> None:
    """6Cxx with the exact length when Le reaches past the end of a file.

    Source: AndyQ/NFCPassportReader#29 ("Wrong length Le: SW2 indicates the
    exact length (exact length: 231)").
    """
    document = read("wrong-le-6cxx", path)
    assert not document.steps
    # Asking again with the length the chip gives: a reader that only halves Le needed
    # 134 round trips for this card, this one about 31.
    assert document.round_trips <= 40
    expect_as_documented("wrong-le-6cxx", document)


@pytest.mark.parametrize("path", PATHS)
def test_answers_chained_with_61xx(path: str) -> None:
    """Long answers in pieces: 61xx then GET RESPONSE, in plain inside secure messaging.

    Source: OpenSC/OpenSC#632 (GET RESPONSE repeated while 61xx) and OpenSC PR
    #3768 (a captured driver sends GET RESPONSE unprotected during SM and the
    joined answer is the protected one).
    """
    plain = read("short-reads-6282", path)  # the same base profile, without chaining
    document = read("get-response-61xx", path)
    assert document.round_trips > plain.round_trips // 2
    expect_as_documented("get-response-61xx", document)


@pytest.mark.parametrize("path", PATHS)
def test_files_listed_in_ef_com_but_missing(path: str) -> None:
    """EF.COM lists DG12 and DG13; the chip has neither (6A82); the read goes on.

    Source: AndyQ/NFCPassportReader#34 (DG11 "File not found" on a passport
    whose reader asked for it) and jllarraz/AndroidPassportReader#7 ("I just
    trap the exception and continue").
    """
    document = read("missing-dg-6a82", path)
    for number in (12, 13):
        status, reason, word = step(document, f"read_dg{number}")
        assert status is CheckStatus.NOT_PERFORMED
        assert word == 0x6A82
        assert "does not have it" in reason
    assert {"DG1", "DG2", "DG11", "DG14", "DG15"} <= set(document.files)
    result = expect_as_documented("missing-dg-6a82", document)
    assert result.status("chip_authentication") is CheckStatus.PASSED
    assert result.status("active_authentication") is CheckStatus.PASSED


@pytest.mark.parametrize("path", PATHS)
def test_dg3_dg4_behind_terminal_authentication(path: str) -> None:
    """DG3/DG4 answered 6982 without Terminal Authentication; secure messaging ends with it.

    Source: AndyQ/NFCPassportReader#22 (German ID: DG3 "Security status not
    satisfied") and #165 (after the 6982 on DG3 the next command gets 6988: the
    session is gone).
    """
    document = read("eac-dg3-dg4", path)
    for number in (3, 4):
        status, _, word = step(document, f"read_dg{number}")
        assert status is CheckStatus.NOT_PERFORMED
        assert word == 0x6982
    result = expect_as_documented("eac-dg3-dg4", document)
    dg3 = result.check("dg3_hash")
    assert dg3.status is CheckStatus.NOT_PERFORMED
    assert "Terminal Authentication" in dg3.reason
    assert dg3.status_word == 0x6982
    assert result.status("active_authentication") is CheckStatus.PASSED
    assert result.status("chip_authentication") is CheckStatus.PASSED


@pytest.mark.parametrize("path", PATHS)
def test_several_pace_infos_the_best_supported_is_chosen(path: str) -> None:
    """Five PACE variants, a CardInfoLocator and a PrivilegedTerminalInfo; DO'84' required.

    Source: AndyQ/NFCPassportReader PR #269 (German and Polish eIDs offer
    several PACEInfos and fail without the parameter id in MSE:Set AT) and PR
    #106 (a German ID's EF.CardAccess with CardInfoLocator and
    PrivilegedTerminalInfo).
    """
    document = read("several-pace-infos", path)
    assert document.pace_protocol == PaceOid.ECDH_GM_AES_CBC_CMAC_128.value
    expect_as_documented("several-pace-infos", document)


@pytest.mark.parametrize("path", PATHS)
def test_pace_parameter_reference_refused(path: str) -> None:
    """MSE:Set AT for PACE with DO'84' answered 6A80: PACE runs again without it.

    Source: ICAO 9303-11 §4.4.4.1 (DO'84' is conditional: required only when the
    domain parameters are ambiguous) and PaceTerminal's note on old chips.
    """
    document = read("pace-do84-refused", path)
    assert document.access.value == "PACE"
    expect_as_documented("pace-do84-refused", document)


@pytest.mark.parametrize("path", PATHS)
def test_several_chip_authentication_keys(path: str) -> None:
    """Two CA keys with key ids; DO'84' required; the chip holds only key 2.

    Source: ICAO 9303-11 §9.2.6 (keyId identifies the key when there are
    several) and tananaev/passport-reader PR #99 ("iterate over all available
    keys and continue on per-key failure").
    """
    document = read("several-ca-keys", path)
    assert document.chip_authentication == "CA"
    assert document.chip_authentication_key_id == 2
    result = expect_as_documented("several-ca-keys", document)
    assert result.status("chip_authentication") is CheckStatus.PASSED


@pytest.mark.parametrize("path", PATHS)
def test_chip_authentication_key_reference_refused(path: str) -> None:
    """One CA key with a key id; MSE:Set AT with DO'84' answered 6A80.

    Source: AndyQ/NFCPassportReader PR #128 (Malta: keyId set for a single key,
    Chip Authentication fails with 6A80 when it is sent).
    """
    document = read("ca-key-id-refused", path)
    assert document.chip_authentication == "CA"
    assert document.chip_authentication_proved
    result = expect_as_documented("ca-key-id-refused", document)
    assert result.status("chip_authentication") is CheckStatus.PASSED


@pytest.mark.parametrize("path", PATHS)
def test_chip_authentication_on_dh(path: str) -> None:
    """Chip Authentication on a 1024-bit DH group (MSE:Set KAT, 3DES).

    Source: ICAO 9303-11 §6.2 (CA with DH or ECDH) and
    Fethbita/eMRTD_face_access#3 ("ECDH CA is implemented. DH CA is not").
    """
    document = read("ca-dh", path)
    assert document.chip_authentication == "CA"
    assert document.chip_authentication_proved
    result = expect_as_documented("ca-dh", document)
    assert result.status("chip_authentication") is CheckStatus.PASSED


@pytest.mark.parametrize("path", PATHS)
def test_active_authentication_ecdsa_in_der(path: str) -> None:
    """The ECDSA AA signature comes as X9.62 DER instead of plain r||s.

    Source: gmrtd/gmrtd#187 and PR #188 (Portuguese Cartão de Cidadão).
    """
    document = read("aa-ecdsa-der", path)
    assert document.active_auth_signature is not None
    assert document.active_auth_signature.startswith(b"\x30")
    result = expect_as_documented("aa-ecdsa-der", document)
    assert result.status("active_authentication") is CheckStatus.PASSED


@pytest.mark.parametrize("path", PATHS)
def test_dg15_without_active_authentication(path: str) -> None:
    """DG15 is there but INTERNAL AUTHENTICATE is answered 6D00.

    Source: privacybydesign/irmamobile PR #672 (the read aborted on AA with
    6A88; vcmrtd now treats 6A88/6A81/6D00 as "not supported").
    """
    document = read("aa-not-supported", path)
    status, _, word = step(document, "active_authentication")
    assert status is CheckStatus.NOT_PERFORMED
    assert word == 0x6D00
    result = expect_as_documented("aa-not-supported", document)
    assert result.status("chip_authentication") is CheckStatus.PASSED
    # When the policy needs AA, the verdict says so, and why it is missing.
    strict = verify("aa-not-supported", document, requires="aa")
    assert not strict.genuine
    assert "requires Active Authentication" in strict.verdict_reason
    assert "6D00" in strict.verdict_reason


@pytest.mark.parametrize("path", PATHS)
def test_sod_with_mixed_digests(path: str) -> None:
    """EF.SOD hashes the data groups with SHA-1 and signs its attributes with SHA-384.

    Source: MatthiasValvekens/pyHanko#242 (Lithuanian documents: digest and
    signature algorithms differ) and tananaev/passport-reader#51.
    """
    document = read("sod-mixed-digests", path)
    result = expect_as_documented("sod-mixed-digests", document)
    assert "sha1" in result.check("sod").reason
    assert "sha384" in result.check("sod_signature").reason


@pytest.mark.parametrize("path", PATHS)
def test_document_signer_certificate_from_a_store(path: str) -> None:
    """EF.SOD does not carry the DS certificate; the verifier finds it among given ones.

    Source: ICAO 9303-10 §4.6.2.2 (the DS certificate is distributed through the
    PKD as well) and gmrtd/gmrtd#352, #440 (selecting the signer certificate
    by issuer and serial number).
    """
    document = read("ds-not-in-sod", path)
    expect_as_documented("ds-not-in-sod", document)
    without = verify("ds-not-in-sod", document, signer=False)
    assert not without.genuine
    assert without.status("sod_signature") is CheckStatus.FAILED


@pytest.mark.parametrize("name", sorted(QUIRK_PROFILES))
def test_a_clone_of_every_quirk_card_reads_to_not_genuine(name: str) -> None:
    """No private keys: the read still ends in a verdict, and the verdict is no."""
    document = read(name, "memory", data=clone_card(issued(name).data))
    result = verify(name, document)
    assert not result.genuine
    for check in ("chip_authentication", "active_authentication"):
        assert result.status(check) is not CheckStatus.PASSED
    if issued(name).data.profile.chip_authentication is not None:
        ca = result.check("chip_authentication")
        assert ca.status is CheckStatus.FAILED
        assert ca.status_word in (0x6A88, 0x6A80)


@pytest.mark.parametrize("name", ["ca-dh", "several-pace-infos", "get-response-61xx"])
def test_quirk_cards_survive_save_and_load(name: str, tmp_path: object) -> None:
    from pathlib import Path  # noqa: PLC0415 (tmp_path is a Path)

    directory = Path(str(tmp_path))
    save_card(issued(name), directory)
    loaded = load_card(directory)
    assert loaded.profile == issued(name).data.profile
    document = read(name, "memory", data=loaded)
    assert verify(name, document).genuine


def test_unknown_quirk_in_a_saved_card_is_refused(tmp_path: object) -> None:
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from macnss_auth.errors import ConfigurationError  # noqa: PLC0415

    directory = Path(str(tmp_path))
    save_card(issued("wrong-le-6cxx"), directory)
    raw = json.loads((directory / "card.json").read_text())
    raw["profile"]["quirks"]["bogus"] = True
    (directory / "card.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigurationError, match="bogus"):
        load_card(directory)


@pytest.mark.parametrize("path", PATHS)
def test_refusals_in_plain_end_the_session(path: str) -> None:
    """A refusal inside secure messaging comes in plain (no MAC) and the session is gone.

    Source: AndyQ/NFCPassportReader#205 (a command in a session answered
    "[unprotected] 6A88") and flipperdevices/flipperzero-firmware PR #1866 (a
    Russian passport: READ BINARY answered 6B00, the next SELECT 6988).
    """
    document = read("plain-errors", path)
    status, reason, word = step(document, "read_dg13")
    assert status is CheckStatus.NOT_PERFORMED
    assert word == 0x6A82
    assert "in plain" in reason
    result = expect_as_documented("plain-errors", document)
    assert result.status("chip_authentication") is CheckStatus.PASSED
    assert result.status("active_authentication") is CheckStatus.PASSED


def test_a_clone_refusing_in_plain_is_read_to_a_verdict() -> None:
    document = read("plain-errors", "memory", data=clone_card(issued("plain-errors").data))
    result = verify("plain-errors", document)
    assert not result.genuine
    ca = result.check("chip_authentication")
    assert ca.status is CheckStatus.FAILED
    assert ca.status_word == 0x6A88
    assert result.check("active_authentication").status_word == 0x6A88


def test_a_bad_mac_is_never_taken_for_a_refusal() -> None:
    """Tampering (a protected answer whose MAC fails) still ends the read."""
    from macnss_auth.errors import SecureMessagingError  # noqa: PLC0415
    from macnss_auth.nfc.card import FaultPlan  # noqa: PLC0415
    from macnss_auth.nfc.serve import MemoryTransport  # noqa: PLC0415

    data = issued("missing-dg-6a82").data
    transport = MemoryTransport(
        VirtualCard(data, random=FixedRandom(7)), faults=FaultPlan(wrong_mac_every=12)
    )
    reader = DocumentReader(transport, random=FixedRandom(8))
    with pytest.raises(SecureMessagingError) as caught:
        reader.read(password(data), active_auth_challenge=CHALLENGE)
    assert caught.value.status_word is None


@pytest.mark.parametrize("path", PATHS)
def test_active_authentication_hash_not_announced(path: str) -> None:
    """A P-384 AA key signs with SHA-256 and DG14 does not say which hash.

    Source: gmrtd/gmrtd PR #477 (Portuguese Cartão de Cidadão: DG15 holds a
    P-384 key, the chip signs with SHA-256, there is no DG14; ICAO 9303-11
    §6.1.2.3 allows any of SHA-224/256/384/512 no longer than the key).
    """
    document = read("aa-hash-not-announced", path)
    result = expect_as_documented("aa-hash-not-announced", document)
    assert result.status("active_authentication") is CheckStatus.PASSED


_BEHAVIOURS = st.fixed_dictionaries(
    {},
    optional={
        "refuse_extended_length": st.booleans(),
        "max_read": st.integers(16, 300),
        "wrong_le": st.booleans(),
        "get_response_chunk": st.integers(8, 300),
        "drop_session_on_refusal": st.booleans(),
        "pace_requires_parameter_id": st.booleans(),
        "pace_refuses_parameter_id": st.booleans(),
        "ca_requires_key_reference": st.booleans(),
        "ca_refuses_key_reference": st.booleans(),
        "aa_der_signature": st.booleans(),
        "aa_unsupported": st.booleans(),
        "plain_errors": st.booleans(),
    },
)


@settings(max_examples=80, deadline=None)
@given(
    base=st.sampled_from(
        ["eac-dg3-dg4", "several-ca-keys", "missing-dg-6a82", "ca-dh", "several-pace-infos"]
    ),
    behaviours=_BEHAVIOURS,
)
def test_any_mix_of_chip_behaviours_ends_in_a_result_or_a_typed_error(
    base: str, behaviours: dict[str, object]
) -> None:
    """Quirks combined at random: the read returns, or raises the library's own error."""
    data = issued(base).data
    quirks = attrs.evolve(data.profile.quirks, **behaviours)  # type: ignore[arg-type]
    mixed = attrs.evolve(data, profile=attrs.evolve(data.profile, quirks=quirks))
    try:
        document = read(base, "memory", data=mixed)
    except MacnssAuthError:
        return
    result = verify(base, document)
    assert result.status("dg1_hash") is CheckStatus.PASSED


def _read_on_curve(name: str, parameter_id: int, path: str) -> tuple[DocumentRead, IssuedCard]:
    """The quirk profile with its AA key moved to another curve, read and returned."""
    card_profile = attrs.evolve(
        QUIRK_PROFILES[name].profile,
        name=f"{name}-{parameter_id}",
        active_authentication_parameter_id=parameter_id,
    )
    card = issue_card(card_profile, clock=FixedClock.at(NOW), can="123456")
    with serve(path, VirtualCard(card.data, random=FixedRandom(7))) as transport:
        document = DocumentReader(transport, random=FixedRandom(8)).read(
            CAN("123456"), active_auth_challenge=CHALLENGE
        )
    return document, card


def _aa_verdict(document: DocumentRead, card: IssuedCard) -> DocumentVerification:
    store = TrustStore()
    store.load_master_list(card.master_list, trust_as_is=True)
    policy = VerificationPolicy(chip_authenticity=ChipAuthenticity.ACTIVE_AUTHENTICATION)
    return document.verify(store, clock=FixedClock.at(NOW), policy=policy)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "parameter_id",
    [DomainParameterId.BRAINPOOLP224R1, DomainParameterId.BRAINPOOLP320R1],
    ids=lambda i: i.name,
)
def test_der_aa_signature_on_curves_cryptography_lacks(parameter_id: int, path: str) -> None:
    """The aa-ecdsa-der chip with its key on a curve only the library's own arithmetic has.

    The card signs with the library's EC keys there and still answers in DER
    (gmrtd/gmrtd#187); the verifier reads the encoding from the answer.
    """
    document, card = _read_on_curve("aa-ecdsa-der", parameter_id, path)
    assert document.active_auth_signature is not None
    assert document.active_auth_signature.startswith(b"\x30")
    result = _aa_verdict(document, card)
    assert result.status("active_authentication") is CheckStatus.PASSED, result.verdict_reason
    assert result.genuine
    other = attrs.evolve(document, active_auth_challenge=bytes(8))
    assert _aa_verdict(other, card).status("active_authentication") is CheckStatus.FAILED


@pytest.mark.parametrize("path", PATHS)
def test_hash_not_announced_on_a_curve_cryptography_lacks(path: str) -> None:
    """aa-hash-not-announced with a brainpoolP320r1 key: SHA-384 first, then SHA-256 passes.

    Source as aa-hash-not-announced (gmrtd/gmrtd PR #477); the curve is one
    cryptography does not offer, so every try runs on the library's own arithmetic.
    """
    document, card = _read_on_curve(
        "aa-hash-not-announced", DomainParameterId.BRAINPOOLP320R1, path
    )
    assert document.active_auth_signature is not None
    assert len(document.active_auth_signature) == 2 * 40  # plain r || s on a 320-bit order
    result = _aa_verdict(document, card)
    assert result.status("active_authentication") is CheckStatus.PASSED, result.verdict_reason
    other = attrs.evolve(document, active_auth_challenge=bytes(8))
    assert _aa_verdict(other, card).status("active_authentication") is CheckStatus.FAILED


def test_a_quirk_card_with_an_own_curve_key_survives_save_and_load(tmp_path: object) -> None:
    """Quirks (card.json) and an AA key cryptography cannot hold (PKCS#8 by hand) together."""
    from pathlib import Path  # noqa: PLC0415 (tmp_path is a Path)

    card_profile = attrs.evolve(
        QUIRK_PROFILES["aa-ecdsa-der"].profile,
        name="aa-ecdsa-der-p224",
        active_authentication_parameter_id=DomainParameterId.BRAINPOOLP224R1,
    )
    card = issue_card(card_profile, clock=FixedClock.at(NOW), can="123456")
    directory = Path(str(tmp_path))
    save_card(card, directory)
    loaded = load_card(directory)
    assert loaded.profile == card_profile
    with serve("memory", VirtualCard(loaded, random=FixedRandom(7))) as transport:
        document = DocumentReader(transport, random=FixedRandom(8)).read(
            CAN("123456"), active_auth_challenge=CHALLENGE
        )
    assert (document.active_auth_signature or b"").startswith(b"\x30")
    assert _aa_verdict(document, card).status("active_authentication") is CheckStatus.PASSED

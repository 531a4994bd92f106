"""Passive and Active Authentication of documents from the test PKI: the forgery matrix."""

from __future__ import annotations

import datetime as dt

import pytest

from macnss_auth.errors import DocumentNotGenuine
from macnss_auth.nfc.pki import HashAlgorithm, TrustStore
from macnss_auth.nfc.verify import (
    CheckStatus,
    ChipAuthenticationOutcome,
    ChipAuthenticity,
    DocumentRejected,
    VerificationPolicy,
    inspect_document,
    trusted_chip_authentication_key,
)
from macnss_auth.testing import FixedClock
from macnss_auth.testing.pki import (
    TestDocument,
    TestPki,
    generate_key,
    make_csca,
    make_document_signer,
    make_td1_mrz,
    placeholder_jpeg,
    sign_sod,
)

from .conftest import NOW

NONCE = bytes.fromhex("0123456789abcdef")
OTHER_NONCE = bytes.fromhex("fedcba9876543210")
PASSED, FAILED, SKIPPED = CheckStatus.PASSED, CheckStatus.FAILED, CheckStatus.NOT_PERFORMED


def run(
    document: TestDocument,
    store: TrustStore,
    clock: FixedClock,
    *,
    data_groups: dict[int, bytes] | None = None,
    sod: bytes | None = None,
    nonce: bytes = NONCE,
    signed_nonce: bytes = NONCE,
    policy: VerificationPolicy | None = None,
) -> tuple[bool, dict[str, CheckStatus]]:
    result = inspect_document(
        data_groups=data_groups if data_groups is not None else dict(document.data_groups),
        sod=sod if sod is not None else document.sod,
        trust_store=store,
        clock=clock,
        policy=policy,
        aa_challenge=nonce,
        aa_signature=document.sign_active_authentication(signed_nonce),
    )
    return result.genuine, {c.name: c.status for c in result.checks}


def test_good_document(document: TestDocument, trust_store: TrustStore, clock: FixedClock) -> None:
    result = inspect_document(
        data_groups=dict(document.data_groups),
        sod=document.sod,
        trust_store=trust_store,
        clock=clock,
        aa_challenge=NONCE,
        aa_signature=document.sign_active_authentication(NONCE),
    )
    assert result.genuine, result.verdict_reason
    for name in ("sod", "sod_signature", "chain", "crl", "dg1_hash", "dg2_hash", "dg14_hash"):
        assert result.check(name).status is PASSED
    assert result.check("active_authentication").status is PASSED
    assert result.check("chip_authentication").status is SKIPPED
    assert result.verified_data_groups == frozenset({1, 2, 14, 15})
    assert result.require_genuine() is result
    as_json = result.to_dict()
    assert as_json["genuine"] is True
    assert {c["name"] for c in as_json["checks"]} >= {"sod_signature", "chain", "crl"}


def test_edited_dg1(document: TestDocument, trust_store: TrustStore, clock: FixedClock) -> None:
    groups = dict(document.data_groups)
    from macnss_auth.nfc.lds import encode_dg1  # noqa: PLC0415 (local)

    groups[1] = encode_dg1(make_td1_mrz(surname="IMPOSTOR"))
    genuine, checks = run(document, trust_store, clock, data_groups=groups)
    assert not genuine
    assert checks["dg1_hash"] is FAILED
    assert checks["sod_signature"] is PASSED


def test_swapped_dg2(
    test_pki: TestPki, document: TestDocument, trust_store: TrustStore, clock: FixedClock
) -> None:
    other = test_pki.issue_document(
        face=placeholder_jpeg(200, 260), aa_key_type=None, chip_authentication=False
    )
    groups = dict(document.data_groups)
    groups[2] = other.data_groups[2]
    genuine, checks = run(document, trust_store, clock, data_groups=groups)
    assert not genuine
    assert checks["dg2_hash"] is FAILED


def test_sod_signed_by_unknown_document_signer(
    document: TestDocument, trust_store: TrustStore, clock: FixedClock
) -> None:
    # Same names as the real CSCA and DS, but another key: only the signature tells.
    rogue_csca = make_csca(
        not_before=NOW - dt.timedelta(days=10), not_after=NOW + dt.timedelta(days=100),
        key=generate_key("ec"),
    )  # fmt: skip
    rogue_ds = make_document_signer(
        rogue_csca, not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=99),
        key=generate_key("ec"),
    )  # fmt: skip
    sod = sign_sod(dict(document.data_groups), rogue_ds, signing_time=NOW)
    genuine, checks = run(document, trust_store, clock, sod=sod)
    assert not genuine
    assert checks["sod_signature"] is PASSED  # the rogue DS did sign it
    assert checks["chain"] is FAILED


def test_revoked_document_signer(
    test_pki: TestPki, document: TestDocument, clock: FixedClock
) -> None:
    store = TrustStore()
    store.load_master_list(test_pki.master_list(), trust_as_is=True)
    store.add_crl(test_pki.crl(revoked=[test_pki.ds.certificate.serial_number]))
    genuine, checks = run(document, store, clock)
    assert not genuine
    assert checks["crl"] is FAILED
    assert checks["chain"] is FAILED


def test_expired_csca(document: TestDocument, clock: FixedClock) -> None:
    csca = make_csca(
        not_before=NOW - dt.timedelta(days=4000), not_after=NOW - dt.timedelta(days=1),
        key=generate_key("ec"),
    )  # fmt: skip
    ds = make_document_signer(
        csca, not_before=NOW - dt.timedelta(days=30), not_after=NOW + dt.timedelta(days=300),
        key=generate_key("ec"),
    )  # fmt: skip
    store = TrustStore()
    store.add_csca(csca.der)
    sod = sign_sod(dict(document.data_groups), ds, signing_time=NOW)
    genuine, checks = run(document, store, clock, sod=sod)
    assert not genuine
    assert checks["chain"] is FAILED


def test_document_signer_not_allowed_to_sign(
    test_pki: TestPki, document: TestDocument, trust_store: TrustStore, clock: FixedClock
) -> None:
    ds = make_document_signer(
        test_pki.csca, not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=9),
        key=generate_key("ec"), may_sign=False, serial=777,
    )  # fmt: skip
    sod = sign_sod(dict(document.data_groups), ds, signing_time=NOW)
    genuine, checks = run(document, trust_store, clock, sod=sod)
    assert not genuine
    assert checks["chain"] is FAILED


def test_aa_signature_over_another_nonce(
    document: TestDocument, trust_store: TrustStore, clock: FixedClock
) -> None:
    genuine, checks = run(document, trust_store, clock, signed_nonce=OTHER_NONCE)
    assert not genuine
    assert checks["active_authentication"] is FAILED


def test_aa_with_dg15_not_covered_by_the_sod(
    test_pki: TestPki, trust_store: TrustStore, clock: FixedClock
) -> None:
    # A cloner keeps the genuine SOD but brings its own DG15; here: DG15 simply uncovered.
    document = test_pki.issue_document(aa_key_type="ec", covered=[1, 2, 14])
    genuine, checks = run(document, trust_store, clock)
    assert not genuine
    assert checks["dg15_hash"] is SKIPPED
    assert checks["active_authentication"] is FAILED


def test_replaced_dg15_with_cloner_key(
    test_pki: TestPki, document: TestDocument, trust_store: TrustStore, clock: FixedClock
) -> None:
    clone = test_pki.issue_document(aa_key_type="rsa", chip_authentication=False)
    groups = dict(document.data_groups)
    groups[15] = clone.data_groups[15]
    result = inspect_document(
        data_groups=groups, sod=document.sod, trust_store=trust_store, clock=clock,
        aa_challenge=NONCE, aa_signature=clone.sign_active_authentication(NONCE),
    )  # fmt: skip
    assert not result.genuine
    assert result.check("dg15_hash").status is FAILED
    assert result.check("active_authentication").status is FAILED


@pytest.mark.parametrize("cut", [0, 1, 20, 200, -1])
def test_truncated_sod(
    document: TestDocument, trust_store: TrustStore, clock: FixedClock, cut: int
) -> None:
    genuine, checks = run(document, trust_store, clock, sod=document.sod[:cut])
    assert not genuine
    assert checks["sod"] is FAILED
    assert checks["dg1_hash"] is SKIPPED


def test_tampered_sod_signature(
    document: TestDocument, trust_store: TrustStore, clock: FixedClock
) -> None:
    sod = bytearray(document.sod)
    sod[-5] ^= 0x01  # inside the signature value, the last field of the SignerInfo
    genuine, checks = run(document, trust_store, clock, sod=bytes(sod))
    assert not genuine
    assert checks["sod_signature"] is FAILED


def test_untrusted_store(document: TestDocument, clock: FixedClock) -> None:
    genuine, checks = run(document, TrustStore(), clock)
    assert not genuine
    assert checks["chain"] is FAILED
    # Without a trusted chain, DG15's key is not trusted either.
    assert checks["active_authentication"] is FAILED


def test_clock_after_ds_expiry(document: TestDocument, trust_store: TrustStore) -> None:
    genuine, checks = run(document, trust_store, FixedClock(NOW + dt.timedelta(days=2000)))
    assert not genuine
    assert checks["chain"] is FAILED


def test_policy_without_chip_authenticity(
    document: TestDocument, trust_store: TrustStore, clock: FixedClock
) -> None:
    result = inspect_document(
        data_groups=dict(document.data_groups),
        sod=document.sod,
        trust_store=trust_store,
        clock=clock,
    )
    assert not result.genuine
    assert "Active or Chip Authentication" in result.verdict_reason
    with pytest.raises(DocumentNotGenuine) as info:
        result.require_genuine()
    assert isinstance(info.value, DocumentRejected)
    assert info.value.verification is result
    relaxed = VerificationPolicy(chip_authenticity=ChipAuthenticity.NONE)
    result = inspect_document(
        data_groups=dict(document.data_groups),
        sod=document.sod,
        trust_store=trust_store,
        clock=clock,
        policy=relaxed,
    )
    assert result.genuine


def test_policy_requires_crl(document: TestDocument, test_pki: TestPki, clock: FixedClock) -> None:
    store = TrustStore()
    store.load_master_list(test_pki.master_list(), trust_as_is=True)
    strict = VerificationPolicy(require_crl=True)
    genuine, checks = run(document, store, clock, policy=strict)
    assert checks["crl"] is SKIPPED
    assert not genuine
    genuine, _ = run(document, store, clock)
    assert genuine


def test_required_data_group_missing(
    document: TestDocument, trust_store: TrustStore, clock: FixedClock
) -> None:
    groups = {n: d for n, d in document.data_groups.items() if n != 1}
    genuine, checks = run(document, trust_store, clock, data_groups=groups)
    assert not genuine
    assert checks["dg1_hash"] is SKIPPED


def test_chip_authentication_outcome(
    document: TestDocument, trust_store: TrustStore, clock: FixedClock
) -> None:
    groups = dict(document.data_groups)
    policy = VerificationPolicy(chip_authenticity=ChipAuthenticity.CHIP_AUTHENTICATION)
    first = inspect_document(
        data_groups=groups, sod=document.sod, trust_store=trust_store, clock=clock
    )
    spki = trusted_chip_authentication_key(first, groups[14])

    def outcome(key: bytes, *, completed: bool) -> CheckStatus:
        result = inspect_document(
            data_groups=groups, sod=document.sod, trust_store=trust_store, clock=clock,
            policy=policy, chip_authentication=ChipAuthenticationOutcome(key, completed=completed),
        )  # fmt: skip
        assert result.genuine is (result.check("chip_authentication").status is PASSED)
        return result.check("chip_authentication").status

    assert outcome(spki, completed=True) is PASSED
    assert outcome(spki, completed=False) is FAILED
    assert outcome(b"\x04" + bytes(64), completed=True) is FAILED


def test_chip_authentication_key_needs_pa(document: TestDocument, clock: FixedClock) -> None:
    groups = dict(document.data_groups)
    untrusted = inspect_document(
        data_groups=groups, sod=document.sod, trust_store=TrustStore(), clock=clock
    )
    with pytest.raises(DocumentRejected):
        trusted_chip_authentication_key(untrusted, groups[14])


def test_pss_and_sha384(clock: FixedClock) -> None:
    pss = TestPki.create(now=NOW, key_type="rsa", pss=True)
    document = pss.issue_document(aa_key_type=None, hash_algorithm=HashAlgorithm.SHA384, pss=True)
    store = TrustStore()
    store.load_master_list(pss.master_list(), trust_as_is=True)
    policy = VerificationPolicy(chip_authenticity=ChipAuthenticity.NONE)
    result = inspect_document(
        data_groups=dict(document.data_groups),
        sod=document.sod,
        trust_store=store,
        clock=clock,
        policy=policy,
    )
    assert result.genuine, result.verdict_reason
    assert "rsa-pss with sha384" in result.check("sod_signature").reason


def test_card_security(test_pki: TestPki, trust_store: TrustStore, clock: FixedClock) -> None:
    from macnss_auth.nfc import securityinfos as si  # noqa: PLC0415 (local)
    from macnss_auth.nfc.verify import verify_card_security  # noqa: PLC0415 (local)
    from macnss_auth.testing.pki import sign_card_security  # noqa: PLC0415 (local)

    infos = si.encode_security_infos([si.PaceInfo(si.PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)])
    data = sign_card_security(infos, test_pki.ds, signing_time=NOW)
    result = verify_card_security(data, trust_store, clock=clock)
    assert result.trusted
    assert result.security_infos is not None
    assert result.security_infos.pace[0].parameter_id == 13
    untrusted = verify_card_security(data, TrustStore(), clock=clock)
    assert not untrusted.trusted
    assert untrusted.security_infos is None
    tampered = bytearray(data)
    tampered[data.index(infos) + len(infos) - 1] ^= 1
    broken = verify_card_security(bytes(tampered), trust_store, clock=clock)
    assert not broken.trusted
    assert verify_card_security(b"\x30\x00", trust_store, clock=clock).checks[0].status is FAILED


def test_sod_signed_outside_the_document_signer_validity(
    test_pki: TestPki, document: TestDocument, trust_store: TrustStore, clock: FixedClock
) -> None:
    # A signing time before the DS existed: a backdated (or forward-dated) SOD.
    sod = sign_sod(
        dict(document.data_groups), test_pki.ds, signing_time=NOW - dt.timedelta(days=400)
    )
    genuine, checks = run(document, trust_store, clock, sod=sod)
    assert not genuine
    assert checks["sod_signature"] is PASSED
    assert checks["chain"] is FAILED

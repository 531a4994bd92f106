"""verify_document raises for a document that is not genuine; inspect_document reports."""

from __future__ import annotations

import json

import pytest

from macnss_auth.errors import AuthenticationFailed
from macnss_auth.nfc.lds import parse_sod
from macnss_auth.nfc.pki import RevocationStatus, TrustStore
from macnss_auth.nfc.verify import (
    CheckName,
    CheckStatus,
    DocumentRejected,
    inspect_document,
    verify_document,
)
from macnss_auth.testing import FixedClock
from macnss_auth.testing.pki import TestDocument, TestPki

from .conftest import NOW

NONCE = bytes.fromhex("0123456789abcdef")


def _arguments(document: TestDocument, store: TrustStore, **changes: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "data_groups": dict(document.data_groups),
        "sod": document.sod,
        "trust_store": store,
        "clock": FixedClock(NOW),
        "aa_challenge": NONCE,
        "aa_signature": document.sign_active_authentication(NONCE),
    }
    arguments.update(changes)
    return arguments


def test_a_genuine_document_is_returned_verified(
    document: TestDocument, trust_store: TrustStore
) -> None:
    verified = verify_document(**_arguments(document, trust_store))  # type: ignore[arg-type]
    assert verified.genuine
    assert 1 in verified.verified_data_groups
    assert verified == inspect_document(**_arguments(document, trust_store))  # type: ignore[arg-type]


def test_a_forged_document_raises_with_every_check(
    document: TestDocument, trust_store: TrustStore
) -> None:
    groups = dict(document.data_groups)
    groups[1] = groups[1][:-1] + bytes([groups[1][-1] ^ 1])
    arguments = _arguments(document, trust_store, data_groups=groups)
    with pytest.raises(DocumentRejected) as caught:
        verify_document(**arguments)  # type: ignore[arg-type]
    assert isinstance(caught.value, AuthenticationFailed)
    rejected = caught.value.verification
    assert not rejected.genuine
    assert rejected.status(CheckName.data_group_hash(1)) is CheckStatus.FAILED
    # The report is the same verification, returned instead of raised.
    assert inspect_document(**arguments) == rejected  # type: ignore[arg-type]


def test_an_untrusted_signer_raises(document: TestDocument) -> None:
    with pytest.raises(DocumentRejected) as caught:
        verify_document(**_arguments(document, TrustStore()))  # type: ignore[arg-type]
    assert caught.value.verification.status(CheckName.CHAIN) is CheckStatus.FAILED


def test_the_entry_points_take_keywords_only(
    document: TestDocument, trust_store: TrustStore
) -> None:
    for entry in (verify_document, inspect_document):
        with pytest.raises(TypeError):
            entry(dict(document.data_groups), document.sod, trust_store)  # type: ignore[call-arg]


def test_document_rejected_takes_the_verification_by_keyword(
    document: TestDocument, trust_store: TrustStore
) -> None:
    report = inspect_document(**_arguments(document, trust_store))  # type: ignore[arg-type]
    assert DocumentRejected(verification=report).verification is report
    with pytest.raises(TypeError):
        DocumentRejected(report)  # type: ignore[call-arg]


def test_check_names_are_enums_that_print_and_serialize_as_before(
    document: TestDocument, trust_store: TrustStore
) -> None:
    report = inspect_document(**_arguments(document, trust_store))  # type: ignore[arg-type]
    names = [c.name for c in report.checks]
    assert names[:4] == ["sod", "sod_signature", "chain", "crl"]
    assert isinstance(report.checks[0].name, CheckName)
    assert str(CheckName.SOD) == "sod"
    assert f"{CheckName.CHAIN:<6}|" == "chain |"
    body = json.loads(json.dumps(report.to_dict()))
    assert [c["name"] for c in body["checks"]][:4] == ["sod", "sod_signature", "chain", "crl"]
    assert report.check("chain") is report.check(CheckName.CHAIN)


def test_revocation_is_an_enum(test_pki: TestPki, document: TestDocument) -> None:
    store = TrustStore()
    store.add_csca(test_pki.csca.der)
    (ds,) = parse_sod(document.sod).signed.certificates
    unknown = store.validate_document_signer(ds, at=NOW)
    assert unknown.revocation is RevocationStatus.UNKNOWN
    assert unknown.revocation.value == "unknown"  # the strings reports showed before
    store.add_crl(test_pki.crl())
    assert store.validate_document_signer(ds, at=NOW).revocation is RevocationStatus.GOOD
    revoked = TrustStore()
    revoked.add_csca(test_pki.csca.der)
    revoked.add_crl(test_pki.crl(revoked=[ds.serial_number]))
    result = revoked.validate_document_signer(ds, at=NOW)
    assert result.revocation is RevocationStatus.REVOKED
    assert not result.trusted

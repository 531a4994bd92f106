"""The BSI 2008 specimen verified end to end against real master lists."""

from __future__ import annotations

import pytest

from macnss_auth.nfc import pki
from macnss_auth.nfc.verify import CheckStatus, DocumentVerification, inspect_document
from macnss_auth.testing import FixedClock

from .conftest import NOW, VECTORS

BSI = VECTORS / "bsi2008"


@pytest.fixture(scope="module")
def result() -> DocumentVerification:
    store = pki.TrustStore()
    store.load_master_list(
        (VECTORS / "masterlists" / "NL_ML_2026-07-22.ml").read_bytes(), trust_as_is=True
    )
    groups = {n: (BSI / f"Datagroup{n}.bin").read_bytes() for n in (1, 2, 3, 4, 14, 15)}
    return inspect_document(
        data_groups=groups,
        sod=(BSI / "EF_SOD.bin").read_bytes(),
        trust_store=store,
        clock=FixedClock(NOW),
    )


def test_hashes(result: DocumentVerification) -> None:
    for number in (1, 2, 3, 14):
        assert result.check(f"dg{number}_hash").status is CheckStatus.PASSED
    for number in (4, 15):
        check = result.check(f"dg{number}_hash")
        assert check.status is CheckStatus.NOT_PERFORMED
        assert "not covered" in check.reason


def test_signature_on_a_curve_cryptography_lacks(result: DocumentVerification) -> None:
    # ECDSA-SHA1 by a brainpoolP224r1 document signer with explicit parameters.
    assert result.check("sod_signature").status is CheckStatus.PASSED


def test_chain_is_untrusted_with_a_reason(result: DocumentVerification) -> None:
    chain = result.check("chain")
    assert chain.status is CheckStatus.FAILED
    assert "CSCA BDR TEST" in chain.reason
    assert "not a trusted CSCA" in chain.reason
    assert not result.genuine
    assert result.verified_data_groups == frozenset()
    assert result.document_signer is not None
    assert "BundesDruckerei" in result.document_signer

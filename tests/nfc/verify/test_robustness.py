"""inspect_document never raises on tampered input, and tampering is never genuine."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.verify import CheckStatus, decode_bundle, encode_bundle, inspect_document
from macnss_auth.testing import FixedClock
from macnss_auth.testing.pki import TestPki
from tests.nfc.der_edits import reencoded

from .conftest import NOW

PKI = TestPki.create(now=NOW, key_type="ec")
DOCUMENT = PKI.issue_document(aa_key_type="ec")
STORE = TrustStore()
STORE.load_master_list(PKI.master_list(), trust_as_is=True)
NONCE = bytes(8)
SIGNATURE = DOCUMENT.sign_active_authentication(NONCE)
CLOCK = FixedClock(NOW)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def verify(groups: dict[int, bytes], sod: bytes, signature: bytes = SIGNATURE) -> bool:
    result = inspect_document(
        data_groups=groups,
        sod=sod,
        trust_store=STORE,
        clock=CLOCK,
        aa_challenge=NONCE,
        aa_signature=signature,
    )
    return result.genuine


def test_untouched_is_genuine() -> None:
    assert verify(dict(DOCUMENT.data_groups), DOCUMENT.sod)


@SETTINGS
@given(st.sampled_from(sorted(DOCUMENT.data_groups)), st.data())
def test_any_data_group_byte_change_is_caught(number: int, data: st.DataObject) -> None:
    groups = dict(DOCUMENT.data_groups)
    original = groups[number]
    position = data.draw(st.integers(0, len(original) - 1))
    flip = data.draw(st.integers(1, 255))
    changed = bytearray(original)
    changed[position] ^= flip
    groups[number] = bytes(changed)
    assert not verify(groups, DOCUMENT.sod)


@SETTINGS
@given(st.data())
def test_sod_mutations_never_raise(data: st.DataObject) -> None:
    sod = bytearray(DOCUMENT.sod)
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(sod) - 1))
        sod[position] ^= data.draw(st.integers(1, 255))
    result = inspect_document(
        data_groups=dict(DOCUMENT.data_groups), sod=bytes(sod), trust_store=STORE, clock=CLOCK,
        aa_challenge=NONCE, aa_signature=SIGNATURE,
    )  # fmt: skip
    if result.genuine:
        # Only bytes nobody signs and nobody reads may change (e.g. the
        # SignedData digestAlgorithms set): every check must still have passed.
        assert result.check("sod_signature").status is CheckStatus.PASSED
        assert result.check("chain").status is CheckStatus.PASSED


@SETTINGS
@given(st.binary(max_size=80))
def test_signature_garbage_is_not_genuine(signature: bytes) -> None:
    assert not verify(dict(DOCUMENT.data_groups), DOCUMENT.sod, signature)


def test_bundle_roundtrip_keeps_bytes() -> None:
    text = encode_bundle(DOCUMENT.data_groups, DOCUMENT.sod, aa_signature=SIGNATURE)
    decoded = decode_bundle(text)
    assert verify(decoded.data_groups, decoded.sod, decoded.aa_signature or b"")


RSA_PKI = TestPki.create(now=NOW, key_type="rsa")
RSA_DOCUMENT = RSA_PKI.issue_document(aa_key_type="rsa")
STORE.load_master_list(RSA_PKI.master_list(), trust_as_is=True)
DOCUMENTS = {"ec": DOCUMENT, "rsa": RSA_DOCUMENT}


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(DOCUMENTS)), data=st.data())
def test_reencoded_sods_and_data_groups_are_inspected(kind: str, data: st.DataObject) -> None:
    # The DER rebuilt around a hostile field (tests/nfc/der_edits.py): a 2 KB INTEGER in the
    # LDSSecurityObject or the SignerInfo, an odd OID, deep nesting, a duplicated element.
    document = DOCUMENTS[kind]
    groups = dict(document.data_groups)
    sod = document.sod
    target: int | None = data.draw(st.none() | st.sampled_from(sorted(groups)))
    if target is None:
        sod = data.draw(reencoded([sod]))
    else:
        groups[target] = data.draw(reencoded([groups[target]]))
    result = inspect_document(
        data_groups=groups, sod=sod, trust_store=STORE, clock=CLOCK,
        aa_challenge=NONCE, aa_signature=document.sign_active_authentication(NONCE),
    )  # fmt: skip
    if result.genuine:
        # Every data group is hashed in the SOD: a changed one is never genuine.
        assert groups == document.data_groups
        assert result.check("sod_signature").status is CheckStatus.PASSED
        assert result.check("chain").status is CheckStatus.PASSED

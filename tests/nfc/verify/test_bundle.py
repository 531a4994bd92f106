"""Upload bundles: format, limits, and the nonce binding."""

from __future__ import annotations

import base64
import json

import pytest

from macnss_auth.errors import MalformedInput
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.verify import (
    BUNDLE_FORMAT,
    BundleFormatError,
    CheckStatus,
    DocumentRejected,
    decode_bundle,
    encode_bundle,
    verify_bundle,
)
from macnss_auth.testing import FixedClock
from macnss_auth.testing.pki import TestDocument

NONCE = bytes.fromhex("a1a2a3a4a5a6a7a8")


def bundle_for(document: TestDocument, nonce: bytes = NONCE) -> str:
    return encode_bundle(
        document.data_groups,
        document.sod,
        aa_signature=document.sign_active_authentication(nonce),
        com=document.com,
    )


def test_roundtrip(document: TestDocument) -> None:
    text = bundle_for(document)
    data = json.loads(text)
    assert data["format"] == BUNDLE_FORMAT
    assert data["version"] == 1
    decoded = decode_bundle(text)
    assert decoded.data_groups == dict(document.data_groups)
    assert decoded.sod == document.sod
    assert decoded.com == document.com
    assert decode_bundle(text.encode()).sod == document.sod
    assert decode_bundle(data).sod == document.sod


def test_verify_bundle(document: TestDocument, trust_store: TrustStore, clock: FixedClock) -> None:
    result = verify_bundle(bundle_for(document), trust_store, NONCE, clock=clock)
    assert result.genuine
    assert result.check("active_authentication").status is CheckStatus.PASSED


def test_replayed_signature_fails(
    document: TestDocument, trust_store: TrustStore, clock: FixedClock
) -> None:
    text = bundle_for(document, nonce=bytes(8))
    with pytest.raises(DocumentRejected) as info:
        verify_bundle(text, trust_store, NONCE, clock=clock)
    check = info.value.verification.check("active_authentication")
    assert check.status is CheckStatus.FAILED
    result = verify_bundle(text, trust_store, NONCE, clock=clock, require_genuine=False)
    assert not result.genuine


def test_bundle_without_aa_is_not_genuine_by_default(
    document: TestDocument, trust_store: TrustStore, clock: FixedClock
) -> None:
    text = encode_bundle(document.data_groups, document.sod)
    with pytest.raises(DocumentRejected):
        verify_bundle(text, trust_store, NONCE, clock=clock)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(format="other"),
        lambda d: d.update(version=2),
        lambda d: d.update(version=True),
        lambda d: d.update(sod="not base64!"),
        lambda d: d.update(sod=5),
        lambda d: d.update(data_groups={}),
        lambda d: d.update(data_groups={"17": "AA=="}),
        lambda d: d.update(data_groups={"x": "AA=="}),
        lambda d: d.update(active_authentication="AA=="),
        lambda d: d.update(active_authentication={"signature": None}),
        lambda d: d.pop("sod"),
    ],
)
def test_malformed_bundles(document: TestDocument, mutate: object) -> None:
    data = json.loads(bundle_for(document))
    assert callable(mutate)
    mutate(data)
    with pytest.raises(BundleFormatError):
        decode_bundle(json.dumps(data))


def test_not_json_and_too_large() -> None:
    for text in ("{", "[]", "null", b"\xff\xfe"):
        with pytest.raises(MalformedInput):
            decode_bundle(text)
    huge = json.dumps(
        {"format": BUNDLE_FORMAT, "version": 1, "sod": base64.b64encode(bytes(5 << 20)).decode()}
    )
    with pytest.raises(BundleFormatError):
        decode_bundle(huge)

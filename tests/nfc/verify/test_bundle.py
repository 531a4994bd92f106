"""Upload bundles: format, limits, and the nonce binding."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macnss_auth.errors import MacnssAuthError, MalformedInput
from macnss_auth.nfc.lds import parse_sod
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


@pytest.mark.parametrize(
    "version", [10**5000, "x" * 100_000, 2.0, None], ids=["huge-int", "long-text", "float", "null"]
)
def test_an_unreadable_version_is_not_echoed(document: TestDocument, version: object) -> None:
    # A 5000-digit version made the message's repr() raise ValueError (bundles given as
    # mappings skip the JSON parser's own digit limit); a long one filled the message.
    data = json.loads(bundle_for(document))
    data["version"] = version
    with pytest.raises(BundleFormatError, match="version") as raised:
        decode_bundle(data)
    assert len(str(raised.value)) < 200


_HOSTILE: st.SearchStrategy[object] = st.sampled_from(
    [None, True, 0, -1, 2**64, 1.5, "", "AA==", "not base64!", "²", [], {}, {"1": "AA=="}]
)


@st.composite
def _edited(draw: st.DrawFn, data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``data`` with one edit, and which file's bytes changed ("sod", "1"...)."""
    edited = json.loads(json.dumps(data))
    how = draw(st.sampled_from(["file", "member", "group_key", "drop"]))
    if how == "file":
        name = draw(st.sampled_from(["sod", *(f"data_groups.{k}" for k in data["data_groups"])]))
        holder = edited["data_groups"] if name.startswith("data_groups.") else edited
        key = name.rsplit(".", 1)[-1]
        raw = bytearray(base64.b64decode(holder[key]))
        position = draw(st.integers(0, len(raw) - 1))
        if draw(st.booleans()):
            raw[position] ^= 1 << draw(st.integers(0, 7))
        else:
            raw[position:position] = b"\x84\x7f\xff\xff\xff"  # a length of about 2**31
        holder[key] = base64.b64encode(bytes(raw)).decode()
        return edited, key
    if how == "member":
        member = draw(st.sampled_from(["sod", "com", "data_groups", "active_authentication",
                                       "format", "version"]))  # fmt: skip
        edited[member] = draw(_HOSTILE)
    elif how == "group_key":
        edited["data_groups"][draw(st.sampled_from(["0", "17", "²", "01", " 1", "1.0"]))] = "AA=="
    else:
        edited["data_groups"].pop(draw(st.sampled_from(sorted(edited["data_groups"]))))
    return edited, None


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), as_text=st.booleans())
def test_edited_bundles_verify_or_are_refused(
    document: TestDocument,
    trust_store: TrustStore,
    clock: FixedClock,
    data: st.DataObject,
    as_text: bool,
) -> None:
    edited, changed = data.draw(_edited(json.loads(bundle_for(document))))
    try:
        verify_bundle(json.dumps(edited) if as_text else edited, trust_store, NONCE, clock=clock)
    except MacnssAuthError:
        return
    # Every data group is hashed in the SOD: a changed one never verifies.
    assert changed is None or not changed.isdigit(), f"an edited DG{changed} verified"
    if changed == "sod":
        # Only bytes nobody signs and nobody reads may change (the SignedData
        # digestAlgorithms set, e.g. its NULL parameters): the hashes stay the same.
        sod = base64.b64decode(edited["sod"])
        assert parse_sod(sod).hashes == parse_sod(document.sod).hashes

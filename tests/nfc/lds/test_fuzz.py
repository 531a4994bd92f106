"""Fuzzing: no input makes a parser raise anything outside the library's hierarchy.

Every example is fed to every parser, so in CI each parser sees 10,000 inputs:
about half random byte strings, half random TLV trees built from LDS tags
(one test, because hypothesis's own cost per example dominates); structure-aware
mutations (flips, cuts, splices, length edits) of valid files (the BSI 2008
specimen and files made with the test PKI) add 1,500 more, each parsed
deeply and so costlier. ``HYPOTHESIS_PROFILE=long`` raises every test to the
profile's budget (200,000 examples).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macnss_auth.errors import MacnssAuthError, MalformedInput
from macnss_auth.nfc import lds, pki
from macnss_auth.nfc.tlv import encode_tlv
from macnss_auth.nfc.verify import decode_bundle
from macnss_auth.testing.pki import TestPki, make_crl
from tests.nfc.der_edits import encode, reencoded, tree

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
_DEFAULT = settings.default.max_examples if settings.default is not None else 200
LONG = _DEFAULT > 10_000
FUZZ = settings(
    max_examples=max(10_000, _DEFAULT),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ_DEEP = settings(FUZZ, max_examples=_DEFAULT if LONG else 1_500)

PARSERS: list[Callable[[bytes], object]] = [
    lds.parse_com,
    lds.parse_dg1,
    lds.parse_dg2,
    lds.parse_dg3,
    lds.parse_dg7,
    lds.parse_dg11,
    lds.parse_dg12,
    lds.parse_dg13,
    lds.parse_dg14,
    lds.parse_dg15,
    lds.parse_dg16,
    lds.parse_sod,
    lds.parse_card_access,
    lds.parse_card_security,
    pki.parse_certificate,
    pki.parse_crl,
    pki.parse_master_list,
    pki.parse_public_key_info,
    pki.parse_signed_data,
    decode_bundle,
    lds.image_dimensions,
    lds.sniff_image_type,
]


def _seeds() -> list[bytes]:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    test_pki = TestPki.create(now=now, key_type="ec")
    document = test_pki.issue_document(aa_key_type="ec")
    bsi = VECTORS / "bsi2008"
    files = [
        (bsi / name).read_bytes()
        for name in (
            "EF_COM.bin",
            "Datagroup1.bin",
            "Datagroup14.bin",
            "Datagroup15.bin",
            "EF_SOD.bin",
        )
    ]
    files.append((VECTORS / "iso39794" / "ICAO_39794_5_AP_DG2_MandFields.dat").read_bytes())
    files += [document.com, document.sod, *document.data_groups.values()]
    files += [
        test_pki.csca.der,
        test_pki.master_list(),
        make_crl(test_pki.csca, [7], this_update=now, next_update=now + dt.timedelta(days=9)),
        lds.encode_dg11(full_name="A<<B", place_of_birth="Fès"),
        lds.encode_dg12(issuing_authority="X", date_of_issue="20200101"),
        lds.encode_dg7([b"\xff\xd8\xff\xd9"]),
    ]
    return files


SEEDS = _seeds()

# These tests allocate a lot, so the garbage collector often runs during them
# and finalizes objects left by *other* tests (pyscard connections whose
# __del__ raises). pytest would blame the unraisable exception on whichever test
# is running; the parsers here define no finalizers, so ignore it here only.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def run_all(data: bytes) -> None:
    for parser in PARSERS:
        with contextlib.suppress(MacnssAuthError):
            # What parses can be logged: its repr must not raise either.
            repr(parser(data))


LDS_TAGS = [0x60, 0x61, 0x75, 0x63, 0x67, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70, 0x77, 0x7F61,
            0x7F60, 0x7F2E, 0x5F2E, 0x5F1F, 0x5C, 0x5F01, 0x5F36, 0x02, 0xA0, 0xA1, 0x80, 0x81,
            0x5F0E, 0x5F0F, 0x5F2B, 0x5F43, 0x30, 0x31, 0x04, 0x06]  # fmt: skip


def tlv_tree(program: bytes) -> bytes:
    """Build a TLV tree (LDS tags, up to 4 levels) by reading ``program`` as instructions.

    Hypothesis draws one byte string (cheap to generate and to shrink) and this
    turns it into nested data objects: each byte opens a constructed object,
    closes one, or adds a leaf whose value is taken from the following bytes.
    """
    stack: list[tuple[int, list[bytes]]] = [(0x30, [])]
    pos = 0
    while pos < len(program):
        op = program[pos]
        pos += 1
        tag = LDS_TAGS[op % len(LDS_TAGS)]
        if op >> 6 == 0 and len(stack) < 5:
            stack.append((tag, []))
        elif op >> 6 == 1 and len(stack) > 1:
            inner_tag, parts = stack.pop()
            stack[-1][1].append(encode_tlv(inner_tag, b"".join(parts)))
        else:
            size = (op >> 3) & 0x07
            stack[-1][1].append(encode_tlv(tag, program[pos : pos + size]))
            pos += size
    while len(stack) > 1:
        inner_tag, parts = stack.pop()
        stack[-1][1].append(encode_tlv(inner_tag, b"".join(parts)))
    children = stack[0][1]
    return children[0] if len(children) == 1 else b"".join(children)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete", "length"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif kind == "length" and data:
            data[position] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF]))
    return bytes(data)


# Structure-aware edits (tests/nfc/der_edits.py): the DER is rebuilt around each edit.
def test_the_rebuilder_is_exact() -> None:
    for seed in SEEDS:
        with contextlib.suppress(MalformedInput):
            assert encode(tree(seed)) == seed


@pytest.mark.slow
@settings(FUZZ, max_examples=_DEFAULT if LONG else 300)
@given(reencoded(SEEDS))
def test_reencoded_valid_files(data: bytes) -> None:
    run_all(data)


@FUZZ
@given(st.binary(min_size=1, max_size=200))
def test_random_bytes_and_tlv_trees(data: bytes) -> None:
    # One draw serves both families: raw bytes, or a TLV tree built from them.
    run_all(data[1:] if data[0] & 1 else tlv_tree(data[1:65]))


@FUZZ_DEEP
@given(mutated())
def test_mutated_valid_files(data: bytes) -> None:
    run_all(data)


def _sod_with(*, version: int | None = None, number: int | None = None) -> bytes:
    """The BSI 2008 specimen SOD with its LDSSecurityObject's version or first DG number set."""
    from asn1crypto import cms, core  # noqa: PLC0415 (only these tests rebuild a CMS)

    from macnss_auth.nfc.lds.sod import _LdsSecurityObject  # noqa: PLC0415
    from macnss_auth.nfc.tlv import read_exact  # noqa: PLC0415

    outer = read_exact((VECTORS / "bsi2008" / "EF_SOD.bin").read_bytes(), 0x77)
    info = cms.ContentInfo.load(outer.value)
    body = _LdsSecurityObject.load(info["content"]["encap_content_info"]["content"].contents)
    if version is not None:
        body["version"] = version
    if number is not None:
        body["data_group_hash_values"][0]["data_group_number"] = number
    content = core.ParsableOctetString(body.dump(force=True))
    info["content"]["encap_content_info"]["content"] = content
    return encode_tlv(0x77, info.dump(force=True))


@pytest.mark.parametrize("field", ["version", "number"])
def test_a_sod_with_a_5000_digit_integer_is_malformed(field: str) -> None:
    # A DER INTEGER of 2 KB: putting it in the error message raised ValueError (str() of
    # an int past 4300 digits).
    huge = 10**5000
    sod = _sod_with(version=huge) if field == "version" else _sod_with(number=huge)
    with pytest.raises(lds.LdsFormatError) as raised:
        lds.parse_sod(sod)
    assert len(str(raised.value)) < 200


@pytest.mark.parametrize(
    "header",
    [b"\x84\x7f\xff\xff\xff", b"\x84\xff\xff\xff\xff", b"\x88" + b"\xff" * 8],
    ids=["2^31", "2^32", "8-byte"],
)
def test_a_lying_length_costs_no_memory(header: bytes) -> None:
    # Every parser, on every real file whose first length claims gigabytes: refused
    # without allocating what the length claims (the data is a few KB).
    import tracemalloc  # noqa: PLC0415 (only here)

    tracemalloc.start()
    try:
        for seed in SEEDS:
            first = 2 if seed[0] & 0x1F == 0x1F else 1
            length_bytes = 1 + (seed[first] & 0x7F if seed[first] & 0x80 else 0)
            run_all(seed[:first] + header + seed[first + length_bytes :])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20

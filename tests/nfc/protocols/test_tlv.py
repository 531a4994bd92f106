"""BER-TLV: known encodings, round trips, and a fuzzed parser that only raises MalformedInput."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.errors import MalformedInput
from macnss_auth.nfc.tlv import (
    MAX_DEPTH,
    Tlv,
    encode_length,
    encode_tlv,
    iter_nested,
    parse_all,
    parse_one,
    read_all,
    read_exact,
)


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, "00"),
        (0x7F, "7f"),
        (0x80, "8180"),
        (0xFF, "81ff"),
        (0x100, "820100"),
        (0x10000, "83010000"),
        (0xFFFFFFFF, "84ffffffff"),
    ],
)
def test_encode_length(n: int, encoded: str) -> None:
    assert encode_length(n) == bytes.fromhex(encoded)


def test_encode_length_refuses_out_of_range() -> None:
    with pytest.raises(MalformedInput):
        encode_length(-1)
    with pytest.raises(MalformedInput):
        encode_length(1 << 32)


def test_multibyte_tags_and_constructed_bit() -> None:
    # ICAO 9303-10: EF.COM is 60, LDS version 5F01, DG2 biometric template 7F61.
    raw = encode_tlv(0x7F61, encode_tlv(0x5F01, b"0107"))
    tlv, end = parse_one(raw)
    assert end == len(raw)
    assert tlv.tag == 0x7F61
    assert tlv.constructed
    (child,) = tlv.children()
    assert child == Tlv(0x5F01, b"0107")
    assert not child.constructed
    assert tlv.find(0x5F01) == child
    assert tlv.find(0x5F36) is None
    assert raw.hex() == "7f6107" + "5f0104" + b"0107".hex()


def test_parse_one_returns_next_offset() -> None:
    data = bytes.fromhex("8001018102aabb")
    first, offset = parse_one(data)
    second, end = parse_one(data, offset)
    assert (first.tag, first.value, offset) == (0x80, b"\x01", 3)
    assert (second.tag, second.value, end) == (0x81, b"\xaa\xbb", 7)


def test_long_form_lengths_are_read() -> None:
    value = bytes(300)
    raw = encode_tlv(0x87, value)
    assert raw[:4] == bytes.fromhex("87820 12c".replace(" ", ""))
    assert parse_all(raw) == [Tlv(0x87, value)]
    # A non-minimal long form (81 05) is valid BER and accepted.
    assert parse_all(bytes.fromhex("81810501020304 05".replace(" ", ""))) == [
        Tlv(0x81, bytes.fromhex("0102030405"))
    ]


@pytest.mark.parametrize(
    "raw",
    [
        "",  # nothing at all
        "5f",  # tag announces a second byte that is missing
        "5f81",  # continuation bit set on the last available byte
        "1f8181818101",  # tag longer than the limit
        "80",  # no length
        "8080",  # indefinite length
        "8185",  # length of length too big
        "808201",  # truncated long length
        "800301",  # value shorter than the length
        "84ffffffffff",  # 4 GiB claimed
    ],
)
def test_malformed_inputs(raw: str) -> None:
    with pytest.raises(MalformedInput):
        parse_all(bytes.fromhex(raw)) if raw else parse_one(b"")


def test_bad_tags_are_refused_when_encoding() -> None:
    for tag in (0x1F, 0x5F81, 0x5F0101, 0x8101, -1, 1 << 40):
        with pytest.raises(MalformedInput):
            encode_tlv(tag, b"")
    with pytest.raises(TypeError):
        encode_tlv(0x80, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Tlv(bool(1), b"")


def test_children_of_primitive_object_is_an_error() -> None:
    with pytest.raises(MalformedInput):
        Tlv(0x80, b"\x01").children()


def test_iter_nested_walks_depth_first_and_is_bounded() -> None:
    inner = encode_tlv(0x80, b"x")
    nested = inner
    for _ in range(3):
        nested = encode_tlv(0x30, nested)
    assert [(d, t.tag) for d, t in iter_nested(nested)] == [
        (0, 0x30),
        (1, 0x30),
        (2, 0x30),
        (3, 0x80),
    ]
    deep = inner
    for _ in range(MAX_DEPTH + 2):
        deep = encode_tlv(0x30, deep)
    with pytest.raises(MalformedInput):
        list(iter_nested(deep))


def test_repr_hides_value() -> None:
    assert "secret" not in repr(Tlv(0x80, b"secret"))


tags = st.sampled_from([0x01, 0x30, 0x5F1F, 0x7F4E, 0x7F49, 0x87, 0x1F8101])


@given(tags, st.binary(max_size=600))
def test_round_trip(tag: int, value: bytes) -> None:
    raw = encode_tlv(tag, value)
    assert parse_one(raw) == (Tlv(tag, value), len(raw))
    assert Tlv(tag, value).to_bytes() == raw


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=70))
def test_parsers_raise_only_malformed_input(data: bytes, offset: int) -> None:
    for call in (
        lambda: parse_one(data, offset),
        lambda: parse_all(data),
        lambda: list(iter_nested(data)),
        lambda: read_all(data, max_items=3),
        lambda: read_exact(data, 0x61, error=Narrow),
    ):
        with contextlib.suppress(MalformedInput):
            call()


class Narrow(MalformedInput):
    """A caller's own error type (the LDS parsers pass LdsFormatError)."""


def test_read_exact_and_read_all_raise_the_callers_error_type() -> None:
    dg1 = encode_tlv(0x61, encode_tlv(0x5F1F, b"P<UTO"))
    assert read_exact(dg1, 0x61, field="DG1").value == encode_tlv(0x5F1F, b"P<UTO")
    with pytest.raises(Narrow, match="expected tag 6B") as wrong_tag:
        read_exact(dg1, 0x6B, field="DG11", error=Narrow)
    assert wrong_tag.value.field == "DG11"
    with pytest.raises(Narrow, match="1 trailing bytes"):
        read_exact(dg1 + b"\x00", 0x61, error=Narrow)
    with pytest.raises(Narrow, match="DG1: value runs past"):
        read_exact(dg1[:-1], 0x61, field="DG1", error=Narrow)
    three = encode_tlv(0x80, b"") * 3
    assert len(read_all(three, max_items=3)) == 3
    with pytest.raises(Narrow, match="too many data objects"):
        read_all(three, max_items=2, error=Narrow)

"""APDU encoding for all seven cases, strict types, status words, fuzzed parsing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.errors import MalformedInput, RemoteProtocolError
from macnss_auth.nfc.apdu import (
    CommandAPDU,
    ResponseAPDU,
    StatusCode,
    StatusWord,
    status_meaning,
)


@pytest.mark.parametrize(
    ("apdu", "encoded"),
    [
        (CommandAPDU(0x00, 0x84, 0x00, 0x00, ne=8), "0084000008"),  # GET CHALLENGE (9303-11 D.3)
        (CommandAPDU(0x00, 0xA4, 0x02, 0x0C, data=b"\x01\x1e"), "00a4020c02011e"),
        (CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=256), "00b0000000"),
        (CommandAPDU(0x00, 0x70, 0x00, 0x00), "00700000"),
        (
            CommandAPDU(0x00, 0x82, 0x00, 0x00, data=bytes(40), ne=40),
            "0082000028" + "00" * 40 + "28",
        ),
        (CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=65536), "00b0000000" + "0000"),
        (CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=257), "00b0000000" + "0101"),
        (CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=4, extended=True), "00b0000000" + "0004"),
        (CommandAPDU(0x00, 0xDA, 0x00, 0x00, data=bytes(256)), "00da000000" + "0100" + "00" * 256),
        (
            CommandAPDU(0x00, 0x2A, 0x00, 0xBE, data=bytes(300), ne=65536),
            "002a00be00012c" + "00" * 300 + "0000",
        ),
    ],
)
def test_encoding_and_parsing(apdu: CommandAPDU, encoded: str) -> None:
    raw = bytes.fromhex(encoded)
    assert apdu.to_bytes() == raw
    parsed = CommandAPDU.from_bytes(raw)
    assert parsed.to_bytes() == raw
    assert (parsed.data, parsed.ne, parsed.header) == (apdu.data, apdu.ne, apdu.header)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "00a402",
        "00b0000000ff",
        "00a4020c0301",
        "00a4020c000003aa",
        "00b000000000",
        "00da00000000000501",
    ],
)
def test_malformed_commands(raw: str) -> None:
    with pytest.raises(MalformedInput):
        CommandAPDU.from_bytes(bytes.fromhex(raw))


def test_strict_types() -> None:
    with pytest.raises(TypeError):
        CommandAPDU("00", 0xA4, 0, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CommandAPDU(0, 0xA4, 0, 0, data="011e")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CommandAPDU(0, 0xA4, 0, 0, data=bytearray(2))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CommandAPDU(bool(1), 0xA4, 0, 0)
    with pytest.raises(ValueError, match="cla"):
        CommandAPDU(256, 0xA4, 0, 0)
    with pytest.raises(ValueError, match="ne"):
        CommandAPDU(0, 0xB0, 0, 0, ne=0)
    with pytest.raises(ValueError, match="ne"):
        CommandAPDU(0, 0xB0, 0, 0, ne=65537)
    with pytest.raises(TypeError):
        ResponseAPDU(b"", "9000")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CommandAPDU.from_bytes("00a4")  # type: ignore[arg-type]


def test_chaining_bit() -> None:
    first = CommandAPDU(0x00, 0x86, 0x00, 0x00, data=b"\x7c\x00", ne=256).with_chaining()
    assert first.cla == 0x10
    assert first.chained
    assert not first.with_chaining(chained=False).chained
    assert CommandAPDU(0x0C, 0xB0, 0, 0).secure_messaging


def test_response_and_status_words() -> None:
    response = ResponseAPDU.from_bytes(bytes.fromhex("4608f919887022129000"))
    assert response.data == bytes.fromhex("4608f91988702212")
    assert response.ok
    assert response.status.is_success
    assert response.to_bytes().hex() == "4608f919887022129000"
    response.raise_for_status()
    refused = ResponseAPDU.from_bytes(bytes.fromhex("63c2"))
    assert refused.status.remaining_tries == 2
    assert refused.status.is_warning
    with pytest.raises(RemoteProtocolError) as info:
        refused.raise_for_status("MSE:Set AT")
    assert info.value.status_word == 0x63C2
    assert "2 tries left" in str(info.value)
    assert StatusWord(0x6988).meaning == "incorrect secure messaging data objects"
    assert status_meaning(0x6110) == "16 more response bytes available"
    assert status_meaning(0x6C00) == "wrong Le; exact length is 256"
    assert StatusWord(0x1234).meaning == "unknown status"
    assert StatusWord(0x6A82).code is StatusCode.FILE_NOT_FOUND
    assert StatusWord(0x63C2).code is None
    with pytest.raises(MalformedInput):
        ResponseAPDU.from_bytes(b"\x90")


def test_reprs_hide_data() -> None:
    secret = b"\x13\x37" * 8
    assert secret.hex() not in repr(CommandAPDU(0, 0x82, 0, 0, data=secret))
    assert secret.hex() not in repr(ResponseAPDU(secret, 0x9000))


commands = st.builds(
    CommandAPDU,
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    data=st.binary(max_size=400),
    ne=st.none() | st.integers(1, 65536),
    extended=st.booleans(),
)


@given(commands)
def test_round_trip(apdu: CommandAPDU) -> None:
    parsed = CommandAPDU.from_bytes(apdu.to_bytes())
    assert (parsed.header, parsed.data, parsed.ne) == (apdu.header, apdu.data, apdu.ne)
    assert parsed.to_bytes() == apdu.to_bytes()


@given(st.binary(max_size=300))
def test_parsers_raise_only_malformed_input(raw: bytes) -> None:
    with contextlib.suppress(MalformedInput):
        CommandAPDU.from_bytes(raw)
    with contextlib.suppress(MalformedInput):
        ResponseAPDU.from_bytes(raw)


def test_the_card_and_the_terminal_share_one_status_enum() -> None:
    import importlib.util  # noqa: PLC0415

    from macnss_auth.nfc.apdu import retries_left  # noqa: PLC0415
    from macnss_auth.nfc.card import StatusCode as CardCodes  # noqa: PLC0415

    assert CardCodes is StatusCode
    # No second status-word module (its StatusWord alias named the enum like apdu's class).
    assert importlib.util.find_spec("macnss_auth.nfc.card.status") is None
    assert StatusCode.SM_DATA_OBJECTS_INCORRECT.encode() == b"\x69\x88"
    # What the card answers for a used retry counter reads back on the terminal side.
    assert StatusWord(int.from_bytes(retries_left(2), "big")).remaining_tries == 2
    assert retries_left(-1) == b"\x63\xc0"
    assert retries_left(99) == b"\x63\xcf"


def test_read_binary_switches_to_odd_ins_beyond_the_p1_p2_range() -> None:
    """ISO 7816-4 §11.2.3: B0 up to offset 7FFF, then B1 with the offset in DO'54'."""
    from macnss_auth.nfc.apdu import MAX_EVEN_OFFSET, read_binary_at  # noqa: PLC0415

    even = read_binary_at(MAX_EVEN_OFFSET, 200)
    assert (even.ins, even.p1, even.p2, even.ne, even.data) == (0xB0, 0x7F, 0xFF, 200, b"")
    odd = read_binary_at(MAX_EVEN_OFFSET + 1, 200)
    assert (odd.ins, odd.p1, odd.p2) == (0xB1, 0x00, 0x00)
    assert odd.data == bytes.fromhex("54028000")
    assert odd.ne == 204

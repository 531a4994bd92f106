"""Code normalization and constant-time comparison."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.errors import MalformedInput
from macnss_auth.otp.codes import MAX_CODE_INPUT, codes_equal, normalize_code


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("123456", "123456"),
        ("012345", "012345"),
        ("000000", "000000"),
        (" 123 456 ", "123456"),
        ("123-456", "123456"),
        ("12\u00a034\u2009 56", "123456"),
        ("123\u2013456", "123456"),
        ("\t123\n456\r", "123456"),
        ("\u0660\u0661\u0662\u0663\u0664\u0665", "012345"),
        ("\u06f9\u06f8\u06f7 \u06f6\u06f5\u06f4", "987654"),
    ],
)
def test_normalizes_separators_and_keeps_leading_zeros(typed: str, expected: str) -> None:
    assert normalize_code(typed) == expected
    assert normalize_code(typed, length=len(expected)) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "12345a",
        "123.456",
        "123_456",
        "+123456",
        "\u00b9\u00b2\u00b3456",
        "\uff11\uff12\uff13\uff14\uff15\uff16",
        "12345\u516d",
    ],
)
def test_other_characters_are_a_clear_error(typed: str) -> None:
    with pytest.raises(MalformedInput, match="only digits") as info:
        normalize_code(typed)
    assert info.value.field == "code"
    assert typed not in str(info.value)


@pytest.mark.parametrize("typed", ["", "   ", "- -"])
def test_empty_is_refused(typed: str) -> None:
    with pytest.raises(MalformedInput, match="empty"):
        normalize_code(typed)


def test_length_is_checked() -> None:
    with pytest.raises(MalformedInput, match="6 digits, not 5"):
        normalize_code("12345", length=6)
    with pytest.raises(MalformedInput, match="6 digits, not 7"):
        normalize_code("1234567", length=6)


def test_non_text_is_refused() -> None:
    for value in (123456, b"123456", None, ["1"]):
        with pytest.raises(MalformedInput, match="text"):
            normalize_code(value)


def test_overlong_input_is_refused_before_parsing() -> None:
    with pytest.raises(MalformedInput, match="too long"):
        normalize_code(" " * (MAX_CODE_INPUT + 1))


def test_codes_equal() -> None:
    assert codes_equal("012345", "012345")
    assert not codes_equal("012345", "12345")
    assert not codes_equal("012345", "012346")
    assert not codes_equal("012345", "\u0660\u0661\u0662\u0663\u0664\u0665")


@given(st.text(max_size=80))
def test_any_text_gives_digits_or_malformed_input(text: str) -> None:
    try:
        out = normalize_code(text)
    except MalformedInput as exc:
        field = exc.field
    else:
        field = "code"
        assert out
        assert out.isascii()
        assert out.isdigit()
    assert field == "code"


# At most 27 separators on each side: with 10 digits that stays within MAX_CODE_INPUT (64),
# beyond which normalize_code refuses the input on purpose.
@given(
    st.from_regex(r"[0-9]{1,10}", fullmatch=True),
    st.lists(st.sampled_from(" -"), max_size=27),
)
def test_separators_anywhere_are_ignored(digits: str, seps: list[str]) -> None:
    typed = "".join(seps) + digits + "".join(seps)
    assert normalize_code(typed, length=len(digits)) == digits

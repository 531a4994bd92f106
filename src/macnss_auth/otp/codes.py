"""Normalizing and comparing one-time codes typed by people.

People copy codes with spaces (``"123 456"``), dashes (``"123-456"``) or the
non-breaking spaces some apps insert, and phones with an Arabic keyboard type
Arabic-Indic digits. :func:`normalize_code` turns all of these into plain
ASCII digits, keeps leading zeros (a code is text, never an integer), and
refuses anything else with a clear :class:`~macnss_auth.errors.MalformedInput`
whose ``field`` is ``"code"``. :func:`codes_equal` compares two codes in
constant time.

The API is small and stable; OTP and out-of-band code strategies share it:

>>> normalize_code(" 012-345 ", length=6)
'012345'
>>> codes_equal("012345", normalize_code("012 345"))
True
"""

from __future__ import annotations

import hmac

from macnss_auth.errors import MalformedInput

__all__ = ["MAX_CODE_INPUT", "codes_equal", "normalize_code"]

#: Longest input looked at, in characters, before any other work: a bound on
#: what an attacker can make the parser do.
MAX_CODE_INPUT = 64

# Separators people type or paste between digit groups: every dash and hyphen
# (ASCII '-', U+2010..U+2015, the minus sign U+2212) plus all Unicode
# whitespace (checked with str.isspace, which covers NBSP and thin spaces).
_DASHES = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212")

# Arabic-Indic (U+0660..U+0669) and Extended Arabic-Indic (U+06F0..U+06F9)
# digits are what Arabic and Persian keyboards produce; they mean 0-9.
_DIGIT_MAP = {ord("0") + i: ord("0") + i for i in range(10)}
_DIGIT_MAP.update({0x0660 + i: ord("0") + i for i in range(10)})
_DIGIT_MAP.update({0x06F0 + i: ord("0") + i for i in range(10)})


def normalize_code(code: object, *, length: int | None = None) -> str:
    """Return ``code`` as plain ASCII digits, or raise.

    Spaces (any Unicode whitespace) and dashes are removed; Arabic-Indic
    digits become ASCII digits; leading zeros are kept. Any other character,
    including other Unicode digits such as superscripts, is refused.

    Args:
        code: what the person typed. Anything but ``str`` is refused, so a
            code that went through ``int()`` somewhere (losing its leading
            zeros) cannot slip in.
        length: the exact number of digits required, if any.

    Returns:
        The digits, e.g. ``"012345"``.

    Raises:
        MalformedInput: (``field="code"``) not text, too long, empty, a
            character that is neither a digit nor a separator, or the wrong
            number of digits. The message names the problem but never
            repeats the input.
    """
    if not isinstance(code, str):
        raise MalformedInput("the code must be text", field="code")
    if len(code) > MAX_CODE_INPUT:
        raise MalformedInput(
            f"the code is too long (more than {MAX_CODE_INPUT} characters)", field="code"
        )
    if code.isascii() and code.isdigit():
        # The common case: plain ASCII digits, nothing to strip or map.
        if length is not None and len(code) != length:
            raise MalformedInput(
                f"the code must have {length} digits, not {len(code)}", field="code"
            )
        return code
    digits: list[str] = []
    for char in code:
        mapped = _DIGIT_MAP.get(ord(char))
        if mapped is not None:
            digits.append(chr(mapped))
        elif char in _DASHES or char.isspace():
            continue
        else:
            raise MalformedInput(
                "the code may contain only digits, spaces and dashes", field="code"
            )
    if not digits:
        raise MalformedInput("the code is empty", field="code")
    if length is not None and len(digits) != length:
        raise MalformedInput(f"the code must have {length} digits, not {len(digits)}", field="code")
    return "".join(digits)


def codes_equal(expected: str, given: str) -> bool:
    """Compare two codes in constant time (for codes of the same length).

    Both are compared as UTF-8 bytes with :func:`hmac.compare_digest`, so the
    time taken does not reveal how many leading characters matched. Normalize
    the person's input with :func:`normalize_code` first.
    """
    if expected.isascii() and given.isascii():
        # compare_digest takes ASCII text as it is (as constant-time as for bytes).
        return hmac.compare_digest(expected, given)
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))

"""The codes themselves: their policy, how they are drawn, how typed input is read back.

Codes are drawn uniformly from the policy's alphabet by rejection sampling
over the injected random source (no modulo bias). What a person types is
normalized (spaces and dashes removed, Arabic-Indic digits mapped, letters
upper-cased where the alphabet has no lower case) before it is hashed and compared.
"""

from __future__ import annotations

import attrs

from macnss_auth.clock import RandomSource
from macnss_auth.errors import ConfigurationError, MalformedInput
from macnss_auth.otp.codes import MAX_CODE_INPUT, normalize_code

__all__ = [
    "DIGITS",
    "MAX_LIFETIME",
    "SAFE_ALPHANUMERIC",
    "CodePolicy",
    "generate_code",
    "normalize_oob_code",
]

DIGITS = "0123456789"
#: Upper-case letters and digits without vowels (no words, rude or otherwise)
#: and without look-alikes (0/O, 1/I/L): 28 symbols, 4.8 bits each.
SAFE_ALPHANUMERIC = "23456789BCDFGHJKMNPQRSTVWXYZ"

MAX_LIFETIME = 600.0  # NIST SP 800-63B §5.1.3.2: out-of-band secrets live 10 minutes at most.
_DASHES = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
_ARABIC_DIGITS = {0x0660 + i: ord("0") + i for i in range(10)} | {
    0x06F0 + i: ord("0") + i for i in range(10)
}


@attrs.frozen
class CodePolicy:
    """The codes themselves.

    Attributes:
        length: characters per code (4-12).
        alphabet: the characters codes are drawn from (:data:`DIGITS` or
            :data:`SAFE_ALPHANUMERIC`, or your own: at least 10 distinct
            characters, no spaces or dashes).
        lifetime: seconds a code stays valid (at most 600).
        max_attempts: wrong codes allowed before a code is burnt (1-10).
    """

    length: int = 6
    alphabet: str = DIGITS
    lifetime: float = 300.0
    max_attempts: int = 5

    def __attrs_post_init__(self) -> None:
        if not 4 <= self.length <= 12:
            raise ConfigurationError("codes must have 4 to 12 characters")
        chars = set(self.alphabet)
        if len(chars) != len(self.alphabet) or len(chars) < 10:
            raise ConfigurationError("the alphabet needs at least 10 distinct characters")
        if any(c.isspace() or c in _DASHES or not c.isprintable() for c in chars):
            raise ConfigurationError("the alphabet may not contain spaces or dashes")
        if not 0 < self.lifetime <= MAX_LIFETIME:
            raise ConfigurationError("a code lives more than 0 and at most 600 seconds")
        if not 1 <= self.max_attempts <= 10:
            raise ConfigurationError("max_attempts must be between 1 and 10")

    @property
    def numeric(self) -> bool:
        """Whether codes are plain digits."""
        return set(self.alphabet) <= set(DIGITS)


def generate_code(random: RandomSource, policy: CodePolicy) -> str:
    """A uniformly random code: rejection sampling over random bytes (no modulo bias)."""
    size = len(policy.alphabet)
    limit = 256 - 256 % size
    out: list[str] = []
    while len(out) < policy.length:
        for byte in random.token_bytes(policy.length * 2):
            if byte < limit:
                out.append(policy.alphabet[byte % size])
                if len(out) == policy.length:
                    break
    return "".join(out)


def normalize_oob_code(text: object, policy: CodePolicy) -> str:
    """Normalize what a person typed into the policy's alphabet.

    Digit codes go through :func:`macnss_auth.otp.codes.normalize_code`.
    Other alphabets get the same treatment (spaces and dashes removed,
    Arabic-Indic digits mapped) plus upper-casing when the alphabet has no
    lower-case letters.

    Raises:
        MalformedInput: (``field="code"``) not text, a character outside the
            alphabet, or the wrong length.
    """
    if policy.numeric:
        code = normalize_code(text, length=policy.length)
        if not set(code) <= set(policy.alphabet):
            raise MalformedInput("the code has a character it cannot contain", field="code")
        return code
    if not isinstance(text, str):
        raise MalformedInput("the code must be text", field="code")
    if len(text) > MAX_CODE_INPUT:
        raise MalformedInput("the code is too long", field="code")
    upper = policy.alphabet == policy.alphabet.upper()
    chars: list[str] = []
    for char in text.translate(_ARABIC_DIGITS):
        if char.isspace() or char in _DASHES:
            continue
        mapped = char.upper() if upper and char.isascii() else char
        if mapped not in policy.alphabet:
            raise MalformedInput("the code has a character it cannot contain", field="code")
        chars.append(mapped)
    if len(chars) != policy.length:
        raise MalformedInput(f"the code must have {policy.length} characters", field="code")
    return "".join(chars)

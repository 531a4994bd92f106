"""A value type for secrets: redacted repr, constant-time equality, explicit reveal.

Python cannot reliably wipe memory (strings and bytes are immutable and may be
copied by the interpreter), so :class:`Secret` does not pretend to. What it does
guarantee is that a secret never leaks through ``repr``, ``str``, f-strings,
logging, tracebacks or pickled exceptions by accident: getting the bytes out
takes a call to :meth:`Secret.reveal` that stands out in review.
"""

from __future__ import annotations

import hmac
from typing import NoReturn

from macnss_auth.errors import ConfigurationError

__all__ = ["Secret"]


class Redacted:
    """What every secret-holding value shows of itself: its type and ``<redacted>``.

    ``repr``, ``str`` and f-strings give ``Name(<redacted>)``; hashing raises,
    because a dict lookup would compare the secret in variable time. A subclass
    defines a constant-time ``__eq__`` (and refuses pickling if it should).
    """

    __slots__ = ()

    def __hash__(self) -> int:
        raise TypeError(f"{type(self).__name__} is unhashable")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"

    def __str__(self) -> str:
        return repr(self)

    def __format__(self, format_spec: str) -> str:
        return repr(self)


class Secret(Redacted):
    """Bytes that must not leak.

    >>> s = Secret(b"hunter2")
    >>> s
    Secret(<redacted>)
    >>> s.reveal()
    b'hunter2'
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes):
            raise TypeError("Secret holds bytes; encode text explicitly")
        self._value = value

    @classmethod
    def from_text(cls, text: str) -> Secret:
        """A secret from text, UTF-8 encoded.

        Raises:
            ConfigurationError: the text cannot be encoded (a lone surrogate).
        """
        try:
            return cls(text.encode("utf-8"))
        except UnicodeEncodeError:
            # from None: the codec's error holds the whole text, the secret itself.
            raise ConfigurationError("the secret text is not valid Unicode") from None

    def reveal(self) -> bytes:
        """The secret bytes. Every call site is a place where the secret is used."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    # Defining __eq__ sets __hash__ to None; keep the explicit refusal.
    __hash__ = Redacted.__hash__

    def __reduce__(self) -> NoReturn:
        raise TypeError("Secret cannot be pickled")

    def __bool__(self) -> bool:
        return bool(self._value)

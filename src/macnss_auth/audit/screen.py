"""A safety net that refuses audit events which look like they carry a secret.

The rule for strategies is simple: an audit event never holds a secret, a
one-time code, an MRZ or a full phone number. Review is the real defence; this
screen catches the common slips before they become permanent in an
append-only log (where they could never be erased). It looks at ``reason``,
``channel`` and every key and value of ``details``, and refuses:

* a detail *key* naming a secret (``code``, ``otp``, ``secret``, ``password``,
  ``pin``, ``mrz``, ``can``, ``seed``, ``key``, ``token``, ``phone``,
  ``msisdn``... as one of its ``_``/``-``/``.``-separated words);
* a value with a run of :attr:`SecretScreen.max_digits` + 1 or more digits,
  where digits separated by single spaces, hyphens, dots or parentheses count
  as one run (``123456``, ``+212 612-345-678``, ``06.12.34.56.78``). Values that
  are an IP address, an ISO 8601 date/time or a decimal number, and plain
  integers under the allowed numeric keys (``step``, ``counter``...), pass;
* a value that looks like an MRZ (contains ``<<``).

It does not look at ``subject`` (pseudonymize it with a key instead) or at
the client metadata (IP addresses and user agents are wanted there).
What it cannot catch: a secret that does not look like one (a base32 TOTP
seed under an innocent key, a password). Masking stays the caller's job.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
from collections.abc import Mapping

import attrs

from macnss_auth.audit.errors import AuditEventRejected
from macnss_auth.audit.events import AuditEvent

__all__ = ["DEFAULT_SCREEN", "SecretScreen"]

_SECRET_WORDS = frozenset(
    {
        "code",
        "codes",
        "otp",
        "totp",
        "hotp",
        "secret",
        "password",
        "passcode",
        "passphrase",
        "pin",
        "puk",
        "mrz",
        "can",
        "seed",
        "key",
        "token",
        "phone",
        "msisdn",
        "mobile",
    }
)
# Digits joined by one separator count as one run: "06 12 34 56 78" is ten digits.
_DIGIT_RUN = re.compile(r"\d(?:[ \u00a0\-.()/]?\d)*")
_INTEGER = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?\d+\.\d+")
_WORD_SPLIT = re.compile(r"[_\-.\s]+")


@functools.lru_cache(maxsize=1024)
def _key_words(key: str) -> frozenset[str]:
    """The words of a detail key (a handful of distinct keys recur in every event)."""
    return frozenset(word for word in _WORD_SPLIT.split(key.lower()) if word)


def _is_exempt_value(value: str) -> bool:
    """IP addresses, ISO dates/times and decimals are facts, not codes."""
    if _DECIMAL.fullmatch(value):
        return True
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return True
    if len(value) >= 10 and value[4:5] == "-":
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    return False


@attrs.frozen
class SecretScreen:
    """Which events an audit log refuses. See the module docstring.

    Attributes:
        max_digits: the longest run of digits allowed in a value (5: a 6-digit
            code is refused, a 3-digit status or a 4-digit year is not).
        numeric_keys: detail keys whose value may be a long plain integer
            (a TOTP time step, an HOTP counter, a card status word).
        secret_words: words that may not appear in a detail key.
    """

    max_digits: int = 5
    numeric_keys: frozenset[str] = frozenset(
        {"step", "time_step", "counter", "status_word", "sequence", "elapsed_ms"}
    )
    secret_words: frozenset[str] = _SECRET_WORDS

    def check_value(self, field: str, value: str, *, numeric_ok: bool = False) -> None:
        """Refuse ``value`` if it looks like a code, a phone number or an MRZ.

        Raises:
            AuditEventRejected: naming ``field``, never the value.
        """
        if not isinstance(value, str):
            raise AuditEventRejected("must be text", field=field)
        if "<<" in value:
            raise AuditEventRejected("looks like an MRZ", field=field)
        # Fast paths (every verification records a few short numbers): too short to hold
        # a code, or a plain integer where one is expected.
        if len(value) <= self.max_digits or (numeric_ok and _INTEGER.fullmatch(value)):
            return
        longest = max(
            (sum(ch.isdigit() for ch in run.group()) for run in _DIGIT_RUN.finditer(value)),
            default=0,
        )
        if longest <= self.max_digits:
            return
        if _is_exempt_value(value):
            return
        raise AuditEventRejected(
            f"has a run of {longest} digits: looks like a code or a phone number "
            "(mask it, e.g. +212 6** *** *12)",
            field=field,
        )

    def check_details(self, details: Mapping[str, str]) -> None:
        """Refuse secret-sounding keys and secret-looking values.

        Raises:
            AuditEventRejected: naming the key, never the value.
        """
        for key, value in details.items():
            # Callers may be untyped: check at run time what the annotations promise.
            unchecked: object = key
            if not isinstance(unchecked, str) or not key:
                raise AuditEventRejected("detail keys must be non-empty text", field="details")
            field = f"details.{key}"
            if _key_words(key) & self.secret_words:
                raise AuditEventRejected(
                    "key names a secret; audit events never carry secrets", field=field
                )
            self.check_value(field, value, numeric_ok=key in self.numeric_keys)

    def check(self, event: AuditEvent) -> None:
        """Refuse ``event`` if any screened field looks secret.

        Raises:
            AuditEventRejected: naming the field.
        """
        for name in ("reason", "channel"):
            value = getattr(event, name)
            if value is not None:
                self.check_value(name, value)
        self.check_details(event.details)


DEFAULT_SCREEN = SecretScreen()
"""The screen every audit log uses unless told otherwise."""

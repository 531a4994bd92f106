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

What the library itself writes always passes, whatever ``max_digits``:
counts and durations under their keys (``retry_after``, ``duration``,
``attempts``...: a lockout of a day is six digits), a masked destination
under ``hint`` (``+212 6•• ••• •78``, ``a•••@smtp1234567.ma``: the shape of
:func:`~macnss_auth.otp.contacts.mask_phone` and
:func:`~macnss_auth.otp.contacts.mask_email`, with at most three national
digits shown; an unmasked number under ``hint`` is still refused), the
document signer's certificate name, and the key ids and store names of
``macnss-auth keys`` (``primary``, ``previous``, ``retired``, ``resealed``).
A refusal of the library's own event would come after the state it records
had changed (a lockout set, a send counted, a key rotated), so these are
accepted by rule, not by luck.

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
_MASK = "\u2022"  # the bullet of macnss_auth.otp.contacts.MASK
# mask_email: the first character of the local part (or nothing), the mask, the domain.
_EMAIL_HINT = re.compile(rf"(?:[^\s@]?{_MASK}{{3}}@[^\s@<]+|{_MASK}{{3}})")
# mask_national: "+<country code> " then the national number, grouped by three.
_PHONE_HINT = re.compile(rf"\+\d{{1,4}} ([\d{_MASK}]{{1,3}}(?: [\d{_MASK}]{{1,3}})*)")
_HINT_DIGITS = 3  # the first and the last two national digits
# The library's own keys, accepted whatever a screen is configured with: a
# refusal would come after the state the event records had changed.
_LIBRARY_NUMERIC_KEYS = frozenset(
    {
        "step",
        "counter",
        "status_word",
        "retry_after",
        "duration",
        "attempts",
        "remaining",
        "count",
        "bits",
        "segments",
        "digits",
        "period",
        "length",
        "skipped",
        "drift",
    }
)
_HINT_KEYS = frozenset({"hint"})
# A certificate's name (DS subject): serial numbers in it are public facts.
_CERTIFICATE_KEYS = frozenset({"document_signer"})
# `macnss-auth keys`: key ids (stored in the clear next to every sealed record) and
# store names with counts (a path may hold a date; a URL's password is masked first).
# They are recorded after the ring changed, so a refusal would lose the record.
_NAME_KEYS = frozenset({"primary", "previous", "retired", "resealed"})
# How values under a detail key are screened.
_PLAIN, _NUMERIC, _HINT, _CERTIFICATE = range(4)
_KEY_CACHE_SIZE = 1024


def _is_masked_hint(value: str) -> bool:
    """True for a destination masked the way :mod:`macnss_auth.otp.contacts` masks it."""
    if _EMAIL_HINT.fullmatch(value):
        return True
    phone = _PHONE_HINT.fullmatch(value)
    if phone is None:
        return False
    national = phone.group(1)
    return _MASK in national and sum(ch.isdigit() for ch in national) <= _HINT_DIGITS


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
            (a TOTP time step, an HOTP counter, a card status word). The
            counts and durations the library records (``retry_after``,
            ``duration``...) are always allowed besides these. Only a plain
            integer passes there: a phone number written with ``+`` or
            separators is still refused.
        secret_words: words that may not appear in a detail key.
    """

    max_digits: int = 5
    numeric_keys: frozenset[str] = frozenset(
        {"step", "time_step", "counter", "status_word", "sequence", "elapsed_ms"}
    )
    secret_words: frozenset[str] = _SECRET_WORDS
    # How each detail key is screened, derived from the fields above; not part of equality.
    _kinds: dict[object, int] = attrs.field(
        factory=dict, init=False, repr=False, eq=False, hash=False
    )

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

    def _key_kind(self, key: object) -> int:
        """How values under ``key`` are screened (cached: a handful of keys recur in every event).

        Raises:
            AuditEventRejected: the key is not text or names a secret.
        """
        kind = self._kinds.get(key)
        if kind is not None:
            return kind
        if not isinstance(key, str) or not key:
            raise AuditEventRejected("detail keys must be non-empty text", field="details")
        if _key_words(key) & self.secret_words:
            raise AuditEventRejected(
                "key names a secret; audit events never carry secrets", field=f"details.{key}"
            )
        if key in _HINT_KEYS:
            kind = _HINT
        elif key in _CERTIFICATE_KEYS or key in _NAME_KEYS:
            kind = _CERTIFICATE
        elif key in self.numeric_keys or key in _LIBRARY_NUMERIC_KEYS:
            kind = _NUMERIC
        else:
            kind = _PLAIN
        # Keys come from code, not from people: few and fixed. The bound is for safety only.
        # Only ASCII keys are cached: passes_quickly() takes a cached key for valid text.
        if len(self._kinds) < _KEY_CACHE_SIZE and type(key) is str and key.isascii():
            self._kinds[key] = kind
        return kind

    def check_details(self, details: Mapping[str, str]) -> None:
        """Refuse secret-sounding keys and secret-looking values.

        Raises:
            AuditEventRejected: naming the key, never the value.
        """
        short = self.max_digits
        for key, value in details.items():
            kind = self._key_kind(key)
            # Fast paths (every verification records a few): text too short to hold a code,
            # or a plain non-negative integer under a numeric key.
            if type(value) is str and "<<" not in value:
                if len(value) <= short:
                    continue
                if kind == _NUMERIC and value.isascii() and value.isdigit():
                    continue
                if kind == _HINT and _is_masked_hint(value):
                    continue
                if kind == _CERTIFICATE:
                    continue
            self.check_value(f"details.{key}", value, numeric_ok=kind == _NUMERIC)

    def passes_quickly(self, event: AuditEvent) -> bool:
        """True only if ``event`` certainly passes :meth:`check` and its details are ASCII text.

        The common event of a verification (no reason or channel; a drift, a time step)
        is decided here in one pass; ``False`` means "run :meth:`check`", not "refused".
        """
        if event.reason is not None or event.channel is not None:
            return False
        kinds = self._kinds
        short = self.max_digits
        for key, value in event.details.items():
            kind = kinds.get(key)  # cached keys are ASCII text that names no secret
            if kind is None or type(value) is not str or not value.isascii() or "<<" in value:
                return False
            if len(value) <= short or (kind == _NUMERIC and value.isdigit()):
                continue
            return False
        return True

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

"""The TOTP/HOTP decision as pure functions: which candidate counter a code matches.

:func:`match_totp` and :func:`match_hotp` take everything they need as
keyword arguments (the secret, the parameters, the code, the time or the
counter) and return a frozen record, or None when no candidate matches. They
read no clock and touch no store: the authenticators
(:class:`~macnss_auth.otp.totp.TotpAuthenticator`,
:class:`~macnss_auth.otp.hotp.HotpAuthenticator`) are the shell that reads
the counter, counts the attempt, and makes a match count with the store's
atomic ``advance``. A match is therefore not yet an acceptance.

Codes are computed here with one-shot :func:`hmac.digest` (RFC 4226 §5.3:
HMAC, dynamic truncation, zero-padded decimal): per candidate that is about a
third of what pyotp's ``generate_otp`` costs (an ``hmac.new`` object, a
base32 decode, a byte-by-byte counter). pyotp stays the reference: the tests
compare both on random secrets, counters, lengths and algorithms. Codes are
compared with the candidates nearest first, as strings in constant time, so
leading zeros matter and timing says nothing about how close a wrong guess
was: a wrong code always costs every candidate.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
from collections.abc import Mapping, Sequence
from typing import Final, Protocol

import attrs

from macnss_auth.errors import ConfigurationError, MalformedInput
from macnss_auth.otp.codes import codes_equal, normalize_code
from macnss_auth.otp.enrollment import OtpAlgorithm, OtpParameters
from macnss_auth.secret import Secret

__all__ = [
    "MAX_DIGITS",
    "MIN_DIGITS",
    "REPLAY_LOOK_BEHIND",
    "CodeMatch",
    "HotpMatch",
    "TotpMatch",
    "find_counter",
    "match_hotp",
    "match_totp",
    "match_totp_digits",
    "normalize_otp_code",
    "otp_codes",
    "time_step",
    "totp_offsets",
]

#: Counters just behind the expected one whose codes are reported as replayed.
REPLAY_LOOK_BEHIND = 3
# Every length an enrollment may have (OtpParameters accepts 6 to 8 digits).
MIN_DIGITS = 6
MAX_DIGITS = 8

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


# hmac.digest takes the hash's name; OpenSSL then runs the whole HMAC in C.
_HASH_NAMES: Final = {
    OtpAlgorithm.SHA1: "sha1",
    OtpAlgorithm.SHA256: "sha256",
    OtpAlgorithm.SHA512: "sha512",
}


def _code_of(key: bytes, counter: int, name: str, modulus: int, digits: int) -> str:
    """RFC 4226 §5.3: HMAC of the 8-byte counter, dynamic truncation, ``digits`` digits."""
    mac = hmac.digest(key, counter.to_bytes(8, "big"), name)
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % modulus).zfill(digits)


def otp_codes(secret: Secret, parameters: OtpParameters, counters: Sequence[int]) -> list[str]:
    """The codes of ``counters`` (RFC 4226 §5.3), in order.

    Raises:
        ConfigurationError: a counter outside 0 to 2**64 - 1.
    """
    key, name = secret.reveal(), _HASH_NAMES[parameters.algorithm]
    digits = parameters.digits
    modulus = 10**digits
    _check_counters(counters)
    return [_code_of(key, counter, name, modulus, digits) for counter in counters]


def _check_counters(counters: Sequence[int]) -> None:
    # The counter is an 8-byte unsigned integer (RFC 4226 §5.2).
    if counters and (min(counters) < 0 or max(counters) >= 1 << 64):
        raise ConfigurationError("an OTP counter must be 0 to 2**64 - 1")


class CodeMatch(Protocol):
    """What the authenticator shell needs from a match, whatever the method."""

    @property
    def advance_to(self) -> int:
        """What ``Store.advance`` must accept for the match to count."""
        ...

    @property
    def replayed(self) -> bool:
        """The code belongs to a counter already passed: refuse it without a store write."""
        ...

    def details(self) -> Mapping[str, str]:
        """Non-secret facts for the result and the audit record."""
        ...


@attrs.frozen
class HotpMatch:
    """An HOTP code that equals the code of ``counter``.

    Attributes:
        counter: the matched counter.
        skipped: counters passed over between the expected one and ``counter``
            (0 for the expected one); None for a replayed code.
        replayed: ``counter`` is just behind the expected one: the code was
            already used (or lost a race) and must never be accepted.
    """

    counter: int
    skipped: int | None
    replayed: bool = False

    @property
    def advance_to(self) -> int:
        """The next counter once this one is used."""
        return self.counter + 1

    def details(self) -> Mapping[str, str]:
        """``counter`` (and ``skipped``, if not replayed) as the result reports them."""
        if self.skipped is None:
            return {"counter": str(self.counter)}
        return {"counter": str(self.counter), "skipped": str(self.skipped)}


@attrs.frozen
class TotpMatch:
    """A TOTP code that equals the code of time step ``step``.

    Attributes:
        step: the matched time step (RFC 6238 §4.2).
        drift: ``step`` minus the current step (positive: the phone is ahead).
    """

    step: int
    drift: int

    @property
    def advance_to(self) -> int:
        """The step itself: a later code must have a higher step."""
        return self.step

    @property
    def replayed(self) -> bool:
        """Never: a TOTP replay is the store refusing ``advance_to``."""
        return False

    def details(self) -> Mapping[str, str]:
        """``step`` and ``drift`` as the result reports them."""
        return {"step": str(self.step), "drift": str(self.drift)}


def time_step(now: dt.datetime, period: int) -> int:
    """RFC 6238 §4.2: ``floor((now - T0) / period)`` with ``T0`` the Unix epoch.

    Exact integer arithmetic on an aware datetime.
    """
    return (now - _EPOCH) // dt.timedelta(seconds=period)


def normalize_otp_code(code: object) -> str:
    """Digits of any length an enrollment may have (6 to 8), else MalformedInput.

    The length is *not* checked against the subject's enrollment: a code of
    the wrong length fails as a wrong code (InvalidCode), for enrolled and
    unknown subjects alike, or the error type would tell an 8-digit
    enrollment from no enrollment.

    Not cached: the argument is whatever the client sent (a list is not
    hashable), and a cache of recent codes is a store of secrets.

    Raises:
        MalformedInput: (``field="code"``) not 6 to 8 digits after normalization.
    """
    digits = normalize_code(code)
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise MalformedInput(
            f"the code must have {MIN_DIGITS} to {MAX_DIGITS} digits", field="code"
        )
    return digits


def find_counter(
    *, secret: Secret, parameters: OtpParameters, code: str, counters: Sequence[int]
) -> int | None:
    """The index of the first counter in ``counters`` whose code equals ``code``.

    Each comparison is constant-time; the search stops at the first match.
    That reveals only *which* candidate matched, to someone who already
    knows the code was right; a wrong code always costs every candidate.
    """
    key, name = secret.reveal(), _HASH_NAMES[parameters.algorithm]
    digits = parameters.digits
    modulus = 10**digits
    _check_counters(counters)
    for index, counter in enumerate(counters):
        if codes_equal(_code_of(key, counter, name, modulus, digits), code):
            return index
    return None


def totp_offsets(window: int) -> tuple[int, ...]:
    """Step offsets within ``window`` of now, nearest first: 0, -1, +1, -2, +2..."""
    if window < 0:
        raise ConfigurationError("the TOTP window must not be negative")
    return _offsets(int(window))


@functools.lru_cache(maxsize=32)
def _offsets(window: int) -> tuple[int, ...]:
    # Windows are a few small integers, the same on every verification.
    return tuple(sorted(range(-window, window + 1), key=lambda o: (abs(o), o)))


def match_totp(
    *,
    secret: Secret,
    parameters: OtpParameters,
    code: object,
    at: dt.datetime,
    window: int,
) -> TotpMatch | None:
    """The time step within ``window`` steps of ``at`` whose code is ``code``, nearest first.

    Args:
        secret: the shared secret.
        parameters: algorithm, digits and period.
        code: what the person typed (normalized here: spaces, dashes, Arabic-Indic digits).
        at: the server's time (from a trusted clock, never the client's).
        window: steps accepted on either side of the current one.

    Returns:
        The match, or None if no step in the window has this code. Whether
        the step was already used is the caller's store's decision.

    Raises:
        MalformedInput: the code is not 6 to 8 digits.
        ConfigurationError: a negative window.
    """
    return match_totp_digits(
        secret=secret, parameters=parameters, digits=normalize_otp_code(code), at=at, window=window
    )


def match_totp_digits(
    *,
    secret: Secret,
    parameters: OtpParameters,
    digits: str,
    at: dt.datetime,
    window: int,
) -> TotpMatch | None:
    """:func:`match_totp` for a code already through :func:`normalize_otp_code`.

    For the authenticator, which normalizes first (to audit a malformed code)
    and need not do it twice.

    Raises:
        ConfigurationError: a negative window.
    """
    # find_counter's loop, inlined with the parameters' constants computed once:
    # this runs on every TOTP verification.
    name, modulus, length, step_span = _totp_constants(parameters)
    current = (at - _EPOCH) // step_span
    offsets = totp_offsets(window)
    if current + window >= 1 << 64:
        raise ConfigurationError("an OTP counter must be 0 to 2**64 - 1")
    key = secret.reveal()
    for offset in offsets:
        step = current + offset
        if step >= 0 and codes_equal(_code_of(key, step, name, modulus, length), digits):
            return TotpMatch(step=step, drift=offset)
    return None


@functools.lru_cache(maxsize=32)
def _totp_constants(parameters: OtpParameters) -> tuple[str, int, int, dt.timedelta]:
    # A service has a handful of parameter sets (frozen, hashable): derive each once.
    digits = parameters.digits
    return (
        _HASH_NAMES[parameters.algorithm],
        10**digits,
        digits,
        dt.timedelta(seconds=parameters.period),
    )


def match_hotp(
    *,
    secret: Secret,
    parameters: OtpParameters,
    code: object,
    counter: int,
    look_ahead: int,
    look_behind: int = REPLAY_LOOK_BEHIND,
) -> HotpMatch | None:
    """The counter from ``counter`` to ``counter + look_ahead`` whose code is ``code``.

    If none matches, the ``look_behind`` counters just before ``counter`` are
    searched too: a code of one of them was just used (or lost a race), and
    is returned as ``replayed`` so that it is reported as such and never accepted.

    Args:
        secret: the shared secret.
        parameters: algorithm and digits.
        code: what the person typed (normalized here).
        counter: the next counter expected (RFC 4226 §7.2).
        look_ahead: counters checked beyond ``counter`` (RFC 4226 §7.4).
        look_behind: counters before ``counter`` reported as replayed.

    Returns:
        The match, or None if no counter in either range has this code.

    Raises:
        MalformedInput: the code is not 6 to 8 digits.
    """
    digits = normalize_otp_code(code)
    ahead = range(counter, counter + look_ahead + 1)
    index = find_counter(secret=secret, parameters=parameters, code=digits, counters=ahead)
    if index is not None:
        return HotpMatch(counter=ahead[index], skipped=index)
    behind = range(max(counter - look_behind, 0), counter)
    index = find_counter(secret=secret, parameters=parameters, code=digits, counters=behind)
    if index is None:
        return None
    return HotpMatch(counter=behind[index], skipped=None, replayed=True)

"""HOTP (RFC 4226) authenticator: counter-based codes from an app or a hardware token.

The candidates are the next counter and a bounded look-ahead (RFC 4226 §7.4),
matched by the pure :func:`~macnss_auth.otp.matching.match_hotp`; a code of
one of the few counters just behind is reported as replayed. A match counts
once the store's atomic ``advance`` moves the counter past it. Two
consecutive codes further ahead resynchronize a token that ran ahead
(:meth:`HotpAuthenticator.resync`).

The enrollment, confirmation, throttling, audit and replay machinery is
shared with TOTP and recovery codes: see :mod:`macnss_auth.otp.code_flow`
and :mod:`macnss_auth.otp.otp_flow` (both bases are re-exported here, where
they used to live).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from macnss_auth.audit.events import AuditAction, AuditLog
from macnss_auth.authenticator import AuthResult, ClientContext
from macnss_auth.challenges import subject_of
from macnss_auth.errors import ConfigurationError, InvalidCode, TokenReplayed
from macnss_auth.otp.code_flow import CodeAuthenticatorBase
from macnss_auth.otp.codes import codes_equal
from macnss_auth.otp.enrollment import OtpParameters, Provisioning
from macnss_auth.otp.matching import (
    REPLAY_LOOK_BEHIND,
    HotpMatch,
    match_hotp,
    normalize_otp_code,
    otp_codes,
)
from macnss_auth.otp.otp_flow import BaseOtpAuthenticator, OtpSettings, _EnrollOptions
from macnss_auth.store.base import Enrollment, Store

if TYPE_CHECKING:
    # Only for the type checker (PEP 692 on Python 3.10): nothing imports it at run time.
    from typing_extensions import Unpack

__all__ = [
    "DEFAULT_LOOK_AHEAD",
    "DEFAULT_RESYNC_WINDOW",
    "MAX_LOOK_AHEAD",
    "MAX_RESYNC_WINDOW",
    "REPLAY_LOOK_BEHIND",
    "BaseOtpAuthenticator",
    "CodeAuthenticatorBase",
    "HotpAuthenticator",
]

#: Counters checked beyond the expected one at each verification (RFC 4226 §7.4).
DEFAULT_LOOK_AHEAD = 10
#: Upper bound of the look-ahead: each extra counter multiplies a guesser's odds.
MAX_LOOK_AHEAD = 50
#: Counters searched by :meth:`HotpAuthenticator.resync` (two consecutive codes).
DEFAULT_RESYNC_WINDOW = 100
#: Upper bound of the resynchronization window.
MAX_RESYNC_WINDOW = 1000


class HotpAuthenticator(BaseOtpAuthenticator):
    """Counter-based one-time codes (RFC 4226) from an authenticator app or token.

    >>> from macnss_auth.audit import MemoryAuditLog
    >>> from macnss_auth.store import MemoryStore
    >>> from macnss_auth.testing import FixedClock
    >>> hotp = HotpAuthenticator(store=MemoryStore(), audit=MemoryAuditLog(),
    ...                          clock=FixedClock.at(0))
    >>> p = hotp.enroll("alice", secret=b"12345678901234567890")
    >>> hotp.confirm("alice", "755224").details["counter"]   # RFC 4226 Appendix D
    '0'
    >>> hotp.verify_code("alice", "359152").details["counter"]  # counter 1 skipped
    '2'

    Args (besides the shared collaborators, all keyword-only):
        look_ahead: counters checked beyond the expected one (default 10, at
            most :data:`MAX_LOOK_AHEAD`).
        resync_window: counters searched by :meth:`resync` (default 100, at
            most :data:`MAX_RESYNC_WINDOW`).
    """

    _method = "hotp"

    def __init__(
        self,
        *,
        store: Store,
        audit: AuditLog,
        look_ahead: int = DEFAULT_LOOK_AHEAD,
        resync_window: int = DEFAULT_RESYNC_WINDOW,
        **settings: Unpack[OtpSettings],
    ) -> None:
        if not 0 <= look_ahead <= MAX_LOOK_AHEAD:
            raise ConfigurationError(f"look_ahead must be 0 to {MAX_LOOK_AHEAD}")
        if not look_ahead <= resync_window <= MAX_RESYNC_WINDOW:
            raise ConfigurationError(f"resync_window must be look_ahead to {MAX_RESYNC_WINDOW}")
        super().__init__(store=store, audit=audit, **settings)
        self.look_ahead = look_ahead
        self.resync_window = resync_window

    def enroll(
        self, subject: str, *, counter: int = 0, **options: Unpack[_EnrollOptions]
    ) -> Provisioning:
        """Create a pending HOTP enrollment: :meth:`BaseOtpAuthenticator.enroll`, plus ``counter``.

        Args:
            counter: the token's next counter (for migrated hardware tokens).

        Raises:
            ConfigurationError: a negative counter, a bad secret or a colon in
                the account name.
            MalformedInput: ``secret`` is text but not base32.
        """
        if counter < 0:
            raise ConfigurationError("the HOTP counter must be non-negative")
        return self._enroll(subject, counter=counter, **options)

    def counter(self, subject: str) -> int | None:
        """The next counter expected from ``subject``'s token, or None if not enrolled."""
        enrollment = self._store.get_enrollment(subject, self._method)
        if enrollment is None:
            return None
        return self._next_counter(enrollment)

    def _next_counter(self, enrollment: Enrollment) -> int:
        stored = self._store.current(self._counter_key(str(enrollment.params["generation"])))
        return stored if stored is not None else int(enrollment.params["counter"])

    def _match(
        self, enrollment: Enrollment, params: OtpParameters, digits: str, now: dt.datetime
    ) -> HotpMatch | None:
        return match_hotp(
            secret=enrollment.secret,
            parameters=params,
            code=digits,
            counter=self._next_counter(enrollment),
            look_ahead=self.look_ahead,
        )

    def resync(
        self,
        subject: str,
        first: str,
        second: str,
        *,
        context: ClientContext | None = None,
    ) -> AuthResult:
        """Resynchronize a token that ran ahead, with two consecutive codes (RFC 4226 §7.4).

        Searches ``resync_window`` counters past the expected one for ``first``
        immediately followed by ``second``, and moves the counter past both.
        Counts as one throttled attempt; audited as ``resync``.

        Raises:
            InvalidCode: no such pair in the window (or not enrolled).
            TokenReplayed: another verification moved the counter meanwhile.
            VerificationThrottled: wait ``retry_after`` seconds (``LockedOut`` when locked).
            MalformedInput: a code has characters other than digits, spaces and dashes.
        """
        subject = subject_of(subject)
        now = self._clock.now()
        action = AuditAction.RESYNC
        enrollment = self._store.get_enrollment(subject, self._method)
        params = self._parameters_of(enrollment) if enrollment else self._parameters
        # One commit for the counted attempt, the counter and the record (see code_flow).
        with self._grouped():
            with self._malformed_audited(subject, context, now, action):
                codes = [normalize_otp_code(c) for c in (first, second)]
            trial = self._acquire(subject, context, now, action)
            target = enrollment if enrollment is not None else self._dummy(params)
            # The dummy's counter is read too: unknown subjects cost the same store calls.
            base = self._next_counter(target)
            window = otp_codes(target.secret, params, range(base, base + self.resync_window + 2))
            found: int | None = None
            for index in range(self.resync_window + 1):
                pair = codes_equal(window[index], codes[0]) & codes_equal(
                    window[index + 1], codes[1]
                )
                if pair and found is None:
                    found = index
            if enrollment is None or found is None:
                raise self._failed(InvalidCode, trial, challenge_id=None)
            key = self._counter_key(str(enrollment.params["generation"]))
            if not self._store.advance(key, base + found + 2):
                raise self._failed(TokenReplayed, trial, challenge_id=None)
            self._throttle.release(subject, context)
            return self._succeeded(
                trial, HotpMatch(counter=base + found + 1, skipped=found).details()
            )

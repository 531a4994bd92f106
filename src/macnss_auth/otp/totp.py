"""TOTP (RFC 6238) authenticator: authenticator-app codes from the current time.

The time step is ``T = floor((now - T0) / period)`` with ``T0`` the Unix epoch
and ``now`` from the injected, trusted clock (never a time sent by the
client). A code is accepted for any step within ``window`` steps of ``T``
(default ±1: a code stays usable for about 30 s after it leaves the screen,
and phones a little out of sync still work), and only if its step is *above*
the last accepted one: the store's atomic ``advance`` refuses a step at or
below it with :class:`~macnss_auth.errors.TokenReplayed`, so a code works once,
whatever the number of threads, processes or service instances.

Drift. Each success records how many steps the phone's clock was off
(``matched step - T``). It is reported in ``AuthResult.details["drift"]`` and
by :meth:`TotpAuthenticator.drift`, so operators can spot phones whose clock
is wrong before they fall out of the window. The window itself never moves:
RFC 6238 §6 allows following the drift, but a window that follows an
attacker-influenced value is a window that can be dragged.

The decision itself is the pure :func:`~macnss_auth.otp.matching.match_totp`;
the enrollment, confirmation, throttling, audit and replay machinery is
shared with HOTP: see :mod:`macnss_auth.otp.otp_flow`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from macnss_auth.audit.events import AuditLog
from macnss_auth.errors import ConfigurationError
from macnss_auth.otp.enrollment import OtpParameters
from macnss_auth.otp.matching import CodeMatch, TotpMatch, match_totp_digits, time_step
from macnss_auth.otp.otp_flow import BaseOtpAuthenticator, OtpSettings
from macnss_auth.store.base import Enrollment, Store

if TYPE_CHECKING:
    # Only for the type checker (PEP 692 on Python 3.10): nothing imports it at run time.
    from typing_extensions import Unpack

__all__ = ["DEFAULT_WINDOW", "MAX_WINDOW", "TotpAuthenticator", "time_step"]

#: Steps accepted on either side of the current one.
DEFAULT_WINDOW = 1
#: Upper bound of the window (±10 steps is ±5 minutes at 30 s).
MAX_WINDOW = 10

# The drift record packs (step, drift) into one monotonic integer; see _accepted.
_DRIFT_SPAN = 2 * MAX_WINDOW + 1


class TotpAuthenticator(BaseOtpAuthenticator):
    """Time-based one-time codes (RFC 6238) from an authenticator app.

    >>> from macnss_auth.audit import MemoryAuditLog
    >>> from macnss_auth.store import MemoryStore
    >>> from macnss_auth.testing import FixedClock
    >>> totp = TotpAuthenticator(store=MemoryStore(), audit=MemoryAuditLog(),
    ...                          clock=FixedClock.at(59))
    >>> _ = totp.enroll("alice", secret=b"12345678901234567890")
    >>> totp.confirm("alice", "287082").details["step"]   # RFC 6238 Appendix B, 6 digits
    '1'

    Collaborators and settings are keyword-only: ``store``, ``audit`` (an
    :class:`~macnss_auth.audit.AuditLog`), ``clock``, ``random``,
    ``throttle_policy``, ``issuer`` (the name apps display), ``parameters``
    (algorithm, digits, period of new enrollments), ``challenge_ttl``,
    ``pending_ttl`` (how long an unconfirmed enrollment lives),
    ``challenge_attempts`` (wrong codes before a challenge burns) and
    ``window`` (steps accepted either side of now; default 1, at most
    :data:`MAX_WINDOW`).
    """

    _method = "totp"

    def __init__(
        self,
        *,
        store: Store,
        audit: AuditLog,
        window: int = DEFAULT_WINDOW,
        **settings: Unpack[OtpSettings],
    ) -> None:
        if not 0 <= window <= MAX_WINDOW:
            raise ConfigurationError(f"the TOTP window must be 0 to {MAX_WINDOW} steps")
        super().__init__(store=store, audit=audit, **settings)
        self.window = window

    def drift(self, subject: str) -> int | None:
        """Steps the phone's clock was off at the last success (positive: ahead).

        None if ``subject`` has no confirmed enrollment or never verified.
        """
        enrollment = self._store.get_enrollment(subject, self._method)
        if enrollment is None:
            return None
        packed = self._store.current(self._drift_key(enrollment))
        if packed is None:
            return None
        return packed % _DRIFT_SPAN - MAX_WINDOW

    def _drift_key(self, enrollment: Enrollment) -> str:
        return self._counter_key(str(enrollment.params["generation"])) + ":drift"

    def _match(
        self, enrollment: Enrollment, params: OtpParameters, digits: str, now: dt.datetime
    ) -> TotpMatch | None:
        return match_totp_digits(
            secret=enrollment.secret, parameters=params, digits=digits, at=now, window=self.window
        )

    def _accepted(self, enrollment: Enrollment, match: CodeMatch, now: dt.datetime) -> None:
        # Steps only grow, so packing (step, drift) into step * span + offset
        # keeps the latest success on top. The record is advisory (the replay
        # guard is the separate step counter), so it is written only when the
        # drift changed: a read is cheap, a durable write is not. Two racing
        # successes with different drifts may leave either one recorded.
        if not isinstance(match, TotpMatch):  # pragma: no cover (_match returns only these)
            raise TypeError("a TOTP authenticator accepts only TOTP matches")
        key = self._drift_key(enrollment)
        packed = self._store.current(key)
        if packed is None or packed % _DRIFT_SPAN - MAX_WINDOW != match.drift:
            self._store.advance(key, match.step * _DRIFT_SPAN + match.drift + MAX_WINDOW)

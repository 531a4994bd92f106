"""Signed-out sessions: a session ends on the server, not only in the browser.

The login page's session is an assertion the service issued for itself (its
``aud`` is the ``iss``), kept in an HttpOnly cookie; the same token also
authorizes the enrollment API as a bearer token. Deleting the cookie on sign
out would leave whoever copied the token a valid session until it expires,
so signing out also records the token's ``jti`` as revoked in the store that
every instance of the service shares, and every route that accepts a session
refuses a revoked one exactly as it refuses an expired one.

A revocation is a challenge record (the :class:`~macnss_auth.store.Store`
API, so memory, SQLite, PostgreSQL and Redis all hold it alike) with the id
``revoked-session:<jti>``, its own slot, no attempt allowed and already
consumed (so no authenticator could ever accept it as a challenge), expiring
when the token does (plus a minute of clock difference between instances):
``purge`` then deletes it, and the revocations never outgrow the sessions of
the last ``enrollment_max_age`` seconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from macnss_auth.audit.events import AuditAction, AuditLog, Outcome, record_event
from macnss_auth.authenticator import Challenge, ClientContext
from macnss_auth.clock import Clock
from macnss_auth.errors import StoreError
from macnss_auth.store.base import ChallengeRecord, Store

__all__ = ["REVOCATION_MARGIN", "SessionRevocations"]

_PREFIX = "revoked-session:"
_METHOD = "session"
#: Seconds a revocation outlives its token: instances' clocks differ a little.
REVOCATION_MARGIN = 60.0
_MARGIN = dt.timedelta(seconds=REVOCATION_MARGIN)


def _jti(claims: Mapping[str, Any]) -> str:
    # verify_assertion requires jti; ours are base64url text (AssertionIssuer.issue).
    return str(claims["jti"])


class SessionRevocations:
    """Revoked session ids, in the shared store.

    Args:
        store: the store every instance of the service shares.
        clock: the trusted time.
        audit: where sign-outs are recorded (none: not recorded).
    """

    def __init__(self, *, store: Store, clock: Clock, audit: AuditLog | None = None) -> None:
        self._store = store
        self._clock = clock
        self._audit = audit

    def __repr__(self) -> str:
        return f"SessionRevocations(store={self._store!r})"

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Whether the session of ``claims`` (a verified token's) was signed out.

        Raises:
            StoreError: the store could not be read (the caller refuses the session).
        """
        return self._store.get_challenge(_PREFIX + _jti(claims)) is not None

    def revoke(
        self, claims: Mapping[str, Any], *, context: ClientContext | None, ended: str
    ) -> None:
        """End the session of ``claims`` on every instance; audit it.

        Revoking a revoked session again changes nothing (and is not audited twice).

        Args:
            claims: a verified token's claims.
            context: the client that asked.
            ended: why, for the audit trail: ``"sign_out"`` or ``"new_login"``.

        Raises:
            StoreError: the revocation could not be stored.
        """
        now = self._clock.now()
        expires = dt.datetime.fromtimestamp(claims["exp"], dt.timezone.utc) + _MARGIN
        identifier = _PREFIX + _jti(claims)
        record = ChallengeRecord(
            challenge=Challenge(
                id=identifier,
                subject=str(claims["sub"]),
                method=_METHOD,
                created_at=now,
                expires_at=max(expires, now + _MARGIN),
            ),
            slot=identifier,  # its own: creating it retires no login's challenge
            max_attempts=0,
            consumed=True,
        )
        try:
            self._store.create_challenge(record)
        except StoreError:
            # Signed out twice (two tabs, a double click): the first one stands.
            if self._store.get_challenge(identifier) is None:
                raise
            return
        if self._audit is not None:
            record_event(
                self._audit,
                at=now,
                action=AuditAction.REVOKE,
                method=_METHOD,
                outcome=Outcome.SUCCESS,
                subject=str(claims["sub"]),
                client=context,
                details={
                    "ended": ended,
                    "issued_at": _iso(claims["iat"]),
                    "expires_at": _iso(claims["exp"]),
                },
            )


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat()

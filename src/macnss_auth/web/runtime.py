"""What every route shares: the policy, the token issuer, the thread pool, the proxies.

The library is synchronous (a store write, an scrypt check, a document
verification block their thread). The server is not: every library call
runs in a worker thread through :func:`anyio.to_thread.run_sync` under one
:class:`anyio.CapacityLimiter`, so the event loop only parses requests and
writes responses, and at most ``max_threads`` library calls run at once
(the others wait their turn without holding a thread).
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.requests import HTTPConnection

from macnss_auth.audit.events import AuditLog
from macnss_auth.authenticator import AssuranceLevel, ClientContext
from macnss_auth.clock import Clock, SystemClock
from macnss_auth.errors import ConfigurationError, MacnssAuthError
from macnss_auth.policy import Policy
from macnss_auth.secret import Secret
from macnss_auth.store.base import Store
from macnss_auth.web.context import TrustedProxies, client_context
from macnss_auth.web.problems import ProblemError, WebReason
from macnss_auth.web.sessions import REVOCATION_MARGIN, SessionRevocations
from macnss_auth.web.tokens import ACR_VALUES, AssertionIssuer, InvalidAssertion

__all__ = ["Runtime"]

T = TypeVar("T")
_LEVELS = {uri: level for level, uri in ACR_VALUES.items()}


class Runtime:
    """The shared state of one app (see :func:`macnss_auth.web.create_app`)."""

    def __init__(
        self,
        *,
        policy: Policy,
        assertions: AssertionIssuer,
        trusted_proxies: Iterable[str],
        enrollment_key: Secret | None,
        enrollment_max_age: float,
        max_threads: int,
        clock: Clock | None,
        return_urls: Mapping[str, str] | None = None,
        enrollment_min_assurance: AssuranceLevel = AssuranceLevel.LOW,
        store: Store | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        if max_threads < 1:
            raise ConfigurationError("max_threads must be at least 1")
        if enrollment_key is not None and len(enrollment_key) < 32:
            raise ConfigurationError("the enrollment key must be at least 32 bytes")
        self.policy = policy
        self.assertions = assertions
        self.proxies = TrustedProxies(trusted_proxies)
        self.enrollment_key = enrollment_key
        self.enrollment_max_age = enrollment_max_age
        self.enrollment_min_assurance = enrollment_min_assurance
        self.max_threads = max_threads
        self.clock = clock or SystemClock()
        self.sessions = SessionRevocations(
            store=store if store is not None else policy.store, clock=self.clock, audit=audit
        )
        self.return_urls: Mapping[str, str] = dict(return_urls or {})
        for audience, url in self.return_urls.items():
            if audience not in assertions.audiences or not _return_url_ok(url):
                raise ConfigurationError(
                    "each return URL needs a configured audience and an https URL"
                    " (http only on localhost) without spaces, quotes, commas or semicolons"
                )
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        # Created lazily: a limiter belongs to the event loop that first uses it.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_threads)
        return self._limiter

    async def run(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking library call in the bounded thread pool."""
        call = functools.partial(function, *args, **kwargs)
        return await anyio.to_thread.run_sync(call, limiter=self.limiter)

    def context(self, connection: HTTPConnection) -> ClientContext:
        """The request's client."""
        return client_context(connection, self.proxies)

    def is_https(self, connection: HTTPConnection) -> bool:
        """Whether the browser reached the service over TLS (so cookies get ``Secure``).

        Behind a proxy that terminates TLS the app itself speaks plain HTTP: then
        a trusted proxy's ``X-Forwarded-Proto`` says what the browser used.
        """
        if connection.url.scheme in ("https", "wss"):
            return True
        peer = connection.client.host if connection.client is not None else None
        if not self.proxies.trusts(peer):
            return False
        proto = connection.headers.get("x-forwarded-proto", "")
        return proto.partition(",")[0].strip().lower() == "https"

    def cookie_name(self, name: str, connection: HTTPConnection) -> str:
        """``name``, prefixed ``__Host-`` over TLS.

        Browsers take a ``__Host-`` cookie only from this very host (Secure,
        no Domain, Path=/), so a sibling subdomain cannot plant a CSRF token
        or a session of its choosing (cookie tossing) in the person's browser.
        """
        return f"__Host-{name}" if self.is_https(connection) else name

    def authorize_enrollment(self, authorization: str | None, subject: str) -> str:
        """Who may enroll ``subject``: the service key, or a fresh assertion for ``subject``.

        An assertion must have been issued by this service for its own
        audience (its ``iss``), for this subject, at most
        ``enrollment_max_age`` seconds after the authentication, by a login
        of at least ``enrollment_min_assurance``, and not signed out. It
        reads the store (sign-outs): call it through :meth:`run`.

        Returns:
            ``"service"`` or ``"subject"``: who authorized it (for the audit trail).

        Raises:
            ProblemError: ``unauthorized`` (no or bad credentials, an expired
                or signed-out session) or ``forbidden`` (an assertion for
                someone else, too old, or too weak).
            StoreError: the sign-outs could not be read.
        """
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not credential:
            raise ProblemError(WebReason.UNAUTHORIZED)
        if self.enrollment_key is not None and hmac.compare_digest(
            credential.encode(), self.enrollment_key.reveal()
        ):
            return "service"
        claims = self._own_assertion(credential.strip())
        if not hmac.compare_digest(str(claims["sub"]).encode(), subject.encode()):
            raise ProblemError(WebReason.FORBIDDEN)
        self._check_fresh(claims)
        return "subject"

    def session_subject(self, token: str) -> str:
        """The subject of a login page session (or an assertion for this service) that may
        still enroll: checked as :meth:`authorize_enrollment` checks it. Reads the store.

        Raises:
            ProblemError: ``unauthorized`` or ``forbidden``, as :meth:`authorize_enrollment`.
            StoreError: the sign-outs could not be read.
        """
        claims = self._own_assertion(token.strip())
        self._check_fresh(claims)
        return str(claims["sub"])

    def sign_out(self, token: str, context: ClientContext | None, *, ended: str) -> bool:
        """End the session ``token`` on every instance sharing the store (see
        :mod:`macnss_auth.web.sessions`); False if it was no live session of this service.

        Raises:
            StoreError: the sign-out could not be stored.
        """
        try:
            # With the revocation's margin: an instance whose clock runs behind may still
            # take a token this one just saw expire.
            claims = self.assertions.verify(
                token.strip(), audience=self.assertions.issuer, leeway=REVOCATION_MARGIN
            )
        except InvalidAssertion:
            return False  # forged, long expired or someone else's: nothing to end
        self.sessions.revoke(claims, context=context, ended=ended)
        return True

    def _own_assertion(self, token: str) -> dict[str, Any]:
        """A live assertion for this service itself, or ``unauthorized``.

        A signed-out session is refused exactly like an expired one; a store
        that cannot say raises (a 503: the session is not believed either).
        """
        try:
            claims = self.assertions.verify(token, audience=self.assertions.issuer)
        except MacnssAuthError:
            raise ProblemError(WebReason.UNAUTHORIZED) from None
        if self.sessions.is_revoked(claims):
            raise ProblemError(WebReason.UNAUTHORIZED)
        return claims

    def _check_fresh(self, claims: Mapping[str, Any]) -> None:
        age = self.clock.now() - dt.datetime.fromtimestamp(claims["auth_time"], dt.timezone.utc)
        if age.total_seconds() > self.enrollment_max_age:
            raise ProblemError(WebReason.FORBIDDEN)
        if _LEVELS.get(str(claims["acr"]), AssuranceLevel.LOW) < self.enrollment_min_assurance:
            raise ProblemError(WebReason.FORBIDDEN)


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _return_url_ok(url: str) -> bool:
    """An URL the assertion (a bearer token) may be posted to, and that CSP can quote.

    The page's ``form-action`` lists the URL as is: a space or a semicolon
    would add sources or directives to the policy.
    """
    if not url.isascii() or any(c.isspace() or c in ";,'\"" for c in url):
        return False
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False
    if not host or parts.username is not None or parts.password is not None:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK_HOSTS)

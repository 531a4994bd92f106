"""The phone's endpoints: a WebSocket, and an HTTP fallback that batches round trips.

The protocol lives in :mod:`macnss_auth.nfc.phone` (sans-I/O); this module only
moves its messages. :class:`PhoneGateway` is the synchronous shell around it
(a registry of live sessions, one lock per session, the final call to the
policy); :func:`phone_routes` is the router to pass to
:func:`macnss_auth.web.create_app` as ``extra_routers=[phone_routes()]``:

* ``GET /v1/phone/ws`` (WebSocket): one JSON message per text frame, both
  ways. The first message is ``hello`` (a new session on a challenge) or
  ``resume`` (a lost connection). The server closes after ``result`` or
  ``error``. A silent phone is timed out at the session's deadline.
* ``POST /v1/phone/batch`` (HTTP): ``{"messages": [...]}`` in, ``{"session":
  ..., "messages": [...]}`` out. The first batch starts with ``hello``; later
  batches carry the headers ``X-Phone-Session`` and ``Authorization: Bearer
  <token>`` (the ``token`` of ``welcome``). A phone sends every message it can
  in one batch (``hello`` + ``upload`` in split mode).

Every library call runs in the app's bounded thread pool: the event loop only
reads and writes frames.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import threading
from collections.abc import Callable

import anyio
import attrs
from fastapi import APIRouter, Request, WebSocket
from starlette.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect

from macnss_auth.authenticator import ClientContext
from macnss_auth.errors import AuthenticationFailed, MacnssAuthError
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.phone import (
    ErrorMessage,
    Hello,
    PhoneFailure,
    PhoneLimits,
    PhoneSession,
    PhoneSessionFailed,
    ResultMessage,
    Resume,
    decode_message,
    encode_message,
)
from macnss_auth.policy import Policy
from macnss_auth.web.problems import ProblemError, WebReason
from macnss_auth.web.runtime import Runtime
from macnss_auth.web.tokens import AssertionIssuer

__all__ = ["PhoneExchange", "PhoneGateway", "phone_routes"]

#: Seconds a new connection may stay silent before its first message.
_FIRST_MESSAGE_SECONDS = 30.0
#: Failures after which the challenge stays usable (the phone retries in relay mode).
_KEEP_CHALLENGE = frozenset({PhoneFailure.RELAY_REQUIRED, PhoneFailure.CHALLENGE_IN_USE})


@attrs.define
class _Entry:
    session: PhoneSession
    lock: threading.Lock = attrs.field(factory=threading.Lock)


@attrs.frozen
class PhoneExchange:
    """What one call to :meth:`PhoneGateway.exchange` gives back."""

    session: str | None
    replies: tuple[str, ...]
    closed: bool


class PhoneGateway:
    """Live phone sessions and the final verdict; synchronous and thread-safe.

    Args:
        policy: the policy whose ``method`` is an :class:`EidAuthenticator`.
        assertions: signs the assertion sent in ``result``.
        method: the eID method's name in the policy.
        limits: the bounds of every session.
        max_sessions: live sessions at most (expired ones are swept first).
    """

    def __init__(
        self,
        *,
        policy: Policy,
        assertions: AssertionIssuer,
        method: str = "eid",
        limits: PhoneLimits | None = None,
        max_sessions: int = 1_000,
    ) -> None:
        self._policy = policy
        self._assertions = assertions
        self._method = method
        self.limits = limits or PhoneLimits()
        self._max = max_sessions
        self._lock = threading.Lock()
        self._sessions: dict[str, _Entry] = {}
        self._by_challenge: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"PhoneGateway(sessions={len(self._sessions)})"

    def _eid(self) -> EidAuthenticator:
        authenticator = self._policy.authenticator(self._method)
        if not isinstance(authenticator, EidAuthenticator):
            raise ProblemError(WebReason.METHOD_NOT_OFFERED)
        return authenticator

    def seconds_left(self, session_id: str | None) -> float:
        """How long the server waits for the phone's next message."""
        entry = self._sessions.get(session_id or "")
        return entry.session.seconds_left() if entry else _FIRST_MESSAGE_SECONDS

    def authorized(self, session_id: str, token: bytes) -> bool:
        """Whether ``token`` is the resumption token of live session ``session_id``."""
        entry = self._sessions.get(session_id)
        return entry is not None and entry.session.check_token(token)

    def exchange(
        self, session_id: str | None, messages: list[str], context: ClientContext | None
    ) -> PhoneExchange:
        """Feed the phone's messages in order; return the replies and whether it is over."""
        # Abandoned sessions are burnt without this request's client: it is not theirs.
        self.sweep()
        replies: list[str] = []
        for raw in messages:
            if session_id is None:
                try:
                    session_id = self._open(raw)
                except PhoneSessionFailed as exc:
                    replies.append(encode_message(ErrorMessage(exc.failure, str(exc))))
                    return PhoneExchange(None, tuple(replies), closed=True)
            entry = self._sessions.get(session_id)
            if entry is None:
                replies.append(encode_message(ErrorMessage(PhoneFailure.SESSION_CLOSED)))
                return PhoneExchange(session_id, tuple(replies), closed=True)
            with entry.lock:
                closed = self._feed(entry, raw, replies, context)
            if closed:
                return PhoneExchange(session_id, tuple(replies), closed=True)
        return PhoneExchange(session_id, tuple(replies), closed=False)

    def expire(self, session_id: str | None, context: ClientContext | None) -> PhoneExchange:
        """The phone said nothing in time: fail the session (``timeout``) and finish it."""
        entry = self._sessions.get(session_id or "")
        if entry is None:
            message = ErrorMessage(PhoneFailure.TIMEOUT, "no message in time")
            return PhoneExchange(session_id, (encode_message(message),), closed=True)
        replies: list[str] = []
        with entry.lock:
            try:
                entry.session.check_deadline()
            except PhoneSessionFailed as exc:
                self._finish_failed(entry, exc, replies, context)
                return PhoneExchange(session_id, tuple(replies), closed=True)
        return PhoneExchange(session_id, (), closed=False)

    def sweep(self, context: ClientContext | None = None) -> None:
        """Fail and burn every session past its deadline (abandoned phones)."""
        for entry in list(self._sessions.values()):
            if entry.session.seconds_left() > 0 or not entry.lock.acquire(blocking=False):
                continue
            try:
                entry.session.check_deadline()
            except PhoneSessionFailed as exc:
                self._finish_failed(entry, exc, [], context)
            finally:
                entry.lock.release()

    # -- machinery -----------------------------------------------------------------

    def _open(self, raw: str) -> str:
        """A new session for ``hello``, or the live one ``resume`` names."""
        first = decode_message(raw, limits=self.limits)
        if isinstance(first, Resume):
            entry = self._sessions.get(first.session)
            # A wrong token is refused here, on this connection only: whoever guessed a
            # session id cannot end the real phone's session.
            if entry is None or not entry.session.check_token(first.token):
                raise PhoneSessionFailed(PhoneFailure.SESSION_CLOSED, "no such session")
            return first.session
        if not isinstance(first, Hello):
            raise PhoneSessionFailed(PhoneFailure.UNEXPECTED_MESSAGE, "start with hello")
        with self._lock:
            if first.challenge in self._by_challenge:
                raise PhoneSessionFailed(PhoneFailure.CHALLENGE_IN_USE)
            if len(self._sessions) >= self._max:
                raise PhoneSessionFailed(PhoneFailure.SESSION_CLOSED, "too many sessions")
            try:
                session = self._eid().phone_session(first.challenge, limits=self.limits)
            except AuthenticationFailed as exc:
                raise PhoneSessionFailed(PhoneFailure.CHALLENGE_UNUSABLE, str(exc)) from exc
            self._sessions[session.id] = _Entry(session)
            self._by_challenge[first.challenge] = session.id
        return session.id

    def _forget(self, entry: _Entry) -> None:
        with self._lock:
            self._sessions.pop(entry.session.id, None)
            self._by_challenge.pop(entry.session.challenge_id, None)

    def _feed(
        self, entry: _Entry, raw: str, replies: list[str], context: ClientContext | None
    ) -> bool:
        session = entry.session
        try:
            replies.extend(session.receive(raw))
        except PhoneSessionFailed as exc:
            self._finish_failed(entry, exc, replies, context)
            return True
        if not session.finished:
            return False
        self._forget(entry)
        try:
            result = self._policy.verify(session.challenge_id, session, context=context)
        except AuthenticationFailed as exc:
            verdict = ResultMessage(authenticated=False, reason=exc.reason.value)
        else:
            verdict = ResultMessage(
                authenticated=True,
                assurance=result.assurance.eidas,
                proof=result.details.get("proof", ""),
                assertion=self._assertions.issue(result),
            )
        replies.append(encode_message(verdict))
        return True

    def _finish_failed(
        self,
        entry: _Entry,
        exc: PhoneSessionFailed,
        replies: list[str],
        context: ClientContext | None,
    ) -> None:
        self._forget(entry)
        if exc.failure not in _KEEP_CHALLENGE:
            # Burn the challenge and audit the failure: nothing usable is left behind.
            with contextlib.suppress(MacnssAuthError):
                self._policy.verify(entry.session.challenge_id, entry.session, context=context)
        replies.append(encode_message(ErrorMessage(exc.failure, str(exc))))


def _bearer(header: str | None) -> bytes | None:
    if header is None or not header.startswith("Bearer "):
        return None
    text = header[len("Bearer ") :].strip()
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def phone_routes(
    *,
    method: str = "eid",
    limits: PhoneLimits | None = None,
    max_sessions: int = 1_000,
    prefix: str = "/v1/phone",
    gateway: Callable[[Runtime], PhoneGateway] | None = None,
) -> APIRouter:
    """The phone's WebSocket and HTTP endpoints, for ``create_app(extra_routers=[...])``.

    The app's runtime (policy, assertion issuer, thread pool) is found on the
    first request; one :class:`PhoneGateway` serves the app.
    """
    router = APIRouter(prefix=prefix, tags=["phone"])
    made: list[PhoneGateway] = []
    made_lock = threading.Lock()

    def gateway_of(runtime: Runtime) -> PhoneGateway:
        with made_lock:
            if not made:
                made.append(
                    gateway(runtime)
                    if gateway is not None
                    else PhoneGateway(
                        policy=runtime.policy,
                        assertions=runtime.assertions,
                        method=method,
                        limits=limits,
                        max_sessions=max_sessions,
                    )
                )
            return made[0]

    @router.websocket("/ws")
    async def phone_socket(websocket: WebSocket) -> None:
        runtime: Runtime = websocket.app.state.runtime
        shell = gateway_of(runtime)
        context = runtime.context(websocket)
        await websocket.accept()
        session_id: str | None = None
        try:
            while True:
                raw: str | None = None
                with anyio.move_on_after(max(shell.seconds_left(session_id), 0.001)):
                    frame = await websocket.receive()
                    if frame["type"] == "websocket.disconnect":
                        return  # the session stays for a ``resume`` until its deadline
                    raw = frame.get("text")
                    if raw is None:
                        raw = "\x00"  # a binary frame: malformed, refused by the decoder
                if raw is None:
                    outcome = await runtime.run(shell.expire, session_id, context)
                else:
                    outcome = await runtime.run(shell.exchange, session_id, [raw], context)
                session_id = outcome.session or session_id
                for reply in outcome.replies:
                    await websocket.send_text(reply)
                if outcome.closed:
                    await websocket.close()
                    return
        except WebSocketDisconnect:
            return

    @router.post("/batch")
    async def phone_batch(request: Request) -> JSONResponse:
        """Several phone messages in one round trip (the WebSocket's fallback)."""
        runtime: Runtime = request.app.state.runtime
        shell = gateway_of(runtime)
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):  # a hostile nesting depth is bad input too
            raise ProblemError(WebReason.INVALID_REQUEST, errors=["body"]) from None
        items = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(items, list) or not 0 < len(items) <= shell.limits.max_steps + 2:
            raise ProblemError(WebReason.INVALID_REQUEST, errors=["body.messages"])
        session_id = request.headers.get("x-phone-session")
        if session_id is not None:
            token = _bearer(request.headers.get("authorization"))
            if token is None or not shell.authorized(session_id, token):
                raise ProblemError(WebReason.UNAUTHORIZED, status=401)
        raw = [json.dumps(item, separators=(",", ":")) for item in items]
        outcome = await runtime.run(shell.exchange, session_id, raw, runtime.context(request))
        return JSONResponse(
            {
                "session": outcome.session,
                "closed": outcome.closed,
                "messages": [json.loads(reply) for reply in outcome.replies],
            }
        )

    return router

"""The ASGI application factory.

FastAPI (on Starlette) was chosen because it is the well-kept standard for
typed Python HTTP services: request and response bodies are typed models
from which the OpenAPI document is generated (so the document cannot drift
from the code), Starlette underneath gives WebSockets for the phone relay,
server-rendered templates for the login page, and plain ASGI for uvicorn or
any other server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from macnss_auth._version import __version__
from macnss_auth.audit.events import AuditLog
from macnss_auth.authenticator import AssuranceLevel
from macnss_auth.clock import Clock
from macnss_auth.errors import MacnssAuthError
from macnss_auth.policy import Policy
from macnss_auth.secret import Secret
from macnss_auth.store.base import Store
from macnss_auth.web.api import api_router
from macnss_auth.web.problems import MEDIA_TYPE, ProblemError, WebReason, problem_response
from macnss_auth.web.runtime import Runtime
from macnss_auth.web.tokens import AssertionIssuer

__all__ = ["create_app"]

_DEFAULT_MAX_BODY = 512 * 1024
_DEFAULT_MAX_HEADER_BYTES = 32 * 1024
_MAX_HEADER_COUNT = 100


def _too_large() -> ProblemError:
    return ProblemError(
        WebReason.INVALID_REQUEST, errors=["body"], status=413, title="The request is too large"
    )


class _BodyLimit:
    """Refuses request bodies over ``limit`` bytes (413 problem) before a route reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            # Past 18 digits int() nears its digit limit (a ValueError, so a 500): too large anyway.
            if (
                name == b"content-length"
                and value.isdigit()
                and (len(value) > 18 or int(value) > self.limit)
            ):
                await self._refuse(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _too_large()
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await problem_response(_too_large())(scope, receive, send)


class _HeaderLimit:
    """Refuses requests whose headers pass ``limit`` bytes or 100 fields (431 problem).

    h11 stops at 16 KiB of headers, but uvicorn prefers httptools when it is
    installed, which takes megabytes (measured: a 20 MB header was served); a
    route would then parse a bearer token or cookies of that size.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = scope.get("headers", [])
            size = sum(len(name) + len(value) for name, value in headers)
            if size > self.limit or len(headers) > _MAX_HEADER_COUNT:
                if scope["type"] == "websocket":
                    # Closing before accepting makes the server answer the handshake with 403.
                    await send({"type": "websocket.close", "code": 1009})
                    return
                refused = ProblemError(
                    WebReason.INVALID_REQUEST,
                    errors=["headers"],
                    status=431,
                    title="The request's headers are too large",
                )
                await problem_response(refused)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _DefaultHeaders:
    """Adds ``Cache-Control: no-store`` and ``nosniff`` to responses that set neither.

    API bodies carry assertions, TOTP keys and QR codes, recovery codes and
    phone session tokens: no browser or shared cache may keep them (as RFC
    6749 §5.1 asks of token responses). Routes that may be cached (the JWKS,
    static files) say so themselves.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_defaults(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_defaults)


def create_app(
    *,
    policy: Policy,
    assertions: AssertionIssuer,
    trusted_proxies: Iterable[str] = (),
    enrollment_key: Secret | None = None,
    enrollment_max_age: float = 600.0,
    enrollment_min_assurance: AssuranceLevel = AssuranceLevel.LOW,
    max_threads: int = 8,
    max_body: int = _DEFAULT_MAX_BODY,
    max_header_bytes: int = _DEFAULT_MAX_HEADER_BYTES,
    login_page: bool = True,
    return_urls: Mapping[str, str] | None = None,
    extra_routers: Sequence[APIRouter | BaseRoute] = (),
    clock: Clock | None = None,
    store: Store | None = None,
    audit: AuditLog | None = None,
    title: str = "macnss-auth",
) -> FastAPI:
    """An ASGI app serving the JSON API (``/v1``), the JWKS and the login page.

    Args:
        policy: the methods offered, in order.
        assertions: signs the token returned on success (and its JWKS).
        trusted_proxies: addresses/networks whose ``X-Forwarded-For`` is believed.
        enrollment_key: a bearer key (>= 32 bytes) that lets the calling
            service's back office enroll any subject; without it, only a
            fresh assertion for the subject itself authorizes enrollment.
        enrollment_max_age: seconds after a login during which its assertion
            authorizes enrollment.
        enrollment_min_assurance: the level a login must reach for its
            assertion to authorize enrollment (default LOW: an SMS login may
            add an authenticator app; SUBSTANTIAL keeps whoever holds only
            the SIM from binding a stronger method, as NIST SP 800-63B
            §6.1.2.1 asks).
        max_threads: library calls running at once (the thread pool's bound;
            more threads wait on I/O better but make the event loop wait
            longer for the GIL).
        max_body: the largest request body, in bytes.
        max_header_bytes: the most header bytes (names and values) a request
            may carry; at most 100 header fields.
        login_page: serve the server-rendered login page at ``/login``.
        return_urls: per audience, where the login page posts the assertion
            (form field ``assertion``) after a success.
        extra_routers: more routes (e.g. the phone relay's), included as given.
        clock: the trusted time for enrollment authorization (default: system).
        store: where sign-outs are kept, shared by every instance of the
            service (default: the policy's store). A signed-out session is
            refused by every instance that shares it.
        audit: where sign-outs are recorded (the authenticators' log, say);
            without it they are not audited.
        title: the OpenAPI title.
    """
    runtime = Runtime(
        policy=policy,
        assertions=assertions,
        trusted_proxies=trusted_proxies,
        enrollment_key=enrollment_key,
        enrollment_max_age=enrollment_max_age,
        enrollment_min_assurance=enrollment_min_assurance,
        max_threads=max_threads,
        clock=clock,
        return_urls=return_urls,
        store=store,
        audit=audit,
    )
    app = FastAPI(
        title=title,
        version=__version__,
        summary="Authentication for public digital services: eID, authenticator apps, codes.",
        docs_url=None,  # Swagger UI loads scripts from a CDN; the OpenAPI JSON is enough.
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.include_router(api_router(runtime))

    @app.get("/.well-known/jwks.json", tags=["assertion"])
    async def jwks() -> JSONResponse:
        """The public keys of the assertions (every key still in rotation, newest first)."""
        return JSONResponse(
            assertions.keys.jwks(),
            headers={"Cache-Control": "public, max-age=300"},
            media_type="application/jwk-set+json",
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if login_page:
        from macnss_auth.web.pages import page_router  # noqa: PLC0415 (Jinja2 only if wanted)

        app.include_router(page_router(runtime))
    for extra in extra_routers:
        if isinstance(extra, APIRouter):
            app.include_router(extra)
        else:
            app.router.routes.append(extra)
    _install_error_handlers(app)
    _problems_in_openapi(app)
    app.add_middleware(_BodyLimit, limit=max_body)
    app.add_middleware(_HeaderLimit, limit=max_header_bytes)
    app.add_middleware(_DefaultHeaders)
    return app


def _problems_in_openapi(app: FastAPI) -> None:
    """Error responses are ``application/problem+json`` in the document, as on the wire."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status.isdigit() and int(status) >= 400 and "application/json" in content:
                        response["content"] = {
                            MEDIA_TYPE: content["application/json"],
                        }
        document.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
        document.get("components", {}).get("schemas", {}).pop("ValidationError", None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _install_error_handlers(app: FastAPI) -> None:
    async def library_error(_request: Request, exc: Exception) -> Response:
        return problem_response(exc)

    async def invalid_request(_request: Request, exc: Exception) -> Response:
        # Field locations only: FastAPI's default echoes the input, which may hold a code.
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        where = sorted({".".join(str(p) for p in e.get("loc", ())) for e in errors})
        return problem_response(ProblemError(WebReason.INVALID_REQUEST, errors=where))

    async def http_error(_request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        if status in (404, 405):
            title = "Not found" if status == 404 else "Method not allowed"
            return problem_response(ProblemError(WebReason.NOT_FOUND, status=status, title=title))
        return problem_response(ProblemError(WebReason.INVALID_REQUEST, status=status))

    async def unexpected(_request: Request, exc: Exception) -> Response:
        return problem_response(exc)

    app.add_exception_handler(ProblemError, library_error)
    app.add_exception_handler(MacnssAuthError, library_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)

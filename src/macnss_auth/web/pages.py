"""The login page: server-rendered, in Arabic (right to left), French and English.

No JavaScript and no front-end build: every step is an HTML form posted to
the server, so the code methods work in any browser, a screen reader, or a
phone's basic web view. Steps:

1. ``GET /login``: the identifier, and "what do you have with you?" (an NFC
   phone and the ID card, a smartphone app, a phone for SMS, e-mail).
2. ``POST /login/methods``: the methods the policy offers for that, in the
   policy's order, and, always, "no NFC? here are other ways".
3. ``POST /login/begin``: starts the method; renders ``steps/<method>.html``
   (or ``steps/code.html`` for any code method). A new method adds a template.
4. ``POST /login/verify``: decides; on success shows who signed in and hands
   the assertion to the calling service (a form posted to its return URL).

Where the policy offers passkeys, the start page also offers a username-less
passkey login: ``POST /login/passkey`` begins a challenge without a subject
and renders the passkey step, whose answer names the person.

After a login a session cookie (an assertion for this service itself,
HttpOnly, SameSite=Strict) lets the person add an authenticator app or a
passkey, and remove a passkey, at ``/account`` while the login is fresh
(``enrollment_max_age``). The passkey steps are the only ones with a script
(``/static/passkey.js``: WebAuthn has no form-based equivalent); it only asks
the device and posts the form. ``POST /logout`` ends the session on the
server too (:mod:`macnss_auth.web.sessions`): a copy of the cookie is then
refused everywhere, as an expired one is; a new login ends the session it
replaces in the same way.

Every form carries a CSRF token that must equal a cookie (double submit), so
another site cannot post codes or enrollments in the person's browser.
"""

from __future__ import annotations

import contextlib
import math
import secrets
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any, NamedTuple

import jinja2
from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from macnss_auth.authenticator import AuthResult
from macnss_auth.errors import AuthenticationFailed, MacnssAuthError, MalformedInput, Reason
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.policy import Capability, MethodOffer
from macnss_auth.web.i18n import DIRECTIONS, LANGUAGES, MESSAGES, NAMES, pick_language
from macnss_auth.web.problems import ProblemError
from macnss_auth.web.runtime import Runtime

if TYPE_CHECKING:
    from macnss_auth.passkey import PasskeyAuthenticator

__all__ = ["page_router"]

_CSRF = "macnss_csrf"
_LANG = "macnss_lang"
_SESSION = "macnss_session"
_HAVE = ("nfc", "app", "sms", "email", "passkey")
# Failures after which the same challenge can take another code.
_RETRY_SAME = frozenset(
    {Reason.INVALID_CODE, Reason.MALFORMED_CODE, Reason.REPLAYED, Reason.THROTTLED}
)
_MAX_FIELD = 256
# A step's structured answer (a passkey's credential JSON) is larger than a code.
_MAX_RESPONSE = 16 * 1024
# A WebAuthn credential id is at most 1023 bytes: 1364 characters of base64url.
_MAX_CREDENTIAL_ID = 1400
_MAX_DEVICE_NAME = 64


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("macnss_auth.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _answer(form: FormData) -> str:
    """The answer: a step's ``response`` (a passkey's credential JSON), else the code."""
    response = form.get("response")
    if isinstance(response, str) and 0 < len(response) <= _MAX_RESPONSE and response.isprintable():
        return response
    return _field(form, "code")


def _field(form: FormData, name: str, limit: int = _MAX_FIELD) -> str:
    value = form.get(name)
    if not isinstance(value, str) or not value.isprintable():
        return ""  # Control characters never reach the store's keys or the audit log.
    return value.strip()[:limit]


class _Page:
    """One request's rendering context: language, CSRF token, hidden fields."""

    def __init__(self, runtime: Runtime, env: jinja2.Environment, request: Request) -> None:
        self.runtime = runtime
        self.env = env
        self.request = request
        self.lang = pick_language(
            request.query_params.get("lang"),
            request.cookies.get(_LANG),
            request.headers.get("accept-language"),
        )
        self.secure = runtime.is_https(request)
        known = request.cookies.get(runtime.cookie_name(_CSRF, request), "")
        self.csrf = known if 20 <= len(known) <= 64 and known.isalnum() else secrets.token_hex(16)
        self.new_csrf = self.csrf != known

    def t(self, key: str, **values: object) -> str:
        text = MESSAGES[self.lang][key]
        return text.format(**values) if values else text

    def label(self, method: str) -> str:
        """A method's name for people (methods added later fall back to their name)."""
        return MESSAGES[self.lang].get(f"method_{method}", method)

    def csrf_ok(self, form: FormData) -> bool:
        sent = _field(form, "csrf")
        # As bytes: compare_digest refuses text with non-ASCII characters (a 500).
        same = secrets.compare_digest(sent.encode(), self.csrf.encode())
        return bool(sent) and not self.new_csrf and same

    def render(self, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(
            lang=self.lang,
            dir=DIRECTIONS[self.lang],
            languages=[(code, NAMES[code]) for code in LANGUAGES],
            t=self.t,
            label=self.label,
            known=MESSAGES[self.lang],
            csrf=self.csrf,
            path=self.request.url.path,
            offered=self.runtime.policy.methods,
            **values,
        )
        response = HTMLResponse(html, status_code=status)
        secure = self.secure
        if self.new_csrf:
            name = self.runtime.cookie_name(_CSRF, self.request)
            response.set_cookie(name, self.csrf, httponly=True, samesite="strict", secure=secure)
        if self.request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(_LANG, self.lang, samesite="lax", secure=secure, max_age=31536000)
        _secure_headers(response, self.runtime, secure=secure)
        return response


def _secure_headers(response: Response, runtime: Runtime, *, secure: bool) -> None:
    targets = " ".join(sorted(set(runtime.return_urls.values())))
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"form-action 'self' {targets}; frame-ancestors 'none'; base-uri 'none'"
    ).replace("  ", " ")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # No other window keeps a handle on the login (tabnabbing, cross-site leaks).
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if secure:
        # Browsers believe it only over TLS; this host only (the site's others may differ).
        response.headers["Strict-Transport-Security"] = "max-age=31536000"


def page_router(runtime: Runtime) -> APIRouter:
    """The HTML routes (kept out of the OpenAPI document)."""
    router = APIRouter(include_in_schema=False)
    env = _environment()
    policy = runtime.policy
    # The passkey box only where passkeys are offered.
    shown = tuple(h for h in _HAVE if h != "passkey" or "passkey" in policy.methods)
    css = resources.files("macnss_auth.web").joinpath("static/login.css").read_bytes()
    passkeys = _passkeys(runtime)
    totp = _totp(runtime)

    def carried(form: FormData | None, request: Request) -> dict[str, Any]:
        """The calling service's audience and nonce, carried through the steps."""
        source: Mapping[str, Any] = form if form is not None else request.query_params
        values = {}
        for name in ("audience", "nonce"):
            value = source.get(name)
            values[name] = value.strip()[:_MAX_FIELD] if isinstance(value, str) else ""
        return values

    def other_ways() -> list[MethodOffer]:
        return [o for o in policy.offer() if o.needs is not Capability.NFC]

    def start_page(page: _Page, keep: Mapping[str, Any], **extra: Any) -> HTMLResponse:
        values: dict[str, Any] = {"checked": (), **keep, **extra}
        return page.render("start.html", others=other_ways(), have=shown,
                           discoverable=passkeys is not None, **values)  # fmt: skip

    def session_expired(page: _Page) -> HTMLResponse:
        """Back to the start: the account pages need a live session (and a CSRF token)."""
        return start_page(page, {"audience": "", "nonce": ""}, error=page.t("session_expired"),
                          status=401)  # fmt: skip

    def form_refused(post: _LoginPost) -> HTMLResponse:
        return start_page(post.page, post.keep, error=post.page.t("error_form"), status=403)

    def login_post(path: str) -> Callable[[_LoginStep], _LoginStep]:
        """Adds the route of a login form; a post without the CSRF token goes back to the start."""

        def add(step: _LoginStep) -> _LoginStep:
            async def route(request: Request) -> HTMLResponse:
                page = _Page(runtime, env, request)
                form = await request.form()
                post = _LoginPost(page, form, carried(form, request), request)
                return await step(post) if page.csrf_ok(form) else form_refused(post)

            router.add_api_route(path, route, methods=["POST"], name=step.__name__)
            return step

        return add

    def account_post(path: str) -> Callable[[_AccountStep], _AccountStep]:
        """Adds the route of an account form: it needs a live session and the CSRF token."""

        def add(step: _AccountStep) -> _AccountStep:
            async def route(request: Request) -> HTMLResponse:
                page = _Page(runtime, env, request)
                form = await request.form()
                subject = await session_subject(request)
                if subject is None or not page.csrf_ok(form):
                    return session_expired(page)
                return await step(_AccountPost(page, form, subject, request))

            router.add_api_route(path, route, methods=["POST"], name=step.__name__)
            return step

        return add

    def methods_page(
        page: _Page, subject: str, offers: list[MethodOffer], keep: dict[str, str], **extra: Any
    ) -> HTMLResponse:
        return page.render(
            "methods.html",
            subject=subject,
            offers=offers,
            others=other_ways(),
            status=extra.pop("status", 200),
            **keep,
            **extra,
        )

    def step_page(page: _Page, method: str, **values: Any) -> HTMLResponse:
        name = f"steps/{method}.html"
        try:
            page.env.get_template(name)
        except jinja2.TemplateNotFound:
            name = "steps/code.html"
        return page.render(name, method=method, others=other_ways(), **values)

    def error_text(page: _Page, exc: MacnssAuthError, method: str = "") -> str:
        if isinstance(exc, MalformedInput):
            # A passkey step posts no answer when the device refused or the person cancelled.
            cancelled = method == "passkey"
            return page.t("error_passkey_cancelled" if cancelled else "error_malformed_code")
        if not isinstance(exc, AuthenticationFailed):
            return page.t("error_generic")
        reason = exc.reason.value
        wait = exc.retry_after or 0.0
        if reason == Reason.INVALID_CODE.value:
            remaining = (
                page.t("error_remaining", count=exc.remaining_attempts)
                if exc.remaining_attempts is not None
                else ""
            )
            return page.t("error_invalid_code", remaining=remaining).strip()
        key = f"error_{reason}"
        if key not in MESSAGES[page.lang]:
            return page.t("error_generic")
        return page.t(key, seconds=math.ceil(wait), minutes=max(1, math.ceil(wait / 60)))

    @router.get("/static/login.css")
    async def style() -> Response:
        return Response(
            css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
        )

    if passkeys is not None:
        # The passkey steps' script (passkey_router adds the same route for its own page).
        from macnss_auth.web.passkey import add_script_route  # noqa: PLC0415 (the passkey extra)

        add_script_route(router)

    @router.get("/login")
    async def start(request: Request) -> HTMLResponse:
        page = _Page(runtime, env, request)
        return start_page(page, carried(None, request))

    @login_post("/login/methods")
    async def methods(post: _LoginPost) -> HTMLResponse:
        page, form, keep, _ = post
        subject = _field(form, "subject")
        ticked = [h for h in form.getlist("have") if h in shown]
        if not subject:
            return start_page(page, keep, checked=ticked, error=page.t("error_subject"),
                              status=422)  # fmt: skip
        capabilities = [Capability(h) for h in ticked] or None
        return methods_page(page, subject, policy.offer(capabilities), keep)

    @login_post("/login/begin")
    async def begin(post: _LoginPost) -> HTMLResponse:
        page, form, keep, request = post
        subject, method = _field(form, "subject"), _field(form, "method")
        if not subject or method not in policy.methods:
            return form_refused(post)
        try:
            challenge = await runtime.run(
                policy.begin, subject, method, context=runtime.context(request), language=page.lang
            )
        except MacnssAuthError as exc:
            return methods_page(page, subject, policy.offer(exclude=[method]), keep,
                                error=error_text(page, exc), status=429)  # fmt: skip
        return step_page(page, method, subject=subject, challenge=challenge, **keep)

    if passkeys is not None:

        @login_post("/login/passkey")
        async def begin_discoverable(post: _LoginPost) -> HTMLResponse:
            """A username-less passkey login: the device's answer names the person."""
            page, _, keep, request = post
            challenge = await runtime.run(passkeys.begin, None, context=runtime.context(request))
            return step_page(page, "passkey", subject="", challenge=challenge, **keep)

    @login_post("/login/verify")
    async def verify(post: _LoginPost) -> HTMLResponse:
        page, form, keep, request = post
        subject, method = _field(form, "subject"), _field(form, "method")
        challenge_id = _field(form, "challenge_id")
        if not challenge_id or method not in policy.methods:
            return form_refused(post)
        audience = keep["audience"] or None
        issuer = runtime.assertions
        if audience is not None and audience not in issuer.audiences:
            audience = None
        try:
            result = await runtime.run(
                policy.verify, challenge_id, _answer(form), context=runtime.context(request)
            )
        except MacnssAuthError as exc:
            message = error_text(page, exc, method)
            retry_same = isinstance(exc, MalformedInput) or (
                isinstance(exc, AuthenticationFailed) and exc.reason in _RETRY_SAME
            )
            if retry_same:
                # The hint is display text only; the server reads nothing back from it.
                challenge = {"id": challenge_id, "hint": _field(form, "hint") or None}
                return step_page(page, method, subject=subject, challenge=challenge,
                                 error=message, status=401, **keep)  # fmt: skip
            if not subject:
                # A username-less login names nobody to offer methods for: back to the start,
                # where the identifier, the passkey and the other ways all are.
                return start_page(page, keep, error=message, status=401)
            offers = policy.offer(exclude=[method])
            return methods_page(page, subject, offers, keep, error=message, status=401)
        replaced = request.cookies.get(runtime.cookie_name(_SESSION, request))
        if replaced:
            # A new login ends the browser's previous session (another person's, on a
            # shared computer) instead of leaving it valid beside the new one.
            with contextlib.suppress(MacnssAuthError):  # it still ends when it expires
                await runtime.run(
                    runtime.sign_out, replaced, runtime.context(request), ended="new_login"
                )
        return success_page(page, result, audience, keep["nonce"] or None)

    def success_page(
        page: _Page, result: AuthResult, audience: str | None, nonce: str | None
    ) -> HTMLResponse:
        issuer = runtime.assertions
        token = issuer.issue(result, audience=audience, nonce=nonce)
        target = runtime.return_urls.get(audience or issuer.audiences[0])
        session = issuer.issue(result, audience=issuer.issuer, lifetime=runtime.enrollment_max_age)
        response = page.render(
            "success.html",
            subject=result.subject,
            level=page.t(f"level_{result.assurance.eidas}"),
            assertion=token,
            return_url=target,
            can_enroll=totp is not None or passkeys is not None,
        )
        response.set_cookie(
            runtime.cookie_name(_SESSION, page.request), session, httponly=True, samesite="strict",
            secure=page.secure, max_age=int(runtime.enrollment_max_age),
        )  # fmt: skip
        return response

    async def session_subject(request: Request) -> str | None:
        """The live session's subject; None for none, an expired or a signed-out one."""
        token = request.cookies.get(runtime.cookie_name(_SESSION, request))
        if not token:
            return None
        try:
            # In the pool: the sign-outs are in the store.
            subject: str = await runtime.run(runtime.session_subject, token)
        except (MacnssAuthError, ProblemError):
            return None  # a store that cannot tell does not keep a session alive either
        return subject

    async def account_page(page: _Page, subject: str, **extra: Any) -> HTMLResponse:
        held = [] if passkeys is None else await runtime.run(passkeys.credentials, subject)
        return page.render("account.html", subject=subject, can_enroll=totp is not None,
                           can_add_passkey=passkeys is not None, passkeys=held,
                           **extra)  # fmt: skip

    @router.get("/account")
    async def account(request: Request) -> HTMLResponse:
        page = _Page(runtime, env, request)
        subject = await session_subject(request)
        if subject is None:
            return session_expired(page)
        return await account_page(page, subject)

    if totp is not None:
        app = totp

        @account_post("/account/totp")
        async def add_totp(post: _AccountPost) -> HTMLResponse:
            page, _, subject, request = post
            provisioning = await runtime.run(app.enroll, subject, context=runtime.context(request))
            svg = await runtime.run(provisioning.qr_svg)
            return page.render(
                "totp_enroll.html",
                qr_svg=svg,
                manual_key=provisioning.manual_entry_key,
            )

        @account_post("/account/totp/confirm")
        async def confirm_totp(post: _AccountPost) -> HTMLResponse:
            page, form, subject, request = post
            try:
                await runtime.run(
                    app.confirm, subject, _field(form, "code"), context=runtime.context(request)
                )
            except MacnssAuthError as exc:
                return page.render("totp_enroll.html", qr_svg=None, manual_key=None,
                                   error=error_text(page, exc), status=401)  # fmt: skip
            return await account_page(page, subject, notice=page.t("totp_added"))

    else:

        async def no_totp(post: _AccountPost) -> HTMLResponse:
            return session_expired(post.page)

        # Without TOTP its forms are still there, and answer as to an expired session.
        for path in ("/account/totp", "/account/totp/confirm"):
            account_post(path)(no_totp)

    if passkeys is not None:
        keys = passkeys

        @account_post("/account/passkey")
        async def add_passkey(post: _AccountPost) -> HTMLResponse:
            page, form, subject, request = post
            try:
                challenge = await runtime.run(
                    keys.begin_registration, subject, context=runtime.context(request)
                )
            except MacnssAuthError as exc:
                return await account_page(page, subject, error=error_text(page, exc, "passkey"),
                                          status=409)  # fmt: skip
            return page.render(
                "passkey_register.html",
                challenge=challenge,
                device_name=_field(form, "name", _MAX_DEVICE_NAME),
            )

        @account_post("/account/passkey/finish")
        async def finish_passkey(post: _AccountPost) -> HTMLResponse:
            page, form, subject, request = post
            try:
                await runtime.run(
                    keys.finish_registration,
                    _field(form, "challenge_id"),
                    _answer(form),
                    name=_field(form, "name", _MAX_DEVICE_NAME),
                    subject=subject,  # the ceremony must be the session's own
                    context=runtime.context(request),
                )
            except MacnssAuthError as exc:
                return await account_page(page, subject, error=error_text(page, exc, "passkey"),
                                          status=401)  # fmt: skip
            return await account_page(page, subject, notice=page.t("passkey_added"))

        @account_post("/account/passkey/remove")
        async def remove_passkey(post: _AccountPost) -> HTMLResponse:
            page, form, subject, request = post
            credential_id = _field(form, "credential_id", _MAX_CREDENTIAL_ID)
            try:
                removed = bool(credential_id) and await runtime.run(
                    keys.remove_credential, subject, credential_id,
                    context=runtime.context(request),
                )  # fmt: skip
            except MacnssAuthError:
                removed = False
            if not removed:
                return await account_page(page, subject, error=page.t("error_unknown_credential"),
                                          status=404)  # fmt: skip
            return await account_page(page, subject, notice=page.t("passkey_removed"))

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        """Ends the session on the server (every instance), then in the browser."""
        form = await request.form()
        page = _Page(runtime, env, request)
        if not page.csrf_ok(form):
            return RedirectResponse(f"/login?lang={page.lang}", status_code=303)
        name = runtime.cookie_name(_SESSION, request)
        response: Response = RedirectResponse(f"/login?lang={page.lang}", status_code=303)
        token = request.cookies.get(name)
        if token:
            try:
                await runtime.run(
                    runtime.sign_out, token, runtime.context(request), ended="sign_out"
                )
            except MacnssAuthError:
                # Say so: the browser forgets the session, but a copy stays valid until it
                # expires (the cookie's lifetime at most).
                minutes = max(1, math.ceil(runtime.enrollment_max_age / 60))
                response = start_page(page, {"audience": "", "nonce": ""},
                                      error=page.t("error_sign_out", minutes=minutes),
                                      status=503)  # fmt: skip
        response.delete_cookie(name, secure=page.secure, httponly=True, samesite="strict")
        return response

    return router


class _LoginPost(NamedTuple):
    """A login form posted with the page's CSRF token."""

    page: _Page
    form: FormData
    keep: dict[str, Any]  # the calling service's audience and nonce
    request: Request


class _AccountPost(NamedTuple):
    """An account form posted with the CSRF token in a live session."""

    page: _Page
    form: FormData
    subject: str
    request: Request


_LoginStep = Callable[[_LoginPost], Awaitable[HTMLResponse]]
_AccountStep = Callable[[_AccountPost], Awaitable[HTMLResponse]]


def _passkeys(runtime: Runtime) -> PasskeyAuthenticator | None:
    """The policy's passkey method, if it offers one (the passkey extra is then installed)."""
    if "passkey" not in runtime.policy.methods:
        return None
    from macnss_auth.passkey import PasskeyAuthenticator  # noqa: PLC0415 (the passkey extra)

    found = runtime.policy.authenticator("passkey")
    return found if isinstance(found, PasskeyAuthenticator) else None


def _totp(runtime: Runtime) -> TotpAuthenticator | None:
    if "totp" not in runtime.policy.methods:
        return None
    totp = runtime.policy.authenticator("totp")
    return totp if isinstance(totp, TotpAuthenticator) else None

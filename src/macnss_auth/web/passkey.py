"""Passkey routes for the HTTP service: the two WebAuthn ceremonies, and a page that runs them.

Include them with ``create_app(..., extra_routers=[passkey_router(passkeys)])``;
the handlers find the app's runtime (thread pool, client context, assertion
issuer, enrollment authorization) on ``request.app.state.runtime``.

* ``POST /v1/passkeys/challenges`` ``{"subject": ...}`` or ``{}`` (username-less):
  the request options; ``POST /v1/passkeys/challenges/{id}/verify``
  ``{"credential": PublicKeyCredential.toJSON()}``: the signed assertion. A
  named login goes through the policy (cross-method throttling); a
  username-less one is verified by the passkey method itself and held to the
  policy's minimum assurance.
* ``POST /v1/passkeys/registrations`` and ``.../registrations/{id}``: register
  a passkey, authorized like every enrollment (``Authorization: Bearer`` a
  fresh assertion for the subject, i.e. right after a login by another
  method, or the back-office key), or by the login page's session cookie
  (then the subject may be left out: it is the session's). ``POST /v1/passkeys/list`` and
  ``/v1/passkeys/remove``: the subject's passkeys.
* ``GET /passkey``: a page with the browser side (``templates/passkey_page.html``,
  ``static/passkey.js``), in Arabic (right to left), French and English, the
  language chosen as the login page chooses it (``?lang=``, its cookie, then
  ``Accept-Language``).

Subjects travel in bodies, never in paths, as in the rest of the API.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from importlib import resources
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Path, Request
from pydantic import Field
from starlette.responses import HTMLResponse, Response

from macnss_auth.errors import AuthenticationFailed, ChallengeNotFound, Reason
from macnss_auth.passkey import PasskeyAuthenticator, PasskeyCredential
from macnss_auth.web.api import (
    _PROBLEMS,
    AssertionOut,
    ChallengeOut,
    Done,
    Subject,
    _Authorization,
    _Model,
    assertion_out,
    check_audience,
)
from macnss_auth.web.i18n import DIRECTIONS, LANGUAGES, MESSAGES, NAMES, pick_language
from macnss_auth.web.problems import ProblemError, WebReason
from macnss_auth.web.runtime import Runtime

__all__ = ["passkey_router"]

Credential = dict[str, Any]
# As the other routes': an id is short, and refused before the store sees it.
ChallengeId = Annotated[str, Path(min_length=1, max_length=64)]
_METHOD = "passkey"
# The login page's session cookie (web/pages.py): an assertion for the service itself.
_SESSION_COOKIE = "macnss_session"
# The login page's language cookie: a choice made on either page holds on both.
_LANG_COOKIE = "macnss_lang"


class PasskeyBeginIn(_Model):
    """Without ``subject``: a username-less login."""

    subject: Subject | None = None


class PasskeyVerifyIn(_Model):
    credential: Credential
    audience: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    nonce: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class RegistrationIn(_Model):
    """Without ``subject``: the subject of the login page's session."""

    subject: Subject | None = None
    display_name: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class RegistrationFinishIn(_Model):
    subject: Subject | None = None
    credential: Credential
    name: Annotated[str, Field(max_length=64)] = ""


class SubjectIn(_Model):
    subject: Subject


class RemoveIn(_Model):
    subject: Subject
    credential_id: Annotated[str, Field(min_length=1, max_length=1400)]


class PasskeyOut(_Model):
    """A registered passkey, without key material."""

    credential_id: str
    name: str
    created_at: dt.datetime
    attestation: str
    device_bound: bool
    backed_up: bool
    transports: list[str]

    @classmethod
    def of(cls, credential: PasskeyCredential) -> PasskeyOut:
        return cls(
            credential_id=credential.id_b64url,
            name=credential.name,
            created_at=credential.created_at,
            attestation=credential.attestation.value,
            device_bound=credential.device_bound,
            backed_up=credential.backed_up,
            transports=list(credential.transports),
        )


class PasskeysOut(_Model):
    passkeys: list[PasskeyOut]


_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)


def _sha256_b64(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode("ascii")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _authorized(
    runtime: Runtime, request: Request, authorization: str | None, subject: str | None
) -> str:
    """The subject a registration may be for: named by a bearer assertion or key, or the
    login page's session (its cookie is SameSite=Strict, so another site cannot send it).

    Raises:
        ProblemError: ``unauthorized`` (also for a signed-out session) or ``forbidden``.
    """
    if authorization is None:
        session = request.cookies.get(runtime.cookie_name(_SESSION_COOKIE, request))
        if session:
            if subject is None:
                # In the pool, as every check of a session: its sign-out is in the store.
                found: str = await runtime.run(runtime.session_subject, session)
                return found
            authorization = f"Bearer {session}"
    if subject is None:
        raise ProblemError(WebReason.UNAUTHORIZED)
    await runtime.run(runtime.authorize_enrollment, authorization, subject)
    return subject


def _standalone_pages() -> dict[str, tuple[str, dict[str, str]]]:
    """The /passkey page in each language, rendered once, with its headers.

    The page's only dynamic part is its language, so each is rendered at start-up.
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("macnss_auth.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template("passkey_page.html")
    pages = {}
    for lang in LANGUAGES:
        words = MESSAGES[lang]
        html = template.render(
            lang=lang,
            dir=DIRECTIONS[lang],
            languages=[(code, NAMES[code]) for code in LANGUAGES],
            t=words.__getitem__,
        )
        # The page's one style block by its hash: no 'unsafe-inline', so markup injected
        # into the page could not style itself (CSS exfiltration, fake overlays).
        hashes = [f"'sha256-{_sha256_b64(block)}'" for block in _STYLE.findall(html)]
        styles = " ".join(hashes) or "'none'"
        pages[lang] = (
            html,
            {
                "Cache-Control": "no-store",
                "Content-Language": lang,
                "Vary": "Accept-Language, Cookie",
                "Content-Security-Policy": (
                    "default-src 'none'; script-src 'self'; connect-src 'self'; "
                    f"style-src {styles}; form-action 'none'; "
                    "frame-ancestors 'none'; base-uri 'none'"
                ),
                "X-Frame-Options": "DENY",
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
            },
        )
    return pages


def add_script_route(router: APIRouter) -> None:
    """``GET /static/passkey.js``: the browser side of the ceremonies (no inline script: CSP).

    The standalone page here and the login page's passkey steps (``web/pages.py``)
    both add it; when both routers are mounted, the one included first serves it.
    """
    script = resources.files("macnss_auth.web").joinpath("static/passkey.js").read_bytes()

    @router.get("/static/passkey.js", include_in_schema=False)
    async def passkey_script() -> Response:
        return Response(
            script,
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )


def passkey_router(passkeys: PasskeyAuthenticator, *, page: bool = True) -> APIRouter:
    """The passkey routes over ``passkeys`` (the same object the policy holds, if it does)."""
    router = APIRouter(responses=_PROBLEMS)

    @router.post("/v1/passkeys/challenges", status_code=201, tags=["passkeys"])
    async def begin(body: PasskeyBeginIn, request: Request) -> ChallengeOut:
        """Request options for ``navigator.credentials.get()`` in ``data.options``."""
        runtime = _runtime(request)
        context = runtime.context(request)
        if body.subject and _METHOD in runtime.policy.methods:
            challenge = await runtime.run(
                runtime.policy.begin, body.subject, _METHOD, context=context
            )
        else:
            challenge = await runtime.run(passkeys.begin, body.subject, context=context)
        return ChallengeOut.of(challenge)

    @router.post("/v1/passkeys/challenges/{challenge_id}/verify", tags=["passkeys"])
    async def verify(
        challenge_id: ChallengeId, body: PasskeyVerifyIn, request: Request
    ) -> AssertionOut:
        """Answer with ``PublicKeyCredential.toJSON()``; a success carries the signed assertion."""
        runtime = _runtime(request)
        check_audience(runtime, body.audience)
        context = runtime.context(request)
        pending = await runtime.run(passkeys.pending, challenge_id)
        if pending is None or pending.method != _METHOD:
            raise ChallengeNotFound()
        policy = runtime.policy
        if _METHOD in policy.methods:
            result = await runtime.run(
                policy.verify, challenge_id, body.credential, context=context
            )
        else:
            result = await runtime.run(
                passkeys.verify, challenge_id, body.credential, context=context
            )
            if result.assurance < policy.minimum_assurance:
                raise AuthenticationFailed(reason=Reason.ACCESS_DENIED)
        token = runtime.assertions.issue(result, audience=body.audience, nonce=body.nonce)
        return assertion_out(runtime, result, token)

    @router.post("/v1/passkeys/registrations", status_code=201, tags=["passkeys"])
    async def begin_registration(
        body: RegistrationIn, request: Request, authorization: _Authorization = None
    ) -> ChallengeOut:
        """Creation options for ``navigator.credentials.create()`` in ``data.options``."""
        runtime = _runtime(request)
        subject = await _authorized(runtime, request, authorization, body.subject)
        challenge = await runtime.run(
            passkeys.begin_registration,
            subject,
            display_name=body.display_name,
            context=runtime.context(request),
        )
        return ChallengeOut.of(challenge)

    @router.post("/v1/passkeys/registrations/{challenge_id}", status_code=201, tags=["passkeys"])
    async def finish_registration(
        challenge_id: ChallengeId,
        body: RegistrationFinishIn,
        request: Request,
        authorization: _Authorization = None,
    ) -> PasskeyOut:
        """Store the passkey the browser created."""
        runtime = _runtime(request)
        subject = await _authorized(runtime, request, authorization, body.subject)
        credential = await runtime.run(
            passkeys.finish_registration,
            challenge_id,
            body.credential,
            name=body.name,
            subject=subject,
            context=runtime.context(request),
        )
        return PasskeyOut.of(credential)

    @router.post("/v1/passkeys/list", tags=["passkeys"])
    async def list_passkeys(
        body: SubjectIn, request: Request, authorization: _Authorization = None
    ) -> PasskeysOut:
        """The subject's passkeys, oldest first."""
        runtime = _runtime(request)
        await runtime.run(runtime.authorize_enrollment, authorization, body.subject)
        found = await runtime.run(passkeys.credentials, body.subject)
        return PasskeysOut(passkeys=[PasskeyOut.of(c) for c in found])

    @router.post("/v1/passkeys/remove", tags=["passkeys"])
    async def remove(
        body: RemoveIn, request: Request, authorization: _Authorization = None
    ) -> Done:
        """Remove one of the subject's passkeys (a lost phone)."""
        runtime = _runtime(request)
        await runtime.run(runtime.authorize_enrollment, authorization, body.subject)
        removed = await runtime.run(
            passkeys.remove_credential,
            body.subject,
            body.credential_id,
            context=runtime.context(request),
        )
        if not removed:
            raise AuthenticationFailed(reason=Reason.UNKNOWN_CREDENTIAL)
        return Done()

    if page:
        add_script_route(router)
        pages = _standalone_pages()

        @router.get("/passkey", include_in_schema=False)
        async def passkey_page(request: Request, lang: str | None = None) -> HTMLResponse:
            # The language as the login page picks it: ?lang=, its cookie, Accept-Language.
            chosen = pick_language(
                lang, request.cookies.get(_LANG_COOKIE), request.headers.get("accept-language")
            )
            html, headers = pages[chosen]
            response = HTMLResponse(html, headers=headers)
            if lang in LANGUAGES:
                secure = _runtime(request).is_https(request)
                response.set_cookie(
                    _LANG_COOKIE, chosen, samesite="lax", secure=secure, max_age=31536000
                )
            return response

    return router

"""The JSON API: methods, challenges, verification, enrollment.

Every route maps HTTP to one library call (run in the thread pool) and back;
the library decides, the routes only translate. Subjects travel in request
bodies, never in paths, so access logs do not collect them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from macnss_auth.authenticator import AuthResult, Challenge
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.otp.hotp import BaseOtpAuthenticator
from macnss_auth.otp.oob import OutOfBandAuthenticator
from macnss_auth.otp.recovery import RecoveryCodeAuthenticator
from macnss_auth.policy import Capability
from macnss_auth.web.problems import ProblemError, WebReason
from macnss_auth.web.runtime import Runtime
from macnss_auth.web.tokens import ACR_VALUES

__all__ = ["Problem", "api_router"]

# Printable text only: no control characters reach the store's keys or the audit log.
Subject = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
Code = Annotated[str, Field(min_length=1, max_length=64)]
# The enrollment routes' credential (see Runtime.authorize_enrollment); web/passkey.py's too.
_Authorization = Annotated[str | None, Header()]


class Problem(BaseModel):
    """An RFC 9457 problem; ``reason`` is the stable string to key on."""

    type: str
    title: str
    status: int
    reason: str
    retry_after: int | None = None
    remaining_attempts: int | None = None
    errors: list[str] | None = None
    field: str | None = None


# Every route may answer with a problem (application/problem+json in the OpenAPI document);
# these and _Model serve the passkey routes (web/passkey.py) as well.
_PROBLEM = {"model": Problem, "description": "RFC 9457 problem (application/problem+json)"}
_STATUSES = (401, 403, 404, 409, 410, 422, 429, 503)
_PROBLEMS: dict[int | str, dict[str, Any]] = dict.fromkeys(_STATUSES, _PROBLEM)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MethodOfferOut(_Model):
    """A method the client can use, best first."""

    method: str
    assurance: Literal["low", "substantial", "high"]
    acr: str
    needs: Literal["nfc", "app", "sms", "email", "passkey"] | None


class MethodsOut(_Model):
    methods: list[MethodOfferOut]


class BeginIn(_Model):
    subject: Subject
    method: Annotated[str, Field(min_length=1, max_length=32)]
    language: Literal["ar", "fr", "en"] | None = Field(
        default=None, description="the language of the SMS or e-mail message, if one is sent"
    )


class ChallengeOut(_Model):
    """A pending authentication; never holds a secret."""

    id: str
    method: str
    created_at: dt.datetime
    expires_at: dt.datetime
    hint: str | None
    data: dict[str, str]

    @classmethod
    def of(cls, challenge: Challenge) -> ChallengeOut:
        return cls(
            id=challenge.id,
            method=challenge.method,
            created_at=challenge.created_at,
            expires_at=challenge.expires_at,
            hint=challenge.hint,
            data=dict(challenge.data),
        )


class VerifyIn(_Model):
    """The answer: a ``code`` for code methods, ``evidence`` (the upload bundle) for eID."""

    code: Code | None = None
    evidence: dict[str, Any] | None = None
    audience: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    nonce: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class AssertionOut(_Model):
    """A success: who, how, and the signed assertion for the calling service."""

    subject: str
    method: str
    assurance: Literal["low", "substantial", "high"]
    acr: str
    authenticated_at: dt.datetime
    assertion: str
    token_type: Literal["JWT"] = "JWT"  # noqa: S105 (a type name, not a secret)
    expires_in: int


class OtpEnrollIn(_Model):
    subject: Subject
    method: Literal["totp", "hotp"] = "totp"
    account: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class OtpEnrollOut(_Model):
    """Show once: the QR (SVG), the otpauth URI and the key for manual entry."""

    method: str
    uri: str
    manual_entry_key: str
    qr_svg: str
    algorithm: str
    digits: int
    period: int
    expires_at: dt.datetime


class OtpConfirmIn(_Model):
    subject: Subject
    method: Literal["totp", "hotp"] = "totp"
    code: Code


class DestinationIn(_Model):
    subject: Subject
    method: Literal["sms", "email"]
    destination: Annotated[str, Field(min_length=3, max_length=320)]


class DestinationConfirmIn(_Model):
    subject: Subject
    method: Literal["sms", "email"]
    challenge_id: Annotated[str, Field(min_length=1, max_length=64)]
    code: Code


class DestinationOut(_Model):
    method: str
    hint: str


class RecoveryIn(_Model):
    subject: Subject


class RecoveryOut(_Model):
    """Show once; only digests are stored."""

    codes: list[str]


class EidBindingIn(_Model):
    subject: Subject
    document_number: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    personal_number: Annotated[str, Field(min_length=1, max_length=32)] | None = None


class Done(_Model):
    status: Literal["ok"] = "ok"


def _capabilities(text: str | None) -> list[Capability] | None:
    if text is None:
        return None
    try:
        return [Capability(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ProblemError(WebReason.INVALID_REQUEST, errors=["query.capabilities"]) from None


def assertion_out(runtime: Runtime, result: AuthResult, token: str) -> AssertionOut:
    """The success body."""
    return AssertionOut(
        subject=result.subject,
        method=result.method,
        assurance=result.assurance.eidas,  # type: ignore[arg-type]
        acr=ACR_VALUES[result.assurance],
        authenticated_at=result.authenticated_at,
        assertion=token,
        expires_in=int(runtime.assertions.lifetime),
    )


def check_audience(runtime: Runtime, audience: str | None) -> None:
    """Refuse an unknown audience before anything is verified (a code is single use)."""
    issuer = runtime.assertions
    if audience is not None and audience not in issuer.audiences and audience != issuer.issuer:
        raise ProblemError(WebReason.INVALID_REQUEST, errors=["body.audience"])


def api_router(runtime: Runtime) -> APIRouter:
    """The ``/v1`` routes over ``runtime``."""
    router = APIRouter(prefix="/v1", responses=_PROBLEMS)
    policy = runtime.policy

    def typed(method: str, kind: type[Any]) -> Any:
        if method not in policy.methods:
            raise ProblemError(WebReason.METHOD_NOT_OFFERED)
        authenticator = policy.authenticator(method)
        if not isinstance(authenticator, kind):
            raise ProblemError(WebReason.METHOD_NOT_OFFERED)
        return authenticator

    async def enrolling(
        authorization: str | None, subject: str, method: str, kind: type[Any]
    ) -> Any:
        """``method``'s authenticator, once the caller may enroll ``subject``."""
        # In the pool: a session's sign-out is looked up in the store.
        await runtime.run(runtime.authorize_enrollment, authorization, subject)
        return typed(method, kind)

    @router.get("/methods", tags=["authentication"])
    async def methods(
        capabilities: Annotated[
            str | None, Query(description="comma-separated: nfc, app, sms, email, passkey")
        ] = None,
        exclude: Annotated[str | None, Query(description="methods to leave out")] = None,
    ) -> MethodsOut:
        """Methods offered for the client's capabilities, in the policy's order.

        The answer depends on the configuration and the client only, never on
        a subject. After a method failed, ``exclude`` it to get the fallback.
        """
        skip = [m.strip() for m in (exclude or "").split(",") if m.strip()]
        offers = policy.offer(_capabilities(capabilities), exclude=skip)
        return MethodsOut(
            methods=[
                MethodOfferOut(
                    method=o.method,
                    assurance=o.assurance.eidas,  # type: ignore[arg-type]
                    acr=ACR_VALUES[o.assurance],
                    needs=o.needs.value if o.needs else None,
                )
                for o in offers
            ]
        )

    @router.post("/challenges", status_code=201, tags=["authentication"])
    async def begin(body: BeginIn, request: Request) -> ChallengeOut:
        """Start a method for a subject (an SMS or e-mail method sends its code now)."""
        if body.method not in policy.methods:
            raise ProblemError(WebReason.METHOD_NOT_OFFERED)
        context = runtime.context(request)
        challenge = await runtime.run(
            policy.begin, body.subject, body.method, context=context, language=body.language
        )
        return ChallengeOut.of(challenge)

    @router.post("/challenges/{challenge_id}/verify", tags=["authentication"])
    async def verify(
        challenge_id: Annotated[str, Path(min_length=1, max_length=64)],
        body: VerifyIn,
        request: Request,
    ) -> AssertionOut:
        """Answer a challenge: a ``code``, or for eID the phone's upload as ``evidence``.

        On success the body carries the signed assertion (a JWT for ``audience``).
        """
        if (body.code is None) == (body.evidence is None):
            raise ProblemError(WebReason.INVALID_REQUEST, errors=["body.code", "body.evidence"])
        check_audience(runtime, body.audience)
        response: object = body.code if body.code is not None else body.evidence
        context = runtime.context(request)
        result = await runtime.run(policy.verify, challenge_id, response, context=context)
        token = runtime.assertions.issue(result, audience=body.audience, nonce=body.nonce)
        return assertion_out(runtime, result, token)

    @router.post("/sessions/sign-out", tags=["sessions"])
    async def sign_out(request: Request, authorization: _Authorization = None) -> Done:
        """End the bearer token's session on every instance sharing the store.

        For a token issued for this service itself (an app's session for the
        enrollment routes): it is refused from then on, as an expired one. Any
        other token (expired, forged, for another audience, the back-office key)
        has no session to end and gets the same answer (RFC 7009 §2.2).
        """
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ProblemError(WebReason.UNAUTHORIZED)
        context = runtime.context(request)
        await runtime.run(runtime.sign_out, token, context, ended="sign_out")
        return Done()

    @router.post("/enrollments/otp", status_code=201, tags=["enrollment"])
    async def enroll_otp(
        body: OtpEnrollIn, request: Request, authorization: _Authorization = None
    ) -> OtpEnrollOut:
        """Start an authenticator-app enrollment; confirm it with a first code."""
        otp = await enrolling(authorization, body.subject, body.method, BaseOtpAuthenticator)
        context = runtime.context(request)
        provisioning = await runtime.run(
            otp.enroll, body.subject, account=body.account, context=context
        )
        return OtpEnrollOut(
            method=provisioning.method,
            uri=provisioning.uri,
            manual_entry_key=provisioning.manual_entry_key,
            qr_svg=await runtime.run(provisioning.qr_svg),
            algorithm=provisioning.parameters.algorithm.value,
            digits=provisioning.parameters.digits,
            period=provisioning.parameters.period,
            expires_at=provisioning.expires_at,
        )

    @router.post("/enrollments/otp/confirm", tags=["enrollment"])
    async def confirm_otp(
        body: OtpConfirmIn, request: Request, authorization: _Authorization = None
    ) -> Done:
        """Activate a pending authenticator-app enrollment with its first code."""
        otp = await enrolling(authorization, body.subject, body.method, BaseOtpAuthenticator)
        await runtime.run(otp.confirm, body.subject, body.code, context=runtime.context(request))
        return Done()

    @router.post("/enrollments/destination", status_code=201, tags=["enrollment"])
    async def enroll_destination(
        body: DestinationIn, request: Request, authorization: _Authorization = None
    ) -> ChallengeOut:
        """Add a phone number or e-mail address: a confirmation code is sent to it."""
        oob = await enrolling(authorization, body.subject, body.method, OutOfBandAuthenticator)
        challenge = await runtime.run(
            oob.enroll, body.subject, body.destination, context=runtime.context(request)
        )
        return ChallengeOut.of(challenge)

    @router.post("/enrollments/destination/confirm", tags=["enrollment"])
    async def confirm_destination(
        body: DestinationConfirmIn, request: Request, authorization: _Authorization = None
    ) -> DestinationOut:
        """Confirm the destination with the code it received."""
        oob = await enrolling(authorization, body.subject, body.method, OutOfBandAuthenticator)
        destination = await runtime.run(
            oob.confirm,
            body.challenge_id,
            body.code,
            subject=body.subject,  # another subject's enrollment is not found
            context=runtime.context(request),
        )
        return DestinationOut(method=body.method, hint=destination.hint)

    @router.post("/enrollments/recovery-codes", status_code=201, tags=["enrollment"])
    async def recovery_codes(
        body: RecoveryIn, request: Request, authorization: _Authorization = None
    ) -> RecoveryOut:
        """A new set of recovery codes (replaces the old set)."""
        recovery = await enrolling(
            authorization, body.subject, "recovery", RecoveryCodeAuthenticator
        )
        codes = await runtime.run(recovery.generate, body.subject, context=runtime.context(request))
        return RecoveryOut(codes=list(codes.codes))

    @router.post("/enrollments/eid", tags=["enrollment"])
    async def bind_eid(
        body: EidBindingIn, request: Request, authorization: _Authorization = None
    ) -> Done:
        """Bind the subject to an eID document number or personal number."""
        await runtime.run(runtime.authorize_enrollment, authorization, body.subject)
        if (body.document_number is None) == (body.personal_number is None):
            raise ProblemError(
                WebReason.INVALID_REQUEST, errors=["body.document_number", "body.personal_number"]
            )
        eid = typed("eid", EidAuthenticator)
        await runtime.run(
            eid.enroll,
            body.subject,
            document_number=body.document_number,
            personal_number=body.personal_number,
            context=runtime.context(request),
        )
        return Done()

    return router

"""The eID card as an :class:`~macnss_auth.Authenticator`: at a kiosk or from a phone's upload.

Flow::

    begin(subject)            -> Challenge with data["nonce"] (8 random bytes, hex),
                                 single use, short-lived, stored server-side
    kiosk:  DocumentReader.read(password, active_auth_challenge=nonce) -> DocumentRead
    phone:  reads the card itself and uploads a bundle (see docs/document-verification.md)
    verify(challenge, evidence) -> AuthResult at HIGH assurance

``verify`` consumes the challenge atomically, verifies the document against
the trust store (passive authentication; active authentication over *this*
nonce; chip authentication evidence from a kiosk reader), then binds the
document to the subject: the document number (or personal number) read from
a verified DG1/DG11 must match the one enrolled for the subject, which the
store keeps only as a keyed hash (HMAC-SHA256 under ``binding_key``).

Trust in evidence. A :class:`~macnss_auth.nfc.reader.DocumentRead` is the
output of a reader running in *this* process (a kiosk): its Chip
Authentication claim is believed, and it must have been read for this
challenge's nonce. Anything that arrives over a network (a phone) must be an
upload bundle: then only Active Authentication over the nonce proves the chip.
Never rebuild a ``DocumentRead`` from data a client sent.

Assurance: HIGH when the chip proved it is not a clone (active or chip
authentication passed); SUBSTANTIAL when a laxer policy accepted a document
on passive authentication alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import attrs

from macnss_auth.attempts import MethodEvents, commit_group_of, grouped
from macnss_auth.audit.events import AuditAction, AuditLog, Outcome
from macnss_auth.authenticator import (
    AssuranceLevel,
    AuthResult,
    Challenge,
    ClientContext,
)
from macnss_auth.challenges import challenge_failure, challenge_id_of, subject_of
from macnss_auth.clock import Clock, RandomSource, SystemClock, SystemRandom
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeUsed,
    ConfigurationError,
    DocumentNotGenuine,
    MacnssAuthError,
    Reason,
    VerificationThrottled,
)
from macnss_auth.nfc.lds import parse_dg1
from macnss_auth.nfc.lds.text import parse_dg11
from macnss_auth.nfc.phone import (
    PhoneEvidence,
    PhoneLimits,
    PhoneSession,
    PhoneSessionFailed,
)
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.reader import DocumentRead
from macnss_auth.nfc.verify import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    ChipAuthenticationOutcome,
    DocumentBundle,
    DocumentRejected,
    DocumentVerification,
    VerificationPolicy,
    decode_bundle,
    inspect_document,
)
from macnss_auth.secret import Secret
from macnss_auth.store.base import ChallengeRecord, Enrollment, Store
from macnss_auth.throttle import FailureThrottle, ThrottlePolicy

__all__ = ["EidAuthenticator", "EidEvidence"]

#: What ``verify`` accepts: a kiosk reader's result, or a phone's upload (decoded or JSON).
#: A phone session (or its evidence) comes from :meth:`EidAuthenticator.phone_session`.
EidEvidence = (
    DocumentRead | DocumentBundle | PhoneSession | PhoneEvidence | str | bytes | Mapping[str, Any]
)

_METHOD = "eid"
_NONCE_BYTES = 8
_BINDINGS = ("document_number", "personal_number")
# Enrollment of an unknown subject is compared against this, so that both paths do the same work.
_NO_BINDING = bytes(32)


@attrs.frozen
class _Evidence:
    """Kiosk reads and phone uploads, in one shape."""

    data_groups: Mapping[int, bytes] = attrs.field(repr=False)
    sod: bytes = attrs.field(repr=False)
    aa_signature: bytes | None = attrs.field(repr=False)
    chip_authentication: ChipAuthenticationOutcome | None
    #: kiosk, upload, split or relay: how the evidence reached the server.
    mode: str = "kiosk"
    #: A phone session that ended without evidence: raised once the challenge is consumed.
    failure: PhoneSessionFailed | None = attrs.field(default=None, eq=False)

    @property
    def remote_chip_authentication(self) -> bool:
        """Whether the server ran Chip Authentication through a phone."""
        return self.mode in ("split", "relay")

    @classmethod
    def of(cls, evidence: EidEvidence, *, nonce: bytes) -> _Evidence:
        """Normalize; uploads are decoded here; a kiosk read must be for ``nonce``.

        Raises:
            BundleFormatError: an upload that is not a valid bundle.
            DocumentNotGenuine: a kiosk read made for another challenge.
        """
        if isinstance(evidence, DocumentRead):
            if evidence.challenge is None or not hmac.compare_digest(evidence.challenge, nonce):
                raise DocumentNotGenuine("the card was read for another challenge")
            return cls(
                evidence.data_groups,
                evidence.files.get("SOD", b""),
                evidence.active_auth_signature,
                evidence.chip_authentication_outcome(),
            )
        if isinstance(evidence, PhoneSession):
            if not evidence.finished:
                # Verifying a running session ends it: its challenge is consumed too.
                evidence.abort()
            if evidence.failure is not None:
                # Raised after the challenge is consumed: a failed session burns it.
                mode = evidence.mode.value if evidence.mode is not None else "unknown"
                failed = PhoneSessionFailed(evidence.failure)
                return cls({}, b"", None, None, mode, failed)
            evidence = evidence.evidence
        if isinstance(evidence, PhoneEvidence):
            if not hmac.compare_digest(evidence.challenge, nonce):
                raise DocumentNotGenuine("the phone session answered another challenge")
            return cls(
                evidence.data_groups,
                evidence.sod,
                evidence.aa_signature,
                evidence.chip_authentication,
                evidence.mode.value,
            )
        bundle = evidence if isinstance(evidence, DocumentBundle) else decode_bundle(evidence)
        # A phone's claim to have run Chip Authentication cannot be checked remotely.
        return cls(bundle.data_groups, bundle.sod, bundle.aa_signature, None, "upload")


def _proof_name(check: str, *, remote: bool) -> str:
    # Chip Authentication run by the server through a phone is named apart from a kiosk's.
    return "chip_authentication_remote" if remote and check == "chip_authentication" else check


class EidAuthenticator:
    """Authenticates a subject by their eID card.

    Args:
        store: challenges, enrollments (keyed hashes of ID numbers), throttle counters.
        audit: where every begin/verify/enroll goes.
        trust_store: the CSCAs (master lists) documents must chain to.
        binding_key: at least 32 bytes; keys the hash of enrolled ID numbers.
        clock / random: the trusted time and the nonce source.
        policy: when a document is genuine (default: PA plus AA or CA).
        throttle_policy: attempts per subject.
        challenge_ttl: seconds a nonce stays valid (default 120: a tap takes seconds).
    """

    assurance = AssuranceLevel.HIGH

    def __init__(
        self,
        *,
        store: Store,
        audit: AuditLog,
        trust_store: TrustStore,
        binding_key: bytes,
        clock: Clock | None = None,
        random: RandomSource | None = None,
        policy: VerificationPolicy | None = None,
        throttle_policy: ThrottlePolicy | None = None,
        challenge_ttl: float = 120.0,
    ) -> None:
        if len(binding_key) < 32:
            raise ConfigurationError("the binding key must be at least 32 bytes")
        if not 0 < challenge_ttl <= 600:
            raise ConfigurationError("the challenge TTL must be between 0 and 600 seconds")
        self._store = store
        self._audit = audit
        self._trust = trust_store
        self._binding_key = binding_key
        self._clock = clock or SystemClock()
        self._random = random or SystemRandom()
        self._record = MethodEvents(audit=audit, clock=self._clock, method=_METHOD).record
        self.policy = policy or VerificationPolicy()
        self._ttl = challenge_ttl
        self._throttle = FailureThrottle(
            store=store, clock=self._clock, namespace=_METHOD, policy=throttle_policy
        )
        self._group = commit_group_of(store, audit)

    def __repr__(self) -> str:
        return f"EidAuthenticator(policy={self.policy!r})"

    @property
    def method(self) -> str:
        """``"eid"``."""
        return _METHOD

    # Enrollment ----------------------------------------------------------------------

    def _binding(self, kind: str, value: str) -> bytes:
        normalized = value.strip().upper().rstrip("<").replace("<", "")
        message = kind.encode() + b"\x00" + normalized.encode()
        return hmac.new(self._binding_key, message, hashlib.sha256).digest()

    def enroll(
        self,
        subject: str,
        *,
        document_number: str | None = None,
        personal_number: str | None = None,
        context: ClientContext | None = None,
    ) -> None:
        """Bind ``subject`` to a document number or a national personal number.

        A personal number survives card renewals; a document number changes
        with each new card. Exactly one must be given.

        Raises:
            ConfigurationError: neither or both given, or an empty value.
            MalformedInput: ``subject`` is not a usable subject id.
        """
        subject = subject_of(subject)
        given = [
            (k, v)
            for k, v in (("document_number", document_number), ("personal_number", personal_number))
            if v
        ]
        if len(given) != 1:
            raise ConfigurationError("give exactly one of document_number and personal_number")
        kind, value = given[0]
        now = self._clock.now()
        self._store.put_enrollment(
            Enrollment(
                subject=subject,
                method=_METHOD,
                secret=Secret(self._binding(kind, value)),
                params={"binding": kind},
                confirmed=True,
                created_at=now,
            )
        )
        self._record(
            AuditAction.ENROLL, Outcome.SUCCESS, subject, context, details={"binding": kind}
        )

    # Authentication ------------------------------------------------------------------

    def begin(self, subject: str, *, context: ClientContext | None = None) -> Challenge:
        """Issue a single-use nonce for the card to sign.

        The challenge looks the same whether or not ``subject`` is enrolled.

        Raises:
            MalformedInput: ``subject`` is not a usable subject id.
        """
        subject = subject_of(subject)
        now = self._clock.now()
        nonce = self._random.token_bytes(_NONCE_BYTES)
        challenge = Challenge(
            id=Challenge.new_id(self._random),
            subject=subject,
            method=_METHOD,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=self._ttl),
            hint=None,
            data={
                "nonce": nonce.hex(),
                "bundle_format": BUNDLE_FORMAT,
                "bundle_version": str(BUNDLE_VERSION),
            },
        )
        self._store.create_challenge(
            ChallengeRecord(
                challenge=challenge,
                slot=f"{_METHOD}:{subject}:{challenge.id}",
                verifier=nonce,
                max_attempts=1,
            )
        )
        self._record(AuditAction.BEGIN, Outcome.INFO, subject, context)
        return challenge

    def verify(
        self,
        challenge: Challenge | str,
        response: EidEvidence,
        *,
        context: ClientContext | None = None,
    ) -> AuthResult:
        """Verify the document evidence for a challenge from :meth:`begin`.

        Raises:
            ChallengeNotFound / ChallengeExpired / ChallengeUsed: the challenge
                cannot be answered (each nonce serves one attempt).
            VerificationThrottled: too many recent attempts for the subject.
            DocumentNotGenuine: the document failed verification (a
                ``DocumentRejected`` whose ``verification`` lists every check).
            AuthenticationFailed: (reason ``document_mismatch``) a genuine
                document of someone other than the enrolled person.
            MalformedInput: an upload that is not a valid bundle.
        """
        challenge_id = challenge_id_of(challenge)
        now = self._clock.now()
        # With the audit log in the store's database these are two transactions of
        # one durable commit each: the nonce and the throttle before the document
        # check, the verdict after it. The check takes milliseconds and runs
        # between them, holding no write lock.
        with grouped(self._group):
            record, evidence = self._take_nonce(challenge_id, response, now, context)
        subject = record.challenge.subject
        verification = self._checked(evidence, record.verifier, response, subject, context)
        with grouped(self._group):
            return self._verdict(verification, evidence, subject, now, context)

    def _take_nonce(
        self,
        challenge_id: str,
        response: EidEvidence,
        now: dt.datetime,
        context: ClientContext | None,
    ) -> tuple[ChallengeRecord, _Evidence]:
        """The live challenge, used up, and the decoded evidence; every refusal audited."""
        record = self._store.get_challenge(challenge_id)
        failure = challenge_failure(record, _METHOD, now)
        if failure is not None or record is None:
            failure = failure or ChallengeUsed()
            subject = record.challenge.subject if record is not None else None
            self._record(
                AuditAction.VERIFY, Outcome.FAILURE, subject, context, reason=failure.reason
            )
            raise failure
        subject = record.challenge.subject
        try:
            self._throttle.acquire(subject, context)
        except VerificationThrottled as exc:
            self._record(AuditAction.VERIFY, Outcome.FAILURE, subject, context, reason=exc.reason)
            raise
        try:
            # Decode before the nonce is used up: an upload that cannot even be
            # read is refused (and audited) without costing the person the nonce.
            evidence = _Evidence.of(response, nonce=record.verifier)
        except MacnssAuthError as exc:
            reason = (
                exc.reason if isinstance(exc, AuthenticationFailed) else Reason.MALFORMED_RESPONSE
            )
            self._record(AuditAction.VERIFY, Outcome.FAILURE, subject, context, reason=reason)
            raise
        if self._store.consume_challenge(challenge_id, now) is None:
            # Another request answered this nonce first.
            self._record(
                AuditAction.VERIFY, Outcome.FAILURE, subject, context, reason=Reason.CHALLENGE_USED
            )
            raise ChallengeUsed()
        return record, evidence

    def _checked(
        self,
        evidence: _Evidence,
        nonce: bytes,
        response: EidEvidence,
        subject: str,
        context: ClientContext | None,
    ) -> DocumentVerification:
        """The document's checks; a document that cannot be checked at all is audited."""
        try:
            return self._verify_evidence(evidence, nonce=nonce)
        except MacnssAuthError as exc:
            reason = (
                exc.reason if isinstance(exc, AuthenticationFailed) else Reason.MALFORMED_RESPONSE
            )
            failure_details = None
            if isinstance(exc, PhoneSessionFailed) and isinstance(response, PhoneSession):
                mode = response.mode.value if response.mode is not None else "unknown"
                failure_details = {"mode": mode, "session_failure": exc.failure.value}
            self._record(
                AuditAction.VERIFY,
                Outcome.FAILURE,
                subject,
                context,
                reason=reason,
                details=failure_details,
            )
            raise

    def _verdict(
        self,
        verification: DocumentVerification,
        evidence: _Evidence,
        subject: str,
        now: dt.datetime,
        context: ClientContext | None,
    ) -> AuthResult:
        """Genuine and the enrolled person's: the result; otherwise an audited refusal."""
        details = {
            "checks_failed": ",".join(
                c.name for c in verification.checks if c.status.value == "failed"
            ),
            "mode": evidence.mode,
        }
        if not verification.genuine:
            self._record(
                AuditAction.VERIFY,
                Outcome.FAILURE,
                subject,
                context,
                reason=Reason.DOCUMENT_NOT_GENUINE,
                details=details,
            )
            raise DocumentRejected(verification=verification)
        claims = self._claims(verification, evidence.data_groups)
        if not self._bound_to(subject, claims):
            self._record(
                AuditAction.VERIFY,
                Outcome.FAILURE,
                subject,
                context,
                reason=Reason.DOCUMENT_MISMATCH,
            )
            raise AuthenticationFailed(reason=Reason.DOCUMENT_MISMATCH)
        self._throttle.release(subject, context)
        chip_proved = any(
            c.passed
            for c in verification.checks
            if c.name in ("active_authentication", "chip_authentication")
        )
        assurance = AssuranceLevel.HIGH if chip_proved else AssuranceLevel.SUBSTANTIAL
        proof = ",".join(
            _proof_name(c.name, remote=evidence.remote_chip_authentication)
            for c in verification.checks
            if c.passed and c.name in ("active_authentication", "chip_authentication")
        )
        event_id = self._record(
            AuditAction.VERIFY,
            Outcome.SUCCESS,
            subject,
            context,
            details={"assurance": assurance.name.lower(), "proof": proof, "mode": evidence.mode},
        )
        return AuthResult(
            subject=subject,
            method=_METHOD,
            authenticated_at=now,
            assurance=assurance,
            claims=claims,
            audit_event_id=event_id,
            details={"proof": proof, "document_signer": verification.document_signer or ""},
        )

    def phone_session(
        self, challenge: Challenge | str, *, limits: PhoneLimits | None = None
    ) -> PhoneSession:
        """A phone session (split or relay mode) bound to a live challenge from :meth:`begin`.

        Drive it with the phone's messages, then pass it to :meth:`verify`
        (which consumes the challenge, whether the session finished or failed).

        Raises:
            ChallengeNotFound / ChallengeExpired / ChallengeUsed: the challenge
                cannot be answered.
        """
        challenge_id = challenge_id_of(challenge)
        now = self._clock.now()
        record = self._store.get_challenge(challenge_id)
        failure = challenge_failure(record, _METHOD, now)
        if failure is not None or record is None:
            raise failure or ChallengeUsed()
        return PhoneSession(
            challenge_id=challenge_id,
            nonce=record.verifier,
            expires_at=record.challenge.expires_at,
            clock=self._clock,
            random=self._random,
            limits=limits,
        )

    def _verify_evidence(self, evidence: _Evidence, *, nonce: bytes) -> DocumentVerification:
        if evidence.failure is not None:
            raise evidence.failure
        # An AA signature is checked over this session's nonce, never over what the client says.
        # inspect, not verify: a rejected document is audited with its checks below.
        return inspect_document(
            data_groups=evidence.data_groups,
            sod=evidence.sod,
            trust_store=self._trust,
            clock=self._clock,
            policy=self.policy,
            aa_challenge=nonce if evidence.aa_signature is not None else None,
            aa_signature=evidence.aa_signature,
            chip_authentication=evidence.chip_authentication,
        )

    @staticmethod
    def _claims(verification: DocumentVerification, groups: Mapping[int, bytes]) -> dict[str, str]:
        """Claims from verified data groups only."""
        verified = verification.verified_data_groups
        claims: dict[str, str] = {}
        if 1 in verified:
            mrz = parse_dg1(groups[1])
            claims.update(
                document_code=mrz.document_code.rstrip("<"),
                issuing_state=mrz.issuing_state.rstrip("<"),
                document_number=mrz.document_number.rstrip("<"),
                surname=mrz.primary_identifier.replace("<", " ").strip(),
                given_names=mrz.secondary_identifier.replace("<", " ").strip(),
                nationality=mrz.nationality.rstrip("<"),
                date_of_birth=mrz.date_of_birth,
                sex=mrz.sex,
                date_of_expiry=mrz.date_of_expiry,
            )
        if 11 in verified:
            try:
                dg11 = parse_dg11(groups[11])
            except MacnssAuthError:
                dg11 = None
            if dg11 is not None:
                for name in ("full_name", "personal_number", "place_of_birth"):
                    value = getattr(dg11, name)
                    if value:
                        claims[name] = value
        if 2 in verified:
            # A reference to the verified face image, not the image itself.
            claims["face_sha256"] = hashlib.sha256(groups[2]).hexdigest()
        return claims

    def _bound_to(self, subject: str, claims: Mapping[str, str]) -> bool:
        enrollment = self._store.get_enrollment(subject, _METHOD)
        kind = str(enrollment.params.get("binding", "")) if enrollment is not None else ""
        if kind not in _BINDINGS:
            kind = "document_number"
        expected = enrollment.secret.reveal() if enrollment is not None else _NO_BINDING
        candidate = self._binding(kind, claims.get(kind, ""))
        matches = hmac.compare_digest(candidate, expected)
        return matches and enrollment is not None and bool(claims.get(kind))

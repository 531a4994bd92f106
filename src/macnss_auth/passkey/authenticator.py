"""Passkeys (W3C WebAuthn) as an :class:`~macnss_auth.Authenticator`, on py_webauthn.

Theory of operation. Two ceremonies, each a single-use challenge in the store:

* *Registration* (after the person has logged in by another method):
  :meth:`PasskeyAuthenticator.begin_registration` returns a challenge whose
  ``data["options"]`` is the ``PublicKeyCredentialCreationOptions`` JSON for
  ``navigator.credentials.create()``; :meth:`~PasskeyAuthenticator.finish_registration`
  takes the browser's ``PublicKeyCredential.toJSON()`` and stores the credential.
* *Authentication*: :meth:`~PasskeyAuthenticator.begin` (with a subject, or
  without one for username-less login with a discoverable credential) returns
  the ``PublicKeyCredentialRequestOptions`` JSON; :meth:`~PasskeyAuthenticator.verify`
  takes the assertion JSON and returns an :class:`~macnss_auth.AuthResult`.

Every response is first read strictly (:mod:`macnss_auth.passkey._wire`) and
checked step by step against the WebAuthn verification procedure (§7.1/§7.2),
so that each failure has a stable :class:`~macnss_auth.errors.Reason`; then
py_webauthn runs the full verification (signature, attestation statement) on
the same bytes. Nothing the client says about the challenge is trusted: the
stored record names the subject, the challenge bytes, the RP id and the origin
the challenge is bound to.

State in the :class:`~macnss_auth.store.Store` (no new store operation):

* per credential, an enrollment keyed by a hash of its credential id
  (method ``passkey-credential``): the COSE public key as the sealed secret
  (sealing gives integrity: a public key swapped in the database does not
  open), and owner, user handle, flags at registration, attestation kind;
* per subject, an enrollment (method ``passkey``): the WebAuthn user handle
  (sealed), written once;
* per subject, numbered *slots*, one per credential, so that no write ever
  rewrites another credential's entry: slot ``i`` is a monotonic counter
  (its *claim*: even when free, odd when taken) and an enrollment (method
  ``passkey-slot-<i>``) naming the credential and the claim it was written
  under. A registration takes the first free slot below ``max_credentials``
  with ``advance(claim + 1)``, a compare-and-set exactly one racer wins, so
  concurrent registrations and removals never lose each other's credential
  and the limit holds under any concurrency; a removal frees the slot with
  ``advance(claim + 1)`` again. Listing walks the slots up to the first
  never-claimed one;
* per credential, the signature counter as a monotonic counter: the atomic
  ``advance`` refuses a counter that does not grow (a possibly cloned
  authenticator), whatever the number of service instances.

The per-credential record is authoritative: a slot whose credential record is
gone is free (a removal that stopped half-way is finished by the next
registration). A registration that stops between taking a slot and writing
it (a process killed between two store calls) leaves that slot taken: the
subject can hold one passkey fewer until the service raises
``max_credentials``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    AuthenticationCredential,
    AuthenticatorAssertionResponse,
    AuthenticatorAttestationResponse,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)
from webauthn.registration.verify_registration_response import VerifiedRegistration

from macnss_auth.attempts import MethodEvents, commit_group_of, grouped
from macnss_auth.audit.events import AuditAction, AuditLog, Outcome
from macnss_auth.authenticator import AuthResult, Challenge, ClientContext
from macnss_auth.challenges import challenge_failure, challenge_id_of
from macnss_auth.clock import Clock, RandomSource, SystemClock, SystemRandom
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeNotFound,
    ChallengeUsed,
    ConfigurationError,
    InvalidCode,
    Reason,
)
from macnss_auth.passkey._wire import (
    Assertion,
    Attestation,
    AuthenticatorData,
    ClientData,
    b64url,
    b64url_decode,
    parse_assertion,
    parse_attestation,
)
from macnss_auth.passkey.assurance import passkey_assurance
from macnss_auth.secret import Secret
from macnss_auth.store.base import ChallengeRecord, Enrollment, Store
from macnss_auth.throttle import FailureThrottle, ThrottlePolicy, key_part

__all__ = [
    "AttestationKind",
    "AttestationPolicy",
    "PasskeyAuthenticator",
    "PasskeyCredential",
    "PasskeyResponse",
    "Requirement",
]

#: ``user_verification`` and ``resident_key`` settings (WebAuthn's own words).
Requirement = Literal["required", "preferred"]

#: What ``verify`` and ``finish_registration`` accept: ``PublicKeyCredential.toJSON()``
#: as text, bytes or an already decoded object.
PasskeyResponse = str | bytes | Mapping[str, Any]

_METHOD = "passkey"
_REGISTRATION = "passkey-registration"
_CREDENTIAL = "passkey-credential"
_CHALLENGE_BYTES = 32
_USER_HANDLE_BYTES = 32
# Slots a subject's credentials may occupy (max_credentials is at most this).
_MAX_SLOTS = 100
# ES256 first: every platform authenticator offers it; EdDSA and RS256 for security keys
# and Windows Hello.
_ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
# Credential id lengths of common authenticators (TPM/Windows Hello, Apple and
# Android passkeys, security keys) and transports browsers report for them.
_DECOY_LENGTHS = (16, 20, 32, 32, 64, 65)
_DECOY_TRANSPORTS = (("internal",), ("hybrid", "internal"), ("internal", "hybrid"), ("usb", "nfc"))
_ATTESTATION_FORMATS = frozenset(f.value for f in AttestationFormat) - {"none"}
_TRANSPORTS = frozenset(t.value for t in AuthenticatorTransport)


def _credential_key(credential_id: bytes) -> str:
    # A fixed-length store key, whatever the credential id's length (up to 1023 bytes).
    return b64url(hashlib.sha256(credential_id).digest())


def _slot_method(index: int) -> str:
    return f"{_METHOD}-slot-{index:d}"


def _slot_key(subject: str, index: int) -> str:
    # key_part: a subject may hold any text; the counter key must stay unambiguous.
    return f"{_METHOD}:slot:{key_part(subject, field='subject')}:{index:d}"


def _tag(credential_id: bytes) -> str:
    """A short letters-only label of a credential for audit and display.

    Letters only: the audit screen refuses values with long digit runs.
    """
    digest = hashlib.sha256(b"macnss-auth/passkey-tag\x00" + credential_id).digest()
    return "".join(chr(97 + b % 26) for b in digest[:10])


def _check_origin(origin: str, rp_id: str) -> None:
    parts = urlsplit(origin)
    host = parts.hostname or ""
    if parts.path or parts.query or parts.fragment or parts.username or not host:
        raise ConfigurationError(f"origin {origin!r} must be scheme://host[:port] only")
    if parts.scheme != "https" and not (parts.scheme == "http" and host == "localhost"):
        # WebAuthn needs a secure context; http is one only on localhost.
        raise ConfigurationError(f"origin {origin!r} must be https (or http://localhost)")
    if host != rp_id and not host.endswith("." + rp_id):
        raise ConfigurationError(f"the RP id {rp_id!r} is not a suffix of origin {origin!r}")


def _roots(value: Mapping[str, Sequence[bytes]]) -> Mapping[str, tuple[bytes, ...]]:
    return {str(k): tuple(v) for k, v in dict(value).items()}


def _check_rp_id(rp_id: str) -> None:
    if not rp_id or rp_id != rp_id.lower() or "/" in rp_id or ":" in rp_id:
        raise ConfigurationError("the RP id must be a lower-case host name")
    try:
        ipaddress.ip_address(rp_id)
    except ValueError:
        return
    raise ConfigurationError("the RP id must be a domain name (or localhost), not an IP address")


class AttestationKind(str, enum.Enum):
    """What vouched for a passkey's authenticator at registration."""

    NONE = "none"  # attestation "none": nothing is known about the device
    SELF = "self"  # signed by the credential's own key: proves nothing about the model
    UNVERIFIED = "unverified"  # certificates, but no root configured for the format
    TRUSTED = "trusted"  # a chain to one of the configured roots


@attrs.frozen
class AttestationPolicy:
    """Which authenticators may register.

    Attributes:
        require_trusted: refuse registrations without an attestation that chains
            to one of ``roots`` (``none`` and self attestation are refused).
            Default False: attestation ``none``, any authenticator.
        roots: PEM trust roots per attestation format (``"packed"``, ``"tpm"``,
            ``"android-key"``, ``"apple"``...), e.g. the roots of the FIDO
            Metadata Service entries the service accepts. Given without
            ``require_trusted``, attestations that come with certificates are
            still checked against them and recorded as ``trusted``.
    """

    require_trusted: bool = False
    roots: Mapping[str, tuple[bytes, ...]] = attrs.field(factory=dict, converter=_roots)

    def __attrs_post_init__(self) -> None:
        unknown = set(self.roots) - _ATTESTATION_FORMATS
        if unknown:
            raise ConfigurationError(f"unknown attestation formats: {sorted(unknown)}")
        if any(not pem.startswith(b"-----BEGIN") for v in self.roots.values() for pem in v):
            raise ConfigurationError("attestation roots must be PEM certificates")
        if self.require_trusted and not any(self.roots.values()):
            raise ConfigurationError("require_trusted needs trust roots")


@attrs.frozen
class PasskeyCredential:
    """A registered passkey, as the service may show it (no key material).

    Attributes:
        credential_id: the WebAuthn credential id.
        subject: its owner.
        name: what the person called it ("my phone"), if anything.
        created_at: when it was registered.
        aaguid: the authenticator model's AAGUID (all zeros when not attested).
        attestation: an :class:`AttestationKind`.
        backup_eligible: BE at registration: a synced (multi-device) passkey.
        backed_up: BS at registration.
        user_verified: UV at registration.
        transports: what the browser reported (``internal``, ``hybrid``, ``usb``...).
    """

    credential_id: bytes
    subject: str
    name: str
    created_at: dt.datetime
    aaguid: str
    attestation: AttestationKind
    backup_eligible: bool
    backed_up: bool
    user_verified: bool
    transports: tuple[str, ...] = ()

    @property
    def id_b64url(self) -> str:
        """The credential id as the browser shows it (base64url)."""
        return b64url(self.credential_id)

    @property
    def tag(self) -> str:
        """A short letters-only label, the one audit records use."""
        return _tag(self.credential_id)

    @property
    def device_bound(self) -> bool:
        """Whether the authenticator says the credential never leaves it (BE=0)."""
        return not self.backup_eligible


@attrs.frozen
class _Stored:
    """A credential record as read from the store."""

    credential: PasskeyCredential
    public_key: bytes = attrs.field(repr=False)
    user_handle: bytes = attrs.field(repr=False)
    generation: str


class PasskeyAuthenticator:
    """Passkeys (WebAuthn) behind the one ``Authenticator`` interface.

    Args (keyword-only):
        store: credentials, challenges, counters, throttle.
        audit: where every begin, verify, registration and removal goes.
        rp_id: the WebAuthn relying party id: the site's registrable domain
            (``"example.gov.ma"``) or ``"localhost"``.
        origins: the exact origins the pages run on (``"https://id.example.gov.ma"``).
        rp_name: the name browsers show when creating a passkey.
        clock / random: the trusted time and the challenge source.
        throttle_policy: attempts per subject (and per subject and client).
        user_verification: ``"required"`` (default: PIN or biometrics, two
            factors) or ``"preferred"`` (successes without UV reach LOW only).
        resident_key: ``"required"`` (default: discoverable credentials, so
            username-less login works) or ``"preferred"``.
        attestation: an :class:`AttestationPolicy` (default: ``none``).
        challenge_ttl: seconds a challenge lives (default 300; browsers time out
            the prompt after the same time).
        max_credentials: passkeys per person (default 10).
        list_credentials: name the subject's credentials in ``allowCredentials``
            (default True: needed for non-discoverable security keys). A
            subject without passkeys then gets decoys (WebAuthn §14.6.2), so
            that the options do not tell who has passkeys; False lists none
            (a discoverable-only deployment).
        decoy_key: the key (>= 32 bytes) the decoys are derived from; give
            every instance of a service the same one. Default: a fresh key
            per process (decoys change when it restarts).
    """

    def __init__(
        self,
        *,
        store: Store,
        audit: AuditLog,
        rp_id: str,
        origins: Sequence[str],
        rp_name: str = "macnss-auth",
        clock: Clock | None = None,
        random: RandomSource | None = None,
        throttle_policy: ThrottlePolicy | None = None,
        user_verification: Requirement = "required",
        resident_key: Requirement = "required",
        attestation: AttestationPolicy | None = None,
        challenge_ttl: float = 300.0,
        max_credentials: int = 10,
        list_credentials: bool = True,
        decoy_key: Secret | None = None,
    ) -> None:
        _check_rp_id(rp_id)
        if isinstance(origins, str) or not origins:
            raise ConfigurationError("give the allowed origins as a non-empty list")
        for origin in origins:
            _check_origin(origin, rp_id)
        if user_verification not in ("required", "preferred"):
            raise ConfigurationError("user_verification must be 'required' or 'preferred'")
        if resident_key not in ("required", "preferred"):
            raise ConfigurationError("resident_key must be 'required' or 'preferred'")
        if not 0 < challenge_ttl <= 900:
            raise ConfigurationError("the challenge TTL must be between 0 and 900 seconds")
        if not 1 <= max_credentials <= _MAX_SLOTS:
            raise ConfigurationError("max_credentials must be 1 to 100")
        self._store = store
        self._audit = audit
        self._group = commit_group_of(store, audit)
        self.rp_id = rp_id
        self.rp_name = rp_name
        self.origins = tuple(origins)
        self._clock = clock or SystemClock()
        self._random = random or SystemRandom()
        self._require_uv = user_verification == "required"
        self._resident = ResidentKeyRequirement(resident_key)
        self.attestation = attestation or AttestationPolicy()
        self._ttl = challenge_ttl
        self.max_credentials = max_credentials
        self._list_credentials = list_credentials
        if decoy_key is not None and len(decoy_key) < 32:
            raise ConfigurationError("the decoy key must be at least 32 bytes")
        # Drawn like a signing key, from the OS: not from ``random``, whose fixed
        # sequences the tests replay.
        self._decoy_key = decoy_key or Secret(secrets.token_bytes(32))
        self._rp_id_hash = hashlib.sha256(rp_id.encode()).digest()
        self._throttle = FailureThrottle(
            store=store, clock=self._clock, namespace=_METHOD, policy=throttle_policy
        )
        self._events = MethodEvents(audit=audit, clock=self._clock, method=_METHOD)
        self._record = self._events.record

    def __repr__(self) -> str:
        return f"PasskeyAuthenticator(rp_id={self.rp_id!r}, origins={list(self.origins)!r})"

    @property
    def method(self) -> str:
        """``"passkey"``."""
        return _METHOD

    # Credentials -------------------------------------------------------------------

    def credentials(self, subject: str) -> list[PasskeyCredential]:
        """The subject's registered passkeys, oldest first."""
        found = [stored.credential for _, _, stored in self._slots(subject)]
        return sorted(found, key=lambda c: c.created_at)

    def remove_credential(
        self, subject: str, credential_id: bytes | str, *, context: ClientContext | None = None
    ) -> bool:
        """Remove one of ``subject``'s passkeys (bytes or base64url id); True if it was theirs.

        Raises:
            MalformedInput: a text id that is not base64url.
        """
        raw = (
            credential_id
            if isinstance(credential_id, bytes)
            else b64url_decode(credential_id, field="credential_id")
        )
        stored = self._load(raw)
        removed = False
        if stored is not None and stored.credential.subject == subject:
            # The record first: from then on the credential is refused and its slot is
            # free for any registration to reuse, even if we stop before freeing it.
            held = [(i, claim) for i, claim, s in self._slots(subject) if s == stored]
            removed = self._store.delete_enrollment(_credential_key(raw), _CREDENTIAL)
            for index, claim in held:
                self._store.advance(_slot_key(subject, index), claim + 1)
        self._record(
            AuditAction.REVOKE,
            Outcome.SUCCESS if removed else Outcome.FAILURE,
            subject,
            context,
            reason=None if removed else Reason.UNKNOWN_CREDENTIAL,
            details={"credential": _tag(raw)},
        )
        return removed

    def unenroll(self, subject: str, *, context: ClientContext | None = None) -> int:
        """Remove every passkey of ``subject``; return how many there were."""
        count = 0
        for _, _, stored in self._slots(subject):
            count += self.remove_credential(
                subject, stored.credential.credential_id, context=context
            )
        self._store.delete_enrollment(subject, _METHOD)
        return count

    # Registration ------------------------------------------------------------------

    def begin_registration(
        self,
        subject: str,
        *,
        user_name: str | None = None,
        display_name: str | None = None,
        origin: str | None = None,
        context: ClientContext | None = None,
    ) -> Challenge:
        """Start registering a passkey for ``subject``, who has already logged in.

        The caller must have authenticated ``subject`` (by eID, TOTP, a code...):
        whoever can register a passkey for a subject can log in as them.
        ``data["options"]`` holds the creation options JSON for
        ``navigator.credentials.create()`` (binary fields in base64url).

        Args:
            user_name / display_name: what the browser's passkey list shows
                (default: the subject).
            origin: bind the ceremony to one of the configured origins.

        Raises:
            AuthenticationFailed: reason ``credential_limit`` when the subject
                has ``max_credentials`` passkeys already.
            ConfigurationError: an origin that is not configured.
        """
        now = self._clock.now()
        bound = self._bind_origin(origin)
        existing = [stored for _, _, stored in self._slots(subject)]
        if len(existing) >= self.max_credentials:
            self._record(
                AuditAction.ENROLL,
                Outcome.FAILURE,
                subject,
                context,
                reason=Reason.CREDENTIAL_LIMIT,
            )
            raise AuthenticationFailed(reason=Reason.CREDENTIAL_LIMIT)
        handle = self._user_handle(subject) or self._random.token_bytes(_USER_HANDLE_BYTES)
        challenge_bytes = self._random.token_bytes(_CHALLENGE_BYTES)
        uv = (
            UserVerificationRequirement.REQUIRED
            if self._require_uv
            else UserVerificationRequirement.PREFERRED
        )
        options = generate_registration_options(
            rp_id=self.rp_id,
            rp_name=self.rp_name,
            user_name=user_name or subject,
            user_id=handle,
            user_display_name=display_name or user_name or subject,
            challenge=challenge_bytes,
            timeout=int(self._ttl * 1000),
            attestation=(
                AttestationConveyancePreference.DIRECT
                if self.attestation.require_trusted or self.attestation.roots
                else AttestationConveyancePreference.NONE
            ),
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=self._resident,
                require_resident_key=self._resident is ResidentKeyRequirement.REQUIRED,
                user_verification=uv,
            ),
            exclude_credentials=[self._descriptor(s.credential) for s in existing],
            supported_pub_key_algs=_ALGORITHMS,
        )
        challenge = self._issue(
            _REGISTRATION,
            subject,
            now,
            options=options_to_json(options),
            origin=bound,
            verifier=challenge_bytes + handle,
            slot=f"{_REGISTRATION}:{subject}",
        )
        self._record(
            AuditAction.BEGIN, Outcome.INFO, subject, context, details={"ceremony": "register"}
        )
        return challenge

    def finish_registration(
        self,
        challenge: Challenge | str,
        response: PasskeyResponse,
        *,
        name: str = "",
        subject: str | None = None,
        context: ClientContext | None = None,
    ) -> PasskeyCredential:
        """Verify the browser's ``navigator.credentials.create()`` result and store the passkey.

        Args:
            challenge: the challenge from :meth:`begin_registration` (or its id).
            response: ``PublicKeyCredential.toJSON()`` (text, bytes or object).
            name: a label the person chose ("my phone"), at most 64 characters.
            subject: when given, the ceremony must be this subject's (a web
                layer passes the subject its caller is authorized for).

        Raises:
            ChallengeNotFound / ChallengeExpired / ChallengeUsed: the ceremony
                cannot be finished (each challenge serves one attempt).
            AuthenticationFailed: with reason ``origin_mismatch``,
                ``rp_id_mismatch``, ``challenge_mismatch``, ``user_not_present``,
                ``user_not_verified``, ``backup_state_invalid``,
                ``attestation_untrusted``, ``invalid_signature``,
                ``credential_exists`` or ``credential_limit``.
            MalformedInput: the response is not a registration response.
        """
        # One commit for the used challenge, the credential, its slot and the record.
        with grouped(self._group):
            return self._register(challenge, response, name=name, subject=subject, context=context)

    def _register(
        self,
        challenge: Challenge | str,
        response: PasskeyResponse,
        *,
        name: str,
        subject: str | None,
        context: ClientContext | None,
    ) -> PasskeyCredential:
        """:meth:`finish_registration` inside its commit group."""
        now = self._clock.now()
        challenge_id = challenge_id_of(challenge)
        record = self._store.get_challenge(challenge_id)
        failure = challenge_failure(record, _REGISTRATION, now)
        owner = record.challenge.subject if record is not None else None
        if failure is None and subject is not None and owner != subject:
            failure = ChallengeNotFound()
        if failure is not None or record is None or owner is None:
            raise self._failed(failure or ChallengeUsed(), owner, context, AuditAction.ENROLL)
        subject = owner
        if self._store.consume_challenge(challenge_id, now) is None:
            raise self._failed(ChallengeUsed(), subject, context, AuditAction.ENROLL)
        expected = record.verifier[:_CHALLENGE_BYTES]
        handle = record.verifier[_CHALLENGE_BYTES:]
        with self._malformed(subject, context, AuditAction.ENROLL):
            attestation = parse_attestation(response)
        reason = self._client_data_failure(
            attestation.client_data, "webauthn.create", expected, record.challenge
        ) or self._flags_failure(attestation.authenticator_data)
        if reason is None:
            reason = self._attestation_failure(attestation)
        if reason is not None:
            raise self._failed(
                AuthenticationFailed(reason=reason), subject, context, AuditAction.ENROLL
            )
        roots = self.attestation.roots
        try:
            try:
                verified = self._library_registration(attestation, expected, roots=roots)
                chained = bool(roots.get(attestation.fmt))
            except _ChainRefused:
                if self.attestation.require_trusted:
                    failure = AuthenticationFailed(reason=Reason.ATTESTATION_UNTRUSTED)
                    raise self._failed(failure, subject, context, AuditAction.ENROLL) from None
                # Not required: certificates from a root nobody vouched for are
                # merely unverified.
                verified = self._library_registration(attestation, expected, roots={})
                chained = False
        except _Invalid:
            failure = AuthenticationFailed(reason=Reason.INVALID_SIGNATURE)
            raise self._failed(failure, subject, context, AuditAction.ENROLL) from None
        key = _credential_key(attestation.credential_id)
        if self._store.get_enrollment(key, _CREDENTIAL) is not None:
            failure = AuthenticationFailed(reason=Reason.CREDENTIAL_EXISTS)
            raise self._failed(failure, subject, context, AuditAction.ENROLL)
        slot = self._claim_slot(subject)
        if slot is None:
            failure = AuthenticationFailed(reason=Reason.CREDENTIAL_LIMIT)
            raise self._failed(failure, subject, context, AuditAction.ENROLL)
        data = attestation.authenticator_data
        if attestation.fmt == "none":
            kind = AttestationKind.NONE
        elif not attestation.has_certificates:
            kind = AttestationKind.SELF
        else:
            kind = AttestationKind.TRUSTED if chained else AttestationKind.UNVERIFIED
        credential = PasskeyCredential(
            credential_id=attestation.credential_id,
            subject=subject,
            name=name.strip()[:64],
            created_at=now,
            aaguid=verified.aaguid,
            attestation=kind,
            backup_eligible=data.backup_eligible,
            backed_up=data.backed_up,
            user_verified=data.user_verified,
            transports=tuple(t for t in attestation.transports if t in _TRANSPORTS),
        )
        generation = self._random.token_bytes(16).hex()
        self._store.put_enrollment(
            Enrollment(
                subject=key,
                method=_CREDENTIAL,
                secret=Secret(verified.credential_public_key),
                params={
                    "owner": subject,
                    "credential_id": credential.id_b64url,
                    "user_handle": b64url(handle),
                    "generation": generation,
                    "name": credential.name,
                    "aaguid": credential.aaguid,
                    "attestation": kind.value,
                    "fmt": attestation.fmt,
                    "backup_eligible": int(credential.backup_eligible),
                    "backed_up": int(credential.backed_up),
                    "user_verified": int(credential.user_verified),
                    "transports": ",".join(credential.transports),
                },
                confirmed=True,
                created_at=now,
            )
        )
        if data.sign_count > 0:
            self._store.advance(self._counter_key(generation), data.sign_count)
        self._fill_slot(subject, slot, attestation.credential_id)
        if self._user_handle(subject) is None:
            self._store.put_enrollment(
                Enrollment(
                    subject=subject,
                    method=_METHOD,
                    secret=Secret(handle),
                    confirmed=True,
                    created_at=now,
                )
            )
        self._record(
            AuditAction.ENROLL,
            Outcome.SUCCESS,
            subject,
            context,
            details={
                "credential": credential.tag,
                "attestation": kind.value,
                "device_bound": str(credential.device_bound).lower(),
                "user_verified": str(credential.user_verified).lower(),
            },
        )
        return credential

    # Authentication ----------------------------------------------------------------

    def begin(
        self,
        subject: str | None = None,
        *,
        origin: str | None = None,
        context: ClientContext | None = None,
    ) -> Challenge:
        """Start a login; ``data["options"]`` holds the options for ``navigator.credentials.get()``.

        Without ``subject`` (or with ``""``) the login is username-less: the
        browser offers the discoverable passkeys it holds for the RP id and
        :meth:`verify` learns the subject from the credential.

        Raises:
            ConfigurationError: an origin that is not configured.
        """
        now = self._clock.now()
        bound = self._bind_origin(origin)
        who = subject or ""
        allow = (
            [self._descriptor(s.credential) for _, _, s in self._slots(who)]
            if who and self._list_credentials
            else []
        )
        if who and self._list_credentials and not allow:
            allow = self._decoys(who)
        challenge_bytes = self._random.token_bytes(_CHALLENGE_BYTES)
        options = generate_authentication_options(
            rp_id=self.rp_id,
            challenge=challenge_bytes,
            timeout=int(self._ttl * 1000),
            allow_credentials=allow,
            user_verification=(
                UserVerificationRequirement.REQUIRED
                if self._require_uv
                else UserVerificationRequirement.PREFERRED
            ),
        )
        challenge = self._issue(
            _METHOD,
            who,
            now,
            options=options_to_json(options),
            origin=bound,
            verifier=challenge_bytes,
            slot=None,
        )
        self._record(
            AuditAction.BEGIN,
            Outcome.INFO,
            who or None,
            context,
            details={"ceremony": "login" if who else "discoverable"},
        )
        return challenge

    def verify(
        self,
        challenge: Challenge | str,
        response: PasskeyResponse,
        *,
        context: ClientContext | None = None,
    ) -> AuthResult:
        """Verify an assertion: ``PublicKeyCredential.toJSON()`` of ``credentials.get()``.

        Raises:
            ChallengeNotFound / ChallengeExpired / ChallengeUsed: the challenge
                cannot be answered (each one serves one attempt).
            VerificationThrottled: too many recent failures (``LockedOut`` when locked).
            AuthenticationFailed: with reason ``unknown_credential`` (never
                registered, removed, or someone else's), ``origin_mismatch``,
                ``rp_id_mismatch``, ``challenge_mismatch`` (the browser signed
                another challenge), ``user_not_present``, ``user_not_verified``,
                ``backup_state_invalid``, ``sign_count_regressed`` (a counter
                that did not grow: possibly a cloned authenticator) or
                ``invalid_signature`` (an :class:`~macnss_auth.errors.InvalidCode`).
            MalformedInput: the response is not an assertion at all.
        """
        # One commit for the counted attempt, the used challenge, the counter and the record.
        with grouped(self._group):
            return self._verify(challenge, response, context=context)

    def _verify(
        self,
        challenge: Challenge | str,
        response: PasskeyResponse,
        *,
        context: ClientContext | None,
    ) -> AuthResult:
        """:meth:`verify` inside its commit group."""
        now = self._clock.now()
        challenge_id = challenge_id_of(challenge)
        record = self._store.get_challenge(challenge_id)
        failure = challenge_failure(record, _METHOD, now)
        if failure is not None or record is None:
            subject = (record.challenge.subject or None) if record is not None else None
            raise self._failed(failure or ChallengeUsed(), subject, context)
        named = record.challenge.subject
        if named:
            self._acquire(named, context)
        if self._store.consume_challenge(challenge_id, now) is None:
            raise self._failed(ChallengeUsed(), named or None, context)
        with self._malformed(named or None, context, AuditAction.VERIFY):
            assertion = parse_assertion(response)
        stored = self._load(assertion.credential_id)
        owner = stored.credential.subject if stored is not None else None
        if stored is None or (named and owner != named):
            failure = AuthenticationFailed(reason=Reason.UNKNOWN_CREDENTIAL)
            raise self._failed(failure, named or None, context)
        subject = stored.credential.subject
        if not named:
            self._acquire(subject, context)
        handle = assertion.user_handle
        if handle is None and not named:
            # WebAuthn §7.2 step 6: a username-less login must name its user.
            failure = AuthenticationFailed(reason=Reason.UNKNOWN_CREDENTIAL)
            raise self._failed(failure, subject, context)
        if handle is not None and not hmac.compare_digest(handle, stored.user_handle):
            failure = AuthenticationFailed(reason=Reason.UNKNOWN_CREDENTIAL)
            raise self._failed(failure, subject, context)
        data = assertion.authenticator_data
        reason = self._client_data_failure(
            assertion.client_data, "webauthn.get", record.verifier, record.challenge
        ) or self._flags_failure(data)
        if reason is None and data.backup_eligible != stored.credential.backup_eligible:
            # WebAuthn §6.1.3: BE never changes for a credential.
            reason = Reason.BACKUP_STATE_INVALID
        if reason is not None:
            raise self._failed(AuthenticationFailed(reason=reason), subject, context)
        try:
            verify_authentication_response(
                credential=_library_assertion(assertion),
                expected_challenge=record.verifier,
                expected_rp_id=self.rp_id,
                expected_origin=list(self.origins),
                credential_public_key=stored.public_key,
                # The counter is decided below, atomically and after the signature.
                credential_current_sign_count=0,
                require_user_verification=self._require_uv,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError):
            failure = InvalidCode(reason=Reason.INVALID_SIGNATURE)
            raise self._failed(failure, subject, context) from None
        if not self._counter_accepted(stored.generation, data.sign_count):
            failure = AuthenticationFailed(reason=Reason.SIGN_COUNT_REGRESSED)
            raise self._failed(
                failure, subject, context, details={"credential": stored.credential.tag}
            )
        self._throttle.release(subject, context)
        assurance = passkey_assurance(
            user_verified=data.user_verified,
            backup_eligible=data.backup_eligible,
            attestation_trusted=stored.credential.attestation is AttestationKind.TRUSTED,
        )
        details = {
            "credential": stored.credential.tag,
            "user_verified": str(data.user_verified).lower(),
            "backup_eligible": str(data.backup_eligible).lower(),
            "backed_up": str(data.backed_up).lower(),
            "attestation": stored.credential.attestation.value,
            "counter": str(data.sign_count),
            "nist_aal": str(assurance.nist_aal),
            "discoverable": str(not named).lower(),
        }
        event_id = self._record(
            AuditAction.VERIFY,
            Outcome.SUCCESS,
            subject,
            context,
            details={**details, "assurance": assurance.eidas},
        )
        return AuthResult(
            subject=subject,
            method=_METHOD,
            authenticated_at=now,
            assurance=assurance,
            audit_event_id=event_id,
            details=details,
        )

    def pending(self, challenge_id: str) -> Challenge | None:
        """The stored public challenge of a live ceremony of this method, or None (advisory).

        A web layer uses it to tell a username-less login (``subject == ""``)
        from a named one before it routes the answer.
        """
        record = self._store.get_challenge(challenge_id)
        if record is None or record.challenge.method not in (_METHOD, _REGISTRATION):
            return None
        return record.challenge

    # Checks --------------------------------------------------------------------------

    def _client_data_failure(
        self, client: ClientData, kind: str, expected: bytes, challenge: Challenge
    ) -> Reason | None:
        """WebAuthn §7.1 steps 7-10 / §7.2 steps 11-14, each with its own reason."""
        if client.type != kind:
            return Reason.CHALLENGE_MISMATCH
        if not hmac.compare_digest(client.challenge, expected):
            return Reason.CHALLENGE_MISMATCH
        bound = challenge.data.get("origin", "")
        if client.origin not in self.origins or (bound and client.origin != bound):
            return Reason.ORIGIN_MISMATCH
        if client.cross_origin:
            # The page was framed by another origin; never wanted here.
            return Reason.ORIGIN_MISMATCH
        if challenge.data.get("rp_id") != self.rp_id:
            return Reason.RP_ID_MISMATCH
        return None

    def _flags_failure(self, data: AuthenticatorData) -> Reason | None:
        """RP id hash and flags: §7.1 steps 13-17 / §7.2 steps 15-18."""
        if not hmac.compare_digest(data.rp_id_hash, self._rp_id_hash):
            return Reason.RP_ID_MISMATCH
        if not data.user_present:
            return Reason.USER_NOT_PRESENT
        if self._require_uv and not data.user_verified:
            return Reason.USER_NOT_VERIFIED
        if data.backed_up and not data.backup_eligible:
            return Reason.BACKUP_STATE_INVALID
        return None

    def _library_registration(
        self, attestation: Attestation, expected: bytes, *, roots: Mapping[str, tuple[bytes, ...]]
    ) -> VerifiedRegistration:
        """py_webauthn's verification of the very bytes we checked.

        Raises:
            _ChainRefused: the attestation's certificates do not chain to ``roots``.
            _Invalid: anything else (in practice the attestation signature,
                since our own checks passed).
        """
        try:
            return verify_registration_response(
                credential=RegistrationCredential(
                    id=b64url(attestation.credential_id),
                    raw_id=attestation.credential_id,
                    response=AuthenticatorAttestationResponse(
                        client_data_json=attestation.client_data.raw,
                        attestation_object=attestation.attestation_object,
                    ),
                ),
                expected_challenge=expected,
                expected_rp_id=self.rp_id,
                expected_origin=list(self.origins),
                require_user_verification=self._require_uv,
                supported_pub_key_algs=_ALGORITHMS,
                pem_root_certs_bytes_by_fmt={
                    AttestationFormat(fmt): list(pems) for fmt, pems in roots.items()
                }
                or None,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            # py_webauthn reports a chain that does not reach a root as a certificate error.
            if roots.get(attestation.fmt) and "certificate" in str(exc).lower():
                raise _ChainRefused from None
            raise _Invalid from None

    def _attestation_failure(self, attestation: Attestation) -> Reason | None:
        policy = self.attestation
        if not policy.require_trusted:
            return None
        if attestation.fmt == "none" or not attestation.has_certificates:
            return Reason.ATTESTATION_UNTRUSTED
        if not policy.roots.get(attestation.fmt):
            return Reason.ATTESTATION_UNTRUSTED
        return None

    def _counter_accepted(self, generation: str, count: int) -> bool:
        """WebAuthn §7.2 step 22, decided by the store's atomic compare-and-set.

        A counter of 0 means the authenticator keeps none (synced passkeys);
        it is fine only while no nonzero counter was ever seen.
        """
        key = self._counter_key(generation)
        if count == 0:
            return not self._store.current(key)
        return self._store.advance(key, count)

    # Helpers -------------------------------------------------------------------------

    def _bind_origin(self, origin: str | None) -> str:
        if origin is None:
            return self.origins[0] if len(self.origins) == 1 else ""
        if origin not in self.origins:
            raise ConfigurationError(f"origin {origin!r} is not configured")
        return origin

    def _issue(
        self,
        method: str,
        subject: str,
        now: dt.datetime,
        *,
        options: str,
        origin: str,
        verifier: bytes,
        slot: str | None,
    ) -> Challenge:
        challenge = Challenge(
            id=Challenge.new_id(self._random),
            subject=subject,
            method=method,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=self._ttl),
            data={"options": options, "rp_id": self.rp_id, "origin": origin},
        )
        self._store.create_challenge(
            ChallengeRecord(
                challenge=challenge,
                slot=slot or f"{method}:{challenge.id}",
                verifier=verifier,
                max_attempts=1,
            )
        )
        return challenge

    @staticmethod
    def _descriptor(credential: PasskeyCredential) -> PublicKeyCredentialDescriptor:
        return PublicKeyCredentialDescriptor(
            id=credential.credential_id,
            transports=[AuthenticatorTransport(t) for t in credential.transports] or None,
        )

    def _decoys(self, subject: str) -> list[PublicKeyCredentialDescriptor]:
        """Credentials ``subject`` would seem to have: the same ones on every request.

        Derived from the decoy key and the subject (the approach of webauthn-rs'
        fake credential generator), shaped like the passkeys people hold: mostly
        one, sometimes two; lengths and transports of common authenticators.
        Each costs the store reads a real one costs in :meth:`_slots` (its slot,
        its record, the next slot's claim), so that a database's round trips do
        not tell the two apart either.
        """
        seed = hmac.digest(
            self._decoy_key.reveal(),
            b"macnss-auth/passkey-decoy\x00%b\x00%b"
            % (self.rp_id.encode(), subject.encode("utf-8", "surrogatepass")),
            "sha256",
        )
        found = []
        for index in range(1 + (seed[0] % 4 == 0)):
            draw = hmac.digest(seed, bytes([index]), "sha512")
            length = _DECOY_LENGTHS[draw[0] % len(_DECOY_LENGTHS)]
            transports = _DECOY_TRANSPORTS[draw[1] % len(_DECOY_TRANSPORTS)]
            decoy = (draw[2:] + hmac.digest(seed, draw, "sha512"))[:length]
            self._store.get_enrollment(subject, _slot_method(index))
            self._store.get_enrollment(_credential_key(decoy), _CREDENTIAL)
            self._store.current(_slot_key(subject, index + 1))
            found.append(
                PublicKeyCredentialDescriptor(
                    id=decoy, transports=[AuthenticatorTransport(t) for t in transports]
                )
            )
        return found

    @staticmethod
    def _counter_key(generation: str) -> str:
        return f"passkey:sign:{generation}"

    def _user_handle(self, subject: str) -> bytes | None:
        entry = self._store.get_enrollment(subject, _METHOD)
        return entry.secret.reveal() if entry is not None else None

    def _load(self, credential_id: bytes) -> _Stored | None:
        entry = self._store.get_enrollment(_credential_key(credential_id), _CREDENTIAL)
        if entry is None:
            return None
        p = entry.params
        # The record is keyed by a hash of the id; the id it holds must be the one asked for.
        if not hmac.compare_digest(str(p["credential_id"]), b64url(credential_id)):
            return None
        transports = str(p.get("transports", ""))
        credential = PasskeyCredential(
            credential_id=credential_id,
            subject=str(p["owner"]),
            name=str(p.get("name", "")),
            created_at=entry.created_at,
            aaguid=str(p.get("aaguid", "")),
            attestation=AttestationKind(str(p.get("attestation", "none"))),
            backup_eligible=bool(int(p.get("backup_eligible", 0))),
            backed_up=bool(int(p.get("backed_up", 0))),
            user_verified=bool(int(p.get("user_verified", 0))),
            transports=tuple(t for t in transports.split(",") if t),
        )
        return _Stored(
            credential=credential,
            public_key=entry.secret.reveal(),
            user_handle=b64url_decode(str(p["user_handle"]), field="user_handle"),
            generation=str(p["generation"]),
        )

    def _slots(self, subject: str) -> list[tuple[int, int, _Stored]]:
        """(slot, claim, credential) for each of the subject's live credentials."""
        found = []
        for index in range(_MAX_SLOTS if subject else 0):
            claim = self._store.current(_slot_key(subject, index))
            if claim is None:
                # Slots are taken lowest first and never return to "never claimed".
                break
            if claim % 2 == 0:
                continue
            stored = self._in_slot(subject, index, claim)
            if stored is not None:
                found.append((index, claim, stored))
        return found

    def _in_slot(self, subject: str, index: int, claim: int) -> _Stored | None:
        """The live credential written in slot ``index`` under ``claim``, if any."""
        entry = self._store.get_enrollment(subject, _slot_method(index))
        if entry is None or int(entry.params.get("claim", -1)) != claim:
            return None  # being written, or written under an older claim
        stored = self._load(entry.secret.reveal())
        # The record decides: a removed (or foreign) credential is not the subject's.
        if stored is None or stored.credential.subject != subject:
            return None
        return stored

    def _claim_slot(self, subject: str) -> tuple[int, int] | None:
        """Take the first free slot below ``max_credentials``: (slot, claim), or None."""
        for index in range(self.max_credentials):
            key = _slot_key(subject, index)
            claim = self._store.current(key) or 0
            if claim % 2:
                entry = self._store.get_enrollment(subject, _slot_method(index))
                written = entry is not None and int(entry.params.get("claim", -1)) == claim
                if not written or self._in_slot(subject, index, claim) is not None:
                    continue  # taken (or being written)
                # Its credential record is gone: a removal stopped before freeing it.
                self._store.advance(key, claim + 1)
                claim = self._store.current(key) or 0
                if claim % 2:
                    continue
            # Compare-and-set: of all who saw this slot free, exactly one takes it.
            if self._store.advance(key, claim + 1):
                return index, claim + 1
        return None

    def _fill_slot(self, subject: str, slot: tuple[int, int], credential_id: bytes) -> None:
        """Write the slot this registration took (nobody else writes it under this claim)."""
        index, claim = slot
        self._store.put_enrollment(
            Enrollment(
                subject=subject,
                method=_slot_method(index),
                secret=Secret(credential_id),
                params={"claim": claim},
                confirmed=True,
                created_at=self._clock.now(),
            )
        )

    def _acquire(self, subject: str, context: ClientContext | None) -> None:
        self._events.throttle_step(self._throttle.acquire, subject, context, AuditAction.VERIFY)

    def _malformed(
        self, subject: str | None, context: ClientContext | None, action: AuditAction
    ) -> contextlib.AbstractContextManager[None]:
        return self._events.malformed(
            action, subject, context, reason=Reason.MALFORMED_RESPONSE, name_the_field=True
        )

    def _failed(
        self,
        failure: AuthenticationFailed,
        subject: str | None,
        context: ClientContext | None,
        action: AuditAction = AuditAction.VERIFY,
        *,
        details: Mapping[str, str] | None = None,
    ) -> AuthenticationFailed:
        self._record(
            action, Outcome.FAILURE, subject, context, reason=failure.reason, details=details
        )
        return failure


class _ChainRefused(Exception):
    """Internal: the attestation chain does not reach a configured root."""


class _Invalid(Exception):
    """Internal: py_webauthn refused the response."""


def _library_assertion(assertion: Assertion) -> AuthenticationCredential:
    """The parsed assertion as py_webauthn's struct, from the very bytes we checked."""
    return AuthenticationCredential(
        id=b64url(assertion.credential_id),
        raw_id=assertion.credential_id,
        response=AuthenticatorAssertionResponse(
            client_data_json=assertion.client_data.raw,
            authenticator_data=assertion.authenticator_data.raw,
            signature=assertion.signature,
            user_handle=assertion.user_handle,
        ),
    )

"""Passive, Active and Chip Authentication of a read document (ICAO 9303-11 §5-6, 9303-12).

Theory of operation:

1. **EF.SOD** is parsed; if it cannot be, nothing else can be trusted.
2. **SOD signature**: the CMS signature (and the messageDigest over the
   LDSSecurityObject) is checked with the document signer's key from the SOD.
3. **Chain**: the trust store validates the DS certificate: a trusted CSCA
   signed it (matched by name and key identifier), key usages allow it,
   both are valid now (from the injected clock, never the client's), the DS
   covered the SOD's signing time, and CRLs do not revoke it.
4. **Data group hashes**: every data group read is hashed with the SOD's
   algorithm and compared with the SOD. A data group the SOD does not list is
   reported *not performed*, never verified.
5. **Active Authentication**: the DG15 key is used only if DG15 passed step 4
   under a good signature and chain; the signature must cover the challenge
   the verifier chose.
6. **Chip Authentication**: the reader reports which key it authenticated;
   it must be a key of a DG14 that passed PA.

The verdict (``genuine``) then follows a :class:`VerificationPolicy`.

Two entry points share that one walk: :func:`verify_document` returns the
verification only for a genuine document and raises
:class:`DocumentRejected` otherwise (what a service wants: ignoring the result
cannot accept a forgery); :func:`inspect_document` returns every check whatever
the verdict (what a report, a CLI or a notebook wants).
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

import attrs

from macnss_auth.clock import Clock, SystemClock
from macnss_auth.errors import MacnssAuthError, UnsupportedAlgorithm
from macnss_auth.nfc.lds import (
    LdsFormatError,
    SecurityInfos,
    parse_card_security,
    parse_dg14,
    parse_dg15,
    parse_sod,
)
from macnss_auth.nfc.lds.sod import SecurityObject
from macnss_auth.nfc.pki import (
    Certificate,
    HashAlgorithm,
    RevocationStatus,
    SignatureInvalid,
    TrustStore,
    parse_certificate,
)
from macnss_auth.nfc.pki import clear_caches as pki_clear_caches
from macnss_auth.nfc.verify.active import verify_active_authentication
from macnss_auth.nfc.verify.result import (
    Check,
    CheckName,
    CheckStatus,
    ChipAuthenticity,
    DocumentRejected,
    DocumentVerification,
    VerificationPolicy,
)

_Report = Callable[[str, CheckStatus, str], None]

__all__ = [
    "CardSecurityVerification",
    "ChipAuthenticationOutcome",
    "clear_caches",
    "trusted_chip_authentication_key",
    "verify_card_security",
    "verify_document",
]

_PASSED, _FAILED, _SKIPPED = CheckStatus.PASSED, CheckStatus.FAILED, CheckStatus.NOT_PERFORMED


@attrs.frozen
class ChipAuthenticationOutcome:
    """What the reader reports after running Chip Authentication.

    Attributes:
        public_key: the chip's static public key the terminal used: the
            SubjectPublicKeyInfo DER from DG14, or its raw public value.
        completed: the chip proved the private key (secure messaging under the
            keys derived from CA worked).
        key_id: the CA key id, when DG14 has several.
    """

    public_key: bytes = attrs.field(repr=False)
    completed: bool
    key_id: int | None = None


@functools.lru_cache(maxsize=256)
def _dg14(data: bytes) -> SecurityInfos | None:
    # Cached by bytes: the same genuine DG14 arrives again and again on a server.
    try:
        return parse_dg14(data)
    except LdsFormatError:
        return None


def clear_caches() -> None:
    """Forget every cached parse (certificates, keys, DG14): for cold measurements."""
    pki_clear_caches()
    _dg14.cache_clear()


def _is_ec_key(dg15: bytes | None) -> bool:
    if dg15 is None:
        return False
    try:
        return parse_dg15(dg15).public_key.algorithm == "ec"
    except LdsFormatError:
        return False


def _hash_matches(sod: SecurityObject, number: int, data: bytes) -> bool:
    return hmac.compare_digest(sod.hash_algorithm.digest(data), sod.hashes[number])


def verify_document(
    *,
    data_groups: Mapping[int, bytes],
    sod: bytes,
    trust_store: TrustStore,
    clock: Clock | None = None,
    policy: VerificationPolicy | None = None,
    aa_challenge: bytes | None = None,
    aa_signature: bytes | None = None,
    chip_authentication: ChipAuthenticationOutcome | None = None,
    read_steps: Sequence[Check] = (),
    document_signers: Iterable[Certificate | bytes] = (),
) -> DocumentVerification:
    """Verify a document and return its verification only if it is genuine.

    The checks and arguments are those of :func:`inspect_document`; the
    returned record has ``genuine=True``, and only its
    ``verified_data_groups`` may be relied on.

    Raises:
        DocumentRejected: the document is not genuine under ``policy``; its
            ``verification`` attribute holds every check and the reason.
    """
    return inspect_document(
        data_groups=data_groups,
        sod=sod,
        trust_store=trust_store,
        clock=clock,
        policy=policy,
        aa_challenge=aa_challenge,
        aa_signature=aa_signature,
        chip_authentication=chip_authentication,
        read_steps=read_steps,
        document_signers=document_signers,
    ).require_genuine()


def inspect_document(
    *,
    data_groups: Mapping[int, bytes],
    sod: bytes,
    trust_store: TrustStore,
    clock: Clock | None = None,
    policy: VerificationPolicy | None = None,
    aa_challenge: bytes | None = None,
    aa_signature: bytes | None = None,
    chip_authentication: ChipAuthenticationOutcome | None = None,
    read_steps: Sequence[Check] = (),
    document_signers: Iterable[Certificate | bytes] = (),
) -> DocumentVerification:
    """Run every check on a document's data groups, EF.SOD and chip authentication.

    For reports (the CLI, notebooks, a kiosk's diagnostics): never raises for a
    bad document; every problem is a failed check and the verdict is
    ``genuine=False``. A service deciding whether to accept a document calls
    :func:`verify_document`, which raises instead.

    Args:
        data_groups: number -> file bytes as read.
        sod: the EF.SOD file.
        trust_store: the CSCAs and CRLs to trust.
        clock: the trusted time source (default: the system clock).
        policy: the verdict policy (default: :class:`VerificationPolicy`).
        aa_challenge / aa_signature: an Active Authentication exchange to check.
        chip_authentication: the reader's Chip Authentication outcome.
        read_steps: optional steps the reader could not complete
            (:attr:`~macnss_auth.nfc.reader.DocumentRead.steps`): their reasons and
            status words complete the ``chip_authentication`` /
            ``active_authentication`` checks; the others are reported as they are.
        document_signers: DS certificates (parsed or DER) to find the SOD's signer
            in when EF.SOD does not carry it (ICAO 9303-10 §4.6.2.2 lets the DS
            certificate travel through the PKD instead). They are validated like
            a carried one: only the trust store makes them trusted.
    """
    policy = policy or VerificationPolicy()
    now = (clock or SystemClock()).now()
    checks: list[Check] = []
    groups = {int(k): bytes(v) for k, v in data_groups.items()}

    def add(name: str, status: CheckStatus, reason: str) -> None:
        checks.append(Check(name, status, reason))

    try:
        parsed = parse_sod(sod)
    except (LdsFormatError, UnsupportedAlgorithm) as exc:
        add(CheckName.SOD, _FAILED, f"EF.SOD cannot be used: {exc}")
        for skipped in (CheckName.SOD_SIGNATURE, CheckName.CHAIN, CheckName.CRL):
            add(skipped, _SKIPPED, "no usable EF.SOD")
        for number in sorted(groups):
            add(CheckName.data_group_hash(number), _SKIPPED, "no usable EF.SOD")
        add(CheckName.ACTIVE_AUTHENTICATION, _SKIPPED, "no usable EF.SOD")
        add(CheckName.CHIP_AUTHENTICATION, _SKIPPED, "no usable EF.SOD")
        return _verdict(_merge(checks, read_steps), policy, frozenset(), {}, None)
    add(
        CheckName.SOD,
        _PASSED,
        f"LDSSecurityObject v{parsed.version}, {parsed.hash_algorithm.value}",
    )

    signer = parsed.signed.signer_certificate(_certificates(document_signers))
    signature_ok = False
    if signer is None:
        add(
            CheckName.SOD_SIGNATURE,
            _FAILED,
            "EF.SOD carries no document signer certificate and none given matches its signer",
        )
    else:
        try:
            parsed.signed.verify(signer)
            signature_ok = True
            scheme = parsed.signed.scheme
            add(CheckName.SOD_SIGNATURE, _PASSED, f"{scheme.kind.value} with {scheme.hash.value}")
        except SignatureInvalid as exc:
            add(CheckName.SOD_SIGNATURE, _FAILED, str(exc))
        except MacnssAuthError as exc:
            # An unsupported algorithm, or a DS key that is not a valid key.
            add(CheckName.SOD_SIGNATURE, _FAILED, f"cannot be checked: {exc}")

    chain_ok = False
    if signer is None:
        add(CheckName.CHAIN, _SKIPPED, "no document signer certificate")
        add(CheckName.CRL, _SKIPPED, "no document signer certificate")
    else:
        result = trust_store.validate_document_signer(
            signer, at=now, signing_time=parsed.signed.signing_time
        )
        chain_ok = result.trusted
        add(CheckName.CHAIN, _PASSED if result.trusted else _FAILED, result.reason)
        if result.revocation is RevocationStatus.GOOD:
            add(CheckName.CRL, _PASSED, result.revocation_reason)
        elif result.revocation is RevocationStatus.REVOKED:
            add(CheckName.CRL, _FAILED, result.revocation_reason)
        else:
            add(CheckName.CRL, _SKIPPED, result.revocation_reason)

    trusted = signature_ok and chain_ok
    verified: dict[int, bytes] = {}
    for number in sorted(set(groups) | set(parsed.hashes)):
        name = CheckName.data_group_hash(number)
        if number not in groups:
            add(name, _SKIPPED, "listed in the SOD but not read")
        elif number not in parsed.hashes:
            add(name, _SKIPPED, "present but not covered by the SOD: unverified")
        elif _hash_matches(parsed, number, groups[number]):
            add(name, _PASSED, f"{parsed.hash_algorithm.value} matches the SOD")
            if trusted:
                verified[number] = parsed.hashes[number]
        else:
            add(name, _FAILED, f"{parsed.hash_algorithm.value} differs from the SOD")

    hash_ok = {n for n in groups if n in parsed.hashes and _hash_matches(parsed, n, groups[n])}
    # A data group passed PA when its hash matched a validly signed SOD from a trusted signer.
    chain_accepted = chain_ok or not policy.require_trusted_chain
    pa_ok = hash_ok if signature_ok and chain_accepted else set()
    # DG14 matters only for an ECDSA AA hash or a CA key: parse it only then.
    needs_dg14 = chip_authentication is not None or (
        aa_signature is not None and _is_ec_key(groups.get(15))
    )
    dg14 = _dg14(groups[14]) if needs_dg14 and 14 in pa_ok else None

    _active_authentication(add, groups, pa_ok, dg14, (aa_challenge, aa_signature))
    _chip_authentication(add, groups, pa_ok, dg14, chip_authentication)
    return _verdict(
        _merge(checks, read_steps),
        policy,
        frozenset(verified),
        verified,
        signer.subject if signer else None,
    )


def _certificates(items: Iterable[Certificate | bytes]) -> list[Certificate]:
    out = []
    for item in items:
        if isinstance(item, Certificate):
            out.append(item)
            continue
        try:
            out.append(parse_certificate(bytes(item)))
        except MacnssAuthError:
            continue  # not a certificate: it cannot be the signer
    return out


_FOLDED = (CheckName.CHIP_AUTHENTICATION, CheckName.ACTIVE_AUTHENTICATION)


def _merge(checks: list[Check], steps: Sequence[Check]) -> list[Check]:
    """Fold the reader's steps into the verifier's checks.

    A CA/AA check the verifier could not perform takes the reader's status and
    reason (why it could not run); a failed one keeps its status and gains the
    chip's reason. A data group not read gains why. Other steps are appended.
    """
    out = list(checks)
    index = {c.name: i for i, c in enumerate(out)}
    for step in steps:
        if step.name in _FOLDED:
            where = index.get(step.name)
            if where is None:
                out.append(step)
            elif out[where].status is _SKIPPED:
                out[where] = step
            elif out[where].status is _FAILED:
                current = out[where]
                out[where] = Check(
                    current.name,
                    _FAILED,
                    f"{current.reason}: {step.reason}",
                    status_word=step.status_word,
                )
            continue
        if step.name.startswith("read_dg"):
            where = index.get(f"dg{step.name[7:]}_hash")
            if where is not None and out[where].status is _SKIPPED:
                current = out[where]
                out[where] = Check(
                    current.name,
                    _SKIPPED,
                    f"{current.reason}: {step.reason}",
                    status_word=step.status_word,
                )
        out.append(step)
    return out


def _active_authentication(
    report: _Report,
    groups: Mapping[int, bytes],
    pa_ok: set[int],
    dg14: SecurityInfos | None,
    exchange: tuple[bytes | None, bytes | None],
) -> None:
    name = CheckName.ACTIVE_AUTHENTICATION
    challenge, signature = exchange
    if challenge is None or signature is None:
        report(name, _SKIPPED, "no Active Authentication response")
        return
    if 15 not in groups:
        report(name, _FAILED, "a response was given but DG15 (the AA key) is missing")
        return
    if 15 not in pa_ok:
        report(name, _FAILED, "DG15 did not pass Passive Authentication; its key is not trusted")
        return
    try:
        key = parse_dg15(groups[15]).public_key
        info = dg14.active_authentication if dg14 is not None else None
        algorithm = info.signature_algorithm if info is not None else None
        verify_active_authentication(key, challenge, signature, ecdsa_algorithm=algorithm)
    except SignatureInvalid as exc:
        report(name, _FAILED, str(exc))
    except UnsupportedAlgorithm as exc:
        # The issuer's key (DG15 passed PA) on a curve this library lacks: no evidence
        # either way, so not performed; the policy decides whether that is enough.
        report(name, _SKIPPED, f"cannot be checked here: {exc}")
    except MacnssAuthError as exc:
        report(name, _FAILED, f"cannot be checked: {exc}")
    else:
        report(name, _PASSED, f"{key.algorithm.upper()} signature over the challenge verifies")


def _chip_authentication(
    report: _Report,
    groups: Mapping[int, bytes],
    pa_ok: set[int],
    dg14: SecurityInfos | None,
    outcome: ChipAuthenticationOutcome | None,
) -> None:
    name = CheckName.CHIP_AUTHENTICATION
    if outcome is None:
        report(name, _SKIPPED, "Chip Authentication was not run")
        return
    if 14 not in groups or 14 not in pa_ok or dg14 is None:
        report(name, _FAILED, "DG14 did not pass Passive Authentication; its CA key is not trusted")
        return
    keys = [
        k
        for k in dg14.chip_authentication_keys
        if outcome.key_id is None or k.key_id == outcome.key_id
    ]
    if not any(
        hmac.compare_digest(outcome.public_key, k.subject_public_key_info)
        or hmac.compare_digest(outcome.public_key, k.public_key)
        for k in keys
    ):
        report(name, _FAILED, "the key used is not a Chip Authentication key of DG14")
        return
    if not outcome.completed:
        report(name, _FAILED, "the chip did not prove its Chip Authentication key")
        return
    report(name, _PASSED, "the chip proved the DG14 Chip Authentication key")


def trusted_chip_authentication_key(
    verification: DocumentVerification, dg14: bytes, key_id: int | None = None
) -> bytes:
    """The SubjectPublicKeyInfo to run Chip Authentication with, from a PA-verified DG14.

    Raises:
        DocumentRejected: DG14 did not pass Passive Authentication (or these bytes differ).
        LdsFormatError: no CA key with ``key_id``.
    """
    expected = verification.verified_hashes.get(14)
    if expected is None:
        raise DocumentRejected(verification=verification)
    algorithm = next(a for a in HashAlgorithm if a.digest_size == len(expected))
    if not hmac.compare_digest(algorithm.digest(dg14), expected):
        raise DocumentRejected(verification=verification)
    key = parse_dg14(dg14).chip_authentication_key(key_id)
    if key is None:
        raise LdsFormatError("DG14 has no such Chip Authentication key", field="DG14")
    return key.subject_public_key_info


def _hash_passed(checks: list[Check]) -> list[int]:
    """Data group numbers whose hash check passed."""
    return [int(c.name[2:-5]) for c in checks if c.name.endswith("_hash") and c.status is _PASSED]


def _verdict(
    checks: list[Check],
    policy: VerificationPolicy,
    verified: frozenset[int],
    hashes: Mapping[int, bytes],
    signer: str | None,
) -> DocumentVerification:
    status = {c.name: c.status for c in checks}
    reason = ""
    if status.get(CheckName.SOD) is not _PASSED:
        reason = "EF.SOD is unusable"
    elif status.get(CheckName.SOD_SIGNATURE) is not _PASSED:
        reason = "the SOD signature does not verify"
    elif policy.require_trusted_chain and status.get(CheckName.CHAIN) is not _PASSED:
        reason = "the document signer does not chain to a trusted CSCA"
    elif status.get(CheckName.CRL) is _FAILED:
        reason = "the document signer is revoked"
    elif policy.require_crl and status.get(CheckName.CRL) is not _PASSED:
        reason = "no current CRL for the issuing CSCA"
    elif any(c.name.endswith("_hash") and c.status is _FAILED for c in checks):
        reason = "a data group does not match the SOD"
    elif missing := sorted(policy.required_data_groups - set(_hash_passed(checks))):
        reason = f"required data groups not verified: {missing}"
    elif status.get(CheckName.ACTIVE_AUTHENTICATION) is _FAILED:
        reason = "Active Authentication failed"
    elif status.get(CheckName.CHIP_AUTHENTICATION) is _FAILED:
        reason = "Chip Authentication failed"
    else:
        aa = status.get(CheckName.ACTIVE_AUTHENTICATION) is _PASSED
        ca = status.get(CheckName.CHIP_AUTHENTICATION) is _PASSED
        need = policy.chip_authenticity
        if need is ChipAuthenticity.ACTIVE_AUTHENTICATION and not aa:
            reason = "the policy requires Active Authentication"
        elif need is ChipAuthenticity.CHIP_AUTHENTICATION and not ca:
            reason = "the policy requires Chip Authentication"
        elif need is ChipAuthenticity.EITHER and not (aa or ca):
            reason = "the policy requires Active or Chip Authentication"
    if reason.startswith("the policy requires"):
        # Say why the proof is missing: the reader's or the verifier's reasons.
        why = [
            f"{c.name}: {c.reason}" for c in checks if c.name in _FOLDED and c.status is not _PASSED
        ]
        if why:
            reason = f"{reason} ({'; '.join(why)})"
    genuine = not reason
    return DocumentVerification(
        checks=tuple(checks),
        genuine=genuine,
        policy=policy,
        verified_data_groups=verified,
        verified_hashes=MappingProxyType(dict(hashes)),
        document_signer=signer,
        verdict_reason=reason or "every required check passed",
    )


@attrs.frozen
class CardSecurityVerification:
    """The result of verifying EF.CardSecurity (BSI TR-03110-3 §A.1.2.5).

    Attributes:
        checks: ``card_security`` (parsed), ``card_security_signature``, ``chain``.
        trusted: the signature verifies and the signer chains to a trust anchor.
        security_infos: the signed SecurityInfos, only when ``trusted``.
    """

    checks: tuple[Check, ...]
    trusted: bool
    security_infos: SecurityInfos | None


def verify_card_security(
    data: bytes, trust_store: TrustStore, *, clock: Clock | None = None
) -> CardSecurityVerification:
    """Verify EF.CardSecurity: its CMS signature and its signer's chain.

    The SecurityInfos come back only when trusted (PACE-CAM and Chip
    Authentication v2 must take the chip's key from a trusted CardSecurity).
    Never raises for bad input: problems are failed checks.
    """
    now = (clock or SystemClock()).now()
    checks: list[Check] = []
    try:
        parsed = parse_card_security(data)
    except (LdsFormatError, UnsupportedAlgorithm) as exc:
        checks.append(Check("card_security", _FAILED, f"EF.CardSecurity cannot be used: {exc}"))
        return CardSecurityVerification(tuple(checks), trusted=False, security_infos=None)
    checks.append(Check("card_security", _PASSED, "CMS SignedData over SecurityInfos"))
    signer = parsed.signed.signer_certificate()
    if signer is None:
        checks.append(Check("card_security_signature", _FAILED, "no signer certificate"))
        return CardSecurityVerification(tuple(checks), trusted=False, security_infos=None)
    try:
        parsed.signed.verify(signer)
        signature_ok = True
        checks.append(Check("card_security_signature", _PASSED, "signature verifies"))
    except MacnssAuthError as exc:
        signature_ok = False
        checks.append(Check("card_security_signature", _FAILED, str(exc)))
    chain = trust_store.validate_document_signer(
        signer, at=now, signing_time=parsed.signed.signing_time
    )
    checks.append(Check(CheckName.CHAIN, _PASSED if chain.trusted else _FAILED, chain.reason))
    trusted = signature_ok and chain.trusted
    return CardSecurityVerification(
        tuple(checks), trusted=trusted, security_infos=parsed.security_infos if trusted else None
    )

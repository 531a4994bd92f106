"""Proving an eMRTD genuine: Passive, Active and Chip Authentication, and uploads.

* :func:`verify_document`: data groups + EF.SOD (+ AA response, CA outcome)
  against a :class:`~macnss_auth.nfc.pki.TrustStore`: returns the
  :class:`DocumentVerification` of a genuine document (under a
  :class:`VerificationPolicy`) or raises :class:`DocumentRejected`.
* :func:`inspect_document`: the same checks for reports (CLI, notebooks),
  returning the verification whatever the verdict.
* :func:`verify_bundle`: the same for a versioned JSON upload from a phone,
  bound to the nonce the server issued.
* :func:`verify_active_authentication`: one AA signature (RSA ISO/IEC 9796-2
  scheme 1, or plain ECDSA).

Trust model and step-by-step guide: ``docs/document-verification.md``.
"""

from macnss_auth.nfc.verify.active import verify_active_authentication
from macnss_auth.nfc.verify.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    BundleFormatError,
    DocumentBundle,
    decode_bundle,
    encode_bundle,
    verify_bundle,
)
from macnss_auth.nfc.verify.document import (
    CardSecurityVerification,
    ChipAuthenticationOutcome,
    clear_caches,
    inspect_document,
    trusted_chip_authentication_key,
    verify_card_security,
    verify_document,
)
from macnss_auth.nfc.verify.result import (
    Check,
    CheckName,
    CheckStatus,
    ChipAuthenticity,
    DocumentRejected,
    DocumentVerification,
    VerificationPolicy,
)

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "BundleFormatError",
    "CardSecurityVerification",
    "Check",
    "CheckName",
    "CheckStatus",
    "ChipAuthenticationOutcome",
    "ChipAuthenticity",
    "DocumentBundle",
    "DocumentRejected",
    "DocumentVerification",
    "VerificationPolicy",
    "clear_caches",
    "decode_bundle",
    "encode_bundle",
    "inspect_document",
    "trusted_chip_authentication_key",
    "verify_active_authentication",
    "verify_bundle",
    "verify_card_security",
    "verify_document",
]

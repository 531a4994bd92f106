"""What a passkey login is worth: assurance from the authenticator's own flags.

A WebAuthn assertion says three things that matter for assurance
(W3C WebAuthn Level 3 §6.1): whether the person was *verified* (UV: PIN,
fingerprint, face; otherwise only *present*, UP), whether the credential is
*backup eligible* (BE: a synced, multi-device passkey that may live in a
cloud keychain) and whether it is backed up now (BS). Registration adds a
fourth: whether an attestation chained to a trust root the service chose
vouched for the authenticator model.

=========================  ==============  =========  ====================
passkey                    this library    NIST AAL   eIDAS LoA
=========================  ==============  =========  ====================
no user verification       LOW             AAL1       low
verified, synced (BE=1)    SUBSTANTIAL     AAL2       substantial
verified, device-bound,    SUBSTANTIAL     AAL2       substantial
  no trusted attestation
verified, device-bound,    HIGH            AAL3       high
  trusted attestation
=========================  ==============  =========  ====================

Why: NIST SP 800-63B (rev. 4) accepts syncable authenticators at AAL2 but
requires a non-exportable key for AAL3, and a device-bound credential's BE=0
is only the authenticator's own claim until an attestation from a trusted
root backs it. eIDAS (Implementing Regulation 2015/1502, annex 2.3.1) asks
for two factors of different categories at *substantial* (possession plus
the verified PIN or biometric: UV) and for protection against attackers with
high attack potential at *high*, which only a certified, attested device can
show. Which attestation roots count as "certified" is the service's choice.
"""

from __future__ import annotations

from macnss_auth.authenticator import AssuranceLevel

__all__ = ["passkey_assurance"]


def passkey_assurance(
    *, user_verified: bool, backup_eligible: bool, attestation_trusted: bool
) -> AssuranceLevel:
    """The :class:`~macnss_auth.AssuranceLevel` of a passkey login (see the module table).

    >>> passkey_assurance(user_verified=True, backup_eligible=True, attestation_trusted=False)
    <AssuranceLevel.SUBSTANTIAL: 2>
    """
    if not user_verified:
        return AssuranceLevel.LOW
    if not backup_eligible and attestation_trusted:
        return AssuranceLevel.HIGH
    return AssuranceLevel.SUBSTANTIAL

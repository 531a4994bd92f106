"""AlgorithmIdentifier and SubjectPublicKeyInfo with the parameters left open.

asn1crypto's own ``PublicKeyInfo`` resolves the algorithm's parameters by OID
and raises ``KeyError`` on the ones it does not know (the BSI Chip
Authentication key OIDs, X9.42 DH, standardized domain parameter ids). These
declarations keep the parameters as ``Any`` so that each reader decides what
they mean: DG14 and EF.CardSecurity (:mod:`macnss_auth.nfc.securityinfos`),
public keys (:mod:`macnss_auth.nfc.pki.keys`) and stored private keys
(:mod:`macnss_auth.nfc.card.storage`).
"""

from __future__ import annotations

from asn1crypto import core

__all__ = ["AlgorithmIdentifier", "SubjectPublicKeyInfo"]


class AlgorithmIdentifier(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """RFC 5280 §4.1.1.2, parameters left open: X9.62, X9.42 or a standardized id."""

    _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class SubjectPublicKeyInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """RFC 5280 §4.1.2.7, with an open :class:`AlgorithmIdentifier`."""

    _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
        ("algorithm", AlgorithmIdentifier),
        ("public_key", core.BitString),
    ]

"""The eMRTD public key infrastructure: keys, certificates, CMS, master lists, trust store.

Theory of operation (ICAO 9303-12). Each country runs a Country Signing CA
(CSCA). A CSCA certifies Document Signers (DS); a DS signs each chip's EF.SOD.
A verifier trusts a set of CSCA certificates it obtained out of band: from CSCA
*master lists* (CMS-signed lists that a country publishes of the CSCAs it has
validated), from a directory of certificates, and from *link certificates*
(a CSCA's new key certified by its old key). CRLs, signed by the CSCA, revoke
DS certificates.

:class:`TrustStore` makes that model explicit: every anchor records *why* it is
trusted (which master list, signed by whom, or which file), and chain
validation answers with a :class:`ChainResult` that says what was checked.

Real certificates deviate from RFC 5280: negative serial numbers, NULL
signature parameters, EC keys with *explicit* domain parameters instead of a
named curve. Certificates are therefore parsed with asn1crypto (tolerant), and
explicit EC parameters are matched against the standardized curves (all of p,
a, b, G, n, h must match: :func:`~macnss_auth.nfc.domain_params.curve_from_explicit`).
ECDSA then runs through :mod:`macnss_auth.nfc.eckeys` on every standardized
curve: cryptography where it has the curve, the project's own arithmetic for
the others (brainpoolP192r1/P224r1/P320r1; secp192r1/secp224r1 on OpenSSL
builds without them). Unknown explicit curves are refused. Signature checks
stay strict.
"""

from __future__ import annotations

from macnss_auth.nfc.eckeys import clear_key_cache
from macnss_auth.nfc.pki import certificates, cms, keys
from macnss_auth.nfc.pki.certificates import Certificate, parse_certificate
from macnss_auth.nfc.pki.cms import SignedContent, parse_signed_data
from macnss_auth.nfc.pki.errors import PkiFormatError, SignatureInvalid
from macnss_auth.nfc.pki.keys import (
    OID_STANDARDIZED_DOMAIN_PARAMETERS,
    EcDomainParameters,
    PublicKey,
    PublicKeyInfo,
    parse_public_key_info,
)
from macnss_auth.nfc.pki.masterlists import (
    OID_CSCA_MASTER_LIST,
    CertificateRevocationList,
    MasterList,
    parse_crl,
    parse_master_list,
)
from macnss_auth.nfc.pki.signatures import (
    HashAlgorithm,
    SignatureKind,
    SignatureScheme,
    ecdsa_signature_values,
    verify_signature,
)
from macnss_auth.nfc.pki.trust import (
    ChainResult,
    RevocationStatus,
    TrustAnchor,
    TrustSource,
    TrustStore,
)

__all__ = [
    "OID_CSCA_MASTER_LIST",
    "OID_STANDARDIZED_DOMAIN_PARAMETERS",
    "Certificate",
    "CertificateRevocationList",
    "ChainResult",
    "EcDomainParameters",
    "HashAlgorithm",
    "MasterList",
    "PkiFormatError",
    "PublicKey",
    "PublicKeyInfo",
    "RevocationStatus",
    "SignatureInvalid",
    "SignatureKind",
    "SignatureScheme",
    "SignedContent",
    "TrustAnchor",
    "TrustSource",
    "TrustStore",
    "clear_caches",
    "ecdsa_signature_values",
    "parse_certificate",
    "parse_crl",
    "parse_master_list",
    "parse_public_key_info",
    "parse_signed_data",
    "verify_signature",
]


def clear_caches() -> None:
    """Forget every parsed certificate and key (to measure cold verification).

    Parsing is cached by DER bytes: identical bytes always parse identically,
    so the caches never change a result, only its cost.
    """
    certificates._parse_certificate.cache_clear()
    keys._parse_public_key_info.cache_clear()
    keys._to_cryptography.cache_clear()
    keys._ec_public_key.cache_clear()
    clear_key_cache()
    certificates.name_key_of.cache_clear()
    cms._scheme_of.cache_clear()

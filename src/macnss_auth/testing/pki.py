"""The issuing PKI, for tests: a test CSCA, document signers, CRLs and master lists.

The code lives beside the issuer in :mod:`macnss_auth.nfc.card.issuing_pki`
(the issuer is a product feature: ``card issue``, kiosks without hardware);
this module re-exports it under the name tests have always used.
"""

from macnss_auth.nfc.card.issuing_pki import (
    IssuedCertificate,
    KeyType,
    PrivateKey,
    TestDocument,
    TestPki,
    active_authentication_sign,
    generate_key,
    make_crl,
    make_csca,
    make_document_signer,
    make_link_certificate,
    make_master_list,
    make_master_list_signer,
    make_td1_mrz,
    placeholder_jpeg,
    sign_card_security,
    sign_cms,
    sign_sod,
)

__all__ = [
    "IssuedCertificate",
    "KeyType",
    "PrivateKey",
    "TestDocument",
    "TestPki",
    "active_authentication_sign",
    "generate_key",
    "make_crl",
    "make_csca",
    "make_document_signer",
    "make_link_certificate",
    "make_master_list",
    "make_master_list_signer",
    "make_td1_mrz",
    "placeholder_jpeg",
    "sign_card_security",
    "sign_cms",
    "sign_sod",
]

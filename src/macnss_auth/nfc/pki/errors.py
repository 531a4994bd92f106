"""The errors of the PKI modules: an unparsable structure, a signature that does not verify."""

from __future__ import annotations

from macnss_auth.errors import AuthenticationFailed, MalformedInput, Reason

__all__ = ["PkiFormatError", "SignatureInvalid"]


class PkiFormatError(MalformedInput):
    """A certificate, key, CRL, CMS structure or master list cannot be parsed."""


class SignatureInvalid(AuthenticationFailed):
    """A signature did not verify (or the key cannot make that kind of signature)."""

    default_reason = Reason.DOCUMENT_NOT_GENUINE

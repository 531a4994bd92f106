"""The errors of the PKI modules: an unparsable structure, a signature that does not verify."""

from __future__ import annotations

from macnss_auth.errors import AuthenticationFailed, MalformedInput, Reason
from macnss_auth.nfc.asn1 import malformed

__all__ = ["PkiFormatError", "SignatureInvalid", "asn1_error"]


class PkiFormatError(MalformedInput):
    """A certificate, key, CRL, CMS structure or master list cannot be parsed."""


class SignatureInvalid(AuthenticationFailed):
    """A signature did not verify (or the key cannot make that kind of signature)."""

    default_reason = Reason.DOCUMENT_NOT_GENUINE


def asn1_error(what: str, exc: Exception) -> PkiFormatError:
    """The :class:`PkiFormatError` for an asn1crypto failure while decoding ``what``."""
    error = malformed(what, exc, error=PkiFormatError)
    assert isinstance(error, PkiFormatError)  # noqa: S101 (malformed builds the error it is given)
    return error

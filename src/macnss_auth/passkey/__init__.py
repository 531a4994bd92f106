"""Passkeys (W3C WebAuthn): phishing-resistant login with a phone or computer, on py_webauthn.

Needs the ``passkey`` extra (``pip install macnss-auth[passkey]``). See
docs/passkeys.md for the ceremonies, the assurance table and an example.

* :class:`PasskeyAuthenticator`: registration (``begin_registration`` /
  ``finish_registration``) and login (``begin`` / ``verify``, with or without
  a username), credentials in any :class:`~macnss_auth.store.Store`.
* :class:`AttestationPolicy`: attestation ``none`` (default) or a trusted one.
* :func:`passkey_assurance`: the assurance level of a login from its flags.
"""

from macnss_auth.passkey import authenticator as _authenticator
from macnss_auth.passkey.assurance import passkey_assurance
from macnss_auth.passkey.authenticator import *  # noqa: F403 (listed once: authenticator.__all__)

__all__ = ["passkey_assurance"]
__all__ += _authenticator.__all__

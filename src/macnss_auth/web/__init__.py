"""The HTTP service: a JSON API, a login page, and a signed assertion (extra ``macnss-auth[web]``).

* :func:`create_app`: an ASGI app (FastAPI) over a :class:`~macnss_auth.Policy`.
* :class:`AssertionIssuer`, :class:`SigningKeys`, :func:`verify_assertion`: the
  ES256 token a calling service receives, its key rotation and its check.
* :class:`TrustedProxies`: whose ``X-Forwarded-For`` is believed.

See ``docs/http-service.md``.
"""

from macnss_auth.web.app import create_app
from macnss_auth.web.context import TrustedProxies
from macnss_auth.web.problems import PROBLEM_TYPE_PREFIX, WebReason
from macnss_auth.web.tokens import (
    ACR_VALUES,
    AMR_VALUES,
    AssertionIssuer,
    InvalidAssertion,
    SigningKey,
    SigningKeys,
    verify_assertion,
)

__all__ = [
    "ACR_VALUES",
    "AMR_VALUES",
    "PROBLEM_TYPE_PREFIX",
    "AssertionIssuer",
    "InvalidAssertion",
    "SigningKey",
    "SigningKeys",
    "TrustedProxies",
    "WebReason",
    "create_app",
    "verify_assertion",
]

"""eID from the person's own phone, proven to the server (split and relay modes).

* :mod:`~macnss_auth.nfc.phone.messages`: the versioned wire messages, limits
  and the stable failure reasons.
* :class:`PhoneSession`: the server side, a sans-I/O state machine bound to
  one challenge of :meth:`~macnss_auth.nfc.eid.EidAuthenticator.begin`;
  its :class:`PhoneEvidence` goes to ``EidAuthenticator.verify``.
* :class:`ReferencePhone`: the phone side in Python (tests, docs, and the
  model for Kotlin/Swift apps).

The protocol document: ``docs/eid-authentication.md`` ("From a phone").
"""

from macnss_auth.nfc.phone import messages as _messages
from macnss_auth.nfc.phone.client import PhoneCardSession, ReferencePhone
from macnss_auth.nfc.phone.messages import *  # noqa: F403 (the wire messages, listed once: messages.__all__)
from macnss_auth.nfc.phone.server import TRANSITIONS, PhoneEvidence, PhoneSession, SessionState

__all__ = [
    "TRANSITIONS",
    "PhoneCardSession",
    "PhoneEvidence",
    "PhoneSession",
    "ReferencePhone",
    "SessionState",
]
__all__ += _messages.__all__

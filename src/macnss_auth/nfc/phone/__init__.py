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

from macnss_auth.nfc.phone.client import PhoneCardSession, ReferencePhone
from macnss_auth.nfc.phone.messages import (
    PHONE_MESSAGES,
    PROTOCOL_VERSION,
    SERVER_MESSAGES,
    Abort,
    CardLost,
    CardReady,
    Commands,
    ErrorMessage,
    Hello,
    PhoneFailure,
    PhoneLimits,
    PhoneMessage,
    PhoneMode,
    PhoneSessionFailed,
    Reconnect,
    Responses,
    ResultMessage,
    Resume,
    Step,
    Upload,
    Welcome,
    decode_message,
    encode_message,
)
from macnss_auth.nfc.phone.server import TRANSITIONS, PhoneEvidence, PhoneSession, SessionState

__all__ = [
    "PHONE_MESSAGES",
    "PROTOCOL_VERSION",
    "SERVER_MESSAGES",
    "TRANSITIONS",
    "Abort",
    "CardLost",
    "CardReady",
    "Commands",
    "ErrorMessage",
    "Hello",
    "PhoneCardSession",
    "PhoneEvidence",
    "PhoneFailure",
    "PhoneLimits",
    "PhoneMessage",
    "PhoneMode",
    "PhoneSession",
    "PhoneSessionFailed",
    "Reconnect",
    "ReferencePhone",
    "Responses",
    "ResultMessage",
    "Resume",
    "SessionState",
    "Step",
    "Upload",
    "Welcome",
    "decode_message",
    "encode_message",
]

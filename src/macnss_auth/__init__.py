"""macnss_auth: authentication for public digital services.

eID cards over NFC (ICAO 9303), authenticator-app codes (TOTP/HOTP), and
one-time codes by SMS or e-mail, all behind one :class:`Authenticator`
interface, with state in a :class:`~macnss_auth.store.Store` and every
decision in a tamper-evident audit log.
"""

from macnss_auth._version import __version__
from macnss_auth.authenticator import (
    AssuranceLevel,
    Authenticator,
    AuthResult,
    Challenge,
    ClientContext,
)
from macnss_auth.clock import Clock, RandomSource, SystemClock, SystemRandom
from macnss_auth.errors import (
    AccessDenied,
    AuthenticationFailed,
    ChallengeExpired,
    ChallengeNotFound,
    ChallengeUsed,
    ConfigurationError,
    DeliveryError,
    DocumentNotGenuine,
    InvalidCode,
    LocalProtocolError,
    LockedOut,
    MacnssAuthError,
    MalformedInput,
    NotEnrolled,
    ProtocolError,
    RateLimited,
    Reason,
    RemoteProtocolError,
    SchemaVersionError,
    SecretKeyError,
    SecureMessagingError,
    StoreError,
    TokenReplayed,
    TransportError,
    UnsupportedAlgorithm,
    VerificationThrottled,
)
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, MemoryStore, Store

__all__ = [
    "AccessDenied",
    "AssuranceLevel",
    "AuthResult",
    "AuthenticationFailed",
    "Authenticator",
    "Challenge",
    "ChallengeExpired",
    "ChallengeNotFound",
    "ChallengeUsed",
    "ClientContext",
    "Clock",
    "ConfigurationError",
    "DeliveryError",
    "DocumentNotGenuine",
    "InvalidCode",
    "Keyring",
    "LocalProtocolError",
    "LockedOut",
    "MacnssAuthError",
    "MalformedInput",
    "MemoryStore",
    "NotEnrolled",
    "ProtocolError",
    "RandomSource",
    "RateLimited",
    "Reason",
    "RemoteProtocolError",
    "SchemaVersionError",
    "Secret",
    "SecretKeyError",
    "SecureMessagingError",
    "Store",
    "StoreError",
    "SystemClock",
    "SystemRandom",
    "TokenReplayed",
    "TransportError",
    "UnsupportedAlgorithm",
    "VerificationThrottled",
    "__version__",
]

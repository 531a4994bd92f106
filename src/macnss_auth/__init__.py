"""macnss_auth: authentication for public digital services.

eID cards over NFC (ICAO 9303), authenticator-app codes (TOTP/HOTP), and
one-time codes by SMS or e-mail, all behind one :class:`Authenticator`
interface, with state in a :class:`~macnss_auth.store.Store` and every
decision in a tamper-evident audit log.
"""

from macnss_auth._version import __version__
from macnss_auth.audit import AuditEvent, AuditLog, MemoryAuditLog
from macnss_auth.audit.jsonl import JsonLinesAuditLog
from macnss_auth.audit.sqlite import SQLiteAuditLog
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
    MethodNotOffered,
    MissingExtra,
    NotEnrolled,
    PasswordBlocked,
    PasswordSuspended,
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
    UnsupportedLanguage,
    VerificationThrottled,
)
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.reader import DocumentRead, DocumentReader
from macnss_auth.nfc.verify import DocumentVerification, VerificationPolicy
from macnss_auth.otp import (
    EmailCodeAuthenticator,
    HotpAuthenticator,
    RecoveryCodeAuthenticator,
    SMSCodeAuthenticator,
    TotpAuthenticator,
)
from macnss_auth.policy import Capability, MethodOffer, Policy
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, MemoryStore, SQLiteStore, Store
from macnss_auth.throttle import FailureThrottle, ThrottlePolicy

__all__ = [
    "AccessDenied",
    "AssuranceLevel",
    "AuditEvent",
    "AuditLog",
    "AuthResult",
    "AuthenticationFailed",
    "Authenticator",
    "Capability",
    "Challenge",
    "ChallengeExpired",
    "ChallengeNotFound",
    "ChallengeUsed",
    "ClientContext",
    "Clock",
    "ConfigurationError",
    "DeliveryError",
    "DocumentNotGenuine",
    "DocumentRead",
    "DocumentReader",
    "DocumentVerification",
    "EidAuthenticator",
    "EmailCodeAuthenticator",
    "FailureThrottle",
    "HotpAuthenticator",
    "InvalidCode",
    "JsonLinesAuditLog",
    "Keyring",
    "LocalProtocolError",
    "LockedOut",
    "MacnssAuthError",
    "MalformedInput",
    "MemoryAuditLog",
    "MemoryStore",
    "MethodNotOffered",
    "MethodOffer",
    "MissingExtra",
    "NotEnrolled",
    "PasswordBlocked",
    "PasswordSuspended",
    "Policy",
    "ProtocolError",
    "RandomSource",
    "RateLimited",
    "Reason",
    "RecoveryCodeAuthenticator",
    "RemoteProtocolError",
    "SMSCodeAuthenticator",
    "SQLiteAuditLog",
    "SQLiteStore",
    "SchemaVersionError",
    "Secret",
    "SecretKeyError",
    "SecureMessagingError",
    "Store",
    "StoreError",
    "SystemClock",
    "SystemRandom",
    "ThrottlePolicy",
    "TokenReplayed",
    "TotpAuthenticator",
    "TransportError",
    "TrustStore",
    "UnsupportedAlgorithm",
    "UnsupportedLanguage",
    "VerificationPolicy",
    "VerificationThrottled",
    "__version__",
]

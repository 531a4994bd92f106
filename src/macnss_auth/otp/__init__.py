"""One-time codes: authenticator apps (TOTP/HOTP), recovery codes, and codes sent by SMS or e-mail.

* :class:`TotpAuthenticator` / :class:`HotpAuthenticator`: RFC 6238 / RFC 4226 on pyotp,
  with enrollment (otpauth URI, QR), drift windows, resync and replay protection.
* :class:`RecoveryCodeAuthenticator`: single-use look-up secrets for a lost phone.
* :class:`SMSCodeAuthenticator` / :class:`EmailCodeAuthenticator`: out-of-band codes,
  hashed at rest, expiring, attempt-limited, resend-throttled.

Where things live: :mod:`.code_flow` (the challenge, throttle and audit flow
every code method shares), :mod:`.otp_flow` (TOTP/HOTP enrollment and the
replay guard), :mod:`.matching` (the pure TOTP/HOTP decision), :mod:`.hotp`,
:mod:`.totp`, :mod:`.recovery`, and the :mod:`.oob` package (codes, dispatch,
limits, authenticators).
"""

from macnss_auth.otp.codes import codes_equal, normalize_code
from macnss_auth.otp.enrollment import OtpAlgorithm, OtpParameters, Provisioning
from macnss_auth.otp.hotp import HotpAuthenticator
from macnss_auth.otp.oob import (
    BackgroundDispatcher,
    CodeNotDelivered,
    CodePolicy,
    EmailCodeAuthenticator,
    InlineDispatcher,
    OutOfBandAuthenticator,
    ResendPolicy,
    SMSCodeAuthenticator,
)
from macnss_auth.otp.recovery import RecoveryCodeAuthenticator, RecoveryCodes
from macnss_auth.otp.totp import TotpAuthenticator

__all__ = [
    "BackgroundDispatcher",
    "CodeNotDelivered",
    "CodePolicy",
    "EmailCodeAuthenticator",
    "HotpAuthenticator",
    "InlineDispatcher",
    "OtpAlgorithm",
    "OtpParameters",
    "OutOfBandAuthenticator",
    "Provisioning",
    "RecoveryCodeAuthenticator",
    "RecoveryCodes",
    "ResendPolicy",
    "SMSCodeAuthenticator",
    "TotpAuthenticator",
    "codes_equal",
    "normalize_code",
]

"""OTP parameters, shared secrets, otpauth:// provisioning URIs and QR codes.

An authenticator app learns a TOTP or HOTP secret from a provisioning URI in
the Key Uri Format that Google Authenticator introduced and every common app
follows::

    otpauth://totp/Issuer:account?secret=BASE32&issuer=Issuer&algorithm=SHA1&digits=6&period=30

The URI always names the algorithm, digits and period (or HOTP counter)
explicitly, even at their defaults, so an app never has to guess. It holds
the secret in the clear: show it once (as a QR code or as text for manual
entry) and never log it. :class:`Provisioning` keeps it out of ``repr``.

QR codes are drawn with segno (pure Python, no dependencies): SVG for web
pages, PNG for files and mails, and Unicode half blocks for a terminal.

Defaults are what every common app accepts: SHA1, 6 digits, 30 seconds. Some
apps (Google Authenticator on several platforms among them) silently ignore
``algorithm`` and compute SHA1 codes anyway, and some ignore ``digits`` and
``period``: prefer the defaults unless you control the apps in use.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import hashlib
import io
from collections.abc import Callable
from urllib.parse import quote, urlencode

import attrs
import segno

from macnss_auth.clock import RandomSource
from macnss_auth.errors import ConfigurationError, MalformedInput, UnsupportedAlgorithm
from macnss_auth.secret import Secret

__all__ = [
    "MIN_SECRET_BYTES",
    "OtpAlgorithm",
    "OtpParameters",
    "Provisioning",
    "decode_base32_secret",
    "encode_base32_secret",
    "generate_secret",
    "provisioning_uri",
]

#: RFC 4226 §4 requires at least 128 bits of shared secret (and recommends 160);
#: secrets given for migration may be that short, generated ones never are.
MIN_SECRET_BYTES = 16


class OtpAlgorithm(str, enum.Enum):
    """The HMAC hash of an OTP (RFC 6238 §1.2 allows SHA-1, SHA-256 and SHA-512)."""

    SHA1 = "SHA1"
    SHA256 = "SHA256"
    SHA512 = "SHA512"

    @property
    def digest(self) -> Callable[..., hashlib._Hash]:
        """The :mod:`hashlib` constructor, as pyotp expects it."""
        return _DIGESTS[self]

    @property
    def secret_bytes(self) -> int:
        """Length of a generated secret: the hash's output size (>= 160 bits).

        RFC 6238 Appendix B uses seeds of exactly this length per hash.
        """
        return self.digest().digest_size

    @classmethod
    def parse(cls, value: str | OtpAlgorithm) -> OtpAlgorithm:
        """Accept ``"SHA1"``, ``"sha-256"``, ``"sha512"``...

        Raises:
            UnsupportedAlgorithm: anything else.
        """
        if isinstance(value, OtpAlgorithm):
            return value
        name = str(value).upper().replace("-", "")
        try:
            return cls(name)
        except ValueError:
            raise UnsupportedAlgorithm("OTP algorithm must be SHA1, SHA256 or SHA512") from None


_DIGESTS: dict[OtpAlgorithm, Callable[..., hashlib._Hash]] = {
    OtpAlgorithm.SHA1: hashlib.sha1,
    OtpAlgorithm.SHA256: hashlib.sha256,
    OtpAlgorithm.SHA512: hashlib.sha512,
}


def _to_algorithm(value: str | OtpAlgorithm) -> OtpAlgorithm:
    return OtpAlgorithm.parse(value)


def _check_digits(_instance: object, _attribute: object, value: int) -> None:
    if not 6 <= value <= 8:
        raise ConfigurationError("OTP codes must have 6 to 8 digits")


def _check_period(_instance: object, _attribute: object, value: int) -> None:
    if not 1 <= value <= 600:
        raise ConfigurationError("the TOTP period must be 1 to 600 seconds")


@attrs.frozen
class OtpParameters:
    """How codes are computed; public, stored with the enrollment.

    Attributes:
        algorithm: the HMAC hash (default SHA1: the one every app supports).
        digits: code length, 6 to 8 (default 6).
        period: TOTP time step in seconds (default 30; ignored by HOTP).
    """

    algorithm: OtpAlgorithm = attrs.field(default=OtpAlgorithm.SHA1, converter=_to_algorithm)
    digits: int = attrs.field(default=6, validator=_check_digits)
    period: int = attrs.field(default=30, validator=_check_period)


def generate_secret(algorithm: OtpAlgorithm, *, random: RandomSource) -> Secret:
    """A fresh shared secret from ``random``: as long as the hash output (>= 160 bits)."""
    return Secret(random.token_bytes(algorithm.secret_bytes))


def encode_base32_secret(secret: Secret) -> str:
    """The secret in RFC 4648 base32 without padding, as apps and URIs expect."""
    return base64.b32encode(secret.reveal()).decode("ascii").rstrip("=")


def decode_base32_secret(text: str) -> Secret:
    """Parse a base32 secret as apps show it (any case, spaces, padding optional).

    Raises:
        MalformedInput: not base32, or shorter than 128 bits (``field="secret"``).
    """
    if not isinstance(text, str):
        raise MalformedInput("the secret must be base32 text", field="secret")
    compact = "".join(text.split()).replace("-", "").upper().rstrip("=")
    if not compact.isascii() or len(compact) > 1024:
        raise MalformedInput("the secret is not base32", field="secret")
    compact += "=" * (-len(compact) % 8)
    try:
        raw = base64.b32decode(compact)
    except (binascii.Error, ValueError):
        raise MalformedInput("the secret is not base32", field="secret") from None
    if len(raw) < MIN_SECRET_BYTES:
        raise MalformedInput("the secret is shorter than 128 bits", field="secret")
    return Secret(raw)


def _check_label_part(value: str, what: str) -> None:
    # The Key Uri Format separates issuer and account with a colon.
    if not value or ":" in value:
        raise ConfigurationError(f"the {what} must be non-empty and contain no colon")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate cannot go into a URI (nor a QR code): quote() raised.
            raise ConfigurationError(f"the {what} is not valid Unicode text") from None


def provisioning_uri(
    *,
    method: str,
    secret: Secret,
    issuer: str,
    account: str,
    parameters: OtpParameters,
    counter: int = 0,
) -> str:
    """Build an ``otpauth://`` URI (Key Uri Format) naming every parameter.

    Args:
        method: ``"totp"`` or ``"hotp"``.
        secret: the shared secret.
        issuer: the service name the app shows (no colon).
        account: the account name the app shows (no colon).
        parameters: algorithm, digits, period.
        counter: the initial HOTP counter (HOTP only).

    Raises:
        ConfigurationError: unknown method, or a colon in issuer or account.
    """
    if method not in ("totp", "hotp"):
        raise ConfigurationError("otpauth URIs exist for totp and hotp only")
    _check_label_part(issuer, "issuer")
    _check_label_part(account, "account name")
    label = quote(issuer, safe="") + ":" + quote(account, safe="@")
    query: dict[str, str | int] = {
        "secret": encode_base32_secret(secret),
        "issuer": issuer,
        "algorithm": parameters.algorithm.value,
        "digits": parameters.digits,
    }
    if method == "totp":
        query["period"] = parameters.period
    else:
        query["counter"] = counter
    return f"otpauth://{method}/{label}?{urlencode(query, quote_via=quote)}"


@attrs.frozen
class Provisioning:
    """What :meth:`enroll` hands back: everything an app needs, shown once.

    The enrollment stays *pending* until the person proves it with a first
    valid code (``confirm``); it expires at ``expires_at`` otherwise.

    Attributes:
        subject: who enrolled.
        method: ``"totp"`` or ``"hotp"``.
        parameters: algorithm, digits, period.
        issuer / account: what the app will display.
        secret: the shared secret (never in repr).
        uri: the ``otpauth://`` URI; contains the secret (never in repr).
        counter: the initial HOTP counter (0 for TOTP).
        expires_at: when the pending enrollment expires unconfirmed.
        audit_event_id: the id of the audit record of the enrollment.
    """

    subject: str
    method: str
    parameters: OtpParameters
    issuer: str
    account: str
    secret: Secret = attrs.field(repr=False)
    uri: str = attrs.field(repr=False)
    expires_at: dt.datetime
    counter: int = 0
    audit_event_id: str | None = None

    @property
    def secret_base32(self) -> str:
        """The secret in base32, for an app's manual entry field."""
        return encode_base32_secret(self.secret)

    @property
    def manual_entry_key(self) -> str:
        """The base32 secret in groups of four, easier to type by hand."""
        text = self.secret_base32
        return " ".join(text[i : i + 4] for i in range(0, len(text), 4))

    def qr_code(self) -> segno.QRCode:
        """The URI as a segno QR code (error correction M, never a Micro QR)."""
        return segno.make(self.uri, error="m", micro=False)

    def qr_svg(self, *, scale: int = 4) -> str:
        """A standalone SVG document of the QR code."""
        buffer = io.BytesIO()
        self.qr_code().save(buffer, kind="svg", scale=scale, xmldecl=False)
        return buffer.getvalue().decode("utf-8")

    def qr_png(self, *, scale: int = 4) -> bytes:
        """The QR code as PNG bytes."""
        buffer = io.BytesIO()
        self.qr_code().save(buffer, kind="png", scale=scale)
        return buffer.getvalue()

    def qr_terminal(self) -> str:
        """The QR code as Unicode half blocks, for a terminal (dark text on light works)."""
        buffer = io.StringIO()
        self.qr_code().terminal(out=buffer, compact=True)
        return buffer.getvalue()

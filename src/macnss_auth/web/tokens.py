"""The assertion: a short-lived ES256 JWT that tells a calling service who authenticated.

On success the API returns a JSON Web Token (RFC 7519) signed with ES256
(ECDSA P-256 / SHA-256, RFC 7518 §3.4) through PyJWT, carrying:

=============  ==================================================================
claim          meaning
=============  ==================================================================
``iss``        this service (its base URL or name)
``sub``        the subject, as the service named them
``aud``        the calling service the token is for (one of the configured ones)
``iat/exp``    issued at / expires (default lifetime 120 s: exchange it at once)
``auth_time``  when the library decided (the server's clock)
``acr``        the eIDAS level of assurance reached, as the eIDAS URI
               ``http://eidas.europa.eu/LoA/low|substantial|high``
``amr``        how (RFC 8176 values where one exists, plus the method name):
               ``["sc", "hwk", "eid"]``, ``["otp", "totp"]``, ``["otp", "hotp"]``,
               ``["sms"]``, ``["email"]``, ``["recovery"]``; a passkey says where its
               key lives and how many factors were shown, from the login's flags:
               ``["hwk" | "swk" | "pop", "mfa" | "user", "passkey"]`` (see
               the table in ``docs/http-service.md``)
``nonce``      the caller's nonce, if it sent one (bind the token to its session)
``jti``        a unique id: a service that remembers them refuses a replayed token
``nist_aal``   the closest NIST SP 800-63B AAL (1-3), for services that speak NIST
=============  ==================================================================

Keys rotate: a :class:`SigningKeys` holds several keys, each named by its RFC
7638 thumbprint (``kid``); the newest signs, every one is published in the
JWKS, so tokens signed just before a rotation still verify. Retire a key once
its last token has expired (the lifetime after the rotation).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from macnss_auth.authenticator import AssuranceLevel, AuthResult
from macnss_auth.clock import Clock, RandomSource, SystemClock, SystemRandom
from macnss_auth.errors import ConfigurationError, MacnssAuthError

__all__ = [
    "ACR_VALUES",
    "AMR_VALUES",
    "AssertionIssuer",
    "InvalidAssertion",
    "SigningKey",
    "SigningKeys",
    "verify_assertion",
]

#: eIDAS levels of assurance as the URIs eIDAS nodes and OpenID Connect profiles use.
ACR_VALUES: Mapping[AssuranceLevel, str] = {
    AssuranceLevel.LOW: "http://eidas.europa.eu/LoA/low",
    AssuranceLevel.SUBSTANTIAL: "http://eidas.europa.eu/LoA/substantial",
    AssuranceLevel.HIGH: "http://eidas.europa.eu/LoA/high",
}

#: ``amr`` per method: RFC 8176 values first, then the library's method name.
AMR_VALUES: Mapping[str, tuple[str, ...]] = {
    "eid": ("sc", "hwk", "eid"),
    "totp": ("otp", "totp"),
    "hotp": ("otp", "hotp"),
    "sms": ("sms",),
    "email": ("email",),
    "recovery": ("recovery",),
    # Refined per login from the result's flags by _amr_of; this is the floor.
    "passkey": ("pop", "passkey"),
}


def _amr_of(result: AuthResult) -> tuple[str, ...]:
    """The ``amr`` claim for ``result``: :data:`AMR_VALUES`, refined for passkeys.

    A passkey login proves possession of a key; RFC 8176 says where it lives:
    ``hwk`` only when an attestation from a trusted root vouched for a
    device-bound credential (BE=0), ``swk`` for a synced one (BE=1: the key
    leaves the device for a keychain), and plain ``pop`` when only the
    authenticator's own claim says it is device-bound. Then ``mfa`` when the
    authenticator verified the person (UV: PIN or biometrics, a second factor)
    or ``user`` when it only tested presence (UP). The same flags decide the
    assurance level (:mod:`macnss_auth.passkey.assurance`), so the two agree.
    """
    if result.method != "passkey" or "backup_eligible" not in result.details:
        return AMR_VALUES.get(result.method, (result.method,))
    details = result.details
    if details["backup_eligible"] == "true":
        key = "swk"
    elif details.get("attestation") == "trusted":
        key = "hwk"
    else:
        key = "pop"
    factors = "mfa" if details.get("user_verified") == "true" else "user"
    return (key, factors, "passkey")


_ALGORITHM = "ES256"
_MAX_LIFETIME = 3600.0
# A token issued up to this many seconds in the verifier's future is a clock difference
# (iat is whole seconds, so even clocks 10 ms apart disagree at a second boundary), not a
# forgery; it still expires at its exp.
_IAT_SKEW = 5.0


class InvalidAssertion(MacnssAuthError):
    """A token that does not verify: bad signature, wrong issuer/audience/nonce, expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@attrs.frozen
class SigningKey:
    """One P-256 key with its ``kid`` (the RFC 7638 thumbprint of its public JWK).

    Attributes:
        kid: the key id.
        private_key: the key (never in repr).
        created_at: when it was made; the newest key signs.
    """

    kid: str
    private_key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    created_at: dt.datetime

    @classmethod
    def of(cls, private_key: ec.EllipticCurvePrivateKey, created_at: dt.datetime) -> SigningKey:
        """Wrap a key, computing its ``kid``.

        Raises:
            ConfigurationError: not a P-256 key.
        """
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ConfigurationError("ES256 needs a P-256 key")
        jwk = _public_jwk(private_key.public_key())
        # RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
        canonical = json.dumps(
            {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
        )
        kid = _b64(hashlib.sha256(canonical.encode()).digest())
        return cls(kid=kid, private_key=private_key, created_at=created_at)

    @classmethod
    def generate(cls, *, clock: Clock | None = None) -> SigningKey:
        """A fresh key (from the operating system's CSPRNG, as cryptography draws keys)."""
        return cls.of(ec.generate_private_key(ec.SECP256R1()), (clock or SystemClock()).now())

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK with ``kid``, ``use`` and ``alg``."""
        return {**_public_jwk(self.private_key.public_key()), "kid": self.kid}


def _public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
        "use": "sig",
        "alg": _ALGORITHM,
    }


class SigningKeys:
    """The key set: the newest key signs, every key is published.

    Args:
        keys: at least one key.

    Raises:
        ConfigurationError: no key, or two keys with one kid.
    """

    def __init__(self, keys: Iterable[SigningKey]) -> None:
        ordered = sorted(keys, key=lambda k: k.created_at)
        if not ordered:
            raise ConfigurationError("a key set needs at least one key")
        if len({k.kid for k in ordered}) != len(ordered):
            raise ConfigurationError("two keys share a kid")
        self._keys = tuple(ordered)

    def __repr__(self) -> str:
        return f"SigningKeys(kids={[k.kid for k in self._keys]!r})"

    @classmethod
    def generate(cls, *, clock: Clock | None = None) -> SigningKeys:
        """A set of one fresh key."""
        return cls([SigningKey.generate(clock=clock)])

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """Oldest first."""
        return self._keys

    @property
    def current(self) -> SigningKey:
        """The key that signs: the newest."""
        return self._keys[-1]

    def rotated(self, new: SigningKey | None = None, *, keep: int = 2) -> SigningKeys:
        """A set with ``new`` (default: a fresh key) signing and the ``keep - 1`` newest others."""
        if keep < 1:
            raise ConfigurationError("keep at least the new key")
        key = new or SigningKey.generate()
        kept = self._keys[len(self._keys) - (keep - 1) :] if keep > 1 else ()
        return SigningKeys([*kept, key])

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JSON Web Key Set (RFC 7517 §5) of every key, newest first."""
        return {"keys": [k.public_jwk() for k in reversed(self._keys)]}

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The public key named ``kid``, if in the set."""
        for key in self._keys:
            if key.kid == kid:
                return key.private_key.public_key()
        return None

    # Files -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write each key as ``<created unix time>-<kid>.pem`` (PKCS#8, mode 0600)."""
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for key in self._keys:
            path = root / f"{int(key.created_at.timestamp())}-{key.kid}.pem"
            if path.exists():
                continue
            pem = key.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            handle, temp = tempfile.mkstemp(dir=root, prefix=".key-")
            try:
                os.write(handle, pem)
                os.fsync(handle)
            finally:
                os.close(handle)
            os.replace(temp, path)

    @classmethod
    def load(cls, directory: str | Path) -> SigningKeys:
        """Read the keys :meth:`save` wrote.

        Raises:
            ConfigurationError: no key files, or a file that is not a P-256 key.
        """
        keys = []
        for path in sorted(Path(directory).glob("*.pem")):
            stamp = path.name.partition("-")[0]
            try:
                private = serialization.load_pem_private_key(path.read_bytes(), password=None)
                created = dt.datetime.fromtimestamp(int(stamp), tz=dt.timezone.utc)
            except (ValueError, TypeError, OverflowError, OSError) as exc:
                # OverflowError and OSError: a time stamp past what the platform's time_t holds.
                raise ConfigurationError(f"{path.name} is not a signing key") from exc
            if not isinstance(private, ec.EllipticCurvePrivateKey):
                raise ConfigurationError(f"{path.name} is not an EC key")
            keys.append(SigningKey.of(private, created))
        return cls(keys)

    @classmethod
    def load_or_create(cls, directory: str | Path, *, clock: Clock | None = None) -> SigningKeys:
        """The keys in ``directory``, or a fresh set saved there."""
        if any(Path(directory).glob("*.pem")):
            return cls.load(directory)
        keys = cls.generate(clock=clock)
        keys.save(directory)
        return keys


class AssertionIssuer:
    """Signs assertions for successful authentications.

    Args:
        issuer: the ``iss`` value (this service's base URL, or a name).
        keys: the signing keys.
        audiences: the calling services tokens may be issued for; the first
            is the default.
        lifetime: seconds a token is valid (default 120, at most 3600).
        clock / random: the time of ``iat``/``exp`` and the ``jti`` source.
    """

    def __init__(
        self,
        *,
        issuer: str,
        keys: SigningKeys,
        audiences: Sequence[str],
        lifetime: float = 120.0,
        clock: Clock | None = None,
        random: RandomSource | None = None,
    ) -> None:
        if not issuer:
            raise ConfigurationError("name the issuer")
        if not audiences or not all(audiences):
            raise ConfigurationError("name at least one audience")
        if not 0 < lifetime <= _MAX_LIFETIME:
            raise ConfigurationError("an assertion lives more than 0 and at most 3600 seconds")
        self.issuer = issuer
        self.keys = keys
        self.audiences = tuple(audiences)
        self.lifetime = lifetime
        self._clock = clock or SystemClock()
        self._random = random or SystemRandom()

    def __repr__(self) -> str:
        return f"AssertionIssuer(issuer={self.issuer!r}, audiences={self.audiences!r})"

    def issue(
        self,
        result: AuthResult,
        *,
        audience: str | None = None,
        nonce: str | None = None,
        lifetime: float | None = None,
    ) -> str:
        """A signed token for ``result``.

        Args:
            result: the success to assert.
            audience: one of the configured audiences (default: the first),
                or the issuer itself (a token for this service's own use).
            nonce: the caller's nonce, copied into the token.
            lifetime: seconds, if not the issuer's default (at most 3600).

        Raises:
            ConfigurationError: ``audience`` is not one of the configured ones.
        """
        seconds = self.lifetime if lifetime is None else lifetime
        if not 0 < seconds <= _MAX_LIFETIME:
            raise ConfigurationError("an assertion lives more than 0 and at most 3600 seconds")
        aud = audience or self.audiences[0]
        if aud not in self.audiences and aud != self.issuer:
            raise ConfigurationError("this audience is not configured")
        now = self._clock.now()
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": result.subject,
            "aud": aud,
            "iat": int(now.timestamp()),
            "exp": int((now + dt.timedelta(seconds=seconds)).timestamp()),
            "auth_time": int(result.authenticated_at.timestamp()),
            "acr": ACR_VALUES[result.assurance],
            "amr": list(_amr_of(result)),
            "nist_aal": result.assurance.nist_aal,
            "jti": _b64(self._random.token_bytes(16)),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        key = self.keys.current
        return jwt.encode(
            claims, key.private_key, algorithm=_ALGORITHM, headers={"kid": key.kid, "typ": "JWT"}
        )

    def verify(
        self, token: str, *, audience: str, nonce: str | None = None, leeway: float = 0.0
    ) -> dict[str, Any]:
        """Verify a token this issuer signed (for the service's own use, e.g. enrollment).

        Raises:
            InvalidAssertion: see :func:`verify_assertion`.
        """
        return verify_assertion(
            token,
            keys=self.keys,
            issuer=self.issuer,
            audience=audience,
            nonce=nonce,
            now=self._clock.now(),
            leeway=leeway,
        )


def verify_assertion(
    token: str,
    *,
    keys: SigningKeys | Mapping[str, Any],
    issuer: str,
    audience: str,
    nonce: str | None = None,
    now: dt.datetime | None = None,
    leeway: float = 0.0,
) -> dict[str, Any]:
    """Check an assertion's signature (ES256 only), issuer, audience, times and nonce.

    Args:
        token: the JWT.
        keys: a :class:`SigningKeys`, or a JWKS document (``{"keys": [...]}``).
        issuer / audience: what ``iss`` and ``aud`` must be.
        nonce: if given, ``nonce`` must equal it.
        now: the time to check ``exp``/``iat`` against (default: the system's).
        leeway: seconds of clock skew tolerated (an ``iat`` up to 5 s ahead always is).

    Returns:
        The claims.

    Raises:
        InvalidAssertion: any check failed (the message says which, never the token).
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidAssertion("not a JWT") from exc
    if header.get("alg") != _ALGORITHM:
        raise InvalidAssertion("the token is not ES256")
    kid = header.get("kid")
    public: Any = None
    if isinstance(keys, SigningKeys):
        public = keys.public_key(str(kid))
    else:
        for jwk in keys.get("keys", []):
            if isinstance(jwk, Mapping) and jwk.get("kid") == kid:
                if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
                    raise InvalidAssertion("the key set's key is not a P-256 key")
                if jwk.get("alg", _ALGORITHM) != _ALGORITHM:
                    raise InvalidAssertion("the key set's key is not for ES256")
                try:
                    public = jwt.PyJWK(dict(jwk), algorithm=_ALGORITHM)
                except jwt.PyJWTError as exc:
                    raise InvalidAssertion("the key set's key is not a valid P-256 key") from exc
    if public is None:
        raise InvalidAssertion("unknown signing key")
    at = (now or dt.datetime.now(dt.timezone.utc)).timestamp()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            public,
            algorithms=[_ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={
                "require": ["iss", "sub", "aud", "exp", "iat", "auth_time", "acr", "jti"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise InvalidAssertion(f"the token does not verify: {type(exc).__name__}") from exc
    if not all(_is_number(claims[name]) for name in ("iat", "exp", "auth_time")):
        raise InvalidAssertion("the token's times are not numbers")
    # Times against the injected clock, not the process's wall clock.
    if not claims["iat"] - max(leeway, _IAT_SKEW) <= at < claims["exp"] + leeway:
        raise InvalidAssertion("the token is expired or not yet valid")
    if nonce is not None and not hmac.compare_digest(
        str(claims.get("nonce", "")).encode(), nonce.encode()
    ):
        raise InvalidAssertion("the nonce does not match")
    return claims


def _is_number(value: object) -> bool:
    # JSON as Python reads it also knows NaN and Infinity (an exp that never comes).
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

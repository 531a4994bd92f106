"""A software WebAuthn authenticator *and* client, for tests, demos and benchmarks.

It plays both the browser (clientDataJSON, the JSON serialization of
``PublicKeyCredential``) and the authenticator (an EC P-256 key per
credential, authenticator data with flags and a signature counter, ``none``
and ``packed`` attestation), written from the W3C WebAuthn Level 3 text with
cryptography and cbor2 only, independently of py_webauthn, so that tests of
the verifier are not the verifier checking itself.

Every field can be bent for negative tests: the origin, the RP id hashed into
authenticator data, the challenge, the flags, the counter, the user handle.

>>> soft = VirtualAuthenticator(origin="https://id.example.org")
>>> soft.origin
'https://id.example.org'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from macnss_auth.clock import RandomSource, SystemRandom
from macnss_auth.errors import ConfigurationError
from macnss_auth.passkey._wire import (
    FLAG_AT,
    FLAG_BE,
    FLAG_BS,
    FLAG_UP,
    FLAG_UV,
    b64url,
    b64url_decode,
)

__all__ = ["AttestationSigner", "VirtualAuthenticator", "VirtualCredential", "attestation_ca"]

_ES256 = -7


@attrs.frozen
class AttestationSigner:
    """A ``packed`` attestation key and its certificate chain (leaf first, DER)."""

    key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    chain: tuple[bytes, ...]

    @classmethod
    def from_certificates(
        cls, key: ec.EllipticCurvePrivateKey, certificates: Sequence[x509.Certificate]
    ) -> AttestationSigner:
        """From a key and cryptography certificates, leaf first."""
        return cls(key, tuple(c.public_bytes(serialization.Encoding.DER) for c in certificates))


@attrs.define
class VirtualCredential:
    """One credential the virtual authenticator holds (its private key stays here)."""

    credential_id: bytes
    rp_id: str
    user_handle: bytes
    key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        """The public key as a COSE_Key (RFC 9053 §7.1.1: EC2, P-256, ES256)."""
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,
                3: _ES256,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


def _options(value: str | Mapping[str, Any]) -> Mapping[str, Any]:
    parsed = json.loads(value) if isinstance(value, str) else value
    if not isinstance(parsed, Mapping):
        raise ConfigurationError("options must be a JSON object")
    return parsed


def _credential_json(credential_id: bytes, response: dict[str, Any]) -> dict[str, Any]:
    """A platform authenticator's ``PublicKeyCredential.toJSON()`` around ``response``."""
    return {
        "id": b64url(credential_id),
        "rawId": b64url(credential_id),
        "type": "public-key",
        "authenticatorAttachment": "platform",
        "clientExtensionResults": {},
        "response": response,
    }


class VirtualAuthenticator:
    """A platform authenticator with its browser, in memory.

    Args:
        origin: the origin the "page" runs on (put in clientDataJSON).
        aaguid: the model id reported at registration (default all zeros).
        user_verification: whether it verifies the person (UV flag).
        backup_eligible / backed_up: BE and BS: a synced passkey sets both.
        counter: keep a signature counter (False: always 0, as synced passkeys do).
        random: source of credential ids and keys' randomness is cryptography's.
    """

    def __init__(
        self,
        *,
        origin: str,
        aaguid: bytes = bytes(16),
        user_verification: bool = True,
        backup_eligible: bool = False,
        backed_up: bool = False,
        counter: bool = True,
        random: RandomSource | None = None,
    ) -> None:
        if len(aaguid) != 16:
            raise ConfigurationError("an AAGUID is 16 bytes")
        self.origin = origin
        self.aaguid = aaguid
        self.user_verification = user_verification
        self.backup_eligible = backup_eligible
        self.backed_up = backed_up
        self.counter = counter
        self._random = random or SystemRandom()
        self.credentials: dict[bytes, VirtualCredential] = {}

    def _flags(self, *, attested: bool, **override: bool | None) -> int:
        wanted = {
            FLAG_UP: True,
            FLAG_UV: self.user_verification,
            FLAG_BE: self.backup_eligible,
            FLAG_BS: self.backed_up,
        }
        names = {"up": FLAG_UP, "uv": FLAG_UV, "be": FLAG_BE, "bs": FLAG_BS}
        for name, value in override.items():
            if value is not None:
                wanted[names[name]] = value
        flags = sum(bit for bit, on in wanted.items() if on)
        return flags | (FLAG_AT if attested else 0)

    def _client_data(
        self,
        kind: str,
        challenge: bytes,
        origin: str | None,
        cross_origin: bool,
    ) -> bytes:
        # Key order as browsers write it (WebAuthn §5.8.1.1).
        return json.dumps(
            {
                "type": kind,
                "challenge": b64url(challenge),
                "origin": origin or self.origin,
                "crossOrigin": cross_origin,
            },
            separators=(",", ":"),
        ).encode()

    # Registration -----------------------------------------------------------------

    def create(
        self,
        options: str | Mapping[str, Any],
        *,
        attestation: str = "none",
        signer: AttestationSigner | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        kind: str = "webauthn.create",
        cross_origin: bool = False,
        up: bool | None = None,
        uv: bool | None = None,
        be: bool | None = None,
        bs: bool | None = None,
        sign_count: int = 0,
        transports: Sequence[str] = ("internal",),
        credential_id: bytes | None = None,
    ) -> dict[str, Any]:
        """Answer ``navigator.credentials.create(options)``: the ``toJSON()`` form.

        ``attestation``: ``"none"``, ``"packed"`` (needs ``signer``: full
        attestation with x5c) or ``"packed-self"`` (signed by the credential key).
        The keyword overrides bend single fields for negative tests
        (``credential_id`` reuses a given id, as a broken authenticator might).
        """
        opts = _options(options)
        target_rp = rp_id or str(opts["rp"]["id"])
        credential_id = credential_id or self._random.token_bytes(32)
        key = ec.generate_private_key(ec.SECP256R1())
        user_handle = b64url_decode(opts["user"]["id"], field="user.id")
        credential = VirtualCredential(credential_id, target_rp, user_handle, key, sign_count)
        challenge_bytes = challenge or b64url_decode(opts["challenge"], field="challenge")
        client_data = self._client_data(kind, challenge_bytes, origin, cross_origin)
        auth_data = (
            hashlib.sha256(target_rp.encode()).digest()
            + bytes([self._flags(attested=True, up=up, uv=uv, be=be, bs=bs)])
            + sign_count.to_bytes(4, "big")
            + self.aaguid
            + len(credential_id).to_bytes(2, "big")
            + credential_id
            + credential.cose_public_key()
        )
        signed = auth_data + hashlib.sha256(client_data).digest()
        statement: dict[str, Any]
        if attestation == "none":
            statement = {}
        elif attestation == "packed-self":
            statement = {"alg": _ES256, "sig": key.sign(signed, ec.ECDSA(hashes.SHA256()))}
        elif attestation == "packed":
            if signer is None:
                raise ConfigurationError("packed attestation needs a signer")
            statement = {
                "alg": _ES256,
                "sig": signer.key.sign(signed, ec.ECDSA(hashes.SHA256())),
                "x5c": list(signer.chain),
            }
        else:
            raise ConfigurationError(f"unknown attestation {attestation!r}")
        fmt = "none" if attestation == "none" else "packed"
        attestation_object = cbor2.dumps({"fmt": fmt, "attStmt": statement, "authData": auth_data})
        self.credentials[credential_id] = credential
        return _credential_json(
            credential_id,
            {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation_object),
                "transports": list(transports),
            },
        )

    # Authentication -----------------------------------------------------------------

    def get(
        self,
        options: str | Mapping[str, Any],
        *,
        credential_id: bytes | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        kind: str = "webauthn.get",
        cross_origin: bool = False,
        up: bool | None = None,
        uv: bool | None = None,
        be: bool | None = None,
        bs: bool | None = None,
        sign_count: int | None = None,
        user_handle: bytes | None = None,
        omit_user_handle: bool = False,
    ) -> dict[str, Any]:
        """Answer ``navigator.credentials.get(options)``: the ``toJSON()`` form.

        Picks ``credential_id``, else the first allowed credential it holds,
        else (empty ``allowCredentials``: a username-less login) the first
        credential it holds for the RP id. The counter goes up by one per
        assertion when ``counter`` is on; ``sign_count`` forces a value.
        """
        opts = _options(options)
        target_rp = str(opts.get("rpId") or rp_id or "")
        allowed = [b64url_decode(c["id"], field="id") for c in opts.get("allowCredentials", [])]
        credential = self._pick(credential_id, allowed, target_rp)
        if self.counter and sign_count is None:
            credential.sign_count += 1
        count = credential.sign_count if sign_count is None else sign_count
        challenge_bytes = challenge or b64url_decode(opts["challenge"], field="challenge")
        client_data = self._client_data(kind, challenge_bytes, origin, cross_origin)
        auth_data = (
            hashlib.sha256((rp_id or credential.rp_id).encode()).digest()
            + bytes([self._flags(attested=False, up=up, uv=uv, be=be, bs=bs)])
            + (count if self.counter or sign_count is not None else 0).to_bytes(4, "big")
        )
        signature = credential.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        handle = None if omit_user_handle else (user_handle or credential.user_handle)
        return _credential_json(
            credential.credential_id,
            {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": None if handle is None else b64url(handle),
            },
        )

    def _pick(
        self, credential_id: bytes | None, allowed: Sequence[bytes], rp_id: str
    ) -> VirtualCredential:
        if credential_id is not None:
            return self.credentials[credential_id]
        for candidate in allowed:
            if candidate in self.credentials:
                return self.credentials[candidate]
        if not allowed:
            for credential in self.credentials.values():
                if credential.rp_id == rp_id:
                    return credential
        raise ConfigurationError("the virtual authenticator holds no matching credential")


def attestation_ca(
    *, name: str = "Virtual Attestation Root", now: dt.datetime | None = None
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, AttestationSigner]:
    """A root CA and a ``packed`` attestation leaf under it (WebAuthn §8.2.1 fields).

    Valid from a day before ``now`` (default: the system time, because
    py_webauthn checks chains against the system clock) for ten years.
    Returns (root key, root certificate, signer with the leaf chain).
    """
    moment = now or dt.datetime.now(dt.timezone.utc)
    start, end = moment - dt.timedelta(days=1), moment + dt.timedelta(days=3650)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "MA"),
                    x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "macnss-auth tests"),
                    x509.NameAttribute(
                        x509.NameOID.ORGANIZATIONAL_UNIT_NAME, "Authenticator Attestation"
                    ),
                    x509.NameAttribute(x509.NameOID.COMMON_NAME, "Virtual Authenticator"),
                ]
            )
        )
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    return root_key, root, AttestationSigner.from_certificates(leaf_key, [leaf])

"""Strict parsing of what a browser sends back from ``navigator.credentials``.

py_webauthn verifies; this module only *reads*, so that every way a response
can be wrong maps to one stable :class:`~macnss_auth.errors.Reason` before the
library sees it, and so that no foreign exception (``binascii.Error``,
``KeyError``, a CBOR decoder error) ever reaches a caller. Byte layouts follow
W3C WebAuthn Level 3: authenticator data §6.1, client data §5.8.1, the JSON
serialization of credentials §5.1 (``PublicKeyCredential.toJSON()``).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Mapping
from typing import Any

import attrs
import cbor2

from macnss_auth.errors import MalformedInput

__all__ = [
    "Assertion",
    "Attestation",
    "AuthenticatorData",
    "ClientData",
    "b64url",
    "b64url_decode",
    "parse_assertion",
    "parse_attestation",
]

# A response is a few kilobytes at most; refuse anything far larger before parsing it.
_MAX_RESPONSE = 64 * 1024
# WebAuthn §5.10.3: credential ids are at most 1023 bytes.
MAX_CREDENTIAL_ID = 1023

# Authenticator data flags, WebAuthn §6.1.
FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_BE = 0x08
FLAG_BS = 0x10
FLAG_AT = 0x40
FLAG_ED = 0x80
_CBOR_MAP = 5  # the major type (RFC 8949 §3.1) in an initial byte's top three bits


def b64url(data: bytes) -> str:
    """Base64url without padding (WebAuthn's encoding of binary fields in JSON)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: object, *, field: str) -> bytes:
    """Decode base64url (padding optional); anything else is MalformedInput.

    Raises:
        MalformedInput: not text, or not base64url.
    """
    if not isinstance(text, str) or not text.isascii():
        raise MalformedInput(f"{field} must be base64url text", field=field)
    if "+" in text or "/" in text:
        raise MalformedInput(f"{field} must be base64url, not base64", field=field)
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedInput(f"{field} is not base64url", field=field) from None


@attrs.frozen
class ClientData:
    """``CollectedClientData`` (WebAuthn §5.8.1): what the browser says it signed for."""

    type: str
    challenge: bytes
    origin: str
    cross_origin: bool
    raw: bytes = attrs.field(repr=False)

    @classmethod
    def parse(cls, raw: bytes) -> ClientData:
        """Raises: MalformedInput: not UTF-8 JSON with the required members."""
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            # RecursionError: "[[[[..." nested past the interpreter's limit.
            raise MalformedInput("clientDataJSON is not JSON", field="clientDataJSON") from None
        if not isinstance(value, dict):
            raise MalformedInput("clientDataJSON must be an object", field="clientDataJSON")
        kind, origin = value.get("type"), value.get("origin")
        if not isinstance(kind, str) or not isinstance(origin, str):
            raise MalformedInput("clientDataJSON lacks type or origin", field="clientDataJSON")
        cross = value.get("crossOrigin", False)
        if not isinstance(cross, bool):
            raise MalformedInput("crossOrigin must be a boolean", field="clientDataJSON")
        challenge = b64url_decode(value.get("challenge"), field="clientDataJSON.challenge")
        return cls(type=kind, challenge=challenge, origin=origin, cross_origin=cross, raw=raw)


@attrs.frozen
class AttestedCredential:
    """Attested credential data (WebAuthn §6.5.2), present at registration."""

    aaguid: bytes
    credential_id: bytes
    public_key: bytes = attrs.field(repr=False)


@attrs.frozen
class AuthenticatorData:
    """Authenticator data (WebAuthn §6.1)."""

    rp_id_hash: bytes
    flags: int
    sign_count: int
    attested: AttestedCredential | None
    raw: bytes = attrs.field(repr=False)

    @property
    def user_present(self) -> bool:
        """UP: a person touched or otherwise acknowledged the authenticator."""
        return bool(self.flags & FLAG_UP)

    @property
    def user_verified(self) -> bool:
        """UV: the authenticator verified the person (PIN, biometrics)."""
        return bool(self.flags & FLAG_UV)

    @property
    def backup_eligible(self) -> bool:
        """BE: the credential may be synced to other devices (a multi-device passkey)."""
        return bool(self.flags & FLAG_BE)

    @property
    def backed_up(self) -> bool:
        """BS: the credential is currently backed up / synced."""
        return bool(self.flags & FLAG_BS)

    @classmethod
    def parse(cls, raw: bytes) -> AuthenticatorData:
        """Raises: MalformedInput: truncated, or attested data that does not parse."""
        if len(raw) < 37:
            raise MalformedInput("authenticatorData is too short", field="authenticatorData")
        flags = raw[32]
        count = int.from_bytes(raw[33:37], "big")
        attested = None
        rest = raw[37:]
        if flags & FLAG_AT:
            if len(rest) < 18:
                raise MalformedInput("attested credential data is truncated", field="authData")
            length = int.from_bytes(rest[16:18], "big")
            if not 0 < length <= MAX_CREDENTIAL_ID or len(rest) < 18 + length:
                raise MalformedInput("bad credential id length", field="authData")
            aaguid, credential_id = rest[:16], rest[18 : 18 + length]
            key, rest = _cbor_prefix(rest[18 + length :], field="credentialPublicKey")
            if key[0] >> 5 != _CBOR_MAP:
                # A COSE_Key is a map (RFC 9052 §7); py_webauthn indexes whatever it gets.
                raise MalformedInput(
                    "credentialPublicKey is not a COSE_Key map", field="credentialPublicKey"
                )
            attested = AttestedCredential(aaguid, credential_id, key)
        if flags & FLAG_ED:
            _, rest = _cbor_prefix(rest, field="extensions")
        if rest:
            raise MalformedInput("authenticatorData has trailing bytes", field="authenticatorData")
        return cls(raw[:32], flags, count, attested, raw)


def _cbor_prefix(data: bytes, *, field: str) -> tuple[bytes, bytes]:
    """Split one CBOR item off the front of ``data``: (its encoding, the rest)."""
    stream = io.BytesIO(data)
    try:
        cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, EOFError, OverflowError):
        raise MalformedInput(f"{field} is not CBOR", field=field) from None
    end = stream.tell()
    return data[:end], data[end:]


def _load(response: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(response, Mapping):
        return response
    if not isinstance(response, (str, bytes)):
        raise MalformedInput("the response must be JSON text or an object", field="response")
    if len(response) > _MAX_RESPONSE:
        raise MalformedInput("the response is too large", field="response")
    try:
        value = json.loads(response)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedInput("the response is not JSON", field="response") from None
    if not isinstance(value, dict):
        raise MalformedInput("the response must be a JSON object", field="response")
    return value


def _credential_id(value: Mapping[str, Any]) -> bytes:
    if value.get("type") != "public-key":
        raise MalformedInput("the credential type must be public-key", field="type")
    raw = b64url_decode(value.get("rawId", value.get("id")), field="rawId")
    if "id" in value and b64url_decode(value["id"], field="id") != raw:
        raise MalformedInput("id and rawId differ", field="id")
    if not 0 < len(raw) <= MAX_CREDENTIAL_ID:
        raise MalformedInput("bad credential id length", field="rawId")
    return raw


def _response_part(value: Mapping[str, Any]) -> Mapping[str, Any]:
    part = value.get("response")
    if not isinstance(part, Mapping):
        raise MalformedInput("the credential has no response object", field="response")
    return part


@attrs.frozen
class Assertion:
    """A parsed ``navigator.credentials.get()`` result."""

    credential_id: bytes
    client_data: ClientData
    authenticator_data: AuthenticatorData
    signature: bytes = attrs.field(repr=False)
    user_handle: bytes | None


def parse_assertion(response: str | bytes | Mapping[str, Any]) -> Assertion:
    """Parse an assertion as ``PublicKeyCredential.toJSON()`` gives it.

    Raises:
        MalformedInput: anything that is not a well-formed assertion.
    """
    value = _load(response)
    credential_id = _credential_id(value)
    part = _response_part(value)
    client = ClientData.parse(b64url_decode(part.get("clientDataJSON"), field="clientDataJSON"))
    data = AuthenticatorData.parse(
        b64url_decode(part.get("authenticatorData"), field="authenticatorData")
    )
    if data.attested is not None:
        raise MalformedInput("an assertion carries no attested credential", field="authData")
    signature = b64url_decode(part.get("signature"), field="signature")
    if not signature:
        raise MalformedInput("the signature is empty", field="signature")
    handle = part.get("userHandle")
    user_handle = None if handle in (None, "") else b64url_decode(handle, field="userHandle")
    return Assertion(credential_id, client, data, signature, user_handle)


# The attestation statement members of WebAuthn §8's formats and their CBOR types:
# py_webauthn uses them as it finds them (a list where bytes belong raised AttributeError).
_STATEMENT_TYPES: dict[str, type] = {
    "alg": int,
    "sig": bytes,
    "ver": str,
    "response": bytes,
    "certInfo": bytes,
    "pubArea": bytes,
    "ecdaaKeyId": bytes,
}


def _check_statement(statement: Mapping[Any, Any]) -> None:
    for name, kind in _STATEMENT_TYPES.items():
        value = statement.get(name)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise MalformedInput(f"attStmt.{name} has the wrong type", field="attestationObject")
    chain = statement.get("x5c")
    if chain is not None and (
        not isinstance(chain, list) or not all(isinstance(c, bytes) for c in chain)
    ):
        raise MalformedInput(
            "attStmt.x5c must be a list of certificates", field="attestationObject"
        )


@attrs.frozen
class Attestation:
    """A parsed ``navigator.credentials.create()`` result."""

    credential_id: bytes
    client_data: ClientData
    attestation_object: bytes = attrs.field(repr=False)
    fmt: str
    has_certificates: bool
    authenticator_data: AuthenticatorData
    transports: tuple[str, ...]


def parse_attestation(response: str | bytes | Mapping[str, Any]) -> Attestation:
    """Parse a registration response as ``PublicKeyCredential.toJSON()`` gives it.

    Raises:
        MalformedInput: anything that is not a well-formed registration response.
    """
    value = _load(response)
    credential_id = _credential_id(value)
    part = _response_part(value)
    client = ClientData.parse(b64url_decode(part.get("clientDataJSON"), field="clientDataJSON"))
    raw_object = b64url_decode(part.get("attestationObject"), field="attestationObject")
    try:
        decoded = cbor2.loads(raw_object)
    except (cbor2.CBORDecodeError, ValueError, TypeError, EOFError, OverflowError):
        raise MalformedInput("attestationObject is not CBOR", field="attestationObject") from None
    if not isinstance(decoded, dict):
        raise MalformedInput("attestationObject must be a map", field="attestationObject")
    fmt, statement, auth_data = decoded.get("fmt"), decoded.get("attStmt"), decoded.get("authData")
    if not isinstance(fmt, str) or not isinstance(statement, dict):
        raise MalformedInput("attestationObject lacks fmt or attStmt", field="attestationObject")
    if not isinstance(auth_data, bytes):
        raise MalformedInput("attestationObject lacks authData", field="attestationObject")
    data = AuthenticatorData.parse(auth_data)
    if data.attested is None:
        raise MalformedInput("no attested credential data", field="authData")
    if data.attested.credential_id != credential_id:
        raise MalformedInput("the attested credential id is not rawId", field="rawId")
    transports = part.get("transports", [])
    if not isinstance(transports, list) or not all(isinstance(t, str) for t in transports):
        raise MalformedInput("transports must be a list of text", field="transports")
    _check_statement(statement)
    certificates = statement.get("x5c")
    return Attestation(
        credential_id=credential_id,
        client_data=client,
        attestation_object=raw_object,
        fmt=fmt,
        has_certificates=isinstance(certificates, list) and len(certificates) > 0,
        authenticator_data=data,
        transports=tuple(transports[:8]),
    )

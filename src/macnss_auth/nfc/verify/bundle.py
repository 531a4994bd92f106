"""Upload verification: what a phone read from a card, verified on a server.

Bundle format, version 1 (JSON, UTF-8)::

    {
      "format": "macnss-auth/emrtd-bundle",
      "version": 1,
      "sod": "<base64 of EF.SOD>",
      "data_groups": {"1": "<base64 of EF.DG1>", "2": "...", "14": "...", "15": "..."},
      "com": "<base64 of EF.COM>",                              (optional, informative)
      "active_authentication": {"signature": "<base64>"}       (optional)
    }

Base64 is the standard alphabet with padding (RFC 4648 §4). Data group keys
are decimal strings 1-16. Files are exactly the bytes read from the chip.

The server first issues a nonce (8 bytes, the Active Authentication challenge)
through the eID authenticator, which stores it single-use with an expiry;
the phone sends it to the chip with INTERNAL AUTHENTICATE and uploads the
answer in ``active_authentication.signature``. :func:`verify_bundle` takes the
nonce bytes from the caller (never from the bundle): a signature replayed from
another session covers another nonce and fails.

Limits: each file at most 1 MiB (base64 decoded), a bundle at most 4 MiB.
Unknown top-level keys are ignored (forward compatibility within version 1);
an unknown ``version`` is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from macnss_auth.clock import Clock
from macnss_auth.errors import MalformedInput
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.verify.document import inspect_document
from macnss_auth.nfc.verify.result import DocumentVerification, VerificationPolicy

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "BundleFormatError",
    "DocumentBundle",
    "decode_bundle",
    "encode_bundle",
    "verify_bundle",
]

BUNDLE_FORMAT = "macnss-auth/emrtd-bundle"
BUNDLE_VERSION = 1
MAX_FILE = 1 << 20
MAX_BUNDLE = 4 << 20


class BundleFormatError(MalformedInput):
    """The uploaded bundle is not a valid version-1 bundle."""


class DocumentBundle:
    """A decoded bundle: files as bytes."""

    __slots__ = ("aa_signature", "com", "data_groups", "sod")

    def __init__(
        self,
        *,
        sod: bytes,
        data_groups: Mapping[int, bytes],
        aa_signature: bytes | None = None,
        com: bytes | None = None,
    ) -> None:
        self.sod = sod
        self.data_groups = dict(data_groups)
        self.aa_signature = aa_signature
        self.com = com

    def __repr__(self) -> str:
        has_aa = self.aa_signature is not None
        return f"DocumentBundle(data_groups={sorted(self.data_groups)}, aa={has_aa})"


def _b64(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise BundleFormatError(f"{field} must be a base64 string", field=field)
    if len(value) > MAX_FILE * 4 // 3 + 4:
        raise BundleFormatError(f"{field} is too large", field=field)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleFormatError(f"{field} is not valid base64", field=field) from None


def decode_bundle(bundle: bytes | str | Mapping[str, Any]) -> DocumentBundle:
    """Decode a version-1 bundle (JSON text or an already-parsed mapping).

    Raises:
        BundleFormatError: not JSON, wrong format or version, bad base64, too large.
    """
    if isinstance(bundle, (bytes, str)):
        if len(bundle) > MAX_BUNDLE:
            raise BundleFormatError("bundle too large", field="bundle")
        try:
            data = json.loads(bundle)
        except (ValueError, RecursionError):
            raise BundleFormatError("bundle is not JSON", field="bundle") from None
    else:
        data = bundle
    if not isinstance(data, Mapping):
        raise BundleFormatError("bundle must be a JSON object", field="bundle")
    if data.get("format") != BUNDLE_FORMAT:
        raise BundleFormatError(f"format must be {BUNDLE_FORMAT!r}", field="format")
    version = data.get("version")
    if version != BUNDLE_VERSION or isinstance(version, bool):
        # Named only when it is a small number: the repr of a 5000-digit int raises
        # ValueError, and a megabyte of text does not belong in a message.
        shown = f" {version}" if type(version) is int and version.bit_length() <= 64 else ""
        raise BundleFormatError(
            f"unsupported bundle version{shown} (this code reads {BUNDLE_VERSION})",
            field="version",
        )
    groups_raw = data.get("data_groups")
    if not isinstance(groups_raw, Mapping) or not groups_raw:
        raise BundleFormatError("data_groups must be a non-empty object", field="data_groups")
    groups: dict[int, bytes] = {}
    for key, value in groups_raw.items():
        # isascii: str.isdigit() also accepts "²" and other digits int() refuses.
        digits = isinstance(key, str) and key.isascii() and key.isdigit()
        if not (digits and len(key) <= 2 and 1 <= int(key) <= 16):
            raise BundleFormatError("data group keys are 1..16", field="data_groups")
        groups[int(key)] = _b64(value, f"data_groups.{key}")
    aa_signature = None
    aa = data.get("active_authentication")
    if aa is not None:
        if not isinstance(aa, Mapping):
            raise BundleFormatError(
                "active_authentication must be an object", field="active_authentication"
            )
        aa_signature = _b64(aa.get("signature"), "active_authentication.signature")
    com = _b64(data["com"], "com") if data.get("com") is not None else None
    return DocumentBundle(
        sod=_b64(data.get("sod"), "sod"), data_groups=groups, aa_signature=aa_signature, com=com
    )


def encode_bundle(
    data_groups: Mapping[int, bytes],
    sod: bytes,
    *,
    aa_signature: bytes | None = None,
    com: bytes | None = None,
) -> str:
    """Encode a version-1 bundle as JSON text (what a phone app uploads)."""
    body: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "sod": base64.b64encode(sod).decode("ascii"),
        "data_groups": {
            str(n): base64.b64encode(d).decode("ascii") for n, d in sorted(data_groups.items())
        },
    }
    if com is not None:
        body["com"] = base64.b64encode(com).decode("ascii")
    if aa_signature is not None:
        body["active_authentication"] = {
            "signature": base64.b64encode(aa_signature).decode("ascii")
        }
    return json.dumps(body, separators=(",", ":"))


def verify_bundle(
    bundle: bytes | str | Mapping[str, Any] | DocumentBundle,
    trust_store: TrustStore,
    challenge_nonce: bytes,
    *,
    clock: Clock | None = None,
    policy: VerificationPolicy | None = None,
    require_genuine: bool = True,
) -> DocumentVerification:
    """Verify an uploaded bundle against the nonce the server issued.

    Args:
        bundle: the uploaded JSON (or its decoded form).
        trust_store: CSCAs and CRLs to trust.
        challenge_nonce: the Active Authentication challenge this server issued
            for this session (single use and expiry are the caller's job).
        clock: the server's trusted clock.
        policy: the verdict policy (default: AA or CA required; over an upload only
            AA can be shown, so the default means AA).
        require_genuine: raise instead of returning a non-genuine result.

    Raises:
        BundleFormatError: the bundle cannot be decoded.
        DocumentRejected: ``require_genuine`` and the document is not genuine;
            its ``verification`` attribute holds every check.
    """
    decoded = bundle if isinstance(bundle, DocumentBundle) else decode_bundle(bundle)
    result = inspect_document(
        data_groups=decoded.data_groups,
        sod=decoded.sod,
        trust_store=trust_store,
        clock=clock,
        policy=policy,
        aa_challenge=bytes(challenge_nonce) if decoded.aa_signature is not None else None,
        aa_signature=decoded.aa_signature,
    )
    if require_genuine:
        result.require_genuine()
    return result

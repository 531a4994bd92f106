"""What an error would show in a log: for tests that no secret is in it."""

from __future__ import annotations

import base64
import traceback


def secret_forms(secret: bytes) -> list[bytes]:
    """The secret as bytes, hex (both cases), base32 (as otpauth URIs carry it) and base64."""
    b32 = base64.b32encode(secret)
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        b32,
        b32.rstrip(b"="),
        base64.b64encode(secret),
    ]


def everything_said(error: BaseException) -> str:
    """The message and repr of ``error`` and of every exception a traceback would print with it."""
    said = []
    current: BaseException | None = error
    while current is not None:
        said += [*traceback.format_exception_only(current), repr(current)]
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__suppress_context__:
            current = None
        else:
            current = current.__context__
    return "".join(said)

"""Active Authentication (ICAO 9303-11 §6.1), the command side.

The terminal sends an 8-byte challenge in ``INTERNAL AUTHENTICATE``
(``00 88 00 00``); the chip signs it with the private key whose public half
is in EF.DG15 (RSA with ISO/IEC 9796-2 message recovery, or ECDSA). This
module only obtains the signature. Verifying it against DG15 -- and checking
DG15 against EF.SOD -- is :mod:`macnss_auth.nfc.verify`'s job; a signature
that was not verified proves nothing.

The challenge is supplied by the caller, not drawn here: for remote
verification it is the server's nonce, so the server can check that the chip
signed *its* challenge, live.
"""

from __future__ import annotations

import enum

import attrs

from macnss_auth.errors import LocalProtocolError, RemoteProtocolError
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.protocol import Event, ProtocolMachine
from macnss_auth.nfc.sm import SecureChannel

__all__ = [
    "CHALLENGE_LENGTH",
    "ActiveAuthResult",
    "ActiveAuthState",
    "ActiveAuthentication",
    "internal_authenticate_command",
]

#: ICAO 9303-11 §6.1: the terminal's challenge RND.IFD is 8 bytes.
CHALLENGE_LENGTH = 8


def internal_authenticate_command(challenge: bytes, *, ne: int = 256) -> CommandAPDU:
    """The plain ``INTERNAL AUTHENTICATE`` command for ``challenge``.

    Args:
        challenge: exactly 8 bytes.
        ne: expected signature length; 256 (short ``Le = 00``) fits RSA-2048
            and every ECDSA curve, larger values use extended length.
    """
    if type(challenge) is not bytes:
        raise TypeError("challenge must be bytes")
    if len(challenge) != CHALLENGE_LENGTH:
        raise ValueError("the Active Authentication challenge is 8 bytes")
    return CommandAPDU(0x00, 0x88, 0x00, 0x00, data=challenge, ne=ne)


class ActiveAuthState(enum.Enum):
    """States of :class:`ActiveAuthentication`."""

    START = "start"
    AWAIT_SIGNATURE = "await_signature"
    DONE = "done"
    FAILED = "failed"


@attrs.frozen
class ActiveAuthResult:
    """The chip's answer, not yet verified.

    Attributes:
        challenge: the challenge that was sent.
        signature: the chip's signature bytes, as returned.
    """

    challenge: bytes = attrs.field(repr=lambda b: b.hex())
    signature: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")


class ActiveAuthentication(ProtocolMachine[ActiveAuthState, ActiveAuthResult]):
    """Send one INTERNAL AUTHENTICATE and collect the signature.

    Args:
        challenge: the 8-byte challenge (e.g. a server nonce).
        channel: the secure channel to send it in; ``None`` sends it in plain
            (only for chips without access control).
        ne: expected signature length (see :func:`internal_authenticate_command`).

    :meth:`receive_response` raises :class:`~macnss_auth.errors.SecureMessagingError`
    when the response fails secure messaging, and
    :class:`~macnss_auth.errors.RemoteProtocolError` when the chip refuses or
    returns no signature.
    """

    FAILED = ActiveAuthState.FAILED
    DONE = ActiveAuthState.DONE
    TRANSITIONS = {  # noqa: RUF012 (the table is read only)
        (ActiveAuthState.START, Event.COMMAND): {ActiveAuthState.AWAIT_SIGNATURE},
        (ActiveAuthState.AWAIT_SIGNATURE, Event.RESPONSE): {ActiveAuthState.DONE},
    }

    def __init__(self, challenge: bytes, *, channel: SecureChannel | None, ne: int = 256) -> None:
        super().__init__(ActiveAuthState.START)
        self._command_apdu = internal_authenticate_command(challenge, ne=ne)
        if channel is not None and not isinstance(channel, SecureChannel):
            raise TypeError("channel must be a SecureChannel or None")
        self._channel = channel
        self._challenge = challenge

    def _command(self, state: ActiveAuthState) -> tuple[bytes, ActiveAuthState]:
        if self._channel is None:
            return self._command_apdu.to_bytes(), ActiveAuthState.AWAIT_SIGNATURE
        if self._channel.closed:
            raise LocalProtocolError("the secure channel is closed")
        return self._channel.protect(self._command_apdu), ActiveAuthState.AWAIT_SIGNATURE

    def _response(self, state: ActiveAuthState, response: bytes) -> ActiveAuthState:
        if self._channel is None:
            plain = ResponseAPDU.from_bytes(response)
        else:
            plain = self._channel.unprotect(response)
        plain.raise_for_status("INTERNAL AUTHENTICATE")
        if not plain.data:
            raise RemoteProtocolError(
                "INTERNAL AUTHENTICATE returned no signature", status_word=plain.sw
            )
        self._set_result(ActiveAuthResult(self._challenge, plain.data))
        return ActiveAuthState.DONE

"""PIN management around PACE (BSI TR-03110-2 §3.5): resume a suspended PIN, unblock, change.

The PIN has a retry counter (3 when full). Each PACE with a wrong PIN costs
one try; at 1 the PIN is *suspended*: the card takes the last try only inside
a secure channel opened by a PACE with the CAN (so someone holding the card
but not the CAN cannot burn it); at 0 it is *blocked* until a PACE with the
PUK followed by RESET RETRY COUNTER. :class:`~macnss_auth.nfc.pace.PaceTerminal`
reports each state as a typed error with ``remaining_attempts``:

=====================  =============================  ==========================================
card answers           when                           the terminal raises
=====================  =============================  ==========================================
``63C2`` on MSE        PIN used once                  nothing (a warning; ``remaining_attempts``)
``63C1`` on MSE        PIN suspended                  ``PasswordSuspended`` (unless ``resuming``)
``63C0`` / ``6983``    PIN or PUK blocked             ``PasswordBlocked``
``63CX`` on GA 4       wrong PIN, X tries left        ``AccessDenied`` / ``PasswordSuspended`` (X=1)
=====================  =============================  ==========================================

The functions here run the multi-step procedures over a transport:
:func:`resume_pin` (CAN, then PIN under secure messaging) and
:func:`unblock_pin` (PUK, then RESET RETRY COUNTER). Nested PACE runs go
through :class:`SecureMessagingTransport`, which protects each command with
the current session and unprotects each answer.
"""

from __future__ import annotations

from macnss_auth.clock import RandomSource
from macnss_auth.errors import RemoteProtocolError
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.mrz import CAN, PIN, PUK
from macnss_auth.nfc.pace.terminal import PaceResult, PaceTerminal
from macnss_auth.nfc.protocol import Transport, run
from macnss_auth.nfc.securityinfos import PaceInfo
from macnss_auth.nfc.sm import SecureChannel

__all__ = [
    "SecureMessagingTransport",
    "reset_retry_counter_command",
    "resume_pin",
    "unblock_pin",
]

_INS_RESET_RETRY_COUNTER = 0x2C
_PIN_REFERENCE = 0x03


class SecureMessagingTransport:
    """A transport that sends every command protected by ``channel`` (for nested PACE).

    Raises (from ``transceive``):
        SecureMessagingError: an answer that fails its MAC or structure checks.
    """

    def __init__(self, transport: Transport, channel: SecureChannel) -> None:
        self._transport = transport
        self._channel = channel

    def __repr__(self) -> str:
        return "SecureMessagingTransport(<session>)"

    def transceive(self, command: bytes) -> bytes:
        """Protect ``command``, send it, return the verified plain answer."""
        protected = self._channel.protect(CommandAPDU.from_bytes(command))
        return self._channel.unprotect(self._transport.transceive(protected)).to_bytes()


def reset_retry_counter_command(*, new_pin: PIN | None = None) -> CommandAPDU:
    """RESET RETRY COUNTER for the PIN (TR-03110-3 B.11.4): unblock, or set ``new_pin``.

    ``00 2C 03 03`` resets the counter (after a PACE with the PUK);
    ``00 2C 02 03 <new PIN>`` changes the PIN (after a PACE with the PIN or PUK).
    Send it protected by that session.
    """
    if new_pin is None:
        return CommandAPDU(0x00, _INS_RESET_RETRY_COUNTER, 0x03, _PIN_REFERENCE)
    return CommandAPDU(
        0x00, _INS_RESET_RETRY_COUNTER, 0x02, _PIN_REFERENCE, data=new_pin.to_bytes()
    )


def resume_pin(
    transport: Transport,
    can: CAN,
    pin: PIN,
    info: PaceInfo,
    *,
    random: RandomSource,
) -> PaceResult:
    """Run the resume procedure: PACE with the CAN, then PACE with the PIN inside it.

    Returns the result of the PACE with the PIN: its session replaces the CAN's.

    Raises:
        AccessDenied: the CAN was wrong.
        PasswordBlocked: the PIN was wrong: it is now blocked (use :func:`unblock_pin`).
        SecureMessagingError: an answer failed its checks.
        RemoteProtocolError: the chip misbehaved.
    """
    can_result = run(PaceTerminal(can, info, random=random), transport)
    nested = SecureMessagingTransport(transport, can_result.secure_channel())
    return run(PaceTerminal(pin, info, random=random, resuming=True), nested)


def unblock_pin(
    transport: Transport,
    puk: PUK,
    info: PaceInfo,
    *,
    random: RandomSource,
    new_pin: PIN | None = None,
) -> SecureChannel:
    """PACE with the PUK, then RESET RETRY COUNTER: the PIN has all its tries again.

    With ``new_pin`` the PIN is also replaced. Returns the PUK session's
    secure channel, in which the reset was sent (ready for more commands).

    Raises:
        AccessDenied: the PUK was wrong (``remaining_attempts``: its uses left).
        PasswordBlocked: the PUK has no uses left.
        RemoteProtocolError: the card refused the reset.
    """
    result = run(PaceTerminal(puk, info, random=random), transport)
    channel = result.secure_channel()
    secured = SecureMessagingTransport(transport, channel)
    commands = [reset_retry_counter_command()]
    if new_pin is not None:
        commands.append(reset_retry_counter_command(new_pin=new_pin))
    for command in commands:
        answer = ResponseAPDU.from_bytes(secured.transceive(command.to_bytes()))
        if not answer.ok:
            raise RemoteProtocolError(
                f"RESET RETRY COUNTER refused: {answer.status}", status_word=answer.sw
            )
    return channel

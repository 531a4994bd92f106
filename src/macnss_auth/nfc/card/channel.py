"""The card's end of ICAO 9303 secure messaging, on :class:`macnss_auth.nfc.sm.CardSecureChannel`.

The cryptography is the library's (the same module the terminal uses); this
adapter adds what the chip needs around it: who opened the session (access to
EF.CardSecurity needs PACE) and the mapping of secure-messaging failures to
the unprotected ``6987``/``6988`` answers that end the session.
"""

from __future__ import annotations

from collections.abc import Sequence

from macnss_auth.errors import SecureMessagingError
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU, StatusCode
from macnss_auth.nfc.card.command import CardStatusError
from macnss_auth.nfc.sm import CardSecureChannel, SessionKeys

__all__ = ["SecureChannel"]


class SecureChannel:
    """One secure-messaging session, card side.

    Args:
        keys: the session keys.
        ssc: the initial send sequence counter.
        established_by: ``"BAC"``, ``"PACE"`` or ``"CA"``.
    """

    def __init__(
        self,
        keys: SessionKeys,
        *,
        ssc: int,
        established_by: str,
        alternatives: Sequence[SessionKeys] = (),
    ) -> None:
        self._channel = CardSecureChannel(keys, ssc=ssc)
        # Chip Authentication over DH: a terminal may have hashed K without its
        # leading zero octets; the first command's MAC tells which keys it has.
        self._alternatives = [CardSecureChannel(other, ssc=ssc) for other in alternatives]
        self.established_by = established_by

    def __repr__(self) -> str:
        return f"SecureChannel({self._channel.cipher.value}, by={self.established_by})"

    def unprotect(self, raw: bytes) -> CommandAPDU:
        """Check and decrypt a protected command.

        Raises:
            CardStatusError: ``6987``/``6988`` (or ``6700``), with ``drop_session``.
        """
        try:
            if self._alternatives:
                return self._first_command(raw)
            return self._channel.unprotect_command(raw)
        except SecureMessagingError as error:
            status = error.status_word or int(StatusCode.SM_DATA_OBJECTS_INCORRECT)
            raise CardStatusError(status.to_bytes(2, "big"), drop_session=True) from None

    def _first_command(self, raw: bytes) -> CommandAPDU:
        candidates, self._alternatives = [self._channel, *self._alternatives], []
        failure: SecureMessagingError | None = None
        for channel in candidates:
            try:
                command = channel.unprotect_command(raw)
            except SecureMessagingError as error:
                failure = failure or error
                continue
            self._channel = channel
            return command
        assert failure is not None  # noqa: S101 (at least one candidate was tried)
        raise failure

    def protect(self, data: bytes, status: bytes) -> bytes:
        """Protect a response (data, if any, and the status word)."""
        return self._channel.protect_response(ResponseAPDU(data, int.from_bytes(status, "big")))

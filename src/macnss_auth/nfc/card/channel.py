"""The chip's secure-messaging session: the library's channel, card role, plus who opened it.

Secure messaging itself is :class:`macnss_auth.nfc.sm.SecureChannel` with
``role=Role.CARD`` (one implementation for both ends). What the chip adds
around it is not cryptography: which protocol opened the session (access to
EF.CardSecurity needs PACE) and the card's way to fail, an unprotected
``6987``/``6988`` (:class:`CardStatusError` with ``drop_session``).
"""

from __future__ import annotations

from collections.abc import Sequence

from macnss_auth.errors import SecureMessagingError
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU, StatusCode
from macnss_auth.nfc.card.command import CardStatusError
from macnss_auth.nfc.sm import CardSecureChannel, SessionKeys

__all__ = ["CardSession"]


class CardSession:
    """One secure-messaging session, card side.

    Args:
        keys: the session keys.
        ssc: the initial send sequence counter.
        established_by: ``"BAC"``, ``"PACE"`` or ``"CA"``.
        alternatives: other keys the terminal may hold (see
            :class:`~macnss_auth.nfc.sm.SecureChannel`).
    """

    def __init__(
        self,
        keys: SessionKeys,
        *,
        ssc: int,
        established_by: str,
        alternatives: Sequence[SessionKeys] = (),
    ) -> None:
        self._channel = CardSecureChannel(keys, ssc=ssc, alternatives=alternatives)
        self.established_by = established_by

    def __repr__(self) -> str:
        return f"CardSession({self._channel.cipher.value}, by={self.established_by})"

    def unprotect(self, raw: bytes) -> CommandAPDU:
        """Check and decrypt a protected command.

        Raises:
            CardStatusError: ``6987``/``6988`` (or ``6700``), with ``drop_session``.
        """
        try:
            return self._channel.unprotect_command(raw)
        except SecureMessagingError as error:
            status = error.status_word or StatusCode.SM_DATA_OBJECTS_INCORRECT
            raise CardStatusError(status.to_bytes(2, "big"), drop_session=True) from None

    def protect(self, data: bytes, status: bytes) -> bytes:
        """Protect a response (data, if any, and the status word)."""
        return self._channel.protect_response(ResponseAPDU(data, int.from_bytes(status, "big")))

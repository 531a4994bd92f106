"""The card's side of Basic Access Control (ICAO 9303-11 §4.3, Appendix D).

The mathematics is :func:`macnss_auth.nfc.bac.card_authenticate` (shared with
the terminal); this module is the chip's state: the outstanding challenge.
The chip's randomness (RND.IC, then K.IC) comes from the injected source, so
Appendix D replays byte for byte.

State table (one challenge per attempt; any failure consumes it)::

    IDLE --GET CHALLENGE--> CHALLENGED --EXTERNAL AUTHENTICATE ok--> session
    CHALLENGED --GET CHALLENGE--> CHALLENGED (new RND.IC)
    CHALLENGED --EXTERNAL AUTHENTICATE bad--> IDLE (6300)
    IDLE --EXTERNAL AUTHENTICATE--> IDLE (6985: no challenge)
"""

from __future__ import annotations

from macnss_auth.clock import RandomSource
from macnss_auth.errors import AccessDenied
from macnss_auth.nfc.apdu import StatusCode
from macnss_auth.nfc.bac import BacKeys, card_authenticate
from macnss_auth.nfc.card.channel import CardSession
from macnss_auth.nfc.card.command import CardStatusError
from macnss_auth.nfc.crypto import KDF_ENC, KDF_MAC, SymmetricCipher, derive_key

__all__ = ["BacResponder"]


class BacResponder:
    """The chip's BAC state: its document basic access keys and the outstanding challenge.

    Args:
        key_seed: ``SHA-1(MRZ information)`` (the first 16 bytes are BAC's K_seed).
        random: the chip's randomness (RND.IC, K.IC).
    """

    def __init__(self, key_seed: bytes, *, random: RandomSource) -> None:
        seed = key_seed[:16]
        tdes = SymmetricCipher.TDES
        self._keys = BacKeys(derive_key(seed, KDF_ENC, tdes), derive_key(seed, KDF_MAC, tdes))
        self._random = random
        self._rnd_ic: bytes | None = None

    def __repr__(self) -> str:
        return f"BacResponder(challenged={self._rnd_ic is not None})"

    def challenge(self, length: int) -> bytes:
        """GET CHALLENGE: fresh random bytes; an 8-byte one is BAC's RND.IC."""
        value = self._random.token_bytes(length)
        self._rnd_ic = value if length == 8 else None
        return value

    def forget(self) -> None:
        """Drop the outstanding challenge (reset, new session)."""
        self._rnd_ic = None

    def external_authenticate(self, data: bytes) -> tuple[bytes, CardSession]:
        """Check ``E.IFD || M.IFD``; return ``E.IC || M.IC`` and the new session.

        Raises:
            CardStatusError: ``6700`` wrong length, ``6985`` no challenge
                outstanding, ``6300`` wrong MAC or wrong RND.IC.
        """
        rnd_ic, self._rnd_ic = self._rnd_ic, None
        if len(data) != 40:
            raise CardStatusError(StatusCode.WRONG_LENGTH)
        if rnd_ic is None:
            raise CardStatusError(StatusCode.CONDITIONS_NOT_SATISFIED)
        # K.IC is drawn before the check so that a scripted source stays in step either way.
        k_ic = self._random.token_bytes(16)
        try:
            result = card_authenticate(self._keys, rnd_ic, data, k_ic)
        except AccessDenied:
            raise CardStatusError(StatusCode.AUTHENTICATION_FAILED) from None
        channel = CardSession(result.keys, ssc=result.ssc, established_by="BAC")
        return result.response_data, channel

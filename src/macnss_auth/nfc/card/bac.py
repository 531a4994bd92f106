"""The card's side of Basic Access Control (ICAO 9303-11 §4.3, Appendix D).

The chip answers GET CHALLENGE with RND.IC, then checks the terminal's
EXTERNAL AUTHENTICATE cryptogram (MAC first, in constant time, then the
echoed RND.IC), answers with its own cryptogram over K.IC, and derives the
session keys and SSC. Its randomness (RND.IC, K.IC) comes from the injected
source so Appendix D replays byte for byte.

State table (one challenge per attempt; any failure consumes it)::

    IDLE --GET CHALLENGE--> CHALLENGED --EXTERNAL AUTHENTICATE ok--> session
    CHALLENGED --GET CHALLENGE--> CHALLENGED (new RND.IC)
    CHALLENGED --EXTERNAL AUTHENTICATE bad--> IDLE (6300)
    IDLE --EXTERNAL AUTHENTICATE--> IDLE (6985: no challenge)
"""

from __future__ import annotations

import hashlib
import hmac

from macnss_auth.clock import RandomSource
from macnss_auth.nfc.card.channel import SecureChannel
from macnss_auth.nfc.card.command import CardStatusError
from macnss_auth.nfc.card.status import StatusWord
from macnss_auth.nfc.crypto import (
    KDF_ENC,
    KDF_MAC,
    SymmetricCipher,
    block_decrypt_cbc,
    block_encrypt_cbc,
    derive_key,
    mac,
)
from macnss_auth.nfc.sm import SessionKeys

__all__ = ["BacResponder", "bac_keys"]

_TDES = SymmetricCipher.TDES


def bac_keys(mrz_information: str) -> tuple[bytes, bytes]:
    """K_enc and K_mac from the MRZ information (document number, birth, expiry, with check digits).

    ICAO 9303-11 §9.7.2: ``K_seed = SHA-1(MRZ_information)[0:16]``.
    """
    seed = hashlib.sha1(mrz_information.encode("ascii")).digest()[:16]  # noqa: S324 (mandated by 9303)
    return derive_key(seed, KDF_ENC, _TDES), derive_key(seed, KDF_MAC, _TDES)


class BacResponder:
    """The chip's BAC state: the outstanding challenge, if any."""

    def __init__(self, mrz_information: str, *, random: RandomSource) -> None:
        self._k_enc, self._k_mac = bac_keys(mrz_information)
        self._random = random
        self._rnd_ic: bytes | None = None

    def __repr__(self) -> str:
        return f"BacResponder(challenged={self._rnd_ic is not None})"

    def challenge(self, length: int) -> bytes:
        """GET CHALLENGE: a fresh RND.IC (the one BAC uses is 8 bytes)."""
        value = self._random.token_bytes(length)
        self._rnd_ic = value if length == 8 else None
        return value

    def forget(self) -> None:
        """Drop the outstanding challenge (reset, new session)."""
        self._rnd_ic = None

    def external_authenticate(self, data: bytes) -> tuple[bytes, SecureChannel]:
        """Check ``E.IFD || M.IFD``; return ``E.IC || M.IC`` and the new session.

        Raises:
            CardStatusError: ``6700`` wrong length, ``6985`` no challenge
                outstanding, ``6300`` wrong MAC or wrong RND.IC.
        """
        rnd_ic, self._rnd_ic = self._rnd_ic, None
        if len(data) != 40:
            raise CardStatusError(StatusWord.WRONG_LENGTH)
        if rnd_ic is None:
            raise CardStatusError(StatusWord.CONDITIONS_NOT_SATISFIED)
        e_ifd, m_ifd = data[:32], data[32:]
        if not hmac.compare_digest(mac(_TDES, self._k_mac, e_ifd), m_ifd):
            raise CardStatusError(StatusWord.AUTHENTICATION_FAILED)
        s = block_decrypt_cbc(_TDES, self._k_enc, e_ifd)
        rnd_ifd, echoed, k_ifd = s[:8], s[8:16], s[16:]
        if not hmac.compare_digest(echoed, rnd_ic):
            raise CardStatusError(StatusWord.AUTHENTICATION_FAILED)
        k_ic = self._random.token_bytes(16)
        e_ic = block_encrypt_cbc(_TDES, self._k_enc, rnd_ic + rnd_ifd + k_ic)
        response = e_ic + mac(_TDES, self._k_mac, e_ic)
        seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic, strict=True))
        channel = SecureChannel(
            SessionKeys.derive(seed, _TDES),
            ssc=int.from_bytes(rnd_ic[4:] + rnd_ifd[4:], "big"),
            established_by="BAC",
        )
        return response, channel

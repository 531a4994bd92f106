"""Basic Access Control (ICAO 9303-11 §4.3 and §9.7.2), terminal side and card-side math.

Theory of operation::

    terminal                                            chip
    GET CHALLENGE            ------------------------>
                             <------------------------  RND.IC (8 bytes)
    S = RND.IFD || RND.IC || K.IFD
    EXTERNAL AUTHENTICATE    E.IFD = 3DES(Kenc, S) || M.IFD = MAC(Kmac, E.IFD)  -->
                             <------------------------  E.IC || M.IC
    R = RND.IC || RND.IFD || K.IC    (checked: MAC, then both nonces)
    KSseed = K.IFD xor K.IC; KSenc, KSmac = KDF(KSseed, 1 / 2)
    SSC = RND.IC[4:8] || RND.IFD[4:8]

``Kenc``/``Kmac`` come from the MRZ: ``KDF(SHA-1(MRZ information)[0:16], 1 / 2)``.
RND.IFD and K.IFD come from the injected :class:`~macnss_auth.clock.RandomSource`
(RND.IFD first, then K.IFD), so the Appendix D worked example replays byte for
byte. The result is a ready :class:`~macnss_auth.nfc.sm.SecureChannel`.

BAC is obsolete and weak: a recorded transcript allows offline guessing of
the MRZ. Prefer PACE when the chip offers it.

The card side of the same arithmetic (:func:`card_authenticate`) is here as
pure functions so the virtual card and the terminal cannot drift apart.
"""

from __future__ import annotations

import enum
import hmac

import attrs

from macnss_auth.clock import RandomSource
from macnss_auth.errors import (
    AccessDenied,
    ConfigurationError,
    LocalProtocolError,
    MalformedInput,
    RemoteProtocolError,
)
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU, StatusCode
from macnss_auth.nfc.crypto import (
    KDF_ENC,
    KDF_MAC,
    SymmetricCipher,
    block_decrypt_cbc,
    block_encrypt_cbc,
    derive_key,
    mac,
)
from macnss_auth.nfc.mrz import MrzKey, bac_key_seed
from macnss_auth.nfc.protocol import Event, ProtocolMachine
from macnss_auth.nfc.sm import SecureChannel, SessionKeys

__all__ = [
    "BacKeys",
    "BacProtocol",
    "BacResult",
    "BacState",
    "CardBacResult",
    "bac_session",
    "card_authenticate",
    "derive_bac_keys",
    "mutual_auth_cryptogram",
]

_TDES = SymmetricCipher.TDES
_NONCE = 8
_KEY_MATERIAL = 16
# ISO/IEC 7816-4: 6300 / 6982 are what chips answer to a wrong MRZ.
_SW_WRONG_KEY = frozenset(
    {StatusCode.AUTHENTICATION_FAILED, StatusCode.SECURITY_STATUS_NOT_SATISFIED}
)


@attrs.frozen(repr=False, eq=False)
class BacKeys:
    """The document basic access keys ``Kenc`` and ``Kmac`` (from the MRZ)."""

    k_enc: bytes
    k_mac: bytes

    def __repr__(self) -> str:
        return "BacKeys(<redacted>)"


def derive_bac_keys(key: MrzKey) -> BacKeys:
    """``Kenc``/``Kmac`` from the MRZ fields (ICAO 9303-11 §9.7.2)."""
    seed = bac_key_seed(key)
    return BacKeys(derive_key(seed, KDF_ENC, _TDES), derive_key(seed, KDF_MAC, _TDES))


def mutual_auth_cryptogram(keys: BacKeys, plain: bytes) -> bytes:
    """``E || MAC(Kmac, E)`` with ``E = 3DES-CBC(Kenc, plain)``: both sides' 40-byte message."""
    encrypted = block_encrypt_cbc(_TDES, keys.k_enc, plain)
    return encrypted + mac(_TDES, keys.k_mac, encrypted)


def _open_cryptogram(keys: BacKeys, data: bytes) -> bytes | None:
    """Check the MAC of a 40-byte cryptogram and decrypt it; ``None`` if it does not verify."""
    if len(data) != 40:
        return None
    encrypted, received = data[:32], data[32:]
    if not hmac.compare_digest(mac(_TDES, keys.k_mac, encrypted), received):
        return None
    return block_decrypt_cbc(_TDES, keys.k_enc, encrypted)


def bac_session(
    k_ifd: bytes, k_ic: bytes, rnd_ic: bytes, rnd_ifd: bytes
) -> tuple[SessionKeys, int]:
    """Session keys and initial SSC from the exchanged key material (both sides use this)."""
    seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic, strict=True))
    ssc = int.from_bytes(rnd_ic[4:8] + rnd_ifd[4:8], "big")
    return SessionKeys.derive(seed, _TDES), ssc


@attrs.frozen(repr=False)
class CardBacResult:
    """What the chip ends BAC with: its answer and its side of the channel.

    Attributes:
        response_data: ``E.IC || M.IC``, the EXTERNAL AUTHENTICATE response data.
        keys: the session keys.
        ssc: the initial send sequence counter.
    """

    response_data: bytes
    keys: SessionKeys
    ssc: int

    def __repr__(self) -> str:
        return "CardBacResult(<redacted>)"


def card_authenticate(
    keys: BacKeys, rnd_ic: bytes, command_data: bytes, k_ic: bytes
) -> CardBacResult:
    """The chip's EXTERNAL AUTHENTICATE processing (ICAO 9303-11 §4.3.3).

    Args:
        keys: the document basic access keys.
        rnd_ic: the challenge the chip gave in GET CHALLENGE.
        command_data: ``E.IFD || M.IFD`` from the terminal.
        k_ic: the chip's 16 bytes of fresh key material.

    Raises:
        AccessDenied: the MAC or the echoed challenge is wrong (``status_word``
            6300 is what the chip answers).
    """
    if len(rnd_ic) != _NONCE or len(k_ic) != _KEY_MATERIAL:
        raise MalformedInput("RND.IC is 8 bytes and K.IC 16", field="bac")
    plain = _open_cryptogram(keys, command_data)
    if plain is None or not hmac.compare_digest(plain[8:16], rnd_ic):
        raise AccessDenied(
            "terminal failed BAC authentication", status_word=int(StatusCode.AUTHENTICATION_FAILED)
        )
    rnd_ifd, k_ifd = plain[:8], plain[16:32]
    response = mutual_auth_cryptogram(keys, rnd_ic + rnd_ifd + k_ic)
    session, ssc = bac_session(k_ifd, k_ic, rnd_ic, rnd_ifd)
    return CardBacResult(response, session, ssc)


class BacState(enum.Enum):
    """States of :class:`BacProtocol`."""

    START = "start"
    AWAIT_CHALLENGE = "await_challenge"
    HAVE_CHALLENGE = "have_challenge"
    AWAIT_AUTHENTICATE = "await_authenticate"
    DONE = "done"
    FAILED = "failed"


@attrs.frozen(repr=False)
class BacResult:
    """A finished BAC: the secure channel to use from now on.

    Attributes:
        channel: the terminal side of the secure channel (3DES, SSC from the nonces).
    """

    channel: SecureChannel

    def __repr__(self) -> str:
        return "BacResult(<channel>)"


class BacProtocol(ProtocolMachine[BacState, BacResult]):
    """Terminal-side BAC as a sans-I/O state machine.

    >>> from macnss_auth.testing import FixedRandom
    >>> bac = BacProtocol(MrzKey("L898902C", "690806", "940623"), random=FixedRandom(1))
    >>> bac.next_command().hex()
    '0084000008'

    :meth:`receive_response` raises :class:`~macnss_auth.errors.AccessDenied`
    (with ``status_word``) when the chip refuses the MRZ-derived key, and
    :class:`~macnss_auth.errors.RemoteProtocolError` for any other refusal, a
    malformed answer, or an answer that does not verify.
    """

    FAILED = BacState.FAILED
    DONE = BacState.DONE
    TRANSITIONS = {  # noqa: RUF012 (the table is read only)
        (BacState.START, Event.COMMAND): {BacState.AWAIT_CHALLENGE},
        (BacState.AWAIT_CHALLENGE, Event.RESPONSE): {BacState.HAVE_CHALLENGE},
        (BacState.HAVE_CHALLENGE, Event.COMMAND): {BacState.AWAIT_AUTHENTICATE},
        (BacState.AWAIT_AUTHENTICATE, Event.RESPONSE): {BacState.DONE},
    }

    def __init__(self, key: MrzKey | BacKeys, *, random: RandomSource) -> None:
        super().__init__(BacState.START)
        if isinstance(key, MrzKey):
            key = derive_bac_keys(key)
        if not isinstance(key, BacKeys):
            raise TypeError("key must be an MrzKey or BacKeys")
        self._keys: BacKeys | None = key
        self._random = random
        self._rnd_ic = b""
        self._rnd_ifd = b""
        self._k_ifd = b""

    def _command(self, state: BacState) -> tuple[bytes, BacState]:
        if state is BacState.START:
            return CommandAPDU(
                0x00, 0x84, 0x00, 0x00, ne=_NONCE
            ).to_bytes(), BacState.AWAIT_CHALLENGE
        keys = self._live_keys()
        self._rnd_ifd = self._random_bytes(_NONCE)
        self._k_ifd = self._random_bytes(_KEY_MATERIAL)
        data = mutual_auth_cryptogram(keys, self._rnd_ifd + self._rnd_ic + self._k_ifd)
        command = CommandAPDU(0x00, 0x82, 0x00, 0x00, data=data, ne=40)
        return command.to_bytes(), BacState.AWAIT_AUTHENTICATE

    def _response(self, state: BacState, response: bytes) -> BacState:
        apdu = ResponseAPDU.from_bytes(response)
        if state is BacState.AWAIT_CHALLENGE:
            apdu.raise_for_status("GET CHALLENGE")
            if len(apdu.data) != _NONCE:
                raise RemoteProtocolError(
                    "GET CHALLENGE answer is not 8 bytes", status_word=apdu.sw
                )
            self._rnd_ic = apdu.data
            return BacState.HAVE_CHALLENGE
        if apdu.sw in _SW_WRONG_KEY:
            raise AccessDenied("the chip refused the MRZ key", status_word=apdu.sw)
        apdu.raise_for_status("EXTERNAL AUTHENTICATE")
        plain = _open_cryptogram(self._live_keys(), apdu.data)
        if plain is None:
            raise RemoteProtocolError("chip's BAC answer does not verify", status_word=apdu.sw)
        # R = RND.IC || RND.IFD || K.IC; both nonces must come back unchanged.
        if not hmac.compare_digest(plain[:8], self._rnd_ic) or not hmac.compare_digest(
            plain[8:16], self._rnd_ifd
        ):
            raise RemoteProtocolError("chip's BAC answer has the wrong nonces", status_word=apdu.sw)
        keys, ssc = bac_session(self._k_ifd, plain[16:32], self._rnd_ic, self._rnd_ifd)
        self._set_result(BacResult(SecureChannel(keys, ssc=ssc)))
        self._drop_secrets()
        return BacState.DONE

    def _live_keys(self) -> BacKeys:
        if self._keys is None:
            raise LocalProtocolError("BAC keys already dropped")
        return self._keys

    def _random_bytes(self, n: int) -> bytes:
        value = self._random.token_bytes(n)
        if type(value) is not bytes or len(value) != n:
            raise ConfigurationError("random source returned the wrong number of bytes")
        return value

    def _drop_secrets(self) -> None:
        self._keys = None
        self._rnd_ifd = self._k_ifd = self._rnd_ic = b""

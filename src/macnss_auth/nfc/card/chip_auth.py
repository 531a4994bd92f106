"""The card's side of Chip Authentication (ICAO 9303-11 §6.2) and Active Authentication (§6.1).

Chip Authentication: the terminal sends an ephemeral public key, either with
``MSE:Set KAT`` (3DES, one command) or with ``MSE:Set AT`` naming the protocol
then ``GENERAL AUTHENTICATE`` (``7C { 80 key }``, answered ``7C 00``). The
chip derives new session keys from its static key (the arithmetic is
:func:`macnss_auth.nfc.chip_auth.card_session_key_candidates`, shared with the
terminal), answers under the old keys, then switches with ``SSC = 0``.

A chip issued for CA version 2 (BSI TR-03110-2 §3.4.2) takes ``MSE:Set AT``
+ ``GENERAL AUTHENTICATE`` only (``MSE:Set KAT`` is CA v1: ``6A81``). It
draws an 8-octet nonce ``r_PICC`` from its random source, derives the keys
from ``K || r_PICC`` and answers ``7C { 81 r_PICC, 82 T_PICC }`` with
``T_PICC = MAC(KSmac, 7F49 { 06 OID, 86/84 PK_PCD })`` (TR-03110-3 A.2.3.2,
A.2.4.2; :func:`macnss_auth.nfc.chip_auth.chip_authentication_token`).

Active Authentication: ``INTERNAL AUTHENTICATE`` with an 8-byte challenge,
answered with a signature by the AA key -- RSA with ISO/IEC 9796-2 digital
signature scheme 1 (partial message recovery, SHA-1, trailer ``BC``) or
ECDSA as a plain ``r || s`` (BSI TR-03111) over SHA-256, as DG14's
ActiveAuthenticationInfo announces.

A clone has neither private key: it refuses CA and AA (``6982``/``6A88``),
which is exactly what the reader must notice.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils

from macnss_auth.clock import RandomSource
from macnss_auth.errors import ConfigurationError, MacnssAuthError, MalformedInput
from macnss_auth.nfc import tlv
from macnss_auth.nfc.apdu import StatusCode
from macnss_auth.nfc.card.channel import CardSession
from macnss_auth.nfc.card.command import CardStatusError
from macnss_auth.nfc.card.issuing_pki import active_authentication_sign
from macnss_auth.nfc.card.model import CardQuirks, ChipSecrets
from macnss_auth.nfc.card.pace import parse_dynamic_authentication_data
from macnss_auth.nfc.chip_auth import (
    CA_VERSIONS,
    CaAlgorithm,
    card_session_key_candidates,
    chip_authentication_token,
)
from macnss_auth.nfc.eckeys import EcPrivateKey, ecdsa_sign
from macnss_auth.nfc.pki import HashAlgorithm
from macnss_auth.nfc.sm import SessionKeys

__all__ = ["ChipAuthResponder", "active_authentication_signature"]

#: CA v2's chip nonce r_PICC: 8 octets (as OpenPACE's chip and the tachograph gen2 cards send).
_NONCE_LENGTH = 8


def active_authentication_signature(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | EcPrivateKey,
    challenge: bytes,
    *,
    der: bool = False,
) -> bytes:
    """The INTERNAL AUTHENTICATE answer for ``challenge``.

    RSA: ISO/IEC 9796-2 scheme 1 with SHA-1 (trailer ``BC``, ICAO's default);
    ECDSA: SHA-256, as DG14's ActiveAuthenticationInfo (ecdsa-with-SHA256) says,
    plain ``r || s`` (BSI TR-03111), on any standardized curve; with ``der``
    an X9.62 DER ``Ecdsa-Sig-Value``, as some chips answer instead.
    The arithmetic is :func:`macnss_auth.nfc.card.issuing_pki.active_authentication_sign`.
    """
    if isinstance(key, EcPrivateKey):
        r, s = ecdsa_sign(key, challenge, HashAlgorithm.SHA256.new())
        size = key.curve.order_length
    else:
        algorithm = (
            HashAlgorithm.SHA1 if isinstance(key, rsa.RSAPrivateKey) else HashAlgorithm.SHA256
        )
        signature = active_authentication_sign(key, challenge, hash_algorithm=algorithm)
        if not der or isinstance(key, rsa.RSAPrivateKey):
            return signature
        size = len(signature) // 2
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    if der:
        # Some chips answer X9.62 DER instead of the plain format ICAO asks for.
        return utils.encode_dss_signature(r, s)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


class ChipAuthResponder:
    """The chip's Chip Authentication state (its key and the protocol set by MSE:Set AT).

    Args:
        algorithm: the protocol DG14 announces, or ``None`` without CA.
        secrets: the chip's keys.
        quirks: field behaviours.
        version: the CA version DG14 announces (1 or 2).
        random: where CA v2 nonces come from (required for version 2).

    Raises:
        ConfigurationError: an unknown version, or version 2 without ``random``.
    """

    def __init__(
        self,
        algorithm: CaAlgorithm | None,
        secrets: ChipSecrets,
        quirks: CardQuirks | None = None,
        *,
        version: int = 1,
        random: RandomSource | None = None,
    ) -> None:
        if version not in CA_VERSIONS:
            raise ConfigurationError(f"Chip Authentication version {version!r} is not 1 or 2")
        if version == 2 and random is None:
            raise ConfigurationError("a CA version 2 chip needs a random source for its nonces")
        self._version = version
        self._random = random
        self._quirks = quirks or CardQuirks()
        self._algorithm = algorithm
        self._key = secrets.ca_key
        self._key_id = secrets.ca_key_id
        self._pending: CaAlgorithm | None = None

    def __repr__(self) -> str:
        return f"ChipAuthResponder(set={self._pending is not None})"

    def abort(self) -> None:
        """Forget an MSE:Set AT awaiting its GENERAL AUTHENTICATE."""
        self._pending = None

    @property
    def awaiting_key(self) -> bool:
        """Whether MSE:Set AT chose CA and the GENERAL AUTHENTICATE is due."""
        return self._pending is not None

    def _check_key_reference(self, objects: dict[int, bytes]) -> None:
        reference = objects.get(0x84)
        quirks = self._quirks
        if (reference is None and quirks.ca_requires_key_reference) or (
            reference is not None and quirks.ca_refuses_key_reference
        ):
            raise CardStatusError(StatusCode.INCORRECT_DATA)
        if reference is not None and (
            self._key_id is None or int.from_bytes(reference, "big") != self._key_id
        ):
            raise CardStatusError(StatusCode.REFERENCED_DATA_NOT_FOUND)

    def _usable(self) -> CaAlgorithm:
        if self._algorithm is None or self._key is None:
            # No CA on this chip, or a clone without the private key.
            raise CardStatusError(StatusCode.REFERENCED_DATA_NOT_FOUND)
        return self._algorithm

    def set_at(self, data: bytes) -> None:
        """MSE:Set AT for CA (``002241A4``): protocol OID and optional key id.

        Raises:
            CardStatusError: ``6A88`` unknown protocol or key, ``6A80`` malformed data.
        """
        self._pending = None
        algorithm = self._usable()
        objects = _objects(data)
        if objects.get(0x80) != algorithm.oid_bytes:
            raise CardStatusError(StatusCode.REFERENCED_DATA_NOT_FOUND)
        self._check_key_reference(objects)
        self._pending = algorithm

    def set_kat(self, data: bytes) -> CardSession:
        """MSE:Set KAT (``002241A6``): ephemeral key in ``91``; 3DES CA in one step.

        Raises:
            CardStatusError: ``6A88`` no CA key, ``6A80`` malformed or invalid key.
        """
        self._pending = None
        algorithm = self._usable()
        if self._version != 1:
            # MSE:Set KAT exists for CA v1 only (ICAO 9303-11 §6.2.4.1).
            raise CardStatusError(StatusCode.FUNCTION_NOT_SUPPORTED)
        objects = _objects(data)
        if 0x91 not in objects:
            raise CardStatusError(StatusCode.INCORRECT_DATA)
        self._check_key_reference(objects)
        return self._session(algorithm, objects[0x91])

    def general_authenticate(self, data: bytes) -> tuple[bytes, CardSession]:
        """GENERAL AUTHENTICATE ``7C { 80 key }`` after MSE:Set AT.

        CA v1 answers ``7C 00``; CA v2 ``7C { 81 nonce, 82 token }``.

        Raises:
            CardStatusError: ``6985`` without MSE:Set AT, ``6A80`` malformed or invalid key.
        """
        algorithm, self._pending = self._pending, None
        if algorithm is None:
            raise CardStatusError(StatusCode.CONDITIONS_NOT_SATISFIED)
        objects = parse_dynamic_authentication_data(data)
        if set(objects) != {0x80}:
            raise CardStatusError(StatusCode.INCORRECT_DATA)
        ephemeral = objects[0x80]
        if self._version == 1:
            return tlv.encode_tlv(0x7C, b""), self._session(algorithm, ephemeral)
        random = self._random
        if random is None:  # checked in __init__; kept for the type checker
            raise CardStatusError(StatusCode.NO_PRECISE_DIAGNOSIS)
        nonce = random.token_bytes(_NONCE_LENGTH)
        session, keys = self._keys(algorithm, ephemeral, nonce)
        token = chip_authentication_token(algorithm, keys, ephemeral)
        answer = tlv.encode_tlv(0x81, nonce) + tlv.encode_tlv(0x82, token)
        return tlv.encode_tlv(0x7C, answer), session

    def _session(self, algorithm: CaAlgorithm, ephemeral: bytes) -> CardSession:
        return self._keys(algorithm, ephemeral, b"")[0]

    def _keys(
        self, algorithm: CaAlgorithm, ephemeral: bytes, nonce: bytes
    ) -> tuple[CardSession, SessionKeys]:
        key = self._key
        if key is None:
            raise CardStatusError(StatusCode.REFERENCED_DATA_NOT_FOUND)
        try:
            keys, *others = card_session_key_candidates(algorithm, key, ephemeral, nonce=nonce)
        except MacnssAuthError:
            raise CardStatusError(StatusCode.INCORRECT_DATA) from None
        if nonce:
            # The token commits to one K (on the length of p): no alternatives.
            others = []
        return CardSession(keys, ssc=0, established_by="CA", alternatives=others), keys


def _objects(data: bytes) -> dict[int, bytes]:
    try:
        return {o.tag: o.value for o in tlv.parse_all(data)}
    except MalformedInput:
        raise CardStatusError(StatusCode.INCORRECT_DATA) from None

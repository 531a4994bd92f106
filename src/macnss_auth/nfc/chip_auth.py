"""Chip Authentication versions 1 and 2 (ICAO 9303-11 §6.2; BSI TR-03110-2 §3.4), terminal side.

Theory of operation. The chip's static key-agreement public key sits in
EF.DG14 (signed through EF.SOD). Inside the current secure channel the
terminal sends a fresh ephemeral public key on the same domain parameters:

* ``MSE:Set KAT`` (``00 22 41 A6``, data ``91`` key [``84`` key id]) -- one
  command, 3DES only; or
* ``MSE:Set AT`` (``00 22 41 A4``, data ``80`` protocol OID [``84`` key id])
  then ``GENERAL AUTHENTICATE`` (``00 86 00 00``, data ``7C { 80 key }``) --
  required for AES, allowed for 3DES.

Both sides compute ``K = KA(ephemeral private, static public)`` -- the
x-coordinate for ECDH, ``y^x mod p`` (fixed length, the length of ``p``) for
DH -- and derive ``KSenc = KDF(K, 1)``, ``KSmac = KDF(K, 2)``. The answer to
the last command still comes under the old keys; from then on secure
messaging restarts with the new keys and ``SSC = 0``. Only a chip holding the
static private key can talk on the new channel, which is what authenticates it
(and proves that the chip was not cloned, since DG14 is signed).

Version 2 (BSI TR-03110-2 §3.4.2, TR-03110-3 A.2.3.2 / A.2.4.2, as DG14's
ChipAuthenticationInfo ``version`` 2 announces): always ``MSE:Set AT`` then
``GENERAL AUTHENTICATE``, which the chip answers ``7C { 81 r_PICC, 82 T_PICC }``
-- a fresh nonce (8 octets) and an authentication token. The keys then come
from ``K || r_PICC`` (``KSenc = KDF(K || r_PICC, 1)``, ``KSmac = KDF(K ||
r_PICC, 2)``), and ``T_PICC = MAC(KSmac, 7F49 { 06 OID, 86/84 PK_PCD })`` over
the protocol OID and the terminal's ephemeral key
(:func:`chip_authentication_token`). The terminal checks the token in constant
time before it uses the new channel: only the holder of the static private key
can compute it.

The ephemeral private key comes from the injected RandomSource (a scalar of
the curve's byte length, or an exponent of ``q``'s / ``p``'s length), so
recorded sessions replay byte for byte. ECDH runs on every curve of the
standardized table through :mod:`macnss_auth.nfc.eckeys` (cryptography where
it has the curve, a fixed-length Montgomery ladder otherwise: brainpoolP224r1
keys are what the BSI 2008 specimen and passports of its generation carry).
Every received public key is validated (on the curve, order ``n``; DH values
in the order-``q`` subgroup) before any secret touches it.

The chip's side of the same arithmetic is :func:`card_session_keys`.
"""

from __future__ import annotations

import enum
import hmac

import attrs
from cryptography.hazmat.primitives.asymmetric import ec

from macnss_auth.clock import RandomSource
from macnss_auth.errors import (
    ConfigurationError,
    LocalProtocolError,
    MalformedInput,
    RemoteProtocolError,
    UnsupportedAlgorithm,
)
from macnss_auth.nfc.apdu import CommandAPDU, StatusCode
from macnss_auth.nfc.crypto import SymmetricCipher, mac
from macnss_auth.nfc.domain_params import DHGroup, curve_by_name
from macnss_auth.nfc.eckeys import EcPrivateKey, EcPublicKey
from macnss_auth.nfc.pace.messages import (
    decode_dynamic_authentication_data,
    encode_dynamic_authentication_data,
)
from macnss_auth.nfc.pki import parse_public_key_info
from macnss_auth.nfc.protocol import Event, ProtocolMachine
from macnss_auth.nfc.securityinfos import ChipAuthenticationPublicKeyInfo, PublicKeyOid
from macnss_auth.nfc.sm import SecureChannel, SessionKeys
from macnss_auth.nfc.tlv import encode_tlv

__all__ = [
    "CA_VERSIONS",
    "CaAlgorithm",
    "CaCommands",
    "CaState",
    "ChipAuthResult",
    "ChipAuthentication",
    "ChipPrivateKey",
    "ChipPublicKey",
    "DhPrivateKey",
    "DhPublicKey",
    "card_session_key_candidates",
    "card_session_keys",
    "chip_authentication_token",
    "chip_public_key",
    "encode_public_key",
    "shared_secret",
]

_ID_CA = "0.4.0.127.0.7.2.2.3"
#: The ChipAuthenticationInfo versions run here, on both sides (v3 is another protocol).
CA_VERSIONS = (1, 2)
_MAX_DRAWS = 64
# GENERAL AUTHENTICATE for CA: the terminal's ephemeral key inside 7C (ICAO 9303-11 §6.2.4.2).
_DO_EPHEMERAL_PUBLIC_KEY = 0x80
# CA v2: the chip's answer 7C { 81 nonce, 82 token } (BSI TR-03110-3 B.11.2, ICAO 9303-11 §6.2.4.2).
_DO_NONCE = 0x81
_DO_TOKEN = 0x82
#: The longest chip nonce accepted (the specs and OpenPACE use 8 octets).
_MAX_NONCE = 64


class CaAlgorithm(enum.Enum):
    """The Chip Authentication protocol identifiers (BSI TR-03110-3 §A.1.1.2)."""

    DH_3DES_CBC_CBC = f"{_ID_CA}.1.1"
    DH_AES_CBC_CMAC_128 = f"{_ID_CA}.1.2"
    DH_AES_CBC_CMAC_192 = f"{_ID_CA}.1.3"
    DH_AES_CBC_CMAC_256 = f"{_ID_CA}.1.4"
    ECDH_3DES_CBC_CBC = f"{_ID_CA}.2.1"
    ECDH_AES_CBC_CMAC_128 = f"{_ID_CA}.2.2"
    ECDH_AES_CBC_CMAC_192 = f"{_ID_CA}.2.3"
    ECDH_AES_CBC_CMAC_256 = f"{_ID_CA}.2.4"

    @classmethod
    def from_oid(cls, oid: str) -> CaAlgorithm:
        """The algorithm for a dotted OID.

        Raises:
            UnsupportedAlgorithm: not a Chip Authentication OID we know.
        """
        for member in cls:
            if member.value == oid:
                return member
        raise UnsupportedAlgorithm(f"unknown Chip Authentication protocol {oid}")

    @property
    def elliptic(self) -> bool:
        """ECDH (True) or DH (False)."""
        return self.value.split(".")[-2] == "2"

    @property
    def cipher(self) -> SymmetricCipher:
        """The secure messaging cipher after CA."""
        return SymmetricCipher.TDES if self.value.endswith(".1") else SymmetricCipher.AES

    @property
    def key_bits(self) -> int:
        """The session key length in bits (112 for 3DES)."""
        return {"1": 112, "2": 128, "3": 192, "4": 256}[self.value.rsplit(".", 1)[1]]

    @property
    def oid_bytes(self) -> bytes:
        """The OID's DER content octets (what ``MSE:Set AT`` carries in ``80``)."""
        arcs = [int(part) for part in self.value.split(".")]
        out = bytes([40 * arcs[0] + arcs[1]])
        for arc in arcs[2:]:
            chunk = [arc & 0x7F]
            rest = arc >> 7
            while rest:
                chunk.append(0x80 | (rest & 0x7F))
                rest >>= 7
            out += bytes(reversed(chunk))
        return out


#: The largest DH modulus accepted (the standardized groups go up to 2048 bits).
_MAX_DH_BITS = 4096


def _byte_length(n: int) -> int:
    return (n.bit_length() + 7) // 8


@attrs.frozen
class DhPublicKey:
    """A finite-field Diffie-Hellman public key with its domain parameters.

    ``cryptography`` deprecates finite-field DH, so CA with DH uses Python's
    modular arithmetic instead (not constant time; the exponents involved are
    single-use ephemeral ones on the terminal side).

    Attributes:
        p: the prime modulus.
        g: the generator.
        y: the public value ``g^x mod p``.
        q: the order of the subgroup, when the parameters give it.
    """

    p: int = attrs.field(repr=lambda p: f"<{p.bit_length()} bits>")
    g: int = attrs.field(repr=False)
    y: int = attrs.field(repr=False)
    q: int | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        for name in ("p", "g", "y"):
            if type(getattr(self, name)) is not int:
                raise TypeError(f"{name} must be an int")
        # DG14 is parsed before Passive Authentication: bound the work a forged key can cause.
        if not 1024 <= self.p.bit_length() <= _MAX_DH_BITS or not 1 < self.g < self.p - 1:
            raise UnsupportedAlgorithm("DH parameters too small, too large or malformed")
        if not 1 < self.y < self.p - 1:
            raise MalformedInput("DH public value out of range", field="public_key")
        if self.q is not None and pow(self.y, self.q, self.p) != 1:
            raise MalformedInput("DH public value not in the subgroup", field="public_key")

    def encode(self) -> bytes:
        """``y`` as an unsigned integer on the minimum number of octets (TR-03110-3 D.2.1.1).

        The same decision as PACE (``docs/pace.md``, "DH encodings, field by
        field"); :meth:`with_value` accepts either length from a peer. The
        terminal's own ephemeral keys never start with a zero octet (see
        :func:`_ephemeral_key`), so for them both conventions give these bytes.
        """
        return self.y.to_bytes(max(1, _byte_length(self.y)), "big")

    def with_value(self, encoded: bytes) -> DhPublicKey:
        """Another public key on the same parameters, from its encoding.

        Raises:
            MalformedInput: empty, too long, or an invalid value.
        """
        if not encoded or len(encoded) > _byte_length(self.p):
            raise MalformedInput("DH public value has the wrong length", field="public_key")
        return DhPublicKey(self.p, self.g, int.from_bytes(encoded, "big"), self.q)


@attrs.frozen(repr=False)
class DhPrivateKey:
    """A finite-field DH private key (``x``) and its public key."""

    public: DhPublicKey
    x: int

    def __repr__(self) -> str:
        return "DhPrivateKey(<redacted>)"


#: What the CA functions return and store: our key types on every standardized group.
ChipPublicKey = EcPublicKey | DhPublicKey
#: The chip's static key; cryptography keys are accepted where an argument is one.
ChipPrivateKey = EcPrivateKey | DhPrivateKey

_AnyPublicKey = ChipPublicKey | ec.EllipticCurvePublicKey
_AnyPrivateKey = ChipPrivateKey | ec.EllipticCurvePrivateKey


def _public(key: _AnyPublicKey) -> ChipPublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return EcPublicKey.from_cryptography(key)
    if isinstance(key, EcPublicKey | DhPublicKey):
        return key
    raise TypeError("expected an EC or DH public key")


def _private(key: _AnyPrivateKey) -> ChipPrivateKey:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return EcPrivateKey.from_cryptography(key)
    if isinstance(key, EcPrivateKey | DhPrivateKey):
        return key
    raise TypeError("expected an EC or DH private key")


class CaCommands(enum.Enum):
    """Which command sequence carries the ephemeral key."""

    AUTO = "auto"  #: Set KAT for 3DES, Set AT + GENERAL AUTHENTICATE for AES.
    MSE_SET_KAT = "mse_set_kat"
    GENERAL_AUTHENTICATE = "general_authenticate"


def encode_public_key(key: _AnyPublicKey) -> bytes:
    """The on-card encoding of a public key: uncompressed point, or ``y`` on the fewest octets."""
    key = _public(key)
    return key.encode()


def shared_secret(private_key: _AnyPrivateKey, peer: _AnyPublicKey) -> bytes:
    """``KA(private, peer)``: ECDH x-coordinate, or DH value as long as ``p`` (PKCS #3).

    Raises:
        MalformedInput: the keys are of different kinds or parameters, or the
            result is degenerate.
    """
    private_key, peer = _private(private_key), _public(peer)
    if isinstance(private_key, DhPrivateKey):
        mine = private_key.public
        if not isinstance(peer, DhPublicKey) or (peer.p, peer.g) != (mine.p, mine.g):
            raise MalformedInput("DH keys on different parameters", field="public_key")
        value = pow(peer.y, private_key.x, mine.p)
        if value in (0, 1, mine.p - 1):
            raise MalformedInput("degenerate DH shared secret", field="public_key")
        # Fixed length: the KDF input is as long as p even with leading zeros.
        return value.to_bytes(_byte_length(mine.p), "big")
    if not isinstance(peer, EcPublicKey):
        raise MalformedInput("ECDH keys on different curves", field="public_key")
    return private_key.exchange(peer)


def card_session_keys(
    algorithm: CaAlgorithm,
    static_private_key: _AnyPrivateKey,
    ephemeral_public_key: bytes,
    *,
    nonce: bytes = b"",
) -> SessionKeys:
    """The chip's side: new session keys from the terminal's ephemeral public key.

    ``nonce`` is the chip's ``r_PICC`` for CA version 2 (keys from ``K || r_PICC``).

    Raises:
        MalformedInput: the ephemeral key is not a valid key on the chip's parameters.
    """
    return card_session_key_candidates(
        algorithm, static_private_key, ephemeral_public_key, nonce=nonce
    )[0]


def card_session_key_candidates(
    algorithm: CaAlgorithm,
    static_private_key: _AnyPrivateKey,
    ephemeral_public_key: bytes,
    *,
    nonce: bytes = b"",
) -> tuple[SessionKeys, ...]:
    """The session keys a terminal may have derived, the standard one (K on the length of p) first.

    A DH ``K`` that starts with a zero octet is also tried without its leading
    zeros, the form OpenSSL's ``DH_compute_key`` gives (OpenPACE's CA uses it),
    as the PACE card does (:func:`macnss_auth.nfc.pace.session_key_candidates`).
    CA v1 has no token: the card keeps the set whose MAC verifies on the first
    protected command. With a ``nonce`` (CA v2) every set is derived from
    ``K || nonce``; the chip's token must commit to one, the first.

    Raises:
        MalformedInput: the ephemeral key is not a valid key on the chip's parameters.
    """
    key = _private(static_private_key)
    if isinstance(key, DhPrivateKey):
        peer: ChipPublicKey = key.public.with_value(ephemeral_public_key)
    else:
        peer = EcPublicKey.from_encoded(key.curve, ephemeral_public_key)
    secret = shared_secret(key, peer)
    keys = SessionKeys.derive(secret + nonce, algorithm.cipher, algorithm.key_bits)
    if not isinstance(key, DhPrivateKey) or secret[:1] != b"\x00":
        return (keys,)
    stripped = secret.lstrip(b"\x00") or b"\x00"
    return keys, SessionKeys.derive(stripped + nonce, algorithm.cipher, algorithm.key_bits)


def chip_authentication_token(
    algorithm: CaAlgorithm, keys: SessionKeys, ephemeral_public_key: bytes
) -> bytes:
    """CA v2's ``T_PICC = MAC(KSmac, 7F49 { 06 OID, 86/84 PK_PCD })`` (TR-03110-3 A.2.4.2, D.3.4).

    The public key data object holds the CA protocol OID (as in MSE:Set AT)
    and the terminal's ephemeral key only: ``86`` an uncompressed EC point,
    ``84`` a DH value as an unsigned integer on the minimum number of octets
    (D.2.1.1). The MAC is the secure-messaging one: retail MAC for 3DES,
    AES-CMAC truncated to 8 octets.
    """
    if algorithm.elliptic:
        key = encode_tlv(0x86, ephemeral_public_key)
    else:
        value = int.from_bytes(ephemeral_public_key, "big")
        key = encode_tlv(0x84, value.to_bytes(max(1, _byte_length(value)), "big"))
    data = encode_tlv(0x7F49, encode_tlv(0x06, algorithm.oid_bytes) + key)
    return mac(keys.cipher, keys.k_mac, data)


def chip_public_key(info: ChipAuthenticationPublicKeyInfo) -> ChipPublicKey:
    """The DG14 / EF.CardSecurity Chip Authentication key as a key object CA takes.

    The SubjectPublicKeyInfo may name its group by a named-curve OID, by
    explicit parameters (matched to the standardized curve they spell out) or
    by ``standardizedDomainParameters`` (``0.4.0.127.0.7.1.2`` with an
    INTEGER id, BSI TR-03110-3 §A.2.1.1, as national ID cards write it).

    Raises:
        UnsupportedAlgorithm: a group outside the standardized table (or explicit
            parameters that are none of its curves).
        MalformedInput: the key does not decode, is not a valid point / value,
            or its kind contradicts its group (ECDH on DH parameters...).
    """
    group = info.group
    if info.protocol is PublicKeyOid.DH:
        if group is None:
            raise UnsupportedAlgorithm("the DH Chip Authentication key's group is not supported")
        if not isinstance(group, DHGroup):
            raise MalformedInput("a DH Chip Authentication key on a curve", field="public_key")
        return DhPublicKey(
            p=group.p, g=group.g, y=int.from_bytes(info.public_key, "big"), q=group.q
        )
    if isinstance(group, DHGroup):
        raise MalformedInput("an ECDH Chip Authentication key on DH parameters", field="public_key")
    if group is None:
        # No parameters the SecurityInfos parser recognised: the key's own SPKI
        # may still name a curve (it raises UnsupportedAlgorithm otherwise).
        parsed = parse_public_key_info(info.subject_public_key_info)
        if parsed.algorithm != "ec" or parsed.curve is None or parsed.ec_point is None:
            raise UnsupportedAlgorithm("the Chip Authentication key's curve is not supported")
        return EcPublicKey.from_encoded(curve_by_name(parsed.curve), parsed.ec_point)
    return EcPublicKey.from_encoded(group, info.public_key)


def _ephemeral_key(chip_key: ChipPublicKey, random: RandomSource) -> ChipPrivateKey:
    """A fresh key pair on the chip key's domain parameters, from ``random``."""
    for _ in range(_MAX_DRAWS):
        if isinstance(chip_key, DhPublicKey):
            bound = chip_key.q if chip_key.q is not None else chip_key.p - 1
            x = int.from_bytes(random.token_bytes(_byte_length(bound)), "big")
            if not 1 < x < bound:
                continue
            y = pow(chip_key.g, x, chip_key.p)
            # A public value or K with a leading zero octet is where implementations
            # disagree (minimal octets or the length of p; OpenSSL's DH_compute_key
            # strips K). The chip's key is known before ours is sent, so draw again
            # (about 1 draw in 128): then every convention gives the same octets.
            length = _byte_length(chip_key.p)
            if _byte_length(y) < length or _byte_length(pow(chip_key.y, x, chip_key.p)) < length:
                continue
            return DhPrivateKey(DhPublicKey(chip_key.p, chip_key.g, y, chip_key.q), x)
        # A draw of the field's bit length, kept when below n (recorded sessions replay).
        bits = chip_key.curve.p.bit_length()
        scalar = int.from_bytes(random.token_bytes((bits + 7) // 8), "big")
        scalar &= (1 << bits) - 1
        if not 0 < scalar < chip_key.curve.n:
            continue
        return EcPrivateKey(chip_key.curve, scalar)
    raise ConfigurationError("random source never produced a usable private key")


class CaState(enum.Enum):
    """States of :class:`ChipAuthentication`."""

    START = "start"
    AWAIT_MSE = "await_mse"
    HAVE_MSE = "have_mse"
    AWAIT_GENERAL_AUTHENTICATE = "await_general_authenticate"
    DONE = "done"
    FAILED = "failed"


@attrs.frozen(repr=False)
class ChipAuthResult:
    """A finished Chip Authentication.

    Attributes:
        channel: the new secure channel (new keys, SSC 0). The old one is closed.
        algorithm: the protocol that was run.
        ephemeral_public_key: the terminal's ephemeral public key as sent.
        version: the CA version run (2: the chip's token was checked).
    """

    channel: SecureChannel
    algorithm: CaAlgorithm
    ephemeral_public_key: bytes
    version: int = 1

    def __repr__(self) -> str:
        return f"ChipAuthResult({self.algorithm.name}, v{self.version})"


class ChipAuthentication(ProtocolMachine[CaState, ChipAuthResult]):
    """Terminal-side Chip Authentication (version 1 or 2) over an existing secure channel.

    Args:
        channel: the current secure channel (from BAC or PACE). It is closed
            when CA finishes or fails.
        algorithm: the protocol from DG14's ChipAuthenticationInfo.
        chip_public_key: the static public key from DG14's
            ChipAuthenticationPublicKeyInfo.
        key_id: the key reference when DG14 lists several keys.
        random: where the ephemeral private key comes from.
        commands: which command sequence to use (default: the usual one per cipher;
            always Set AT + GENERAL AUTHENTICATE for version 2).
        version: the ChipAuthenticationInfo version from DG14 (1 or 2). Version 2
            expects the chip's nonce and token and checks the token.

    :meth:`receive_response` raises
    :class:`~macnss_auth.errors.SecureMessagingError` for a response that
    fails secure messaging and :class:`~macnss_auth.errors.RemoteProtocolError`
    (with ``status_word``) when the chip refuses a command, answers GENERAL
    AUTHENTICATE with other objects than its version defines, or (version 2)
    sends a token that does not verify (``status_word`` 0x9000, as for a wrong
    PACE token).
    """

    FAILED = CaState.FAILED
    DONE = CaState.DONE
    TRANSITIONS = {  # noqa: RUF012 (the table is read only)
        (CaState.START, Event.COMMAND): {CaState.AWAIT_MSE},
        (CaState.AWAIT_MSE, Event.RESPONSE): {CaState.HAVE_MSE, CaState.DONE},
        (CaState.HAVE_MSE, Event.COMMAND): {CaState.AWAIT_GENERAL_AUTHENTICATE},
        (CaState.AWAIT_GENERAL_AUTHENTICATE, Event.RESPONSE): {CaState.DONE},
    }

    def __init__(
        self,
        channel: SecureChannel,
        *,
        algorithm: CaAlgorithm,
        chip_public_key: _AnyPublicKey,
        random: RandomSource,
        key_id: int | None = None,
        commands: CaCommands = CaCommands.AUTO,
        version: int = 1,
    ) -> None:
        super().__init__(CaState.START)
        if type(version) is not int:
            raise TypeError("version must be an int")
        if version not in CA_VERSIONS:
            raise UnsupportedAlgorithm(f"Chip Authentication version {version}")
        if not isinstance(channel, SecureChannel):
            raise TypeError("channel must be a SecureChannel")
        if not isinstance(algorithm, CaAlgorithm):
            raise TypeError("algorithm must be a CaAlgorithm")
        if not isinstance(chip_public_key, ec.EllipticCurvePublicKey | EcPublicKey | DhPublicKey):
            raise TypeError("chip_public_key must be an EC or DH public key")
        chip_public_key = _public(chip_public_key)
        if algorithm.elliptic != isinstance(chip_public_key, EcPublicKey):
            raise ConfigurationError("the chip key does not match the CA algorithm")
        if key_id is not None and (type(key_id) is not int or key_id < 0):
            raise TypeError("key_id must be a non-negative int")
        if commands is CaCommands.AUTO:
            use_kat = algorithm.cipher is SymmetricCipher.TDES and version == 1
        elif commands is CaCommands.MSE_SET_KAT:
            if algorithm.cipher is SymmetricCipher.AES:
                raise ConfigurationError("MSE:Set KAT is for 3DES only")
            if version != 1:
                raise ConfigurationError("MSE:Set KAT is for Chip Authentication version 1 only")
            use_kat = True
        else:
            use_kat = False
        self._channel: SecureChannel | None = channel
        self._algorithm = algorithm
        self._chip_key = chip_public_key
        self._random = random
        self._key_id = key_id
        self._use_kat = use_kat
        self._version = version
        self._private: ChipPrivateKey | None = None
        self._public = b""

    # -- commands ------------------------------------------------------------------

    def _key_reference(self) -> bytes:
        if self._key_id is None:
            return b""
        size = max(1, (self._key_id.bit_length() + 7) // 8)
        return encode_tlv(0x84, self._key_id.to_bytes(size, "big"))

    def _command(self, state: CaState) -> tuple[bytes, CaState]:
        channel = self._live_channel()
        if state is CaState.START:
            self._private = _ephemeral_key(self._chip_key, self._random)
            self._public = encode_public_key(
                self._private.public
                if isinstance(self._private, DhPrivateKey)
                else self._private.public_key()
            )
            if self._use_kat:
                data = encode_tlv(0x91, self._public) + self._key_reference()
                command = CommandAPDU(0x00, 0x22, 0x41, 0xA6, data=data)
            else:
                data = encode_tlv(0x80, self._algorithm.oid_bytes) + self._key_reference()
                command = CommandAPDU(0x00, 0x22, 0x41, 0xA4, data=data)
            return channel.protect(command), CaState.AWAIT_MSE
        # 7C { 80 PK_PCD } (ICAO 9303-11 §6.2.4.2): the same 7C codec as PACE and the card.
        data = encode_dynamic_authentication_data((_DO_EPHEMERAL_PUBLIC_KEY, self._public))
        command = CommandAPDU(0x00, 0x86, 0x00, 0x00, data=data, ne=256)
        return channel.protect(command), CaState.AWAIT_GENERAL_AUTHENTICATE

    # -- responses -----------------------------------------------------------------

    def _response(self, state: CaState, response: bytes) -> CaState:
        channel = self._live_channel()
        plain = channel.unprotect(response)
        if state is CaState.AWAIT_MSE:
            plain.raise_for_status("MSE:Set KAT" if self._use_kat else "MSE:Set AT")
            if not self._use_kat:
                return CaState.HAVE_MSE
        else:
            plain.raise_for_status("GENERAL AUTHENTICATE")
            try:
                objects = decode_dynamic_authentication_data(plain.data)
            except MalformedInput as exc:
                raise RemoteProtocolError(
                    "unexpected GENERAL AUTHENTICATE answer", status_word=plain.sw
                ) from exc
            # CA v1: 7C 00. CA v2: exactly the nonce and the token.
            expected = set() if self._version == 1 else {_DO_NONCE, _DO_TOKEN}
            if set(objects) != expected:
                raise RemoteProtocolError(
                    "unexpected GENERAL AUTHENTICATE answer", status_word=plain.sw
                )
            if self._version == 2:
                self._finish(nonce=objects[_DO_NONCE], token=objects[_DO_TOKEN])
                return CaState.DONE
        self._finish()
        return CaState.DONE

    def _finish(self, *, nonce: bytes = b"", token: bytes | None = None) -> None:
        private = self._private
        if private is None:
            raise LocalProtocolError("no ephemeral key")
        algorithm = self._algorithm
        if token is not None and not 0 < len(nonce) <= _MAX_NONCE:
            raise RemoteProtocolError(
                "the chip's Chip Authentication nonce has a wrong length",
                status_word=int(StatusCode.OK),
            )
        secret = shared_secret(private, self._chip_key)
        keys = SessionKeys.derive(secret + nonce, algorithm.cipher, algorithm.key_bits)
        del secret
        if token is not None:
            expected = chip_authentication_token(algorithm, keys, self._public)
            if not hmac.compare_digest(expected, token):
                # Only the holder of DG14's private key computes this token.
                raise RemoteProtocolError(
                    "the chip's Chip Authentication token is wrong",
                    status_word=int(StatusCode.OK),
                )
        channel = SecureChannel(keys, ssc=0)
        self._set_result(ChipAuthResult(channel, algorithm, self._public, self._version))
        self._drop_secrets()

    def _live_channel(self) -> SecureChannel:
        if self._channel is None:
            raise LocalProtocolError("secure channel already dropped")
        return self._channel

    def _drop_secrets(self) -> None:
        self._private = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None

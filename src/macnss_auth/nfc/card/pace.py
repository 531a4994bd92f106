"""The card's side of PACE (ICAO 9303-11 §4.4, BSI TR-03110-3 §B.1): GM, IM and CAM.

The mathematics is :mod:`macnss_auth.nfc.pace.primitives`, shared with the
terminal; the state machine is the chip's own. MSE:Set AT chooses protocol,
password and domain parameters; four GENERAL AUTHENTICATE steps follow, each
carrying a dynamic authentication data object ``7C``:

==========  ===================================  =====================================
step        terminal sends                       chip answers
==========  ===================================  =====================================
1 nonce     ``7C 00``                            ``80`` z = E(K_pi, s)
2 map       ``81`` PK_map,PCD (GM/CAM) or t (IM)  ``82`` PK_map,IC (GM/CAM), empty (IM)
3 agree     ``83`` PK_PCD                        ``84`` PK_IC
4 confirm   ``85`` T_PCD                         ``86`` T_IC (and ``8A`` A_IC for CAM)
==========  ===================================  =====================================

Transitions (anything else answers ``6985`` and forgets the attempt)::

    READY --MSE:Set AT--> SET --GA 7C00--> NONCE_SENT --GA 81--> MAPPED
    MAPPED --GA 83--> AGREED --GA 85 good--> session (PACE)
    AGREED --GA 85 bad--> READY, 6300 / 63Cx (one try used)

A wrong password surfaces at step 4: the terminal decrypted a different
nonce, so its token does not verify. Where the profile counts tries (a CAN
with a retry counter), each failure costs one and an exhausted password
answers ``6983`` at MSE:Set AT.
"""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives.asymmetric import ec as crypto_ec

from macnss_auth.clock import RandomSource
from macnss_auth.errors import MacnssAuthError, MalformedInput
from macnss_auth.nfc import tlv
from macnss_auth.nfc.apdu import CommandAPDU
from macnss_auth.nfc.card.channel import SecureChannel
from macnss_auth.nfc.card.command import CardStatusError
from macnss_auth.nfc.card.model import CardProfile, ChipSecrets, PasswordKind
from macnss_auth.nfc.card.status import StatusWord, retries_left
from macnss_auth.nfc.crypto import KDF_PI, derive_key
from macnss_auth.nfc.domain_params import standardized
from macnss_auth.nfc.eckeys import EcPrivateKey
from macnss_auth.nfc.pace import primitives as pace
from macnss_auth.nfc.securityinfos import Mapping, PaceOid
from macnss_auth.nfc.sm import SessionKeys

__all__ = ["PaceResponder", "parse_dynamic_authentication_data"]


class _Step(enum.Enum):
    READY = "ready"
    SET = "set"
    NONCE_SENT = "nonce-sent"
    MAPPED = "mapped"
    AGREED = "agreed"


def parse_dynamic_authentication_data(data: bytes) -> dict[int, bytes]:
    """The objects inside ``7C`` (TR-03110-3 §B.1.2), by tag.

    Raises:
        CardStatusError: ``6A80`` when the data is not one ``7C`` with unique children.
    """
    try:
        outer, end = tlv.parse_one(data)
        if outer.tag != 0x7C or end != len(data):
            raise CardStatusError(StatusWord.INCORRECT_DATA)
        children = tlv.parse_all(outer.value)
    except MalformedInput:
        raise CardStatusError(StatusWord.INCORRECT_DATA) from None
    out = {child.tag: child.value for child in children}
    if len(out) != len(children):
        raise CardStatusError(StatusWord.INCORRECT_DATA)
    return out


def _dynamic(tag: int | None = None, value: bytes = b"", *more: tuple[int, bytes]) -> bytes:
    body = b"" if tag is None else tlv.encode_tlv(tag, value)
    for extra_tag, extra_value in more:
        body += tlv.encode_tlv(extra_tag, extra_value)
    return tlv.encode_tlv(0x7C, body)


class PaceResponder:
    """One chip's PACE: configuration, retry counter and the attempt in progress."""

    def __init__(self, profile: CardProfile, secrets: ChipSecrets, *, random: RandomSource) -> None:
        if profile.pace_protocol is None or profile.pace_parameter_id is None:
            raise ValueError("this profile has no PACE")
        self._protocol: PaceOid = profile.pace_protocol
        self._parameter_id = profile.pace_parameter_id
        self._passwords = profile.pace_passwords
        self._secrets = secrets
        self._random = random
        self._retries = profile.password_retries
        self._initial_retries = profile.password_retries
        self._reset()

    def __repr__(self) -> str:
        return f"PaceResponder({self._protocol.name}, step={self._step.value})"

    @property
    def remaining_tries(self) -> int | None:
        """Tries left for a counted password, if the profile counts them."""
        return self._retries

    def _reset(self) -> None:
        self._step = _Step.READY
        self._password: PasswordKind | None = None
        self._k_pi = b""
        self._nonce = b""
        self._domain: pace.Domain | None = None
        self._map_private = 0
        self._map_public_pcd = b""
        self._public_pcd = b""
        self._public_ic = b""
        self._keys: SessionKeys | None = None

    def abort(self) -> None:
        """Forget the attempt in progress (new tap, other protocol)."""
        self._reset()

    def _counted(self) -> bool:
        return self._retries is not None and self._password is PasswordKind.CAN

    # -- MSE:Set AT ---------------------------------------------------------------------

    def set_at(self, data: bytes) -> None:
        """MSE:Set AT for PACE (``0022C1A4``).

        Raises:
            CardStatusError: ``6A80`` unknown protocol/password/parameters,
                ``6983`` the password is blocked.
        """
        self._reset()
        try:
            objects = {o.tag: o.value for o in tlv.parse_all(data)}
        except MalformedInput:
            raise CardStatusError(StatusWord.INCORRECT_DATA) from None
        if objects.get(0x80) != self._protocol.der_value:
            raise CardStatusError(StatusWord.INCORRECT_DATA)
        reference = objects.get(0x83, b"")
        if len(reference) != 1 or reference[0] not in {int(p) for p in self._passwords}:
            raise CardStatusError(StatusWord.REFERENCED_DATA_NOT_FOUND)
        password = PasswordKind(reference[0])
        if password is PasswordKind.CAN and self._secrets.can is None:
            raise CardStatusError(StatusWord.REFERENCED_DATA_NOT_FOUND)
        parameter = objects.get(0x84)
        if parameter is not None and int.from_bytes(parameter, "big") != self._parameter_id:
            raise CardStatusError(StatusWord.INCORRECT_DATA)
        self._password = password
        if self._counted() and self._retries == 0:
            self._password = None
            raise CardStatusError(StatusWord.AUTHENTICATION_METHOD_BLOCKED)
        secret = (
            self._secrets.mrz_key_seed()
            if password is PasswordKind.MRZ
            else (self._secrets.can or "").encode("ascii")
        )
        self._k_pi = derive_key(secret, KDF_PI, self._protocol.cipher, self._protocol.key_bits)
        self._step = _Step.SET

    # -- GENERAL AUTHENTICATE -----------------------------------------------------------

    def general_authenticate(self, command: CommandAPDU) -> tuple[bytes, SecureChannel | None]:
        """One GA step; returns the ``7C`` answer and, after step 4, the new session.

        Raises:
            CardStatusError: ``6985`` out of sequence, ``6A80`` malformed data,
                ``6300``/``63Cx`` wrong token.
        """
        objects = parse_dynamic_authentication_data(command.data)
        step = self._step
        try:
            if step is _Step.SET and not objects:
                return self._send_nonce(), None
            if step is _Step.NONCE_SENT and set(objects) == {0x81}:
                return self._map(objects[0x81]), None
            if step is _Step.MAPPED and set(objects) == {0x83}:
                return self._agree(objects[0x83]), None
            if step is _Step.AGREED and set(objects) == {0x85}:
                return self._confirm(objects[0x85])
        except CardStatusError:
            self._reset()
            raise
        except MacnssAuthError:
            # A key off the curve, a degenerate mapping: refuse and forget the attempt.
            self._reset()
            raise CardStatusError(StatusWord.INCORRECT_DATA) from None
        self._reset()
        if step is _Step.READY:
            raise CardStatusError(StatusWord.CONDITIONS_NOT_SATISFIED)
        raise CardStatusError(StatusWord.INCORRECT_DATA)

    def _base(self) -> pace.Domain:
        return pace.base_domain(standardized(self._parameter_id))

    def _send_nonce(self) -> bytes:
        cipher = self._protocol.cipher
        if self._protocol.mapping is Mapping.INTEGRATED:
            length = pace.integrated_mapping_lengths(cipher, self._protocol.key_bits)[0]
        else:
            length = cipher.block_size
        self._nonce = self._random.token_bytes(length)
        self._step = _Step.NONCE_SENT
        return _dynamic(0x80, pace.encrypt_nonce(cipher, self._k_pi, self._nonce))

    def _map(self, mapping_data: bytes) -> bytes:
        base = self._base()
        if self._protocol.mapping is Mapping.INTEGRATED:
            self._domain = pace.integrated_mapping(
                base, self._nonce, mapping_data, self._protocol.cipher, self._protocol.key_bits
            )
            self._step = _Step.MAPPED
            return _dynamic(0x82, b"")
        self._map_private = pace.generate_private_key(base, self._random)
        public = pace.public_key(base, self._map_private)
        shared = pace.mapping_shared_element(base, self._map_private, mapping_data)
        self._domain = pace.generic_mapping(base, self._nonce, shared)
        self._map_public_pcd = mapping_data
        self._step = _Step.MAPPED
        return _dynamic(0x82, public)

    def _agree(self, public_pcd: bytes) -> bytes:
        domain = self._domain
        if domain is None:  # set in step 2
            raise CardStatusError(StatusWord.CONDITIONS_NOT_SATISFIED)
        if public_pcd == self._map_public_pcd:
            # ICAO 9303-11 §4.4.3.4: the ephemeral key must differ from the mapping key.
            raise CardStatusError(StatusWord.INCORRECT_DATA)
        pace.decode_public_key(domain, public_pcd)
        private = pace.generate_private_key(domain, self._random)
        public_ic = pace.public_key(domain, private)
        shared = pace.shared_secret(domain, private, public_pcd)
        self._keys = pace.session_keys(shared, self._protocol.cipher, self._protocol.key_bits)
        self._public_pcd, self._public_ic = public_pcd, public_ic
        self._step = _Step.AGREED
        return _dynamic(0x84, public_ic)

    def _confirm(self, token: bytes) -> tuple[bytes, SecureChannel]:
        domain, keys = self._domain, self._keys
        if domain is None or keys is None:  # set in steps 2 and 3
            raise CardStatusError(StatusWord.CONDITIONS_NOT_SATISFIED)
        try:
            pace.verify_authentication_token(self._protocol, keys, domain, self._public_ic, token)
        except MacnssAuthError:
            raise self._failed() from None
        if self._counted():
            self._retries = self._initial_retries
        answer_token = pace.authentication_token(self._protocol, keys, domain, self._public_pcd)
        extra: list[tuple[int, bytes]] = []
        if self._protocol.mapping is Mapping.CHIP_AUTHENTICATION:
            extra.append((0x8A, self._chip_authentication_data(keys)))
        self._reset()
        channel = SecureChannel(keys, ssc=0, established_by="PACE")
        return _dynamic(0x86, answer_token, *extra), channel

    def _failed(self) -> CardStatusError:
        if self._counted() and self._retries is not None:
            self._retries = max(self._retries - 1, 0)
            return CardStatusError(retries_left(self._retries))
        return CardStatusError(StatusWord.AUTHENTICATION_FAILED)

    def _chip_authentication_data(self, keys: SessionKeys) -> bytes:
        key = self._secrets.ca_key
        domain = self._domain
        if isinstance(key, crypto_ec.EllipticCurvePrivateKey):
            static = key.private_numbers().private_value
        elif isinstance(key, EcPrivateKey):
            static = key.d
        else:
            static = None
        if static is None or not isinstance(domain, pace.EcDomain):
            # A clone has no chip key: it cannot finish CAM honestly.
            raise CardStatusError(StatusWord.NO_PRECISE_DIAGNOSIS)
        data = pace.chip_authentication_data(domain.curve, static, self._map_private)
        return pace.encrypt_chip_authentication_data(keys, data)

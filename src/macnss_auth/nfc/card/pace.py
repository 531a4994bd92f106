"""The card's side of PACE (ICAO 9303-11 §4.4, BSI TR-03110-3 §B.1): GM, IM and CAM.

The mathematics is :mod:`macnss_auth.nfc.pace.primitives` and the messages
(MSE:Set AT, ``7C``, the step table ``PACE_STEPS``) are
:mod:`macnss_auth.nfc.pace.messages`, both shared with the terminal; the
state machine is the chip's own and expects the table's steps in order. MSE:Set AT chooses protocol,
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

PIN and PUK (BSI TR-03110-2 §3.5, status words of TR-03110-3 B.11.1)::

    PIN retry counter RC (3 when full)        MSE:Set AT (PIN)   GA 4 wrong token
    RC = 3  usable                            9000               63C2, RC = 2
    RC = 2  usable                            63C2 (warning)     63C1, RC = 1
    RC = 1  suspended: only inside a session  63C1; refused      63C0, RC = 0
            from a PACE with the CAN          without CAN
    RC = 0  blocked                           63C0, refused      --

A successful PACE with the PIN sets RC back to 3. RESET RETRY COUNTER
(``00 2C 03 03``) inside a session from a PACE with the PUK unblocks it;
``00 2C 02 03`` with a new PIN changes it inside a session from the PIN or
the PUK. Every PACE with the PUK that reaches step 4 uses one of its
``puk_uses``; at 0 the PUK answers ``63C0`` for good.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric import ec as crypto_ec

from macnss_auth.clock import RandomSource
from macnss_auth.errors import MacnssAuthError, MalformedInput
from macnss_auth.nfc.apdu import CommandAPDU, StatusCode, retries_left
from macnss_auth.nfc.card.channel import CardSession
from macnss_auth.nfc.card.command import CardStatusError
from macnss_auth.nfc.card.model import CardProfile, ChipSecrets, PasswordKind
from macnss_auth.nfc.crypto import KDF_PI, derive_key
from macnss_auth.nfc.domain_params import standardized
from macnss_auth.nfc.eckeys import EcPrivateKey
from macnss_auth.nfc.pace import primitives as pace
from macnss_auth.nfc.pace.messages import (
    PACE_STEPS,
    AuthTag,
    GaStep,
    MseSetAt,
    decode_dynamic_authentication_data,
    encode_dynamic_authentication_data,
)
from macnss_auth.nfc.securityinfos import Mapping as PaceMapping
from macnss_auth.nfc.securityinfos import PaceOid
from macnss_auth.nfc.sm import SessionKeys

__all__ = ["PaceResponder", "parse_dynamic_authentication_data"]


class _Step(enum.Enum):
    READY = "ready"
    SET = "set"
    NONCE_SENT = "nonce-sent"
    MAPPED = "mapped"
    AGREED = "agreed"


# Which GENERAL AUTHENTICATE step of the shared table (messages.PACE_STEPS) each state expects.
_EXPECTING: Mapping[_Step, GaStep] = dict(
    zip((_Step.SET, _Step.NONCE_SENT, _Step.MAPPED, _Step.AGREED), PACE_STEPS, strict=True)
)


def parse_dynamic_authentication_data(data: bytes) -> dict[int, bytes]:
    """The objects inside ``7C``, by tag, as the card answers a malformed one.

    The parser is the terminal's too
    (:func:`~macnss_auth.nfc.pace.messages.decode_dynamic_authentication_data`).

    Raises:
        CardStatusError: ``6A80`` when the data is not one ``7C`` with unique children.
    """
    try:
        return decode_dynamic_authentication_data(data)
    except MalformedInput:
        raise CardStatusError(StatusCode.INCORRECT_DATA) from None


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
        self._pin = secrets.pin
        self._pin_full = profile.pin_retries
        self._pin_retries = profile.pin_retries
        self._puk_uses = profile.puk_uses
        # Which password opened the current secure-messaging session (None: none).
        self._authenticated: PasswordKind | None = None
        self._reset()

    def __repr__(self) -> str:
        return f"PaceResponder({self._protocol.name}, step={self._step.value})"

    @property
    def remaining_tries(self) -> int | None:
        """Tries left for a counted password, if the profile counts them."""
        return self._retries

    @property
    def pin_retries(self) -> int:
        """The PIN's retry counter (3 full, 1 suspended, 0 blocked)."""
        return self._pin_retries

    @property
    def puk_uses(self) -> int:
        """PACE runs with the PUK left in the card's life."""
        return self._puk_uses

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
        self._keys: tuple[SessionKeys, ...] = ()

    def abort(self) -> None:
        """Forget the attempt in progress and the session's password (new tap, session lost)."""
        self._reset()
        self._authenticated = None

    def _counted(self) -> bool:
        return self._retries is not None and self._password is PasswordKind.CAN

    # -- MSE:Set AT ---------------------------------------------------------------------

    def set_at(self, data: bytes) -> bytes:
        """MSE:Set AT for PACE (``0022C1A4``); returns the status word to answer.

        ``9000``, or for a PIN with a used retry counter the warning ``63CX``
        (the run may go on).

        Raises:
            CardStatusError: ``6A80`` unknown protocol/password/parameters,
                ``6983`` the CAN is blocked, ``63C0`` the PIN or PUK is
                blocked, ``63C1`` the PIN is suspended and this session was
                not opened with the CAN.
        """
        self._reset()
        try:
            message = MseSetAt.decode(data)
        except MalformedInput as exc:
            # TR-03110-3 B.14.1: an unusable password reference is "referenced data not found".
            if exc.field == "83":
                raise CardStatusError(StatusCode.REFERENCED_DATA_NOT_FOUND) from None
            raise CardStatusError(StatusCode.INCORRECT_DATA) from None
        if message.protocol != pace.oid_contents(self._protocol):
            raise CardStatusError(StatusCode.INCORRECT_DATA)
        if message.password_reference not in {int(p) for p in self._passwords}:
            raise CardStatusError(StatusCode.REFERENCED_DATA_NOT_FOUND)
        password = PasswordKind(message.password_reference)
        secret = self._secret(password)
        if secret is None:
            raise CardStatusError(StatusCode.REFERENCED_DATA_NOT_FOUND)
        if message.parameter_id is not None and message.parameter_id != self._parameter_id:
            raise CardStatusError(StatusCode.INCORRECT_DATA)
        status = self._password_status(password)
        self._password = password
        self._k_pi = derive_key(secret, KDF_PI, self._protocol.cipher, self._protocol.key_bits)
        self._step = _Step.SET
        return status

    def _secret(self, password: PasswordKind) -> bytes | None:
        if password is PasswordKind.MRZ:
            return self._secrets.mrz_key_seed()
        text = {
            PasswordKind.CAN: self._secrets.can,
            PasswordKind.PIN: self._pin,
            PasswordKind.PUK: self._secrets.puk,
        }[password]
        return None if text is None else text.encode("ascii")

    def _password_status(self, password: PasswordKind) -> bytes:
        """The MSE:Set AT answer for ``password``, or the refusal (TR-03110-2 §3.5)."""
        if password is PasswordKind.CAN and self._retries == 0:
            raise CardStatusError(StatusCode.AUTHENTICATION_METHOD_BLOCKED)
        if password is PasswordKind.PUK and self._puk_uses == 0:
            raise CardStatusError(retries_left(0))
        if password is not PasswordKind.PIN:
            return StatusCode.OK.encode()
        tries = self._pin_retries
        if tries == 0:
            raise CardStatusError(retries_left(0))
        if tries == 1 and self._authenticated is not PasswordKind.CAN:
            # Suspended: the last try needs a PACE with the CAN first (resume).
            raise CardStatusError(retries_left(1))
        return StatusCode.OK.encode() if tries == self._pin_full else retries_left(tries)

    # -- RESET RETRY COUNTER -----------------------------------------------------------

    def reset_retry_counter(self, p1: int, p2: int, data: bytes) -> None:
        """RESET RETRY COUNTER for the PIN (``2C``, TR-03110-3 B.11.4); call inside SM.

        ``P1 = 03``: unblock (a session from the PUK); ``P1 = 02``: change the
        PIN to ``data`` (a session from the PIN or the PUK). ``P2 = 03``: the PIN.

        Raises:
            CardStatusError: ``6A86`` other P1/P2, ``6A88`` a card without PIN,
                ``6982`` the session was not opened with the right password,
                ``6A80`` a new PIN that is not 4 to 12 digits.
        """
        if p2 != int(PasswordKind.PIN) or p1 not in (0x02, 0x03):
            raise CardStatusError(StatusCode.INCORRECT_P1_P2)
        if self._pin is None:
            raise CardStatusError(StatusCode.REFERENCED_DATA_NOT_FOUND)
        allowed = {PasswordKind.PUK} if p1 == 0x03 else {PasswordKind.PIN, PasswordKind.PUK}
        if self._authenticated not in allowed:
            raise CardStatusError(StatusCode.SECURITY_STATUS_NOT_SATISFIED)
        if p1 == 0x02:
            if not (4 <= len(data) <= 12 and data.isdigit()):
                raise CardStatusError(StatusCode.INCORRECT_DATA)
            self._pin = data.decode("ascii")
        elif data:
            raise CardStatusError(StatusCode.INCORRECT_DATA)
        self._pin_retries = self._pin_full

    # -- GENERAL AUTHENTICATE -----------------------------------------------------------

    def general_authenticate(self, command: CommandAPDU) -> tuple[bytes, CardSession | None]:
        """One GA step; returns the ``7C`` answer and, after step 4, the new session.

        Raises:
            CardStatusError: ``6985`` out of sequence, ``6A80`` malformed data,
                ``6300``/``63Cx`` wrong token.
        """
        objects = parse_dynamic_authentication_data(command.data)
        state = self._step
        expected = _EXPECTING.get(state)
        try:
            if expected is not None and set(objects) == expected.command:
                return self._HANDLERS[expected.name](self, objects)
        except CardStatusError:
            self._reset()
            raise
        except MacnssAuthError:
            # A key off the curve, a degenerate mapping: refuse and forget the attempt.
            self._reset()
            raise CardStatusError(StatusCode.INCORRECT_DATA) from None
        self._reset()
        if state is _Step.READY:
            raise CardStatusError(StatusCode.CONDITIONS_NOT_SATISFIED)
        raise CardStatusError(StatusCode.INCORRECT_DATA)

    def _base(self) -> pace.Domain:
        return pace.base_domain(standardized(self._parameter_id))

    def _send_nonce(self, _objects: Mapping[int, bytes]) -> tuple[bytes, None]:
        cipher = self._protocol.cipher
        if self._protocol.mapping is PaceMapping.INTEGRATED:
            length = pace.integrated_mapping_lengths(cipher, self._protocol.key_bits)[0]
        else:
            length = cipher.block_size
        self._nonce = self._random.token_bytes(length)
        self._step = _Step.NONCE_SENT
        nonce = pace.encrypt_nonce(cipher, self._k_pi, self._nonce)
        return encode_dynamic_authentication_data((AuthTag.ENCRYPTED_NONCE, nonce)), None

    def _map(self, objects: Mapping[int, bytes]) -> tuple[bytes, None]:
        mapping_data = objects[AuthTag.MAPPING_DATA]
        base = self._base()
        if self._protocol.mapping is PaceMapping.INTEGRATED:
            self._domain = pace.integrated_mapping(
                base, self._nonce, mapping_data, self._protocol.cipher, self._protocol.key_bits
            )
            self._step = _Step.MAPPED
            return encode_dynamic_authentication_data((AuthTag.CHIP_MAPPING_DATA, b"")), None
        self._map_private = pace.generate_private_key(base, self._random)
        public = pace.public_key(base, self._map_private)
        shared = pace.mapping_shared_element(base, self._map_private, mapping_data)
        self._domain = pace.generic_mapping(base, self._nonce, shared)
        self._map_public_pcd = mapping_data
        self._step = _Step.MAPPED
        return encode_dynamic_authentication_data((AuthTag.CHIP_MAPPING_DATA, public)), None

    def _agree(self, objects: Mapping[int, bytes]) -> tuple[bytes, None]:
        public_pcd = objects[AuthTag.EPHEMERAL_PUBLIC_KEY]
        domain = self._domain
        if domain is None:  # set in step 2
            raise CardStatusError(StatusCode.CONDITIONS_NOT_SATISFIED)
        if pace.same_public_key(domain, public_pcd, self._map_public_pcd):
            # ICAO 9303-11 §4.4.3.4: the ephemeral key must differ from the mapping key.
            raise CardStatusError(StatusCode.INCORRECT_DATA)
        pace.decode_public_key(domain, public_pcd)
        private = pace.generate_private_key(domain, self._random)
        public_ic = pace.public_key(domain, private)
        shared = pace.shared_secret(domain, private, public_pcd)
        # K on the length of p, and for a DH K with a leading zero also without it
        # (OpenSSL's DH_compute_key): the terminal's token tells which it used.
        self._keys = pace.session_key_candidates(
            domain, shared, self._protocol.cipher, self._protocol.key_bits
        )
        self._public_pcd, self._public_ic = public_pcd, public_ic
        self._step = _Step.AGREED
        answer = encode_dynamic_authentication_data((AuthTag.CHIP_EPHEMERAL_PUBLIC_KEY, public_ic))
        return answer, None

    def _confirm(self, objects: Mapping[int, bytes]) -> tuple[bytes, CardSession]:
        token = objects[AuthTag.AUTHENTICATION_TOKEN]
        domain = self._domain
        if domain is None or not self._keys:  # set in steps 2 and 3
            raise CardStatusError(StatusCode.CONDITIONS_NOT_SATISFIED)
        # Every candidate K and both encodings of the DH key are checked (no early exit).
        matches = [
            (
                pace.token_matches(
                    self._protocol, keys, domain, self._public_ic, token, fixed_length=False
                ),
                pace.token_matches(
                    self._protocol, keys, domain, self._public_ic, token, fixed_length=True
                ),
            )
            for keys in self._keys
        ]
        found = [index for index, (minimal, fixed) in enumerate(matches) if minimal or fixed]
        if not found:
            raise self._failed()
        keys = self._keys[found[0]]
        minimal_ok, fixed_ok = matches[found[0]]
        # Answer in the terminal's own convention where it showed one: a DH value
        # sent with a leading zero octet, or a token over the padded key only.
        fixed_answer = isinstance(domain, pace.DhDomain) and (
            (fixed_ok and not minimal_ok)
            or (len(self._public_pcd) == domain.group.byte_length and self._public_pcd[0] == 0)
        )
        if self._counted():
            self._retries = self._initial_retries
        if self._password is PasswordKind.PIN:
            self._pin_retries = self._pin_full
        elif self._password is PasswordKind.PUK:
            self._puk_uses = max(self._puk_uses - 1, 0)
        self._authenticated = self._password
        answer_token = pace.authentication_token(
            self._protocol, keys, domain, self._public_pcd, fixed_length=fixed_answer
        )
        answer = [(AuthTag.CHIP_AUTHENTICATION_TOKEN, answer_token)]
        if self._protocol.mapping is PaceMapping.CHIP_AUTHENTICATION:
            answer.append(
                (AuthTag.ENCRYPTED_CHIP_AUTHENTICATION_DATA, self._chip_authentication_data(keys))
            )
        self._reset()
        channel = CardSession(keys, ssc=0, established_by="PACE")
        return encode_dynamic_authentication_data(*answer), channel

    # The handler of each step of the shared table (messages.PACE_STEPS).
    _HANDLERS: ClassVar[
        Mapping[
            str, Callable[[PaceResponder, Mapping[int, bytes]], tuple[bytes, CardSession | None]]
        ]
    ] = {"nonce": _send_nonce, "map": _map, "agree": _agree, "confirm": _confirm}

    def _failed(self) -> CardStatusError:
        if self._password is PasswordKind.PIN:
            self._pin_retries = max(self._pin_retries - 1, 0)
            return CardStatusError(retries_left(self._pin_retries))
        if self._password is PasswordKind.PUK:
            self._puk_uses = max(self._puk_uses - 1, 0)
            return CardStatusError(retries_left(self._puk_uses))
        if self._counted() and self._retries is not None:
            self._retries = max(self._retries - 1, 0)
            return CardStatusError(retries_left(self._retries))
        return CardStatusError(StatusCode.AUTHENTICATION_FAILED)

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
            raise CardStatusError(StatusCode.NO_PRECISE_DIAGNOSIS)
        data = pace.chip_authentication_data(domain.curve, static, self._map_private)
        return pace.encrypt_chip_authentication_data(keys, data)

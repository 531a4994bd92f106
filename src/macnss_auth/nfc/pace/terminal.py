"""The terminal side of PACE as a sans-I/O state machine (ICAO 9303-11 §4.4.4, §4.4.5).

Five round trips, one command each::

    MSE:Set AT        00 22 C1 A4  80 <OID> 83 <password ref> [84 <parameter id>]
    GA 1 (nonce)      10 86 00 00  7C 00                      -> 7C { 80 z }
    GA 2 (mapping)    10 86 00 00  7C { 81 PK_map,IFD | t }   -> 7C { 82 PK_map,IC | empty }
    GA 3 (agreement)  10 86 00 00  7C { 83 PK_IFD }           -> 7C { 84 PK_IC }
    GA 4 (tokens)     00 86 00 00  7C { 85 T_IFD }            -> 7C { 86 T_IC [87/88] [8A A_IC] }

The first three GENERAL AUTHENTICATE commands carry the chaining bit (CLA 10);
the last does not. Every step is a row of :attr:`PaceTerminal.TRANSITIONS`.

Outcomes of a response:

* 9000 with the expected data: the next state.
* 6300 / 63CX during GENERAL AUTHENTICATE, 63C0 or 6983 on MSE:Set AT: the
  password was wrong or is blocked: :class:`~macnss_auth.errors.AccessDenied`
  with ``status_word`` and ``remaining_attempts`` (X of 63CX) when given;
  :class:`~macnss_auth.errors.PasswordBlocked` when no try is left and, for a
  PIN with one try left (``63C1``, suspended) outside a resume,
  :class:`~macnss_auth.errors.PasswordSuspended`.
* any other status, missing or malformed data, a key that fails validation, a
  wrong chip token: :class:`~macnss_auth.errors.RemoteProtocolError` with the
  status word.
* a call out of order: :class:`~macnss_auth.errors.LocalProtocolError`.

After any error the object is dead: it has dropped its keys and every later
call raises :class:`~macnss_auth.errors.LocalProtocolError`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Set
from typing import ClassVar, TypeVar

import attrs

from macnss_auth.clock import RandomSource
from macnss_auth.errors import (
    AccessDenied,
    ConfigurationError,
    LocalProtocolError,
    MacnssAuthError,
    MalformedInput,
    PasswordBlocked,
    PasswordSuspended,
    RemoteProtocolError,
)
from macnss_auth.nfc.apdu import ResponseAPDU, StatusCode
from macnss_auth.nfc.domain_params import standardized
from macnss_auth.nfc.ec import Curve, Point
from macnss_auth.nfc.mrz import CAN, PIN, PUK, MrzKey
from macnss_auth.nfc.pace import primitives as pm
from macnss_auth.nfc.pace.messages import (
    PACE_STEPS,
    AuthTag,
    GaStep,
    MseSetAt,
    decode_dynamic_authentication_data,
    general_authenticate_command,
)
from macnss_auth.nfc.protocol import Event, ProtocolMachine, Transport, run
from macnss_auth.nfc.securityinfos import (
    ChipAuthenticationPublicKeyInfo,
    KeyAgreement,
    PaceInfo,
    PaceOid,
)
from macnss_auth.nfc.securityinfos import Mapping as PaceMapping
from macnss_auth.nfc.sm import SecureChannel, SessionKeys

__all__ = ["PaceResult", "PaceState", "PaceTerminal", "run_pace", "select_pace_info"]

# Errors carry plain ints: what the chip answered when its data (not its status) was wrong.
_SW_OK = int(StatusCode.OK)


_T = TypeVar("_T")


def _need(value: _T | None) -> _T:
    """A value an earlier step set; its absence is a bug, reported as a local error."""
    if value is None:
        raise LocalProtocolError("PACE state is missing a value from an earlier step")
    return value


class PaceState(enum.Enum):
    """Where a :class:`PaceTerminal` is. ``AWAIT_*`` states wait for a response."""

    START = "start"
    AWAIT_MSE = "await MSE:Set AT response"
    NONCE = "send GA 1 (encrypted nonce)"
    AWAIT_NONCE = "await encrypted nonce"
    MAP = "send GA 2 (mapping data)"
    AWAIT_MAP = "await mapping data"
    KEY_AGREEMENT = "send GA 3 (ephemeral key)"
    AWAIT_KEY_AGREEMENT = "await chip ephemeral key"
    AUTHENTICATE = "send GA 4 (token)"
    AWAIT_AUTHENTICATE = "await chip token"
    DONE = "done"
    FAILED = "failed"


# The terminal's states on the shared step table (messages.PACE_STEPS): each
# GENERAL AUTHENTICATE step is a state that sends it and one that awaits the answer.
_GA_STATES = (
    (PaceState.NONCE, PaceState.AWAIT_NONCE),
    (PaceState.MAP, PaceState.AWAIT_MAP),
    (PaceState.KEY_AGREEMENT, PaceState.AWAIT_KEY_AGREEMENT),
    (PaceState.AUTHENTICATE, PaceState.AWAIT_AUTHENTICATE),
)
_STEP_OF: Mapping[PaceState, GaStep] = {
    state: step for step, states in zip(PACE_STEPS, _GA_STATES, strict=True) for state in states
}
_AWAIT: Mapping[PaceState, PaceState] = dict(_GA_STATES)


@attrs.frozen(repr=False, eq=False)
class PaceResult:
    """What a successful PACE gives: session keys and what later checks need.

    Attributes:
        keys: ``KSenc`` and ``KSmac`` with their cipher; secure messaging
            starts with SSC = 0 (:meth:`secure_channel`).
        protocol: the PACE OID that was run.
        parameter_id: the standardized domain parameter id.
        password_reference: 1 (MRZ), 2 (CAN), 3 (PIN) or 4 (PUK).
        chip_public_key: ``PK_DH,IC``, the chip's ephemeral key (Terminal
            Authentication uses ``Comp()`` of it as ``ID_IC``).
        terminal_public_key: ``PK_DH,IFD``.
        chip_mapping_public_key: ``PK_map,IC`` (Generic Mapping and CAM).
        chip_authentication_data: ``CA_IC`` decrypted (CAM only).
        certification_authority_references: CARs from DO 87/88, if any.
        remaining_attempts: a retry counter the chip reported (63CX on
            MSE:Set AT), if any.
    """

    keys: SessionKeys
    protocol: PaceOid
    parameter_id: int
    password_reference: int
    chip_public_key: bytes
    terminal_public_key: bytes
    chip_mapping_public_key: bytes | None = None
    chip_authentication_data: bytes | None = None
    certification_authority_references: tuple[bytes, ...] = ()
    remaining_attempts: int | None = None

    @property
    def ssc(self) -> int:
        """The send sequence counter secure messaging starts from: 0 after PACE."""
        return 0

    def secure_channel(self) -> SecureChannel:
        """A terminal-side secure channel with the session keys and SSC = 0."""
        return SecureChannel(self.keys, ssc=0)

    def verify_chip_authentication(
        self, chip_static_key: bytes | ChipAuthenticationPublicKeyInfo
    ) -> None:
        """Finish PACE-CAM: check the chip holds the static key of EF.CardSecurity.

        Pass the ``ChipAuthenticationPublicKeyInfo`` (or its point) from an
        EF.CardSecurity whose signature passive authentication has verified.

        Raises:
            ConfigurationError: this run was not PACE-CAM.
            DocumentNotGenuine: the mapping does not verify.
            MalformedInput: the key is not a point of the PACE curve.
        """
        if self.chip_authentication_data is None or self.chip_mapping_public_key is None:
            raise ConfigurationError("this PACE run was not Chip Authentication Mapping")
        curve = standardized(self.parameter_id)
        assert isinstance(curve, Curve)  # noqa: S101 (CAM is ECDH-only, checked at start)
        static = (
            chip_static_key.public_key
            if isinstance(chip_static_key, ChipAuthenticationPublicKeyInfo)
            else chip_static_key
        )
        pm.verify_chip_authentication_mapping(
            curve, self.chip_authentication_data, self.chip_mapping_public_key, static
        )

    def __repr__(self) -> str:
        return (
            f"PaceResult(protocol={self.protocol.name}, parameter_id={self.parameter_id}, "
            f"keys=<redacted>)"
        )


_PREFERENCE = (
    PaceMapping.CHIP_AUTHENTICATION,
    PaceMapping.GENERIC,
    PaceMapping.INTEGRATED,
)


def select_pace_info(infos: Iterable[object]) -> PaceInfo:
    """Choose the PACEInfo to run from parsed EF.CardAccess SecurityInfos.

    Prefers Chip Authentication Mapping, then Generic, then Integrated
    Mapping; ECDH before DH; AES before 3DES, longer keys first. Only
    standardized domain parameters are considered.

    Raises:
        ConfigurationError: no usable PACEInfo.
    """
    candidates = []
    for info in infos:
        if not isinstance(info, PaceInfo) or info.parameter_id is None:
            continue
        try:
            standardized(info.parameter_id)
        except MacnssAuthError:
            continue
        protocol = info.protocol
        rank = (
            _PREFERENCE.index(protocol.mapping),
            protocol.agreement is not KeyAgreement.ECDH,
            -protocol.key_bits,
        )
        candidates.append((rank, info))
    if not candidates:
        raise ConfigurationError("no PACEInfo with standardized domain parameters")
    return min(candidates, key=lambda item: item[0])[1]


class PaceTerminal(ProtocolMachine[PaceState, PaceResult]):
    """PACE, terminal side: feed it the chip's responses, get session keys.

    Args:
        password: the MRZ fields or the CAN.
        info: the PACEInfo chosen from EF.CardAccess (it names the protocol
            and the standardized domain parameters).
        random: where ephemeral keys and nonces come from.
        send_parameter_id: include DO 84 (the parameter id) in MSE:Set AT;
            some chips require it, a few old ones do not expect it.
        strip_dh_secret: derive the session keys from a DH shared secret
            without its leading zero octets, as OpenSSL's ``DH_compute_key``
            (and so OpenPACE) does. The default keeps the length of ``p``
            (PKCS #3, ICAO 9303-11); it matters about once in 256 DH runs.
        resuming: this PACE with the PIN runs inside the secure channel of a
            PACE with the CAN, so a suspended PIN (``63C1`` on MSE:Set AT) may
            take its last try (BSI TR-03110-2 §3.5.1). Without it a suspended
            PIN raises :class:`~macnss_auth.errors.PasswordSuspended` at once.

    Raises:
        ConfigurationError: the PACEInfo has no standardized parameter id,
            or names a mapping the group family does not have.
        UnsupportedAlgorithm: unknown domain parameters.
    """

    FAILED = PaceState.FAILED
    DONE = PaceState.DONE
    # Each call moves exactly one step; nothing else is allowed.
    TRANSITIONS: ClassVar[Mapping[tuple[enum.Enum, Event], Set[enum.Enum]]] = {
        (PaceState.START, Event.COMMAND): {PaceState.AWAIT_MSE},
        (PaceState.AWAIT_MSE, Event.RESPONSE): {PaceState.NONCE},
        (PaceState.NONCE, Event.COMMAND): {PaceState.AWAIT_NONCE},
        (PaceState.AWAIT_NONCE, Event.RESPONSE): {PaceState.MAP},
        (PaceState.MAP, Event.COMMAND): {PaceState.AWAIT_MAP},
        (PaceState.AWAIT_MAP, Event.RESPONSE): {PaceState.KEY_AGREEMENT},
        (PaceState.KEY_AGREEMENT, Event.COMMAND): {PaceState.AWAIT_KEY_AGREEMENT},
        (PaceState.AWAIT_KEY_AGREEMENT, Event.RESPONSE): {PaceState.AUTHENTICATE},
        (PaceState.AUTHENTICATE, Event.COMMAND): {PaceState.AWAIT_AUTHENTICATE},
        (PaceState.AWAIT_AUTHENTICATE, Event.RESPONSE): {PaceState.DONE},
    }

    def __init__(
        self,
        password: pm.PacePassword,
        info: PaceInfo,
        *,
        random: RandomSource,
        send_parameter_id: bool = True,
        strip_dh_secret: bool = False,
        resuming: bool = False,
    ) -> None:
        super().__init__(PaceState.START)
        if not isinstance(password, (MrzKey, CAN, PIN, PUK)):
            raise TypeError("password must be an MrzKey, a CAN, a PIN or a PUK")
        if info.parameter_id is None:
            raise ConfigurationError("PACEInfo without a standardized domain parameter id")
        group = standardized(info.parameter_id)
        protocol = info.protocol
        is_curve = isinstance(group, Curve)
        if is_curve != (protocol.agreement is KeyAgreement.ECDH):
            raise ConfigurationError(f"{protocol.name} does not run on {group.name}")
        self._protocol = protocol
        self._parameter_id = info.parameter_id
        self._password_reference = pm.password_reference(password)
        self._send_parameter_id = send_parameter_id
        self._strip_dh_secret = strip_dh_secret
        self._is_pin = isinstance(password, PIN)
        self._resuming = resuming
        self._random = random
        self._base: pm.Domain = pm.base_domain(group)
        self._k_pi: bytes | None = pm.password_key(password, protocol.cipher, protocol.key_bits)
        self._nonce: bytes | None = None
        self._mapping_key: int | None = None
        self._mapping_public_key = b""
        self._domain: pm.Domain | None = None
        # Generic Mapping on a curve cryptography has: (nonce, SK_map, PK_map,IC) until
        # x*G' is computed (see _receive_mapping).
        self._deferred_mapping: tuple[bytes, int, Point] | None = None
        self._private_key: int | None = None
        self._public_key = b""
        self._chip_public_key = b""
        self._chip_mapping_public_key: bytes | None = None
        self._keys: SessionKeys | None = None
        self._remaining_attempts: int | None = None
        self._secret_ambiguous = False

    @property
    def protocol(self) -> PaceOid:
        """The PACE OID this object runs."""
        return self._protocol

    @property
    def secret_encoding_ambiguous(self) -> bool:
        """Whether this run's DH shared secret K started with a zero octet.

        Only then do peers that keep K's length and peers that strip its
        leading zeros derive different keys; :func:`run_pace` uses it to
        decide whether a refused run deserves one more try.
        """
        return self._secret_ambiguous

    # -- commands ---------------------------------------------------------------

    def _command(self, state: PaceState) -> tuple[bytes, PaceState]:
        if state is PaceState.START:
            return self._mse_set_at(), PaceState.AWAIT_MSE
        step = _STEP_OF[state]
        objects = () if state is PaceState.NONCE else (self._OBJECTS[state](self),)
        command = general_authenticate_command(step, *objects)
        return command.to_bytes(), _AWAIT[state]

    def _mse_set_at(self) -> bytes:
        message = MseSetAt(
            pm.oid_contents(self._protocol),
            self._password_reference,
            self._parameter_id if self._send_parameter_id else None,
        )
        return message.command().to_bytes()

    def _mapping_data(self) -> tuple[AuthTag, bytes]:
        if self._protocol.mapping is PaceMapping.INTEGRATED:
            _, t_len = pm.integrated_mapping_lengths(self._protocol.cipher, self._protocol.key_bits)
            nonce_t = self._random.token_bytes(t_len)
            self._domain = pm.integrated_mapping(
                self._base,
                _need(self._nonce),
                nonce_t,
                self._protocol.cipher,
                self._protocol.key_bits,
            )
            self._nonce = None
            return AuthTag.MAPPING_DATA, nonce_t
        self._mapping_key = pm.generate_private_key(self._base, self._random)
        self._mapping_public_key = pm.public_key(self._base, self._mapping_key)
        return AuthTag.MAPPING_DATA, self._mapping_public_key

    def _ephemeral_data(self) -> tuple[AuthTag, bytes]:
        domain = self._mapped_domain()
        self._private_key = pm.generate_private_key(domain, self._random)
        deferred, self._deferred_mapping = self._deferred_mapping, None
        public = None
        if deferred is not None and isinstance(domain, pm.EcDomain):
            nonce, mapping_key, chip_mapping = deferred
            public = pm.generic_mapping_public_key(
                domain, nonce, mapping_key, chip_mapping, self._private_key
            )
            self._mapping_key = None
        self._public_key = public or pm.public_key(domain, self._private_key)
        return AuthTag.EPHEMERAL_PUBLIC_KEY, self._public_key

    def _token_data(self) -> tuple[AuthTag, bytes]:
        domain = self._mapped_domain()
        token = pm.authentication_token(
            self._protocol, _need(self._keys), domain, self._chip_public_key
        )
        return AuthTag.AUTHENTICATION_TOKEN, token

    # What the terminal sends at each GENERAL AUTHENTICATE step after the first.
    _OBJECTS: ClassVar[Mapping[PaceState, Callable[[PaceTerminal], tuple[AuthTag, bytes]]]] = {
        PaceState.MAP: _mapping_data,
        PaceState.KEY_AGREEMENT: _ephemeral_data,
        PaceState.AUTHENTICATE: _token_data,
    }

    # -- responses --------------------------------------------------------------

    def _response(self, state: PaceState, response: bytes) -> PaceState:
        try:
            return self._handle(state, response)
        except (AccessDenied, RemoteProtocolError):
            raise
        except MalformedInput as exc:
            raise RemoteProtocolError(
                f"malformed PACE response ({exc.field or 'data'})", status_word=_SW_OK
            ) from exc

    def _handle(self, state: PaceState, response: bytes) -> PaceState:
        apdu = ResponseAPDU.from_bytes(response)
        if state is PaceState.AWAIT_MSE:
            self._check_mse_status(apdu)
            return PaceState.NONCE
        objects = self._dynamic_authentication_data(apdu, _STEP_OF[state])
        if state is PaceState.AWAIT_NONCE:
            encrypted = self._required(objects, AuthTag.ENCRYPTED_NONCE, "encrypted nonce")
            self._nonce = pm.decrypt_nonce(self._protocol.cipher, _need(self._k_pi), encrypted)
            self._k_pi = None
            if self._protocol.mapping is PaceMapping.INTEGRATED:
                s_len, _ = pm.integrated_mapping_lengths(
                    self._protocol.cipher, self._protocol.key_bits
                )
                if len(self._nonce) != s_len:
                    raise RemoteProtocolError(
                        "the nonce has the wrong length for the integrated mapping",
                        status_word=_SW_OK,
                    )
            return PaceState.MAP
        if state is PaceState.AWAIT_MAP:
            self._receive_mapping(objects)
            return PaceState.KEY_AGREEMENT
        if state is PaceState.AWAIT_KEY_AGREEMENT:
            self._receive_chip_key(objects)
            return PaceState.AUTHENTICATE
        self._receive_token(objects)
        return PaceState.DONE

    def _refusal(self, sw: int, tries: int | None, *, at_start: bool) -> AccessDenied:
        """The typed error for a refused or exhausted password (BSI TR-03110-2 §3.5)."""
        if sw == StatusCode.AUTHENTICATION_METHOD_BLOCKED or tries == 0:
            return PasswordBlocked("the password is blocked", status_word=sw, remaining_attempts=0)
        if tries == 1 and self._is_pin:
            return PasswordSuspended(
                "the PIN is suspended: run PACE with the CAN first",
                status_word=sw,
                remaining_attempts=1,
            )
        message = "the card refused the password" if not at_start else "password refused"
        return AccessDenied(message, status_word=sw, remaining_attempts=tries)

    def _check_mse_status(self, apdu: ResponseAPDU) -> None:
        status = apdu.status
        tries = status.remaining_tries
        if apdu.sw == StatusCode.AUTHENTICATION_METHOD_BLOCKED or tries == 0:
            raise self._refusal(apdu.sw, tries, at_start=True)
        if tries == 1 and self._is_pin and not self._resuming:
            raise self._refusal(apdu.sw, tries, at_start=True)
        if tries is not None:
            # 63CX on MSE:Set AT is a warning: the password works, X tries are left.
            self._remaining_attempts = tries
            return
        if not apdu.ok:
            raise RemoteProtocolError(f"MSE:Set AT refused: {status}", status_word=apdu.sw)

    def _dynamic_authentication_data(self, apdu: ResponseAPDU, step: GaStep) -> dict[int, bytes]:
        tries = apdu.status.remaining_tries
        if apdu.sw == StatusCode.AUTHENTICATION_FAILED or tries is not None:
            raise self._refusal(apdu.sw, tries, at_start=False)
        if apdu.sw == StatusCode.AUTHENTICATION_METHOD_BLOCKED:
            raise self._refusal(apdu.sw, 0, at_start=False)
        if not apdu.ok:
            raise RemoteProtocolError(
                f"GENERAL AUTHENTICATE failed: {apdu.status}", status_word=apdu.sw
            )
        try:
            objects = decode_dynamic_authentication_data(apdu.data)
        except MalformedInput as exc:
            raise RemoteProtocolError(
                f"bad dynamic authentication data in the {step.name} step: {exc}",
                status_word=apdu.sw,
            ) from exc
        return objects

    @staticmethod
    def _required(objects: dict[int, bytes], tag: int, what: str) -> bytes:
        value = objects.get(tag)
        if not value:
            raise RemoteProtocolError(f"the chip sent no {what} (tag {tag:#x})", status_word=_SW_OK)
        return value

    def _receive_mapping(self, objects: dict[int, bytes]) -> None:
        if self._protocol.mapping is PaceMapping.INTEGRATED:
            # 9303-11 §4.4.5.2.2: DO 82 is empty (tolerated absent) for the Integrated Mapping.
            if objects.get(AuthTag.CHIP_MAPPING_DATA, b""):
                raise RemoteProtocolError(
                    "mapping data must be empty for the integrated mapping",
                    status_word=_SW_OK,
                )
            return
        chip_mapping = self._required(objects, AuthTag.CHIP_MAPPING_DATA, "mapping public key")
        mapping_key = _need(self._mapping_key)
        if pm.same_public_key(self._base, chip_mapping, self._mapping_public_key):
            raise RemoteProtocolError("the chip echoed our mapping key", status_word=_SW_OK)
        base = self._base
        if isinstance(base, pm.EcDomain):
            # G' is only ever used for x*G' here: computed in one go at the next step
            # (pm.generic_mapping_public_key); every later step needs the curve only.
            point = pm.decode_public_key(base, chip_mapping)
            assert isinstance(point, Point)  # noqa: S101 (decode_public_key's contract)
            self._deferred_mapping = (_need(self._nonce), mapping_key, point)
            self._domain = base
        else:
            shared = pm.mapping_shared_element(base, mapping_key, chip_mapping)
            self._domain = pm.generic_mapping(base, _need(self._nonce), shared)
            self._mapping_key = None
        self._chip_mapping_public_key = chip_mapping
        self._nonce = None

    def _receive_chip_key(self, objects: dict[int, bytes]) -> None:
        chip_key = self._required(
            objects, AuthTag.CHIP_EPHEMERAL_PUBLIC_KEY, "ephemeral public key"
        )
        domain = self._mapped_domain()
        # A DH value is an unsigned integer: minimal (TR-03110-3) or padded to p.
        if isinstance(domain, pm.DhDomain) and len(chip_key) > domain.group.byte_length:
            raise RemoteProtocolError("DH public value longer than p", status_word=_SW_OK)
        if pm.same_public_key(domain, chip_key, self._public_key):
            raise RemoteProtocolError("the chip echoed our ephemeral key", status_word=_SW_OK)
        shared = pm.shared_secret(domain, _need(self._private_key), chip_key)
        if isinstance(domain, pm.DhDomain):
            self._secret_ambiguous = shared[0] == 0
            if self._strip_dh_secret:
                shared = pm.strip_shared_secret(shared)
        self._keys = pm.session_keys(shared, self._protocol.cipher, self._protocol.key_bits)
        self._chip_public_key = chip_key
        self._private_key = None

    def _receive_token(self, objects: dict[int, bytes]) -> None:
        token = self._required(objects, AuthTag.CHIP_AUTHENTICATION_TOKEN, "authentication token")
        keys = _need(self._keys)
        domain = self._mapped_domain()
        pm.verify_authentication_token(self._protocol, keys, domain, self._public_key, token)
        ca_data = None
        if self._protocol.mapping is PaceMapping.CHIP_AUTHENTICATION:
            encrypted = self._required(
                objects,
                AuthTag.ENCRYPTED_CHIP_AUTHENTICATION_DATA,
                "encrypted chip authentication data",
            )
            ca_data = pm.decrypt_chip_authentication_data(keys, encrypted)
        cars = tuple(
            objects[tag]
            for tag in (
                AuthTag.CERTIFICATION_AUTHORITY_REFERENCE,
                AuthTag.PREVIOUS_CERTIFICATION_AUTHORITY_REFERENCE,
            )
            if tag in objects
        )
        self._set_result(
            PaceResult(
                keys=keys,
                protocol=self._protocol,
                parameter_id=self._parameter_id,
                password_reference=self._password_reference,
                chip_public_key=self._chip_public_key,
                terminal_public_key=self._public_key,
                chip_mapping_public_key=self._chip_mapping_public_key,
                chip_authentication_data=ca_data,
                certification_authority_references=cars,
                remaining_attempts=self._remaining_attempts,
            )
        )

    def _mapped_domain(self) -> pm.Domain:
        if self._domain is None:
            raise LocalProtocolError("PACE has no mapped domain yet")
        return self._domain

    def _drop_secrets(self) -> None:
        self._deferred_mapping = None
        self._k_pi = None
        self._nonce = None
        self._mapping_key = None
        self._private_key = None
        self._domain = None
        self._keys = None


def run_pace(
    password: pm.PacePassword,
    info: PaceInfo,
    transport: Transport,
    *,
    random: RandomSource,
    send_parameter_id: bool = True,
) -> PaceResult:
    """Run PACE over ``transport``; once more if only the DH shared secret's encoding failed.

    A DH shared secret K starts with a zero octet about once in 256 runs.
    This library keeps K on the length of p (PKCS #3); chips built on
    OpenSSL's ``DH_compute_key`` (OpenPACE) strip the zero, derive other keys
    and refuse the token with ``6300``, which looks like a wrong password.
    When exactly that happens (DH, K with a leading zero, a plain ``6300``
    without a retry counter, a password that is the MRZ or the CAN), the run
    is repeated once with fresh keys and the stripped convention. A refusal
    with a retry counter (``63CX``), a PIN or PUK, or any other run is never
    repeated: a wrong password costs at most the one try it costs anyway.

    Raises:
        AccessDenied: the chip refused the password.
        RemoteProtocolError: the chip misbehaved.
        TransportError: the link failed.
    """
    terminal = PaceTerminal(password, info, random=random, send_parameter_id=send_parameter_id)
    try:
        return run(terminal, transport)
    except AccessDenied as error:
        retry = (
            error.status_word == StatusCode.AUTHENTICATION_FAILED
            and terminal.secret_encoding_ambiguous
            and isinstance(password, (MrzKey, CAN))
        )
        if not retry:
            raise
    again = PaceTerminal(
        password,
        info,
        random=random,
        send_parameter_id=send_parameter_id,
        strip_dh_secret=True,
    )
    return run(again, transport)

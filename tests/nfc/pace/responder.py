"""A minimal card-side PACE responder built only from the public pure functions.

It is the card the terminal talks to in the tests, the way h11 tests a client
against a server: MSE:Set AT then the four GENERAL AUTHENTICATE steps, with
the checks a chip makes (CLA chaining, token verification, a retry counter).
It also shows the virtual card how to use :mod:`macnss_auth.nfc.pace`.
"""

from __future__ import annotations

from macnss_auth.clock import RandomSource
from macnss_auth.errors import MacnssAuthError
from macnss_auth.nfc import tlv
from macnss_auth.nfc.apdu import CommandAPDU
from macnss_auth.nfc.domain_params import standardized
from macnss_auth.nfc.ec import Curve
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pace import primitives as pm
from macnss_auth.nfc.securityinfos import Mapping, PaceInfo
from macnss_auth.nfc.sm import SessionKeys

OK = b"\x90\x00"


class PaceResponder:
    """The chip's side of PACE for one password and one PACEInfo."""

    def __init__(
        self,
        password: MrzKey | CAN,
        info: PaceInfo,
        *,
        random: RandomSource,
        static_private_key: int | None = None,
        retries: int = 3,
        strip_leading_zeros: bool = False,
        pad_public_values: bool = False,
        fixed_length_token: bool = False,
        strip_secret: bool = False,
        plain_refusal: bool = False,
    ) -> None:
        """A strict peer: it MACs the DH key one way only (``fixed_length_token``:
        on the length of p, as this library did before; otherwise minimal, as
        OpenPACE and JMRTD do), sends DH values minimal (``strip_leading_zeros``),
        padded (``pad_public_values``) or as :func:`public_key` gives them, and
        derives keys from K padded or, with ``strip_secret``, stripped (OpenPACE).
        A wrong token answers ``63CX`` (a retry counter), or ``6300`` with
        ``plain_refusal`` (no counter, as OpenPACE-based chips for MRZ/CAN).
        """
        assert info.parameter_id is not None
        self.password = password
        self.info = info
        self.random = random
        self.static_private_key = static_private_key
        self.retries = retries
        self.strip_leading_zeros = strip_leading_zeros
        self.pad_public_values = pad_public_values
        self.fixed_length_token = fixed_length_token
        self.strip_secret = strip_secret
        self.plain_refusal = plain_refusal
        self.attempts = 0
        self.base = pm.base_domain(standardized(info.parameter_id))
        self.step = -1
        self.keys: SessionKeys | None = None
        self.mapping_private_key = 0
        self.chip_public_key = b""
        self.terminal_public_key = b""
        self.shared_secrets: list[bytes] = []

    def _strip(self, value: bytes) -> bytes:
        if isinstance(self.base, pm.DhDomain):
            if self.strip_leading_zeros:
                return value.lstrip(b"\x00") or b"\x00"
            if self.pad_public_values:
                return value.rjust(self.base.group.byte_length, b"\x00")
        return value

    def transceive(self, raw: bytes) -> bytes:
        try:
            return self._transceive(raw)
        except MacnssAuthError:
            self.step = -1
            return b"\x6a\x80"

    def _transceive(self, raw: bytes) -> bytes:
        command = CommandAPDU.from_bytes(raw)
        protocol = self.info.protocol
        if command.ins == 0x22:
            objects = {item.tag: item.value for item in tlv.parse_all(command.data)}
            if objects.get(0x80) != protocol.der_value:
                return b"\x6a\x80"
            if objects.get(0x83) != bytes([pm.password_reference(self.password)]):
                return b"\x6a\x88"
            if self.retries == 0:
                return b"\x63\xc0"
            self.attempts += 1
            self.step = 0
            return OK
        if command.ins != 0x86 or self.step < 0:
            return b"\x69\x85"
        last = self.step == 3
        if command.cla != (0x00 if last else 0x10):
            return b"\x68\x83"
        outer, _ = tlv.parse_one(command.data)
        objects = {item.tag: item.value for item in tlv.parse_all(outer.value)}
        cipher, bits = protocol.cipher, protocol.key_bits
        if self.step == 0:
            if protocol.mapping is Mapping.INTEGRATED:
                length, _ = pm.integrated_mapping_lengths(cipher, bits)
            else:
                length = 16
            self.nonce = self.random.token_bytes(length)
            k_pi = pm.password_key(self.password, cipher, bits)
            reply = tlv.encode_tlv(0x80, pm.encrypt_nonce(cipher, k_pi, self.nonce))
        elif self.step == 1:
            if protocol.mapping is Mapping.INTEGRATED:
                self.domain = pm.integrated_mapping(
                    self.base, self.nonce, objects[0x81], cipher, bits
                )
                reply = tlv.encode_tlv(0x82, b"")
            else:
                self.mapping_private_key = pm.generate_private_key(self.base, self.random)
                shared = pm.mapping_shared_element(
                    self.base, self.mapping_private_key, objects[0x81]
                )
                self.domain = pm.generic_mapping(self.base, self.nonce, shared)
                public = pm.public_key(self.base, self.mapping_private_key)
                reply = tlv.encode_tlv(0x82, self._strip(public))
        elif self.step == 2:
            private = pm.generate_private_key(self.domain, self.random)
            self.terminal_public_key = objects[0x83]
            self.chip_public_key = pm.public_key(self.domain, private)
            secret = pm.shared_secret(self.domain, private, self.terminal_public_key)
            self.shared_secrets.append(secret)
            if self.strip_secret and isinstance(self.base, pm.DhDomain):
                secret = pm.strip_shared_secret(secret)
            self.keys = pm.session_keys(secret, cipher, bits)
            reply = tlv.encode_tlv(0x84, self._strip(self.chip_public_key))
        else:
            assert self.keys is not None
            expected = pm.authentication_token(
                protocol,
                self.keys,
                self.domain,
                self.chip_public_key,
                fixed_length=self.fixed_length_token,
            )
            if expected != objects[0x85]:
                self.step = -1
                if self.plain_refusal:
                    return b"\x63\x00"
                self.retries = max(self.retries - 1, 0)
                return bytes([0x63, 0xC0 | self.retries])
            token = pm.authentication_token(
                protocol,
                self.keys,
                self.domain,
                self.terminal_public_key,
                fixed_length=self.fixed_length_token,
            )
            reply = tlv.encode_tlv(0x86, token)
            if protocol.mapping is Mapping.CHIP_AUTHENTICATION:
                assert self.static_private_key is not None
                curve = standardized(self.info.parameter_id or 0)
                assert isinstance(curve, Curve)
                data = pm.chip_authentication_data(
                    curve, self.static_private_key, self.mapping_private_key
                )
                reply += tlv.encode_tlv(0x8A, pm.encrypt_chip_authentication_data(self.keys, data))
        self.step = self.step + 1 if not last else -1
        return tlv.encode_tlv(0x7C, reply) + OK

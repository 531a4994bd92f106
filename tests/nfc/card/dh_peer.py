"""A terminal-side PACE peer with a chosen DH encoding convention (tests only).

Independent implementations disagree on three DH fields; this peer plays each
known combination so the virtual card is tested against all of them:

==========  ===========================  ==========================  =================
convention  public values in GA (83)     DH key in the token (84)    shared secret K
==========  ===========================  ==========================  =================
standard    minimal (TR-03110-3 D.2.1.1) minimal                     length of p
openpace    minimal                      minimal                     leading zeros cut
padded      length of p                  length of p                 length of p
==========  ===========================  ==========================  =================

``standard`` is what JMRTD does (``Util.i2os``; BouncyCastle pads K);
``openpace`` is libeac (``BN_bn2bin``, ``DH_compute_key``); ``padded`` is
what this library's terminal did before.
"""

from __future__ import annotations

import enum

import attrs

from macnss_auth.clock import RandomSource
from macnss_auth.nfc import tlv
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.domain_params import standardized
from macnss_auth.nfc.pace import primitives as pm
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.securityinfos import PaceInfo


class Convention(enum.Enum):
    STANDARD = "standard"
    OPENPACE = "openpace"
    PADDED = "padded"


@attrs.frozen
class PeerRun:
    """What one run of the peer saw (leading zeros are on the fixed-length forms)."""

    status_word: int
    chip_token_ok: bool
    terminal_key_zero: bool
    chip_key_zero: bool
    secret_zero: bool

    @property
    def ok(self) -> bool:
        return self.status_word == 0x9000 and self.chip_token_ok


def _zero(domain: pm.DhDomain, value: bytes) -> bool:
    return int.from_bytes(value, "big") < 1 << (8 * (domain.group.byte_length - 1))


def run_peer(
    transport: Transport,
    password: pm.PacePassword,
    info: PaceInfo,
    *,
    random: RandomSource,
    convention: Convention,
) -> PeerRun:
    """PACE DH-GM from the terminal side, by hand, in ``convention``."""
    assert info.parameter_id is not None
    protocol = info.protocol
    cipher, bits = protocol.cipher, protocol.key_bits
    base = pm.base_domain(standardized(info.parameter_id))
    assert isinstance(base, pm.DhDomain)
    length = base.group.byte_length
    pad = convention is Convention.PADDED

    def encode(value: bytes) -> bytes:
        return value.rjust(length, b"\x00") if pad else value

    def exchange(objects: bytes, *, last: bool) -> tuple[dict[int, bytes], int]:
        command = CommandAPDU(
            0x00 if last else 0x10, 0x86, 0, 0, data=tlv.encode_tlv(0x7C, objects), ne=256
        )
        response = ResponseAPDU.from_bytes(transport.transceive(command.to_bytes()))
        if not response.ok:
            return {}, response.sw
        outer, _ = tlv.parse_one(response.data)
        return {item.tag: item.value for item in tlv.parse_all(outer.value)}, response.sw

    mse = tlv.encode_tlv(0x80, protocol.der_value) + tlv.encode_tlv(
        0x83, bytes([pm.password_reference(password)])
    )
    answer = ResponseAPDU.from_bytes(
        transport.transceive(CommandAPDU(0x00, 0x22, 0xC1, 0xA4, data=mse).to_bytes())
    )
    assert answer.ok, hex(answer.sw)
    objects, _ = exchange(b"", last=False)
    k_pi = pm.password_key(password, cipher, bits)
    nonce = pm.decrypt_nonce(cipher, k_pi, objects[0x80])
    mapping_key = pm.generate_private_key(base, random)
    objects, _ = exchange(
        tlv.encode_tlv(0x81, encode(pm.public_key(base, mapping_key))), last=False
    )
    shared = pm.mapping_shared_element(base, mapping_key, objects[0x82])
    domain = pm.generic_mapping(base, nonce, shared)
    assert isinstance(domain, pm.DhDomain)
    private = pm.generate_private_key(domain, random)
    public = pm.public_key(domain, private)
    objects, _ = exchange(tlv.encode_tlv(0x83, encode(public)), last=False)
    chip_public = objects[0x84]
    secret = pm.shared_secret(domain, private, chip_public)
    derived = pm.strip_shared_secret(secret) if convention is Convention.OPENPACE else secret
    keys = pm.session_keys(derived, cipher, bits)
    token = pm.authentication_token(protocol, keys, domain, chip_public, fixed_length=pad)
    objects, status = exchange(tlv.encode_tlv(0x85, token), last=True)
    expected = pm.authentication_token(protocol, keys, domain, public, fixed_length=pad)
    return PeerRun(
        status_word=status,
        chip_token_ok=objects.get(0x86) == expected,
        terminal_key_zero=_zero(domain, public),
        chip_key_zero=_zero(domain, chip_public),
        secret_zero=secret[0] == 0,
    )

"""OpenPACE (libeac) through ctypes: an independent PACE peer for interoperability tests.

libeac's PACE API is symmetric: one ``EAC_CTX`` per party, initialized from
EF.CardAccess, then ``PACE_STEP1_enc_nonce`` (chip) or ``PACE_STEP2_dec_nonce``
(terminal), and the same STEP3A-3D calls on both sides. :class:`OpenPaceChip`
answers APDUs like a chip; :func:`openpace_terminal` drives a chip over a
transport. Only the Generic Mapping is wired (DH and ECDH). libeac draws its
randomness from OpenSSL, so runs are not reproducible: tests loop until the
case they need occurs.

:func:`load` returns ``None`` when libeac3 is not installed (the caller skips).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

import attrs

from macnss_auth.nfc import tlv
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.securityinfos import PaceInfo

LIBEAC = "libeac.so.3"
# enum s_type in eac/pace.h.
PACE_MRZ, PACE_CAN, PACE_PIN, PACE_PUK = 1, 2, 3, 4


class _BufMem(ctypes.Structure):
    # OpenSSL's struct buf_mem_st.
    _fields_ = (
        ("length", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("max", ctypes.c_size_t),
        ("flags", ctypes.c_ulong),
    )


_BUF = ctypes.POINTER(_BufMem)


@attrs.frozen
class OpenPace:
    """The loaded libraries with typed signatures."""

    eac: Any
    crypto: Any

    def buffer(self, data: bytes) -> Any:
        buf = self.crypto.BUF_MEM_new()
        if not self.crypto.BUF_MEM_grow(buf, len(data)) and data:
            raise MemoryError("BUF_MEM_grow")
        ctypes.memmove(buf.contents.data, data, len(data))
        buf.contents.length = len(data)
        return buf

    def take(self, buf: Any) -> bytes:
        if not buf:
            raise RuntimeError("libeac returned NULL")
        data = ctypes.string_at(buf.contents.data, buf.contents.length)
        self.crypto.BUF_MEM_free(buf)
        return data

    def context(self, card_access: bytes) -> Any:
        ctx = self.eac.EAC_CTX_new()
        if not ctx or self.eac.EAC_CTX_init_ef_cardaccess(card_access, len(card_access), ctx) != 1:
            raise RuntimeError("EAC_CTX_init_ef_cardaccess failed")
        return ctx

    def secret(self, password: bytes, kind: int) -> Any:
        sec = self.eac.PACE_SEC_new(password, len(password), kind)
        if not sec:
            raise RuntimeError("PACE_SEC_new failed")
        return sec

    def invoke(self, name: str, *args: Any) -> Any:
        """Call a libeac function; ``bytes`` arguments go in as BUF_MEMs, freed after."""
        owned = [self.buffer(arg) for arg in args if isinstance(arg, bytes)]
        buffers = iter(owned)
        converted = [next(buffers) if isinstance(arg, bytes) else arg for arg in args]
        try:
            return getattr(self.eac, name)(*converted)
        finally:
            for buf in owned:
                self.crypto.BUF_MEM_free(buf)

    def call(self, name: str, *args: Any) -> None:
        if self.invoke(name, *args) != 1:
            raise RuntimeError(f"{name} failed")


def load() -> OpenPace | None:
    """libeac and its libcrypto, or ``None`` when libeac is not installed."""
    try:
        eac = ctypes.CDLL(LIBEAC)
    except OSError:
        return None
    crypto = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
    crypto.BUF_MEM_new.restype = _BUF
    crypto.BUF_MEM_grow.argtypes = (_BUF, ctypes.c_size_t)
    crypto.BUF_MEM_grow.restype = ctypes.c_size_t
    crypto.BUF_MEM_free.argtypes = (_BUF,)
    eac.EAC_init.restype = None
    eac.EAC_CTX_new.restype = ctypes.c_void_p
    eac.EAC_CTX_init_ef_cardaccess.argtypes = (ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p)
    eac.EAC_CTX_clear_free.argtypes = (ctypes.c_void_p,)
    eac.EAC_CTX_clear_free.restype = None
    eac.PACE_SEC_new.argtypes = (ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int)
    eac.PACE_SEC_new.restype = ctypes.c_void_p
    eac.PACE_SEC_clear_free.argtypes = (ctypes.c_void_p,)
    eac.PACE_SEC_clear_free.restype = None
    for name in (
        "PACE_STEP1_enc_nonce",
        "PACE_STEP3A_generate_mapping_data",
        "PACE_STEP3B_generate_ephemeral_key",
    ):
        getattr(eac, name).restype = _BUF
    eac.PACE_STEP1_enc_nonce.argtypes = (ctypes.c_void_p, ctypes.c_void_p)
    eac.PACE_STEP3A_generate_mapping_data.argtypes = (ctypes.c_void_p,)
    eac.PACE_STEP3B_generate_ephemeral_key.argtypes = (ctypes.c_void_p,)
    eac.PACE_STEP2_dec_nonce.argtypes = (ctypes.c_void_p, ctypes.c_void_p, _BUF)
    eac.PACE_STEP3A_map_generator.argtypes = (ctypes.c_void_p, _BUF)
    eac.PACE_STEP3B_compute_shared_secret.argtypes = (ctypes.c_void_p, _BUF)
    eac.PACE_STEP3C_derive_keys.argtypes = (ctypes.c_void_p,)
    eac.PACE_STEP3D_compute_authentication_token.argtypes = (ctypes.c_void_p, _BUF)
    eac.PACE_STEP3D_compute_authentication_token.restype = _BUF
    eac.PACE_STEP3D_verify_authentication_token.argtypes = (ctypes.c_void_p, _BUF)
    eac.EAC_init()
    return OpenPace(eac, crypto)


def card_access(info: PaceInfo) -> bytes:
    """EF.CardAccess with one PACEInfo (ICAO 9303-11 §9.2.1)."""
    assert info.parameter_id is not None
    body = (
        tlv.encode_tlv(0x06, info.protocol.der_value)
        + tlv.encode_tlv(0x02, bytes([info.version]))
        + tlv.encode_tlv(0x02, bytes([info.parameter_id]))
    )
    return tlv.encode_tlv(0x31, tlv.encode_tlv(0x30, body))


def _dynamic(tag: int, value: bytes) -> bytes:
    return tlv.encode_tlv(0x7C, tlv.encode_tlv(tag, value))


def _objects(data: bytes) -> dict[int, bytes]:
    outer, _ = tlv.parse_one(data)
    return {item.tag: item.value for item in tlv.parse_all(outer.value)}


class OpenPaceChip:
    """A chip whose PACE is libeac's: a transport for :func:`macnss_auth.nfc.protocol.run`.

    Attributes:
        chip_public_key: libeac's ephemeral public value as it sent it.
        shared_secret: never visible; only the outcome of each step is.
    """

    def __init__(self, lib: OpenPace, info: PaceInfo, password: bytes, kind: int) -> None:
        self.lib = lib
        self.info = info
        self.ctx = lib.context(card_access(info))
        self.sec = lib.secret(password, kind)
        self.step = -2  # -2: the context is fresh; -1: between runs
        self.terminal_public_key = b""
        self.chip_public_key = b""

    def close(self) -> None:
        self.lib.eac.PACE_SEC_clear_free(self.sec)
        self.lib.eac.EAC_CTX_clear_free(self.ctx)

    def transceive(self, raw: bytes) -> bytes:
        command = CommandAPDU.from_bytes(raw)
        lib = self.lib
        if command.ins == 0x22:
            if self.step != -2:
                # A new run: a fresh libeac context (the old one holds the old keys).
                lib.eac.EAC_CTX_clear_free(self.ctx)
                self.ctx = lib.context(card_access(self.info))
            self.step = 0
            return b"\x90\x00"
        objects = _objects(command.data)
        try:
            if self.step == 0:
                reply = _dynamic(0x80, lib.take(lib.eac.PACE_STEP1_enc_nonce(self.ctx, self.sec)))
            elif self.step == 1:
                mine = lib.take(lib.eac.PACE_STEP3A_generate_mapping_data(self.ctx))
                lib.call("PACE_STEP3A_map_generator", self.ctx, objects[0x81])
                reply = _dynamic(0x82, mine)
            elif self.step == 2:
                self.chip_public_key = lib.take(
                    lib.eac.PACE_STEP3B_generate_ephemeral_key(self.ctx)
                )
                self.terminal_public_key = objects[0x83]
                lib.call("PACE_STEP3B_compute_shared_secret", self.ctx, objects[0x83])
                lib.call("PACE_STEP3C_derive_keys", self.ctx)
                reply = _dynamic(0x84, self.chip_public_key)
            else:
                verify = "PACE_STEP3D_verify_authentication_token"
                if lib.invoke(verify, self.ctx, objects[0x85]) != 1:
                    self.step = -1
                    return b"\x63\x00"
                answer = lib.invoke(
                    "PACE_STEP3D_compute_authentication_token", self.ctx, self.terminal_public_key
                )
                reply = _dynamic(0x86, lib.take(answer))
        except RuntimeError:
            self.step = -1
            return b"\x6a\x80"
        self.step = self.step + 1 if self.step < 3 else -1
        return reply + b"\x90\x00"


@attrs.frozen
class TerminalRun:
    """What libeac's terminal saw: the status word of the last step and both keys."""

    status_word: int
    chip_token_ok: bool
    terminal_public_key: bytes
    chip_public_key: bytes

    @property
    def ok(self) -> bool:
        return self.status_word == 0x9000 and self.chip_token_ok


def openpace_terminal(
    lib: OpenPace, transport: Transport, info: PaceInfo, password: bytes, kind: int
) -> TerminalRun:
    """Run libeac's terminal side of PACE-GM against a chip over ``transport``."""
    ctx = lib.context(card_access(info))
    sec = lib.secret(password, kind)

    def exchange(objects: bytes, *, last: bool) -> tuple[dict[int, bytes], int]:
        command = CommandAPDU(
            0x00 if last else 0x10, 0x86, 0, 0, data=tlv.encode_tlv(0x7C, objects), ne=256
        )
        response = ResponseAPDU.from_bytes(transport.transceive(command.to_bytes()))
        return (_objects(response.data) if response.ok else {}), response.sw

    try:
        mse = tlv.encode_tlv(0x80, info.protocol.der_value) + tlv.encode_tlv(0x83, bytes([kind]))
        answer = transport.transceive(CommandAPDU(0x00, 0x22, 0xC1, 0xA4, data=mse).to_bytes())
        assert ResponseAPDU.from_bytes(answer).ok
        objects, _ = exchange(b"", last=False)
        lib.call("PACE_STEP2_dec_nonce", ctx, sec, objects[0x80])
        mine = lib.take(lib.eac.PACE_STEP3A_generate_mapping_data(ctx))
        objects, _ = exchange(tlv.encode_tlv(0x81, mine), last=False)
        lib.call("PACE_STEP3A_map_generator", ctx, objects[0x82])
        public = lib.take(lib.eac.PACE_STEP3B_generate_ephemeral_key(ctx))
        objects, _ = exchange(tlv.encode_tlv(0x83, public), last=False)
        chip_public = objects[0x84]
        lib.call("PACE_STEP3B_compute_shared_secret", ctx, chip_public)
        lib.call("PACE_STEP3C_derive_keys", ctx)
        token = lib.take(lib.invoke("PACE_STEP3D_compute_authentication_token", ctx, chip_public))
        objects, status = exchange(tlv.encode_tlv(0x85, token), last=True)
        ok = (
            status == 0x9000
            and lib.invoke("PACE_STEP3D_verify_authentication_token", ctx, objects[0x86]) == 1
        )
        return TerminalRun(status, ok, public, chip_public)
    finally:
        lib.eac.PACE_SEC_clear_free(sec)
        lib.eac.EAC_CTX_clear_free(ctx)

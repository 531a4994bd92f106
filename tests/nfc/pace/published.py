"""Published PACE chips: the ICAO 9303-11 worked examples and a recorded German card, as peers.

An independent oracle for the terminal: every chip answer here was published
by others (ICAO Doc 9303 Part 11 Appendices G.1, G.2, H.1, H.2; a German ID
card's answers recorded by gmrtd), none computed by this library. With the
terminal's published random values injected (``ScriptedRandom``), the terminal
must send what the example's terminal sent and accept what its chip answered.

* G.1 (ECDH-GM, brainpoolP256r1) and the German card (ECDH-CAM) give whole
  APDUs: each command is checked byte for byte.
* G.2 (DH-GM, 1024-bit MODP), H.1 (ECDH-IM) and H.2 (DH-IM) give the values
  only: the chip's answers are framed per 9303-11 §4.4.4 (``7C`` with ``80``,
  ``82``, ``84``, ``86``), and the commands' data objects checked where the
  example gives them (terminal mapping data, ephemeral key, token).

The sources and sections of each file are in ``tests/vectors/icao9303/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from macnss_auth.nfc import domain_params as dp
from macnss_auth.nfc import tlv
from macnss_auth.nfc.apdu import CommandAPDU
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pace import PaceTerminal
from macnss_auth.nfc.securityinfos import PaceInfo, PaceOid
from macnss_auth.testing import ScriptedRandom

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "icao9303"
OK = b"\x90\x00"

__all__ = ["PUBLISHED", "PublishedCard", "PublishedRun"]


def _load(name: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    data = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    values = {
        e["name"]: bytes.fromhex(e["hex"]) if "hex" in e else e["ascii"].encode("ascii")
        for e in data["entries"]
    }
    return data, values


def _ga(tag: int, value: bytes) -> bytes:
    return tlv.encode_tlv(0x7C, tlv.encode_tlv(tag, value)) + OK


def _objects(command: bytes) -> dict[int, bytes]:
    outer, _ = tlv.parse_one(CommandAPDU.from_bytes(command).data)
    return {item.tag: item.value for item in tlv.parse_all(outer.value)} if outer.value else {}


#: A check of one terminal command: the whole APDU, or the data objects the example gives.
Check = Callable[[bytes], bool]


@attrs.frozen
class PublishedRun:
    """One published PACE run: the terminal's inputs and the chip's side of the exchange."""

    name: str
    info: PaceInfo
    password: MrzKey | CAN
    random_values: tuple[bytes, ...] = attrs.field(repr=False)
    exchange: tuple[tuple[Check, bytes], ...] = attrs.field(repr=False)
    k_enc: bytes = attrs.field(repr=False)
    k_mac: bytes = attrs.field(repr=False)
    send_parameter_id: bool = True

    def terminal(self) -> PaceTerminal:
        """A terminal with the example's random values, as its terminal ran."""
        return PaceTerminal(
            self.password,
            self.info,
            random=ScriptedRandom(*self.random_values),
            send_parameter_id=self.send_parameter_id,
        )

    def card(self) -> PublishedCard:
        """The example's chip: checks each command, answers what was published."""
        return PublishedCard(list(self.exchange))


class PublishedCard:
    """A transport that checks each command against the example and plays the chip's answer."""

    def __init__(self, exchange: list[tuple[Check, bytes]]) -> None:
        self.exchange = exchange
        self.sent: list[bytes] = []

    def transceive(self, command: bytes) -> bytes:
        check, response = self.exchange.pop(0)
        self.sent.append(command)
        assert check(command), command.hex()
        return response


def _exactly(expected: bytes) -> Check:
    return lambda command: command.hex().upper() == expected.hex().upper()


def _has(tag: int, value: bytes) -> Check:
    return lambda command: _objects(command).get(tag) == value


def _empty(command: bytes) -> bool:
    return _objects(command) == {}  # GA 1: 7C 00


def _mrz(v: dict[str, bytes], suffix: str = "") -> MrzKey:
    return MrzKey(
        v[f"document number{suffix}"].decode(),
        v[f"date of birth{suffix}"].decode(),
        v[f"date of expiry{suffix}"].decode(),
    )


def _g1() -> PublishedRun:
    _, v = _load("pace_ecdh_gm_brainpoolP256r1_9303p11_G1.json")
    return PublishedRun(
        name="9303-11 G.1 ECDH-GM",
        info=PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13),
        password=MrzKey(
            v["document number (check digit 3)"].decode(),
            v["date of birth (check digit 5)"].decode(),
            v["date of expiry (check digit 8)"].decode(),
        ),
        random_values=(v["terminal mapping private key"], v["terminal ephemeral private key"]),
        exchange=(
            (
                _exactly(
                    v["MSE:Set AT command APDU (OID, 83 01 01 = MRZ, 84 01 0D = parameterId)"]
                ),
                OK,
            ),
            (
                _exactly(v["GENERAL AUTHENTICATE #1 command (chained, CLA 10)"]),
                v["GENERAL AUTHENTICATE #1 response"],
            ),
            (
                _exactly(v["GENERAL AUTHENTICATE #2 command (81 = terminal mapping data)"]),
                v["GENERAL AUTHENTICATE #2 response (82 = chip mapping data)"],
            ),
            (
                _exactly(v["GENERAL AUTHENTICATE #3 command (83 = terminal ephemeral key)"]),
                v["GENERAL AUTHENTICATE #3 response (84 = chip ephemeral key)"],
            ),
            (
                _exactly(v["GENERAL AUTHENTICATE #4 command (last in chain, CLA 00; 85 = T_PCD)"]),
                v["GENERAL AUTHENTICATE #4 response (86 = T_PICC)"],
            ),
        ),
        k_enc=v["KS_enc = SHA-1(K||00000001)[0:16]"],
        k_mac=v["KS_mac = SHA-1(K||00000002)[0:16]"],
    )


def _framed(
    name: str,
    file: str,
    *,
    info: PaceInfo,
    password: Callable[[dict[str, bytes]], MrzKey | CAN],
    random_values: Callable[[dict[str, bytes]], tuple[bytes, ...]],
    mapping: Callable[[dict[str, bytes]], tuple[bytes, bytes]],
) -> PublishedRun:
    _, v = _load(file)
    terminal_mapping, chip_mapping = mapping(v)
    return PublishedRun(
        name=name,
        info=info,
        password=password(v),
        random_values=random_values(v),
        exchange=(
            (lambda command: CommandAPDU.from_bytes(command).ins == 0x22, OK),
            (_empty, _ga(0x80, v["encrypted nonce z"])),
            (_has(0x81, terminal_mapping), _ga(0x82, chip_mapping)),
            (
                _has(0x83, v["terminal ephemeral public key"]),
                _ga(0x84, v["chip ephemeral public key"]),
            ),
            (
                _has(0x85, v["T_IFD (terminal token over the chip ephemeral key)"]),
                _ga(0x86, v["T_IC (chip token over the terminal ephemeral key)"]),
            ),
        ),
        k_enc=v["KS_enc"],
        k_mac=v["KS_mac"],
    )


def _h2_private(v: dict[str, bytes]) -> tuple[bytes, ...]:
    # The published key has 1024 bits; g~ has order q, so the key mod q is equivalent.
    private = int.from_bytes(v["terminal ephemeral private key"], "big") % dp.MODP_1024_160.q
    return (v["nonce t"], private.to_bytes(20, "big"))


def _german_cam() -> PublishedRun:
    data, v = _load("pace_ecdh_cam_brainpoolP256r1_gmrtd_de.json")
    return PublishedRun(
        name="German ID card ECDH-CAM (gmrtd)",
        info=PaceInfo(PaceOid.ECDH_CAM_AES_CBC_CMAC_128, 2, 13),
        password=_mrz(v),
        random_values=(v["terminal mapping private key"], v["terminal ephemeral private key"]),
        exchange=tuple(
            (_exactly(bytes.fromhex(x["command"])), bytes.fromhex(x["response"]))
            for x in data["exchange"]
        ),
        k_enc=v["KS_enc"],
        k_mac=v["KS_mac"],
        # The chip was driven without DO 84 in MSE:Set AT.
        send_parameter_id=False,
    )


PUBLISHED: dict[str, PublishedRun] = {
    "G1": _g1(),
    "G2": _framed(
        "9303-11 G.2 DH-GM",
        "pace_dh_gm_modp1024_9303p11_G2.json",
        info=PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_128, 2, 0),
        password=_mrz,
        random_values=lambda v: (
            v["terminal mapping private key"],
            v["terminal ephemeral private key"],
        ),
        mapping=lambda v: (v["terminal mapping public key"], v["chip mapping public key"]),
    ),
    "H1": _framed(
        "9303-11 H.1 ECDH-IM",
        "pace_ecdh_im_brainpoolP256r1_9303p11_H1.json",
        info=PaceInfo(PaceOid.ECDH_IM_AES_CBC_CMAC_128, 2, 13),
        password=lambda v: CAN(v["CAN"].decode()),
        random_values=lambda v: (v["nonce t"], v["terminal ephemeral private key"]),
        mapping=lambda v: (v["nonce t"], b""),
    ),
    "H2": _framed(
        "9303-11 H.2 DH-IM",
        "pace_dh_im_modp1024_9303p11_H2.json",
        info=PaceInfo(PaceOid.DH_IM_AES_CBC_CMAC_128, 2, 0),
        password=lambda v: CAN(v["CAN"].decode()),
        random_values=_h2_private,
        mapping=lambda v: (v["nonce t"], b""),
    ),
    "DE-CAM": _german_cam(),
}

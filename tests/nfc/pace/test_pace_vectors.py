"""Published PACE worked examples and recorded chips, replayed through the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms

from macnss_auth.errors import DocumentNotGenuine
from macnss_auth.nfc import domain_params as dp
from macnss_auth.nfc import tlv
from macnss_auth.nfc.apdu import CommandAPDU
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.ec import encode_point
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pace import (
    DhDomain,
    EcDomain,
    PaceTerminal,
    base_domain,
    decrypt_nonce,
    encrypt_nonce,
    integrated_mapping,
    mapping_shared_element,
    password_key,
    pseudo_random_number,
    public_key,
    select_pace_info,
)
from macnss_auth.nfc.protocol import run
from macnss_auth.nfc.securityinfos import (
    ChipAuthenticationPublicKeyInfo,
    PaceInfo,
    PaceOid,
    parse_security_infos,
)
from macnss_auth.testing import ScriptedRandom

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "icao9303"


def _load(name: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    data = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    values = {
        e["name"]: bytes.fromhex(e["hex"]) if "hex" in e else e["ascii"].encode("ascii")
        for e in data["entries"]
    }
    return data, values


class Replay:
    """A transport that checks each command against the recording and plays the response."""

    def __init__(self, exchange: list[tuple[bytes, bytes]]) -> None:
        self.exchange = list(exchange)
        self.sent: list[bytes] = []

    def transceive(self, command: bytes) -> bytes:
        expected, response = self.exchange.pop(0)
        self.sent.append(command)
        assert command.hex().upper() == expected.hex().upper()
        return response


# --- ICAO 9303-11 Appendix G.1: ECDH-GM, the full APDU exchange --------------------------


def test_g1_ecdh_gm_full_apdu_exchange() -> None:
    _, v = _load("pace_ecdh_gm_brainpoolP256r1_9303p11_G1.json")
    (info,) = parse_security_infos(v["EF.CardAccess as used in gmrtd test (SET OF wrapper added)"])
    assert isinstance(info, PaceInfo)
    assert select_pace_info([info]) == info
    password = MrzKey(
        v["document number (check digit 3)"].decode(),
        v["date of birth (check digit 5)"].decode(),
        v["date of expiry (check digit 8)"].decode(),
    )
    assert password.information == v["MRZ password input = docno+cd||dob+cd||doe+cd"]
    random = ScriptedRandom(v["terminal mapping private key"], v["terminal ephemeral private key"])
    terminal = PaceTerminal(password, info, random=random)
    transport = Replay(
        [
            (
                v["MSE:Set AT command APDU (OID, 83 01 01 = MRZ, 84 01 0D = parameterId)"],
                b"\x90\x00",
            ),
            (
                v["GENERAL AUTHENTICATE #1 command (chained, CLA 10)"],
                v["GENERAL AUTHENTICATE #1 response"],
            ),
            (
                v["GENERAL AUTHENTICATE #2 command (81 = terminal mapping data)"],
                v["GENERAL AUTHENTICATE #2 response (82 = chip mapping data)"],
            ),
            (
                v["GENERAL AUTHENTICATE #3 command (83 = terminal ephemeral key)"],
                v["GENERAL AUTHENTICATE #3 response (84 = chip ephemeral key)"],
            ),
            (
                v["GENERAL AUTHENTICATE #4 command (last in chain, CLA 00; 85 = T_PCD)"],
                v["GENERAL AUTHENTICATE #4 response (86 = T_PICC)"],
            ),
        ]
    )
    result = run(terminal, transport)
    assert not transport.exchange
    assert random.remaining == 0
    assert result.keys.cipher is SymmetricCipher.AES
    assert result.keys.k_enc == v["KS_enc = SHA-1(K||00000001)[0:16]"]
    assert result.keys.k_mac == v["KS_mac = SHA-1(K||00000002)[0:16]"]
    assert result.ssc == 0
    assert result.secure_channel().ssc == v["SSC after PACE (AES, 16 bytes)"]
    assert (
        result.chip_public_key
        == b"\x04" + v["chip ephemeral public key X"] + v["chip ephemeral public key Y"]
    )
    assert result.password_reference == 1
    assert result.chip_authentication_data is None
    assert "redacted" in repr(result)


def test_g1_pure_functions() -> None:
    _, v = _load("pace_ecdh_gm_brainpoolP256r1_9303p11_G1.json")
    cipher = SymmetricCipher.AES
    k_pi = v["K_pi = SHA-1(pi||00000003)[0:16]"]
    nonce = v["nonce s = AES-CBC-decrypt(K_pi, IV=0, z)"]
    assert decrypt_nonce(cipher, k_pi, v["encrypted nonce z"]) == nonce
    assert encrypt_nonce(cipher, k_pi, nonce) == v["encrypted nonce z"]
    base = base_domain(dp.BRAINPOOLP256R1)
    chip_key = int.from_bytes(v["chip mapping private key"], "big")
    terminal_public = (
        b"\x04" + v["terminal mapping public key X"] + v["terminal mapping public key Y"]
    )
    # The card's side of the mapping gives the same H as the terminal's.
    h = mapping_shared_element(base, chip_key, terminal_public)
    assert h.x.to_bytes(32, "big") == v["shared point H X"]  # type: ignore[union-attr]
    assert public_key(base, chip_key)[1:33] == v["chip mapping public key X"]


# --- Appendix G.2: DH-GM; H.1: ECDH-IM; H.2: DH-IM -----------------------------------------


def _ga_response(tag: int, value: bytes) -> bytes:
    return tlv.encode_tlv(0x7C, tlv.encode_tlv(tag, value) if tag else b"") + b"\x90\x00"


def _run_framed(terminal: PaceTerminal, responses: list[bytes]) -> tuple[list[bytes], PaceTerminal]:
    commands = []
    for response in [b"\x90\x00", *responses]:
        commands.append(terminal.next_command())
        terminal.receive_response(response)
    return commands, terminal


def _ga_objects(command: bytes) -> dict[int, bytes]:
    # Commands here are short (ECDH) or extended (DH-1024 fits short too): data after Lc.
    data = (
        command[5 : 5 + command[4]]
        if command[4]
        else command[7 : 7 + int.from_bytes(command[5:7], "big")]
    )
    outer, _ = tlv.parse_one(data)
    return {item.tag: item.value for item in tlv.parse_all(outer.value)}


def test_g2_dh_generic_mapping() -> None:
    _, v = _load("pace_dh_gm_modp1024_9303p11_G2.json")
    password = MrzKey(
        v["document number"].decode(), v["date of birth"].decode(), v["date of expiry"].decode()
    )
    assert password_key(password, SymmetricCipher.AES, 128) == v["K_pi"]
    base = base_domain(dp.MODP_1024_160)
    assert isinstance(base, DhDomain)
    mapping_key = int.from_bytes(v["terminal mapping private key"], "big")
    assert public_key(base, mapping_key) == v["terminal mapping public key"]
    h = mapping_shared_element(base, mapping_key, v["chip mapping public key"])
    assert h == int.from_bytes(v["shared element h"], "big")

    info = PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_128, 2, 0)
    random = ScriptedRandom(v["terminal mapping private key"], v["terminal ephemeral private key"])
    commands, terminal = _run_framed(
        PaceTerminal(password, info, random=random),
        [
            _ga_response(0x80, v["encrypted nonce z"]),
            _ga_response(0x82, v["chip mapping public key"]),
            _ga_response(0x84, v["chip ephemeral public key"]),
            _ga_response(0x86, v["T_IC (chip token over the terminal ephemeral key)"]),
        ],
    )
    assert commands[0].hex().upper() == "0022C1A412800A04007F00070202040102830101840100"
    assert _ga_objects(commands[2])[0x81] == v["terminal mapping public key"]
    assert _ga_objects(commands[3])[0x83] == v["terminal ephemeral public key"]
    assert _ga_objects(commands[4])[0x85] == v["T_IFD (terminal token over the chip ephemeral key)"]
    result = terminal.result
    assert result.keys.k_enc == v["KS_enc"]
    assert result.keys.k_mac == v["KS_mac"]


def test_h1_ecdh_integrated_mapping() -> None:
    _, v = _load("pace_ecdh_im_brainpoolP256r1_9303p11_H1.json")
    can = CAN(v["CAN"].decode())
    assert password_key(can, SymmetricCipher.AES, 128) == v["K_pi"]
    curve = dp.BRAINPOOLP256R1
    r = pseudo_random_number(v["nonce s"], v["nonce t"], SymmetricCipher.AES, 128, curve.p)
    assert r == int.from_bytes(v["R_p(s,t)"], "big")
    mapped = integrated_mapping(
        base_domain(curve), v["nonce s"], v["nonce t"], SymmetricCipher.AES, 128
    )
    assert isinstance(mapped, EcDomain)
    assert encode_point(curve, mapped.generator) == v["mapped generator G~"]

    info = PaceInfo(PaceOid.ECDH_IM_AES_CBC_CMAC_128, 2, 13)
    random = ScriptedRandom(v["nonce t"], v["terminal ephemeral private key"])
    commands, terminal = _run_framed(
        PaceTerminal(can, info, random=random),
        [
            _ga_response(0x80, v["encrypted nonce z"]),
            _ga_response(0x82, b""),
            _ga_response(0x84, v["chip ephemeral public key"]),
            _ga_response(0x86, v["T_IC (chip token over the terminal ephemeral key)"]),
        ],
    )
    assert commands[0].hex().upper() == "0022C1A412800A04007F0007020204040283010284010D"
    assert _ga_objects(commands[2])[0x81] == v["nonce t"]
    assert _ga_objects(commands[3])[0x83] == v["terminal ephemeral public key"]
    assert _ga_objects(commands[4])[0x85] == v["T_IFD (terminal token over the chip ephemeral key)"]
    assert terminal.result.keys.k_enc == v["KS_enc"]
    assert terminal.result.keys.k_mac == v["KS_mac"]


def test_h2_dh_integrated_mapping() -> None:
    _, v = _load("pace_dh_im_modp1024_9303p11_H2.json")
    can = CAN(v["CAN"].decode())
    group = dp.MODP_1024_160
    r = pseudo_random_number(v["nonce s"], v["nonce t"], SymmetricCipher.AES, 128, group.p)
    assert r == int.from_bytes(v["R_p(s,t)"], "big")
    mapped = integrated_mapping(
        base_domain(group), v["nonce s"], v["nonce t"], SymmetricCipher.AES, 128
    )
    assert isinstance(mapped, DhDomain)
    assert mapped.generator == int.from_bytes(v["mapped generator g~"], "big")
    # The published key has 1024 bits; g~ has order q, so the key mod q is equivalent.
    private = int.from_bytes(v["terminal ephemeral private key"], "big") % group.q
    info = PaceInfo(PaceOid.DH_IM_AES_CBC_CMAC_128, 2, 0)
    random = ScriptedRandom(v["nonce t"], private.to_bytes(20, "big"))
    commands, terminal = _run_framed(
        PaceTerminal(can, info, random=random),
        [
            _ga_response(0x80, v["encrypted nonce z"]),
            _ga_response(0x82, b""),
            _ga_response(0x84, v["chip ephemeral public key"]),
            _ga_response(0x86, v["T_IC (chip token over the terminal ephemeral key)"]),
        ],
    )
    assert _ga_objects(commands[3])[0x83] == v["terminal ephemeral public key"]
    assert _ga_objects(commands[4])[0x85] == v["T_IFD (terminal token over the chip ephemeral key)"]
    assert terminal.result.keys.k_enc == v["KS_enc"]
    assert terminal.result.keys.k_mac == v["KS_mac"]


# --- Real chips recorded by gmrtd ----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "pace_ecdh_gm_3des_brainpoolP256r1_gmrtd_nz.json",
        "pace_ecdh_cam_brainpoolP256r1_gmrtd_de.json",
    ],
)
def test_recorded_chips_replay_byte_for_byte(name: str) -> None:
    data, v = _load(name)
    infos = parse_security_infos(v["EF.CardAccess"])
    info = select_pace_info(infos)
    password = MrzKey(
        v["document number"].decode(), v["date of birth"].decode(), v["date of expiry"].decode()
    )
    random = ScriptedRandom(v["terminal mapping private key"], v["terminal ephemeral private key"])
    # These chips were driven without DO 84 in MSE:Set AT.
    terminal = PaceTerminal(password, info, random=random, send_parameter_id=False)
    transport = Replay(
        [(bytes.fromhex(x["command"]), bytes.fromhex(x["response"])) for x in data["exchange"]]
    )
    result = run(terminal, transport)
    assert result.keys.k_enc == v["KS_enc"]
    assert result.keys.k_mac == v["KS_mac"]
    if "cam" in name:
        assert result.protocol is PaceOid.ECDH_CAM_AES_CBC_CMAC_128
        assert result.chip_authentication_data is not None
        assert len(result.chip_authentication_data) == 32
    else:
        assert result.keys.cipher is SymmetricCipher.TDES


def test_recorded_german_card_cam_verifies_with_its_card_security() -> None:
    """PACE-CAM end to end on a real chip: read EF.CardSecurity over SM, check the mapping."""
    data, v = _load("pace_ecdh_cam_brainpoolP256r1_gmrtd_de.json")
    info = select_pace_info(parse_security_infos(v["EF.CardAccess"]))
    password = MrzKey(
        v["document number"].decode(), v["date of birth"].decode(), v["date of expiry"].decode()
    )
    random = ScriptedRandom(v["terminal mapping private key"], v["terminal ephemeral private key"])
    terminal = PaceTerminal(password, info, random=random, send_parameter_id=False)
    result = run(
        terminal,
        Replay(
            [(bytes.fromhex(x["command"]), bytes.fromhex(x["response"])) for x in data["exchange"]]
        ),
    )
    # Continue the session as the recording did: SELECT EF.CardSecurity, READ BINARY.
    channel = result.secure_channel()
    commands = [CommandAPDU(0x00, 0xA4, 0x02, 0x0C, data=b"\x01\x1d")]
    commands.append(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=4))
    commands.extend(
        CommandAPDU(0x00, 0xB0, offset >> 8, offset & 0xFF, ne=74 if offset == 0x6FC else 256)
        for offset in range(4, 0x6FC + 1, 223)
    )
    file = b""
    for command, recorded in zip(commands, data["secure_messaging_after_pace"], strict=True):
        assert channel.protect(command).hex().upper() == recorded["command"]
        response = channel.unprotect(bytes.fromhex(recorded["response"]))
        assert response.ok
        if command.ins == 0xB0:
            file += response.data
    assert len(file) == 1862
    content = cms.ContentInfo.load(file)["content"]["encap_content_info"]
    assert content["content_type"].dotted == "0.4.0.127.0.7.3.2.1"  # id-SecurityObject
    infos = parse_security_infos(bytes(content["content"].contents))
    keys = {i.key_id: i for i in infos if isinstance(i, ChipAuthenticationPublicKeyInfo)}
    assert set(keys) == {13, 72}
    assert keys[13].group is dp.BRAINPOOLP256R1
    result.verify_chip_authentication(keys[13])
    # The card's other static key (for Chip Authentication proper) does not match.
    with pytest.raises(DocumentNotGenuine):
        result.verify_chip_authentication(keys[72])

"""The card side of the published worked examples, replayed byte for byte.

The card gets the example's randomness (RND.IC and K.IC for BAC; the nonce,
the mapping key and the ephemeral key for PACE) from a ScriptedRandom and
must answer every command exactly as the example's chip did.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from macnss_auth.nfc import ec
from macnss_auth.nfc.apdu import CommandAPDU
from macnss_auth.nfc.card import (
    Access,
    Application,
    CardData,
    CardProfile,
    ChipSecrets,
    DocumentKind,
    ElementaryFile,
    FileSystem,
    VirtualCard,
)
from macnss_auth.nfc.card.filesystem import EF_CARD_ACCESS, EF_COM, LDS1_AID
from macnss_auth.nfc.domain_params import standardized
from macnss_auth.nfc.securityinfos import Mapping, PaceOid
from macnss_auth.nfc.tlv import encode_tlv
from macnss_auth.testing import ScriptedRandom

VECTORS = Path(__file__).parent / "vectors"


def _load(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((VECTORS / name).read_text("utf-8"))
    return data


def _h(value: object) -> bytes:
    assert isinstance(value, str)
    return bytes.fromhex(value)


def _chip_key(name: str) -> bytes:
    entries = _load("pace_chip_private_keys.json")["entries"]
    assert isinstance(entries, list)
    return _h(next(e["hex"] for e in entries if e["name"] == name))


def test_bac_appendix_d_card_side_replays_byte_for_byte() -> None:
    vector = _load("bac_sm_9303p11_appendixD.json")
    bac_entries = vector["bac"]
    sm_entries = vector["secure_messaging"]
    assert isinstance(bac_entries, list)
    assert isinstance(sm_entries, list)
    bac = {e["name"]: e.get("hex", e.get("ascii")) for e in bac_entries}
    ef_com = _h(sm_entries[-1]["hex"])
    files = FileSystem(
        (), (Application(LDS1_AID, (ElementaryFile("EF.COM", EF_COM, 30, ef_com),)),)
    )
    profile = CardProfile("appendix-d", DocumentKind.TD3, bac=True)
    secrets = ChipSecrets(str(bac["MRZ_information (docno+cd, dob+cd, doe+cd)"]))
    random = ScriptedRandom(_h(bac["RND.IC"]), _h(bac["K.IC"]))
    card = VirtualCard(CardData(profile, files, secrets), random=random)

    assert card.process(bytes.fromhex("00A4040C07A0000002471001")) == b"\x90\x00"
    exchanges = [
        (bac["GET CHALLENGE command APDU"], bac["GET CHALLENGE response APDU (RND.IC + SW)"]),
        (
            bac["EXTERNAL AUTHENTICATE command APDU (Lc=28, Le=28)"],
            bac["EXTERNAL AUTHENTICATE response APDU"],
        ),
    ]
    commands = [e["hex"] for e in sm_entries if e.get("name") == "protected command APDU"]
    responses = [e["hex"] for e in sm_entries if e.get("name") == "response APDU"]
    assert len(commands) == len(responses) == 3
    exchanges += list(zip(commands, responses, strict=True))
    for command, response in exchanges:
        assert card.process(_h(command)).hex().upper() == str(response).upper()
    assert card.session == "BAC"
    assert random.remaining == 0


def test_pace_g1_card_side_replays_byte_for_byte() -> None:
    vector = _load("pace_ecdh_gm_brainpoolP256r1_9303p11_G1.json")
    entries = vector["entries"]
    assert isinstance(entries, list)
    e = {x["name"]: x.get("hex", x.get("ascii")) for x in entries}
    chip_ephemeral = _chip_key("G.1 chip ephemeral private key")

    # The injected private key must be the example's: it gives the published public key
    # on the mapped generator.
    curve = standardized(13)
    assert isinstance(curve, ec.Curve)
    mapped = ec.Point(
        int(str(e["mapped generator G~ = s*G + H, X"]), 16),
        int(str(e["mapped generator G~ Y"]), 16),
    )
    public = ec.multiply(curve, int.from_bytes(chip_ephemeral, "big"), mapped)
    assert public is not None
    assert public.x == int(str(e["chip ephemeral public key X"]), 16)

    card_access = _h(e["EF.CardAccess as used in gmrtd test (SET OF wrapper added)"])
    files = FileSystem(
        (ElementaryFile("EF.CardAccess", EF_CARD_ACCESS, 0x1C, card_access, Access.ALWAYS),)
    )
    profile = CardProfile(
        "g1",
        DocumentKind.TD3,
        bac=False,
        pace_protocol=PaceOid.ECDH_GM_AES_CBC_CMAC_128,
        pace_parameter_id=13,
    )
    secrets = ChipSecrets(str(e["MRZ password input = docno+cd||dob+cd||doe+cd"]))
    random = ScriptedRandom(
        _h(e["nonce s = AES-CBC-decrypt(K_pi, IV=0, z)"]),
        _h(e["chip mapping private key"]),
        chip_ephemeral,
    )
    card = VirtualCard(CardData(profile, files, secrets), random=random)
    exchanges = [
        ("MSE:Set AT command APDU (OID, 83 01 01 = MRZ, 84 01 0D = parameterId)", None),
        ("GENERAL AUTHENTICATE #1 command (chained, CLA 10)", "GENERAL AUTHENTICATE #1 response"),
        (
            "GENERAL AUTHENTICATE #2 command (81 = terminal mapping data)",
            "GENERAL AUTHENTICATE #2 response (82 = chip mapping data)",
        ),
        (
            "GENERAL AUTHENTICATE #3 command (83 = terminal ephemeral key)",
            "GENERAL AUTHENTICATE #3 response (84 = chip ephemeral key)",
        ),
        (
            "GENERAL AUTHENTICATE #4 command (last in chain, CLA 00; 85 = T_PCD)",
            "GENERAL AUTHENTICATE #4 response (86 = T_PICC)",
        ),
    ]
    for command, response in exchanges:
        expected = "9000" if response is None else str(e[response]).upper()
        assert card.process(_h(e[command])).hex().upper() == expected
    assert card.session == "PACE"
    assert random.remaining == 0


# (vector file, MRZ information or None for the CAN 123456, domain parameter id, chip keys)
PACE_EXAMPLES = {
    "G.2 DH GM": (
        "pace_dh_gm_modp1024_9303p11_G2.json",
        "T22000129364081251010318",
        0,
        ("G.2 chip mapping private key", "G.2 chip ephemeral private key"),
    ),
    "H.1 ECDH IM": (
        "pace_ecdh_im_brainpoolP256r1_9303p11_H1.json",
        None,
        13,
        ("H.1 chip ephemeral private key",),
    ),
    "H.2 DH IM": (
        "pace_dh_im_modp1024_9303p11_H2.json",
        None,
        0,
        ("H.2 chip ephemeral private key",),
    ),
}


def _public(parameter_id: int, generator: bytes, private: bytes) -> bytes:
    group = standardized(parameter_id)
    scalar = int.from_bytes(private, "big")
    if isinstance(group, ec.Curve):
        point = ec.multiply(group, scalar, ec.decode_point(group, generator))
        assert point is not None
        return ec.encode_point(group, point)
    value = pow(int.from_bytes(generator, "big"), scalar, group.p)
    return value.to_bytes(group.byte_length, "big")


@pytest.mark.parametrize("example", sorted(PACE_EXAMPLES))
def test_pace_dh_and_integrated_mapping_examples_card_side(example: str) -> None:
    """G.2, H.1 and H.2 have no APDU transcript: the commands are built from the
    terminal's published values and the card must answer with the chip's."""
    name, mrz_information, parameter_id, key_names = PACE_EXAMPLES[example]
    entries = _load(name)["entries"]
    assert isinstance(entries, list)
    e = {x["name"]: _h(x["hex"]) for x in entries if "hex" in x}
    protocol = PaceOid(next(x["ascii"] for x in entries if x["name"] == "protocol OID"))
    keys = [_chip_key(key) for key in key_names]
    group = standardized(parameter_id)
    base = (
        ec.encode_point(group, group.generator)
        if isinstance(group, ec.Curve)
        else group.g.to_bytes(group.byte_length, "big")
    )
    integrated = protocol.mapping is Mapping.INTEGRATED
    # The injected keys are the example's: they give its published public keys.
    if not integrated:
        assert _public(parameter_id, base, keys[0]) == e["chip mapping public key"]
    mapped = e["mapped generator G~" if isinstance(group, ec.Curve) else "mapped generator g~"]
    assert _public(parameter_id, mapped, keys[-1]) == e["chip ephemeral public key"]

    profile = CardProfile(
        example,
        DocumentKind.TD1,
        bac=False,
        pace_protocol=protocol,
        pace_parameter_id=parameter_id,
    )
    secrets = ChipSecrets(mrz_information or "T22000129364081251010318", can="123456")
    random = ScriptedRandom(e["nonce s"], *keys)
    card = VirtualCard(CardData(profile, FileSystem(()), secrets), random=random)

    def dynamic(tag: int, value: bytes) -> bytes:
        return encode_tlv(0x7C, encode_tlv(tag, value))

    password = b"\x01" if mrz_information else b"\x02"
    mse = (
        encode_tlv(0x80, protocol.der_value)
        + encode_tlv(0x83, password)
        + encode_tlv(0x84, bytes([parameter_id]))
    )
    mapping = e["nonce t"] if integrated else e["terminal mapping public key"]
    chip_mapping = b"" if integrated else e["chip mapping public key"]
    exchanges = [
        (CommandAPDU(0x00, 0x22, 0xC1, 0xA4, data=mse), b""),
        (
            CommandAPDU(0x10, 0x86, 0, 0, data=b"\x7c\x00", ne=256),
            dynamic(0x80, e["encrypted nonce z"]),
        ),
        (
            CommandAPDU(0x10, 0x86, 0, 0, data=dynamic(0x81, mapping), ne=256),
            dynamic(0x82, chip_mapping),
        ),
        (
            CommandAPDU(
                0x10, 0x86, 0, 0, data=dynamic(0x83, e["terminal ephemeral public key"]), ne=256
            ),
            dynamic(0x84, e["chip ephemeral public key"]),
        ),
        (
            CommandAPDU(
                0x00,
                0x86,
                0,
                0,
                data=dynamic(0x85, e["T_IFD (terminal token over the chip ephemeral key)"]),
                ne=256,
            ),
            dynamic(0x86, e["T_IC (chip token over the terminal ephemeral key)"]),
        ),
    ]
    for command, expected in exchanges:
        assert card.process(command.to_bytes()).hex() == (expected + b"\x90\x00").hex()
    assert card.session == "PACE"
    assert random.remaining == 0

"""The card side of the published worked examples, replayed byte for byte.

The card gets the example's randomness (RND.IC and K.IC for BAC; the nonce,
the mapping key and the ephemeral key for PACE) from a ScriptedRandom and
must answer every command exactly as the example's chip did.
"""

from __future__ import annotations

import json
from pathlib import Path

from macnss_auth.nfc import ec
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
from macnss_auth.nfc.securityinfos import PaceOid
from macnss_auth.testing import ScriptedRandom

VECTORS = Path(__file__).parent / "vectors"


def _load(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((VECTORS / name).read_text("utf-8"))
    return data


def _h(value: object) -> bytes:
    assert isinstance(value, str)
    return bytes.fromhex(value)


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
    extra = _load("pace_g1_chip_ephemeral_key.json")["entries"]
    assert isinstance(extra, list)
    chip_ephemeral = _h(extra[0]["hex"])

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

"""SecurityInfos parsing and encoding: real DG14, published EF.CardAccess, fuzzing."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.errors import MalformedInput
from macnss_auth.nfc import domain_params as dp
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.ec import decode_point, encode_point, multiply
from macnss_auth.nfc.lds import parse_card_access, parse_dg14
from macnss_auth.nfc.securityinfos import (
    ActiveAuthenticationInfo,
    ChipAuthenticationInfo,
    ChipAuthenticationOid,
    ChipAuthenticationPublicKeyInfo,
    KeyAgreement,
    Mapping,
    PaceDomainParameterInfo,
    PaceInfo,
    PaceMappingOid,
    PaceOid,
    PublicKeyOid,
    TerminalAuthenticationInfo,
    UnknownSecurityInfo,
    ec_subject_public_key_info,
    encode_security_infos,
    parse_security_infos,
)

VECTORS = Path(__file__).parent.parent.parent / "vectors"


def test_bsi2008_dg14() -> None:
    infos = parse_dg14((VECTORS / "bsi" / "bsi2008_Datagroup14.bin").read_bytes()).infos
    assert len(infos) == 3
    key = next(i for i in infos if isinstance(i, ChipAuthenticationPublicKeyInfo))
    assert key.protocol is PublicKeyOid.ECDH
    # Explicit parameters in the file, recognised as brainpoolP224r1.
    assert key.group is dp.BRAINPOOLP224R1
    assert len(key.public_key) == 57
    assert key.public_key[0] == 4
    ca = next(i for i in infos if isinstance(i, ChipAuthenticationInfo))
    assert ca.protocol is ChipAuthenticationOid.ECDH_3DES_CBC_CBC
    assert ca.protocol.agreement is KeyAgreement.ECDH
    assert ca.protocol.cipher is SymmetricCipher.TDES
    assert ca.version == 1
    ta = next(i for i in infos if isinstance(i, TerminalAuthenticationInfo))
    assert ta.version == 1
    # Re-encoding gives the same elements (DER order may differ from the file's).
    again = parse_security_infos(encode_security_infos(infos))
    assert set(again) == set(infos)


def test_published_card_access() -> None:
    # gmrtd pace_test.go TestDoPace_CAM_ECDH_DE (a German ID card's EF.CardAccess).
    data = bytes.fromhex(
        "31283012060A04007F0007020204020202010202010D3012060A04007F0007020204060202010202010D"
    )
    infos = parse_security_infos(data)
    assert infos == (
        PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13),
        PaceInfo(PaceOid.ECDH_CAM_AES_CBC_CMAC_128, 2, 13),
    )
    assert encode_security_infos(infos) == data
    assert infos[1].protocol.mapping is Mapping.CHIP_AUTHENTICATION


def test_german_test_card_access_with_padding() -> None:
    # frankmorgner/openpace bindings/ruby/example.rb: EF.CardAccess of a German eID
    # test card (PACE, CA, a DH PACEDomainParameter-free setup, CardInfoLocator), with
    # 38 bytes after the SET as read from the file.
    data = bytes.fromhex(
        "318182300D060804007F00070202020201023012060A04007F00070202030202020102020141"
        "3012060A04007F0007020204020202010202010D301C060904007F000702020302300C060704"
        "007F0007010202010D020141302B060804007F0007020206161F655041202D2042447220476D"
        "6248202D20546573746B617274652076322E3004491715411928800A01B421FA070000000000"
        "00000000000000000000000000201010291010"
    )
    with pytest.raises(MalformedInput):
        parse_security_infos(data)
    infos = parse_card_access(data).infos
    assert PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13) in infos
    assert ChipAuthenticationInfo(ChipAuthenticationOid.ECDH_AES_CBC_CMAC_128, 2, 65) in infos
    ta = [i for i in infos if isinstance(i, TerminalAuthenticationInfo)]
    assert [i.version for i in ta] == [2]
    unknown = {i.protocol for i in infos if isinstance(i, UnknownSecurityInfo)}
    # CardInfoLocator and ChipAuthenticationDomainParameterInfo are kept opaque.
    assert unknown == {"0.4.0.127.0.7.2.2.6", "0.4.0.127.0.7.2.2.3.2"}
    assert parse_card_access(encode_security_infos(infos)).infos == tuple(
        sorted(infos, key=lambda i: encode_security_infos([i]))
    )


def _card_security_content() -> bytes:
    path = VECTORS / "icao9303" / "pace_de_card_security_content.json"
    (entry,) = json.loads(path.read_text(encoding="utf-8"))["entries"]
    return bytes.fromhex(entry["hex"])


def test_german_card_security_with_standardized_domain_parameters() -> None:
    infos = parse_security_infos(_card_security_content())
    keys = [i for i in infos if isinstance(i, ChipAuthenticationPublicKeyInfo)]
    assert sorted(k.key_id or 0 for k in keys) == [13, 72]
    for key in keys:
        # AlgorithmIdentifier {standardizedDomainParameters, 13}: brainpoolP256r1.
        assert key.group is dp.BRAINPOOLP256R1
        assert dp.BRAINPOOLP256R1.contains(decode_point(dp.BRAINPOOLP256R1, key.public_key))
    assert ChipAuthenticationInfo(ChipAuthenticationOid.ECDH_AES_CBC_CMAC_128, 2, 72) in infos
    assert PaceInfo(PaceOid.ECDH_CAM_AES_CBC_CMAC_128, 2, 13) in infos
    assert set(parse_security_infos(encode_security_infos(infos))) == set(infos)


def test_pace_oid_properties() -> None:
    assert PaceOid.DH_IM_3DES_CBC_CBC.mapping is Mapping.INTEGRATED
    assert PaceOid.DH_IM_3DES_CBC_CBC.agreement is KeyAgreement.DH
    assert PaceOid.ECDH_GM_AES_CBC_CMAC_192.key_bits == 192
    assert PaceOid.ECDH_GM_AES_CBC_CMAC_128.der_value == bytes.fromhex("04007F00070202040202")


def test_round_trip_of_every_kind() -> None:
    curve = dp.BRAINPOOLP256R1
    point = multiply(curve, 12345, curve.generator)
    assert point is not None
    spki = ec_subject_public_key_info(curve, encode_point(curve, point))
    algorithm = bytes.fromhex("300d060804007f0007010202020101")  # arbitrary AlgorithmIdentifier
    infos = (
        PaceInfo(PaceOid.DH_GM_AES_CBC_CMAC_256, 2, 2),
        PaceInfo(PaceOid.ECDH_IM_3DES_CBC_CBC, 2),
        PaceDomainParameterInfo(PaceMappingOid.ECDH_GM, algorithm, 7),
        ChipAuthenticationInfo(ChipAuthenticationOid.ECDH_AES_CBC_CMAC_256, 1, 3),
        ChipAuthenticationPublicKeyInfo(
            PublicKeyOid.ECDH, spki, 3, curve, encode_point(curve, point)
        ),
        ActiveAuthenticationInfo(1, "1.2.840.10045.4.3.2"),
        TerminalAuthenticationInfo(2),
        UnknownSecurityInfo("1.2.3.4", bytes.fromhex("300806032a0304020101")),
    )
    encoded = encode_security_infos(infos)
    parsed = parse_security_infos(encoded)
    assert set(parsed) == set(infos)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x31",
        b"\x30\x00",
        bytes.fromhex("3105300302010d"),  # protocol is not an OID
        bytes.fromhex("310e300c060a04007f00070202040202"),  # PACEInfo without version
        bytes.fromhex("3111300f060a04007f000702020402020401"),  # version is not INTEGER
    ],
)
def test_malformed_inputs_raise_malformed_input(data: bytes) -> None:
    with pytest.raises(MalformedInput):
        parse_security_infos(data)


def test_dg14_wrapper_is_required() -> None:
    with pytest.raises(MalformedInput):
        parse_dg14(bytes.fromhex("3100"))


_SEEDS = [
    bytes.fromhex(
        "31283012060A04007F0007020204020202010202010D3012060A04007F0007020204060202010202010D"
    ),
    (VECTORS / "bsi" / "bsi2008_Datagroup14.bin").read_bytes()[4:],
    _card_security_content(),
]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    base = bytearray(_SEEDS[draw(st.integers(0, len(_SEEDS) - 1))])
    position, value, cut = draw(
        st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255), st.integers(0, len(base)))
    )
    base[position] = value
    return bytes(base[:cut])


# Hypothesis costs about 0.6 ms per example here, so each example carries a batch of
# ten inputs: 1,000 examples give the 10,000 inputs of the budget in about 3 s.
_BATCH = st.lists(st.one_of(st.binary(max_size=80), _mutated()), min_size=10, max_size=10)


@settings(max_examples=1_000, deadline=None)
@given(_BATCH)
def test_parser_never_raises_foreign_errors(batch: list[bytes]) -> None:
    for data in batch:
        with contextlib.suppress(MalformedInput):
            parse_security_infos(data)

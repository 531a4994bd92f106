"""EF.CardAccess as national ID cards lay it out (issue 16 item 7a).

BSI TR-03110-3 §A.1.1.8: ``PrivilegedTerminalInfo ::= SEQUENCE { protocol
id-PT, privilegedTerminalInfos SecurityInfos }`` -- the required data is a SET.
Such an entry, any unknown SecurityInfo, and nested SETs are kept whole as
:class:`UnknownSecurityInfo`; the PACEInfos next to them are never hidden.
"""

from __future__ import annotations

from asn1crypto import core
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.nfc import securityinfos as si
from macnss_auth.nfc.lds import parse_card_access
from macnss_auth.nfc.pace import select_pace_info
from macnss_auth.nfc.tlv import encode_tlv

ID_PT = "0.4.0.127.0.7.2.2.8"
ID_CI = "0.4.0.127.0.7.2.2.6"
PACE = si.PaceInfo(si.PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, 13)


def oid(dotted: str) -> bytes:
    return bytes(core.ObjectIdentifier(dotted).dump())


def card_access(*elements: bytes) -> bytes:
    """A DER SET OF (elements sorted, as DER wants)."""
    return encode_tlv(0x31, b"".join(sorted(elements)))


def pace_element(info: si.PaceInfo = PACE) -> bytes:
    return si.encode_security_infos([info])[2:]


def privileged_terminal_info(*inner: si.SecurityInfo) -> bytes:
    return encode_tlv(0x30, oid(ID_PT) + si.encode_security_infos(inner))


def test_privileged_terminal_info_is_kept_and_pace_found() -> None:
    cam = si.PaceInfo(si.PaceOid.ECDH_CAM_AES_CBC_CMAC_128, 2, 13)
    pt = privileged_terminal_info(cam)
    infos = si.parse_security_infos(card_access(pace_element(), pt))
    assert PACE in infos
    unknown = [i for i in infos if isinstance(i, si.UnknownSecurityInfo)]
    assert [u.protocol for u in unknown] == [ID_PT]
    assert unknown[0].der == pt
    # The privileged terminal's CAM is not offered to an ordinary terminal.
    assert select_pace_info(infos) == PACE


def test_the_worked_layout_of_a_german_id_card() -> None:
    """The layout AndyQ/NFCPassportReader PR #106 printed: PACE, CA, CardInfoLocator, PT."""
    locator = encode_tlv(0x30, oid(ID_CI) + encode_tlv(0x16, b"http://bsi.bund.de/cif/npa.xml"))
    ca = si.encode_security_infos(
        [si.ChipAuthenticationInfo(si.ChipAuthenticationOid.ECDH_AES_CBC_CMAC_128, 2, 65)]
    )[2:]
    pt = privileged_terminal_info(
        si.ChipAuthenticationInfo(si.ChipAuthenticationOid.ECDH_AES_CBC_CMAC_128, 2, 69)
    )
    ta = encode_tlv(0x30, oid(si.ID_TA) + encode_tlv(0x02, b"\x02"))
    infos = parse_card_access(card_access(ta, ca, pace_element(), locator, pt)).infos
    assert select_pace_info(infos) == PACE
    assert any(isinstance(i, si.TerminalAuthenticationInfo) for i in infos)
    assert {i.protocol for i in infos if isinstance(i, si.UnknownSecurityInfo)} == {ID_CI, ID_PT}


def test_an_unknown_info_with_a_set_as_required_data() -> None:
    nested = encode_tlv(0x31, encode_tlv(0x31, encode_tlv(0x05, b"")))
    element = encode_tlv(0x30, oid("1.2.3.4.5") + nested + encode_tlv(0x04, b"x"))
    infos = si.parse_security_infos(card_access(element, pace_element()))
    assert infos.count(PACE) == 1
    assert si.UnknownSecurityInfo("1.2.3.4.5", element) in infos


# Random extra SecurityInfos: unknown OIDs (under the BSI arc too) with nested SETs,
# SEQUENCEs, strings and integers as their required and optional data.
_leaf = st.one_of(
    st.binary(max_size=8).map(lambda b: encode_tlv(0x04, b)),
    st.integers(0, 2**40).map(lambda n: bytes(core.Integer(n).dump())),
    st.just(encode_tlv(0x05, b"")),
    st.text("abc:/.", max_size=12).map(lambda t: encode_tlv(0x16, t.encode())),
)
_value = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=3).flatmap(
        lambda items: st.sampled_from([0x30, 0x31]).map(
            lambda tag: encode_tlv(tag, b"".join(items))
        )
    ),
    max_leaves=8,
)
_unknown_oid = st.one_of(
    st.lists(st.integers(0, 2**20), min_size=1, max_size=5).map(
        lambda arcs: "1.3.6.1.4.1." + ".".join(map(str, arcs))
    ),
    st.integers(9, 40).map(lambda n: f"0.4.0.127.0.7.2.2.{n}"),
)
_extra = st.tuples(_unknown_oid, _value, st.one_of(st.none(), _value)).map(
    lambda t: encode_tlv(0x30, oid(t[0]) + t[1] + (t[2] or b""))
)


@settings(max_examples=150, deadline=None)
@given(extras=st.lists(_extra, max_size=6), nested_pace=st.booleans())
def test_random_extra_security_infos_never_hide_the_pace_infos(
    extras: list[bytes], nested_pace: bool
) -> None:
    second = si.PaceInfo(si.PaceOid.DH_GM_AES_CBC_CMAC_128, 2, 0)
    elements = [pace_element(), pace_element(second), *extras]
    if nested_pace:
        elements.append(
            privileged_terminal_info(si.PaceInfo(si.PaceOid.ECDH_CAM_AES_CBC_CMAC_256, 2, 13))
        )
    infos = si.parse_security_infos(card_access(*elements))
    paces = [i for i in infos if isinstance(i, si.PaceInfo)]
    assert sorted(paces, key=repr) == sorted([PACE, second], key=repr)
    assert select_pace_info(infos) == PACE
    unknown = [i for i in infos if isinstance(i, si.UnknownSecurityInfo)]
    assert len(unknown) == len(extras) + nested_pace
    assert sorted(u.der for u in unknown) == sorted(elements[2:])

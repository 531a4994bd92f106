"""A chip whose own files are hostile: the reader reads them, parses them, and stays typed.

:mod:`tests.nfc.reader.test_hostile_card` attacks the link (answers replaced
or flipped); here the card is genuine on the link (PACE or BAC, secure
messaging, every MAC right) but one of its files was personalized hostile:
EF.CardAccess, EF.COM, the SOD or a data group rebuilt around a 2 KB
INTEGER, an odd OID, 150 nested SEQUENCEs, a duplicated or dropped element
(:mod:`tests.nfc.der_edits`), or cut. The read must give a result or a
:class:`MacnssAuthError`. ``HYPOTHESIS_PROFILE=long`` (``make fuzz``) runs
it with its budget.
"""

from __future__ import annotations

import contextlib

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macnss_auth import ConfigurationError, MacnssAuthError, MalformedInput, UnsupportedAlgorithm
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.domain_params import standardized
from macnss_auth.nfc.reader import DocumentReader
from macnss_auth.nfc.securityinfos import ChipAuthenticationPublicKeyInfo, parse_security_infos
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.nfc.tlv import encode_tlv, read_exact
from macnss_auth.testing import FixedRandom
from tests.nfc.der_edits import reencoded

from .conftest import issued, password_for

PROFILES = ("cnie", "passport-bac", "legacy-dh", "pace-cam")


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profile=st.sampled_from(PROFILES), data=st.data())
def test_hostile_files_on_a_genuine_link_give_a_read_or_a_typed_error(
    profile: str, data: st.DataObject
) -> None:
    card = issued(profile)
    files = card.data.files.files()
    path = data.draw(st.sampled_from(sorted(files)), label="file")
    original = files[path].data
    if data.draw(st.booleans(), label="cut"):
        hostile = original[: data.draw(st.integers(0, max(len(original) - 1, 0)))]
    else:
        hostile = data.draw(reencoded([original]))
    served = attrs.evolve(card.data, files=card.data.files.replace_data(path, hostile))
    transport = MemoryTransport(VirtualCard(served, random=FixedRandom(5)))
    reader = DocumentReader(transport, random=FixedRandom(6))
    with contextlib.suppress(MacnssAuthError):
        repr(reader.read(password_for(profile), active_auth_challenge=bytes(8)))


@pytest.mark.parametrize("key_id", [10**5000, -1], ids=["2kB", "negative"])
def test_a_dg14_key_id_out_of_range_is_malformed(key_id: int) -> None:
    # DG14's keyId as a 5000-digit INTEGER: the reader's "key <id>" label raised ValueError;
    # a negative one made ChipAuthentication raise TypeError.
    from asn1crypto import core  # noqa: PLC0415 (only these tests build DER by hand)

    card = issued("cnie")
    dg14 = next(f.data for p, f in card.data.files.files().items() if p.endswith("/DG14"))
    infos = parse_security_infos(read_exact(dg14, 0x6E).value)
    key = next(i for i in infos if isinstance(i, ChipAuthenticationPublicKeyInfo))
    item = (
        core.ObjectIdentifier(key.protocol.value).dump()
        + key.subject_public_key_info
        + core.Integer(key_id).dump()
    )
    with pytest.raises(MalformedInput, match="out of range"):
        parse_security_infos(encode_tlv(0x31, encode_tlv(0x30, item)))


def test_a_card_access_with_a_2kb_parameter_id_is_refused() -> None:
    # PaceInfo's parameterId as a 5000-digit INTEGER: naming it in the error raised ValueError.
    # Now SecurityInfos refuses such an INTEGER; the reader, finding no usable PACEInfo,
    # says the chip opens with the MRZ only.
    from asn1crypto import core  # noqa: PLC0415 (only this test builds DER by hand)

    pace_info = (
        core.ObjectIdentifier("0.4.0.127.0.7.2.2.4.2.2").dump()  # id-PACE-ECDH-GM-AES-CBC-CMAC-128
        + core.Integer(2).dump()
        + core.Integer(10**5000).dump()
    )
    card_access = encode_tlv(0x31, encode_tlv(0x30, pace_info))
    card = issued("cnie")
    path = next(p for p in card.data.files.files() if p.endswith("EF.CardAccess"))
    served = attrs.evolve(card.data, files=card.data.files.replace_data(path, card_access))
    reader = DocumentReader(
        MemoryTransport(VirtualCard(served, random=FixedRandom(5))), random=FixedRandom(6)
    )
    with pytest.raises(MalformedInput, match="out of range"):
        parse_security_infos(card_access)
    with pytest.raises(ConfigurationError):
        reader.read(password_for("cnie"))
    with pytest.raises(UnsupportedAlgorithm, match="over 64 bits"):
        standardized(10**5000)

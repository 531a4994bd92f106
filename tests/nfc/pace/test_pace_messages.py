"""The PACE message codec (MSE:Set AT, ``7C``) and the step table both roles read.

Published bytes (ICAO 9303-11 Appendix G/H via the terminal's worked examples)
decode to what they say; hostile bytes raise only MalformedInput (hypothesis);
the terminal's commands and the card's answers in a whole run follow
:data:`PACE_STEPS`, against both the library's card and the independent
test-side responder.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macnss_auth.errors import LocalProtocolError, MalformedInput
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.card import VirtualCard, issue_card
from macnss_auth.nfc.mrz import CAN, MrzKey
from macnss_auth.nfc.pace import PaceTerminal
from macnss_auth.nfc.pace.messages import (
    GA_STEPS,
    PACE_STEPS,
    AuthTag,
    MseSetAt,
    decode_dynamic_authentication_data,
    encode_dynamic_authentication_data,
    general_authenticate_command,
)
from macnss_auth.nfc.pace.primitives import oid_contents
from macnss_auth.nfc.securityinfos import PaceInfo, PaceOid
from macnss_auth.nfc.tlv import encode_tlv
from macnss_auth.testing import FixedClock, FixedRandom

from .responder import PaceResponder

H = bytes.fromhex
MRZ = MrzKey("L898902C3", "740812", "120415")
FUZZ = settings(max_examples=2_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_mse_set_at_of_the_worked_example_decodes_and_reencodes() -> None:
    # ICAO 9303-11 Appendix G.1 (ECDH-GM, MRZ, brainpoolP256r1): the terminal's first command.
    data = H("800A04007F0007020204020283010184010D")
    message = MseSetAt.decode(data)
    assert message == MseSetAt(
        oid_contents(PaceOid.ECDH_GM_AES_CBC_CMAC_128), password_reference=1, parameter_id=13
    )
    assert message.encode() == data
    assert message.command().to_bytes() == H("0022C1A412") + data


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("830101", "80"),  # no protocol
        ("8000830101", "80"),  # empty protocol
        ("800A04007F00070202040202", "83"),  # no password reference
        ("800A04007F0007020204020283020101", "83"),  # two-byte reference
        ("800A04007F00070202040202830101840100840100", "MSE"),  # repeated object
        ("800A04007F000702020402028301018402000D", "84"),  # two-byte parameter id
        ("800A04007F0007020204020283", None),  # truncated TLV
    ],
)
def test_malformed_mse_set_at_names_the_object(data: str, field: str | None) -> None:
    with pytest.raises(MalformedInput) as info:
        MseSetAt.decode(H(data))
    if field is not None:
        assert info.value.field == field


def test_mse_set_at_ignores_objects_it_does_not_use() -> None:
    # A CHAT (7F4C) for Terminal Authentication may ride along (TR-03110-3 B.14.1).
    data = H("800A04007F00070202040202830102") + encode_tlv(0x7F4C, b"\x06\x00")
    assert MseSetAt.decode(data).parameter_id is None


def test_dynamic_authentication_data_round_trip_and_refusals() -> None:
    encoded = encode_dynamic_authentication_data(
        (AuthTag.CHIP_AUTHENTICATION_TOKEN, b"\x01" * 8),
        (AuthTag.CERTIFICATION_AUTHORITY_REFERENCE, b"CAR"),
    )
    assert encoded == H("7C0F") + H("86080101010101010101") + H("8703") + b"CAR"
    assert decode_dynamic_authentication_data(encoded) == {0x86: b"\x01" * 8, 0x87: b"CAR"}
    assert encode_dynamic_authentication_data() == H("7C00")
    assert decode_dynamic_authentication_data(H("7C00")) == {}
    for bad in ("", "7D00", "7C00" + "00", "7C0480018001", "7C038101"):
        with pytest.raises(MalformedInput):
            decode_dynamic_authentication_data(H(bad))


def test_a_step_sends_exactly_its_objects() -> None:
    command = general_authenticate_command(GA_STEPS["map"], (AuthTag.MAPPING_DATA, b"\x04" * 65))
    assert (command.cla, command.ins, command.ne) == (0x10, 0x86, 256)
    last = general_authenticate_command(
        GA_STEPS["confirm"], (AuthTag.AUTHENTICATION_TOKEN, b"T" * 8)
    )
    assert last.cla == 0x00
    with pytest.raises(LocalProtocolError):
        general_authenticate_command(GA_STEPS["agree"], (AuthTag.MAPPING_DATA, b"\x04"))
    big = general_authenticate_command(
        GA_STEPS["agree"], (AuthTag.EPHEMERAL_PUBLIC_KEY, bytes(256))
    )
    assert big.ne == 65536


_TAGS = st.sampled_from([*list(AuthTag), 0x7C, 0x7F49, 0x91, 0x04])
_TREES = st.lists(st.tuples(_TAGS, st.binary(max_size=40)), max_size=6)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        _TREES.map(lambda objects: b"".join(encode_tlv(int(t), v) for t, v in objects)),
    )
)
def test_hostile_mse_set_at_raises_only_malformed_input(data: bytes) -> None:
    with contextlib.suppress(MalformedInput):
        message = MseSetAt.decode(data)
        assert MseSetAt.decode(message.encode()) == message


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        _TREES.map(
            lambda objects: encode_tlv(0x7C, b"".join(encode_tlv(int(t), v) for t, v in objects))
        ),
    )
)
def test_hostile_dynamic_authentication_data_raises_only_malformed_input(data: bytes) -> None:
    with contextlib.suppress(MalformedInput):
        objects = decode_dynamic_authentication_data(data)
        assert (
            decode_dynamic_authentication_data(encode_dynamic_authentication_data(*objects.items()))
            == objects
        )


@given(st.dictionaries(st.sampled_from(list(AuthTag)), st.binary(max_size=300), max_size=10))
def test_dynamic_authentication_data_round_trips(objects: dict[AuthTag, bytes]) -> None:
    encoded = encode_dynamic_authentication_data(*objects.items())
    assert decode_dynamic_authentication_data(encoded) == objects


def _record(terminal: PaceTerminal, transceive: object) -> list[tuple[CommandAPDU, ResponseAPDU]]:
    assert callable(transceive)
    exchanges = []
    while not terminal.finished:
        raw = terminal.next_command()
        answer = transceive(raw)
        assert isinstance(answer, bytes)
        exchanges.append((CommandAPDU.from_bytes(raw), ResponseAPDU.from_bytes(answer)))
        terminal.receive_response(answer)
    return exchanges


def _assert_follows_the_table(
    exchanges: list[tuple[CommandAPDU, ResponseAPDU]], info: PaceInfo
) -> None:
    (mse, mse_answer), *steps = exchanges
    assert MseSetAt.decode(mse.data).protocol == oid_contents(info.protocol)
    assert mse_answer.ok
    assert len(steps) == len(PACE_STEPS)
    for step, (command, answer) in zip(PACE_STEPS, steps, strict=True):
        assert bool(command.cla & 0x10) is step.chained
        assert set(decode_dynamic_authentication_data(command.data)) == step.command
        sent = decode_dynamic_authentication_data(answer.data)
        assert step.response <= set(sent) <= step.response | step.optional


@pytest.mark.parametrize(
    "protocol",
    [
        PaceOid.ECDH_GM_AES_CBC_CMAC_128,
        PaceOid.ECDH_IM_AES_CBC_CMAC_128,
        PaceOid.DH_GM_3DES_CBC_CBC,
    ],
)
def test_terminal_and_test_responder_follow_the_step_table(protocol: PaceOid) -> None:
    info = PaceInfo(protocol, 2, 0 if protocol is PaceOid.DH_GM_3DES_CBC_CBC else 13)
    card = PaceResponder(MRZ, info, random=FixedRandom(3))
    terminal = PaceTerminal(MRZ, info, random=FixedRandom(4))
    _assert_follows_the_table(_record(terminal, card.transceive), info)


def test_terminal_and_the_library_card_follow_the_step_table() -> None:
    issued = issue_card("cnie", clock=FixedClock.at(1_800_000_000.0), can="123456")
    card = VirtualCard(issued.data, random=FixedRandom(5))
    data = issued.data
    assert data.profile.pace_protocol is not None
    assert data.profile.pace_parameter_id is not None
    info = PaceInfo(data.profile.pace_protocol, 2, data.profile.pace_parameter_id)
    can = data.secrets.can
    assert can is not None
    terminal = PaceTerminal(CAN(can), info, random=FixedRandom(6))
    exchanges = _record(terminal, card.process)
    _assert_follows_the_table(exchanges, info)


def test_both_roles_spot_an_echoed_key_the_same_way() -> None:
    """DH values are integers (a leading zero octet is the same key); points are bytes."""
    from macnss_auth.nfc.domain_params import standardized  # noqa: PLC0415
    from macnss_auth.nfc.pace.primitives import base_domain, same_public_key  # noqa: PLC0415

    dh, curve = base_domain(standardized(0)), base_domain(standardized(13))
    assert same_public_key(dh, b"\x00\x01\x02", b"\x01\x02")
    assert not same_public_key(dh, b"\x01\x02", b"\x01\x03")
    assert not same_public_key(curve, b"\x00\x04\x01", b"\x04\x01")
    assert same_public_key(curve, b"\x04\x01", b"\x04\x01")

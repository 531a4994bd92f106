"""The messages of PACE, one codec for the terminal and the card (ICAO 9303-11 §4.4.4, §4.4.5).

Theory of operation. PACE is one MSE:Set AT and four GENERAL AUTHENTICATE
exchanges. Both ends build and parse the same objects, so both go through
this module: the terminal (:mod:`macnss_auth.nfc.pace.terminal`) encodes
commands and decodes responses, the virtual card
(:mod:`macnss_auth.nfc.card.pace`) decodes commands and encodes responses.
Hostile bytes from either side end in :class:`~macnss_auth.errors.MalformedInput`
(its ``field`` names the object), never in a foreign exception; each role
turns that into its own answer (a remote protocol error, a ``6A80``).

:data:`PACE_STEPS` is the protocol table of the four GENERAL AUTHENTICATE
steps, read by both roles: which object the terminal sends, which the chip
must answer with, which it may add, and whether the command is chained.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from macnss_auth.errors import LocalProtocolError, MalformedInput
from macnss_auth.nfc import tlv
from macnss_auth.nfc.apdu import CommandAPDU

__all__ = [
    "GA_STEPS",
    "INS_GENERAL_AUTHENTICATE",
    "INS_MSE",
    "PACE_STEPS",
    "AuthTag",
    "GaStep",
    "MseSetAt",
    "MseTag",
    "decode_dynamic_authentication_data",
    "encode_dynamic_authentication_data",
    "general_authenticate_command",
]

INS_MSE = 0x22
INS_GENERAL_AUTHENTICATE = 0x86
#: P1-P2 of MSE:Set AT for mutual authentication (PACE), ISO/IEC 7816-4 §7.5.11.
_P1P2_SET_AT_PACE = (0xC1, 0xA4)
_CLA_CHAINED = 0x10
_TAG_DYNAMIC_AUTHENTICATION_DATA = 0x7C


class MseTag(enum.IntEnum):
    """Data objects of MSE:Set AT for PACE (ICAO 9303-11 §4.4.4.1, TR-03110-3 §B.14.1)."""

    PROTOCOL = 0x80  # cryptographic mechanism reference: the PACE OID's contents
    PASSWORD_REFERENCE = 0x83  # 1 MRZ, 2 CAN, 3 PIN, 4 PUK
    PARAMETER_ID = 0x84  # the standardized domain parameter id


class AuthTag(enum.IntEnum):
    """Data objects inside ``7C`` (ICAO 9303-11 §4.4.4.2 - §4.4.4.5, TR-03110-3 §B.1.2)."""

    ENCRYPTED_NONCE = 0x80  # chip, step 1 (Chip Authentication: the terminal's key)
    MAPPING_DATA = 0x81  # terminal, step 2: PK_map,PCD or the IM nonce t
    CHIP_MAPPING_DATA = 0x82  # chip, step 2: PK_map,IC (empty for IM)
    EPHEMERAL_PUBLIC_KEY = 0x83  # terminal, step 3: PK_PCD
    CHIP_EPHEMERAL_PUBLIC_KEY = 0x84  # chip, step 3: PK_IC
    AUTHENTICATION_TOKEN = 0x85  # terminal, step 4: T_PCD
    CHIP_AUTHENTICATION_TOKEN = 0x86  # chip, step 4: T_IC
    CERTIFICATION_AUTHORITY_REFERENCE = 0x87  # chip, step 4, optional: CAR
    PREVIOUS_CERTIFICATION_AUTHORITY_REFERENCE = 0x88  # chip, step 4, optional: previous CAR
    ENCRYPTED_CHIP_AUTHENTICATION_DATA = 0x8A  # chip, step 4, CAM: A_IC


@attrs.frozen
class GaStep:
    """One GENERAL AUTHENTICATE exchange of PACE, as both roles see it.

    Attributes:
        name: what the step does.
        command: the objects the terminal sends, exactly.
        response: the objects the chip answers with.
        optional: objects the chip may add.
        chained: whether the command carries the chaining bit (all but the last).
    """

    name: str
    command: frozenset[AuthTag]
    response: frozenset[AuthTag]
    optional: frozenset[AuthTag] = frozenset()
    chained: bool = True


def _step(
    name: str,
    command: tuple[AuthTag, ...],
    response: tuple[AuthTag, ...],
    optional: tuple[AuthTag, ...] = (),
    *,
    chained: bool = True,
) -> GaStep:
    return GaStep(name, frozenset(command), frozenset(response), frozenset(optional), chained)


#: The four GENERAL AUTHENTICATE steps of PACE, in order (ICAO 9303-11 §4.4.4.2 - §4.4.4.5).
PACE_STEPS: tuple[GaStep, ...] = (
    _step("nonce", (), (AuthTag.ENCRYPTED_NONCE,)),
    _step("map", (AuthTag.MAPPING_DATA,), (AuthTag.CHIP_MAPPING_DATA,)),
    _step("agree", (AuthTag.EPHEMERAL_PUBLIC_KEY,), (AuthTag.CHIP_EPHEMERAL_PUBLIC_KEY,)),
    _step(
        "confirm",
        (AuthTag.AUTHENTICATION_TOKEN,),
        (AuthTag.CHIP_AUTHENTICATION_TOKEN,),
        (
            AuthTag.CERTIFICATION_AUTHORITY_REFERENCE,
            AuthTag.PREVIOUS_CERTIFICATION_AUTHORITY_REFERENCE,
            AuthTag.ENCRYPTED_CHIP_AUTHENTICATION_DATA,
        ),
        chained=False,
    ),
)
#: The steps by name.
GA_STEPS: Mapping[str, GaStep] = {step.name: step for step in PACE_STEPS}


@attrs.frozen
class MseSetAt:
    """MSE:Set AT for PACE: ``00 22 C1 A4 80 <OID> 83 <password> [84 <parameter id>]``.

    Attributes:
        protocol: the contents of the PACE OID (``DO'80'``).
        password_reference: 1 (MRZ), 2 (CAN), 3 (PIN) or 4 (PUK) (``DO'83'``).
        parameter_id: the standardized domain parameter id (``DO'84'``), if sent.
    """

    protocol: bytes = attrs.field(validator=attrs.validators.instance_of(bytes))
    password_reference: int = attrs.field(validator=attrs.validators.instance_of(int))
    parameter_id: int | None = None

    def encode(self) -> bytes:
        """The command data field."""
        data = tlv.encode_tlv(int(MseTag.PROTOCOL), self.protocol)
        data += tlv.encode_tlv(int(MseTag.PASSWORD_REFERENCE), bytes([self.password_reference]))
        if self.parameter_id is not None:
            data += tlv.encode_tlv(int(MseTag.PARAMETER_ID), bytes([self.parameter_id]))
        return data

    def command(self) -> CommandAPDU:
        """The whole command APDU."""
        p1, p2 = _P1P2_SET_AT_PACE
        return CommandAPDU(0x00, INS_MSE, p1, p2, data=self.encode())

    @classmethod
    def decode(cls, data: bytes) -> MseSetAt:
        """Parse a command data field; objects other than 80, 83 and 84 are ignored.

        Raises:
            MalformedInput: bad TLV or a repeated object (``field="MSE"``), a missing or empty
                ``DO'80'`` (``field="80"``), a ``DO'83'`` missing or not one
                byte (``field="83"``), a ``DO'84'`` not one byte (``field="84"``).
        """
        objects = _unique(tlv.parse_all(data), field="MSE")
        protocol = objects.get(MseTag.PROTOCOL)
        if not protocol:
            raise MalformedInput("MSE:Set AT names no protocol", field="80")
        reference = objects.get(MseTag.PASSWORD_REFERENCE, b"")
        if len(reference) != 1:
            raise MalformedInput("MSE:Set AT password reference is not one byte", field="83")
        parameter = objects.get(MseTag.PARAMETER_ID)
        if parameter is not None and len(parameter) != 1:
            raise MalformedInput("MSE:Set AT parameter id is not one byte", field="84")
        return cls(protocol, reference[0], None if parameter is None else parameter[0])


def _unique(objects: list[tlv.Tlv], *, field: str) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for item in objects:
        if item.tag in out:
            raise MalformedInput(f"data object {item.tag:#x} repeated", field=field)
        out[item.tag] = item.value
    return out


def encode_dynamic_authentication_data(*objects: tuple[int, bytes]) -> bytes:
    """``7C`` around the given ``(tag, value)`` objects, in order (``7C 00`` for none)."""
    body = b"".join(tlv.encode_tlv(int(tag), value) for tag, value in objects)
    return tlv.encode_tlv(_TAG_DYNAMIC_AUTHENTICATION_DATA, body)


def decode_dynamic_authentication_data(data: bytes) -> dict[int, bytes]:
    """The objects inside one ``7C``, by tag (TR-03110-3 §B.1.2).

    Which objects a step needs is :data:`PACE_STEPS`' business, not this parser's.

    Raises:
        MalformedInput: not exactly one ``7C`` object, malformed children, or
            a child repeated.
    """
    if not data:
        raise MalformedInput("no dynamic authentication data", field="7C")
    outer, end = tlv.parse_one(data)
    if outer.tag != _TAG_DYNAMIC_AUTHENTICATION_DATA or end != len(data):
        raise MalformedInput("not one dynamic authentication data object", field="7C")
    return _unique(tlv.parse_all(outer.value), field="7C")


def general_authenticate_command(step: GaStep, *objects: tuple[AuthTag, bytes]) -> CommandAPDU:
    """The terminal's GENERAL AUTHENTICATE for ``step``, carrying exactly its objects.

    Raises:
        LocalProtocolError: the objects are not the ones the step sends.
    """
    if frozenset(tag for tag, _ in objects) != step.command:
        raise LocalProtocolError(f"PACE step {step.name!r} does not send these objects")
    data = encode_dynamic_authentication_data(*objects)
    # Large DH values need extended length; ask for as much as that allows.
    ne = 65536 if len(data) > 255 else 256
    cla = _CLA_CHAINED if step.chained else 0x00
    return CommandAPDU(cla, INS_GENERAL_AUTHENTICATE, 0x00, 0x00, data=data, ne=ne)

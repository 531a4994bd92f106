"""SecurityInfos: what a chip says it supports (ICAO 9303-11 §9.2, BSI TR-03110-3 §A.1).

EF.CardAccess, EF.DG14 and the content of EF.CardSecurity all hold a
``SET OF SecurityInfo``; each element is a ``SEQUENCE`` whose first field, an
OID, says how to read the rest::

    SecurityInfo ::= SEQUENCE {
        protocol     OBJECT IDENTIFIER,
        requiredData ANY DEFINED BY protocol,
        optionalData ANY DEFINED BY protocol OPTIONAL }

:func:`parse_security_infos` turns the DER into typed, frozen records
(:class:`PaceInfo`, :class:`PaceDomainParameterInfo`,
:class:`ChipAuthenticationInfo`, :class:`ChipAuthenticationPublicKeyInfo`,
:class:`ActiveAuthenticationInfo`, :class:`TerminalAuthenticationInfo`) and
keeps anything it does not know as :class:`UnknownSecurityInfo` with its DER,
so nothing is lost. :func:`encode_security_infos` goes the other way (the
virtual card builds its EF.CardAccess and DG14 with it).

The parser raises :class:`~macnss_auth.errors.MalformedInput` and nothing else:
asn1crypto is lazy, so every value is forced inside one guarded block.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs
from asn1crypto import core, keys

from macnss_auth.errors import MalformedInput, UnsupportedAlgorithm
from macnss_auth.nfc import tlv
from macnss_auth.nfc.asn1 import decoding
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.domain_params import (
    CURVE_OIDS,
    DHGroup,
    curve_by_oid,
    curve_from_explicit,
    standardized,
)
from macnss_auth.nfc.ec import Curve
from macnss_auth.nfc.spki import AlgorithmIdentifier, SubjectPublicKeyInfo

__all__ = [
    "ActiveAuthenticationInfo",
    "ChipAuthenticationInfo",
    "ChipAuthenticationOid",
    "ChipAuthenticationPublicKeyInfo",
    "KeyAgreement",
    "Mapping",
    "PaceDomainParameterInfo",
    "PaceInfo",
    "PaceMappingOid",
    "PaceOid",
    "PublicKeyOid",
    "SecurityInfo",
    "TerminalAuthenticationInfo",
    "UnknownSecurityInfo",
    "ec_subject_public_key_info",
    "encode_security_infos",
    "parse_security_infos",
]

_BSI_DE = "0.4.0.127.0.7"
#: id-TA (BSI TR-03110-3 §A.1.1.3).
ID_TA = f"{_BSI_DE}.2.2.2"
#: id-AA (ICAO 9303-11 §9.2.9).
ID_AA = "2.23.136.1.1.5"


class KeyAgreement(enum.Enum):
    """The group family of a protocol."""

    DH = "DH"
    ECDH = "ECDH"


class Mapping(enum.Enum):
    """How PACE maps its nonce into the group (ICAO 9303-11 §4.4.3.3)."""

    GENERIC = "GM"
    INTEGRATED = "IM"
    CHIP_AUTHENTICATION = "CAM"


def _suite(last: str) -> tuple[SymmetricCipher, int]:
    return {
        "1": (SymmetricCipher.TDES, 112),
        "2": (SymmetricCipher.AES, 128),
        "3": (SymmetricCipher.AES, 192),
        "4": (SymmetricCipher.AES, 256),
    }[last]


class _SessionSuite:
    """The cipher and key length that the last arc of a PACE or CA OID names.

    ICAO 9303-11 §9.2.3 and §9.2.5: ``.1`` 3DES, ``.2``/``.3``/``.4`` AES-128/192/256.
    """

    value: str

    @property
    def cipher(self) -> SymmetricCipher:
        """3DES or AES."""
        return _suite(self.value.split(".")[-1])[0]

    @property
    def key_bits(self) -> int:
        """Session key length: 112 (3DES), 128, 192 or 256."""
        return _suite(self.value.split(".")[-1])[1]


class PaceOid(_SessionSuite, str, enum.Enum):
    """PACE protocol OIDs (ICAO 9303-11 §9.2.3 / Tables 2 and 3)."""

    DH_GM_3DES_CBC_CBC = f"{_BSI_DE}.2.2.4.1.1"
    DH_GM_AES_CBC_CMAC_128 = f"{_BSI_DE}.2.2.4.1.2"
    DH_GM_AES_CBC_CMAC_192 = f"{_BSI_DE}.2.2.4.1.3"
    DH_GM_AES_CBC_CMAC_256 = f"{_BSI_DE}.2.2.4.1.4"
    ECDH_GM_3DES_CBC_CBC = f"{_BSI_DE}.2.2.4.2.1"
    ECDH_GM_AES_CBC_CMAC_128 = f"{_BSI_DE}.2.2.4.2.2"
    ECDH_GM_AES_CBC_CMAC_192 = f"{_BSI_DE}.2.2.4.2.3"
    ECDH_GM_AES_CBC_CMAC_256 = f"{_BSI_DE}.2.2.4.2.4"
    DH_IM_3DES_CBC_CBC = f"{_BSI_DE}.2.2.4.3.1"
    DH_IM_AES_CBC_CMAC_128 = f"{_BSI_DE}.2.2.4.3.2"
    DH_IM_AES_CBC_CMAC_192 = f"{_BSI_DE}.2.2.4.3.3"
    DH_IM_AES_CBC_CMAC_256 = f"{_BSI_DE}.2.2.4.3.4"
    ECDH_IM_3DES_CBC_CBC = f"{_BSI_DE}.2.2.4.4.1"
    ECDH_IM_AES_CBC_CMAC_128 = f"{_BSI_DE}.2.2.4.4.2"
    ECDH_IM_AES_CBC_CMAC_192 = f"{_BSI_DE}.2.2.4.4.3"
    ECDH_IM_AES_CBC_CMAC_256 = f"{_BSI_DE}.2.2.4.4.4"
    ECDH_CAM_AES_CBC_CMAC_128 = f"{_BSI_DE}.2.2.4.6.2"
    ECDH_CAM_AES_CBC_CMAC_192 = f"{_BSI_DE}.2.2.4.6.3"
    ECDH_CAM_AES_CBC_CMAC_256 = f"{_BSI_DE}.2.2.4.6.4"

    @property
    def der_value(self) -> bytes:
        """The OID's content octets (what MSE:Set AT and the token's 06 object carry)."""
        return bytes(core.ObjectIdentifier(self.value).contents)

    @property
    def mapping(self) -> Mapping:
        """Generic, Integrated or Chip Authentication Mapping."""
        family = self.value.split(".")[-2]
        if family in {"1", "2"}:
            return Mapping.GENERIC
        if family in {"3", "4"}:
            return Mapping.INTEGRATED
        return Mapping.CHIP_AUTHENTICATION

    @property
    def agreement(self) -> KeyAgreement:
        """DH or ECDH."""
        family = self.value.split(".")[-2]
        return KeyAgreement.DH if family in {"1", "3"} else KeyAgreement.ECDH


class PaceMappingOid(str, enum.Enum):
    """The mapping-only OIDs that PACEDomainParameterInfo uses (ICAO 9303-11 §9.2.3)."""

    DH_GM = f"{_BSI_DE}.2.2.4.1"
    ECDH_GM = f"{_BSI_DE}.2.2.4.2"
    DH_IM = f"{_BSI_DE}.2.2.4.3"
    ECDH_IM = f"{_BSI_DE}.2.2.4.4"
    ECDH_CAM = f"{_BSI_DE}.2.2.4.6"


class ChipAuthenticationOid(_SessionSuite, str, enum.Enum):
    """Chip Authentication protocol OIDs (ICAO 9303-11 §9.2.5)."""

    DH_3DES_CBC_CBC = f"{_BSI_DE}.2.2.3.1.1"
    DH_AES_CBC_CMAC_128 = f"{_BSI_DE}.2.2.3.1.2"
    DH_AES_CBC_CMAC_192 = f"{_BSI_DE}.2.2.3.1.3"
    DH_AES_CBC_CMAC_256 = f"{_BSI_DE}.2.2.3.1.4"
    ECDH_3DES_CBC_CBC = f"{_BSI_DE}.2.2.3.2.1"
    ECDH_AES_CBC_CMAC_128 = f"{_BSI_DE}.2.2.3.2.2"
    ECDH_AES_CBC_CMAC_192 = f"{_BSI_DE}.2.2.3.2.3"
    ECDH_AES_CBC_CMAC_256 = f"{_BSI_DE}.2.2.3.2.4"

    @property
    def agreement(self) -> KeyAgreement:
        """DH or ECDH."""
        return KeyAgreement.DH if self.value.split(".")[-2] == "1" else KeyAgreement.ECDH


class PublicKeyOid(str, enum.Enum):
    """Chip Authentication public key OIDs (ICAO 9303-11 §9.2.6)."""

    DH = f"{_BSI_DE}.2.2.1.1"
    ECDH = f"{_BSI_DE}.2.2.1.2"


# --- ASN.1 declarations --------------------------------------------------------------


class _SecurityInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # ICAO 9303-11 §9.2
    _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
        ("protocol", core.ObjectIdentifier),
        ("required_data", core.Any),
        ("optional_data", core.Any, {"optional": True}),
    ]


class _SecurityInfos(core.SetOf):  # type: ignore[misc]  # asn1crypto is untyped
    # ICAO 9303-11 §9.2
    _child_spec = _SecurityInfo


class _FileId(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # BSI TR-03110-3 §A.1.1.3 (EAC 1: efCVCA)
    _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
        ("fid", core.OctetString),
        ("sfid", core.OctetString, {"optional": True}),
    ]


# --- typed records ---------------------------------------------------------------------


@attrs.frozen
class PaceInfo:
    """PACEInfo (ICAO 9303-11 §9.2.1): a PACE variant the chip supports.

    Attributes:
        protocol: the PACE OID (mapping, group family, cipher).
        version: 2 for current chips.
        parameter_id: a standardized domain parameter id (§9.5.1) or a
            reference to a :class:`PaceDomainParameterInfo`; ``None`` if absent.
    """

    protocol: PaceOid
    version: int
    parameter_id: int | None = None


@attrs.frozen
class PaceDomainParameterInfo:
    """PACEDomainParameterInfo (ICAO 9303-11 §9.2.2): proprietary domain parameters.

    Attributes:
        protocol: the mapping OID.
        algorithm_identifier: the DER of the ``AlgorithmIdentifier``.
        parameter_id: identifies these parameters among several.
        group: the parameters, when this module recognises them.
    """

    protocol: PaceMappingOid
    algorithm_identifier: bytes = attrs.field(repr=False)
    parameter_id: int | None = None
    group: DHGroup | Curve | None = attrs.field(default=None, repr=False)


@attrs.frozen
class ChipAuthenticationInfo:
    """ChipAuthenticationInfo (ICAO 9303-11 §9.2.5).

    Attributes:
        protocol: the Chip Authentication OID.
        version: 1 or 2.
        key_id: which key, when the chip has several.
    """

    protocol: ChipAuthenticationOid
    version: int
    key_id: int | None = None


@attrs.frozen
class ChipAuthenticationPublicKeyInfo:
    """ChipAuthenticationPublicKeyInfo (ICAO 9303-11 §9.2.6): the chip's static key.

    Attributes:
        protocol: id-PK-DH or id-PK-ECDH.
        subject_public_key_info: the DER ``SubjectPublicKeyInfo``.
        key_id: which key, when the chip has several.
        group: the key's group (named or explicit parameters, matched to a
            standardized curve when they are one), if recognised.
        public_key: the public value: an uncompressed point (ECDH) or the
            big-endian public integer (DH).
    """

    protocol: PublicKeyOid
    subject_public_key_info: bytes = attrs.field(repr=False)
    key_id: int | None = None
    group: DHGroup | Curve | None = attrs.field(default=None, repr=False)
    public_key: bytes = attrs.field(default=b"", repr=False)


@attrs.frozen
class ActiveAuthenticationInfo:
    """ActiveAuthenticationInfo (ICAO 9303-11 §9.2.9): the AA signature algorithm (ECDSA).

    Attributes:
        version: 1.
        signature_algorithm: the signature algorithm OID (``ecdsa-with-SHA256``...).
    """

    version: int
    signature_algorithm: str


@attrs.frozen
class TerminalAuthenticationInfo:
    """TerminalAuthenticationInfo (BSI TR-03110-3 §A.1.1.3).

    Attributes:
        version: 1 or 2.
        ef_cvca: the DER of the optional EAC 1 ``efCVCA`` FileID.
    """

    version: int
    ef_cvca: bytes | None = attrs.field(default=None, repr=False)


@attrs.frozen
class UnknownSecurityInfo:
    """A SecurityInfo this library does not interpret, kept whole.

    Attributes:
        protocol: its OID, dotted.
        der: the DER of the whole ``SecurityInfo``.
    """

    protocol: str
    der: bytes = attrs.field(repr=False)


SecurityInfo = (
    PaceInfo
    | PaceDomainParameterInfo
    | ChipAuthenticationInfo
    | ChipAuthenticationPublicKeyInfo
    | ActiveAuthenticationInfo
    | TerminalAuthenticationInfo
    | UnknownSecurityInfo
)


def _int(value: core.Asn1Value) -> int:
    result = value.parse(core.Integer).native
    if not isinstance(result, int):
        raise MalformedInput("expected an INTEGER", field="SecurityInfo")
    # Versions, parameter and key ids are small non-negative numbers: a 2 KB INTEGER broke
    # every message that named it (str() of an int past 4300 digits raises ValueError), a
    # negative keyId reached Chip Authentication as a TypeError.
    if not 0 <= result < 1 << 64:
        raise MalformedInput("a SecurityInfo INTEGER is out of range", field="SecurityInfo")
    return result


def _optional_int(item: _SecurityInfo) -> int | None:
    optional = item["optional_data"]
    if isinstance(optional, core.Void):
        return None
    return _int(optional)


def _ec_group(parameters: keys.ECDomainParameters) -> Curve | None:
    if parameters.name == "named":
        try:
            return curve_by_oid(parameters.chosen.dotted)
        except UnsupportedAlgorithm:
            return None
    if parameters.name != "specified":
        return None
    spec = parameters.chosen
    if spec["field_id"]["field_type"].native != "prime_field":
        return None
    p = spec["field_id"]["parameters"].native
    a = int.from_bytes(spec["curve"]["a"].native, "big")
    b = int.from_bytes(spec["curve"]["b"].native, "big")
    base = spec["base"].native
    length = (p.bit_length() + 7) // 8
    if len(base) != 1 + 2 * length or base[0] != 4:
        return None
    gx = int.from_bytes(base[1 : 1 + length], "big")
    gy = int.from_bytes(base[1 + length :], "big")
    n = spec["order"].native
    known = curve_from_explicit(p=p, a=a, b=b, gx=gx, gy=gy, n=n)
    if known is not None:
        return known
    cofactor = spec["cofactor"].native
    return Curve("explicit", p, a, b, gx, gy, n, cofactor if isinstance(cofactor, int) else 1)


def _dh_group(parameters: keys.DomainParameters) -> DHGroup | None:
    p, g, q = parameters["p"].native, parameters["g"].native, parameters["q"].native
    if not all(isinstance(v, int) and v > 1 for v in (p, g, q)):
        return None
    return DHGroup("explicit", p, g, q)


_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_DH_PUBLIC_NUMBER = "1.2.840.10046.2.1"  # X9.42 (p, g, q)
_DH_KEY_AGREEMENT = "1.2.840.113549.1.3.1"  # PKCS #3 (p, g): no q, not usable here
#: standardizedDomainParameters (BSI TR-03110-3 §A.2.1.1): the parameter is an id of §9.5.1.
_STANDARDIZED_DOMAIN_PARAMETERS = f"{_BSI_DE}.1.2"


def _algorithm_group(algorithm: AlgorithmIdentifier) -> DHGroup | Curve | None:
    oid = algorithm["algorithm"].dotted
    parameters = algorithm["parameters"]
    if isinstance(parameters, core.Void):
        return None
    if oid == _EC_PUBLIC_KEY:
        return _ec_group(keys.ECDomainParameters.load(parameters.dump(), strict=True))
    if oid == _DH_PUBLIC_NUMBER:
        return _dh_group(keys.DomainParameters.load(parameters.dump(), strict=True))
    if oid == _STANDARDIZED_DOMAIN_PARAMETERS:
        try:
            return standardized(_int(parameters))
        except UnsupportedAlgorithm:
            return None
    return None


def _public_key_info(
    item: _SecurityInfo, protocol: PublicKeyOid
) -> ChipAuthenticationPublicKeyInfo:
    der = item["required_data"].dump()
    info = SubjectPublicKeyInfo.load(der, strict=True)
    group = _algorithm_group(info["algorithm"])
    raw = info["public_key"]
    _ = raw.native
    bits = bytes(raw.contents[1:]) if raw.contents else b""
    if protocol is PublicKeyOid.ECDH:
        public = bits
    else:
        value = core.Integer.load(bits, strict=True).native
        if not isinstance(value, int) or value < 0:
            raise MalformedInput("DH public key is not a non-negative INTEGER", field="public_key")
        length = group.byte_length if isinstance(group, DHGroup) else (value.bit_length() + 7) // 8
        if value.bit_length() > 8 * length:
            raise MalformedInput("DH public key longer than p", field="public_key")
        public = value.to_bytes(length, "big")
    return ChipAuthenticationPublicKeyInfo(
        protocol=protocol,
        subject_public_key_info=der,
        key_id=_optional_int(item),
        group=group,
        public_key=public,
    )


def _domain_parameter_info(
    item: _SecurityInfo, protocol: PaceMappingOid
) -> PaceDomainParameterInfo:
    der = item["required_data"].dump()
    algorithm = AlgorithmIdentifier.load(der, strict=True)
    _ = algorithm.native
    return PaceDomainParameterInfo(
        protocol=protocol,
        algorithm_identifier=der,
        parameter_id=_optional_int(item),
        group=_algorithm_group(algorithm),
    )


def _interpret(item: _SecurityInfo) -> SecurityInfo:
    oid = item["protocol"].dotted
    if oid in PaceOid._value2member_map_:
        return PaceInfo(PaceOid(oid), _int(item["required_data"]), _optional_int(item))
    if oid in PaceMappingOid._value2member_map_:
        return _domain_parameter_info(item, PaceMappingOid(oid))
    if oid in ChipAuthenticationOid._value2member_map_:
        return ChipAuthenticationInfo(
            ChipAuthenticationOid(oid), _int(item["required_data"]), _optional_int(item)
        )
    if oid in PublicKeyOid._value2member_map_:
        return _public_key_info(item, PublicKeyOid(oid))
    if oid == ID_AA:
        optional = item["optional_data"]
        if isinstance(optional, core.Void):
            raise MalformedInput("ActiveAuthenticationInfo without algorithm", field="id-AA")
        algorithm = optional.parse(core.ObjectIdentifier).dotted
        return ActiveAuthenticationInfo(_int(item["required_data"]), algorithm)
    if oid == ID_TA:
        optional = item["optional_data"]
        ef_cvca = None
        if not isinstance(optional, core.Void):
            parsed = optional.parse(_FileId)
            _ = parsed.native
            ef_cvca = parsed.dump()
        return TerminalAuthenticationInfo(_int(item["required_data"]), ef_cvca)
    return UnknownSecurityInfo(oid, item.dump())


def parse_security_infos(data: bytes) -> tuple[SecurityInfo, ...]:
    """Parse a DER ``SecurityInfos`` (EF.CardAccess, or DG14 / CardSecurity content).

    Raises:
        MalformedInput: not a well-formed SET OF SecurityInfo, or a known
            SecurityInfo whose fields do not match its definition.
    """
    if not isinstance(data, bytes):
        raise TypeError("data must be bytes")
    with decoding("SecurityInfos"):
        infos = _SecurityInfos.load(data, strict=True)
        result = []
        for item in infos:
            # Only the OID is forced here: the rest is ANY, and forcing ``item.native``
            # would parse a nested SecurityInfos (PrivilegedTerminalInfo's SET, BSI
            # TR-03110-3 §A.1.1.8) against no definition and fail. Known protocols
            # parse their own fields in _interpret; unknown ones are kept whole.
            _ = item["protocol"].dotted
            result.append(_interpret(item))
        return tuple(result)


# --- encoding --------------------------------------------------------------------------


def _sequence(*parts: bytes) -> bytes:
    return tlv.encode_tlv(0x30, b"".join(parts))


def _oid(dotted: str) -> bytes:
    return bytes(core.ObjectIdentifier(dotted).dump())


def _integer(value: int) -> bytes:
    return bytes(core.Integer(value).dump())


def _encode_one(info: SecurityInfo) -> bytes:
    if isinstance(info, ActiveAuthenticationInfo):
        return _sequence(_oid(ID_AA), _integer(info.version), _oid(info.signature_algorithm))
    if isinstance(info, TerminalAuthenticationInfo):
        return _sequence(_oid(ID_TA), _integer(info.version), info.ef_cvca or b"")
    if isinstance(info, UnknownSecurityInfo):
        return info.der
    # The rest are SEQUENCE { protocol, requiredData, optional INTEGER id }.
    if isinstance(info, PaceInfo):
        required, optional = _integer(info.version), info.parameter_id
    elif isinstance(info, PaceDomainParameterInfo):
        required, optional = info.algorithm_identifier, info.parameter_id
    elif isinstance(info, ChipAuthenticationInfo):
        required, optional = _integer(info.version), info.key_id
    else:
        required, optional = info.subject_public_key_info, info.key_id
    tail = b"" if optional is None else _integer(optional)
    return _sequence(_oid(info.protocol.value), required, tail)


def encode_security_infos(infos: Iterable[SecurityInfo]) -> bytes:
    """DER-encode a ``SecurityInfos`` (the elements of the SET OF sorted, as DER requires)."""
    return tlv.encode_tlv(0x31, b"".join(sorted(_encode_one(info) for info in infos)))


def ec_subject_public_key_info(curve: Curve, point: bytes) -> bytes:
    """A SubjectPublicKeyInfo for an EC key on a named standardized curve (RFC 5480).

    Raises:
        UnsupportedAlgorithm: the curve has no named-curve OID here.
    """
    oid = CURVE_OIDS.get(curve.name)
    if oid is None:
        raise UnsupportedAlgorithm(f"no named-curve OID for {curve.name}")
    algorithm = _sequence(_oid("1.2.840.10045.2.1"), _oid(oid))
    return _sequence(algorithm, tlv.encode_tlv(0x03, b"\x00" + point))

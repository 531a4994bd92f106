"""EF.SOD: the document security object (ICAO 9303-10 §4.6.2).

EF.SOD is ``77 { ContentInfo }``: CMS SignedData (RFC 5652) whose eContent
(type id-icao-mrtd-security-ldsSecurityObject, 2.23.136.1.1.1) is::

    LDSSecurityObject ::= SEQUENCE {
        version                LDSSecurityObjectVersion,   -- v0 or v1 (with ldsVersionInfo)
        hashAlgorithm          DigestAlgorithmIdentifier,
        dataGroupHashValues    SEQUENCE SIZE (2..ub-DataGroups) OF DataGroupHash,
        ldsVersionInfo         LDSVersionInfo OPTIONAL }
    DataGroupHash ::= SEQUENCE { dataGroupNumber INTEGER (1..16), dataGroupHashValue OCTET STRING }

Parsing here checks structure only (numbers in range, no duplicates, hash
lengths that fit the algorithm); signatures are checked by
:mod:`macnss_auth.nfc.verify`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import attrs
from asn1crypto import algos, core

from macnss_auth.errors import UnsupportedAlgorithm
from macnss_auth.nfc.asn1 import decoding
from macnss_auth.nfc.lds.errors import LdsFormatError
from macnss_auth.nfc.pki import HashAlgorithm, PkiFormatError, SignedContent, parse_signed_data
from macnss_auth.nfc.tlv import encode_tlv, read_exact

__all__ = [
    "OID_LDS_SECURITY_OBJECT",
    "SecurityObject",
    "encode_lds_security_object",
    "encode_sod",
    "parse_sod",
]

OID_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"


class _DataGroupHash(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # ICAO 9303-10 §4.6.2: DataGroupHash ::= SEQUENCE {
    #   dataGroupNumber DataGroupNumber, dataGroupHashValue OCTET STRING }
    _fields: ClassVar[list[tuple[str, Any]]] = [
        ("data_group_number", core.Integer),
        ("data_group_hash_value", core.OctetString),
    ]


class _DataGroupHashValues(core.SequenceOf):  # type: ignore[misc]  # asn1crypto is untyped
    # ICAO 9303-10 §4.6.2: SEQUENCE SIZE (2..ub-DataGroups) OF DataGroupHash
    _child_spec = _DataGroupHash


class _LdsVersionInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # ICAO 9303-10 §4.6.2: LDSVersionInfo ::= SEQUENCE { ldsVersion, unicodeVersion }
    _fields: ClassVar[list[tuple[str, Any]]] = [
        ("lds_version", core.PrintableString),
        ("unicode_version", core.PrintableString),
    ]


class _LdsSecurityObject(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # ICAO 9303-10 §4.6.2: LDSSecurityObject, version 0 or 1 (V1 adds
    # ldsVersionInfo); the eContent of EF.SOD's SignedData (nfc.pki.cms).
    _fields: ClassVar[list[tuple[str, Any, dict[str, Any]]]] = [
        ("version", core.Integer, {}),
        ("hash_algorithm", algos.DigestAlgorithm, {}),
        ("data_group_hash_values", _DataGroupHashValues, {}),
        ("lds_version_info", _LdsVersionInfo, {"optional": True}),
    ]


@attrs.frozen
class SecurityObject:
    """A parsed EF.SOD (its signature not yet verified).

    Attributes:
        der: the whole EF.SOD file.
        signed: the CMS envelope (signer, certificates, signed attributes).
        version: LDSSecurityObject version (0, or 1 with LDS version info).
        hash_algorithm: the algorithm of the data group hashes.
        hashes: data group number -> hash.
        lds_version / unicode_version: from ldsVersionInfo (v1 only).
    """

    der: bytes = attrs.field(repr=False)
    signed: SignedContent = attrs.field(repr=False)
    version: int
    hash_algorithm: HashAlgorithm
    hashes: Mapping[int, bytes] = attrs.field(repr=lambda h: f"<DG {sorted(h)}>")
    lds_version: str | None = None
    unicode_version: str | None = None


def _shown(number: int) -> str:
    # str() of an int past 4300 digits raises ValueError, and a DER INTEGER can be that long.
    return str(number) if number.bit_length() <= 64 else "(a number of more than 64 bits)"


def parse_sod(data: bytes) -> SecurityObject:
    """Parse EF.SOD.

    Raises:
        LdsFormatError: malformed envelope, CMS or LDSSecurityObject.
        UnsupportedAlgorithm: a hash or signature algorithm this library does not support.
    """
    name = "EF.SOD"
    outer = read_exact(data, 0x77, field=name, error=LdsFormatError)
    try:
        signed = parse_signed_data(outer.value)
    except PkiFormatError as exc:
        raise LdsFormatError(f"EF.SOD: {exc}", field=name) from exc
    if signed.content_type != OID_LDS_SECURITY_OBJECT:
        raise LdsFormatError("EF.SOD does not hold an LDSSecurityObject", field=name)
    with decoding("LDSSecurityObject", error=LdsFormatError, field=name):
        body = _LdsSecurityObject.load(signed.content, strict=True)
        version = int(body["version"].native)
        hash_name = body["hash_algorithm"]["algorithm"].dotted
        pairs = [
            (int(item["data_group_number"].native), bytes(item["data_group_hash_value"].native))
            for item in body["data_group_hash_values"]
        ]
        info = body["lds_version_info"]
        lds_version = unicode_version = None
        if info.native is not None:
            lds_version = str(info["lds_version"].native)
            unicode_version = str(info["unicode_version"].native)
    if version not in (0, 1):
        raise LdsFormatError(f"LDSSecurityObject version {_shown(version)} is unknown", field=name)
    algorithm = HashAlgorithm.from_name(hash_name)
    hashes: dict[int, bytes] = {}
    for number, value in pairs:
        if not 1 <= number <= 16:
            raise LdsFormatError(f"the SOD hashes data group {_shown(number)}", field=name)
        if number in hashes:
            raise LdsFormatError(f"the SOD hashes DG{number} twice", field=name)
        if len(value) != algorithm.digest_size:
            raise LdsFormatError(f"the DG{number} hash has the wrong length", field=name)
        hashes[number] = value
    if not hashes:
        raise LdsFormatError("the SOD hashes no data group", field=name)
    return SecurityObject(
        der=bytes(data),
        signed=signed,
        version=version,
        hash_algorithm=algorithm,
        hashes=MappingProxyType(hashes),
        lds_version=lds_version,
        unicode_version=unicode_version,
    )


def encode_lds_security_object(
    hash_algorithm: HashAlgorithm,
    data_groups: Mapping[int, bytes],
    *,
    lds_version: str | None = None,
    unicode_version: str | None = None,
) -> bytes:
    """DER of an LDSSecurityObject hashing ``data_groups`` (number -> file bytes).

    With ``lds_version`` and ``unicode_version`` the object is version 1.

    Raises:
        UnsupportedAlgorithm: never for the :class:`HashAlgorithm` members.
    """
    if (lds_version is None) != (unicode_version is None):
        raise UnsupportedAlgorithm("give both lds_version and unicode_version, or neither")
    values: dict[str, object] = {
        "version": 1 if lds_version is not None else 0,
        "hash_algorithm": {"algorithm": hash_algorithm.value},
        "data_group_hash_values": [
            {"data_group_number": n, "data_group_hash_value": hash_algorithm.digest(d)}
            for n, d in sorted(data_groups.items())
        ],
    }
    if lds_version is not None:
        values["lds_version_info"] = {
            "lds_version": lds_version,
            "unicode_version": unicode_version,
        }
    return bytes(_LdsSecurityObject(values).dump())


def encode_sod(content_info: bytes) -> bytes:
    """Wrap a CMS ContentInfo as EF.SOD (``77``)."""
    return encode_tlv(0x77, content_info)

"""Save a card to a directory and load it back.

Layout of a card directory::

    card.json            profile, chip passwords, file table (format 1)
    files/*.bin          every elementary file, byte for byte
    keys/aa.pem          Active Authentication private key (PKCS#8), if any
    keys/ca.pem          Chip Authentication private key (PKCS#8: EC on any
                         standardized curve, or X9.42 DH), if any
    trust/csca.der       the CSCA certificate (trust anchor)
    trust/masterlist.ml  a signed CSCA master list holding it
    trust/csca.crl       the CSCA's CRL

These are *test* cards: the passwords and private keys are stored in clear
(files created with mode 0600). A clone is saved without ``keys/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from asn1crypto import core as asn1
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.card.filesystem import Access, Application, ElementaryFile, FileSystem
from macnss_auth.nfc.card.issuer import IssuedCard
from macnss_auth.nfc.card.model import (
    AaKeyKind,
    CardData,
    CardProfile,
    CardQuirks,
    ChipSecrets,
    DocumentKind,
    PasswordKind,
)
from macnss_auth.nfc.chip_auth import CaAlgorithm, DhPrivateKey, DhPublicKey
from macnss_auth.nfc.domain_params import CURVE_OIDS, curve_by_oid
from macnss_auth.nfc.eckeys import EcPrivateKey, native_curve
from macnss_auth.nfc.securityinfos import PaceOid
from macnss_auth.nfc.spki import AlgorithmIdentifier

__all__ = ["FORMAT", "load_card", "save_card"]

#: The card.json format version this code writes and reads.
FORMAT = 1


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _profile_json(profile: CardProfile) -> dict[str, Any]:
    return {
        "name": profile.name,
        "document": profile.document.value,
        "bac": profile.bac,
        "pace_protocol": None if profile.pace_protocol is None else profile.pace_protocol.value,
        "pace_parameter_id": profile.pace_parameter_id,
        "pace_passwords": sorted(int(p) for p in profile.pace_passwords),
        "password_retries": profile.password_retries,
        "pin_retries": profile.pin_retries,
        "puk_uses": profile.puk_uses,
        "active_authentication": (
            None if profile.active_authentication is None else profile.active_authentication.value
        ),
        "chip_authentication": (
            None if profile.chip_authentication is None else profile.chip_authentication.value
        ),
        "extended_length": profile.extended_length,
        "chip_authentication_parameter_id": profile.chip_authentication_parameter_id,
        "active_authentication_parameter_id": profile.active_authentication_parameter_id,
        "quirks": profile.quirks.to_dict(),
        "chip_authentication_version": profile.chip_authentication_version,
    }


def _profile_from(raw: dict[str, Any]) -> CardProfile:
    return CardProfile(
        name=str(raw["name"]),
        document=DocumentKind(raw["document"]),
        bac=bool(raw["bac"]),
        pace_protocol=None if raw["pace_protocol"] is None else PaceOid(raw["pace_protocol"]),
        pace_parameter_id=raw["pace_parameter_id"],
        pace_passwords=frozenset(PasswordKind(p) for p in raw["pace_passwords"]),
        password_retries=raw["password_retries"],
        # Absent from cards saved before PIN/PUK support: the profile defaults.
        pin_retries=int(raw.get("pin_retries", 3)),
        puk_uses=int(raw.get("puk_uses", 10)),
        active_authentication=(
            None
            if raw["active_authentication"] is None
            else AaKeyKind(raw["active_authentication"])
        ),
        chip_authentication=(
            None if raw["chip_authentication"] is None else CaAlgorithm(raw["chip_authentication"])
        ),
        extended_length=bool(raw["extended_length"]),
        chip_authentication_parameter_id=raw.get("chip_authentication_parameter_id"),
        active_authentication_parameter_id=raw.get("active_authentication_parameter_id"),
        quirks=CardQuirks.from_dict(dict(raw.get("quirks") or {})),
        # Absent from cards saved before CA v2: version 1.
        chip_authentication_version=raw.get("chip_authentication_version", 1),
    )


_StoredKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | EcPrivateKey | DhPrivateKey
_DH_PUBLIC_NUMBER = "1.2.840.10046.2.1"  # X9.42 dhpublicnumber (RFC 3279 §2.3.3)


class _Pkcs8(asn1.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # RFC 5208 §5 PrivateKeyInfo, the algorithm left open
    _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
        ("version", asn1.Integer),
        ("algorithm", AlgorithmIdentifier),
        ("private_key", asn1.OctetString),
    ]


class _DhParameters(asn1.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    # RFC 3279 §2.3.3 DomainParameters (without the optional validation fields)
    _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
        ("p", asn1.Integer),
        ("g", asn1.Integer),
        ("q", asn1.Integer),
    ]


def _pem(key: _StoredKey) -> bytes:
    # Keys on curves cryptography lacks, and DH keys (deprecated there), are
    # written as PKCS#8 by hand: named-curve ECPrivateKey / X9.42 DH.
    if isinstance(key, EcPrivateKey):
        named = asn1_keys.ECDomainParameters(name="named", value=CURVE_OIDS[key.curve.name])
        info = _Pkcs8(
            {
                "version": 0,
                "algorithm": {"algorithm": "1.2.840.10045.2.1", "parameters": named},
                "private_key": asn1_keys.ECPrivateKey(
                    {"version": "ecPrivkeyVer1", "private_key": key.d}
                ).dump(),
            }
        )
        return bytes(asn1_pem.armor("PRIVATE KEY", info.dump()))
    if isinstance(key, DhPrivateKey):
        public = key.public
        if public.q is None:
            raise ConfigurationError("a DH chip key needs its subgroup order q")
        params = _DhParameters({"p": public.p, "g": public.g, "q": public.q})
        info = _Pkcs8(
            {
                "version": 0,
                "algorithm": {"algorithm": _DH_PUBLIC_NUMBER, "parameters": params},
                "private_key": asn1.Integer(key.x).dump(),
            }
        )
        return bytes(asn1_pem.armor("PRIVATE KEY", info.dump()))
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _file_entry(where: str, ef: ElementaryFile, directory: Path) -> dict[str, Any]:
    relative = f"files/{where}_{ef.name}.bin"
    _write(directory / relative, ef.data)
    return {
        "name": ef.name,
        "fid": f"{ef.fid:04X}",
        "sfi": ef.sfi,
        "access": ef.access.value,
        "file": relative,
    }


def save_card(card: IssuedCard | CardData, directory: str | os.PathLike[str]) -> Path:
    """Write ``card`` (and, for an :class:`IssuedCard`, its trust anchors) to ``directory``.

    Returns:
        The directory.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    data = card.data if isinstance(card, IssuedCard) else card
    secrets = data.secrets
    document: dict[str, Any] = {
        "format": FORMAT,
        "profile": _profile_json(data.profile),
        "secrets": {
            "mrz_information": secrets.mrz_information,
            "can": secrets.can,
            "pin": secrets.pin,
            "puk": secrets.puk,
            "ca_key_id": secrets.ca_key_id,
        },
        "master": [_file_entry("MF", ef, target) for ef in data.files.master],
        "applications": [
            {
                "aid": app.aid.hex().upper(),
                "files": [_file_entry(app.aid.hex().upper(), ef, target) for ef in app.files],
            }
            for app in data.files.applications
        ],
    }
    for name, key in (("aa.pem", secrets.aa_key), ("ca.pem", secrets.ca_key)):
        if key is not None:
            _write(target / "keys" / name, _pem(key), private=True)
        else:  # a clone saved over a genuine card must not keep its keys
            (target / "keys" / name).unlink(missing_ok=True)
    if isinstance(card, IssuedCard):
        _write(target / "trust" / "csca.der", card.csca)
        _write(target / "trust" / "masterlist.ml", card.master_list)
        _write(target / "trust" / "csca.crl", card.crl)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    _write(target / "card.json", text.encode("utf-8"), private=True)
    return target


def _own_key(der: bytes) -> EcPrivateKey | DhPrivateKey | None:
    """The key when cryptography cannot (or should not) load it: DH, or a curve it lacks."""
    info = _Pkcs8.load(der, strict=True)
    oid = info["algorithm"]["algorithm"].dotted
    parameters = info["algorithm"]["parameters"]
    body = bytes(info["private_key"].native)
    if oid == _DH_PUBLIC_NUMBER:
        params = _DhParameters.load(parameters.dump(), strict=True)
        p, g, q = (int(params[name].native) for name in ("p", "g", "q"))
        x = int(asn1.Integer.load(body, strict=True).native)
        return DhPrivateKey(DhPublicKey(p, g, pow(g, x, p), q), x)
    if oid != "1.2.840.10045.2.1":
        return None
    named = asn1_keys.ECDomainParameters.load(parameters.dump(), strict=True)
    if named.name != "named":
        return None
    curve = curve_by_oid(named.chosen.dotted)
    if native_curve(curve) is not None:
        return None
    return EcPrivateKey(curve, int(asn1_keys.ECPrivateKey.load(body)["private_key"].native))


def _load_key(path: Path) -> _StoredKey | None:
    if not path.exists():
        return None
    data = path.read_bytes()
    _, _, der = asn1_pem.unarmor(data)
    own = _own_key(bytes(der))
    if own is not None:
        return own
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ConfigurationError(f"{path}: not an RSA or EC private key")
    return key


def _files(entries: list[dict[str, Any]], directory: Path) -> tuple[ElementaryFile, ...]:
    return tuple(
        ElementaryFile(
            str(entry["name"]),
            int(entry["fid"], 16),
            entry["sfi"],
            (directory / str(entry["file"])).read_bytes(),
            Access(entry["access"]),
        )
        for entry in entries
    )


def _read(source: Path) -> CardData:
    raw = json.loads((source / "card.json").read_text("utf-8"))
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{source}: card.json is not an object")
    if raw.get("format") != FORMAT:
        raise ConfigurationError(f"{source}: card format {raw.get('format')} is not {FORMAT}")
    profile = _profile_from(raw["profile"])
    files = FileSystem(
        _files(raw["master"], source),
        tuple(
            Application(bytes.fromhex(app["aid"]), _files(app["files"], source))
            for app in raw["applications"]
        ),
    )
    aa_key = _load_key(source / "keys" / "aa.pem")
    ca_key = _load_key(source / "keys" / "ca.pem")
    if isinstance(ca_key, rsa.RSAPrivateKey):
        raise ConfigurationError(f"{source}: the Chip Authentication key must be EC or DH")
    if isinstance(aa_key, DhPrivateKey):
        raise ConfigurationError(f"{source}: the Active Authentication key must be RSA or EC")
    secrets = ChipSecrets(
        mrz_information=str(raw["secrets"]["mrz_information"]),
        can=raw["secrets"]["can"],
        pin=raw["secrets"].get("pin"),
        puk=raw["secrets"].get("puk"),
        aa_key=aa_key,
        ca_key=ca_key,
        ca_key_id=raw["secrets"]["ca_key_id"],
    )
    return CardData(profile, files, secrets)


def load_card(directory: str | os.PathLike[str]) -> CardData:
    """Read a card written by :func:`save_card`.

    Raises:
        ConfigurationError: the directory holds no card, a newer format, or broken data.
    """
    source = Path(directory)
    try:
        return _read(source)
    except ConfigurationError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        # Whatever shape a hand-edited card.json has (nested too deep for the JSON parser
        # included), the caller gets one error type.
        raise ConfigurationError(f"{source}: not a readable card directory ({error})") from error

"""Save a card to a directory and load it back.

Layout of a card directory::

    card.json            profile, chip passwords, file table (format 1)
    files/*.bin          every elementary file, byte for byte
    keys/aa.pem          Active Authentication private key (PKCS#8), if any
    keys/ca.pem          Chip Authentication private key (PKCS#8), if any
    keys/ca-dh.json      a Diffie-Hellman Chip Authentication key (p, g, q, x in hex)
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
from macnss_auth.nfc.securityinfos import PaceOid

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
        "active_authentication": (
            None if profile.active_authentication is None else profile.active_authentication.value
        ),
        "chip_authentication": (
            None if profile.chip_authentication is None else profile.chip_authentication.value
        ),
        "extended_length": profile.extended_length,
        "quirks": profile.quirks.to_dict(),
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
        active_authentication=(
            None
            if raw["active_authentication"] is None
            else AaKeyKind(raw["active_authentication"])
        ),
        chip_authentication=(
            None if raw["chip_authentication"] is None else CaAlgorithm(raw["chip_authentication"])
        ),
        extended_length=bool(raw["extended_length"]),
        quirks=CardQuirks.from_dict(dict(raw.get("quirks") or {})),
    )


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
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
    ca_ec = secrets.ca_key if isinstance(secrets.ca_key, ec.EllipticCurvePrivateKey) else None
    for name, key in (("aa.pem", secrets.aa_key), ("ca.pem", ca_ec)):
        if key is not None:
            _write(target / "keys" / name, _pem(key), private=True)
        else:  # a clone saved over a genuine card must not keep its keys
            (target / "keys" / name).unlink(missing_ok=True)
    if isinstance(secrets.ca_key, DhPrivateKey):
        public = secrets.ca_key.public
        numbers = {"p": public.p, "g": public.g, "q": public.q, "x": secrets.ca_key.x}
        text = json.dumps({k: None if v is None else f"{v:x}" for k, v in numbers.items()})
        _write(target / "keys" / "ca-dh.json", text.encode("ascii"), private=True)
    else:
        (target / "keys" / "ca-dh.json").unlink(missing_ok=True)
    if isinstance(card, IssuedCard):
        _write(target / "trust" / "csca.der", card.csca)
        _write(target / "trust" / "masterlist.ml", card.master_list)
        _write(target / "trust" / "csca.crl", card.crl)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    _write(target / "card.json", text.encode("utf-8"), private=True)
    return target


def _load_key(path: Path) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None:
    if not path.exists():
        return None
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
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
    loaded = _load_key(source / "keys" / "ca.pem")
    if loaded is not None and not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ConfigurationError(f"{source}: the Chip Authentication key must be EC or DH")
    ca_key: ec.EllipticCurvePrivateKey | DhPrivateKey | None = loaded
    dh_path = source / "keys" / "ca-dh.json"
    if dh_path.exists():
        numbers = json.loads(dh_path.read_text("ascii"))
        p, g, x = (int(numbers[k], 16) for k in ("p", "g", "x"))
        q = None if numbers["q"] is None else int(numbers["q"], 16)
        ca_key = DhPrivateKey(DhPublicKey(p, g, pow(g, x, p), q), x)
    secrets = ChipSecrets(
        mrz_information=str(raw["secrets"]["mrz_information"]),
        can=raw["secrets"]["can"],
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
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        # Whatever shape a hand-edited card.json has, the caller gets one error type.
        raise ConfigurationError(f"{source}: not a readable card directory ({error})") from error

"""Serve a dump: files read from a real chip (or published specimens) as a virtual card.

A dump directory holds the files under the names readers write:
``DG1.bin`` / ``Datagroup1.bin`` / ``EF_DG1.bin`` (any case, ``.bin`` or
``.dat``), ``EF_SOD.bin`` / ``SOD.bin``, ``EF_COM.bin`` / ``COM.bin``, and
optionally ``CardAccess.bin`` / ``EF_CardAccess.bin``. ``macnss-auth card read
--save DIR`` writes this layout, plus ``AA_challenge.bin`` and
``AA_signature.bin`` when Active Authentication ran.

:func:`read_dump` finds the files; :func:`card_from_dump` makes a
:class:`~macnss_auth.nfc.card.model.CardData` that serves them byte for byte,
with the document's own EF.SOD. The chip keys are not in a dump, so the card
behaves like a clone: it refuses Chip and Active Authentication (``6A88``),
which a verifier reports. Access is BAC with the MRZ from DG1, and PACE with
the MRZ or a CAN when ``CardAccess.bin`` is there (or when asked: then the
card offers ECDH-GM on brainpoolP256r1 with AES-128).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import attrs

from macnss_auth.errors import ConfigurationError, MacnssAuthError
from macnss_auth.nfc import securityinfos as si
from macnss_auth.nfc.card import model
from macnss_auth.nfc.card.filesystem import emrtd_file_system
from macnss_auth.nfc.domain_params import DomainParameterId
from macnss_auth.nfc.lds import parse_card_access, parse_dg1, parse_dg15
from macnss_auth.nfc.mrz import MrzFormat, check_digit

__all__ = ["DumpFiles", "card_from_dump", "read_dump", "write_dump"]

_DG = re.compile(r"^(?:ef[_.-]?)?(?:dg|datagroup)[_.-]?(\d{1,2})\.(?:bin|dat)$", re.IGNORECASE)
_SOD = re.compile(r"^(?:ef[_.-]?)?sod\.(?:bin|dat)$", re.IGNORECASE)
_COM = re.compile(r"^(?:ef[_.-]?)?com\.(?:bin|dat)$", re.IGNORECASE)
_CARD_ACCESS = re.compile(r"^(?:ef[_.-]?)?card[_.-]?access\.(?:bin|dat)$", re.IGNORECASE)
_AA_CHALLENGE = re.compile(r"^aa[_.-]?challenge\.(?:bin|dat)$", re.IGNORECASE)
_AA_SIGNATURE = re.compile(r"^aa[_.-]?signature\.(?:bin|dat)$", re.IGNORECASE)
MAX_DUMP_FILE = 1 << 20


@attrs.frozen
class DumpFiles:
    """The files of a dump directory.

    Attributes:
        data_groups: number -> bytes.
        sod: EF.SOD, if present.
        com: EF.COM, if present.
        card_access: EF.CardAccess, if present.
        aa_challenge / aa_signature: an Active Authentication exchange, if saved.
    """

    data_groups: dict[int, bytes] = attrs.field(repr=lambda g: f"<DG {sorted(g)}>")
    sod: bytes | None = attrs.field(default=None, repr=False)
    com: bytes | None = attrs.field(default=None, repr=False)
    card_access: bytes | None = attrs.field(default=None, repr=False)
    aa_challenge: bytes | None = attrs.field(default=None, repr=False)
    aa_signature: bytes | None = attrs.field(default=None, repr=False)


def read_dump(directory: str | os.PathLike[str]) -> DumpFiles:
    """The files found in ``directory`` (other files are ignored).

    Raises:
        ConfigurationError: not a directory, two files for one data group, or a file over 1 MiB.
    """
    source = Path(directory)
    if not source.is_dir():
        raise ConfigurationError(f"{source}: not a directory")
    groups: dict[int, bytes] = {}
    found: dict[str, bytes] = {}
    patterns = {
        "sod": _SOD,
        "com": _COM,
        "card_access": _CARD_ACCESS,
        "aa_challenge": _AA_CHALLENGE,
        "aa_signature": _AA_SIGNATURE,
    }
    for path in sorted(source.iterdir()):
        if not path.is_file():
            continue
        name = path.name
        match = _DG.match(name)
        kind = next((k for k, p in patterns.items() if p.match(name)), None)
        if match is None and kind is None:
            continue
        if path.stat().st_size > MAX_DUMP_FILE:
            raise ConfigurationError(f"{name} is larger than {MAX_DUMP_FILE} bytes")
        data = path.read_bytes()
        if match is not None:
            number = int(match.group(1))
            if not 1 <= number <= 16:
                continue
            if number in groups:
                raise ConfigurationError(f"two files for DG{number} in {source}")
            groups[number] = data
        elif kind is not None:
            if kind in found:
                raise ConfigurationError(f"two files for {kind} in {source}")
            found[kind] = data
    return DumpFiles(groups, **found)


def write_dump(directory: str | os.PathLike[str], files: DumpFiles) -> list[Path]:
    """Write ``files`` under the names :func:`read_dump` reads; return the paths written.

    ``EF_COM.bin``, ``EF_SOD.bin``, ``DG<n>.bin``, ``CardAccess.bin``,
    ``AA_challenge.bin`` and ``AA_signature.bin``; the directory is created.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    named: list[tuple[str, bytes | None]] = [
        ("EF_COM.bin", files.com),
        ("EF_SOD.bin", files.sod),
        *((f"DG{n}.bin", d) for n, d in sorted(files.data_groups.items())),
        ("CardAccess.bin", files.card_access),
        ("AA_challenge.bin", files.aa_challenge),
        ("AA_signature.bin", files.aa_signature),
    ]
    written = []
    for name, data in named:
        if data is None:
            continue
        path = target / name
        path.write_bytes(data)
        written.append(path)
    return written


def _mrz_information(dg1: bytes) -> tuple[str, model.DocumentKind]:
    mrz = parse_dg1(dg1)
    number = mrz.document_number.ljust(9, "<")
    fields = (number, mrz.date_of_birth, mrz.date_of_expiry)
    kind = model.DocumentKind.TD3 if mrz.format is MrzFormat.TD3 else model.DocumentKind.TD1
    return "".join(f"{f}{check_digit(f)}" for f in fields), kind


def _pace_of(card_access: bytes) -> si.PaceInfo | None:
    try:
        infos = parse_card_access(card_access).infos
    except MacnssAuthError:
        return None
    return next(
        (i for i in infos if isinstance(i, si.PaceInfo) and i.parameter_id is not None), None
    )


def card_from_dump(
    files: DumpFiles | str | os.PathLike[str],
    *,
    can: str | None = "123456",
    pace: bool | None = None,
    bac: bool = True,
) -> model.CardData:
    """A virtual card that serves a dump.

    Args:
        files: a :class:`DumpFiles` or a dump directory.
        can: the CAN PACE accepts (besides the MRZ from DG1).
        pace: offer PACE (default: when the dump has EF.CardAccess).
        bac: answer BAC with the MRZ from DG1.

    Raises:
        ConfigurationError: no DG1 or EF.SOD, a DG1 that is not an MRZ, or neither BAC nor PACE.
    """
    dump = files if isinstance(files, DumpFiles) else read_dump(files)
    if 1 not in dump.data_groups or dump.sod is None:
        raise ConfigurationError("a dump needs DG1 and EF.SOD")
    # isascii(): "²" and Arabic-Indic digits pass isdigit() but the card encodes the CAN as ASCII.
    if can is not None and (len(can) != 6 or not (can.isascii() and can.isdigit())):
        raise ConfigurationError("a CAN is six digits")
    try:
        mrz_information, document = _mrz_information(dump.data_groups[1])
    except MacnssAuthError as exc:
        raise ConfigurationError(f"DG1 of the dump is not usable: {exc}") from exc
    card_access = dump.card_access
    offer_pace = card_access is not None if pace is None else pace
    if not offer_pace and not bac:
        raise ConfigurationError("the card must offer BAC or PACE")
    pace_info = _pace_of(card_access) if card_access is not None else None
    if offer_pace and pace_info is None:
        pace_info = si.PaceInfo(
            si.PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, DomainParameterId.BRAINPOOLP256R1
        )
        card_access = si.encode_security_infos([pace_info])
    aa: model.AaKeyKind | None = None
    if 15 in dump.data_groups:
        try:
            algorithm = parse_dg15(dump.data_groups[15]).public_key.algorithm
        except MacnssAuthError:
            algorithm = "rsa"
        aa = model.AaKeyKind.ECDSA if algorithm == "ec" else model.AaKeyKind.RSA
    profile = model.CardProfile(
        name="dump",
        document=document,
        bac=bac,
        pace_protocol=pace_info.protocol if offer_pace and pace_info is not None else None,
        pace_parameter_id=pace_info.parameter_id if offer_pace and pace_info is not None else None,
        pace_passwords=frozenset({model.PasswordKind.MRZ, model.PasswordKind.CAN}),
        active_authentication=aa,
    )
    files_system = emrtd_file_system(
        com=dump.com,
        data_groups=dump.data_groups,
        sod=dump.sod,
        card_access=card_access if offer_pace else None,
    )
    # No private keys: a dump cannot prove it is the chip it was read from.
    secrets = model.ChipSecrets(mrz_information=mrz_information, can=can if offer_pace else None)
    return model.CardData(profile, files_system, secrets)

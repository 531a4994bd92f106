"""``macnss-auth document verify DIR``: prove a dumped eMRTD genuine.

``DIR`` holds the files as read from the chip, under the usual names:
``DG1.bin`` / ``Datagroup1.bin`` / ``EF_DG1.bin`` (any case, ``.bin`` or
``.dat``), ``SOD.bin`` / ``EF_SOD.bin``, ``EF_COM.bin``. Trust comes from
``--masterlist`` files (verified), ``--csca`` certificate directories and
``--crl`` files. An Active Authentication exchange can be checked with
``--aa-challenge HEX --aa-signature FILE``, or is taken from
``AA_challenge.bin`` and ``AA_signature.bin`` in DIR (what ``card read --save``
writes). The holder data (DG1 fields) is reported as ``card read`` does.

Exit status: 0 genuine, 1 not genuine (or unreadable input), 2 usage error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from macnss_auth.cli.reading import echo_holder, holder_data
from macnss_auth.clock import SystemClock
from macnss_auth.errors import MacnssAuthError
from macnss_auth.nfc.card.dump import read_dump as read_dump_files
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.verify import ChipAuthenticity, VerificationPolicy, inspect_document

__all__ = ["command", "read_dump"]

_DG = re.compile(r"^(?:ef[_.-]?)?(?:dg|datagroup)[_.-]?(\d{1,2})\.(?:bin|dat)$", re.IGNORECASE)
_SOD = re.compile(r"^(?:ef[_.-]?)?sod\.(?:bin|dat)$", re.IGNORECASE)
_COM = re.compile(r"^(?:ef[_.-]?)?com\.(?:bin|dat)$", re.IGNORECASE)
_MAX_FILE = 1 << 20


def read_dump(directory: Path) -> tuple[dict[int, bytes], bytes, bytes | None]:
    """The data groups, EF.SOD and EF.COM found in ``directory``.

    Raises:
        click.UsageError: no EF.SOD, two files for one data group, or a file too large.
    """
    groups: dict[int, bytes] = {}
    sod = com = None
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        name = path.name
        match = _DG.match(name)
        if not (match or _SOD.match(name) or _COM.match(name)):
            continue
        if path.stat().st_size > _MAX_FILE:
            raise click.UsageError(f"{name} is larger than {_MAX_FILE} bytes")
        data = path.read_bytes()
        if match:
            number = int(match.group(1))
            if not 1 <= number <= 16:
                continue
            if number in groups:
                raise click.UsageError(f"two files for DG{number} in {directory}")
            groups[number] = data
        elif _SOD.match(name):
            sod = data
        else:
            com = data
    if sod is None:
        raise click.UsageError(f"no SOD.bin / EF_SOD.bin in {directory}")
    return groups, sod, com


@click.group(name="document")
def command() -> None:
    """Verify eMRTD data read from a chip (Passive and Active Authentication)."""


_REQUIRE = {
    "none": ChipAuthenticity.NONE,
    "aa": ChipAuthenticity.ACTIVE_AUTHENTICATION,
    "ca": ChipAuthenticity.CHIP_AUTHENTICATION,
    "either": ChipAuthenticity.EITHER,
}


@command.command(name="verify")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--masterlist",
    "masterlists",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CSCA master list to trust (its signature is verified; its signer must chain "
    "to a --csca certificate unless --trust-as-is). Repeatable.",
)
@click.option(
    "--trust-as-is",
    is_flag=True,
    help="Accept --masterlist files whose signer a CSCA inside the list itself certifies "
    "(only for files obtained through a channel you trust).",
)
@click.option(
    "--csca",
    "csca_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A directory of trusted CSCA certificates (.cer/.crt/.der/.pem). Repeatable.",
)
@click.option(
    "--crl",
    "crls",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CRL of a trusted CSCA. Repeatable.",
)
@click.option("--aa-challenge", help="The 8-byte Active Authentication challenge, in hex.")
@click.option(
    "--aa-signature",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The chip's answer to INTERNAL AUTHENTICATE (binary file).",
)
@click.option(
    "--require",
    type=click.Choice(sorted(_REQUIRE)),
    default="either",
    show_default=True,
    help="Clone-resistance proof required for a genuine verdict.",
)
@click.option("--require-crl", is_flag=True, help="Require a current CRL of the issuing CSCA.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_command(  # noqa: PLR0917 (click passes every option as a parameter)
    directory: Path,
    masterlists: tuple[Path, ...],
    trust_as_is: bool,
    csca_dirs: tuple[Path, ...],
    crls: tuple[Path, ...],
    aa_challenge: str | None,
    aa_signature: Path | None,
    require: str,
    require_crl: bool,
    as_json: bool,
) -> None:
    """Verify the document dumped in DIRECTORY."""
    groups, sod, _ = read_dump(directory)
    if (aa_challenge is None) != (aa_signature is None):
        raise click.UsageError("give --aa-challenge and --aa-signature together")
    try:
        challenge = bytes.fromhex(aa_challenge) if aa_challenge is not None else None
    except ValueError:
        raise click.UsageError("--aa-challenge must be hex") from None
    signature = aa_signature.read_bytes() if aa_signature is not None else None
    if challenge is None:
        # What `card read --save` wrote next to the files, if anything.
        try:
            saved = read_dump_files(directory)
        except MacnssAuthError as exc:
            raise click.UsageError(str(exc)) from None
        if saved.aa_challenge is not None and saved.aa_signature is not None:
            challenge, signature = saved.aa_challenge, saved.aa_signature
    holder: dict[str, str] | None = None
    if 1 in groups:
        try:
            holder = holder_data(groups[1])
        except MacnssAuthError:
            holder = None  # the dg1_hash check and the verdict say what is wrong
    store = TrustStore()
    try:
        # CSCAs first: a master list's signer must chain to one of them.
        for path in csca_dirs:
            store.load_directory(path)
        for path in masterlists:
            store.load_master_list(path.read_bytes(), name=path.name, trust_as_is=trust_as_is)
            how = "trusted as is (--trust-as-is)" if trust_as_is else "signer chains to a --csca"
            click.echo(f"master list {path.name}: {how}", err=True)
        for path in crls:
            store.add_crl(path.read_bytes())
    except MacnssAuthError as exc:
        click.echo(f"error: trust material refused: {exc}", err=True)
        raise SystemExit(1) from None
    policy = VerificationPolicy(chip_authenticity=_REQUIRE[require], require_crl=require_crl)
    result = inspect_document(
        data_groups=groups,
        sod=sod,
        trust_store=store,
        clock=SystemClock(),
        policy=policy,
        aa_challenge=challenge,
        aa_signature=signature,
    )
    if as_json:
        body = result.to_dict()
        body["dg1"] = holder
        click.echo(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        if holder is not None:
            echo_holder(holder)
        width = max(len(c.name) for c in result.checks)
        for check in result.checks:
            click.echo(f"{check.status.value:<13} {check.name:<{width}}  {check.reason}")
        verdict = "GENUINE" if result.genuine else "NOT GENUINE"
        click.echo(f"{verdict}: {result.verdict_reason}")
    raise SystemExit(0 if result.genuine else 1)

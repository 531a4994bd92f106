"""``macnss-auth card``: issue virtual eID cards and emulate them for readers.

``issue`` personalizes a card from a profile (standard or quirk profile) and
writes it to a directory (the card in DIR, the trust anchors -- CSCA
certificate, signed master list, CRL -- in DIR/trust/). ``emulate`` serves a
saved card, or with ``--files DIR`` a dump of files read from a real chip
(``DG1.bin``/``Datagroup1.bin``, ``EF_COM.bin``, ``EF_SOD.bin``, optional
``CardAccess.bin``: see :mod:`macnss_auth.nfc.card.dump`), over nfcpy's ``udp``
link or to pcscd's vpcd driver, tap after tap, until Ctrl-C (or
``--duration``): ``--vpcd`` connects to a listening vpcd (forward mode,
Debian's default reader.conf.d entry), ``--vpcd-listen`` listens for vpcd
(reverse mode, ``DEVICENAME 127.0.0.1:0x8C7B``). All bind or connect to
loopback only.

The group is a plain :class:`click.Group`: more subcommands (``read``) attach
with ``@command.command(...)`` in their own module or here.
"""

from __future__ import annotations

import threading
from pathlib import Path

import attrs
import click

from macnss_auth.clock import SystemClock, SystemRandom
from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.card import (
    PROFILES,
    QUIRK_PROFILES,
    CardData,
    FaultPlan,
    VirtualCard,
    card_from_dump,
    clone_card,
    forge_card,
    issue_card,
    load_card,
    save_card,
)
from macnss_auth.nfc.card.issuer import Person
from macnss_auth.nfc.chip_auth import CA_VERSIONS
from macnss_auth.nfc.serve import VPCD_PORT, UdpCardServer, VpcdCardClient, VpcdCardServer

__all__ = ["command"]


def _host_port(text: str, default_port: int | None) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        host, port = text, ""
    if not port:
        if default_port is None:
            raise click.BadParameter(f"{text!r}: give HOST:PORT")
        return host, default_port
    if not port.isdigit():
        raise click.BadParameter(f"{text!r}: the port must be a number")
    return host, int(port)


def _mrz_key(data: CardData) -> str:
    info = data.secrets.mrz_information
    return f"{info[0:9].rstrip('<')}:{info[10:16]}:{info[17:23]}"


@click.group("card")
def command() -> None:
    """Virtual eID cards for development and kiosks without NFC hardware."""


@command.command("issue")
@click.option(
    "--profile",
    "profile_name",
    type=click.Choice(sorted(PROFILES) + sorted(QUIRK_PROFILES)),
    default="cnie",
    show_default=True,
    help="What kind of card to make (a standard profile, or a quirk profile modeled on "
    "a real-chip behaviour).",
)
@click.option("--can", metavar="DIGITS", help="The six-digit card access number (PACE cards).")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the card to (trust anchors go to OUT/trust/).",
)
@click.option(
    "--mode",
    type=click.Choice(["genuine", "clone", "forgery"]),
    default="genuine",
    show_default=True,
    help="clone: no chip private keys; forgery: the name in DG1 edited after signing.",
)
@click.option("--document-number", default=None, help="Document number (up to 9 characters).")
@click.option("--date-of-birth", default=None, metavar="YYMMDD")
@click.option("--date-of-expiry", default=None, metavar="YYMMDD")
@click.option(
    "--ca-version",
    type=click.IntRange(min(CA_VERSIONS), max(CA_VERSIONS)),
    default=None,
    help="Chip Authentication version the chip speaks (default: the profile's, 1); "
    "2 = nonce and token (BSI TR-03110-2).",
)
def issue(
    *,
    profile_name: str,
    can: str | None,
    out: Path,
    mode: str,
    document_number: str | None,
    date_of_birth: str | None,
    date_of_expiry: str | None,
    ca_version: int | None,
) -> None:
    """Personalize a test card and save it to OUT."""
    person = Person()
    changes = {
        "document_number": document_number,
        "date_of_birth": date_of_birth,
        "date_of_expiry": date_of_expiry,
    }
    for field, value in changes.items():
        if value is not None:
            person = attrs.evolve(person, **{field: value})
    try:
        issued = issue_card(
            profile_name,
            clock=SystemClock(),
            person=person,
            can=can,
            chip_authentication_version=ca_version,
        )
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None
    if mode == "clone":
        issued = attrs.evolve(issued, data=clone_card(issued.data))
    elif mode == "forgery":
        issued = attrs.evolve(issued, data=forge_card(issued.data))
    save_card(issued, out)
    secrets = issued.data.secrets
    click.echo(f"card:      {out} ({profile_name}, {mode})")
    click.echo(
        f"MRZ key:   document {person.document_number}, born {person.date_of_birth}, "
        f"expires {person.date_of_expiry}"
    )
    if secrets.can is not None:
        click.echo(f"CAN:       {secrets.can}")
    click.echo(f"trust:     {out / 'trust'} (csca.der, masterlist.ml, csca.crl)")


@command.command("emulate")
@click.argument(
    "directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--files",
    "files",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Serve a dump of files read from a chip (DG1.bin, EF_COM.bin, EF_SOD.bin...) "
    "instead of a saved card. The chip keys are not in a dump: CA and AA are refused.",
)
@click.option(
    "--profile",
    "profile_name",
    type=click.Choice(sorted(PROFILES) + sorted(QUIRK_PROFILES)),
    default=None,
    help="Issue a fresh card of this profile (standard or quirk) and serve it; its trust "
    "anchors can be saved with --trust-out.",
)
@click.option(
    "--trust-out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --profile: save the card there too; its trust anchors (CSCA certificate, "
    "master list, CRL) are in DIR/trust/.",
)
@click.option(
    "--access",
    type=click.Choice(["auto", "pace", "bac"]),
    default="auto",
    show_default=True,
    help="With --files: BAC with the MRZ of DG1, PACE (MRZ or --can) as well, or PACE "
    "when the dump has CardAccess.bin (auto).",
)
@click.option(
    "--can",
    "dump_can",
    default="123456",
    show_default=True,
    help="With --files or --profile: the CAN the card accepts for PACE.",
)
@click.option("--udp", "udp", metavar="HOST:PORT", help="Serve on nfcpy's udp link (default).")
@click.option(
    "--vpcd",
    "vpcd",
    metavar="HOST[:PORT]",
    help=f"Connect to pcscd's vpcd driver, forward mode (port {VPCD_PORT} by default).",
)
@click.option(
    "--vpcd-listen",
    "vpcd_listen",
    metavar="HOST[:PORT]",
    help=(
        f"Listen for pcscd's vpcd driver, reverse mode: reader.conf.d DEVICENAME "
        f"127.0.0.1:0x{VPCD_PORT:X} (port {VPCD_PORT} by default; start before pcscd)."
    ),
)
@click.option("--delay", type=float, default=0.0, help="Fault: seconds before every answer.")
@click.option("--drop-every", type=int, default=None, help="Fault: lose every N-th answer.")
@click.option("--remove-after", type=int, default=None, help="Fault: leave after N commands.")
@click.option("--wtx-storm", type=int, default=0, help="Fault: WTX requests before answers.")
@click.option(
    "--duration", type=float, default=None, help="Stop after this many seconds (default: never)."
)
def emulate(
    *,
    directory: Path | None,
    files: Path | None,
    profile_name: str | None,
    trust_out: Path | None,
    access: str,
    dump_can: str,
    udp: str | None,
    vpcd: str | None,
    vpcd_listen: str | None,
    delay: float,
    drop_every: int | None,
    remove_after: int | None,
    wtx_storm: int,
    duration: float | None,
) -> None:
    """Serve the card saved in DIRECTORY (or the dump in --files DIR) until Ctrl-C."""
    if sum(1 for given in (udp, vpcd, vpcd_listen) if given) > 1:
        raise click.UsageError("give one of --udp, --vpcd and --vpcd-listen")
    if sum(1 for given in (directory, files, profile_name) if given is not None) != 1:
        raise click.UsageError("give one of a card DIRECTORY, --files DIR and --profile NAME")
    try:
        data: CardData
        if profile_name is not None:
            issued = issue_card(profile_name, clock=SystemClock(), can=dump_can)
            data = issued.data
            if trust_out is not None:
                save_card(issued, trust_out)
            click.echo(f"CAN {issued.data.secrets.can}, MRZ key {_mrz_key(data)}")
        elif files is not None:
            pace = {"auto": None, "pace": True, "bac": False}[access]
            data = card_from_dump(files, can=dump_can, pace=pace)
        else:
            data = load_card(directory or Path())
        faults = FaultPlan(
            delay=delay, drop_every=drop_every, remove_after=remove_after, wtx_storm=wtx_storm
        )
        card = VirtualCard(data, random=SystemRandom())
        server: UdpCardServer | VpcdCardClient | VpcdCardServer
        if vpcd_listen:
            host, port = _host_port(vpcd_listen, VPCD_PORT)
            server = VpcdCardServer(card, host=host, port=port, faults=faults)
            where = f"{host}:{port}, waiting for vpcd (reverse mode, reader 'Virtual PCD')"
        elif vpcd:
            host, port = _host_port(vpcd, VPCD_PORT)
            server = VpcdCardClient(card, host=host, port=port, faults=faults)
            where = f"vpcd at {host}:{port} (reader 'Virtual PCD')"
        else:
            host, port = _host_port(udp or "127.0.0.1:0", 0)
            server = UdpCardServer(card, host=host, port=port, faults=faults)
            where = f"nfcpy path {server.device_path}"
        server.start()
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None
    source = files if files is not None else directory
    click.echo(f"emulating {data.profile.name} card from {source} on {where}; Ctrl-C to stop")
    stop = threading.Event()
    try:
        stop.wait(duration)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()

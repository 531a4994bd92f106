"""``macnss-auth card read`` and ``macnss-auth kiosk``: read real or virtual cards.

``--device`` takes an nfcpy path (``usb``, ``usb:VID:PID``, ``tty:...``,
``udp:127.0.0.1:PORT`` for the virtual card) or ``pcsc`` / ``pcsc:N`` /
``pcsc:NAME`` for a PC/SC reader. ``--trust`` takes a CSCA master list, a
certificate, or a directory of certificates and master lists.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import attrs
import click

from macnss_auth.clock import SystemClock, SystemRandom
from macnss_auth.errors import AccessDenied, ConfigurationError, MacnssAuthError
from macnss_auth.nfc.card.dump import DumpFiles, write_dump
from macnss_auth.nfc.kiosk import Kiosk, KioskOutcome
from macnss_auth.nfc.kiosk_config import (
    KioskConfig,
    authenticator_for,
    build_kiosk,
    load_kiosk_config,
)
from macnss_auth.nfc.lds import image_dimensions, parse_dg1, parse_dg2
from macnss_auth.nfc.mrz import CAN, PIN, MrzKey
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.reader import DocumentRead, DocumentReader
from macnss_auth.nfc.transports import NfcpyTransport, PcscTransport

__all__ = ["holder_data", "kiosk_command", "load_trust", "open_transport", "read_command"]


def open_transport(device: str, *, timeout: float) -> Transport:
    """A connected transport for ``device`` (waits up to ``timeout`` s for a card).

    Raises:
        ConfigurationError: a device that cannot be opened.
        TransportError: no card in time.
    """
    if device == "pcsc" or device.startswith("pcsc:"):
        name = device.partition(":")[2]
        reader: int | str = int(name) if name.isdigit() else (name or 0)
        pcsc = PcscTransport(reader, timeout=timeout)
        pcsc.connect()
        return pcsc
    nfc = NfcpyTransport(device, timeout=timeout)
    nfc.connect()
    return nfc


def load_trust(path: str | None, *, trust_as_is: bool = False) -> TrustStore:
    """Trust anchors from a master list, a certificate or a directory of both (and CRLs).

    Certificates are trusted first; a master list's signer must then chain to
    one of them, unless ``trust_as_is`` accepts a list certified by a CSCA
    inside itself. Which way each list was trusted is said on stderr.

    Raises:
        ConfigurationError: the path does not exist.
        MalformedInput: a file that is neither.
    """
    store = TrustStore()
    if path is None:
        return store
    target = Path(path)
    if not target.exists():
        raise ConfigurationError(f"no such trust path: {path}")
    files = sorted(target.iterdir()) if target.is_dir() else [target]
    # Certificates first: a master list's signer must chain to one of them.
    if target.is_dir():
        store.load_directory(target)
    elif target.suffix.lower() != ".ml":
        store.add_csca(target.read_bytes(), detail=f"file {target.name}")
    for file in files:
        if file.suffix.lower() == ".ml":
            store.load_master_list(file.read_bytes(), name=file.name, trust_as_is=trust_as_is)
            how = "trusted as is (--trust-as-is)" if trust_as_is else "signer chains to a CSCA"
            click.echo(f"master list {file.name}: {how}", err=True)
    # CRLs last: each must be signed by a CSCA trusted above.
    for file in files:
        if file.suffix.lower() == ".crl":
            store.add_crl(file.read_bytes())
    return store


def _pin() -> PIN:
    # Only ever asked for, never an argument (arguments show in `ps` and shell
    # history), and held as a Secret: its repr is redacted, nothing logs it.
    text = click.prompt("PIN", hide_input=True, err=True)
    try:
        return PIN(text)
    except MacnssAuthError as exc:
        raise click.BadParameter(str(exc), param_hint="--pin") from None


def _password(can: str | None, mrz: str | None, *, pin: bool = False) -> CAN | MrzKey | PIN:
    if pin:
        if can is not None or mrz is not None:
            raise click.UsageError("give one of --can, --mrz and --pin")
        return _pin()
    if can is not None and mrz is not None:
        raise click.UsageError("give exactly one of --can and --mrz")
    if can is None and mrz is None:
        # Asked for, not passed as an argument: arguments show in `ps` and shell history.
        can = click.prompt("CAN (6 digits, printed on the card)", hide_input=True, err=True)
    if can is not None:
        try:
            return CAN(can)
        except MacnssAuthError as exc:
            raise click.BadParameter(str(exc), param_hint="--can") from None
    parts = (mrz or "").split(":")
    if len(parts) != 3:
        raise click.BadParameter("--mrz is DOCUMENT_NUMBER:YYMMDD_BIRTH:YYMMDD_EXPIRY")
    return MrzKey(*parts)


def holder_data(dg1: bytes) -> dict[str, str]:
    """The DG1 fields ``card read`` and ``document verify`` report.

    Raises:
        MacnssAuthError: DG1 is not an MRZ.
    """
    mrz = parse_dg1(dg1)
    return {
        "document_code": mrz.document_code,
        "issuing_state": mrz.issuing_state,
        "document_number": mrz.document_number,
        "surname": mrz.primary_identifier,
        "given_names": mrz.secondary_identifier,
        "nationality": mrz.nationality,
        "date_of_birth": mrz.date_of_birth,
        "sex": mrz.sex,
        "date_of_expiry": mrz.date_of_expiry,
    }


def echo_holder(dg1: dict[str, str]) -> None:
    """The holder's name and document, for people."""
    click.echo(f"{dg1['given_names']} {dg1['surname']}".replace("<", " ").strip())
    click.echo(f"document {dg1['document_number'].rstrip('<')} ({dg1['issuing_state']})")


def _progress(name: str, done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    bar = "#" * filled + "." * (width - filled)
    click.echo(f"\r{name:>4} [{bar}] {done}/{total} B", nl=done >= total, err=True)


device_option = click.option(
    "--device", required=True, help="usb, usb:VID:PID, tty:..., udp:HOST:PORT, pcsc[:N|:NAME]"
)
trust_option = click.option(
    "--trust", "trust_path", default=None, help="CSCA master list, certificate or directory."
)


@click.command("read")
@device_option
@click.option("--can", default=None, help="The 6-digit card access number (asked if omitted).")
@click.option("--mrz", default=None, help="DOCUMENT_NUMBER:YYMMDD_BIRTH:YYMMDD_EXPIRY")
@click.option("--pin", "use_pin", is_flag=True, help="Open the card with its PIN (asked, hidden).")
@trust_option
@click.option(
    "--trust-as-is",
    is_flag=True,
    help="Accept a master list whose signer a CSCA inside the list certifies.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: DG1 fields, genuine, checks.")
@click.option("--face", type=click.Path(dir_okay=False), default=None, help="Save the face image.")
@click.option(
    "--save",
    "save_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the files read (EF_COM.bin, EF_SOD.bin, DG<n>.bin, CardAccess.bin, "
    "AA_challenge.bin, AA_signature.bin) to this directory, for `document verify`.",
)
@click.option("--timeout", default=20.0, show_default=True, help="Seconds to wait for a card.")
def read_command(
    *,
    device: str,
    can: str | None,
    mrz: str | None,
    use_pin: bool,
    trust_path: str | None,
    trust_as_is: bool,
    as_json: bool,
    face: str | None,
    save_dir: Path | None,
    timeout: float,
) -> None:
    """Read a card, verify it, and print a summary (exit status 0 only if genuine)."""
    password = _password(can, mrz, pin=use_pin)
    try:
        trust = load_trust(trust_path, trust_as_is=trust_as_is)
        transport = open_transport(device, timeout=timeout)
        reader = DocumentReader(transport, random=SystemRandom(), progress=_progress)
        document = reader.read(password, active_auth_challenge=SystemRandom().token_bytes(8))
        verification = document.verify(trust, clock=SystemClock())
    except AccessDenied as exc:
        left = exc.remaining_attempts
        tries = "" if left is None else f" ({left} {'try' if left == 1 else 'tries'} left)"
        raise click.ClickException(f"{type(exc).__name__}: {exc}{tries}") from exc
    except MacnssAuthError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    if "DG1" not in document.files:
        raise click.ClickException("the card has no DG1: not a usable document")
    if save_dir is not None:
        _save(save_dir, document)
    try:
        dg1 = holder_data(document.files["DG1"])
    except MacnssAuthError as exc:
        raise click.ClickException(f"DG1 cannot be read: {exc}") from exc
    summary: dict[str, Any] = {
        "genuine": verification.genuine,
        "verdict_reason": verification.verdict_reason,
        "access": document.access.value,
        "chip_authentication": document.chip_authentication,
        "dg1": dg1,
        "files": {name: len(data) for name, data in sorted(document.files.items())},
        "round_trips": document.round_trips,
        "checks": verification.to_dict()["checks"],
    }
    if "DG2" in document.files:
        summary["face"] = _face(document.files["DG2"], face)
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        echo_holder(dg1)
        verdict = "GENUINE" if verification.genuine else "NOT GENUINE"
        click.echo(f"{verdict}: {verification.verdict_reason}")
        for check in verification.checks:
            click.echo(f"  {check.status.value:>13}  {check.name}: {check.reason}")
    if not verification.genuine:
        sys.exit(1)


def _save(directory: Path, document: DocumentRead) -> None:
    groups = document.data_groups
    files = DumpFiles(
        groups,
        sod=document.files.get("SOD"),
        com=document.files.get("COM"),
        card_access=document.card_access,
        aa_challenge=document.active_auth_challenge,
        aa_signature=document.active_auth_signature,
    )
    written = write_dump(directory, files)
    click.echo(f"saved {len(written)} files to {directory}", err=True)


def _face(dg2: bytes, path: str | None) -> dict[str, Any]:
    """What DG2's first face is (type, size), saved to ``path`` if given; never raises."""
    try:
        faces = parse_dg2(dg2).faces
    except MacnssAuthError as exc:
        return {"error": str(exc)}
    if not faces:
        return {"error": "DG2 holds no face"}
    image = faces[0]
    out: dict[str, Any] = {"type": image.image_type.value, "bytes": len(image.image)}
    size = image_dimensions(image.image)
    if size is not None:
        out["width"], out["height"] = size
    if path is not None:
        Path(path).write_bytes(image.image)
        out["path"] = path
    return out


@click.command("kiosk")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A kiosk configuration file (TOML, see docs/kiosk.md): log enrolled people in.",
)
@click.option(
    "--device", default=None, help="usb, usb:VID:PID, tty:..., udp:HOST:PORT, pcsc[:N|:NAME]"
)
@trust_option
@click.option("--once", is_flag=True, help="Serve one person, then exit.")
@click.option(
    "--pin", "use_pin", is_flag=True, help="Ask for the card's PIN (hidden) instead of the CAN."
)
@click.option("--timeout", default=None, type=float, help="Seconds to wait for a card [60].")
@click.option(
    "--enroll",
    "enroll_subject",
    default=None,
    help="With --config: bind this subject to a card (--document-number or --personal-number).",
)
@click.option("--document-number", default=None, help="With --enroll: the card's number.")
@click.option("--personal-number", default=None, help="With --enroll: the national number.")
def kiosk_command(
    *,
    config_path: Path | None,
    device: str | None,
    trust_path: str | None,
    once: bool,
    use_pin: bool,
    timeout: float | None,
    enroll_subject: str | None,
    document_number: str | None,
    personal_number: str | None,
) -> None:
    """A kiosk loop: language, identifier, card, verify, sign in; fallbacks when it fails.

    Without --config it verifies cards (nobody is logged in); with --config it
    binds each card to the enrolled person and writes the audit record.
    """
    try:
        config = load_kiosk_config(config_path) if config_path is not None else None
        trust = load_trust(
            trust_path
            if trust_path is not None or config is None or config.trust is None
            else str(config.trust)
        )
    except MacnssAuthError as exc:
        raise click.ClickException(str(exc)) from exc
    if enroll_subject is not None:
        _enroll(config, trust, enroll_subject, document_number, personal_number)
        return
    device = device or (config.device if config is not None else None)
    if device is None:
        raise click.UsageError("give --device or --config")
    wait = timeout if timeout is not None else (config.card_timeout if config else 60.0)
    common: dict[str, Any] = {
        "connect": lambda: open_transport(device, timeout=wait),
        "trust_store": trust,
        "ask": lambda prompt: click.prompt(prompt, hide_input=False, err=False),
        "ask_secret": lambda prompt: click.prompt(prompt, hide_input=True, err=False),
        "say": click.echo,
        "progress": _progress,
    }
    try:
        if config is not None:
            if use_pin:
                config = attrs.evolve(config, password="pin")  # noqa: S106 (a kind, not a password)
            kiosk = build_kiosk(config, **common)
        else:
            kiosk = Kiosk(random=SystemRandom(), clock=SystemClock(), use_pin=use_pin, **common)
    except MacnssAuthError as exc:
        raise click.ClickException(str(exc)) from exc
    while True:
        try:
            result = kiosk.serve_one()
        except click.Abort:
            break
        if result.outcome is KioskOutcome.CANCELLED or once:
            ok = result.outcome in (KioskOutcome.VERIFIED, KioskOutcome.SIGNED_IN)
            sys.exit(0 if ok else 1)


def _enroll(
    config: KioskConfig | None,
    trust: TrustStore,
    subject: str,
    document_number: str | None,
    personal_number: str | None,
) -> None:
    if config is None:
        raise click.UsageError("--enroll needs --config (the store and keys to enroll into)")
    try:
        authenticator = authenticator_for(config, trust_store=trust)
        if authenticator is None:
            raise click.UsageError('--enroll needs people.lookup other than "none"')
        authenticator.enroll(
            subject, document_number=document_number, personal_number=personal_number
        )
    except MacnssAuthError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"enrolled {subject}")

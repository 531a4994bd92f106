"""``macnss-auth masterlist show FILE``: verify a CSCA master list and list its CSCAs.

Exit status: 0 when the list's signature and signer verify, 1 otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from macnss_auth.errors import MacnssAuthError
from macnss_auth.nfc.pki import Certificate, parse_master_list

__all__ = ["command"]


def _describe(cert: Certificate) -> dict[str, Any]:
    key = cert.public_key
    kind = "self-signed" if cert.self_issued else "link"
    if cert.self_issued and cert.authority_key_identifier not in (
        None,
        cert.subject_key_identifier,
    ):
        kind = "link (same name, new key)"
    return {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "country": cert.country,
        "serial_number": cert.serial_number,
        "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(),
        "key": f"{key.algorithm.upper()}-{key.key_size}" + (f" {key.curve}" if key.curve else ""),
        "kind": kind,
        "sha256": cert.fingerprint.hex(),
    }


@click.group(name="masterlist")
def command() -> None:
    """Inspect CSCA master lists."""


@command.command(name="show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--country", help="Only list CSCAs of this country (e.g. MA).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_command(file: Path, country: str | None, as_json: bool) -> None:
    """Verify FILE's signature and list the CSCA certificates in it."""
    try:
        master = parse_master_list(file.read_bytes())
    except MacnssAuthError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    signer = master.signer
    try:
        issuer = master.verify()
        verified, reason = (
            True,
            f"signed by {signer.subject if signer else '?'}, certified by {issuer.subject}",
        )
    except MacnssAuthError as exc:
        verified, reason = False, str(exc)
    listed = master.by_country(country) if country else master.certificates
    if as_json:
        body = {
            "file": file.name,
            "signature_verified": verified,
            "signature": reason,
            "certificates_total": len(master.certificates),
            "unparsable_entries": master.skipped,
            "certificates": [_describe(c) for c in listed],
        }
        click.echo(json.dumps(body, indent=2))
    else:
        click.echo(f"{file.name}: {len(master.certificates)} certificates")
        click.echo(f"signature: {'VERIFIED' if verified else 'NOT VERIFIED'} ({reason})")
        if master.skipped:
            click.echo(f"unparsable entries skipped: {master.skipped}")
        for cert in listed:
            item = _describe(cert)
            validity = f"{item['not_before'][:10]}..{item['not_after'][:10]}"
            click.echo(
                f"- {item['subject']} | serial {item['serial_number']} | "
                f"{validity} | {item['key']} | {item['kind']}"
            )
        if country:
            click.echo(f"{len(listed)} certificate(s) for {country.upper()}")
    raise SystemExit(0 if verified else 1)

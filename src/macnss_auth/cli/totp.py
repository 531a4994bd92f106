"""``macnss-auth totp``: enroll an authenticator app, confirm it, verify codes.

State lives in the data directory (see :mod:`macnss_auth.cli.home`): the
default SQLite store ``HOME/state.sqlite3`` with secrets sealed under
``HOME/keyring.key``, and the audit log in the same file (each check and its
record are one commit; a home with an older ``HOME/audit.sqlite3`` keeps it).

Exit status: 0 only on success; 1 when the code is refused (wrong, replayed,
throttled, locked out, nothing to confirm), with the reason on one line; 2
for usage errors, including a code that is not digits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from macnss_auth.authenticator import AuthResult
from macnss_auth.cli.home import (
    exit_refused,
    home_option,
    load_keyring,
    open_state,
    resolve_home,
    write_private,
)
from macnss_auth.errors import AuthenticationFailed, ConfigurationError, MalformedInput
from macnss_auth.otp.enrollment import OtpParameters
from macnss_auth.otp.totp import TotpAuthenticator

__all__ = ["command"]


@contextlib.contextmanager
def _authenticator(
    home_dir: str | None, issuer: str = "macnss-auth"
) -> Iterator[TotpAuthenticator]:
    home = resolve_home(home_dir)
    try:
        keyring = load_keyring(home)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    with open_state(home, keyring) as (store, audit):
        yield TotpAuthenticator(store=store, audit=audit, issuer=issuer)


def _check_code(
    home: str | None,
    subject: str,
    code: str,
    check: Callable[[TotpAuthenticator, str, str], AuthResult],
    what: str,
) -> None:
    """Run ``check`` (confirm or verify) on SUBJECT's CODE; print the result or exit."""
    with _authenticator(home) as totp:
        try:
            result = check(totp, subject, code)
        except MalformedInput as exc:
            raise click.BadParameter(str(exc), param_hint="CODE") from None
        except AuthenticationFailed as exc:
            exit_refused(exc)
    drift = result.details.get("drift", "0")
    click.echo(f"{what}: {result.subject} (drift {drift} steps)")


@click.group("totp")
def command() -> None:
    """Authenticator-app codes (TOTP, RFC 6238): enroll, confirm, verify."""


@command.command("enroll")
@click.argument("subject")
@home_option
@click.option("--issuer", default="macnss-auth", show_default=True, help="Name the app shows.")
@click.option("--account", default=None, help="Account name the app shows (default: SUBJECT).")
@click.option(
    "--algorithm",
    type=click.Choice(["SHA1", "SHA256", "SHA512"], case_sensitive=False),
    default="SHA1",
    show_default=True,
    help="HMAC hash; several apps ignore anything but SHA1.",
)
@click.option("--digits", type=click.IntRange(6, 8), default=6, show_default=True)
@click.option("--period", type=click.IntRange(1, 600), default=30, show_default=True)
@click.option(
    "--svg", type=click.Path(dir_okay=False, path_type=Path), help="Also write an SVG QR."
)
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), help="Also write a PNG QR.")
@click.option("--no-qr", is_flag=True, help="Do not draw the QR code in the terminal.")
def enroll(  # noqa: PLR0917 (click passes every option as an argument)
    subject: str,
    home: str | None,
    issuer: str,
    account: str | None,
    algorithm: str,
    digits: int,
    period: int,
    svg: Path | None,
    png: Path | None,
    no_qr: bool,
) -> None:
    """Start an enrollment for SUBJECT: show the QR code, the otpauth:// URI and the secret.

    The enrollment stays pending until `macnss-auth totp confirm SUBJECT CODE`.
    """
    params = OtpParameters(algorithm=algorithm, digits=digits, period=period)
    with _authenticator(home, issuer) as totp:
        try:
            provisioning = totp.enroll(subject, account=account, parameters=params)
        except ConfigurationError as exc:
            raise click.UsageError(str(exc)) from None
    if not no_qr:
        click.echo(provisioning.qr_terminal())
    click.echo(f"URI:    {provisioning.uri}")
    click.echo(f"Secret: {provisioning.manual_entry_key}")
    click.echo(
        f"        ({params.algorithm.value}, {params.digits} digits, {params.period} s; time-based)"
    )
    # The QR codes hold the seed: owner-only files.
    if svg is not None:
        write_private(svg, provisioning.qr_svg().encode("utf-8"))
    if png is not None:
        write_private(png, provisioning.qr_png())
    click.echo(
        f"Pending until {provisioning.expires_at:%Y-%m-%d %H:%M:%S} UTC; "
        f"confirm with: macnss-auth totp confirm {subject} CODE"
    )


@command.command("confirm")
@click.argument("subject")
@click.argument("code")
@home_option
def confirm(subject: str, code: str, home: str | None) -> None:
    """Activate SUBJECT's pending enrollment with a first CODE from the app."""
    _check_code(home, subject, code, TotpAuthenticator.confirm, "confirmed")


@command.command("verify")
@click.argument("subject")
@click.argument("code")
@home_option
def verify(subject: str, code: str, home: str | None) -> None:
    """Check a CODE for SUBJECT (once: a code is never accepted twice)."""
    _check_code(home, subject, code, TotpAuthenticator.verify_code, "accepted")

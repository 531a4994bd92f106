"""``macnss-auth code``: one-time codes by SMS or e-mail, for the demo and for operators.

Messages go to the console (the whole message is printed, as a phone or a
mailbox would show it) or, with ``--outbox FILE``, are appended to a file;
services configure real channels (SMTP, HTTP gateway, SMPP) in code.

State lives in the data directory (see :mod:`macnss_auth.cli.home`): the
SQLite store ``HOME/state.sqlite3`` (destinations sealed under
``HOME/keyring.key``) with the audit log in the same file (a home with an
older ``HOME/audit.sqlite3`` keeps it), and the pepper
that keys code hashes, ``HOME/oob-pepper.key`` (created with mode 0600 on
first use) unless ``$MACNSS_AUTH_OOB_PEPPER`` gives it as 64 hex digits.

Exit status: 0 on success; 1 when a code is refused or cannot be sent (the
reason on one line); 2 for usage errors (a malformed number, address or code).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn, TypeVar

import click

from macnss_auth.authenticator import Challenge
from macnss_auth.cli.home import (
    exit_refused,
    home_option,
    load_key,
    load_keyring,
    open_state,
    resolve_home,
)
from macnss_auth.delivery.base import ChannelKind, DeliveryChannel
from macnss_auth.delivery.console import ConsoleChannel, FileChannel
from macnss_auth.errors import (
    AuthenticationFailed,
    ConfigurationError,
    DeliveryError,
    MalformedInput,
)
from macnss_auth.otp.oob import InlineDispatcher, OutOfBandAuthenticator
from macnss_auth.secret import Secret
from macnss_auth.store.sqlite import SQLiteStore

__all__ = ["PEPPER_ENV", "command", "load_pepper"]

_T = TypeVar("_T")

PEPPER_ENV = "MACNSS_AUTH_OOB_PEPPER"


def load_pepper(home: Path) -> Secret:
    """The code-hash pepper from ``$MACNSS_AUTH_OOB_PEPPER`` or ``HOME/oob-pepper.key``.

    Raises:
        ConfigurationError: the pepper is not 32 bytes of hex.
    """
    return load_key(home, "oob-pepper.key", PEPPER_ENV)


@contextlib.contextmanager
def _authenticator(
    home_dir: str | None,
    kind: ChannelKind,
    *,
    outbox: Path | None = None,
    service: str = "macnss-auth",
    language: str = "fr",
    region: str = "MA",
) -> Iterator[OutOfBandAuthenticator]:
    home = resolve_home(home_dir)
    try:
        keyring = load_keyring(home)
        pepper = load_pepper(home)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    channel: DeliveryChannel = (
        FileChannel(kind, path=outbox) if outbox is not None else ConsoleChannel(kind)
    )
    with open_state(home, keyring) as (store, audit):
        yield OutOfBandAuthenticator(
            kind=kind,
            channel=channel,
            store=store,
            pepper=pepper,
            audit=audit,
            dispatcher=InlineDispatcher(),
            service_name=service,
            language=language,
            region=region,
        )


def _undelivered(exc: DeliveryError) -> NoReturn:
    later = "try again later" if exc.retryable else "check the destination and the channel"
    click.echo(f"not sent: {exc} ({later}); the code was discarded", err=True)
    raise SystemExit(1)


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """End the command on a refused call: status 2 for malformed input, else 1 with the reason."""
    try:
        yield
    except MalformedInput as exc:
        raise click.UsageError(str(exc)) from None
    except AuthenticationFailed as exc:
        exit_refused(exc)
    except DeliveryError as exc:
        _undelivered(exc)


def _method_of(home_dir: str | None, challenge_id: str) -> ChannelKind:
    """Which channel a challenge belongs to (advisory read; verify decides)."""
    home = resolve_home(home_dir)
    store = SQLiteStore(home / "state.sqlite3", keyring=load_keyring(home))
    try:
        record = store.get_challenge(challenge_id)
    finally:
        store.close()
    if record is None or record.challenge.method not in ("sms", "email"):
        click.echo("refused: challenge_not_found", err=True)
        raise SystemExit(1)
    return ChannelKind(record.challenge.method)


def _answer(
    home: str | None,
    challenge_id: str,
    code: str,
    answer: Callable[[OutOfBandAuthenticator, str, str], _T],
) -> tuple[ChannelKind, _T]:
    """Run ``answer`` (confirm or verify) on CHALLENGE_ID's CODE, or exit with the refusal."""
    kind = _method_of(home, challenge_id)
    with _authenticator(home, kind) as auth, _refusals():
        return kind, answer(auth, challenge_id, code)


def _show_sent(challenge: Challenge, step: str) -> None:
    """Print where a code went and the command (``confirm`` or ``verify``) that takes it."""
    click.echo(f"challenge: {challenge.id}")
    click.echo(f"sent to:   {challenge.hint} (until {challenge.expires_at:%H:%M:%S} UTC)")
    click.echo(f"{step} with: macnss-auth code {step} {challenge.id} CODE")


_language = click.option(
    "--lang",
    "language",
    type=click.Choice(["ar", "fr", "en"]),
    default="fr",
    show_default=True,
    help="Message language.",
)
_outbox = click.option(
    "--outbox",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append messages to this file instead of printing them.",
)
_service = click.option(
    "--service", default="macnss-auth", show_default=True, help="Service name in messages."
)


@click.group("code")
def command() -> None:
    """One-time codes by SMS or e-mail: enroll a destination, send, verify."""


@command.command("enroll")
@click.argument("subject")
@click.option("--phone", default=None, help="Mobile number (national numbers: --region).")
@click.option("--email", default=None, help="E-mail address.")
@click.option("--region", default="MA", show_default=True, help="Region for national numbers.")
@home_option
@_language
@_outbox
@_service
def enroll(  # noqa: PLR0917 (click passes every option as an argument)
    subject: str,
    phone: str | None,
    email: str | None,
    region: str,
    home: str | None,
    language: str,
    outbox: Path | None,
    service: str,
) -> None:
    """Send a confirmation code to a new phone number or e-mail address of SUBJECT.

    The destination is used for logins only after `macnss-auth code confirm`.
    """
    if (phone is None) == (email is None):
        raise click.UsageError("give exactly one of --phone and --email")
    kind = ChannelKind.SMS if phone is not None else ChannelKind.EMAIL
    destination = phone if phone is not None else email
    assert destination is not None  # noqa: S101 (narrowing for mypy; checked above)
    with (
        _authenticator(
            home, kind, outbox=outbox, service=service, language=language, region=region
        ) as auth,
        _refusals(),
    ):
        challenge = auth.enroll(subject, destination)
    _show_sent(challenge, "confirm")


@command.command("confirm")
@click.argument("challenge_id")
@click.argument("code")
@home_option
def confirm(challenge_id: str, code: str, home: str | None) -> None:
    """Confirm a destination with the CODE it received."""
    kind, destination = _answer(home, challenge_id, code, OutOfBandAuthenticator.confirm)
    click.echo(f"confirmed: {destination.hint} ({kind.value})")


@command.command("send")
@click.argument("subject")
@click.option(
    "--channel",
    "kind",
    type=click.Choice(["sms", "email"]),
    required=True,
    help="Where to send the code.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the challenge as JSON.")
@home_option
@_language
@_outbox
@_service
def send(  # noqa: PLR0917 (click passes every option as an argument)
    subject: str,
    kind: str,
    as_json: bool,
    home: str | None,
    language: str,
    outbox: Path | None,
    service: str,
) -> None:
    """Send a login code to SUBJECT's confirmed destination.

    As for a public login form, the answer looks the same whether or not
    SUBJECT has a confirmed destination; only then is a message shown.
    """
    with (
        _authenticator(
            home, ChannelKind(kind), outbox=outbox, service=service, language=language
        ) as auth,
        _refusals(),
    ):
        challenge = auth.begin(subject)
    if as_json:
        click.echo(challenge.to_json())
        return
    _show_sent(challenge, "verify")


@command.command("verify")
@click.argument("challenge_id")
@click.argument("code")
@home_option
def verify(challenge_id: str, code: str, home: str | None) -> None:
    """Check a login CODE for CHALLENGE_ID."""
    _, result = _answer(home, challenge_id, code, OutOfBandAuthenticator.verify)
    click.echo(f"authenticated: {result.subject} ({result.method}, {result.assurance.eidas})")

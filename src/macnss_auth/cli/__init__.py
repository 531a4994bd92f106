"""The ``macnss-auth`` command.

click is used because it is the long-standing standard for Python CLIs, is
fully typed, and brings no further dependencies.

Each subcommand group lives in its own module under :mod:`macnss_auth.cli`
and exposes ``command`` (a :class:`click.Command`); the modules are listed in
``_SUBCOMMAND_MODULES`` and attached below, so adding a group is one line here.

A library error that a command does not handle itself (a state file that is
garbage, truncated or another application's, a bad key file) ends the
command with one line, ``Error: ...``, and exit status 1: the library's
messages are written to be shown and never hold secrets; a traceback would
only hide the one line that matters.
"""

from __future__ import annotations

import importlib

import click

from macnss_auth._version import __version__
from macnss_auth.errors import MacnssAuthError

__all__ = ["main"]

_SUBCOMMAND_MODULES: tuple[str, ...] = (
    "audit",
    "card",
    "code",
    "demo",
    "document",
    "keys",
    "masterlist",
    "serve",
    "totp",
)


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "failed"


class _Main(click.Group):
    """The command group; turns an unhandled library or file error into one line."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MacnssAuthError as exc:
            raise click.ClickException(_one_line(str(exc))) from None
        except OSError as exc:
            # A file of the data directory that cannot be read or written
            # (a directory in its place, no permission, a full disk).
            where = f" {exc.filename}" if exc.filename else ""
            reason = exc.strerror or type(exc).__name__
            raise click.ClickException(_one_line(f"cannot use{where}: {reason}")) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="macnss-auth")
def main() -> None:
    """Authenticate people with an eID card, an authenticator app, or a code by SMS or e-mail."""


for _name in _SUBCOMMAND_MODULES:
    _module = importlib.import_module(f"macnss_auth.cli.{_name}")
    main.add_command(_module.command)

# The reader lives apart from the card emulator: `card read` and `kiosk` need a real or
# virtual reader, `card issue/emulate` need none.
from macnss_auth.cli.reading import kiosk_command, read_command  # noqa: E402

main.add_command(kiosk_command)
_card = main.commands["card"]
if isinstance(_card, click.Group):
    _card.add_command(read_command)

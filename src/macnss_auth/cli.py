"""The ``macnss-auth`` command.

click is used because it is the long-standing standard for Python CLIs, is
fully typed, and brings no further dependencies. Subcommands live in small
groups below; each opens the state in the data directory (``--home``, or
``$MACNSS_AUTH_HOME``, or the per-user data directory).
"""

from __future__ import annotations

import click

from macnss_auth._version import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="macnss-auth")
def main() -> None:
    """Authenticate people with an eID card, an authenticator app, or a code by SMS or e-mail."""

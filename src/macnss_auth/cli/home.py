"""Where the CLI keeps its state: the data directory and its keyring.

Order of precedence: the ``--home`` option, ``$MACNSS_AUTH_HOME``, then the
per-user data directory (``$XDG_DATA_HOME/macnss-auth`` or
``~/.local/share/macnss-auth``). The directory holds ``state.sqlite3`` (the
store), ``audit.sqlite3`` (the audit log) and ``keyring.key`` (the AES key
that seals secrets at rest, created with mode 0600 on first use) unless
``$MACNSS_AUTH_KEY`` gives the key as 64 hex digits.

Commands open the store and the audit log with :func:`open_state` and report
a refused code with :func:`exit_refused`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import click

from macnss_auth.audit.sqlite import SQLiteAuditLog
from macnss_auth.clock import SystemRandom
from macnss_auth.errors import AuthenticationFailed, ConfigurationError
from macnss_auth.secret import Secret
from macnss_auth.store.keyring import Keyring
from macnss_auth.store.sqlite import SQLiteStore

__all__ = [
    "HOME_ENV",
    "KEY_ENV",
    "exit_refused",
    "home_option",
    "load_key",
    "load_keyring",
    "open_state",
    "resolve_home",
]

HOME_ENV = "MACNSS_AUTH_HOME"
KEY_ENV = "MACNSS_AUTH_KEY"


def resolve_home(option: str | None) -> Path:
    """The data directory, created if missing (mode 0700)."""
    if option:
        home = Path(option)
    elif os.environ.get(HOME_ENV):
        home = Path(os.environ[HOME_ENV])
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        home = Path(base) / "macnss-auth"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def load_key(home: Path, name: str, env: str) -> Secret:
    """A 32-byte key from ``$ENV`` (64 hex digits) or ``HOME/NAME`` (created, mode 0600).

    Creation uses O_EXCL, so two processes starting at once agree on one key.

    Raises:
        ConfigurationError: the key is not 64 hex digits.
    """
    text = os.environ.get(env)
    path = home / name
    if text is None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            text = path.read_text().strip()
        else:
            key = SystemRandom().token_bytes(32)
            with os.fdopen(fd, "w") as handle:
                handle.write(key.hex() + "\n")
            return Secret(key)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigurationError(f"the key in {name} / ${env} must be 64 hex digits") from None
    if len(key) != 32:
        raise ConfigurationError(f"the key in {name} / ${env} must be 64 hex digits")
    return Secret(key)


def load_keyring(home: Path) -> Keyring:
    """The keyring that seals secrets at rest: ``$MACNSS_AUTH_KEY`` or ``HOME/keyring.key``.

    Raises:
        ConfigurationError: the key is not 32 bytes of hex.
    """
    return Keyring({"k1": load_key(home, "keyring.key", KEY_ENV).reveal()}, primary="k1")


@contextlib.contextmanager
def open_state(home: Path, keyring: Keyring) -> Iterator[tuple[SQLiteStore, SQLiteAuditLog]]:
    """The store ``HOME/state.sqlite3`` (secrets sealed by ``keyring``) and the audit log.

    Yields ``(store, audit)`` with the audit log ``HOME/audit.sqlite3``; both
    are closed when the block ends.
    """
    store = SQLiteStore(home / "state.sqlite3", keyring=keyring)
    audit = SQLiteAuditLog(home / "audit.sqlite3")
    try:
        yield store, audit
    finally:
        audit.close()
        store.close()


def exit_refused(exc: AuthenticationFailed) -> NoReturn:
    """Say on stderr why a code was refused (reason, wait, attempts left); exit with status 1."""
    message = f"refused: {exc.reason.value}"
    if exc.retry_after:
        message += f" (retry after {exc.retry_after:.0f} s)"
    if exc.remaining_attempts is not None:
        message += f", {exc.remaining_attempts} attempts left"
    click.echo(message, err=True)
    raise SystemExit(1)


home_option = click.option(
    "--home",
    type=click.Path(file_okay=False),
    default=None,
    help=f"Data directory (default: ${HOME_ENV} or the per-user data directory).",
)

"""``macnss-auth keys``: rotate the key that seals the data directory's secrets.

* ``keys list`` names the keys of ``HOME/keyring.key``, the primary first
  (never their value).
* ``keys rotate`` adds a fresh random key as the primary (ids ``k2``,
  ``k3``...), then re-seals every secret of the home's store (and of each
  ``--database``, as ``serve`` takes it) under it. The old keys stay in the
  file, so nothing sealed anywhere else becomes unreadable.
* ``keys retire`` re-seals again and, once every named store has nothing
  left under an old key, removes the old keys from the file.

The file is replaced atomically at each step and always holds every key a
record may be sealed under: a crash or a refused secret leaves a ring that
opens everything, and running the command again goes on from there.
Commands already running (``serve``) keep the ring they read at start:
stop them before rotating and start them again after. ``rotate`` and
``retire`` hold ``HOME/.keyring.key.lock`` exclusively and refuse while a
``serve`` on this home (which holds it shared) or another of them runs (see
:func:`~macnss_auth.cli.home.keyring_lock`). They check every store they
are named before changing anything: a SQLite ``--database`` that does not
exist is a typo (opening it would create an empty store that "re-seals 0",
and ``retire`` would then drop the key the real one needs), and ``retire``
with no store at all has nothing to check the old keys against.

Each ``rotate`` and ``retire`` that changed something is recorded in the
home's audit log (where ``serve`` writes, see
:func:`~macnss_auth.cli.home.audit_path`; ``HOME/audit.sqlite3`` when the
home has no ``state.sqlite3``, as next to PostgreSQL): action
``rotate_keys`` or ``retire_keys``, method ``keyring``, the key ids (never a
key) and the secrets re-sealed per store (a URL's password masked). One that
fails after changing the ring or a store is recorded as a failure with what
it had done.

A key given by ``$MACNSS_AUTH_KEY`` lives outside the home; these commands
refuse to run then (rotate it where it is kept, with ``Store.reseal``: see
``docs/stores.md``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import click

from macnss_auth.audit.events import AuditAction, Outcome, record_event
from macnss_auth.audit.sqlite import SQLiteAuditLog
from macnss_auth.cli.home import (
    KEY_ENV,
    KEYRING_FILE,
    LEGACY_AUDIT_FILE,
    STATE_FILE,
    home_option,
    keyring_lock,
    load_key,
    open_state,
    read_keyring_file,
    resolve_home,
    write_keyring_file,
)
from macnss_auth.clock import SystemClock, SystemRandom
from macnss_auth.errors import ConfigurationError
from macnss_auth.store.base import Store
from macnss_auth.store.keyring import Keyring
from macnss_auth.store.sqlite import SQLiteStore

__all__ = ["command"]

_database_option = click.option(
    "--database",
    "databases",
    multiple=True,
    metavar="URL_OR_PATH",
    help="Another store sealed with this home's key (postgresql://... or a SQLite file);"
    " repeat for each.",
)


_POSTGRES = ("postgresql://", "postgres://")
KEYRING_METHOD = "keyring"
"""The ``method`` of the audit records of ``keys rotate`` and ``keys retire``."""


def _ring_file(home: Path) -> list[tuple[str, bytes]]:
    """The home's keys, the primary first (a first-form file, or none yet: ``k1``)."""
    if os.environ.get(KEY_ENV) is not None:
        raise click.ClickException(
            f"the key comes from ${KEY_ENV}, not from the home: rotate it where it is kept"
            " (Store.reseal, see docs/stores.md)"
        )
    keys = read_keyring_file(home)
    if keys is None:
        # The first form (or no file yet, which creates one), as every command reads it.
        keys = [("k1", load_key(home, KEYRING_FILE, KEY_ENV).reveal())]
    return keys


def _next_id(taken: list[str]) -> str:
    # Every k<digits> id counts (ids are at most 64 characters): an id left out here
    # could be the one proposed, and a ring with one id twice loses a key.
    numbers = [int(match[1]) for kid in taken if (match := re.fullmatch(r"k(\d+)", kid))]
    return f"k{max(numbers, default=0) + 1}"


def _targets(home: Path, databases: tuple[str, ...]) -> list[str | None]:
    """The stores to re-seal (``None``: the home's), each checked before anything changes."""
    targets: list[str | None] = [None] if (home / "state.sqlite3").exists() else []
    for database in databases:
        if not database.startswith(_POSTGRES) and not Path(database).is_file():
            raise click.ClickException(
                f"--database {_shown(database)}: no such SQLite file (a PostgreSQL store"
                " is named by a postgresql:// URL); nothing changed"
            )
        targets.append(database)
    return targets


def _open(home: Path, database: str | None, keyring: Keyring) -> Store:
    if database is None:
        return SQLiteStore(home / "state.sqlite3", keyring=keyring)
    if database.startswith(_POSTGRES):
        try:
            from macnss_auth.store.postgres import PostgresStore  # noqa: PLC0415 (extra)
        except ImportError as exc:
            raise ConfigurationError("PostgreSQL needs the postgres extra (psycopg)") from exc
        return PostgresStore(database, keyring=keyring)
    return SQLiteStore(Path(database), keyring=keyring)


def _reseal_all(
    home: Path, targets: list[str | None], keyring: Keyring, done: list[tuple[str, int]]
) -> None:
    """Re-seal each store of ``targets`` (see :func:`_targets`); report each.

    Appends ``(store as shown, secrets re-sealed)`` to ``done`` as each store
    finishes, so a failure part-way still says what was done.
    """
    for target in targets:
        store = _open(home, target, keyring)
        try:
            moved = store.reseal()
        finally:
            store.close()
        where = STATE_FILE if target is None else _shown(target)
        done.append((where, moved))
        click.echo(f"{where}: re-sealed {moved} secrets under {keyring.primary}")


def _record(
    home: Path,
    keyring: Keyring,
    *,
    action: AuditAction,
    outcome: Outcome,
    details: dict[str, str],
    done: list[tuple[str, int]],
) -> None:
    """Append what a ``keys`` command did to the home's audit log (never a key's value)."""
    details = {**details, "resealed": "; ".join(f"{where}={n}" for where, n in done) or "none"}
    with contextlib.ExitStack() as stack:
        if (home / STATE_FILE).exists():
            # The log in the store's file (or the older audit.sqlite3 next to it), as serve.
            _, audit = stack.enter_context(open_state(home, keyring))
        else:
            # No home store (serve --database postgresql://...): serve's log is audit.sqlite3.
            audit = SQLiteAuditLog(home / LEGACY_AUDIT_FILE)
            stack.callback(audit.close)
        record_event(
            audit,
            at=SystemClock().now(),
            action=action,
            method=KEYRING_METHOD,
            outcome=outcome,
            details=details,
        )


@contextlib.contextmanager
def _recorded(
    home: Path,
    keyring: Keyring,
    *,
    action: AuditAction,
    details: dict[str, str],
    done: list[tuple[str, int]],
) -> Iterator[None]:
    """Record the block's work as a success, or as a failure (then re-raise)."""
    try:
        yield
    except BaseException as exc:
        # The ring or a store may have changed already: the log says so, and how far it
        # got. The error that stopped the command is the one to report, not a second one
        # from the log (an unwritable home fails both).
        with contextlib.suppress(Exception):
            _record(
                home,
                keyring,
                action=action,
                outcome=Outcome.FAILURE,
                details={**details, "error": type(exc).__name__},
                done=done,
            )
        raise
    _record(home, keyring, action=action, outcome=Outcome.SUCCESS, details=details, done=done)


def _shown(database: str) -> str:
    # A URL's password, or a conninfo's, never reaches the terminal.
    shown = re.sub(r"//[^@/]*@", "//***@", database)
    return re.sub(r"(?i)(password\s*=\s*)\S+", r"\1***", shown)


@click.group("keys")
def command() -> None:
    """Rotate the key that seals secrets at rest (HOME/keyring.key)."""


@command.command("list")
@home_option
def list_keys(home: str | None) -> None:
    """Name the keys, the primary first (never their value)."""
    root = resolve_home(home)
    if not (root / KEYRING_FILE).exists() and os.environ.get(KEY_ENV) is None:
        # A listing makes nothing: the first command that seals a secret creates the key.
        raise click.ClickException(f"no keys yet: {root / KEYRING_FILE} does not exist")
    keys = _ring_file(root)
    for n, (key_id, _) in enumerate(keys):
        click.echo(f"{key_id} (primary)" if n == 0 else key_id)


@command.command("rotate")
@home_option
@_database_option
def rotate(home: str | None, databases: tuple[str, ...]) -> None:
    """Add a new primary key and re-seal every secret under it; the old keys stay."""
    root = resolve_home(home)
    with keyring_lock(root, exclusive=True):
        keys = _ring_file(root)
        targets = _targets(root, databases)
        new_id = _next_id([key_id for key_id, _ in keys])
        keys = [(new_id, SystemRandom().token_bytes(32)), *keys]
        # Written before any secret is sealed under it: the file opens everything at every
        # moment.
        write_keyring_file(root, keys)
        keyring = Keyring(dict(keys), primary=new_id)
        details = {"primary": new_id, "previous": " ".join(key_id for key_id, _ in keys[1:])}
        done: list[tuple[str, int]] = []
        with _recorded(root, keyring, action=AuditAction.ROTATE_KEYS, details=details, done=done):
            _reseal_all(root, targets, keyring, done)
    old = [key_id for key_id, _ in keys[1:]]
    verb = "stays" if len(old) == 1 else "stay"
    click.echo(
        f"{new_id} is the primary key; {', '.join(old)} {verb} in keyring.key"
        " until `macnss-auth keys retire`"
    )


@command.command("retire")
@home_option
@_database_option
def retire(home: str | None, databases: tuple[str, ...]) -> None:
    """Re-seal every store named, then remove every key but the primary.

    Name every store sealed with this home's key (--database for each one
    besides HOME/state.sqlite3): a store left out keeps secrets that only a
    retired key opens.
    """
    root = resolve_home(home)
    with keyring_lock(root, exclusive=True):
        keys = _ring_file(root)
        if len(keys) == 1:
            click.echo(f"{keys[0][0]} is the only key: nothing to retire")
            return
        targets = _targets(root, databases)
        if not targets:
            raise click.ClickException(
                "no store to re-seal (no HOME/state.sqlite3, no --database): name every store"
                " sealed with this home's key; nothing retired"
            )
        keyring = Keyring(dict(keys), primary=keys[0][0])
        details = {
            "primary": keys[0][0],
            "retired": " ".join(key_id for key_id, _ in keys[1:]),
        }
        done: list[tuple[str, int]] = []
        with _recorded(root, keyring, action=AuditAction.RETIRE_KEYS, details=details, done=done):
            _reseal_all(root, targets, keyring, done)
            write_keyring_file(root, keys[:1])
    click.echo(f"retired {', '.join(key_id for key_id, _ in keys[1:])}; {keys[0][0]} remains")

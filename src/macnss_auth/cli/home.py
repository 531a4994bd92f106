"""Where the CLI keeps its state: the data directory and its keyring.

Order of precedence: the ``--home`` option, ``$MACNSS_AUTH_HOME``, then the
per-user data directory (``$XDG_DATA_HOME/macnss-auth`` or
``~/.local/share/macnss-auth``). The directory holds ``state.sqlite3`` (the
store, and the audit log in its ``audit_log`` table) and ``keyring.key`` (the
AES key that seals secrets at rest, created with mode 0600 on first use;
after ``macnss-auth keys rotate``, the keys by id, the primary first)
unless ``$MACNSS_AUTH_KEY`` gives the key as 64 hex digits.

Layout: the audit log lives in the store's file, so that each verification
is one durable commit (:meth:`SQLiteAuditLog.in_store`). A directory that
already has ``audit.sqlite3`` (the layout before) keeps appending there, so
its chain goes on where it was; :func:`audit_path` says which file holds the log.

Commands open the store and the audit log with :func:`open_state` and report
a refused code with :func:`exit_refused`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Sequence
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
    "KEYRING_FILE",
    "KEY_ENV",
    "audit_path",
    "exit_refused",
    "home_option",
    "keyring_lock",
    "load_key",
    "load_keyring",
    "open_audit",
    "open_state",
    "read_keyring_file",
    "resolve_home",
    "write_keyring_file",
    "write_private",
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

    Creation is atomic and exclusive: the key is written to a private
    temporary file in the same directory, synced, then hard-linked to its
    name, which fails if the name exists. Two processes starting at once
    agree on one key (the first link wins), a reader never sees a partly
    written file, and a crash leaves no empty key file behind.

    Raises:
        ConfigurationError: the key is not 64 hex digits, or the file cannot be read.
    """
    text = os.environ.get(env)
    path = home / name
    if text is None:
        try:
            text = _read_key_text(path)
        except FileNotFoundError:
            key = SystemRandom().token_bytes(32)
            won = _create_exclusive(path, (key.hex() + "\n").encode("ascii"))
            if won:
                return Secret(key)
            # Another process created it first: use its key.
            text = _read_key_text(path)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigurationError(f"the key in {name} / ${env} must be 64 hex digits") from None
    if len(key) != 32:
        raise ConfigurationError(f"the key in {name} / ${env} must be 64 hex digits")
    return Secret(key)


def _read_key_text(path: Path) -> str:
    """The text of a key file, its permissions checked (see :func:`_check_mode`).

    Raises:
        FileNotFoundError: there is no such file (the caller creates it).
        ConfigurationError: it cannot be read, is not text, or anyone may write it.
    """
    try:
        with path.open("rb") as handle:
            # The mode of the file read, not of whatever the name points to a moment later.
            _check_mode(path, os.fstat(handle.fileno()).st_mode)
            data = handle.read()
        return data.decode("ascii").strip()
    except FileNotFoundError:
        raise
    except UnicodeDecodeError:
        raise ConfigurationError(f"the key in {path.name} must be 64 hex digits") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigurationError(f"cannot read the key file {path}: {reason}") from None


# Key files already warned about in this process (a command may read one several times).
_warned_modes: set[tuple[Path, int]] = set()


def _check_mode(path: Path, mode: int) -> None:
    """Refuse a world-writable key file; warn once about one group or others may read.

    We create key files 0600, but a copied or restored file may be 0644. Reading
    is only warned about: a Kubernetes secret volume is 0644 by default and
    read-only, so refusing would break it, and a reader of the file already has
    the key. A file anyone may write lets anyone choose the key (and so forge
    what it seals or binds): that is refused.

    Raises:
        ConfigurationError: others may write the file.
    """
    if mode & stat.S_IWOTH:
        raise ConfigurationError(
            f"the key file {path} is writable by anyone (mode {stat.S_IMODE(mode):04o}):"
            f" run `chmod 600 {path}` and check that the key in it is still yours"
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and (path, mode) not in _warned_modes:
        _warned_modes.add((path, mode))
        click.echo(
            f"warning: the key file {path} is readable or writable by group or others"
            f" (mode {stat.S_IMODE(mode):04o}): run `chmod 600 {path}`",
            err=True,
        )


def _create_exclusive(path: Path, data: bytes) -> bool:
    """Give ``path`` the content ``data`` (mode 0600) unless it exists; True if it did.

    Like ``O_CREAT | O_EXCL`` (first creator wins), but the name appears
    only with its full content, durably written.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp creates it 0600
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        _sync_directory(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _sync_directory(directory: Path) -> None:
    """Make a new directory entry durable (POSIX; a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (0600, even if it existed).

    For files that hold secrets, such as QR codes with an OTP seed.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # The umask or an older file may have left it wider.
        handle.write(data)


KEYRING_FILE = "keyring.key"

_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def load_keyring(home: Path) -> Keyring:
    """The keyring that seals secrets at rest: ``$MACNSS_AUTH_KEY`` or ``HOME/keyring.key``.

    The file holds one key as 64 hex digits (its id is ``k1``), or, once
    ``macnss-auth keys rotate`` has run, one ``<id> <64 hex digits>`` line per
    key, the primary first (see :func:`read_keyring_file`).

    Raises:
        ConfigurationError: a key is not 32 bytes of hex, or the file is malformed.
    """
    if os.environ.get(KEY_ENV) is None:
        keys = read_keyring_file(home)
        if keys is not None:
            return Keyring(dict(keys), primary=keys[0][0])
    return Keyring({"k1": load_key(home, KEYRING_FILE, KEY_ENV).reveal()}, primary="k1")


def read_keyring_file(home: Path) -> list[tuple[str, bytes]] | None:
    """The ``(id, key)`` pairs of a rotated ``HOME/keyring.key``, the primary first.

    ``None`` when the file is missing or holds a single key in the first
    form (64 hex digits, id ``k1``), which :func:`load_key` reads.

    Raises:
        ConfigurationError: the file cannot be read, or a line is not
            ``<id> <64 hex digits>`` with a distinct id of 1-64 letters,
            digits or ``_.-``.
    """
    try:
        text = _read_key_text(home / KEYRING_FILE)
    except FileNotFoundError:
        return None
    lines = [line.split() for line in map(str.strip, text.splitlines()) if line[:1] not in "#"]
    if len(lines) == 1 and len(lines[0]) == 1:
        return None
    keys: dict[str, bytes] = {}
    for fields in lines:
        key = _hex_key(fields[1]) if len(fields) == 2 else None
        if key is None or not _KEY_ID.fullmatch(fields[0]) or fields[0] in keys:
            raise ConfigurationError(
                f"each line of {KEYRING_FILE} must be '<id> <64 hex digits>' with a distinct id"
            )
        keys[fields[0]] = key
    if not keys:
        raise ConfigurationError(f"{KEYRING_FILE} holds no key")
    return list(keys.items())


def _hex_key(text: str) -> bytes | None:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        return None
    return key if len(key) == 32 else None


def write_keyring_file(home: Path, keys: Sequence[tuple[str, bytes]]) -> None:
    """Replace ``HOME/keyring.key`` with ``keys`` (the primary first), atomically.

    The new content is written to a private temporary file, synced and
    renamed over the old one: a crash leaves the old ring or the new one,
    never a mix or a partly written file.
    """
    lines = ["# macnss-auth keyring: '<id> <64 hex digits>' per key, the primary first"]
    lines += [f"{key_id} {key.hex()}" for key_id, key in keys]
    path = home / KEYRING_FILE
    fd, temporary = tempfile.mkstemp(dir=home, prefix=f".{KEYRING_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp creates it 0600
            handle.write(("\n".join(lines) + "\n").encode("ascii"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    _sync_directory(home)


@contextlib.contextmanager
def keyring_lock(home: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold ``HOME/.keyring.key.lock``: shared by ``serve``, exclusive by ``keys rotate/retire``.

    A running ``serve`` keeps the ring it read at start and seals new secrets
    under its primary, so the keys must not change under it (a retired key
    would leave those secrets unreadable after a restart); two ``keys``
    commands at once would each write a ring without the other's new key.
    Never waits: a lock held the other way refuses.

    Raises:
        click.ClickException: the lock is held the other way; nothing changed.
    """
    fd = os.open(home / f".{KEYRING_FILE}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise click.ClickException(
                "this home's keys are in use: stop `macnss-auth serve` (every instance on"
                " this home) and wait for any other `macnss-auth keys` command, then run it"
                " again; nothing changed"
                if exclusive
                else "a `macnss-auth keys` command is changing this home's keys:"
                " start again once it has finished"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


STATE_FILE = "state.sqlite3"
LEGACY_AUDIT_FILE = "audit.sqlite3"


def audit_path(home: Path) -> Path:
    """The file that holds the audit log: ``audit.sqlite3`` if it exists, else the store's."""
    legacy = home / LEGACY_AUDIT_FILE
    return legacy if legacy.exists() else home / STATE_FILE


def open_audit(store: SQLiteStore, home: Path) -> SQLiteAuditLog:
    """The audit log for ``store`` in ``home``: in the store's file, or the older separate file.

    Raises:
        StoreError: the file holding the log is not a macnss-auth audit log.
    """
    legacy = home / LEGACY_AUDIT_FILE
    if legacy.exists():
        return SQLiteAuditLog(legacy)
    return SQLiteAuditLog.in_store(store)


@contextlib.contextmanager
def open_state(home: Path, keyring: Keyring) -> Iterator[tuple[SQLiteStore, SQLiteAuditLog]]:
    """The store ``HOME/state.sqlite3`` (secrets sealed by ``keyring``) and the audit log.

    Yields ``(store, audit)``; the audit log lives in the store's file (see
    :func:`open_audit`). Both are closed when the block ends.
    """
    store = SQLiteStore(home / STATE_FILE, keyring=keyring)
    try:
        audit = open_audit(store, home)
    except BaseException:
        store.close()
        raise
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

"""``macnss-auth serve``: the HTTP service (JSON API, login page, JWKS) under uvicorn.

Embedded defaults, as for the demo: a SQLite store in the data directory
that also holds the audit log (one commit per decision; a home with an older
separate ``audit.sqlite3`` keeps using it), codes "sent" by SMS and e-mail
printed on this console, and a virtual eID card (issued on first start,
saved under ``HOME/card``) whose test CSCA is the only trust anchor.
``--database postgresql://...`` puts the state in PostgreSQL instead (the
audit log then stays in ``HOME/audit.sqlite3``), so several instances
(``--port`` apart, one data directory for the shared keys) serve one population.

With the ``passkey`` extra installed, passkeys are one more method (the
``/v1/passkeys`` routes and the ``/passkey`` page, see docs/passkeys.md) for
the origins given with ``--passkey-origin`` (default: ``http://localhost:PORT``,
the one plain-http origin browsers allow WebAuthn on; the RP id is the first
origin's host). Without the extra the service runs without them.

Needs the ``web`` extra: ``pip install 'macnss-auth[web]'``.
"""

from __future__ import annotations

import contextlib
import fcntl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from macnss_auth.audit.sqlite import SQLiteAuditLog
from macnss_auth.authenticator import AssuranceLevel, Authenticator
from macnss_auth.cli.code import load_pepper
from macnss_auth.cli.home import (
    audit_path,
    keyring_lock,
    load_key,
    load_keyring,
    open_audit,
    resolve_home,
)
from macnss_auth.clock import SystemClock
from macnss_auth.delivery import ChannelKind, ConsoleChannel
from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.phone import PhoneLimits
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.otp.oob import EmailCodeAuthenticator, SMSCodeAuthenticator
from macnss_auth.otp.recovery import RecoveryCodeAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.policy import Policy
from macnss_auth.secret import Secret
from macnss_auth.store.base import Store
from macnss_auth.store.sqlite import SQLiteStore

__all__ = ["build_service", "command", "default_methods"]

ENROLLMENT_KEY_ENV = "MACNSS_AUTH_ENROLLMENT_KEY"
BINDING_KEY_ENV = "MACNSS_AUTH_EID_BINDING_KEY"
PASSKEY_DECOY_KEY_ENV = "MACNSS_AUTH_PASSKEY_DECOY_KEY"
_LEVELS = {level.name.lower(): level for level in AssuranceLevel}


@contextlib.contextmanager
def _setup_lock(home: Path) -> Iterator[None]:
    # Instances started together must agree on one card and one signing key.
    with (home / ".serve.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open_store(home: Path, database: str | None) -> Store:
    keyring = load_keyring(home)
    if database is None:
        return SQLiteStore(home / "state.sqlite3", keyring=keyring)
    if database.startswith(("postgresql://", "postgres://")):
        try:
            from macnss_auth.store.postgres import PostgresStore  # noqa: PLC0415 (extra)
        except ImportError as exc:
            raise ConfigurationError("PostgreSQL needs the postgres extra (psycopg)") from exc
        return PostgresStore(database, keyring=keyring)
    return SQLiteStore(Path(database), keyring=keyring)


def _open_audit(home: Path, store: Store) -> SQLiteAuditLog:
    # A SQLite store hosts the audit log (one commit per decision) unless the
    # home already has a separate audit.sqlite3, whose chain goes on there;
    # next to PostgreSQL the log is a file of its own.
    if isinstance(store, SQLiteStore):
        return open_audit(store, home)
    return SQLiteAuditLog(home / "audit.sqlite3")


def _audit_at(home: Path, database: str | None) -> str:
    """Where :func:`_open_audit` keeps the log, for the start-up message."""
    legacy = home / "audit.sqlite3"
    if legacy.exists() or (database is not None and "://" in database):
        return str(legacy)
    return f"{database or audit_path(home)} (in the store's file)"


def _trust(home: Path) -> TrustStore:
    from macnss_auth.nfc.card import issue_card, save_card  # noqa: PLC0415 (the test PKI is big)

    master_list = home / "card" / "trust" / "masterlist.ml"
    if not master_list.exists():
        save_card(issue_card("cnie", clock=SystemClock(), can="123456"), home / "card")
    trust = TrustStore()
    # The virtual card's own list, written by `card issue` on this machine: trusted as is.
    trust.load_master_list(
        master_list.read_bytes(), name="virtual card's test CSCA", trust_as_is=True
    )
    return trust


def default_methods(
    *,
    eid: Authenticator[Any],
    totp: Authenticator[Any],
    sms: Authenticator[Any],
    email: Authenticator[Any],
) -> list[tuple[Authenticator[Any], AssuranceLevel]]:
    """The demo's and serve's methods in policy order, each with the assurance it gives."""
    return [
        (eid, AssuranceLevel.HIGH),
        (totp, AssuranceLevel.SUBSTANTIAL),
        (sms, AssuranceLevel.LOW),
        (email, AssuranceLevel.LOW),
    ]


def default_passkey_origins(port: int) -> list[str]:
    """The default passkey origin of a service on ``port``: ``http://localhost:PORT``."""
    return [f"http://localhost:{port}"]


def _passkeys(
    common: dict[str, Any], origins: list[str], decoy_key: Secret
) -> tuple[Any, Any] | None:
    """The passkey method and its routes, or None without the passkey extra."""
    try:
        from macnss_auth.passkey import PasskeyAuthenticator  # noqa: PLC0415 (the extra)
        from macnss_auth.web.passkey import passkey_router  # noqa: PLC0415 (the extra)
    except ImportError:
        return None
    rp_id = urlsplit(origins[0]).hostname or "localhost"
    passkeys = PasskeyAuthenticator(
        rp_id=rp_id, origins=origins, rp_name="macnss-auth", decoy_key=decoy_key, **common
    )
    return passkeys, passkey_router(passkeys)


def build_service(
    home: Path,
    *,
    database: str | None = None,
    issuer: str,
    audiences: list[str],
    trusted_proxies: list[str] | None = None,
    return_urls: dict[str, str] | None = None,
    stream: Any = None,
    max_threads: int = 8,
    passkey_origins: list[str] | None = None,
    enrollment_min_assurance: AssuranceLevel = AssuranceLevel.LOW,
) -> Any:
    """The app ``serve`` runs (also used by ``bench/service.py``).

    ``passkey_origins``: where the passkey method accepts ceremonies from
    (default: ``http://localhost`` with the issuer's port); unused without the
    passkey extra. ``enrollment_min_assurance``: see
    :func:`~macnss_auth.web.create_app`.

    Raises:
        ConfigurationError: a bad database URL, or a passkey origin WebAuthn refuses.
    """
    from macnss_auth.web import AssertionIssuer, SigningKeys, create_app  # noqa: PLC0415
    from macnss_auth.web.phone import phone_routes  # noqa: PLC0415

    with _setup_lock(home):
        store = _open_store(home, database)
        keys = SigningKeys.load_or_create(home / "signing-keys")
        trust = _trust(home)
        pepper = load_pepper(home)
        binding = load_key(home, "eid-binding.key", BINDING_KEY_ENV)
        enrollment = load_key(home, "enrollment.key", ENROLLMENT_KEY_ENV)
        # Every instance and every restart must give an unknown subject the same
        # decoy passkeys, as a real subject's list stays the same.
        decoys = load_key(home, "passkey-decoy.key", PASSKEY_DECOY_KEY_ENV)
    audit = _open_audit(home, store)
    out = stream or sys.stdout
    common: dict[str, Any] = {"store": store, "audit": audit}
    totp = TotpAuthenticator(issuer="macnss-auth", **common)
    sms = SMSCodeAuthenticator(
        channel=ConsoleChannel(ChannelKind.SMS, stream=out), pepper=pepper, **common
    )
    email = EmailCodeAuthenticator(
        channel=ConsoleChannel(ChannelKind.EMAIL, stream=out), pepper=pepper, **common
    )
    recovery = RecoveryCodeAuthenticator(**common)
    eid = EidAuthenticator(trust_store=trust, binding_key=binding.reveal(), **common)
    methods = default_methods(eid=eid, totp=totp, sms=sms, email=email)
    methods.append((recovery, AssuranceLevel.SUBSTANTIAL))
    routers: list[Any] = [phone_routes()]  # eID from the person's own phone
    origins = passkey_origins or default_passkey_origins(urlsplit(issuer).port or 80)
    passkeys = _passkeys(common, origins, decoys)
    if passkeys is not None:
        methods.append((passkeys[0], AssuranceLevel.SUBSTANTIAL))
        routers.append(passkeys[1])
    policy = Policy(authenticators=methods, store=store, clock=SystemClock())
    assertions = AssertionIssuer(issuer=issuer, keys=keys, audiences=audiences)
    return create_app(
        policy=policy,
        assertions=assertions,
        trusted_proxies=trusted_proxies or [],
        # The bearer key is the hex text of HOME/enrollment.key (or the variable).
        enrollment_key=Secret(enrollment.reveal().hex().encode("ascii")),
        return_urls=return_urls,
        max_threads=max_threads,
        extra_routers=routers,
        enrollment_min_assurance=enrollment_min_assurance,
        audit=audit,  # sign-outs, beside the logins (they are kept in the policy's store)
    )


@click.command("serve")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    default=None,
    help="Data directory (default: $MACNSS_AUTH_HOME or ~/.local/share/macnss-auth).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--database",
    default=None,
    metavar="URL",
    help="postgresql://... for several instances (default: HOME/state.sqlite3).",
)
@click.option("--issuer", default=None, help="The assertions' iss (default: http://HOST:PORT).")
@click.option(
    "--audience",
    "audiences",
    multiple=True,
    metavar="AUD",
    help="A calling service tokens are issued for (repeatable; default: macnss-demo).",
)
@click.option(
    "--return-url",
    "return_urls",
    multiple=True,
    metavar="AUD=URL",
    help="Where the login page posts the assertion for AUD (repeatable).",
)
@click.option(
    "--trusted-proxy",
    "proxies",
    multiple=True,
    metavar="NET",
    help="A reverse proxy whose X-Forwarded-For is believed (repeatable).",
)
@click.option(
    "--passkey-origin",
    "origins",
    multiple=True,
    metavar="ORIGIN",
    help="An origin passkeys are used from (repeatable; default: http://localhost:PORT).",
)
@click.option(
    "--enrollment-min-assurance",
    type=click.Choice(sorted(_LEVELS, key=lambda name: _LEVELS[name])),
    default="low",
    show_default=True,
    help="The login level that may add or remove methods: substantial keeps whoever holds "
    "only the SIM (an SMS login) from binding an app or a passkey.",
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Library calls running at once.",
)
def command(  # noqa: PLR0917 (click passes every option as an argument)
    home: str | None,
    host: str,
    port: int,
    database: str | None,
    issuer: str | None,
    audiences: tuple[str, ...],
    return_urls: tuple[str, ...],
    proxies: tuple[str, ...],
    origins: tuple[str, ...],
    enrollment_min_assurance: str,
    threads: int,
) -> None:
    """Serve the JSON API, the login page (/login) and the JWKS over HTTP."""
    try:
        import uvicorn  # noqa: PLC0415 (the web extra)
    except ImportError:
        message = "serve needs the web extra: pip install 'macnss-auth[web]'"
        raise click.ClickException(message) from None
    root = resolve_home(home)
    urls = {}
    for item in return_urls:
        audience, sep, url = item.partition("=")
        if not sep:
            raise click.BadParameter("use AUD=URL", param_hint="--return-url")
        urls[audience] = url
    names = list(audiences) or ["macnss-demo"]
    # Shared for the whole run: `keys rotate/retire` refuse meanwhile (this process seals
    # under the ring it reads at start until it stops; see keyring_lock).
    with keyring_lock(root, exclusive=False):
        try:
            app = build_service(
                root, database=database, issuer=issuer or f"http://{host}:{port}",
                audiences=names, trusted_proxies=list(proxies), return_urls=urls,
                max_threads=threads, passkey_origins=list(origins) or default_passkey_origins(port),
                enrollment_min_assurance=_LEVELS[enrollment_min_assurance],
            )  # fmt: skip
        except ConfigurationError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(
            f"state: {database or root / 'state.sqlite3'}   audit log: {_audit_at(root, database)}"
        )
        click.echo(f"login page: http://{host}:{port}/login   JWKS: /.well-known/jwks.json")
        click.echo(f"virtual eID card: {root / 'card'} (CAN 123456)")
        click.echo(f"back-office bearer key: {root / 'enrollment.key'}; codes are printed here")
        # X-Forwarded-For is the app's business (--trusted-proxy), not uvicorn's.
        # A websocket frame larger than the phone protocol's largest message is refused by
        # uvicorn itself (its default admits 16 MiB).
        uvicorn.run(app, host=host, port=port, proxy_headers=False, server_header=False,
                    ws_max_size=PhoneLimits().max_message_bytes, log_level="warning")  # fmt: skip

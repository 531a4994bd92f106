"""A kiosk's configuration file (TOML), and the kiosk it describes.

One file says everything an installer decides: the reader, the trust
anchors, the languages, the timeouts, the kiosk's name, where state and the
audit log live, and how a person is found among the enrolled. Secrets (the
key that hashes enrolled ID numbers, the store's encryption key, the audit
chain key) live in a second file that only the kiosk's user may read; the
loader refuses one that others can read.

Paths are relative to the configuration file. See ``docs/kiosk.md`` for a
complete example.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from macnss_auth.audit.jsonl import JsonLinesAuditLog
from macnss_auth.catalogs import available_languages
from macnss_auth.clock import Clock, RandomSource, SystemClock, SystemRandom
from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.kiosk import Kiosk
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.protocol import Transport
from macnss_auth.secret import Secret
from macnss_auth.store.keyring import Keyring
from macnss_auth.store.sqlite import SQLiteStore

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "KioskConfig",
    "KioskSecrets",
    "authenticator_for",
    "build_kiosk",
    "load_kiosk_config",
]

_PASSWORDS = ("can", "pin")
_LOOKUPS = ("identifier", "none")


@attrs.frozen
class KioskSecrets:
    """The kiosk's keys (never in a repr)."""

    binding_key: Secret = attrs.field(repr=False)
    store_key: Secret = attrs.field(repr=False)
    audit_chain_key: Secret | None = attrs.field(repr=False, default=None)


@attrs.frozen
class KioskConfig:
    """What a kiosk configuration file says (see :func:`load_kiosk_config`)."""

    kiosk_id: str
    device: str
    trust: Path | None
    languages: tuple[str, ...]
    choose_language: bool
    password: str
    fallbacks: tuple[str, ...]
    card_timeout: float
    challenge_ttl: float
    store: Path | None
    audit: Path | None
    lookup: str
    secrets: KioskSecrets | None = attrs.field(repr=False, default=None)


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"[{name}] must be a table")
    return value


def _get(table: Mapping[str, Any], where: str, key: str, kind: type, default: Any) -> Any:
    value = table.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:  # TOML integers have no size limit in tomllib
            raise ConfigurationError(f"{where}.{key} is out of range") from None
    if value is not None and not isinstance(value, kind):
        raise ConfigurationError(f"{where}.{key} must be a {kind.__name__}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"{where} must be a list of strings")
    return tuple(value)


def _path(base: Path, value: str | None) -> Path | None:
    return None if value is None else (base / value).resolve()


def _key(data: Mapping[str, Any], name: str, *, size: int | None, minimum: int) -> Secret | None:
    value = data.get(name)
    if value is None:
        return None
    try:
        key = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        key = b""
    if len(key) < minimum or (size is not None and len(key) != size):
        wanted = f"{size}" if size is not None else f"at least {minimum}"
        raise ConfigurationError(f"secrets: {name} must be {wanted} bytes in hex")
    return Secret(key)


def _load_secrets(path: Path) -> KioskSecrets:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"{path} can be read by others: chmod 600 it (it holds the kiosk's keys)"
            )
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read the secrets file {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        # ValueError: not UTF-8, or an integer past int()'s digit limit (tomllib lets it out).
        raise ConfigurationError(f"{path} is not TOML: {exc}") from exc
    binding = _key(data, "binding_key", size=None, minimum=32)
    store = _key(data, "store_key", size=32, minimum=32)
    if binding is None or store is None:
        raise ConfigurationError("secrets: binding_key and store_key are required")
    chain = _key(data, "audit_chain_key", size=None, minimum=16)
    return KioskSecrets(binding_key=binding, store_key=store, audit_chain_key=chain)


def load_kiosk_config(path: str | os.PathLike[str]) -> KioskConfig:
    """Read a kiosk configuration file.

    Raises:
        ConfigurationError: a missing file, bad TOML, a wrong type or value (the
            message names the key), or a secrets file others can read.
    """
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read {file}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        # ValueError: not UTF-8, or an integer past int()'s digit limit (tomllib lets it out).
        raise ConfigurationError(f"{file} is not TOML: {exc}") from exc
    base = file.resolve().parent
    kiosk = _table(data, "kiosk")
    reader = _table(data, "reader")
    people = _table(data, "people")
    kiosk_id = _get(kiosk, "kiosk", "id", str, None)
    if not kiosk_id:
        raise ConfigurationError("kiosk.id is required (it names the kiosk in the audit log)")
    languages = _strings(kiosk.get("languages", list(available_languages())), "kiosk.languages")
    unknown = [code for code in languages if code not in available_languages()]
    if unknown or not languages:
        raise ConfigurationError(
            f"kiosk.languages: no catalog for {', '.join(unknown) or 'an empty list'} "
            f"(shipped: {', '.join(available_languages())})"
        )
    password = _get(kiosk, "kiosk", "password", str, "can")
    if password not in _PASSWORDS:
        raise ConfigurationError(f"kiosk.password must be one of {', '.join(_PASSWORDS)}")
    device = _get(reader, "reader", "device", str, None)
    if not device:
        raise ConfigurationError("reader.device is required (pcsc, usb, udp:HOST:PORT...)")
    card_timeout = _get(reader, "reader", "card_timeout", float, 60.0)
    challenge_ttl = _get(reader, "reader", "challenge_ttl", float, 120.0)
    if not 0 < card_timeout <= 3600 or not 0 < challenge_ttl <= 600:
        raise ConfigurationError(
            "reader.card_timeout must be in (0, 3600] and reader.challenge_ttl in (0, 600]"
        )
    lookup = _get(people, "people", "lookup", str, "identifier")
    if lookup not in _LOOKUPS:
        raise ConfigurationError(f"people.lookup must be one of {', '.join(_LOOKUPS)}")
    store = _path(base, _get(_table(data, "store"), "store", "sqlite", str, None))
    audit = _path(base, _get(_table(data, "audit"), "audit", "jsonl", str, None))
    secrets_path = _path(base, _get(data, "", "secrets", str, None))
    secrets = _load_secrets(secrets_path) if secrets_path is not None else None
    if lookup != "none" and (store is None or audit is None or secrets is None):
        raise ConfigurationError(
            "logging people in needs store.sqlite, audit.jsonl and a secrets file "
            '(or people.lookup = "none" to only verify cards)'
        )
    return KioskConfig(
        kiosk_id=kiosk_id,
        device=device,
        trust=_path(base, _get(_table(data, "trust"), "trust", "path", str, None)),
        languages=languages,
        choose_language=_get(kiosk, "kiosk", "choose_language", bool, len(languages) > 1),
        password=password,
        fallbacks=_strings(kiosk.get("fallbacks", ["totp", "sms", "email"]), "kiosk.fallbacks"),
        card_timeout=card_timeout,
        challenge_ttl=challenge_ttl,
        store=store,
        audit=audit,
        lookup=lookup,
        secrets=secrets,
    )


def authenticator_for(
    config: KioskConfig,
    *,
    trust_store: TrustStore,
    clock: Clock | None = None,
    random: RandomSource | None = None,
) -> EidAuthenticator | None:
    """The :class:`EidAuthenticator` the configuration describes (``None``: verify only)."""
    if config.lookup == "none":
        return None
    if config.secrets is None or config.store is None or config.audit is None:
        raise ConfigurationError("logging people in needs store.sqlite, audit.jsonl and secrets")
    secrets = config.secrets
    store = SQLiteStore(
        config.store, keyring=Keyring({"k1": secrets.store_key.reveal()}, primary="k1")
    )
    chain = secrets.audit_chain_key.reveal() if secrets.audit_chain_key is not None else None
    audit = JsonLinesAuditLog(config.audit, chain_key=chain)
    return EidAuthenticator(
        store=store,
        audit=audit,
        trust_store=trust_store,
        binding_key=secrets.binding_key.reveal(),
        clock=clock,
        random=random,
        challenge_ttl=config.challenge_ttl,
    )


def build_kiosk(
    config: KioskConfig,
    *,
    connect: Callable[[], Transport],
    trust_store: TrustStore,
    ask: Callable[[str], str],
    say: Callable[[str], None],
    ask_secret: Callable[[str], str] | None = None,
    clock: Clock | None = None,
    random: RandomSource | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    authenticator: EidAuthenticator | None = None,
) -> Kiosk:
    """The :class:`~macnss_auth.nfc.kiosk.Kiosk` a configuration describes.

    Args:
        authenticator: by default the one :func:`authenticator_for` builds.
    """
    clock = clock or SystemClock()
    random = random or SystemRandom()
    if authenticator is None:
        authenticator = authenticator_for(
            config, trust_store=trust_store, clock=clock, random=random
        )
    return Kiosk(
        connect=connect,
        trust_store=trust_store,
        random=random,
        clock=clock,
        ask=ask,
        say=say,
        ask_secret=ask_secret,
        use_pin=config.password == "pin",  # noqa: S105 (a password kind, not a password)
        fallbacks=config.fallbacks,
        progress=progress,
        languages=config.languages,
        choose_language=config.choose_language,
        authenticator=authenticator,
        kiosk_id=config.kiosk_id,
    )

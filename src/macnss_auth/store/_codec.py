"""How the persistent stores write records, times and integers (shared, private).

SQLite, PostgreSQL and Redis keep the same fields in the same encodings:
instants as integer microseconds since the Unix epoch, mappings as JSON with
sorted keys, enrollment secrets sealed under the keyring. The functions here
are the one place that turns records into those values and back.

Text: every backend holds the same text, so keys, ids, subjects, methods,
slots and hints must be valid Unicode without NUL (:func:`storable`).
PostgreSQL ``text`` cannot hold NUL and UTF-8 cannot encode a lone
surrogate; rather than each backend failing its own way (``StoreError``
here, ``UnicodeEncodeError`` there, silent acceptance in memory), a store
reads such text as absent (nothing can have been stored under it) and
refuses to write it with :class:`~macnss_auth.errors.MalformedInput`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from typing import Any, Final

from macnss_auth.authenticator import Challenge
from macnss_auth.errors import ConfigurationError, MalformedInput, StoreError
from macnss_auth.secret import Secret
from macnss_auth.store.base import ChallengeRecord, CounterState, Enrollment, enrollment_context
from macnss_auth.store.keyring import Keyring

__all__ = [
    "CHALLENGE_COLUMNS",
    "absent_enrollment",
    "challenge_record",
    "challenge_row",
    "counter_state",
    "enrollment_row",
    "instant",
    "int64",
    "micros",
    "open_enrollment",
    "require_storable",
    "require_storable_challenge",
    "storable",
    "window_micros",
]

CHALLENGE_COLUMNS: Final = (
    "id, slot, subject, method, created_at, expires_at, hint, data, "
    "verifier, max_attempts, attempts, consumed"
)
"""The order of :func:`challenge_row` values and of :func:`challenge_record` input."""

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICROSECOND: Final = dt.timedelta(microseconds=1)
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


def micros(when: dt.datetime) -> int:
    """Integer microseconds since the Unix epoch: exact comparisons and round trips.

    Raises:
        ConfigurationError: a naive datetime (whose zone would be a guess).
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ConfigurationError("store times must be timezone-aware datetimes")
    return (when - _EPOCH) // _MICROSECOND


def storable(*texts: object) -> bool:
    """Whether every one of ``texts`` can be stored by every backend.

    Text qualifies if it has no NUL and encodes as UTF-8 (no lone surrogates).
    """
    for text in texts:
        # The common case first: plain ASCII without NUL (one C-level scan each).
        if type(text) is str and text.isascii() and "\x00" not in text:
            continue
        if not isinstance(text, str) or "\x00" in text:
            return False
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def require_storable(*texts: object) -> None:
    """Refuse text that no backend could store alike (see :func:`storable`).

    Raises:
        MalformedInput: a text holds NUL or a lone surrogate, or is not text.
    """
    if len(texts) == 1:
        # One key, the common call: no generator, and plain ASCII passes at once.
        (text,) = texts
        if type(text) is str and text.isascii() and "\x00" not in text:
            return
        if text is None or storable(text):
            return
    elif storable(*(text for text in texts if text is not None)):
        return
    raise MalformedInput(
        "store keys and ids must be text without NUL or lone surrogates", field="key"
    )


def require_storable_challenge(record: ChallengeRecord) -> None:
    """Refuse a challenge record whose id, slot, subject, method or hint no backend holds alike.

    Raises:
        MalformedInput: see :func:`require_storable`.
    """
    challenge = record.challenge
    require_storable(record.id, record.slot, challenge.subject, challenge.method, challenge.hint)


def instant(value: int) -> dt.datetime:
    """The aware UTC datetime of :func:`micros` output."""
    return _EPOCH + dt.timedelta(microseconds=value)


def window_micros(window: float) -> int:
    """A window in microseconds, rounded exactly as ``MemoryStore`` rounds it.

    Raises:
        ConfigurationError: not a positive finite number of seconds.
    """
    if not math.isfinite(window) or window <= 0:
        raise ConfigurationError("a counter window must be a positive number of seconds")
    return dt.timedelta(seconds=window) // _MICROSECOND


def int64(value: int) -> int:
    """``value`` if it fits a signed 64-bit integer.

    Raises:
        StoreError: it does not.
    """
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise StoreError("monotonic counters are signed 64-bit integers")
    return value


def enrollment_row(
    enrollment: Enrollment, keyring: Keyring
) -> tuple[str, str, bytes, str, str, bool, int, int | None]:
    """``(subject, method, sealed, key_id, params, confirmed, created_at, expires_at)``.

    The secret is sealed under the keyring's primary key, bound to
    ``enrollment_context(subject, method)``; ``params`` is sorted-key JSON.

    Raises:
        ConfigurationError: a naive datetime.
    """
    context = enrollment_context(enrollment.subject, enrollment.method)
    sealed = keyring.seal(enrollment.secret.reveal(), context=context)
    expires = None if enrollment.expires_at is None else micros(enrollment.expires_at)
    return (
        enrollment.subject,
        enrollment.method,
        sealed,
        keyring.primary,
        json.dumps(dict(enrollment.params), sort_keys=True),
        enrollment.confirmed,
        micros(enrollment.created_at),
        expires,
    )


_DECOY_PARAMS: Final = json.dumps(
    {
        "account": "",
        "algorithm": "SHA1",
        "counter": 0,
        "digits": 6,
        "generation": "0" * 32,
        "issuer": "macnss-auth",
        "period": 30,
    },
    sort_keys=True,
)


def absent_enrollment(keyring: Keyring) -> None:
    """Decode a decoy record as :func:`open_enrollment` decodes a real one, and drop it.

    Stores call it when a lookup finds no enrollment, so that an unknown
    subject costs the decryption and decoding an enrolled one costs.
    """
    keyring.open_decoy()
    Enrollment(
        subject="",
        method="",
        secret=Secret(b""),
        params=json.loads(_DECOY_PARAMS),
        confirmed=True,
        created_at=instant(0),
    )


def open_enrollment(
    keyring: Keyring, subject: str, method: str, stored: Sequence[Any] | None
) -> Enrollment | None:
    """The enrollment from its stored ``(sealed, params, confirmed, created_at, expires_at)``.

    The values are those of :func:`enrollment_row` (``confirmed`` any truthy
    flag); the secret is opened under the keyring. ``None`` (the lookup found
    nothing) costs a decoy's opening (:func:`absent_enrollment`) and gives None.

    Raises:
        SecretKeyError: the sealed secret does not open under the keyring.
    """
    if stored is None:
        absent_enrollment(keyring)  # a miss costs what a hit costs
        return None
    sealed, params, confirmed, created_at, expires_at = stored
    secret = keyring.open(bytes(sealed), context=enrollment_context(subject, method))
    return Enrollment(
        subject=subject,
        method=method,
        secret=Secret(secret),
        params=json.loads(params),
        confirmed=bool(confirmed),
        created_at=instant(created_at),
        expires_at=None if expires_at is None else instant(expires_at),
    )


def challenge_row(record: ChallengeRecord) -> tuple[Any, ...]:
    """The record's values in :data:`CHALLENGE_COLUMNS` order, once its text is storable.

    Raises:
        MalformedInput: see :func:`require_storable_challenge`.
    """
    require_storable_challenge(record)
    challenge = record.challenge
    return (
        challenge.id,
        record.slot,
        challenge.subject,
        challenge.method,
        micros(challenge.created_at),
        micros(challenge.expires_at),
        challenge.hint,
        json.dumps(dict(challenge.data), sort_keys=True),
        record.verifier,
        record.max_attempts,
        record.attempts,
        record.consumed,
    )


def challenge_record(row: Sequence[Any], *, consumed: bool | None = None) -> ChallengeRecord:
    """The record from values in :data:`CHALLENGE_COLUMNS` order (text as ``str``).

    Args:
        row: the stored values.
        consumed: overrides the stored flag (a ``RETURNING`` row shows it
            after the update that set it).
    """
    (cid, slot, subject, method, created, expires, hint, data, verifier, maxa, att, used) = row
    challenge = Challenge(
        id=str(cid),
        subject=str(subject),
        method=str(method),
        created_at=instant(created),
        expires_at=instant(expires),
        hint=None if hint is None else str(hint),
        data=json.loads(data),
    )
    return ChallengeRecord(
        challenge=challenge,
        slot=str(slot),
        verifier=bytes(verifier),
        max_attempts=int(maxa),
        attempts=int(att),
        consumed=bool(used) if consumed is None else consumed,
    )


def counter_state(row: Sequence[Any]) -> CounterState:
    """A windowed counter from its stored ``(count, first_at, last_at)``."""
    count, first_at, last_at = row
    return CounterState(
        count=int(count), first_at=instant(int(first_at)), last_at=instant(int(last_at))
    )
